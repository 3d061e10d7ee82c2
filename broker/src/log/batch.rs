//! Record batches (magic v2): header parsing, validation of what producers and leaders send,
//! and the few in-place patches the broker makes before storing a batch.
//!
//! Everything here reads untrusted bytes, so every access goes through `get(..)` and turns a
//! short slice into an error instead of a panic.

use super::error::LogError;

/// Size of the fixed v2 batch header; the records follow it.
pub const HEADER_SIZE: usize = 61;
/// Bytes before `batchLength` is counted: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;
/// Smallest legal `batchLength`: the header after the length field, with no records.
pub const MIN_BATCH_LENGTH: i32 = (HEADER_SIZE - LOG_OVERHEAD) as i32;
/// The CRC covers everything from the attributes to the end of the batch.
pub const CRC_START: usize = 21;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// The fixed header of a v2 record batch, field for field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the batchLength field.
    pub batch_length: i32,
    /// Epoch of the leader that appended the batch.
    pub partition_leader_epoch: i32,
    /// Format version; 2 for everything this broker accepts.
    pub magic: i8,
    /// CRC32C of bytes 21..end.
    pub crc: u32,
    /// Compression, timestamp type, transactional, control and delete-horizon bits.
    pub attributes: i16,
    /// Last record's offset minus the base offset.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch (the append time under LogAppendTime).
    pub max_timestamp: i64,
    /// Idempotent producer id, -1 when none.
    pub producer_id: i64,
    /// Producer epoch, -1 when none.
    pub producer_epoch: i16,
    /// Sequence of the first record, -1 when none.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses the 61-byte header at the start of `bytes`. Checks only that the bytes are there.
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, LogError> {
        let h = bytes.get(..HEADER_SIZE).ok_or_else(|| {
            LogError::CorruptMessage(format!(
                "batch header needs {HEADER_SIZE} bytes, got {}",
                bytes.len()
            ))
        })?;
        Ok(BatchHeader {
            base_offset: be_i64(h, 0)?,
            batch_length: be_i32(h, 8)?,
            partition_leader_epoch: be_i32(h, 12)?,
            magic: i8::from_be_bytes(be::<1>(h, 16)?),
            crc: u32::from_be_bytes(be::<4>(h, 17)?),
            attributes: i16::from_be_bytes(be::<2>(h, 21)?),
            last_offset_delta: be_i32(h, 23)?,
            base_timestamp: be_i64(h, 27)?,
            max_timestamp: be_i64(h, 35)?,
            producer_id: be_i64(h, 43)?,
            producer_epoch: i16::from_be_bytes(be::<2>(h, 51)?),
            base_sequence: be_i32(h, 53)?,
            record_count: be_i32(h, 57)?,
        })
    }

    /// Total size of the batch on disk: 12 + batchLength (0 if the length is negative).
    pub fn total_size(&self) -> usize {
        LOG_OVERHEAD + usize::try_from(self.batch_length).unwrap_or(0)
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Compression codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION_MASK
    }

    /// Whether the batch's timestamps are the broker's append time.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// Whether the batch holds a control record (transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// Whether an idempotent producer wrote the batch.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// Sequence of the last record; sequences wrap from i32::MAX to 0 as in Kafka.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }

    /// Checks what every stored batch must satisfy: magic 2 and a sane length. Not the CRC.
    pub fn check_structure(&self) -> Result<(), LogError> {
        if self.magic != 2 {
            return Err(LogError::CorruptMessage(format!(
                "unsupported magic {} (only v2 batches)",
                self.magic
            )));
        }
        if self.batch_length < MIN_BATCH_LENGTH {
            return Err(LogError::CorruptMessage(format!(
                "batch length {} below minimum {MIN_BATCH_LENGTH}",
                self.batch_length
            )));
        }
        if self.last_offset_delta < 0 {
            return Err(LogError::CorruptMessage(format!(
                "negative last offset delta {}",
                self.last_offset_delta
            )));
        }
        Ok(())
    }
}

/// `seq + delta` with Kafka's wrap-around from i32::MAX to 0.
pub fn increment_sequence(seq: i32, delta: i32) -> i32 {
    if delta < 0 || seq < 0 {
        return seq;
    }
    if seq > i32::MAX - delta {
        delta - (i32::MAX - seq) - 1
    } else {
        seq + delta
    }
}

/// One batch found in a blob: where it starts and its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRef {
    /// Byte position of the batch inside the blob.
    pub position: usize,
    /// The parsed header.
    pub header: BatchHeader,
}

