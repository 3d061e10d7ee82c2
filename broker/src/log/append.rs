//! Appends: the leader's (validate, deduplicate, assign offsets, stamp), the leader's
//! transaction markers (`append_control`, the only way a control batch enters a leader's log)
//! and the follower's (copy as is), with segment rolling and the flush policy.
//!
//! Kafka's append origins map to methods: client appends (`append_as_leader`) keep refusing
//! control batches in `batch::validate` and check sequences; the broker's coordinators
//! (`append_as_coordinator`, Kafka's `AppendOrigin.COORDINATOR`) may write a producer's
//! transactional batch without a sequence, checked only for a stale producer epoch; markers are
//! built here from their fields (`append_control`); replication is `append_as_follower`.

use std::time::{SystemTime, UNIX_EPOCH};

use super::batch::{self, BatchHeader};
use super::checkpoint;
use super::control::{self, Marker};
use super::error::{LogError, RecordRule, RejectedRecords};
use super::producer_state::{ProducerStateManager, SequenceCheck};
use super::segment::Segment;
use super::{AppendInfo, PartitionLog};
use crate::types::{CoordinatorEpoch, LeaderEpoch, Offset, ProducerEpoch, ProducerId};

/// Attribute bit 3: the batch carries LogAppendTime.
const ATTR_LOG_APPEND_TIME: i16 = 0x08;

/// Who a leader append of data batches comes from (Kafka's `AppendOrigin` for data; markers
/// and replication have their own methods).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A producer: every validation and sequence rule.
    Client,
    /// A coordinator of this broker: sequences unchecked, producer epochs still checked.
    Coordinator,
}

impl PartitionLog {
    /// Leader append of a produce request's `records` blob (one or more batches).
    ///
    /// Validates the batches, enforces `max.message.bytes` per batch and `segment.bytes` for
    /// the blob, checks idempotent producers' sequences, assigns offsets, writes `leader_epoch`
    /// into each batch, stamps LogAppendTime if configured, rolls the segment if due, appends,
    /// records a new leader epoch and fsyncs if the flush policy says so. If every batch is a
    /// retry of one already in the log, nothing is written and the original offsets come back
    /// with `duplicate: true`; a request mixing retries and new batches is rejected.
    pub fn append_as_leader(
        &mut self,
        records: &[u8],
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.append_data(records, leader_epoch, now_ms, Origin::Client)
    }

    /// Leader append of batches a coordinator of this broker wrote (Kafka's
    /// `AppendOrigin.COORDINATOR`): the group coordinator's TxnOffsetCommit records, one
    /// transactional batch of the producer with base sequence -1 (NO_SEQUENCE).
    ///
    /// As `append_as_leader`, except: no sequence checks and no duplicate detection (the batch
    /// has no sequence), but a producer epoch older than the producer's known one is still
    /// INVALID_PRODUCER_EPOCH and a producer's batch must be transactional. The batch updates
    /// producer state like a client's, so it opens (or continues) the producer's transaction in
    /// this partition and the producer's COMMIT/ABORT marker ends it.
    pub fn append_as_coordinator(
        &mut self,
        records: &[u8],
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.append_data(records, leader_epoch, now_ms, Origin::Coordinator)
    }

