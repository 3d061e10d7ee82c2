//! Idempotent producer state: per producer id, its epoch and its last five batches, to drop
//! retried duplicates and reject sequence gaps (Kafka's ProducerStateManager, without
//! transactions).

use std::collections::{HashMap, VecDeque};

use super::batch::{increment_sequence, BatchHeader};
use super::error::LogError;
use crate::types::{Offset, ProducerEpoch, ProducerId};

/// How many batches per producer are remembered for duplicate detection (Kafka's 5, matching
/// `max.in.flight.requests.per.connection`).
pub const CACHED_BATCHES: usize = 5;

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    /// The producer's current epoch.
    pub epoch: i16,
    /// Oldest first.
    pub batches: VecDeque<BatchMetadata>,
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

/// All producers of one partition.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStateManager {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks a batch a producer sent, against this state. Kafka's rules: an unknown producer
    /// may start at any sequence; an older epoch is fenced; a newer epoch must start at 0; in the
    /// same epoch a batch matching one of the cached ones is a duplicate and anything else must
    /// continue right after the last sequence.
    pub fn check(&self, h: &BatchHeader) -> Result<SequenceCheck, LogError> {
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
            _ => Ok(SequenceCheck::Append),
        }
    }

    /// Records an appended batch whose records got offsets `first_offset..=last_offset`. No
    /// checks: this is also how followers and the rebuild at open replay the log.
    pub fn update(&mut self, h: &BatchHeader, first_offset: i64, last_offset: i64) {
        if !h.has_producer_id() {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if entry.epoch != h.producer_epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
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

    /// A copy holding only the producers in `pids` (to check a request against before
    /// committing it with `merge`).
    pub fn subset(&self, pids: impl IntoIterator<Item = i64>) -> ProducerStateManager {
        let producers = pids
            .into_iter()
            .filter_map(|pid| self.producers.get(&pid).map(|e| (pid, e.clone())))
            .collect();
        ProducerStateManager { producers }
    }

    /// Takes over every producer entry of `other`.
    pub fn merge(&mut self, other: ProducerStateManager) {
        self.producers.extend(other.producers);
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
        })
    }

    /// Number of producers known.
    pub fn len(&self) -> usize {
        self.producers.len()
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