/// Splits a blob into complete batches, checking structure and CRC of each (what a follower
/// or the recovery scan requires). Rejects an empty blob and a trailing partial batch.
pub fn validate_stored(bytes: &[u8]) -> Result<Vec<BatchRef>, LogError> {
    if bytes.is_empty() {
        return Err(LogError::InvalidRecord("no record batch".into()));
    }
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let rest = bytes.get(pos..).unwrap_or_default();
        let header = BatchHeader::parse(rest)?;
        header.check_structure()?;
        let batch = rest.get(..header.total_size()).ok_or_else(|| {
            LogError::CorruptMessage(format!(
                "partial batch at byte {pos}: {} of {} bytes",
                rest.len(),
                header.total_size()
            ))
        })?;
        check_crc(batch, &header)?;
        out.push(BatchRef {
            position: pos,
            header,
        });
        pos += header.total_size();
    }
    Ok(out)
}

/// Kafka's NO_SEQUENCE: the base sequence of a batch the broker's own coordinators write for
/// a producer (the group coordinator's transactional offset commits).
pub const NO_SEQUENCE: i32 = -1;

/// Validates a produce request's `records` blob: everything `validate_stored` checks, plus the
/// record-level rules Kafka applies to what producers send.
pub fn validate(bytes: &[u8]) -> Result<Vec<BatchRef>, LogError> {
    validate_with(bytes, false)
}

/// Validates batches a coordinator of this broker writes (Kafka's `AppendOrigin.COORDINATOR`):
/// everything `validate` checks, except that a producer's batch may carry [`NO_SEQUENCE`] (the
/// group coordinator appends TxnOffsetCommit records as a transactional batch of the
/// producer, without a sequence). Control batches are still refused: markers are built by
/// `append_control` only.
pub fn validate_as_coordinator(bytes: &[u8]) -> Result<Vec<BatchRef>, LogError> {
    validate_with(bytes, true)
}

/// Whether a stored control batch (`batch` is the whole batch) is a transaction marker, and
/// which: `Some(true)` for COMMIT, `Some(false)` for ABORT, `None` when it is not a readable
/// version-0 marker. For readers outside the log (the group coordinator's replay).
pub fn marker_commits(batch: &[u8]) -> Option<bool> {
    super::control::decode(batch).map(|m| m.commit)
}

/// `validate`, with or without [`NO_SEQUENCE`] allowed for producer batches.
fn validate_with(bytes: &[u8], no_sequence_allowed: bool) -> Result<Vec<BatchRef>, LogError> {
    let batches = validate_stored(bytes)?;
    for b in &batches {
        let h = &b.header;
        if h.record_count < 0 {
            return Err(LogError::InvalidRecord(format!(
                "negative record count {}",
                h.record_count
            )));
        }
        if i64::from(h.last_offset_delta) != i64::from(h.record_count) - 1 {
            return Err(LogError::InvalidRecord(format!(
                "last offset delta {} does not match record count {}",
                h.last_offset_delta, h.record_count
            )));
        }
        if h.is_control() {
            return Err(LogError::InvalidRecord(
                "producers may not write control batches".into(),
            ));
        }
        let unsequenced_ok = no_sequence_allowed && h.base_sequence == NO_SEQUENCE;
        if h.has_producer_id() && h.base_sequence < 0 && !unsequenced_ok {
            return Err(LogError::InvalidRecord(format!(
                "invalid sequence {} in batch of producer {}",
                h.base_sequence, h.producer_id
            )));
        }
        if h.compression() == 0 {
            let end = b.position + h.total_size();
            let records = bytes.get(b.position + HEADER_SIZE..end).unwrap_or_default();
            let n = RecordIter::new(records).try_fold(0i64, |n, r| r.map(|_| n + 1))?;
            if n != i64::from(h.record_count) {
                return Err(LogError::InvalidRecord(format!(
                    "batch says {} records but holds {n}",
                    h.record_count
                )));
            }
        }
    }
    Ok(batches)
}

/// Checks the CRC32C of one whole batch against its header.
pub fn check_crc(batch: &[u8], header: &BatchHeader) -> Result<(), LogError> {
    let covered = batch
        .get(CRC_START..)
        .ok_or_else(|| LogError::CorruptMessage("batch shorter than its header".into()))?;
    let actual = crc32c::crc32c(covered);
    if actual != header.crc {
        return Err(LogError::CorruptMessage(format!(
            "CRC mismatch: stored {:#010x}, computed {actual:#010x}",
            header.crc
        )));
    }
    Ok(())
}

/// Writes the base offset into a batch (bytes 0..8, outside the CRC).
pub fn set_base_offset(batch: &mut [u8], offset: i64) -> Result<(), LogError> {
    put(batch, 0, &offset.to_be_bytes())
}

