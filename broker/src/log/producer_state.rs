//! Producer state: per producer id, its epoch and its last five batches, to drop retried
//! duplicates and reject sequence gaps, plus its open transaction and the coordinator epoch of
//! its last marker (Kafka's ProducerStateManager / ProducerAppendInfo).
//!
//! Transactions, as the log sees them: a producer's first transactional data batch opens its
//! transaction at that batch's base offset; further transactional batches continue it; a
//! marker (control batch, `control`) ends it. While it is open a non-transactional batch of the
//! producer is refused (INVALID_TXN_STATE). The partition's open transactions are kept ordered
//! by first offset, so the first unstable offset (the start of the oldest open transaction,
//! where the last stable offset stops) is the smallest key. Ending an aborted transaction
//! yields its `.txnindex` entry, with Kafka's lastStableOffset: the first offset of the
//! earliest *other* open transaction, else the marker's offset + 1.
//!
//! A completed transaction keeps holding the last stable offset until its marker is below the
//! high watermark (Kafka's `unreplicatedTxns`): a consumer must not read a transaction as
//! decided while the marker that decided it could still be lost with the leader. Completed
//! transactions are therefore kept (first offset, marker offset) until the partition reports a
//! high watermark past the marker (`on_high_watermark`). The log itself has no high watermark,
//! so every LSO question takes it as an argument (`first_unstable_offset_at`).
//!
//! Limit of that list (`unreplicated_bound`, a bound by the log rather than a constant): after
//! `on_high_watermark(hw)` it holds at most one entry per marker in `[hw, LEO)`, the
//! un-replicated tail; entries whose marker is below the high watermark are never needed again.
//! Between two reports it may also hold entries the high watermark has passed (they are ignored,
//! never wrong). Right after a rebuild (open, truncation) it holds every completed transaction of
//! the log until the partition reports its high watermark, which it does as soon as it knows it.
//! Entries another one makes redundant (an earlier marker *and* a later or equal first offset)
//! are dropped at once, so overlapping transactions cost one entry.
//!
//! Not here yet: producer expiry (no entry is ever dropped).

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::batch::{increment_sequence, BatchHeader};
use super::control::{self, Marker};
use super::error::LogError;
use super::txn_index::AbortedTxn;
use crate::types::{CoordinatorEpoch, Offset, ProducerEpoch, ProducerId};

/// Coordinator epoch of a producer no marker has been seen for (Kafka's -1).
const NO_COORDINATOR_EPOCH: i32 = -1;

/// How many batches per producer are remembered for duplicate detection (Kafka's 5, matching
/// `max.in.flight.requests.per.connection`).
pub const CACHED_BATCHES: usize = 5;

/// Capacity (in entries) of the completed-transaction list below which it is never shrunk:
/// shrinking small buffers would only churn the allocator.
const SHRINK_ABOVE: usize = 64;

/// One remembered batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMetadata {
    /// Sequence of the batch's first record.
    pub first_seq: i32,
    /// Sequence of its last record.
    pub last_seq: i32,
    /// Offset its first record got.
    pub first_offset: i64,
    /// Offset its last record got.
    pub last_offset: i64,
    /// Its maxTimestamp (the append time under LogAppendTime).
    pub timestamp: i64,
}

/// The state of one producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    /// The producer's current epoch.
    pub epoch: i16,
    /// Oldest first.
    pub batches: VecDeque<BatchMetadata>,
    /// Coordinator epoch of its last marker, -1 before the first.
    pub coordinator_epoch: i32,
    /// First offset of its open transaction, if one is open.
    pub txn_first_offset: Option<i64>,
    /// A marker set the epoch and no batch came since: the next batch at that epoch starts
    /// at sequence 0. Transactions v2 bumps the epoch with every marker, and the producer
    /// restarts its sequences at the new epoch (Kafka's `checkSequence` with no batch
    /// metadata).
    pub sequence_reset: bool,
}

impl Default for ProducerEntry {
    fn default() -> Self {
        ProducerEntry {
            epoch: 0,
            batches: VecDeque::new(),
            coordinator_epoch: NO_COORDINATOR_EPOCH,
            txn_first_offset: None,
            sequence_reset: false,
        }
    }
}

/// A transaction a marker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompletedTxn {
    /// The producer.
    pub producer_id: i64,
    /// Offset of its first batch.
    pub first_offset: i64,
    /// Offset of the marker.
    pub last_offset: i64,
    /// ABORT (true) or COMMIT.
    pub aborted: bool,
    /// Kafka's lastStableOffset for the `.txnindex` entry (module doc).
    pub last_stable_offset: i64,
}