    /// The leader append of data batches, for either origin.
    fn append_data(
        &mut self,
        records: &[u8],
        leader_epoch: LeaderEpoch,
        now_ms: i64,
        origin: Origin,
    ) -> Result<AppendInfo, LogError> {
        let mut batches = match origin {
            Origin::Client => batch::validate(records)?,
            Origin::Coordinator => batch::validate_as_coordinator(records)?,
        };
        if records.len() as u64 > self.config.segment_bytes {
            return Err(LogError::RecordListTooLarge {
                size: records.len(),
                max: self.config.segment_bytes,
            });
        }
        for b in &batches {
            let size = b.header.total_size();
            if size > self.config.max_message_bytes as usize {
                return Err(LogError::MessageTooLarge {
                    size,
                    max: self.config.max_message_bytes,
                });
            }
            if b.header.record_count == 0 {
                return Err(LogError::InvalidRecord(
                    "record batch holds no records".into(),
                ));
            }
        }
        if self.config.cleanup_compact {
            super::cleaner::check_keys(records, &batches)?;
        }
        let log_append = self.config.timestamp_type_log_append;
        // CreateTime batches of clients: bounds checked, unset max timestamps recomputed.
        let mut fixed_max: Vec<(usize, i64)> = Vec::new();
        if origin == Origin::Client && !log_append {
            let mut rejected = RejectedRecords::new(RecordRule::TimestampBounds);
            let mut first_index: i32 = 0;
            for (i, b) in batches.iter_mut().enumerate() {
                let bytes = records
                    .get(b.position..b.position + b.header.total_size())
                    .ok_or_else(|| LogError::CorruptMessage("batch outside the request".into()))?;
                let bounds = self.config.timestamp_bounds;
                if let Some(max) = super::timestamps::check_batch(
                    &b.header,
                    bytes,
                    bounds,
                    now_ms,
                    first_index,
                    &mut rejected,
                )? {
                    b.header.max_timestamp = max;
                    fixed_max.push((i, max));
                }
                first_index = first_index.saturating_add(b.header.record_count);
            }
            rejected.into_result()?;
        }
        let record_count: i64 = batches
            .iter()
            .map(|b| i64::from(b.header.record_count))
            .sum();

        // Sequence checks run against a copy of the producers involved, so a request rejected
        // half way leaves the state untouched.
        let log_end = self.log_end_offset().0;
        let mut staged = self
            .producers
            .subset(batches.iter().map(|b| b.header.producer_id));
        let mut next = log_end;
        let mut duplicates = Vec::new();
        for b in &mut batches {
            let outcome = match origin {
                Origin::Client => staged.check(&b.header)?,
                Origin::Coordinator => check_coordinator_batch(&staged, &b.header)?,
            };
            match outcome {
                SequenceCheck::Append => {
                    debug_assert!(b.header.last_offset_delta >= 0, "validated batch header");
                    let last = next + i64::from(b.header.last_offset_delta);
                    staged.update(&b.header, next, last);
                    b.header.base_offset = next;
                    b.header.partition_leader_epoch = leader_epoch.0;
                    if log_append {
                        b.header.max_timestamp = now_ms;
                        b.header.attributes |= ATTR_LOG_APPEND_TIME;
                    }
                    next = last + 1;
                }
                SequenceCheck::Duplicate {
                    first_offset,
                    last_offset,
                    timestamp,
                } => {
                    duplicates.push((first_offset, last_offset, timestamp));
                }
            }
        }
        debug_assert!(
            origin == Origin::Client || duplicates.is_empty(),
            "batches without sequences are never duplicates"
        );
        if let (Some(first), Some(last)) = (duplicates.first(), duplicates.last()) {
            if duplicates.len() != batches.len() {
                return Err(LogError::InvalidRecord(
                    "request mixes retried and new batches of a producer".into(),
                ));
            }
            tracing::debug!(dir = %self.dir.display(), first = first.0, last = last.1, "duplicate produce acknowledged with original offsets");
            return Ok(AppendInfo {
                first_offset: Offset(first.0),
                last_offset: Offset(last.1),
                log_append_time: if log_append { last.2 } else { -1 },
                log_start_offset: self.log_start_offset(),
                duplicate: true,
                record_count,
                bytes: 0,
            });
        }

        let last_offset = next - 1;
        self.maybe_roll(records.len(), last_offset, now_ms)?;
        let mut data = records.to_vec();
        for (i, b) in batches.iter().enumerate() {
            let slice = data
                .get_mut(b.position..b.position + b.header.total_size())
                .ok_or_else(|| LogError::CorruptMessage("batch outside the request".into()))?;
            if let Some(&(_, max)) = fixed_max.iter().find(|(at, _)| *at == i) {
                batch::set_max_timestamp(slice, max)?;
            }
            batch::set_base_offset(slice, b.header.base_offset)?;
            batch::set_partition_leader_epoch(slice, leader_epoch.0)?;
            if log_append {
                batch::set_log_append_time(slice, now_ms)?;
            }
        }
        self.note_leader_epoch(leader_epoch, log_end)?;
        let interval = self.config.index_interval_bytes;
        self.active_mut()
            .append(&data, &batches, interval, now_ms)?;
        self.producers.merge(staged);
        self.after_append(record_count, now_ms)?;
        self.debug_check_unstable();
        debug_assert_eq!(
            self.log_end_offset().0,
            last_offset + 1,
            "offsets are dense: the log ends right after the appended batches"
        );
        Ok(AppendInfo {
            first_offset: Offset(log_end),
            last_offset: Offset(last_offset),
            log_append_time: if log_append { now_ms } else { -1 },
            log_start_offset: self.log_start_offset(),
            duplicate: false,
            record_count,
            bytes: data.len(),
        })
    }

