//! The CreateTime timestamps of produced batches, as Kafka's `LogValidator` treats them:
//!
//! - every record's timestamp must lie within `message.timestamp.before.max.ms` before and
//!   `message.timestamp.after.max.ms` after the broker's clock (KIP-937), or the batch is
//!   refused with INVALID_TIMESTAMP and nothing of the request is appended;
//! - a batch's header `maxTimestamp` is what its records say. Some clients leave it unset
//!   (sarama 1.22 writes -1), which would hide the records from ListOffsets by timestamp, the
//!   time index and time-based retention; Kafka recomputes it and rewrites the header (and its
//!   CRC), and so does the append (`batch::set_max_timestamp`).
//!
//! Uncompressed batches are walked in place (a varint parse per record, nothing allocated).
//! A compressed batch is walked through its decompressed stream (`rill_client::records::walk`,
//! bounded) only when its header cannot be trusted for these checks, i.e. its maxTimestamp
//! lies below its first timestamp (unset); otherwise its first and max timestamps are checked
//! against the bounds and it is not decompressed. That is one departure from Kafka, which
//! decompresses every batch: a compressed batch whose header understates a record's
//! timestamp is stored as sent (its timestamps steer only retention and lookups of its own
//! records).

use super::batch::{BatchHeader, RecordIter, HEADER_SIZE};
use super::error::LogError;

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
    /// INVALID_TIMESTAMP unless `ts` (the record at `offset_delta`) is within the bounds of
    /// `now_ms`.
    fn check(&self, ts: i64, offset_delta: i64, now_ms: i64) -> Result<(), LogError> {
        let earliest = now_ms.saturating_sub(self.before_max_ms);
        let latest = now_ms.saturating_add(self.after_max_ms);
        if ts < earliest || ts > latest {
            return Err(LogError::InvalidTimestamp(format!(
                "timestamp {ts} of the record at offset delta {offset_delta} is out of range: \
                 it must lie within [{earliest}, {latest}] (message.timestamp.before.max.ms \
                 and message.timestamp.after.max.ms around the broker's clock {now_ms})"
            )));
        }
        Ok(())
    }
}

/// Checks the CreateTime timestamps of one produced batch (`bytes` is the whole batch) and
/// returns the maxTimestamp its header must carry when that differs from the header's.
pub(super) fn check_batch(
    h: &BatchHeader,
    bytes: &[u8],
    bounds: TimestampBounds,
    now_ms: i64,
) -> Result<Option<i64>, LogError> {
    let trusted_header = h.compression() != 0 && h.max_timestamp >= h.base_timestamp;
    if trusted_header {
        bounds.check(h.base_timestamp, 0, now_ms)?;
        bounds.check(h.max_timestamp, i64::from(h.last_offset_delta), now_ms)?;
        return Ok(None);
    }
    let mut max = i64::MIN;
    let mut seen = |timestamp_delta: i64, offset_delta: i64| -> Result<(), LogError> {
        let ts = h.base_timestamp.saturating_add(timestamp_delta);
        bounds.check(ts, offset_delta, now_ms)?;
        max = max.max(ts);
        Ok(())
    };
    if h.compression() == 0 {
        let records = bytes.get(HEADER_SIZE..).unwrap_or_default();
        let count = usize::try_from(h.record_count).unwrap_or(0);
        for r in RecordIter::new(records).take(count) {
            let r = r?;
            seen(r.timestamp_delta, i64::from(r.offset_delta))?;
        }
    } else {
        let mut failed = None;
        rill_client::records::walk(bytes, |r| {
            match seen(r.timestamp_delta, i64::from(r.offset_delta)) {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
    }
    Ok((max != i64::MIN && max != h.max_timestamp).then_some(max))
}
