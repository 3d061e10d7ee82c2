//! One hosted partition replica: its log, leader epoch and high watermark.
//!
//! The log sits behind a plain mutex that is never held across an `.await`: appends and reads
//! are page-cache operations measured in microseconds, and one lock per partition keeps appends
//! to a partition totally ordered (which idempotent sequence checks rely on).

use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};

use uuid::Uuid;

use crate::error::KafkaError;
use crate::log::{AppendInfo, LogConfig, LogError, PartitionLog, ReadResult};
use crate::types::{LeaderEpoch, Offset, TopicPartition};

/// A partition replica hosted by this node.
pub struct Partition {
    /// Which partition this is.
    pub tp: TopicPartition,
    /// Its topic's id.
    pub topic_id: Uuid,
    log: Mutex<PartitionLog>,
    leader_epoch: AtomicI32,
    leader: std::sync::atomic::AtomicBool,
    closed: std::sync::atomic::AtomicBool,
    high_watermark: AtomicI64,
    log_end: AtomicI64,
    log_start: AtomicI64,
    size: AtomicI64,
}

impl Partition {
    /// Wraps an opened log.
    pub fn new(
        tp: TopicPartition,
        topic_id: Uuid,
        log: PartitionLog,
        leader_epoch: LeaderEpoch,
    ) -> Partition {
        let leo = log.log_end_offset().0;
        Partition {
            tp,
            topic_id,
            log_end: AtomicI64::new(leo),
            log_start: AtomicI64::new(log.log_start_offset().0),
            size: AtomicI64::new(log.size_bytes() as i64),
            // One replica: everything in the log is committed. Replication will track this.
            high_watermark: AtomicI64::new(leo),
            log: Mutex::new(log),
            leader_epoch: AtomicI32::new(leader_epoch.0),
            leader: std::sync::atomic::AtomicBool::new(false),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn log(&self) -> Result<MutexGuard<'_, PartitionLog>, KafkaError> {
        self.log
            .lock()
            .map_err(|_| KafkaError::Unknown(format!("log lock of {} poisoned", self.tp)))
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> LeaderEpoch {
        LeaderEpoch(self.leader_epoch.load(Ordering::Acquire))
    }

    /// Sets the leader epoch (from metadata).
    pub fn set_leader_epoch(&self, e: LeaderEpoch) {
        self.leader_epoch.store(e.0, Ordering::Release);
    }

    /// True while this node leads the partition.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    /// Records whether this node leads the partition (from metadata).
    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Release);
    }

    /// The high watermark: the end of what consumers may read.
    pub fn high_watermark(&self) -> Offset {
        Offset(self.high_watermark.load(Ordering::Acquire))
    }

    /// The log end offset.
    pub fn log_end_offset(&self) -> Offset {
        Offset(self.log_end.load(Ordering::Acquire))
    }

    /// The log start offset.
    pub fn log_start_offset(&self) -> Offset {
        Offset(self.log_start.load(Ordering::Acquire))
    }

    /// Bytes on disk.
    pub fn size_bytes(&self) -> u64 {
        self.size.load(Ordering::Relaxed).max(0) as u64
    }

    /// Checks a client's idea of the leader epoch (KIP-320): older is fenced, newer is unknown.
    pub fn check_epoch(&self, client_epoch: i32) -> Result<(), KafkaError> {
        let mine = self.leader_epoch().0;
        if client_epoch < 0 || client_epoch == mine {
            Ok(())
        } else if client_epoch < mine {
            Err(KafkaError::FencedLeaderEpoch(format!(
                "{}: request epoch {client_epoch} is older than the current leader epoch {mine}",
                self.tp
            )))
        } else {
            Err(KafkaError::UnknownLeaderEpoch(format!(
                "{}: request epoch {client_epoch} is newer than the current leader epoch {mine}",
                self.tp
            )))
        }
    }

    /// Appends a produce request's batches as leader.
    pub fn append(&self, records: &[u8], now_ms: i64) -> Result<AppendInfo, KafkaError> {
        let mut log = self.log()?;
        // Checked under the lock that close() takes: nothing lands after the clean marker.
        if self.closed.load(Ordering::Acquire) {
            return Err(KafkaError::NotLeaderOrFollower(format!(
                "{} is closed: the broker is shutting down",
                self.tp
            )));
        }
        let info = log.append_as_leader(records, self.leader_epoch(), now_ms)?;
        self.refresh(&log);
        Ok(info)
    }

    /// Reads from `offset`, bounded by the high watermark (consumers) or the log end (replicas).
    pub fn read(
        &self,
        offset: Offset,
        max_bytes: usize,
        up_to_hw: bool,
        min_one: bool,
    ) -> Result<ReadResult, LogError> {
        let log = self
            .log
            .lock()
            .map_err(|_| LogError::Corrupted("log lock poisoned".into()))?;
        let bound = if up_to_hw {
            self.high_watermark()
        } else {
            log.log_end_offset()
        };
        log.read(offset, max_bytes, bound, min_one)
    }

    /// Runs `f` with the log locked (ListOffsets, DeleteRecords, retention, ...), then refreshes
    /// the cached offsets.
    pub fn with_log<T>(
        &self,
        f: impl FnOnce(&mut PartitionLog) -> Result<T, LogError>,
    ) -> Result<T, KafkaError> {
        let mut log = self.log()?;
        let out = f(&mut log);
        self.refresh(&log);
        Ok(out?)
    }

    /// Applies new topic configs.
    pub fn set_config(&self, config: LogConfig) {
        if let Ok(mut log) = self.log.lock() {
            log.set_config(config);
        }
    }

    /// Flushes and marks the log cleanly closed; the partition is unusable afterwards.
    pub fn close(&self) -> Result<(), LogError> {
        let mut log = self
            .log
            .lock()
            .map_err(|_| LogError::Corrupted("log lock poisoned".into()))?;
        self.closed.store(true, Ordering::Release);
        log.flush()?;
        let dir = log.dir().to_path_buf();
        // The marker skips recovery at the next start, so it must be durable itself.
        std::fs::File::create(dir.join(crate::log::CLEAN_SHUTDOWN_FILE))?.sync_all()?;
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(())
    }

    fn refresh(&self, log: &PartitionLog) {
        let leo = log.log_end_offset().0;
        self.log_end.store(leo, Ordering::Release);
        self.log_start
            .store(log.log_start_offset().0, Ordering::Release);
        self.size.store(log.size_bytes() as i64, Ordering::Relaxed);
        // Single replica: the ISR is just us, so the high watermark is the log end.
        self.high_watermark.store(leo, Ordering::Release);
    }
}
