//! The CreateTime timestamps of produced batches, as Kafka's `LogValidator` treats them:
//!
//! - every record's timestamp must lie within `message.timestamp.before.max.ms` before and
//!   `message.timestamp.after.max.ms` after the broker's clock (KIP-937), or the request is
//!   refused with INVALID_TIMESTAMP naming each such record (KIP-467) and nothing of it is
//!   appended;
//! - a batch's header `maxTimestamp` is what its records say. Some clients leave it unset
//!   (sarama 1.22 writes -1), which would hide the records from ListOffsets by timestamp, the
//!   time index and time-based retention; Kafka recomputes it and rewrites the header (and its
//!   CRC), and so does the append (`batch::set_max_timestamp`).
//!
//! Uncompressed batches are walked in place (a varint parse per record, nothing allocated).
//! A compressed batch is walked through its decompressed stream (`rill_client::records::walk`,
//! bounded) only when its header cannot be trusted for these checks, i.e. its maxTimestamp
//! lies below its first timestamp (unset), or when its header says a record is out of bounds
//! (to name which); otherwise its first and max timestamps are checked against the bounds and
//! it is not decompressed. That is one departure from Kafka, which
//! decompresses every batch: a compressed batch whose header understates a record's
//! timestamp is stored as sent (its timestamps steer only retention and lookups of its own
//! records).

use super::batch::{BatchHeader, RecordIter, HEADER_SIZE};
use super::error::{LogError, RejectedRecords};

/// `message.timestamp.before.max.ms` / `after.max.ms` of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampBounds {
    /// How far in the past a record's timestamp may be (ms).
    pub before_max_ms: i64,
    /// How far in the future a record's timestamp may be (ms).
    pub after_max_ms: i64,
}

impl Default for TimestampBounds {
    /// Kafka 4's defaults: any past timestamp, at most one hour ahead.
    fn default() -> Self {
        TimestampBounds {
            before_max_ms: i64::MAX,
            after_max_ms: 3_600_000,
        }
    }
}

impl TimestampBounds {
    /// Whether `ts` is within the bounds around `now_ms`.
    fn contains(&self, ts: i64, now_ms: i64) -> bool {
        ts >= now_ms.saturating_sub(self.before_max_ms)
            && ts <= now_ms.saturating_add(self.after_max_ms)
    }

    /// Why `ts` is out of the bounds around `now_ms` (Kafka's wording, with the limits).
    fn out_of_range(&self, ts: i64, now_ms: i64) -> String {
        let earliest = now_ms.saturating_sub(self.before_max_ms);
        let latest = now_ms.saturating_add(self.after_max_ms);
        format!(
            "Timestamp {ts} of message is out of range. The timestamp should be within \
             [{earliest}, {latest}] (message.timestamp.before.max.ms and \
             message.timestamp.after.max.ms around the broker's clock {now_ms})"
        )
    }
}

/// Checks the CreateTime timestamps of one produced batch (`bytes` is the whole batch, its
/// first record the request's record `first_index`): each record out of the bounds is noted
/// in `rejected`; the result is the maxTimestamp the header must carry when that differs from
/// the header's. `Err` only for a batch that cannot be read.
pub(super) fn check_batch(
    h: &BatchHeader,
    bytes: &[u8],
    bounds: TimestampBounds,
    now_ms: i64,
    first_index: i32,
    rejected: &mut RejectedRecords,
) -> Result<Option<i64>, LogError> {
    let trusted_header = h.compression() != 0 && h.max_timestamp >= h.base_timestamp;
    if trusted_header
        && bounds.contains(h.base_timestamp, now_ms)
        && bounds.contains(h.max_timestamp, now_ms)
    {
        return Ok(None);
    }
    let mut max = i64::MIN;
    let mut index = first_index;
    let mut seen = |timestamp_delta: i64| {
        let ts = h.base_timestamp.saturating_add(timestamp_delta);
        if !bounds.contains(ts, now_ms) {
            rejected.push(index, || bounds.out_of_range(ts, now_ms));
        }
        index = index.saturating_add(1);
        max = max.max(ts);
    };
    if h.compression() == 0 {
        let records = bytes.get(HEADER_SIZE..).unwrap_or_default();
        let count = usize::try_from(h.record_count).unwrap_or(0);
        for r in RecordIter::new(records).take(count) {
            seen(r?.timestamp_delta);
        }
    } else {
        rill_client::records::walk(bytes, |r| {
            seen(r.timestamp_delta);
            true
        })?;
    }
    Ok((max != i64::MIN && max != h.max_timestamp).then_some(max))
}
