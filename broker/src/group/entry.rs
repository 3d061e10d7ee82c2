//! One group as the coordinator holds it (membership and committed offsets), the offsets as
//! written in `__consumer_offsets`, and the replay of one stored record into them: what both
//! the coordinator and the transactional offsets (`txn_offsets.rs`) build on.

use std::collections::HashMap;
use std::time::Instant;

use super::consumer::ConsumerGroup;
use super::state::Group;
use super::store::{OffsetValue, StoredRecord};
use crate::time::now_ms;
use crate::types::TopicPartition;

/// An offset as written in `__consumer_offsets`, with where: the base offset of its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedOffset {
    /// The committed offset, metadata and time.
    pub value: OffsetValue,
    /// Base offset of the batch holding the record (Kafka's `appendedBatchOffset`).
    pub log_offset: i64,
}

impl LoggedOffset {
    /// Kafka's `CommitRecordMetadataAndOffset.olderThan`: appended before `other`.
    pub fn older_than(&self, other: &LoggedOffset) -> bool {
        self.log_offset < other.log_offset
    }
}

/// A group and its committed offsets. A group is either a classic group (`group`) or, when
/// `consumer` is set, a consumer group of the KIP-848 protocol; `group` is then Empty.
pub(crate) struct GroupEntry {
    /// Membership and state of a classic group.
    pub(crate) group: Group,
    /// The group when it uses the consumer protocol (KIP-848).
    pub(crate) consumer: Option<Box<ConsumerGroup>>,
    /// Committed offsets, with where they were appended (a committed transactional offset
    /// replaces one only if appended later).
    pub(crate) offsets: HashMap<TopicPartition, LoggedOffset>,
}

impl GroupEntry {
    /// A new Empty group without offsets.
    pub(crate) fn new(id: &str) -> GroupEntry {
        GroupEntry {
            group: Group::new(id),
            consumer: None,
            offsets: HashMap::new(),
        }
    }

    /// True when nobody is a member (of either protocol): what offset expiry, deletion and
    /// admin commits ask.
    pub(crate) fn is_empty(&self) -> bool {
        match &self.consumer {
            Some(c) => c.members.is_empty(),
            None => matches!(
                self.group.state,
                super::state::GroupState::Empty | super::state::GroupState::Dead
            ),
        }
    }

    /// When the group last became empty (ms), for offset expiry.
    pub(crate) fn empty_since_ms(&self) -> Option<i64> {
        match &self.consumer {
            Some(c) => c.empty_since_ms,
            None => self.group.empty_since_ms,
        }
    }
}

/// One committed offset for OffsetFetch.
#[derive(Debug, Clone)]
pub struct Committed {
    /// Offset (-1 when none).
    pub offset: i64,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Metadata.
    pub metadata: String,
    /// The partition's error code: UNSTABLE_OFFSET_COMMIT when the fetch requires stable
    /// offsets and a transaction holds one pending, else 0.
    pub error: i16,
}

/// Applies one stored record, from a batch starting at `log_offset`, to a group map
/// (replay).
pub(crate) fn apply(groups: &mut HashMap<String, GroupEntry>, rec: StoredRecord, log_offset: i64) {
    let now = Instant::now();
    match rec {
        StoredRecord::Offset(g, t, p, v) => {
            let e = groups
                .entry(g.clone())
                .or_insert_with(|| GroupEntry::new(&g));
            match v {
                Some(value) => {
                    e.offsets.insert(
                        TopicPartition::new(t, p),
                        LoggedOffset { value, log_offset },
                    );
                }
                None => {
                    e.offsets.remove(&TopicPartition::new(t, p));
                }
            }
        }
        StoredRecord::Group(g, Some(v)) => {
            // A classic group record makes the group classic (again).
            let offsets = groups.remove(&g).map(|e| e.offsets).unwrap_or_default();
            let empty_since = v.empty_since_ms;
            let mut group = Group::restore(
                &g,
                v.generation,
                v.protocol_type,
                v.protocol,
                v.leader,
                v.members,
                now,
            );
            group.empty_since_ms = empty_since;
            group.note_state(now_ms());
            groups.insert(
                g,
                GroupEntry {
                    group,
                    consumer: None,
                    offsets,
                },
            );
        }
        StoredRecord::Group(g, None) => {
            groups.remove(&g);
        }
        StoredRecord::ConsumerGroup(g, Some(v)) => {
            let e = groups
                .entry(g.clone())
                .or_insert_with(|| GroupEntry::new(&g));
            e.group = Group::new(&g);
            e.consumer = Some(v);
        }
        StoredRecord::ConsumerGroup(g, None) => {
            if let Some(e) = groups.get_mut(&g) {
                e.consumer = None;
            }
        }
    }
}
