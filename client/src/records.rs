//! The records inside a stored or produced batch, read with bounded memory. A compressed
//! batch is untrusted input that can expand enormously (zstd turns a few KB into 600 MB), so:
//! - checks that need only each record's offset, timestamp and whether it has a key (the
//!   produce path's null-key check on compacted topics, timestamp lookups) stream through the
//!   decompressed bytes with [`walk`], holding a fixed-size buffer and never a key or value
//!   (snappy excepted: it decodes a block at a time, at most [`MAX_SNAPPY_BLOCK`]); the bytes
//!   walked per batch are capped too ([`MAX_WALKED_BATCH_BYTES`]), bounding the CPU a batch
//!   costs (the produce check runs under the partition's lock);
//! - paths that must hold the records (compaction re-encodes them, the group store and the
//!   console's message browser read them) decompress with [`decompress`], which stops at a
//!   named limit instead of growing without end, through `RecordBatchDecoder`'s custom
//!   decompressor hook ([`decode_batch`]).
//!
//! The codecs are the crates `kafka-protocol` itself uses; zstd's window is capped at
//! [`ZSTD_WINDOW_LOG_MAX`] (a frame cannot make the decoder reserve more), snappy's claimed
//! lengths are checked against what snappy can expand to before anything is allocated.

use std::io::{self, Read};

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder, RecordSet};

/// Size of the fixed v2 batch header; the records follow it.
pub const HEADER_SIZE: usize = 61;
/// Where the attributes (compression codec in the low 3 bits) sit in a v2 batch header.
const ATTRIBUTES_AT: usize = 21;
/// Where the record count sits in a v2 batch header.
const RECORD_COUNT_AT: usize = 57;

/// Why a batch's records could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    /// The records decompress to more than the reader's limit.
    #[error("batch decompresses to more than {limit} bytes")]
    TooLarge {
        /// The limit that was reached.
        limit: u64,
    },
    /// The bytes are damaged (a codec error, a cut-off record, a bad header).
    #[error("{0}")]
    Corrupt(String),
    /// A record is malformed (lengths that do not add up).
    #[error("{0}")]
    Invalid(String),
}

/// The two header fields the record readers need, read from a batch's raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchView {
    /// The compression codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub codec: i16,
    /// The record count the header claims.
    pub record_count: i32,
}

impl BatchView {
    /// Reads the codec and record count of a v2 batch (`batch` = header and records).
    pub fn peek(batch: &[u8]) -> Result<BatchView, RecordsError> {
        let field = |at: usize, n: usize| {
            batch.get(at..at + n).ok_or_else(|| {
                RecordsError::Corrupt(format!("batch of {} bytes has no header", batch.len()))
            })
        };
        let a = field(ATTRIBUTES_AT, 2)?;
        let c = field(RECORD_COUNT_AT, 4)?;
        Ok(BatchView {
            codec: i16::from_be_bytes([a[0], a[1]]) & 0x07,
            record_count: i32::from_be_bytes([c[0], c[1], c[2], c[3]]),
        })
    }
}

/// The most a batch may decompress to where its records are held in memory (compaction, the
/// group store, the message browser). Producers' batches are bounded by `max.message.bytes`
/// (1 MiB by default) compressed; 64 MiB leaves a 64x expansion for legitimate data.
pub const MAX_DECOMPRESSED_BATCH_BYTES: u64 = 64 << 20;

/// The most decompressed bytes a streaming [`walk`] reads per batch (CPU, not memory: the
/// walk holds a fixed buffer): tens of milliseconds of zstd. A batch beyond it is refused
/// (INVALID_RECORD) by the produce path and answered at batch granularity by timestamp
/// lookups.
pub const MAX_WALKED_BATCH_BYTES: u64 = 64 << 20;

/// The largest snappy block decoded: snappy has no streaming decoder, so a block is held whole
/// (Xerial-framed blocks are 32 KiB; a raw-snappy batch is one block).
pub const MAX_SNAPPY_BLOCK: usize = 32 << 20;

