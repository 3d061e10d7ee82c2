//! The partition log: Kafka's on-disk layout for one partition (segments of record batches with
//! sparse offset and time indexes, a leader-epoch checkpoint, partition metadata), with
//! validation on produce, idempotent-producer deduplication, reads for Fetch, ListOffsets and
//! OffsetForLeaderEpoch lookups, retention, truncation and crash recovery.
//!
//! Per partition a directory `topic-N/` with `<base offset>.log` segments, sparse `.index`
//! (offset → position) and `.timeindex` (timestamp → offset), `leader-epoch-checkpoint`,
//! `partition.metadata` (topic id) and a `.clean-shutdown` marker. Batches (magic v2) are
//! stored byte-for-byte as produced after the broker writes base offset and leader epoch into
//! the header (outside the CRC). `batch` reads and validates headers (CRC32C, lengths, record
//! counts) on raw bytes: header access, not a codec (`kafka-protocol` has no header view with
//! `lastOffsetDelta`/`maxTimestamp`, which offset assignment and the time index need).
//! Producer state (idempotence and transactions) is rebuilt from the batches at open: headers,
//! plus the one record of each transaction marker. Transactions on the log side: transactional
//! batches open a producer's transaction, markers (`append_control`) end it, ABORTs are listed
//! in each segment's `.txnindex` (Kafka's format), and the last stable offset
//! (`last_stable_offset(hw)`) stops at the oldest open transaction or at the oldest decided one
//! whose marker the high watermark has not passed (the partition reports its high watermark
//! with `on_high_watermark`). Recovery after an
//! unclean stop scans the tail and cuts at the first invalid batch; indexes are derived data,
//! rebuilt when missing or damaged.
//!
//! Files: `batch` (the v2 batch format; the records inside a batch are read with bounded
//! memory by `rill_client::records`), `index` and `segment` (one segment), `scan` (walking a segment), `checkpoint` (small text files), `producer_state`, `control`
//! (transaction markers), `txn_index` (the aborted-transaction index), and
//! the `PartitionLog` operations split over `open`, `append`, `read`, `maintenance` and
//! `cleaner` (compaction).

use std::path::{Path, PathBuf};

use crate::types::{LeaderEpoch, Offset, ProducerId};

pub mod batch;
mod checkpoint;
mod control;
mod error;
mod files;
mod index;
mod producer_state;
mod scan;
mod segment;
mod timestamps;
mod txn_index;

mod append;
mod cleaner;
mod maintenance;
mod open;
mod read;

#[cfg(test)]
mod tests;

pub use cleaner::{CleanStats, CLEANER_CHECKPOINT};
pub use error::{LogError, RecordError, RecordRule, RejectedRecords, MAX_RECORD_ERROR_MESSAGES};
pub use files::{FileCache, FileCacheStats, MIN_OPEN_FILES};
pub use producer_state::ProducerEntrySnapshot;
pub use timestamps::TimestampBounds;
pub use txn_index::AbortedTxn;

use checkpoint::LeaderEpochCache;
use producer_state::ProducerStateManager;
use segment::Segment;

/// Name of the marker `close()` leaves so the next `open()` can skip recovery.
pub const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";