/// Writes the partition leader epoch into a batch (bytes 12..16, outside the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), LogError> {
    put(batch, 12, &epoch.to_be_bytes())
}

/// Turns a batch into a LogAppendTime batch stamped `now_ms`: sets attribute bit 3 and
/// maxTimestamp (records keep their deltas, as in Kafka), then recomputes the CRC, which covers
/// both fields. `batch` must be exactly one batch.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) -> Result<(), LogError> {
    let attrs = i16::from_be_bytes(be::<2>(batch, 21)?) | ATTR_LOG_APPEND_TIME;
    put(batch, 21, &attrs.to_be_bytes())?;
    put(batch, 35, &now_ms.to_be_bytes())?;
    let crc = crc32c::crc32c(batch.get(CRC_START..).unwrap_or_default());
    put(batch, 17, &crc.to_be_bytes())
}

/// Sets a stored batch's maxTimestamp (CreateTime) and recomputes its CRC.
pub fn set_max_timestamp(batch: &mut [u8], max_timestamp: i64) -> Result<(), LogError> {
    put(batch, 35, &max_timestamp.to_be_bytes())?;
    let crc = crc32c::crc32c(batch.get(CRC_START..).unwrap_or_default());
    put(batch, 17, &crc.to_be_bytes())
}

/// The timestamp and offset deltas of one record, the only record fields the log looks into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPosition {
    /// Record timestamp minus the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Record offset minus the batch's base offset.
    pub offset_delta: i32,
}

/// Walks the length-prefixed records of an uncompressed batch's records section.
pub struct RecordIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> RecordIter<'a> {
    /// Iterates the records in `records` (the bytes after the 61-byte header).
    pub fn new(records: &'a [u8]) -> Self {
        RecordIter {
            rest: records,
            failed: false,
        }
    }
}

impl Iterator for RecordIter<'_> {
    type Item = Result<RecordPosition, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        let step = (|| {
            let (len, used) = read_varint(self.rest)?;
            let len = usize::try_from(len)
                .map_err(|_| LogError::InvalidRecord(format!("negative record length {len}")))?;
            let body = self.rest.get(used..used + len).ok_or_else(|| {
                LogError::InvalidRecord(format!("record of {len} bytes overruns its batch"))
            })?;
            // attributes (int8), timestampDelta (varlong), offsetDelta (varint)
            let after_attrs = body
                .get(1..)
                .ok_or_else(|| LogError::InvalidRecord("empty record".into()))?;
            let (timestamp_delta, ts_len) = read_varlong(after_attrs)?;
            let (offset_delta, _) = read_varint(after_attrs.get(ts_len..).unwrap_or_default())?;
            self.rest = self.rest.get(used + len..).unwrap_or_default();
            Ok(RecordPosition {
                timestamp_delta,
                offset_delta,
            })
        })();
        if step.is_err() {
            self.failed = true;
        }
        Some(step)
    }
}

/// Reads a zigzag varint (Kafka's record varints); returns value and bytes used.
fn read_varint(bytes: &[u8]) -> Result<(i32, usize), LogError> {
    let (raw, used) = read_unsigned(bytes, 5)?;
    let v = u32::try_from(raw)
        .map_err(|_| LogError::InvalidRecord("varint overflows 32 bits".into()))?;
    Ok(((v >> 1) as i32 ^ -((v & 1) as i32), used))
}

/// Reads a zigzag varlong; returns value and bytes used.
fn read_varlong(bytes: &[u8]) -> Result<(i64, usize), LogError> {
    let (raw, used) = read_unsigned(bytes, 10)?;
    Ok(((raw >> 1) as i64 ^ -((raw & 1) as i64), used))
}

fn read_unsigned(bytes: &[u8], max_len: usize) -> Result<(u64, usize), LogError> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().take(max_len).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(LogError::InvalidRecord(
        "truncated or overlong varint".into(),
    ))
}

fn be<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], LogError> {
    bytes
        .get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| LogError::CorruptMessage(format!("batch too short for field at byte {at}")))
}

fn be_i32(bytes: &[u8], at: usize) -> Result<i32, LogError> {
    Ok(i32::from_be_bytes(be::<4>(bytes, at)?))
}

fn be_i64(bytes: &[u8], at: usize) -> Result<i64, LogError> {
    Ok(i64::from_be_bytes(be::<8>(bytes, at)?))
}

fn put(batch: &mut [u8], at: usize, value: &[u8]) -> Result<(), LogError> {
    let dst = batch
        .get_mut(at..at + value.len())
        .ok_or_else(|| LogError::CorruptMessage(format!("batch too short to patch byte {at}")))?;
    dst.copy_from_slice(value);
    Ok(())
}
