//! Everything that removes data or ends the log's life: DeleteRecords, retention, truncation,
//! flush, close and delete.

use super::checkpoint;
use super::control::MAX_CONTROL_BATCH_BYTES;
use super::error::LogError;
use super::producer_state::ProducerStateManager;
use super::segment::Segment;
use super::txn_index::AbortedTxn;
use super::{PartitionLog, CLEAN_SHUTDOWN_FILE};
use crate::types::Offset;

impl PartitionLog {
    /// DeleteRecords: moves the log start offset up to `offset`, deleting the segments wholly
    /// below it. `limit` is the high watermark: a larger `offset` is OffsetOutOfRange. Returns
    /// the new log start offset (unchanged if `offset` is not above it).
    pub fn delete_records_before(
        &mut self,
        offset: Offset,
        limit: Offset,
    ) -> Result<Offset, LogError> {
        let end = self.log_end_offset().0;
        if offset.0 < 0 || offset.0 > limit.0 || offset.0 > end {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                start: self.log_start_offset(),
                end: limit,
            });
        }
        if offset.0 > self.log_start_offset {
            self.log_start_offset = offset.0;
            self.delete_segments_below_log_start()?;
            self.after_log_start_moved()?;
        }
        Ok(self.log_start_offset())
    }

    /// Retention: rolls the active segment if segment.ms has passed since its first append, then,
    /// when `cleanup.policy` contains `delete`, deletes the oldest segments (never the active one)
    /// while their largest timestamp is more than retention.ms old, then while the log stays at
    /// or above retention.bytes without them. Advances the log start offset. Returns how many
    /// segments were deleted. Compaction is `compact`.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        let active = self.active();
        if !active.is_empty()
            && active
                .first_append_ms
                .is_some_and(|t| now_ms.saturating_sub(t) > self.config.segment_ms)
        {
            self.roll()?;
        }
        let mut deleted = 0;
        let delete = self.config.cleanup_delete;
        if delete && self.config.retention_ms >= 0 {
            let cutoff = self.config.retention_ms;
            while self.segments.len() > 1
                && self
                    .segments
                    .first()
                    .is_some_and(|s| now_ms.saturating_sub(s.largest_timestamp()) > cutoff)
            {
                self.delete_oldest("retention.ms")?;
                deleted += 1;
            }
        }
        if delete && self.config.retention_bytes >= 0 {
            let mut excess =
                i64::try_from(self.size_bytes()).unwrap_or(i64::MAX) - self.config.retention_bytes;
            while self.segments.len() > 1 {
                let size = self
                    .segments
                    .first()
                    .map_or(0, |s| i64::try_from(s.size).unwrap_or(i64::MAX));
                if excess - size < 0 {
                    break;
                }
                excess -= size;
                self.delete_oldest("retention.bytes")?;
                deleted += 1;
            }
        }
        deleted += self.delete_segments_below_log_start()?;
        if deleted > 0 {
            let first_base = self
                .segments
                .first()
                .map_or(self.log_start_offset, |s| s.base);
            self.log_start_offset = self.log_start_offset.max(first_base);
            self.after_log_start_moved()?;
        }
        Ok(deleted)
    }

    /// Truncates the log to `offset` (a follower diverged from its leader): drops every batch at
    /// or after it and fixes the indexes, leader-epoch cache and producer state. Truncation
    /// works on whole batches, so a batch straddling `offset` goes too. Below the log start
    /// the whole log is emptied and restarts at `offset`.
    pub fn truncate_to(&mut self, offset: Offset) -> Result<(), LogError> {
        let offset = offset.0;
        if offset >= self.log_end_offset().0 {
            return Ok(());
        }
        if offset < self.log_start_offset {
            return self.truncate_fully(offset.max(0));
        }
        while self.segments.len() > 1 && self.segments.last().is_some_and(|s| s.base > offset) {
            if let Some(s) = self.segments.pop() {
                s.delete()?;
            }
        }
        let interval = self.config.index_interval_bytes;
        let log_start = self.log_start_offset;
        let active = self.active_mut();
        match active.find(offset)? {
            Some((pos, h)) => {
                let next = offset.min(h.base_offset).max(log_start);
                active.truncate_at(pos, next, interval)?;
            }
            // The offset falls in a gap after the segment's last batch: nothing to cut.
            None => active.next_offset = offset,
        }
        checkpoint::sync_dir(&self.dir)?;
        let end = self.log_end_offset().0;
        self.truncate_cleaner_checkpoint(end)?;
        if self.epochs.truncate_from_end(end) {
            self.epochs.write()?;
        }
        self.rebuild_producer_state()?;
        tracing::info!(dir = %self.dir.display(), requested = offset, log_end = end, "log truncated");
        Ok(())
    }

    /// fsyncs every segment written since the last flush.
    pub fn flush(&mut self) -> Result<(), LogError> {
        for segment in &mut self.segments {
            segment.flush()?;
        }
        self.unflushed_messages = 0;
        Ok(())
    }

    /// Flushes and leaves the clean-shutdown marker, so the next open skips recovery.
    pub fn close(mut self) -> Result<(), LogError> {
        self.flush()?;
        let marker = std::fs::File::create(self.dir.join(CLEAN_SHUTDOWN_FILE))?;
        marker.sync_all()?;
        checkpoint::sync_dir(&self.dir)
    }

    /// Deletes the partition directory and everything in it (DeleteTopics).
    pub fn delete(self) -> Result<(), LogError> {
        let dir = self.dir.clone();
        drop(self);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Empties the log and restarts it at `offset`.
    fn truncate_fully(&mut self, offset: i64) -> Result<(), LogError> {
        // The new active segment exists before anything is deleted, so a failure part way
        // never leaves the log without one.
        let interval = self.config.index_interval_bytes;
        match self.segments.iter_mut().find(|s| s.base == offset) {
            Some(segment) => segment.truncate_at(0, offset, interval)?,
            None => {
                let fresh = Segment::create(&self.dir, offset, &self.files)?;
                self.segments.push(fresh);
            }
        }
        let (keep, old): (Vec<Segment>, Vec<Segment>) = std::mem::take(&mut self.segments)
            .into_iter()
            .partition(|s| s.base == offset);
        self.segments = keep;
        for segment in old {
            segment.delete()?;
        }
        checkpoint::sync_dir(&self.dir)?;
        self.log_start_offset = offset;
        self.truncate_cleaner_checkpoint(offset)?;
        if self.epochs.truncate_from_end(i64::MIN) {
            self.epochs.write()?;
        }
        self.producers = ProducerStateManager::new();
        checkpoint::write_log_start(&self.dir, offset)?;
        tracing::info!(dir = %self.dir.display(), offset, "log emptied and restarted");
        Ok(())
    }

    /// Deletes the oldest segment (never the active one: callers keep at least two).
    fn delete_oldest(&mut self, reason: &str) -> Result<(), LogError> {
        if self.segments.len() < 2 {
            return Ok(());
        }
        let segment = self.segments.remove(0);
        tracing::info!(dir = %self.dir.display(), base = segment.base, size = segment.size, reason, "deleting segment");
        segment.delete()
    }

    /// Deletes segments whose data lies wholly below the log start offset.
    fn delete_segments_below_log_start(&mut self) -> Result<usize, LogError> {
        let mut deleted = 0;
        while self
            .segments
            .get(1)
            .is_some_and(|next| next.base <= self.log_start_offset)
        {
            self.delete_oldest("log start offset")?;
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Persists a new log start offset and trims the leader-epoch cache to it.
    fn after_log_start_moved(&mut self) -> Result<(), LogError> {
        checkpoint::write_log_start(&self.dir, self.log_start_offset)?;
        if self.epochs.truncate_from_start(self.log_start_offset) {
            self.epochs.write()?;
        }
        Ok(())
    }

    /// Replays every batch (headers, and the record of each marker) into a fresh producer
    /// state, so a transaction whose marker was truncated is open again. The segments'
    /// `.txnindex` files were cut at the same offset and stay as they are (a replay from a
    /// retained start could only differ in first offsets below the log start).
    fn rebuild_producer_state(&mut self) -> Result<(), LogError> {
        self.producers = self.replay_all()?.producers;
        Ok(())
    }

    /// Replays every batch (headers, and the record of each marker) as open does: the
    /// producer state it yields and each segment's aborted transactions, in segment order.
    pub(super) fn replay_all(&self) -> Result<Replayed, LogError> {
        let mut producers = ProducerStateManager::new();
        let mut aborted = Vec::with_capacity(self.segments.len());
        for segment in &self.segments {
            let mut entries = Vec::new();
            let mut reader = segment.reader(64 << 10)?;
            let mut pos = 0u64;
            while let Some(h) = reader.header(pos)? {
                let control = if h.is_control() && h.total_size() <= MAX_CONTROL_BATCH_BYTES {
                    reader.bytes(pos, h.total_size())?
                } else {
                    None
                };
                entries.extend(producers.replay(&h, control));
                pos += h.total_size() as u64;
            }
            aborted.push(entries);
        }
        Ok(Replayed { producers, aborted })
    }
}

/// What replaying the whole log yields.
pub(super) struct Replayed {
    /// The producer state, open transactions included.
    pub producers: ProducerStateManager,
    /// Each segment's `.txnindex` entries, one list per segment in order.
    pub aborted: Vec<Vec<AbortedTxn>>,
}
