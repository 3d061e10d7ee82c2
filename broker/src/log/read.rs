//! Reads: Fetch (whole stored batches), ListOffsets by timestamp and MAX_TIMESTAMP, and
//! OffsetForLeaderEpoch.

use bytes::Bytes;

use super::batch::BatchHeader;
use super::error::LogError;
use super::segment::Segment;
use super::{PartitionLog, ReadResult};
use crate::types::{LeaderEpoch, Offset};

/// Buffer size for walking batch headers during a read: small, reads are near their start.
const READ_CHUNK: usize = 8 << 10;

impl PartitionLog {
    /// Reads whole batches starting with the one containing `offset`: up to `max_bytes` in
    /// total, but at least one batch when `min_one_message` (KIP-74), and only batches whose
    /// last offset is below `upper_bound` (the high watermark, the last stable offset or the
    /// log end). Continues into the next segments while room is left. `offset` outside
    /// `[log start, LEO]` is OffsetOutOfRange; `offset == LEO` reads nothing. A read_committed
    /// caller then asks `collect_aborted_txns(offset, result.next_offset)`.
    pub fn read(
        &self,
        offset: Offset,
        max_bytes: usize,
        upper_bound: Offset,
        min_one_message: bool,
    ) -> Result<ReadResult, LogError> {
        let (start, end) = (self.log_start_offset, self.log_end_offset().0);
        if offset.0 < start || offset.0 > end {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                start: Offset(start),
                end: Offset(end),
            });
        }
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let mut used = 0usize;
        let mut next_offset = offset.0;
        let first_segment = self
            .segments
            .partition_point(|s| s.base <= offset.0)
            .saturating_sub(1);
        'segments: for segment in self.segments.iter().skip(first_segment) {
            if offset.0 >= end {
                break;
            }
            let mut reader = segment.reader(READ_CHUNK)?;
            let mut pos = segment.start_position(offset.0);
            let mut range: Option<(u64, u64)> = None;
            let mut stop = false;
            while let Some(h) = reader.header(pos)? {
                let size = h.total_size();
                if h.last_offset() >= offset.0 {
                    let first = used == 0;
                    let fits = used + size <= max_bytes || (first && min_one_message);
                    if h.last_offset() >= upper_bound.0 || !fits {
                        stop = true;
                        break;
                    }
                    range = Some((range.map_or(pos, |r| r.0), pos + size as u64));
                    used += size;
                    next_offset = h.last_offset() + 1;
                }
                pos += size as u64;
            }
            if let Some((from, to)) = range {
                chunks.push(segment.read_bytes(from, to)?);
            }
            if stop {
                break 'segments;
            }
        }
        let records = match chunks.len() {
            0 => Bytes::new(),
            1 => Bytes::from(chunks.pop().unwrap_or_default()),
            _ => Bytes::from(chunks.concat()),
        };
        Ok(ReadResult {
            records,
            log_start_offset: Offset(start),
            log_end_offset: Offset(end),
            next_offset: Offset(next_offset),
        })
    }

    /// ListOffsets by timestamp: the first record at or after the log start whose timestamp is
    /// at least `ts`, with that timestamp. The time index narrows the search to a few batches,
    /// whose headers are walked until one has a maxTimestamp of at least `ts`; that batch is then
    /// opened to find the record (under LogAppendTime every record carries the batch's time).
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(Offset, i64)>, LogError> {
        for segment in &self.segments {
            if segment.max_timestamp() < ts || segment.next_offset <= self.log_start_offset {
                continue;
            }
            let mut reader = segment.reader(READ_CHUNK)?;
            let mut pos = segment.time_start_position(ts);
            while let Some(h) = reader.header(pos)? {
                if h.max_timestamp >= ts && h.last_offset() >= self.log_start_offset {
                    if let Some(found) = self.find_record(segment, pos, &h, ts)? {
                        return Ok(Some(found));
                    }
                }
                pos += h.total_size() as u64;
            }
        }
        Ok(None)
    }

    /// The record with timestamp >= `ts` and offset >= log start in the batch at `pos`.
    fn find_record(
        &self,
        segment: &Segment,
        pos: u64,
        h: &BatchHeader,
        ts: i64,
    ) -> Result<Option<(Offset, i64)>, LogError> {
        let at_batch = Some((
            Offset(h.base_offset.max(self.log_start_offset)),
            h.max_timestamp,
        ));
        if h.is_log_append_time() {
            return Ok(at_batch);
        }
        let bytes = segment.read_bytes(pos, pos + h.total_size() as u64)?;
        // Streamed through (compressed or not) without holding records; a batch that cannot
        // be read or expands past the walk's cap is answered at batch granularity.
        let mut found = None;
        let walked = rill_client::records::walk(&bytes, |r| {
            let offset = h.base_offset.saturating_add(i64::from(r.offset_delta));
            let timestamp = h.base_timestamp.saturating_add(r.timestamp_delta);
            if timestamp >= ts && offset >= self.log_start_offset {
                found = Some((Offset(offset), timestamp));
            }
            found.is_none()
        });
        match walked {
            Ok(()) => Ok(found),
            Err(e) => {
                tracing::debug!(error = %e, offset = h.base_offset, "cannot walk batch for a timestamp lookup");
                Ok(at_batch)
            }
        }
    }

    /// ListOffsets MAX_TIMESTAMP: the batch with the largest maxTimestamp (the first one if
    /// several tie), as its last offset and that timestamp. `None` for an empty log.
    pub fn max_timestamp(&self) -> Option<(Offset, i64)> {
        let mut best: Option<(i64, i64)> = None;
        for s in &self.segments {
            let offset = s.offset_of_max_timestamp();
            if offset >= 0 && best.is_none_or(|(_, t)| s.max_timestamp() > t) {
                best = Some((offset, s.max_timestamp()));
            }
        }
        best.map(|(o, t)| (Offset(o), t))
    }

    /// OffsetForLeaderEpoch: the largest known epoch <= `epoch` and where it ends (the start
    /// offset of the next epoch, or the log end offset for the latest). `None` (Kafka's -1/-1)
    /// when `epoch` is older than every known epoch.
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        self.epochs
            .end_offset_for(epoch.0, self.log_end_offset().0)
            .map(|(e, o)| (LeaderEpoch(e), Offset(o)))
    }
}
