//! Transactional offset commits (TxnOffsetCommit), Kafka's `pendingTransactionalOffsetCommits`:
//! the offsets a transactional producer committed through the group coordinator, held per
//! producer until its transaction ends in their `__consumer_offsets` partition.
//!
//! The coordinator appends a TxnOffsetCommit's records as one transactional batch of the
//! producer (`store::encode_txn`, `Partition::append_as_coordinator`), so the batch opens the
//! producer's transaction in that partition and the COMMIT/ABORT marker the transaction
//! coordinator writes there ends it. Until then the offsets are *pending*: OffsetFetch does not
//! return them (with `require_stable` the partition answers UNSTABLE_OFFSET_COMMIT instead).
//! On COMMIT each becomes the committed offset unless a plain commit was appended after it
//! (Kafka compares `appendedBatchOffset`: the log position decides, not the completion time);
//! on ABORT they are dropped.
//!
//! The replay of a partition ([`replay`]) follows the same rules in log order: transactional
//! offset records go pending under their producer, the producer's marker applies or drops them,
//! and what is still pending at the end stays pending (a transaction open across the load).
//! A plain offset tombstone (OffsetDelete, DeleteGroups, expiry) also removes the pending
//! offsets of that group and partition, as Kafka's new group coordinator replays it; the live
//! paths do the same and write a tombstone whenever they drop a pending offset, so the memory
//! and a later replay always agree.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::entry::{self, Committed, GroupEntry, LoggedOffset};
use super::store::{self, BatchContent, StoredBatch, StoredRecord};
use crate::log::{LogError, ReadResult};
use crate::types::{Offset, TopicPartition};

/// Most pending transactional offsets (one per producer, group and partition) held for one
/// `__consumer_offsets` partition. Each open transaction holds a few (the partitions its
/// consumer owns), so 100,000 is room for thousands of concurrent transactional producers
/// while bounding the memory (a few hundred bytes each). Beyond it a TxnOffsetCommit gets the
/// retriable COORDINATOR_NOT_AVAILABLE until transactions end (they end at the latest when the
/// transaction coordinator aborts them on timeout). The replay does not enforce it: what the log
/// holds was admitted under it.
pub const MAX_PENDING_TXN_OFFSETS_PER_PARTITION: usize = 100_000;

/// Bytes read per step when replaying a partition.
const REPLAY_READ_BYTES: usize = 4 << 20;

/// One group's offsets by partition.
pub type GroupOffsets = HashMap<TopicPartition, LoggedOffset>;

/// The pending transactional offsets of one `__consumer_offsets` partition.
#[derive(Debug, Clone, Default)]
pub struct PartitionTxnOffsets {
    /// Producer id → group → partition → offset.
    by_producer: BTreeMap<i64, HashMap<String, GroupOffsets>>,
    /// Number of offsets held, over every producer (for the cap).
    len: usize,
}

impl PartitionTxnOffsets {
    /// Number of pending offsets.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of producers with pending offsets (open transactions seen here).
    pub fn producers(&self) -> usize {
        self.by_producer.len()
    }

    /// Holds `offset` for `producer`; a later commit of the same partition in the same
    /// transaction replaces the earlier one (Kafka's `prepareTxnOffsetCommit`).
    pub fn add(&mut self, producer: i64, group: &str, tp: TopicPartition, offset: LoggedOffset) {
        let slot = self
            .by_producer
            .entry(producer)
            .or_default()
            .entry(group.to_string())
            .or_default();
        if slot.insert(tp, offset).is_none() {
            self.len += 1;
        }
        self.debug_check();
    }

    /// Drops `producer`'s pending offset of `group`/`tp` (a tombstone inside its transaction).
    pub fn remove_for_producer(&mut self, producer: i64, group: &str, tp: &TopicPartition) {
        let Some(groups) = self.by_producer.get_mut(&producer) else {
            return;
        };
        if let Some(offsets) = groups.get_mut(group) {
            if offsets.remove(tp).is_some() {
                self.len -= 1;
            }
            if offsets.is_empty() {
                groups.remove(group);
            }
        }
        if groups.is_empty() {
            self.by_producer.remove(&producer);
        }
        self.debug_check();
    }