/// zstd's largest window, log2 bytes (16 MiB): what a frame may make the decoder reserve.
/// Kafka clients compress batches of at most a few MiB, whose windows are smaller.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// The most a snappy block expands: its best element, a 3-byte copy, yields 64 bytes.
const MAX_SNAPPY_EXPANSION: usize = 22;

/// The bytes-per-read of the streaming walk.
const WALK_BUFFER: usize = 8 << 10;

/// What a walk sees of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHead {
    /// Timestamp minus the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Offset minus the batch's base offset.
    pub offset_delta: i32,
    /// The record has a null key.
    pub null_key: bool,
}

/// A reader of a batch's records section (the bytes after the 61-byte header), decompressed
/// as its attributes say, yielding at most `limit` bytes (an error past it).
pub fn reader<'a>(
    codec: i16,
    records: &'a [u8],
    limit: u64,
) -> Result<Box<dyn Read + 'a>, RecordsError> {
    let raw: Box<dyn Read + 'a> = match codec {
        0 => Box::new(records),
        1 => Box::new(flate2::read::MultiGzDecoder::new(records)),
        2 => Box::new(SnappyReader::new(records, limit)),
        3 => Box::new(lz4::Decoder::new(records).map_err(|e| corrupt("lz4", &e))?),
        4 => {
            let mut d = zstd::stream::read::Decoder::with_buffer(records)
                .map_err(|e| corrupt("zstd", &e))?;
            d.window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| corrupt("zstd", &e))?;
            Box::new(d)
        }
        c => {
            return Err(RecordsError::Corrupt(format!(
                "unknown compression codec {c}"
            )))
        }
    };
    Ok(Box::new(Capped {
        inner: raw,
        left: limit,
    }))
}

/// Decompresses a batch's records section whole, refusing (INVALID_RECORD) one that
/// expands past `limit` bytes: never an unbounded allocation.
pub fn decompress(codec: i16, records: &[u8], limit: u64) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::new();
    reader(codec, records, limit)?
        .read_to_end(&mut out)
        .map_err(|e| read_error(&e, limit))?;
    Ok(out)
}

/// Decodes one whole batch (header and records) with `kafka-protocol`, decompressing with
/// [`decompress`] under [`MAX_DECOMPRESSED_BATCH_BYTES`]: for the paths that hold records.
pub fn decode_batch(batch: &[u8]) -> Result<RecordSet, RecordsError> {
    let view = BatchView::peek(batch)?;
    let mut buf = Bytes::copy_from_slice(batch);
    RecordBatchDecoder::decode_with_custom_compression(
        &mut buf,
        Some(
            |data: &mut Bytes, _codec: Compression| -> anyhow::Result<Bytes> {
                decompress(view.codec, data, MAX_DECOMPRESSED_BATCH_BYTES)
                    .map(Bytes::from)
                    .map_err(anyhow::Error::from)
            },
        ),
    )
    .map_err(|e| RecordsError::Corrupt(format!("cannot decode batch: {e:#}")))
}

/// Walks the records of one batch (`batch` = header and records), calling `f` with each
/// record's head until it returns false; at most `header.record_count` records, at most
/// [`MAX_WALKED_BATCH_BYTES`] decompressed bytes, keys and values skipped unread.
pub fn walk(batch: &[u8], mut f: impl FnMut(RecordHead) -> bool) -> Result<(), RecordsError> {
    let view = BatchView::peek(batch)?;
    let records = batch.get(HEADER_SIZE..).unwrap_or_default();
    let mut r = io::BufReader::with_capacity(
        WALK_BUFFER,
        reader(view.codec, records, MAX_WALKED_BATCH_BYTES)?,
    );
    for _ in 0..view.record_count.max(0) {
        let head = next_record(&mut r).map_err(|e| read_error(&e, MAX_WALKED_BATCH_BYTES))?;
        if !f(head) {
            break;
        }
    }
    Ok(())
}