    /// Leader append of a transaction marker: ends `producer_id`'s transaction in this
    /// partition with a COMMIT (`commit`) or ABORT control batch written at the log end.
    ///
    /// Kafka's checks for a marker from the coordinator: a producer epoch older than the
    /// producer's is INVALID_PRODUCER_EPOCH, a coordinator epoch older than its last marker's is
    /// TRANSACTION_COORDINATOR_FENCED; nothing is written then. A marker for a producer without
    /// an open transaction is written and ends nothing. An ABORT that ends a transaction adds
    /// its entry to the active segment's `.txnindex`. Rolling, the leader-epoch cache and the
    /// flush policy work as for `append_as_leader`; LogAppendTime topics get the attribute.
    pub fn append_control(
        &mut self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        coordinator_epoch: CoordinatorEpoch,
        commit: bool,
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.producers
            .check_marker(producer_id, producer_epoch, coordinator_epoch)?;
        let marker = Marker {
            commit,
            coordinator_epoch,
        };
        let mut data = control::encode(producer_id, producer_epoch, marker, now_ms)?;
        let offset = self.log_end_offset().0;
        let log_append = self.config.timestamp_type_log_append;
        batch::set_base_offset(&mut data, offset)?;
        batch::set_partition_leader_epoch(&mut data, leader_epoch.0)?;
        if log_append {
            batch::set_log_append_time(&mut data, now_ms)?;
        }
        let batches = batch::validate_stored(&data)?;
        debug_assert!(
            batches.len() == 1 && batches.iter().all(|b| b.header.is_control()),
            "a marker is one control batch"
        );
        self.maybe_roll(data.len(), offset, now_ms)?;
        self.note_leader_epoch(leader_epoch, offset)?;
        let interval = self.config.index_interval_bytes;
        self.active_mut()
            .append(&data, &batches, interval, now_ms)?;
        let completed = self
            .producers
            .apply_marker(producer_id, producer_epoch, marker, offset);
        if let Some(entry) = completed.and_then(|c| c.aborted_entry()) {
            self.active_mut().append_aborted(entry)?;
        }
        self.after_append(1, now_ms)?;
        self.debug_check_unstable();
        tracing::debug!(dir = %self.dir.display(), producer_id = producer_id.0, commit, offset, ended = completed.is_some(), "transaction marker appended");
        Ok(AppendInfo {
            first_offset: Offset(offset),
            last_offset: Offset(offset),
            log_append_time: if log_append { now_ms } else { -1 },
            log_start_offset: self.log_start_offset(),
            duplicate: false,
            record_count: 1,
            bytes: data.len(),
        })
    }

    /// Records in the leader-epoch cache that `leader_epoch` starts at `start_offset` if it is
    /// new; an epoch older than the cache's latest is only logged.
    fn note_leader_epoch(
        &mut self,
        leader_epoch: LeaderEpoch,
        start_offset: i64,
    ) -> Result<(), LogError> {
        match self.epochs.latest() {
            Some(latest) if leader_epoch.0 < latest => {
                tracing::warn!(dir = %self.dir.display(), epoch = leader_epoch.0, latest, "leader append with an epoch older than the cache's");
            }
            _ => {
                if self.epochs.assign(leader_epoch.0, start_offset) {
                    self.epochs.write()?;
                }
            }
        }
        Ok(())
    }

    /// Invariant: an open transaction starts inside the log.
    fn debug_check_unstable(&self) {
        debug_assert!(
            self.producers
                .first_unstable_offset()
                .is_none_or(|f| f < self.log_end_offset().0),
            "the first unstable offset is below the log end"
        );
    }

    /// Follower append: the batches already carry offsets and leader epochs and are stored
    /// unchanged. They are checked (structure, CRC) and must start at or after the log end
    /// offset: a compacted leader's log has gaps, so a batch may begin past our end (Kafka
    /// refuses only offsets below it). The leader-epoch cache, producer state (transactions
    /// and markers included, unchecked as Kafka's replication origin) and `.txnindex` follow.
    pub fn append_as_follower(&mut self, records: &[u8]) -> Result<AppendInfo, LogError> {
        let batches = batch::validate_stored(records)?;
        let log_end = self.log_end_offset().0;
        let mut next = log_end;
        for b in &batches {
            if b.header.base_offset < next {
                return Err(LogError::UnexpectedAppendOffset {
                    expected: Offset(next),
                    received: Offset(b.header.base_offset),
                });
            }
            next = b.header.last_offset() + 1;
        }
        let now_ms = wall_clock_ms();
        self.maybe_roll(records.len(), next - 1, now_ms)?;
        let mut epochs_changed = false;
        for b in &batches {
            let epoch = b.header.partition_leader_epoch;
            if epoch >= 0 && self.epochs.latest().is_none_or(|l| epoch > l) {
                epochs_changed |= self.epochs.assign(epoch, b.header.base_offset);
            }
        }
        if epochs_changed {
            self.epochs.write()?;
        }
        let interval = self.config.index_interval_bytes;
        self.active_mut()
            .append(records, &batches, interval, now_ms)?;
        for b in &batches {
            let control = if b.header.is_control() {
                records.get(b.position..b.position + b.header.total_size())
            } else {
                None
            };
            if let Some(entry) = self.producers.replay(&b.header, control) {
                self.active_mut().append_aborted(entry)?;
            }
        }
        let record_count: i64 = batches
            .iter()
            .map(|b| i64::from(b.header.record_count))
            .sum();
        self.after_append(record_count, now_ms)?;
        Ok(AppendInfo {
            first_offset: Offset(batches.first().map_or(log_end, |b| b.header.base_offset)),
            last_offset: Offset(next - 1),
            log_append_time: -1,
            log_start_offset: self.log_start_offset(),
            duplicate: false,
            record_count,
            bytes: records.len(),
        })
    }

