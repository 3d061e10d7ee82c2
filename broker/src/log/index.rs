//! The sparse offset index (`.index`) and time index (`.timeindex`) of a segment.
//!
//! Both are kept in memory for binary search and mirrored to a file that is only ever
//! appended to (or rewritten whole after a rebuild). The files are derived data: a file that
//! fails the sanity checks is rebuilt from the `.log`, never trusted.

use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::BatchHeader;
use super::files::{CachedFile, FileCache, OpenMode};

/// One fixed-size entry of an index file.
pub(crate) trait IndexEntry: Copy + PartialEq + std::fmt::Debug {
    /// Bytes per entry in the file.
    const SIZE: usize;
    /// Big-endian encoding.
    fn encode(&self) -> Vec<u8>;
    /// Decodes one entry of exactly `SIZE` bytes.
    fn decode(bytes: &[u8]) -> Option<Self>;
    /// Whether `next` may follow `self` in a healthy index.
    fn may_precede(&self, next: &Self) -> bool;
}

/// Offset index entry: the batch whose last offset is `base + relative_offset` starts at `position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    /// Last offset of the batch, relative to the segment's base offset.
    pub relative_offset: u32,
    /// Byte position of the batch in the `.log`.
    pub position: u32,
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self) -> Vec<u8> {
        [
            self.relative_offset.to_be_bytes(),
            self.position.to_be_bytes(),
        ]
        .concat()
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        Some(OffsetEntry {
            relative_offset: u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?),
            position: u32::from_be_bytes(bytes.get(4..8)?.try_into().ok()?),
        })
    }
    fn may_precede(&self, next: &Self) -> bool {
        self.relative_offset < next.relative_offset && self.position < next.position
    }
}

/// Time index entry: up to and including `base + relative_offset`, no batch has a larger
/// timestamp than `timestamp` (and that offset's batch is the first to reach it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    /// The largest timestamp so far.
    pub timestamp: i64,
    /// Last offset of the batch that carried it, relative to the segment's base offset.
    pub relative_offset: u32,
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self) -> Vec<u8> {
        [
            &self.timestamp.to_be_bytes()[..],
            &self.relative_offset.to_be_bytes()[..],
        ]
        .concat()
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        Some(TimeEntry {
            timestamp: i64::from_be_bytes(bytes.get(0..8)?.try_into().ok()?),
            relative_offset: u32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?),
        })
    }
    fn may_precede(&self, next: &Self) -> bool {
        self.timestamp < next.timestamp && self.relative_offset < next.relative_offset
    }
}

/// An index: entries in memory plus the file they are persisted to.
#[derive(Debug)]
pub(crate) struct IndexFile<E: IndexEntry> {
    entries: Vec<E>,
    /// How many entries the file holds; entries beyond are written on the next `persist`.
    persisted: usize,
    /// Opened on demand through the node's file cache: only written to, never read after load.
    file: CachedFile,
    /// Written since the last `sync`.
    dirty: bool,
}

impl<E: IndexEntry> IndexFile<E> {
    /// An index whose entries are `entries`, not yet written to `path`.
    pub fn unpersisted(path: PathBuf, entries: Vec<E>, files: &Arc<FileCache>) -> Self {
        IndexFile {
            entries,
            persisted: 0,
            file: CachedFile::new(path, OpenMode::CreateIfMissing, files),
            dirty: false,
        }
    }

    /// Loads `path`; `Ok(None)` when it is missing or fails the sanity checks (size not a
    /// multiple of the entry size, entries not strictly increasing), i.e. must be rebuilt.
    pub fn load(path: &Path, files: &Arc<FileCache>) -> std::io::Result<Option<Self>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if bytes.len() % E::SIZE != 0 {
            tracing::warn!(path = %path.display(), len = bytes.len(), "index size is not a multiple of its entry size; rebuilding");
            return Ok(None);
        }
        let entries: Option<Vec<E>> = bytes.chunks_exact(E::SIZE).map(E::decode).collect();
        let Some(entries) = entries else {
            return Ok(None);
        };
        if entries
            .windows(2)
            .any(|w| matches!(w, [a, b] if !a.may_precede(b)))
        {
            tracing::warn!(path = %path.display(), "index entries are not monotonic; rebuilding");
            return Ok(None);
        }
        let persisted = entries.len();
        Ok(Some(IndexFile {
            entries,
            persisted,
            file: CachedFile::new(path.to_path_buf(), OpenMode::CreateIfMissing, files),
            dirty: false,
        }))
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    /// Adds an entry in memory; `persist` writes it.
    pub fn push(&mut self, entry: E) {
        self.entries.push(entry);
    }