    /// Takes every pending offset of `producer` (its transaction ended).
    pub fn take(&mut self, producer: i64) -> HashMap<String, GroupOffsets> {
        let taken = self.by_producer.remove(&producer).unwrap_or_default();
        self.len -= taken.values().map(HashMap::len).sum::<usize>();
        self.debug_check();
        taken
    }

    /// Whether some transaction holds a pending offset for `group`/`tp`.
    pub fn is_pending(&self, group: &str, tp: &TopicPartition) -> bool {
        self.by_producer
            .values()
            .any(|g| g.get(group).is_some_and(|o| o.contains_key(tp)))
    }

    /// Whether some transaction holds a pending offset of `group`.
    pub fn group_has_pending(&self, group: &str) -> bool {
        self.by_producer.values().any(|g| g.contains_key(group))
    }

    /// The partitions of `group` with a pending offset, in order.
    pub fn pending_partitions(&self, group: &str) -> BTreeSet<TopicPartition> {
        self.by_producer
            .values()
            .filter_map(|g| g.get(group))
            .flat_map(|o| o.keys().cloned())
            .collect()
    }

    /// Drops every producer's pending offset of `group`/`tp` (a plain tombstone for it).
    pub fn remove_offset(&mut self, group: &str, tp: &TopicPartition) {
        let producers: Vec<i64> = self.by_producer.keys().copied().collect();
        for p in producers {
            self.remove_for_producer(p, group, tp);
        }
    }

    /// Drops every pending offset of `group` (the group was deleted).
    pub fn remove_group(&mut self, group: &str) {
        for tp in self.pending_partitions(group) {
            self.remove_offset(group, &tp);
        }
        debug_assert!(!self.group_has_pending(group));
    }

    /// Invariant: `len` counts the offsets held and no empty map is kept.
    fn debug_check(&self) {
        debug_assert_eq!(
            self.len,
            self.by_producer
                .values()
                .flat_map(HashMap::values)
                .map(HashMap::len)
                .sum::<usize>(),
            "pending offsets are counted"
        );
        debug_assert!(
            self.by_producer
                .values()
                .all(|g| !g.is_empty() && g.values().all(|o| !o.is_empty())),
            "no empty entries are kept"
        );
    }
}

/// Ends `producer`'s transaction in one partition: on COMMIT its pending offsets become the
/// committed ones, each unless the committed offset was appended later (Kafka's
/// `completePendingTxnOffsetCommit`); on ABORT they are dropped. A group known only through
/// its pending offsets is created (Empty). Returns how many offsets were applied.
pub(super) fn complete(
    groups: &mut HashMap<String, GroupEntry>,
    txn: &mut PartitionTxnOffsets,
    producer: i64,
    commit: bool,
) -> usize {
    let pending = txn.take(producer);
    if !commit {
        return 0;
    }
    let mut applied = 0;
    for (group, offsets) in pending {
        let e = groups
            .entry(group.clone())
            .or_insert_with(|| GroupEntry::new(&group));
        for (tp, o) in offsets {
            if e.offsets.get(&tp).is_none_or(|c| c.older_than(&o)) {
                e.offsets.insert(tp, o);
                applied += 1;
            }
        }
    }
    applied
}

/// What the replay of one `__consumer_offsets` partition rebuilds.
#[derive(Default)]
pub(super) struct Loaded {
    /// Groups with their committed offsets.
    pub groups: HashMap<String, GroupEntry>,
    /// Offsets of transactions still open at the end of the log.
    pub txn: PartitionTxnOffsets,
    /// Records replayed (markers included).
    pub records: usize,
}