    /// Rolls the active segment before appending `len` bytes ending at `last_offset` if it is
    /// full (segment.bytes), old (segment.ms since its first append) or the offsets would not
    /// fit its index's relative offsets. An empty segment never rolls.
    fn maybe_roll(&mut self, len: usize, last_offset: i64, now_ms: i64) -> Result<(), LogError> {
        let active = self.active();
        if active.is_empty() {
            return Ok(());
        }
        // Index positions are 32-bit and Kafka reads them signed: cap the segment at 2 GiB.
        let limit = self.config.segment_bytes.min(i32::MAX as u64);
        let full = active.size + len as u64 > limit;
        let aged = active
            .first_append_ms
            .is_some_and(|t| now_ms.saturating_sub(t) > self.config.segment_ms);
        let overflow = last_offset - active.base > i64::from(i32::MAX);
        if full || aged || overflow {
            tracing::debug!(dir = %self.dir.display(), full, aged, overflow, "rolling segment");
            self.roll()?;
        }
        Ok(())
    }

    /// Starts a new active segment at the log end offset. The old one is sealed and fsynced, so
    /// that recovery only ever needs to look at the active segment.
    /// A segment that holds no offset yet (its base is the log end) does not roll: the new one
    /// would have its base, i.e. its file names.
    pub(super) fn roll(&mut self) -> Result<(), LogError> {
        let base = self.log_end_offset().0;
        if base == self.active().base {
            return Ok(());
        }
        let old = self.active_mut();
        old.seal()?;
        old.flush()?;
        let segment = Segment::create(&self.dir, base, &self.files)?;
        checkpoint::sync_dir(&self.dir)?;
        self.segments.push(segment);
        Ok(())
    }

    /// Applies flush.messages and flush.ms after an append of `records` records.
    fn after_append(&mut self, records: i64, now_ms: i64) -> Result<(), LogError> {
        self.unflushed_messages = self.unflushed_messages.saturating_add(records);
        let by_count = self.unflushed_messages >= self.config.flush_messages;
        let by_time = now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_ms;
        if by_count || by_time {
            self.flush()?;
            self.last_flush_ms = now_ms;
        }
        Ok(())
    }
}

/// The checks a coordinator's batch gets instead of the client's sequence rules (Kafka's
/// `ProducerAppendInfo` for the COORDINATOR origin): a producer's batch must be transactional
/// (the only producer batches a coordinator writes) and not older than the producer's epoch.
fn check_coordinator_batch(
    producers: &ProducerStateManager,
    h: &BatchHeader,
) -> Result<SequenceCheck, LogError> {
    if !h.has_producer_id() {
        return Ok(SequenceCheck::Append);
    }
    if !h.is_transactional() {
        return Err(LogError::InvalidRecord(format!(
            "a coordinator batch of producer {} must be transactional",
            h.producer_id
        )));
    }
    let pid = ProducerId(h.producer_id);
    if let Some(known) = producers.snapshot(pid) {
        if h.producer_epoch < known.producer_epoch.0 {
            return Err(LogError::InvalidProducerEpoch {
                producer_id: pid,
                current: known.producer_epoch,
                received: ProducerEpoch(h.producer_epoch),
            });
        }
    }
    Ok(SequenceCheck::Append)
}

