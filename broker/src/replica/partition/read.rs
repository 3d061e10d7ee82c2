//! The read side of a partition: what consumers and followers may read (Kafka's
//! `FetchIsolation`), the last stable offset, and the aborted transactions a read_committed
//! consumer needs to skip.
//!
//! The last stable offset (LSO) is computed on demand under the log lock from the high
//! watermark of that moment (`PartitionLog::last_stable_offset`), not cached: it depends on
//! the high watermark, which moves outside the log lock, and on the log's transactions, which
//! move inside it; one computation under the lock sees both consistently. It only moves when
//! the high watermark passes a marker (or the start of an open transaction), so every LSO move
//! is a high-watermark move, and those already wake waiting fetches (`bump`); a marker append
//! wakes them too (`leader_append`). A read_committed fetch waiting at the LSO thus wakes when
//! the marker that ends the transaction is replicated.
//!
//! The log forgets decided transactions once the high watermark passes their markers
//! (`PartitionLog::on_high_watermark`); the partition reports its high watermark whenever it
//! holds the log lock after learning one (`pass_high_watermark`), so that list stays within
//! the un-replicated tail.

use super::Partition;
use crate::error::KafkaError;
use crate::log::{AbortedTxn, LogError, PartitionLog, ReadResult};
use crate::types::Offset;

/// How far a fetch may read (Kafka's `FetchIsolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchIsolation {
    /// A follower (replica id >= 0): up to the log end.
    LogEnd,
    /// A read_uncommitted consumer (isolation_level 0): up to the high watermark.
    HighWatermark,
    /// A read_committed consumer (isolation_level 1): up to the last stable offset, with the
    /// aborted transactions of what is returned.
    TxnCommitted,
}

impl FetchIsolation {
    /// A consumer's isolation from the wire's `isolation_level` (Fetch v4+, ListOffsets v2+;
    /// older versions decode it as 0). `None` for a value Kafka does not define.
    pub fn for_consumer(isolation_level: i8) -> Option<FetchIsolation> {
        match isolation_level {
            0 => Some(FetchIsolation::HighWatermark),
            1 => Some(FetchIsolation::TxnCommitted),
            _ => None,
        }
    }
}

/// A read with the partition's offsets as of that read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRead {
    /// The batches returned.
    pub read: ReadResult,
    /// The high watermark the read was bounded by (or saw).
    pub high_watermark: Offset,
    /// The last stable offset at the same moment (never above `high_watermark`).
    pub last_stable_offset: Offset,
    /// `TxnCommitted` only: the aborted transactions overlapping the returned batches
    /// (`[offset, read.next_offset)`), empty when nothing was returned; `None` otherwise, as
    /// Kafka sends null for read_uncommitted and followers.
    pub aborted: Option<Vec<AbortedTxn>>,
}

impl Partition {
    /// Reads from `offset`, bounded by the high watermark (consumers) or the log end (replicas).
    pub fn read(
        &self,
        offset: Offset,
        max_bytes: usize,
        up_to_hw: bool,
        min_one: bool,
    ) -> Result<ReadResult, LogError> {
        let isolation = if up_to_hw {
            FetchIsolation::HighWatermark
        } else {
            FetchIsolation::LogEnd
        };
        self.fetch(offset, max_bytes, isolation, min_one)
            .map(|f| f.read)
    }

    /// Reads whole batches from `offset` up to `isolation`'s bound (at most `max_bytes`, but
    /// one batch at least when `min_one`), with the high watermark and last stable offset of
    /// the moment and, for read_committed, the aborted transactions of what was returned:
    /// those overlapping `[offset, end of the returned data)` (Kafka's
    /// `collectAbortedTransactions(fetchOffset, upperBound)`). Kafka takes its upper bound from
    /// the sparse offset index, at or past the end of the returned data; this one is exact,
    /// which leaves out only transactions with no batch in the response.
    pub fn fetch(
        &self,
        offset: Offset,
        max_bytes: usize,
        isolation: FetchIsolation,
        min_one: bool,
    ) -> Result<FetchRead, LogError> {
        if self.is_offline() {
            return Err(self.offline_error());
        }
        let mut log = self
            .log
            .lock()
            .map_err(|_| LogError::Corrupted("log lock poisoned".into()))?;
        let hw = self.pass_high_watermark(&mut log);
        let lso = log.last_stable_offset(hw);
        let bound = match isolation {
            FetchIsolation::LogEnd => log.log_end_offset(),
            FetchIsolation::HighWatermark => hw,
            FetchIsolation::TxnCommitted => lso,
        };
        let read = self.checked(log.read(offset, max_bytes, bound, min_one))?;
        debug_assert!(
            read.records.is_empty() || read.next_offset <= bound,
            "a read returns only batches below its bound"
        );
        let aborted = (isolation == FetchIsolation::TxnCommitted).then(|| {
            if read.records.is_empty() {
                Vec::new()
            } else {
                log.collect_aborted_txns(offset, read.next_offset)
            }
        });
        Ok(FetchRead {
            read,
            high_watermark: hw,
            last_stable_offset: lso,
            aborted,
        })
    }

    /// The last stable offset: below it every transaction is decided and its marker
    /// replicated; never above the high watermark, equal to it without transactions. Computed
    /// under the log lock with this replica's high watermark (a follower's is the leader's as
    /// of its last fetch; only the leader's is served).
    pub fn last_stable_offset(&self) -> Result<Offset, KafkaError> {
        let mut log = self.log()?;
        let hw = self.pass_high_watermark(&mut log);
        Ok(log.last_stable_offset(hw))
    }

    /// The end of what a fetch with `isolation` may read: the log end, the high watermark or
    /// the last stable offset (Kafka's `lastFetchableOffset`, ListOffsets' LATEST and its bound
    /// on timestamp lookups).
    pub fn fetchable_offset(&self, isolation: FetchIsolation) -> Result<Offset, KafkaError> {
        match isolation {
            FetchIsolation::LogEnd => Ok(self.log_end_offset()),
            FetchIsolation::HighWatermark => Ok(self.high_watermark()),
            FetchIsolation::TxnCommitted => self.last_stable_offset(),
        }
    }

    /// Tells the locked log the current high watermark (it forgets the decided transactions
    /// the high watermark passed) and returns that high watermark.
    pub(super) fn pass_high_watermark(&self, log: &mut PartitionLog) -> Offset {
        let hw = self.high_watermark();
        log.on_high_watermark(hw);
        hw
    }
}