    /// Writes the entries the file does not hold yet.
    pub fn persist(&mut self) -> std::io::Result<()> {
        if self.persisted == self.entries.len() {
            return Ok(());
        }
        let bytes: Vec<u8> = self
            .entries
            .iter()
            .skip(self.persisted)
            .flat_map(|e| e.encode())
            .collect();
        let at = (self.persisted * E::SIZE) as u64;
        self.file.get()?.write_all_at(&bytes, at)?;
        self.persisted = self.entries.len();
        self.dirty = true;
        Ok(())
    }

    /// Drops the first entry matching `cut` and everything after it, in memory and in the file
    /// (entries are ordered, so this is a cut at the first entry at or past a point).
    pub fn truncate_from(&mut self, cut: impl Fn(&E) -> bool) -> std::io::Result<()> {
        let keep = self
            .entries
            .iter()
            .position(cut)
            .unwrap_or(self.entries.len());
        self.entries.truncate(keep);
        if self.persisted > keep {
            self.file.get()?.set_len((keep * E::SIZE) as u64)?;
            self.persisted = keep;
            self.dirty = true;
        }
        Ok(())
    }

    /// Replaces the file's contents with the in-memory entries (after a rebuild).
    pub fn rewrite(&mut self) -> std::io::Result<()> {
        self.file.get()?.set_len(0)?;
        self.persisted = 0;
        self.dirty = true;
        self.persist()
    }

    /// fsyncs the file if anything was written to it since the last sync (through whichever
    /// descriptor: fsync writes the file's dirty pages, not a descriptor's).
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.persist()?;
        if self.dirty {
            self.file.get()?.sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Closes the file descriptor (the segment became inactive); it reopens on demand.
    pub fn release(&mut self) {
        self.file.close();
    }

    /// Removes the file.
    pub fn delete(&mut self) -> std::io::Result<()> {
        self.file.close();
        self.dirty = false;
        match std::fs::remove_file(self.file.path()) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl IndexFile<OffsetEntry> {
    /// Position to start scanning at for `relative_offset`: the position of the last indexed
    /// batch whose last offset is <= it, or 0. The batch holding the offset is at or after it.
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let n = self
            .entries
            .partition_point(|e| e.relative_offset <= relative_offset);
        n.checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .map_or(0, |e| e.position)
    }
}

impl IndexFile<TimeEntry> {
    /// The last entry with a timestamp strictly below `timestamp`: every batch up to its
    /// offset is older than `timestamp`, so a search can start after it.
    pub fn lookup_before(&self, timestamp: i64) -> Option<TimeEntry> {
        let n = self.entries.partition_point(|e| e.timestamp < timestamp);
        n.checked_sub(1).and_then(|i| self.entries.get(i)).copied()
    }
}

/// Decides, batch by batch, when index entries are due and tracks the segment's largest
/// timestamp. Shared by appends and index rebuilds so both produce the same indexes.
#[derive(Debug, Clone)]
pub(crate) struct IndexTracker {
    /// Bytes appended since the last offset index entry.
    pub bytes_since_entry: u64,
    /// Largest batch maxTimestamp seen, -1 when none.
    pub max_timestamp: i64,
    /// Last offset of the first batch that carried `max_timestamp`, -1 when none.
    pub offset_of_max_timestamp: i64,
}

impl Default for IndexTracker {
    fn default() -> Self {
        IndexTracker {
            bytes_since_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
        }
    }
}

impl IndexTracker {
    /// Accounts one batch at `position` of a segment with base offset `base`. Returns the index
    /// entries due: an offset entry once `interval` bytes accumulated, and with it a time entry
    /// when the largest timestamp grew past the last time entry (`last_time`).
    pub fn track(
        &mut self,
        base: i64,
        position: u32,
        header: &BatchHeader,
        interval: u32,
        last_time: Option<TimeEntry>,
    ) -> (Option<OffsetEntry>, Option<TimeEntry>) {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset();
        }
        self.bytes_since_entry += header.total_size() as u64;
        if self.bytes_since_entry < u64::from(interval) {
            return (None, None);
        }
        self.bytes_since_entry = 0;
        let rel = relative(base, header.last_offset());
        let offset_entry = OffsetEntry {
            relative_offset: rel,
            position,
        };
        (Some(offset_entry), self.time_entry_due(base, last_time))
    }

    /// A time entry for the current largest timestamp if the index does not have it yet.
    pub fn time_entry_due(&self, base: i64, last_time: Option<TimeEntry>) -> Option<TimeEntry> {
        let newer = last_time.is_none_or(|t| self.max_timestamp > t.timestamp);
        (newer && self.offset_of_max_timestamp >= base).then(|| TimeEntry {
            timestamp: self.max_timestamp,
            relative_offset: relative(base, self.offset_of_max_timestamp),
        })
    }
}

/// `offset - base` as stored in index entries. Callers roll segments before the difference
/// could exceed i32::MAX, so the clamp never bites on a healthy log.
pub(crate) fn relative(base: i64, offset: i64) -> u32 {
    u32::try_from((offset - base).clamp(0, i64::from(i32::MAX))).unwrap_or(0)
}