impl CompletedTxn {
    /// The `.txnindex` entry of an aborted transaction; `None` for a commit.
    pub fn aborted_entry(&self) -> Option<AbortedTxn> {
        self.aborted.then_some(AbortedTxn {
            producer_id: ProducerId(self.producer_id),
            first_offset: Offset(self.first_offset),
            last_offset: Offset(self.last_offset),
            last_stable_offset: Offset(self.last_stable_offset),
        })
    }
}

/// What a producer's latest state looks like, for InitProducerId and DescribeProducers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerEntrySnapshot {
    /// The producer id.
    pub producer_id: ProducerId,
    /// Its current epoch.
    pub producer_epoch: ProducerEpoch,
    /// Sequence of its last appended record, -1 when none.
    pub last_sequence: i32,
    /// Offset of its last appended record, -1 when none.
    pub last_offset: Offset,
    /// maxTimestamp of its last appended batch, -1 when none.
    pub last_timestamp: i64,
    /// Coordinator epoch of its last transaction marker, -1 when none.
    pub coordinator_epoch: CoordinatorEpoch,
    /// First offset of its open transaction, if one is open.
    pub current_txn_start_offset: Option<Offset>,
}

/// The outcome of checking one batch against producer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Not an idempotent batch, or a new in-order one: append it.
    Append,
    /// A retry of a batch already in the log at these offsets, with its timestamp.
    Duplicate {
        first_offset: i64,
        last_offset: i64,
        timestamp: i64,
    },
}

/// The limit on completed transactions held after `on_high_watermark(high_watermark)` in a
/// log ending at `log_end`: each one's marker is a distinct offset of the un-replicated tail
/// `[high_watermark, log_end)`, so there are at most that many.
pub(crate) fn unreplicated_bound(high_watermark: i64, log_end: i64) -> usize {
    usize::try_from(log_end.saturating_sub(high_watermark)).unwrap_or(0)
}

/// A decided transaction whose marker may not be replicated yet: it holds the last stable
/// offset at `first_offset` while the high watermark is at or below `marker_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnreplicatedTxn {
    /// Offset of the transaction's first batch.
    pub first_offset: i64,
    /// Offset of its marker.
    pub marker_offset: i64,
}

/// All producers of one partition.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: first offset → producer id. Mirrors the entries'
    /// `txn_first_offset` exactly.
    ongoing: BTreeMap<i64, i64>,
    /// Completed transactions whose marker may still be at or above the high watermark, in
    /// marker order, both offsets strictly increasing front to back (dominated entries are
    /// dropped on insert). Bounded by `unreplicated_bound` (module doc).
    unreplicated: VecDeque<UnreplicatedTxn>,
}

impl ProducerStateManager {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks a batch a producer sent, against this state. Kafka's rules: an unknown producer
    /// may start at any sequence; an older epoch is fenced; a newer epoch must start at 0; in the
    /// same epoch a batch matching one of the cached ones is a duplicate and anything else must
    /// continue right after the last sequence. Then, for a batch to append: a non-transactional
    /// batch of a producer with an open transaction is INVALID_TXN_STATE (a retry of an
    /// already appended batch is still acknowledged as a duplicate, as in Kafka).
    pub fn check(&self, h: &BatchHeader) -> Result<SequenceCheck, LogError> {
        let outcome = self.check_sequence(h)?;
        let open_txn = h.has_producer_id()
            && self
                .producers
                .get(&h.producer_id)
                .is_some_and(|e| e.txn_first_offset.is_some());
        if outcome == SequenceCheck::Append && open_txn && !h.is_transactional() {
            return Err(LogError::InvalidTxnState {
                producer_id: ProducerId(h.producer_id),
            });
        }
        Ok(outcome)
    }