/// Milliseconds since the Unix epoch, for follower appends (which get no clock from the caller).
fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::KafkaError;
    use crate::log::tests::{build, idempotent, must, open, tempdir, Spec};
    use crate::log::LogConfig;

    /// A transactional batch of `n` records without a sequence, as the group coordinator
    /// writes TxnOffsetCommit records.
    fn unsequenced_txn(pid: i64, epoch: i16, n: usize) -> Vec<u8> {
        build(Spec {
            records: n,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: batch::NO_SEQUENCE,
            transactional: true,
            ..Spec::default()
        })
    }

    fn code<T>(r: Result<T, LogError>) -> Option<i16> {
        r.err().map(|e| KafkaError::from(e).code())
    }

    #[test]
    fn coordinator_batches_without_sequence_open_the_producers_transaction() {
        let dir = tempdir();
        let mut log = open(dir.path(), LogConfig::default());
        let batch = unsequenced_txn(7, 0, 2);
        assert_eq!(
            batch::validate_stored(&batch).map(|b| b.len()).ok(),
            Some(1),
            "one batch"
        );
        assert_eq!(
            code(log.append_as_leader(&batch, LeaderEpoch(0), 1_000)),
            Some(87),
            "a client batch without a sequence stays refused (INVALID_RECORD)"
        );
        assert_eq!(log.log_end_offset(), Offset(0));

        let info = must(log.append_as_coordinator(&batch, LeaderEpoch(0), 1_000));
        assert_eq!((info.first_offset.0, info.last_offset.0), (0, 1));
        assert_eq!(
            log.first_unstable_offset(),
            Some(Offset(0)),
            "transaction open"
        );
        // A second commit in the same transaction continues it.
        let info = must(log.append_as_coordinator(&batch, LeaderEpoch(0), 1_000));
        assert_eq!(info.first_offset, Offset(2));
        assert_eq!(log.first_unstable_offset(), Some(Offset(0)));
        assert!(!info.duplicate, "no duplicate detection without sequences");

        must(log.append_control(
            ProducerId(7),
            ProducerEpoch(0),
            CoordinatorEpoch(0),
            true,
            LeaderEpoch(0),
            2_000,
        ));
        assert_eq!(log.first_unstable_offset(), None, "the marker ended it");

        // A bumped epoch (the coordinator's fence) leaves the old one stale.
        must(log.append_control(
            ProducerId(7),
            ProducerEpoch(1),
            CoordinatorEpoch(0),
            false,
            LeaderEpoch(0),
            2_000,
        ));
        assert_eq!(
            code(log.append_as_coordinator(&batch, LeaderEpoch(0), 3_000)),
            Some(47),
            "INVALID_PRODUCER_EPOCH"
        );
        let end = log.log_end_offset();
        must(log.append_as_coordinator(&unsequenced_txn(7, 1, 1), LeaderEpoch(0), 3_000));
        assert_eq!(log.first_unstable_offset(), Some(end));
    }

    #[test]
    fn coordinator_appends_keep_the_other_rules() {
        let dir = tempdir();
        let mut log = open(dir.path(), LogConfig::default());
        // A producer batch must be transactional.
        let plain_unsequenced = build(Spec {
            producer_id: 3,
            producer_epoch: 0,
            base_sequence: batch::NO_SEQUENCE,
            ..Spec::default()
        });
        assert_eq!(
            code(log.append_as_coordinator(&plain_unsequenced, LeaderEpoch(0), 1)),
            Some(87)
        );
        // Only NO_SEQUENCE, not any negative sequence.
        let odd = build(Spec {
            producer_id: 3,
            producer_epoch: 0,
            base_sequence: -5,
            transactional: true,
            ..Spec::default()
        });
        assert_eq!(
            code(log.append_as_coordinator(&odd, LeaderEpoch(0), 1)),
            Some(87)
        );
        // Control batches only through append_control.
        let marker = must(control::encode(
            ProducerId(3),
            ProducerEpoch(0),
            Marker {
                commit: true,
                coordinator_epoch: CoordinatorEpoch(0),
            },
            1,
        ));
        assert_eq!(
            code(log.append_as_coordinator(&marker, LeaderEpoch(0), 1)),
            Some(87)
        );
        assert_eq!(batch::marker_commits(&marker), Some(true));
        // An idempotent, non-transactional producer batch is not a coordinator's either.
        assert_eq!(
            code(log.append_as_coordinator(&idempotent(4, 0, 0, 1), LeaderEpoch(0), 1)),
            Some(87)
        );
        // The coordinator's own records (no producer) pass.
        must(log.append_as_coordinator(&build(Spec::default()), LeaderEpoch(0), 1));
        assert_eq!(log.log_end_offset(), Offset(1));
        assert_eq!(log.first_unstable_offset(), None);
    }
}