/// Reads one record's head and skips the rest of it.
fn next_record<R: Read>(r: &mut R) -> io::Result<RecordHead> {
    let len = varint(r)?;
    let len = u64::try_from(len).map_err(|_| invalid(format!("negative record length {len}")))?;
    let mut body = r.take(len);
    let mut attributes = [0u8; 1];
    body.read_exact(&mut attributes)?;
    let timestamp_delta = varint(&mut body)?;
    let offset_delta = i32::try_from(varint(&mut body)?)
        .map_err(|_| invalid("offset delta overflows 32 bits".into()))?;
    let key_len = varint(&mut body)?;
    // The key, the value and the headers: skipped without being held.
    let rest = io::copy(&mut body, &mut io::sink())?;
    let consumed_all = body.limit() == 0;
    if !consumed_all {
        return Err(invalid(format!(
            "record of {len} bytes ends early ({rest} bytes after its key length)"
        )));
    }
    Ok(RecordHead {
        timestamp_delta,
        offset_delta,
        null_key: key_len < 0,
    })
}

/// A zigzag varlong from a stream.
fn varint<R: Read>(r: &mut R) -> io::Result<i64> {
    let mut raw = 0u64;
    for i in 0..10 {
        let mut b = [0u8; 1];
        r.read_exact(&mut b)?;
        raw |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    Err(invalid("overlong varint".into()))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn corrupt(codec: &str, e: &dyn std::fmt::Display) -> RecordsError {
    RecordsError::Corrupt(format!("cannot read {codec} data: {e}"))
}

/// The Kafka error for a failed read of a batch's records.
fn read_error(e: &io::Error, limit: u64) -> RecordsError {
    match e.kind() {
        io::ErrorKind::FileTooLarge => RecordsError::TooLarge { limit },
        io::ErrorKind::UnexpectedEof => RecordsError::Corrupt("batch records end early".into()),
        io::ErrorKind::InvalidData => RecordsError::Invalid(format!("malformed record: {e}")),
        _ => RecordsError::Corrupt(format!("cannot read batch records: {e}")),
    }
}

/// A reader that fails (FileTooLarge) once more than `left` bytes were asked of it.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One probe byte tells a stream that ends exactly at the cap from a longer one.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::FileTooLarge,
                    "decompressed batch over its limit",
                )),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Kafka's snappy: Xerial's framing (a 16-byte magic header, then blocks of a big-endian
/// length and raw snappy data), or raw snappy without it, decoded one block at a time with
/// each block's claimed size checked before it is allocated.
struct SnappyReader<'a> {
    rest: &'a [u8],
    framed: Option<bool>,
    block: Vec<u8>,
    at: usize,
    /// The caller's limit: no block larger than it is allocated.
    limit: u64,
}

const XERIAL_MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";

impl<'a> SnappyReader<'a> {
    fn new(data: &'a [u8], limit: u64) -> Self {
        SnappyReader {
            rest: data,
            framed: None,
            block: Vec::new(),
            at: 0,
            limit,
        }
    }

    /// Decodes the next block into `self.block`; false at the end.
    fn next_block(&mut self) -> io::Result<bool> {
        let framed = *self.framed.get_or_insert_with(|| {
            let framed = self.rest.starts_with(XERIAL_MAGIC);
            if framed {
                self.rest = &self.rest[XERIAL_MAGIC.len()..];
            }
            framed
        });
        if self.rest.is_empty() {
            return Ok(false);
        }
        let compressed = if framed {
            let len = self
                .rest
                .get(..4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or_else(|| invalid("truncated snappy block length".into()))?;
            let block = self
                .rest
                .get(4..4 + len)
                .ok_or_else(|| invalid("truncated snappy block".into()))?;
            self.rest = &self.rest[4 + len..];
            block
        } else {
            std::mem::take(&mut self.rest)
        };
        let size = snap::raw::decompress_len(compressed).map_err(|e| invalid(e.to_string()))?;
        if size > compressed.len().saturating_mul(MAX_SNAPPY_EXPANSION) + 64 {
            return Err(invalid(format!(
                "snappy block of {} bytes claims to expand to {size}",
                compressed.len()
            )));
        }
        if size as u64 > self.limit || size > MAX_SNAPPY_BLOCK {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "snappy block over the batch limit",
            ));
        }
        self.block.clear();
        self.block.resize(size, 0);
        snap::raw::Decoder::new()
            .decompress(compressed, &mut self.block)
            .map_err(|e| invalid(e.to_string()))?;
        self.at = 0;
        Ok(true)
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at >= self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
