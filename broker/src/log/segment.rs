//! One segment: a `.log` file of batches starting at a base offset, with its offset and time
//! indexes and its aborted-transaction index (`.txnindex`, only when it has entries).

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use super::batch::{BatchHeader, BatchRef};
use super::error::LogError;
use super::files::{CachedFile, FileCache, OpenMode};
use super::index::{relative, IndexEntry, IndexFile, IndexTracker, OffsetEntry, TimeEntry};
use super::scan::{scan_segment, ScanMode, SegmentReader};
use super::txn_index::{AbortedTxn, TxnIndex};

/// Kafka's file name for a segment file: the base offset zero-padded to 20 digits.
pub(crate) fn file_name(base: i64, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

/// A segment of the partition log.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Offset of the first batch that may live here; the file name.
    pub base: i64,
    /// The `.log`, opened on demand through the node's file cache.
    log: CachedFile,
    /// Bytes of valid data in the `.log`.
    pub size: u64,
    /// Last offset + 1 of the last batch, or `base` when empty.
    pub next_offset: i64,
    offset_index: IndexFile<OffsetEntry>,
    time_index: IndexFile<TimeEntry>,
    /// Aborted transactions whose marker is in this segment; derived, rebuilt at open.
    txn_index: TxnIndex,
    tracker: IndexTracker,
    /// When the first batch was appended (or, after a restart, its timestamp): segment.ms counts from here.
    pub first_append_ms: Option<i64>,
    /// Written since the last fsync.
    dirty: bool,
}