    /// The epoch and sequence half of `check`.
    fn check_sequence(&self, h: &BatchHeader) -> Result<SequenceCheck, LogError> {
        if !h.has_producer_id() {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        let pid = ProducerId(h.producer_id);
        if h.producer_epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch {
                producer_id: pid,
                current: ProducerEpoch(entry.epoch),
                received: ProducerEpoch(h.producer_epoch),
            });
        }
        if h.producer_epoch > entry.epoch {
            if h.base_sequence != 0 {
                return Err(LogError::OutOfOrderSequence {
                    producer_id: pid,
                    expected: 0,
                    received: h.base_sequence,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        let last_seq = h.last_sequence();
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
        {
            return Ok(SequenceCheck::Duplicate {
                first_offset: dup.first_offset,
                last_offset: dup.last_offset,
                timestamp: dup.timestamp,
            });
        }
        match entry.batches.back() {
            Some(last) if increment_sequence(last.last_seq, 1) != h.base_sequence => {
                Err(LogError::OutOfOrderSequence {
                    producer_id: pid,
                    expected: increment_sequence(last.last_seq, 1),
                    received: h.base_sequence,
                })
            }
            None if entry.sequence_reset && h.base_sequence != 0 => {
                Err(LogError::OutOfOrderSequence {
                    producer_id: pid,
                    expected: 0,
                    received: h.base_sequence,
                })
            }
            _ => Ok(SequenceCheck::Append),
        }
    }

    /// Records an appended batch whose records got offsets `first_offset..=last_offset`. No
    /// checks: this is also how followers and the rebuild at open replay the log. A
    /// transactional batch opens the producer's transaction if none is open. Markers go
    /// through `apply_marker` (or `replay`), never here.
    pub fn update(&mut self, h: &BatchHeader, first_offset: i64, last_offset: i64) {
        debug_assert!(!h.is_control(), "markers are applied with apply_marker");
        if !h.has_producer_id() {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.is_transactional() && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(first_offset);
            self.ongoing.insert(first_offset, h.producer_id);
        }
        if entry.epoch != h.producer_epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.sequence_reset = false;
        entry.batches.push_back(BatchMetadata {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            first_offset,
            last_offset,
            timestamp: h.max_timestamp,
        });
        while entry.batches.len() > CACHED_BATCHES {
            entry.batches.pop_front();
        }
    }

    /// Checks a marker of `producer_id` at `producer_epoch` from a coordinator at
    /// `coordinator_epoch` (Kafka's `appendEndTxnMarker`): an epoch older than the producer's
    /// is INVALID_PRODUCER_EPOCH, a coordinator epoch older than its last marker's is
    /// TRANSACTION_COORDINATOR_FENCED. A producer unknown here, or without an open
    /// transaction, may receive a marker (it is written and ends nothing).
    pub fn check_marker(
        &self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        coordinator_epoch: CoordinatorEpoch,
    ) -> Result<(), LogError> {
        let Some(entry) = self.producers.get(&producer_id.0) else {
            return Ok(());
        };
        if producer_epoch.0 < entry.epoch {
            return Err(LogError::InvalidProducerEpoch {
                producer_id,
                current: ProducerEpoch(entry.epoch),
                received: producer_epoch,
            });
        }
        if entry.coordinator_epoch > coordinator_epoch.0 {
            return Err(LogError::TransactionCoordinatorFenced {
                producer_id,
                current: CoordinatorEpoch(entry.coordinator_epoch),
                received: coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Records a marker written at `offset`. No checks (`check_marker` is the leader's). The
    /// producer takes the marker's epochs and its open transaction, if any, ends: returned
    /// with its lastStableOffset computed before it leaves the open set.
    pub fn apply_marker(
        &mut self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        marker: Marker,
        offset: i64,
    ) -> Option<CompletedTxn> {
        let pid = producer_id.0;
        let other_open = self
            .ongoing
            .iter()
            .find(|&(_, &p)| p != pid)
            .map(|(&first, _)| first);
        let known = self.producers.contains_key(&pid);
        let entry = self.producers.entry(pid).or_default();
        if entry.epoch != producer_epoch.0 {
            // Only a producer whose sequences are known here restarts them: one first seen
            // through its marker (its data gone to retention, or never here) may go on at any
            // sequence, as Kafka accepts from a producer it has no batches of.
            entry.sequence_reset = known && (!entry.batches.is_empty() || entry.sequence_reset);
            entry.epoch = producer_epoch.0;
            entry.batches.clear();
        }
        entry.coordinator_epoch = marker.coordinator_epoch.0;
        let first_offset = entry.txn_first_offset.take()?;
        let removed = self.ongoing.remove(&first_offset);
        debug_assert_eq!(removed, Some(pid), "open transactions mirror the entries");
        debug_assert!(
            first_offset < offset,
            "a marker follows its transaction's data"
        );
        self.note_completed(UnreplicatedTxn {
            first_offset,
            marker_offset: offset,
        });
        Some(CompletedTxn {
            producer_id: pid,
            first_offset,
            last_offset: offset,
            aborted: !marker.commit,
            last_stable_offset: other_open.unwrap_or(offset + 1),
        })
    }

    /// Replays one stored batch (rebuild at open, follower append, truncation): data batches
    /// as `update`, control batches by decoding their marker from `batch` (the whole stored
    /// batch; only needed for control batches). Returns the `.txnindex` entry if the batch is
    /// an ABORT marker that ended a transaction. A control batch that is not a readable
    /// transaction marker is skipped with a warning.
    pub fn replay(&mut self, h: &BatchHeader, batch: Option<&[u8]>) -> Option<AbortedTxn> {
        if !h.is_control() {
            self.update(h, h.base_offset, h.last_offset());
            return None;
        }
        if !h.has_producer_id() {
            return None;
        }
        let Some(marker) = batch.and_then(control::decode) else {
            tracing::warn!(
                offset = h.base_offset,
                producer_id = h.producer_id,
                "control batch without a readable transaction marker; skipped"
            );
            return None;
        };
        self.apply_marker(
            ProducerId(h.producer_id),
            ProducerEpoch(h.producer_epoch),
            marker,
            h.base_offset,
        )?
        .aborted_entry()
    }

    /// Start of the oldest open transaction (Kafka's firstUndecidedOffset): nothing at or after
    /// it is stable yet, whatever the high watermark.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Kafka's firstUnstableOffset with the high watermark at `high_watermark`: the start of
    /// the oldest open transaction or of the oldest completed one whose marker is not below
    /// the high watermark. Entries the high watermark already passed are ignored, pruned or not.
    pub fn first_unstable_offset_at(&self, high_watermark: i64) -> Option<i64> {
        // Both offsets increase front to back: the first entry still held is the oldest.
        let completed = self
            .unreplicated
            .iter()
            .find(|t| t.marker_offset >= high_watermark)
            .map(|t| t.first_offset);
        match (self.first_unstable_offset(), completed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The high watermark reached `high_watermark`: completed transactions whose marker is below
    /// it are replicated and stop holding the last stable offset (Kafka's
    /// `onHighWatermarkUpdated`). Also gives back the memory a rebuild's backlog took.
    pub fn on_high_watermark(&mut self, high_watermark: i64) {
        let before = self.unreplicated.len();
        while self
            .unreplicated
            .front()
            .is_some_and(|t| t.marker_offset < high_watermark)
        {
            self.unreplicated.pop_front();
        }
        // A rebuild can leave a large backlog; keep the allocation near what is left.
        if before != self.unreplicated.len()
            && self.unreplicated.capacity() > SHRINK_ABOVE.max(4 * self.unreplicated.len())
        {
            self.unreplicated.shrink_to_fit();
        }
    }

    /// Completed transactions still held for the last stable offset (tests, the invariant).
    pub fn unreplicated_len(&self) -> usize {
        self.unreplicated.len()
    }

    /// Records a decided transaction until the high watermark passes its marker. An entry with
    /// an earlier marker and a first offset at or after the new one's can never be the oldest
    /// one held (whenever it is held, the new one is too and starts no later): dropped.
    fn note_completed(&mut self, txn: UnreplicatedTxn) {
        debug_assert!(
            self.unreplicated
                .back()
                .is_none_or(|b| b.marker_offset < txn.marker_offset),
            "markers are applied in log order"
        );
        while self.unreplicated.back().is_some_and(|b| {
            b.first_offset >= txn.first_offset && b.marker_offset <= txn.marker_offset
        }) {
            self.unreplicated.pop_back();
        }
        debug_assert!(
            self.unreplicated
                .back()
                .is_none_or(|b| b.first_offset < txn.first_offset),
            "both offsets increase front to back"
        );
        self.unreplicated.push_back(txn);
    }

    /// A copy holding only the producers in `pids` (to check a request against before
    /// committing it with `merge`).
    pub fn subset(&self, pids: impl IntoIterator<Item = i64>) -> ProducerStateManager {
        let producers: HashMap<i64, ProducerEntry> = pids
            .into_iter()
            .filter_map(|pid| self.producers.get(&pid).map(|e| (pid, e.clone())))
            .collect();
        let ongoing = producers
            .iter()
            .filter_map(|(&pid, e)| e.txn_first_offset.map(|f| (f, pid)))
            .collect();
        // Staged data batches never complete a transaction: the completed ones stay here.
        ProducerStateManager {
            producers,
            ongoing,
            unreplicated: VecDeque::new(),
        }
    }

    /// Takes over every producer entry of `other` (and their open transactions).
    pub fn merge(&mut self, other: ProducerStateManager) {
        debug_assert!(
            other.unreplicated.is_empty(),
            "a staged state holds data batches only, which complete no transaction"
        );
        for (pid, entry) in other.producers {
            let old = self.producers.get(&pid).and_then(|e| e.txn_first_offset);
            if let Some(first) = old {
                self.ongoing.remove(&first);
            }
            if let Some(first) = entry.txn_first_offset {
                self.ongoing.insert(first, pid);
            }
            self.producers.insert(pid, entry);
        }
    }

    /// The latest state of `pid`.
    pub fn snapshot(&self, pid: ProducerId) -> Option<ProducerEntrySnapshot> {
        let entry = self.producers.get(&pid.0)?;
        let last = entry.batches.back();
        Some(ProducerEntrySnapshot {
            producer_id: pid,
            producer_epoch: ProducerEpoch(entry.epoch),
            last_sequence: last.map_or(-1, |b| b.last_seq),
            last_offset: Offset(last.map_or(-1, |b| b.last_offset)),
            last_timestamp: last.map_or(-1, |b| b.timestamp),
            coordinator_epoch: CoordinatorEpoch(entry.coordinator_epoch),
            current_txn_start_offset: entry.txn_first_offset.map(Offset),
        })
    }

    /// Number of producers known.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// The latest state of every producer, by producer id (DescribeProducers).
    pub fn snapshots(&self) -> Vec<ProducerEntrySnapshot> {
        let mut pids: Vec<i64> = self.producers.keys().copied().collect();
        pids.sort_unstable();
        pids.into_iter()
            .filter_map(|pid| self.snapshot(ProducerId(pid)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 49,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 7,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: count,
        }
    }

    #[test]
    fn sequence_rules() {
        let mut s = ProducerStateManager::new();
        let h = header(1, 0, 5, 3);
        assert_eq!(
            s.check(&h).ok(),
            Some(SequenceCheck::Append),
            "unknown producer starts anywhere"
        );
        s.update(&h, 10, 12);
        let dup = SequenceCheck::Duplicate {
            first_offset: 10,
            last_offset: 12,
            timestamp: 7,
        };
        assert_eq!(s.check(&h).ok(), Some(dup));
        assert!(matches!(
            s.check(&header(1, 0, 9, 1)),
            Err(LogError::OutOfOrderSequence { expected: 8, .. })
        ));
        assert_eq!(
            s.check(&header(1, 0, 8, 1)).ok(),
            Some(SequenceCheck::Append)
        );
        assert!(matches!(
            s.check(&header(1, 1, 3, 1)),
            Err(LogError::OutOfOrderSequence { .. })
        ));
        assert_eq!(
            s.check(&header(1, 1, 0, 1)).ok(),
            Some(SequenceCheck::Append)
        );
        s.update(&header(1, 1, 0, 1), 13, 13);
        assert!(matches!(
            s.check(&header(1, 0, 8, 1)),
            Err(LogError::InvalidProducerEpoch { .. })
        ));
        assert_eq!(
            s.check(&header(-1, -1, -1, 1)).ok(),
            Some(SequenceCheck::Append)
        );
        let snap = s
            .snapshot(ProducerId(1))
            .map(|p| (p.producer_epoch.0, p.last_sequence, p.last_offset.0));
        assert_eq!(snap, Some((1, 0, 13)));
    }

    #[test]
    fn keeps_five_batches_and_wraps_sequences() {
        let mut s = ProducerStateManager::new();
        for i in 0..7 {
            s.update(&header(2, 0, i, 1), i64::from(i), i64::from(i));
        }
        assert!(
            matches!(
                s.check(&header(2, 0, 1, 1)),
                Err(LogError::OutOfOrderSequence { .. })
            ),
            "evicted batch is not a duplicate"
        );
        assert!(matches!(
            s.check(&header(2, 0, 2, 1)),
            Ok(SequenceCheck::Duplicate {
                first_offset: 2,
                ..
            })
        ));
        s.update(&header(3, 0, i32::MAX, 1), 0, 0);
        assert_eq!(
            s.check(&header(3, 0, 0, 1)).ok(),
            Some(SequenceCheck::Append),
            "sequence wraps to 0"
        );
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    }
}