/// The settings of one partition log, Kafka's topic-level names in snake case.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when a segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll a segment this long after its first append.
    pub segment_ms: i64,
    /// `retention.ms`: delete segments whose newest record is older; -1 keeps forever.
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest segments while the log is larger; -1 for no limit.
    pub retention_bytes: i64,
    /// `index.interval.bytes`: bytes of batches between offset index entries.
    pub index_interval_bytes: u32,
    /// `max.message.bytes`: the largest batch accepted from a producer.
    pub max_message_bytes: u32,
    /// `message.timestamp.type=LogAppendTime`: stamp batches with the broker's time.
    pub timestamp_type_log_append: bool,
    /// `message.timestamp.before.max.ms` / `after.max.ms`: how far a CreateTime record's
    /// timestamp may be from the broker's clock.
    pub timestamp_bounds: TimestampBounds,
    /// `flush.messages`: fsync after this many records; i64::MAX leaves it to the OS.
    pub flush_messages: i64,
    /// `flush.ms`: fsync when the last one is this old; i64::MAX leaves it to the OS.
    pub flush_ms: i64,
    /// `file.delete.delay.ms`: accepted for compatibility; files are deleted immediately.
    pub file_delete_delay_ms: i64,
    /// `cleanup.policy` contains `compact`: the cleaner keeps the latest record per key.
    pub cleanup_compact: bool,
    /// `cleanup.policy` contains `delete`: retention.ms and retention.bytes delete segments.
    pub cleanup_delete: bool,
    /// `delete.retention.ms`: how long the cleaner keeps tombstones (null values).
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: segments with a record newer than this are not cleaned.
    pub min_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`: clean only when this share of the closed bytes is dirty.
    pub min_cleanable_dirty_ratio: f64,
}

impl Default for LogConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            index_interval_bytes: 4096,
            max_message_bytes: 1_048_588,
            timestamp_type_log_append: false,
            timestamp_bounds: TimestampBounds::default(),
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            file_delete_delay_ms: 60_000,
            cleanup_compact: false,
            cleanup_delete: true,
            delete_retention_ms: 24 * 3600 * 1000,
            min_compaction_lag_ms: 0,
            min_cleanable_dirty_ratio: 0.5,
        }
    }
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended (for a duplicate: of the original append).
    pub first_offset: Offset,
    /// Offset of the last record appended.
    pub last_offset: Offset,
    /// The LogAppendTime stamped on the batches, -1 under CreateTime.
    pub log_append_time: i64,
    /// The log start offset after the append.
    pub log_start_offset: Offset,
    /// The batches were retries of batches already in the log; nothing was written.
    pub duplicate: bool,
    /// Records in the request.
    pub record_count: i64,
    /// Bytes written to the log (0 for a duplicate).
    pub bytes: usize,
}

/// What a read returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole batches, byte for byte as stored.
    pub records: bytes::Bytes,
    /// The log start offset at the time of the read.
    pub log_start_offset: Offset,
    /// The log end offset at the time of the read.
    pub log_end_offset: Offset,
    /// The offset right after the last batch returned (its last offset + 1): where the next
    /// read continues, and the upper bound of the aborted transactions that concern this read.
    /// The requested offset when nothing was returned.
    pub next_offset: Offset,
}

/// One segment, as the HTTP API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SegmentInfo {
    /// The segment's base offset (its file name).
    pub base_offset: Offset,
    /// Size of its `.log` in bytes.
    pub size_bytes: u64,
    /// Largest batch timestamp in it, -1 when none.
    pub max_timestamp: i64,
}

/// The log of one partition replica, in its own directory.
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    /// Sorted by base offset, never empty; the last one is the active segment.
    segments: Vec<Segment>,
    log_start_offset: i64,
    epochs: LeaderEpochCache,
    producers: ProducerStateManager,
    /// Records appended since the last fsync (flush.messages).
    unflushed_messages: i64,
    /// When the last fsync happened (flush.ms).
    last_flush_ms: i64,
    /// The node's open-file cache every segment and index file is opened through.
    files: std::sync::Arc<FileCache>,
}

impl PartitionLog {
    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settings in effect.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Applies changed topic settings; they take effect from the next operation.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// The first offset that may be read.
    pub fn log_start_offset(&self) -> Offset {
        Offset(self.log_start_offset)
    }

    /// The offset the next record will get (LEO).
    pub fn log_end_offset(&self) -> Offset {
        Offset(self.active().next_offset)
    }

    /// Total size of the segments' `.log` files.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    /// Bytes of the log before `offset`, counted from the start of the oldest segment, to the
    /// precision of the sparse offset index (`index.interval.bytes`): how much a follower at
    /// `offset` has copied, for reassignment progress. The whole size at or past the log end.
    pub fn bytes_before(&self, offset: Offset) -> u64 {
        if offset >= self.log_end_offset() {
            return self.size_bytes();
        }
        let i = self
            .segments
            .partition_point(|s| s.base <= offset.0)
            .saturating_sub(1);
        let before: u64 = self.segments[..i].iter().map(|s| s.size).sum();
        let within = self
            .segments
            .get(i)
            .map_or(0, |s| s.start_position(offset.0).min(s.size));
        before + within
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The newest leader epoch in the leader-epoch cache.
    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.epochs.latest().map(LeaderEpoch)
    }

    /// The latest state of an idempotent producer, for InitProducerId and DescribeProducers.
    pub fn producer_state(&self, pid: ProducerId) -> Option<ProducerEntrySnapshot> {
        self.producers.snapshot(pid)
    }

    /// The latest state of every producer of this partition, by producer id
    /// (DescribeProducers, find-hanging).
    pub fn producer_states(&self) -> Vec<ProducerEntrySnapshot> {
        self.producers.snapshots()
    }

    /// Start of the oldest open (undecided) transaction in this partition, `None` when none is
    /// open. The last stable offset also waits for decided transactions whose marker is not
    /// replicated yet: see `last_stable_offset`.
    pub fn first_unstable_offset(&self) -> Option<Offset> {
        let first = self.producers.first_unstable_offset();
        debug_assert!(first.is_none_or(|f| f < self.log_end_offset().0));
        first.map(Offset)
    }

    /// The last stable offset (LSO) with the high watermark at `high_watermark`: the smallest
    /// of the high watermark, the start of the oldest open transaction and the start of the
    /// oldest decided transaction whose marker is at or above the high watermark, never below
    /// the log start (Kafka's `UnifiedLog.lastStableOffset` with its firstUnstableOffset).
    /// read_committed consumers read below it; with no transactions it is the high watermark.
    pub fn last_stable_offset(&self, high_watermark: Offset) -> Offset {
        let hw = high_watermark.0;
        let unstable = self.producers.first_unstable_offset_at(hw);
        let lso = match unstable {
            Some(first) if first < hw => first.max(self.log_start_offset).min(hw),
            _ => hw,
        };
        debug_assert!(
            lso <= hw,
            "the last stable offset never passes the high watermark"
        );
        Offset(lso)
    }

    /// The partition's high watermark reached `high_watermark`: decided transactions whose
    /// marker is below it stop holding the last stable offset and are forgotten (Kafka's
    /// `onHighWatermarkUpdated`). The partition calls this whenever it learns a high watermark;
    /// what is kept afterwards is within `producer_state::unreplicated_bound`.
    pub fn on_high_watermark(&mut self, high_watermark: Offset) {
        self.producers.on_high_watermark(high_watermark.0);
        debug_assert!(
            self.producers.unreplicated_len()
                <= producer_state::unreplicated_bound(high_watermark.0, self.log_end_offset().0),
            "decided transactions held only for markers in the un-replicated tail"
        );
    }

    /// How many decided transactions are held for the last stable offset (their marker may
    /// not be replicated yet); see `on_high_watermark`.
    pub fn unreplicated_txn_count(&self) -> usize {
        self.producers.unreplicated_len()
    }

    /// The aborted transactions overlapping a fetch of `[fetch_offset, upper_bound)`, from the
    /// `.txnindex` of the segment holding `fetch_offset` onwards, stopping at the first entry
    /// whose lastStableOffset reaches `upper_bound` (Kafka's `collectAbortedTransactions`).
    pub fn collect_aborted_txns(
        &self,
        fetch_offset: Offset,
        upper_bound: Offset,
    ) -> Vec<AbortedTxn> {
        let start = self
            .segments
            .partition_point(|s| s.base <= fetch_offset.0)
            .saturating_sub(1);
        let mut out = Vec::new();
        for segment in self.segments.get(start..).unwrap_or_default() {
            if txn_index::collect(segment.txn_index(), fetch_offset, upper_bound, &mut out) {
                break;
            }
        }
        out
    }

    /// Every segment's base offset, size and largest timestamp, oldest first.
    pub fn segments_info(&self) -> Vec<SegmentInfo> {
        self.segments
            .iter()
            .map(|s| SegmentInfo {
                base_offset: Offset(s.base),
                size_bytes: s.size,
                max_timestamp: s.max_timestamp(),
            })
            .collect()
    }

    fn active(&self) -> &Segment {
        // `segments` is never empty: open creates one and nothing removes the last.
        self.segments
            .last()
            .unwrap_or_else(|| unreachable!("a partition log always has an active segment"))
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .unwrap_or_else(|| unreachable!("a partition log always has an active segment"))
    }
}
