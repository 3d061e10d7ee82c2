//! Sequential reading of a segment's batches: a buffered header reader for lookups, and the
//! scan run at open that checks a segment, finds where its valid data ends and rebuilds its
//! indexes on the way.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::batch::{self, BatchHeader, HEADER_SIZE};
use super::control::MAX_CONTROL_BATCH_BYTES;
use super::error::LogError;
use super::files::OpenFile;
use super::index::{relative, IndexTracker, OffsetEntry, TimeEntry};

/// The file a reader reads: borrowed (a scan at open) or held from the file cache, which
/// keeps the descriptor open for the reader however the cache changes meanwhile.
enum ReaderFile<'a> {
    Borrowed(&'a File),
    Shared(Arc<OpenFile>),
}

impl ReaderFile<'_> {
    fn file(&self) -> &File {
        match self {
            ReaderFile::Borrowed(f) => f,
            ReaderFile::Shared(f) => f,
        }
    }
}

/// Reads byte ranges of a segment file through a buffer, so walking many small batch headers
/// costs few system calls.
pub(crate) struct SegmentReader<'a> {
    file: ReaderFile<'a>,
    limit: u64,
    buf: Vec<u8>,
    buf_start: u64,
    chunk: usize,
}

impl<'a> SegmentReader<'a> {
    /// Reads `file` up to byte `limit` (the segment's valid size), `chunk` bytes at a time.
    pub fn new(file: &'a File, limit: u64, chunk: usize) -> Self {
        SegmentReader {
            file: ReaderFile::Borrowed(file),
            limit,
            buf: Vec::new(),
            buf_start: 0,
            chunk,
        }
    }

    /// Reads a cached segment file up to byte `limit`, `chunk` bytes at a time.
    pub fn shared(file: Arc<OpenFile>, limit: u64, chunk: usize) -> SegmentReader<'static> {
        SegmentReader {
            file: ReaderFile::Shared(file),
            limit,
            buf: Vec::new(),
            buf_start: 0,
            chunk,
        }
    }

    /// Bytes `[pos, pos + len)`, or `None` when they run past the limit.
    pub fn bytes(&mut self, pos: u64, len: usize) -> std::io::Result<Option<&[u8]>> {
        let end = pos.saturating_add(len as u64);
        if end > self.limit {
            return Ok(None);
        }
        let buffered_end = self.buf_start + self.buf.len() as u64;
        if pos < self.buf_start || end > buffered_end {
            let want = (self.limit - pos).min(len.max(self.chunk) as u64);
            self.buf.resize(usize::try_from(want).unwrap_or(len), 0);
            self.file.file().read_exact_at(&mut self.buf, pos)?;
            self.buf_start = pos;
        }
        let from = usize::try_from(pos - self.buf_start).unwrap_or(0);
        Ok(self.buf.get(from..from + len))
    }

    /// The header of the batch at `pos`; `None` at the end of the data. A header that does not
    /// fit or fails the structure checks is an error: stored data was damaged.
    pub fn header(&mut self, pos: u64) -> Result<Option<BatchHeader>, LogError> {
        if pos >= self.limit {
            return Ok(None);
        }
        let bytes = self
            .bytes(pos, HEADER_SIZE)?
            .ok_or_else(|| LogError::Corrupted(format!("partial batch header at byte {pos}")))?;
        let header = BatchHeader::parse(bytes)?;
        header
            .check_structure()
            .map_err(|e| LogError::Corrupted(format!("at byte {pos}: {e}")))?;
        if pos + header.total_size() as u64 > self.limit {
            return Err(LogError::Corrupted(format!("partial batch at byte {pos}")));
        }
        Ok(Some(header))
    }
}

/// What a scan found in a segment.
#[derive(Debug, Default)]
pub(crate) struct ScanOutcome {
    /// End of the last good batch: where the segment must be cut if it is longer.
    pub valid_bytes: u64,
    /// Last offset + 1 of the last good batch, if any.
    pub next_offset: Option<i64>,
    /// Why the scan stopped before the end of the file, if it did.
    pub damage: Option<String>,
    /// The offset index as a rebuild would write it.
    pub offset_entries: Vec<OffsetEntry>,
    /// The time index as a rebuild would write it (including the final entry).
    pub time_entries: Vec<TimeEntry>,
    /// Index bookkeeping at the end of the data.
    pub tracker: IndexTracker,
    /// maxTimestamp of the first batch (to time segment.ms after a restart).
    pub first_batch_timestamp: Option<i64>,
    /// Whether the loaded offset index agreed with the batches (every entry at a batch start
    /// with that batch's last offset).
    pub offset_index_matches: bool,
    /// Same for the loaded time index.
    pub time_index_matches: bool,
}