impl Segment {
    /// Creates an empty segment at `base`, replacing any files of that name.
    pub fn create(dir: &Path, base: i64, files: &Arc<FileCache>) -> Result<Segment, LogError> {
        let log_path = dir.join(file_name(base, "log"));
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)?;
        let mut offset_index =
            IndexFile::unpersisted(dir.join(file_name(base, "index")), Vec::new(), files);
        let mut time_index =
            IndexFile::unpersisted(dir.join(file_name(base, "timeindex")), Vec::new(), files);
        offset_index.rewrite()?;
        time_index.rewrite()?;
        let mut txn_index =
            TxnIndex::unpersisted(dir.join(file_name(base, "txnindex")), Vec::new(), files);
        txn_index.delete()?;
        Ok(Segment {
            base,
            log: CachedFile::with_open(log_path, OpenMode::Existing, files, log),
            size: 0,
            next_offset: base,
            offset_index,
            time_index,
            txn_index,
            tracker: IndexTracker::default(),
            first_append_ms: None,
            dirty: true,
        })
    }

    /// Opens an existing segment and scans it (`mode`; a missing or damaged index forces a full
    /// scan), calling `on_batch` for each good batch. Cuts the `.log` at the first bad batch and
    /// rebuilds whichever index disagrees with the data. Returns the segment and, if it was cut,
    /// why. The `.txnindex` starts empty in memory: the caller replays the batches and hands the
    /// entries to `set_txn_entries`.
    pub fn open(
        dir: &Path,
        base: i64,
        mut mode: ScanMode,
        index_interval: u32,
        now_ms: i64,
        files: &Arc<FileCache>,
        on_batch: &mut dyn FnMut(&BatchHeader, Option<&[u8]>),
    ) -> Result<(Segment, Option<String>), LogError> {
        let log_path = dir.join(file_name(base, "log"));
        let log = OpenOptions::new().read(true).write(true).open(&log_path)?;
        let file_len = log.metadata()?.len();
        let offset_path = dir.join(file_name(base, "index"));
        let time_path = dir.join(file_name(base, "timeindex"));
        let loaded_offset = IndexFile::<OffsetEntry>::load(&offset_path, files)?;
        let loaded_time = IndexFile::<TimeEntry>::load(&time_path, files)?;
        if loaded_offset.is_none() || loaded_time.is_none() {
            tracing::info!(segment = %log_path.display(), "index missing or damaged; scanning the whole segment");
            mode = ScanMode::Full;
        }
        let scan = scan_segment(
            &log,
            file_len,
            base,
            mode,
            index_interval,
            (
                loaded_offset.as_ref().map_or(&[], |i| i.entries()),
                loaded_time.as_ref().map_or(&[], |i| i.entries()),
            ),
            on_batch,
        )?;
        if let Some(reason) = &scan.damage {
            tracing::warn!(segment = %log_path.display(), cut_at = scan.valid_bytes, dropped = file_len - scan.valid_bytes, %reason, "truncating segment at first invalid batch");
            log.set_len(scan.valid_bytes)?;
            log.sync_all()?;
        }
        let clean = scan.damage.is_none();
        let mut tracker = scan.tracker.clone();
        let offset_index = match loaded_offset.filter(|_| clean && scan.offset_index_matches) {
            Some(index) => {
                // Restart the interval count at the last entry: at worst the next entry comes early.
                let last = index.entries().last().map_or(0, |e| u64::from(e.position));
                tracker.bytes_since_entry = scan.valid_bytes.saturating_sub(last);
                index
            }
            None => {
                tracing::info!(segment = %log_path.display(), "rebuilding offset index");
                let mut index = IndexFile::unpersisted(offset_path, scan.offset_entries, files);
                index.rewrite()?;
                index
            }
        };
        let time_index = match loaded_time.filter(|_| clean && scan.time_index_matches) {
            Some(index) => index,
            None => {
                tracing::info!(segment = %log_path.display(), "rebuilding time index");
                let mut index = IndexFile::unpersisted(time_path, scan.time_entries, files);
                index.rewrite()?;
                index
            }
        };
        let segment = Segment {
            base,
            log: CachedFile::with_open(log_path, OpenMode::Existing, files, log),
            size: scan.valid_bytes,
            next_offset: scan.next_offset.unwrap_or(base),
            offset_index,
            time_index,
            txn_index: TxnIndex::unpersisted(
                dir.join(file_name(base, "txnindex")),
                Vec::new(),
                files,
            ),
            tracker,
            first_append_ms: scan.first_batch_timestamp.map(|t| {
                if t >= 0 {
                    t.min(now_ms)
                } else {
                    now_ms
                }
            }),
            dirty: false,
        };
        Ok((segment, scan.damage))
    }

    /// Whether the segment holds no batch.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Largest batch maxTimestamp in the segment, -1 when none.
    pub fn max_timestamp(&self) -> i64 {
        self.tracker.max_timestamp
    }

    /// Last offset of the batch holding `max_timestamp`, -1 when none.
    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.tracker.offset_of_max_timestamp
    }

    /// The timestamp retention.ms compares against: the largest record timestamp, or the file's
    /// modification time when the batches carry none (Kafka's rule).
    pub fn largest_timestamp(&self) -> i64 {
        if self.tracker.max_timestamp >= 0 {
            return self.tracker.max_timestamp;
        }
        std::fs::metadata(self.log.path())
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// Appends `data`, whose batches (already patched, positions relative to `data`) are
    /// `batches`, and indexes them.
    pub fn append(
        &mut self,
        data: &[u8],
        batches: &[BatchRef],
        index_interval: u32,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let start = self.size;
        let log = self.log.get()?;
        if let Err(e) = log.write_all_at(data, start) {
            // Never leave half a batch behind: a later append would write after it.
            if let Err(e2) = log.set_len(start) {
                tracing::error!(segment = %self.log.path().display(), error = %e2, "could not cut a failed append");
            }
            return Err(e.into());
        }
        self.size += data.len() as u64;
        self.dirty = true;
        self.first_append_ms.get_or_insert(now_ms);
        for b in batches {
            let position = u32::try_from(start + b.position as u64).unwrap_or(u32::MAX);
            let last_time = self.time_index.entries().last().copied();
            let (o, t) =
                self.tracker
                    .track(self.base, position, &b.header, index_interval, last_time);
            if let Some(o) = o {
                self.offset_index.push(o);
            }
            if let Some(t) = t {
                self.time_index.push(t);
            }
            self.next_offset = b.header.last_offset() + 1;
        }
        self.offset_index.persist()?;
        self.time_index.persist()?;
        Ok(())
    }

    /// The segment's `.txnindex`.
    pub fn txn_index(&self) -> &TxnIndex {
        &self.txn_index
    }

    /// Records an aborted transaction whose marker was just appended here, and writes it.
    pub fn append_aborted(&mut self, entry: AbortedTxn) -> Result<(), LogError> {
        debug_assert!(
            self.txn_index
                .entries()
                .last()
                .is_none_or(|l| l.last_offset < entry.last_offset),
            "txn index entries grow by marker offset"
        );
        debug_assert!(entry.last_offset.0 >= self.base && entry.last_offset.0 < self.next_offset);
        self.txn_index.push(entry);
        self.txn_index.persist()?;
        self.dirty = true;
        Ok(())
    }

    /// Installs the `.txnindex` entries a replay of this segment produced: the file on disk is
    /// kept if it holds exactly these, rewritten otherwise, and removed when there are none.
    /// The file is read only when its size is exactly what the entries need, so a damaged or
    /// oversized file costs no more than a `stat`.
    pub fn set_txn_entries(&mut self, entries: Vec<AbortedTxn>) -> Result<(), LogError> {
        let path = self.log.path().with_extension("txnindex");
        let expected_len = (entries.len() * AbortedTxn::SIZE) as u64;
        let on_disk = match std::fs::metadata(&path) {
            Ok(m) => Some(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let kept = match on_disk {
            Some(len) if len == expected_len && !entries.is_empty() => {
                TxnIndex::load(&path, self.log.cache())?
                    .filter(|i| i.entries() == entries.as_slice())
            }
            _ => None,
        };
        if let Some(index) = kept {
            self.txn_index = index;
            return Ok(());
        }
        if on_disk.is_some() || !entries.is_empty() {
            tracing::info!(segment = %self.log.path().display(), entries = entries.len(), "rebuilding txn index");
        }
        self.txn_index = TxnIndex::unpersisted(path, entries, self.log.cache());
        if self.txn_index.entries().is_empty() {
            self.txn_index.delete()?;
        } else {
            self.txn_index.rewrite()?;
        }
        Ok(())
    }

    /// A buffered reader over the segment's valid bytes.
    pub fn reader(&self, chunk: usize) -> Result<SegmentReader<'static>, LogError> {
        Ok(SegmentReader::shared(self.log.get()?, self.size, chunk))
    }

    /// Where to start walking batches to find `offset`: the batch containing it starts at or after.
    pub fn start_position(&self, offset: i64) -> u64 {
        u64::from(self.offset_index.lookup(relative(self.base, offset)))
    }

    /// Where to start walking batches to find the first batch with maxTimestamp >= `ts`.
    pub fn time_start_position(&self, ts: i64) -> u64 {
        match self.time_index.lookup_before(ts) {
            // Every batch up to that offset is older than `ts`: start at the batch after it.
            Some(e) => self.start_position(self.base + i64::from(e.relative_offset) + 1),
            None => 0,
        }
    }

    /// The first batch whose last offset is >= `offset`, with its position.
    pub fn find(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let mut pos = self.start_position(offset);
        let mut reader = self.reader(8 << 10)?;
        while let Some(h) = reader.header(pos)? {
            if h.last_offset() >= offset {
                return Ok(Some((pos, h)));
            }
            pos += h.total_size() as u64;
        }
        Ok(None)
    }

    /// Reads bytes `[from, to)` of the `.log`.
    pub fn read_bytes(&self, from: u64, to: u64) -> Result<Vec<u8>, LogError> {
        let len = usize::try_from(to.saturating_sub(from))
            .map_err(|_| LogError::Corrupted("read too large".into()))?;
        // Read into spare capacity instead of zero-filling first: on the fetch path the memset
        // cost a tenth of the broker's CPU. Writes are positional, so moving the cursor is
        // harmless, and reads run under the partition lock.
        use std::io::{Read, Seek, SeekFrom};
        // A damaged header's size cannot reserve more than the segment holds.
        let mut buf = Vec::with_capacity(
            len.min(usize::try_from(self.size.saturating_sub(from)).unwrap_or(usize::MAX)),
        );
        let log = self.log.get()?;
        let mut f: &std::fs::File = &log;
        f.seek(SeekFrom::Start(from))?;
        f.take(len as u64).read_to_end(&mut buf)?;
        if buf.len() != len {
            return Err(LogError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("segment ended {} bytes short of a read", len - buf.len()),
            )));
        }
        Ok(buf)
    }

    /// Cuts the segment at byte `pos` (a batch boundary) and sets its next offset; the indexes
    /// are rebuilt from what remains.
    pub fn truncate_at(
        &mut self,
        pos: u64,
        next_offset: i64,
        index_interval: u32,
    ) -> Result<(), LogError> {
        let log = self.log.get()?;
        log.set_len(pos)?;
        self.size = pos;
        let scan = scan_segment(
            &log,
            pos,
            self.base,
            ScanMode::Headers,
            index_interval,
            (&[], &[]),
            &mut |_, _| {},
        )?;
        self.install_scan(scan)?;
        let cut = next_offset.max(self.base);
        self.txn_index.truncate_from(|e| e.last_offset.0 >= cut)?;
        self.next_offset = next_offset.max(self.base);
        if pos == 0 {
            self.first_append_ms = None;
        }
        self.dirty = true;
        Ok(())
    }

    /// Takes a rescan's tracker and indexes, rewriting the index files from them.
    fn install_scan(&mut self, scan: super::scan::ScanOutcome) -> Result<(), LogError> {
        self.tracker = scan.tracker;
        self.offset_index = IndexFile::unpersisted(
            self.log.path().with_extension("index"),
            scan.offset_entries,
            self.log.cache(),
        );
        self.time_index = IndexFile::unpersisted(
            self.log.path().with_extension("timeindex"),
            scan.time_entries,
            self.log.cache(),
        );
        self.offset_index.rewrite()?;
        self.time_index.rewrite()?;
        Ok(())
    }

    /// The segment stops being the active one: record its final largest timestamp in the time
    /// index (as Kafka does on roll) and let go of the index file descriptors.
    pub fn seal(&mut self) -> Result<(), LogError> {
        let last_time = self.time_index.entries().last().copied();
        if let Some(t) = self.tracker.time_entry_due(self.base, last_time) {
            self.time_index.push(t);
        }
        self.offset_index.persist()?;
        self.time_index.persist()?;
        self.txn_index.persist()?;
        self.offset_index.release();
        self.time_index.release();
        self.txn_index.release();
        Ok(())
    }

    /// fsyncs the `.log` and indexes if anything was written since the last flush.
    pub fn flush(&mut self) -> Result<(), LogError> {
        if self.dirty {
            self.log.get()?.sync_data()?;
            self.offset_index.sync()?;
            self.time_index.sync()?;
            self.txn_index.sync()?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Where the cleaner writes this segment's replacement (`<base>.log.cleaned`); open removes
    /// such a file if a crash left it behind.
    pub fn cleaned_path(&self) -> PathBuf {
        self.log.path().with_extension("log.cleaned")
    }

    /// Swaps in the cleaner's output written and fsynced at `cleaned_path()`: the file is checked
    /// batch by batch (structure, CRC, offsets within this segment) before anything changes; then
    /// the indexes are removed, the file is renamed over the `.log` (the atomic step: a crash
    /// leaves either the old or the new data, and open rebuilds the missing indexes), the
    /// directory is fsynced and the indexes are rebuilt from the new data. On error before the
    /// rename the segment is unchanged.
    pub fn swap_in_cleaned(&mut self, index_interval: u32) -> Result<(), LogError> {
        let cleaned = self.cleaned_path();
        let file = OpenOptions::new().read(true).write(true).open(&cleaned)?;
        let len = file.metadata()?.len();
        let scan = scan_segment(
            &file,
            len,
            self.base,
            ScanMode::Full,
            index_interval,
            (&[], &[]),
            &mut |_, _| {},
        )?;
        if let Some(reason) = scan.damage {
            drop(file);
            std::fs::remove_file(&cleaned)?;
            return Err(LogError::Corrupted(format!(
                "cleaned segment {} rejected: {reason}",
                cleaned.display()
            )));
        }
        self.offset_index.delete()?;
        self.time_index.delete()?;
        std::fs::rename(&cleaned, self.log.path())?;
        if let Some(dir) = self.log.path().parent() {
            super::checkpoint::sync_dir(dir)?;
        }
        self.log.install(file);
        self.size = scan.valid_bytes;
        self.next_offset = scan.next_offset.unwrap_or(self.base);
        self.install_scan(scan)?;
        self.offset_index.sync()?;
        self.time_index.sync()?;
        self.offset_index.release();
        self.time_index.release();
        self.dirty = false;
        Ok(())
    }

    /// Removes the segment's files.
    pub fn delete(mut self) -> Result<(), LogError> {
        self.log.close();
        self.offset_index.delete()?;
        self.time_index.delete()?;
        self.txn_index.delete()?;
        match std::fs::remove_file(self.log.path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}