impl Loaded {
    /// Replays one stored batch (Kafka's `GroupMetadataManager.doLoadGroupsAndOffsets`).
    pub fn apply_batch(&mut self, batch: StoredBatch) {
        let producer = batch.producer_id;
        match batch.content {
            BatchContent::Marker(commit) => {
                self.records += 1;
                if producer >= 0 {
                    complete(&mut self.groups, &mut self.txn, producer, commit);
                }
            }
            BatchContent::Records(records) => {
                let in_txn = batch.transactional && producer >= 0;
                for rec in records {
                    self.records += 1;
                    match rec {
                        StoredRecord::Offset(g, t, p, v) if in_txn => {
                            let tp = TopicPartition::new(t, p);
                            match v {
                                Some(value) => self.txn.add(
                                    producer,
                                    &g,
                                    tp,
                                    LoggedOffset {
                                        value,
                                        log_offset: batch.base_offset,
                                    },
                                ),
                                None => self.txn.remove_for_producer(producer, &g, &tp),
                            }
                        }
                        rec => {
                            if let StoredRecord::Offset(g, t, p, None) = &rec {
                                self.txn
                                    .remove_offset(g, &TopicPartition::new(t.clone(), *p));
                            }
                            entry::apply(&mut self.groups, rec, batch.base_offset);
                        }
                    }
                }
            }
        }
    }
}

/// Replays a partition from `start` through `read` (a read of whole batches from an offset up
/// to the log end, in steps of [`REPLAY_READ_BYTES`]) until the log end. A failed read ends the
/// replay with what was read so far, and its error.
pub(super) fn replay(
    start: Offset,
    mut read: impl FnMut(Offset, usize) -> Result<ReadResult, LogError>,
) -> (Loaded, Result<(), LogError>) {
    let mut loaded = Loaded::default();
    let mut offset = start;
    loop {
        let r = match read(offset, REPLAY_READ_BYTES) {
            Ok(r) => r,
            Err(e) => return (loaded, Err(e)),
        };
        if r.records.is_empty() {
            break;
        }
        let next = last_offset_after(&r.records).unwrap_or(r.log_end_offset);
        for batch in store::decode_batches(r.records) {
            loaded.apply_batch(batch);
        }
        if next <= offset {
            break;
        }
        offset = next;
    }
    (loaded, Ok(()))
}

/// The offset after the last batch in `records`.
fn last_offset_after(records: &[u8]) -> Option<Offset> {
    let mut pos = 0usize;
    let mut next = None;
    while let Some(h) = records
        .get(pos..)
        .and_then(|r| crate::log::batch::BatchHeader::parse(r).ok())
    {
        if h.total_size() == 0 {
            break;
        }
        next = Some(Offset(h.last_offset() + 1));
        pos += h.total_size();
    }
    next
}

/// What OffsetFetch returns for one partition of a group (Kafka's `GroupMetadataManager
/// .getOffsets`): with `require_stable`, a partition some open transaction holds an offset
/// for answers UNSTABLE_OFFSET_COMMIT (the client retries); otherwise the committed offset,
/// -1 when none (pending offsets are never returned).
pub(super) fn lookup(
    entry: Option<&GroupEntry>,
    txn: Option<&PartitionTxnOffsets>,
    group: &str,
    tp: &TopicPartition,
    require_stable: bool,
) -> Committed {
    if require_stable && txn.is_some_and(|t| t.is_pending(group, tp)) {
        return Committed {
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error: kafka_protocol::error::ResponseError::UnstableOffsetCommit.code(),
        };
    }
    entry
        .and_then(|e| e.offsets.get(tp))
        .map(|o| Committed {
            offset: o.value.offset,
            leader_epoch: o.value.leader_epoch,
            metadata: o.value.metadata.clone(),
            error: 0,
        })
        .unwrap_or(Committed {
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error: 0,
        })
}

#[cfg(test)]
#[path = "txn_offsets_tests.rs"]
mod tests;