/// How thoroughly to scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanMode {
    /// Headers only: structure and offsets, the cheap check of a cleanly closed segment.
    Headers,
    /// Every byte: also the CRC of each batch (recovery after an unclean stop).
    Full,
}

/// Scans the segment with base offset `base` in `file` (of `file_len` bytes), calling
/// `on_batch` for every good batch in order (with the whole batch for a control batch of at
/// most `MAX_CONTROL_BATCH_BYTES`). Stops at the first damaged batch. `loaded` holds
/// the offset and time index entries read from disk, checked against the batches.
pub(crate) fn scan_segment(
    file: &File,
    file_len: u64,
    base: i64,
    mode: ScanMode,
    index_interval: u32,
    loaded: (&[OffsetEntry], &[TimeEntry]),
    on_batch: &mut dyn FnMut(&BatchHeader, Option<&[u8]>),
) -> Result<ScanOutcome, LogError> {
    let (loaded_offset, loaded_time) = loaded;
    let mut out = ScanOutcome {
        offset_index_matches: true,
        time_index_matches: true,
        ..Default::default()
    };
    let chunk = if mode == ScanMode::Full {
        1 << 20
    } else {
        64 << 10
    };
    let mut reader = SegmentReader::new(file, file_len, chunk);
    let (mut oi, mut ti) = (0usize, 0usize);
    let mut pos = 0u64;
    let mut expected_min = base;
    while pos < file_len {
        let header = match check_batch(&mut reader, pos, mode, expected_min, base)? {
            Ok(h) => h,
            Err(reason) => {
                out.damage = Some(reason);
                break;
            }
        };
        let position = u32::try_from(pos).unwrap_or(u32::MAX);
        let last_time = out.time_entries.last().copied();
        let (o, t) = out
            .tracker
            .track(base, position, &header, index_interval, last_time);
        out.offset_entries.extend(o);
        out.time_entries.extend(t);
        out.first_batch_timestamp
            .get_or_insert(header.max_timestamp);
        // Merge-walk the loaded offset index: its entries must sit on batch starts.
        let rel = relative(base, header.last_offset());
        while let Some(e) = loaded_offset
            .get(oi)
            .filter(|e| u64::from(e.position) <= pos)
        {
            out.offset_index_matches &= u64::from(e.position) == pos && e.relative_offset == rel;
            oi += 1;
        }
        // The loaded time index: an entry naming this batch must carry the running maximum.
        while let Some(e) = loaded_time.get(ti).filter(|e| e.relative_offset <= rel) {
            out.time_index_matches &=
                e.relative_offset == rel && e.timestamp == out.tracker.max_timestamp;
            ti += 1;
        }
        // A control batch's bytes go along (markers are tiny): replaying the log needs them.
        let control = if header.is_control() && header.total_size() <= MAX_CONTROL_BATCH_BYTES {
            reader.bytes(pos, header.total_size())?
        } else {
            None
        };
        on_batch(&header, control);
        pos += header.total_size() as u64;
        expected_min = header.last_offset().saturating_add(1);
        out.valid_bytes = pos;
        out.next_offset = Some(expected_min);
    }
    out.offset_index_matches &= oi == loaded_offset.len();
    out.time_index_matches &= ti == loaded_time.len();
    // A segment that is closed carries a final time entry for its largest timestamp.
    let last_time = out.time_entries.last().copied();
    out.time_entries
        .extend(out.tracker.time_entry_due(base, last_time));
    Ok(out)
}

/// Checks the batch at `pos`. The inner error is a human-readable reason to cut the segment
/// there; the outer one an I/O failure, which must never be mistaken for damage.
fn check_batch(
    reader: &mut SegmentReader<'_>,
    pos: u64,
    mode: ScanMode,
    expected_min: i64,
    base: i64,
) -> Result<Result<BatchHeader, String>, LogError> {
    let header = match reader.header(pos) {
        Ok(Some(h)) => h,
        Ok(None) => return Ok(Err(format!("no batch at byte {pos}"))),
        Err(LogError::Io(e)) => return Err(LogError::Io(e)),
        Err(e) => return Ok(Err(e.to_string())),
    };
    if header.base_offset < expected_min {
        return Ok(Err(format!(
            "batch at byte {pos} has offset {} below {expected_min}",
            header.base_offset
        )));
    }
    if header.last_offset() - base > i64::from(i32::MAX) {
        return Ok(Err(format!(
            "batch at byte {pos} has offset {} too far from segment base {base}",
            header.last_offset()
        )));
    }
    if mode == ScanMode::Full {
        let Some(bytes) = reader.bytes(pos, header.total_size())? else {
            return Ok(Err(format!("partial batch at byte {pos}")));
        };
        if let Err(e) = batch::check_crc(bytes, &header) {
            return Ok(Err(format!("at byte {pos}: {e}")));
        }
    }
    Ok(Ok(header))
}
