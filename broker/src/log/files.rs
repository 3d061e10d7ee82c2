//! The node's bounded cache of open segment and index files.
//!
//! A partition used to hold its files open for as long as it was hosted: the active segment's
//! `.log`, `.index` and `.timeindex` and every rolled segment's `.log`. That tied the number of
//! partitions a node could host to its file-descriptor limit (about 6,000 under a limit of
//! 20,000). Here every such file is a [`CachedFile`]: a path plus a weak pointer to an open
//! descriptor that lives in one per-node [`FileCache`] holding at most `limit` descriptors
//! (`log.open.files.max`). A hit is a weak-pointer upgrade and a relaxed store (no shared
//! lock); a miss opens the file and inserts it, closing another one chosen by the CLOCK
//! algorithm (a second chance for anything used since the hand last passed). Partitions are
//! then bounded by memory: what a closed segment keeps is its indexes, in memory.
//!
//! Invariants:
//! - the cache holds at most `limit` descriptors; descriptors still in use by an operation
//!   when they were evicted stay open until that operation ends (an `Arc` the operation
//!   holds), so the process total exceeds the limit by at most one per concurrent operation;
//! - a file is never open twice through its `CachedFile` (the per-file lock serialises a miss);
//! - dropping a `CachedFile` (segment deleted, partition closed) closes its descriptor at once,
//!   so a deleted segment's disk space is freed without waiting for an eviction.
//!
//! Closing a descriptor with unflushed writes loses nothing: the data is in the page cache,
//! and a later `fsync` through a new descriptor writes the inode's dirty pages; Linux (4.16+)
//! reports a writeback error nobody has seen yet to the next `fsync` on any descriptor.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// The smallest cache: enough for the active segments a handful of concurrent appends touch.
pub const MIN_OPEN_FILES: usize = 16;

/// One open descriptor in the cache.
#[derive(Debug)]
pub(crate) struct OpenFile {
    file: File,
    /// Used since the CLOCK hand last passed: the next pass spares it once.
    referenced: AtomicBool,
    /// Its index in the cache's ring, maintained under the cache lock.
    slot: AtomicUsize,
}

impl std::ops::Deref for OpenFile {
    type Target = File;
    fn deref(&self) -> &File {
        &self.file
    }
}

/// The ring of open descriptors and the CLOCK hand.
#[derive(Debug, Default)]
struct Ring {
    slots: Vec<Arc<OpenFile>>,
    hand: usize,
}

/// A bounded set of open files shared by every partition log of a node.
#[derive(Debug)]
pub struct FileCache {
    limit: usize,
    ring: Mutex<Ring>,
    opens: AtomicU64,
    evictions: AtomicU64,
}

/// What the cache has done, for the broker's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCacheStats {
    /// Descriptors the cache holds now.
    pub open: usize,
    /// The most it holds.
    pub limit: usize,
    /// Files opened since start (misses).
    pub opens: u64,
    /// Descriptors closed to make room since start.
    pub evictions: u64,
}

impl FileCache {
    /// A cache holding at most `limit` descriptors (at least [`MIN_OPEN_FILES`]).
    pub fn new(limit: usize) -> Arc<FileCache> {
        Arc::new(FileCache {
            limit: limit.max(MIN_OPEN_FILES),
            ring: Mutex::new(Ring::default()),
            opens: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        })
    }

    /// Counts and size, for metrics.
    pub fn stats(&self) -> FileCacheStats {
        FileCacheStats {
            open: self.ring.lock().map_or(0, |r| r.slots.len()),
            limit: self.limit,
            opens: self.opens.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }

    /// Takes `file` in, closing another descriptor if the cache is full.
    fn insert(&self, file: File) -> Arc<OpenFile> {
        let entry = Arc::new(OpenFile {
            file,
            // Not referenced until a second use: a file touched once goes first.
            referenced: AtomicBool::new(false),
            slot: AtomicUsize::new(0),
        });
        let evicted = {
            let Ok(mut ring) = self.ring.lock() else {
                // A poisoned lock: serve the file uncached rather than fail the operation.
                return entry;
            };
            if ring.slots.len() < self.limit {
                entry.slot.store(ring.slots.len(), Ordering::Relaxed);
                ring.slots.push(entry.clone());
                None
            } else {
                let at = ring.victim();
                entry.slot.store(at, Ordering::Relaxed);
                let old = std::mem::replace(&mut ring.slots[at], entry.clone());
                ring.hand = (at + 1) % ring.slots.len();
                Some(old)
            }
        };
        if evicted.is_some() {
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        debug_assert!(self.stats().open <= self.limit);
        // `evicted` is closed here, outside the lock (or later, by its last user).
        entry
    }

    /// Closes `entry`'s descriptor (as far as the cache is concerned) if it is still cached.
    fn remove(&self, entry: &Arc<OpenFile>) {
        let Ok(mut ring) = self.ring.lock() else {
            return;
        };
        let at = entry.slot.load(Ordering::Relaxed);
        if !ring.slots.get(at).is_some_and(|e| Arc::ptr_eq(e, entry)) {
            return;
        }
        let removed = ring.slots.swap_remove(at);
        if let Some(moved) = ring.slots.get(at) {
            moved.slot.store(at, Ordering::Relaxed);
        }
        if ring.hand >= ring.slots.len() {
            ring.hand = 0;
        }
        drop(ring);
        drop(removed);
    }
}

impl Ring {
    /// The slot to reuse: the first unreferenced one from the hand on, clearing the
    /// reference bits it passes. At most two turns: after one, every bit is clear.
    fn victim(&mut self) -> usize {
        let n = self.slots.len();
        debug_assert!(n > 0);
        for step in 0..2 * n {
            let at = (self.hand + step) % n;
            if !self.slots[at].referenced.swap(false, Ordering::Relaxed) {
                return at;
            }
        }
        self.hand % n
    }
}

/// How a [`CachedFile`] opens its file on a miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenMode {
    /// Read and write; the file must exist (a segment's `.log`).
    Existing,
    /// Read and write, created empty if missing (an index, rewritten from memory).
    CreateIfMissing,
}

/// A file opened on demand through the node's [`FileCache`].
#[derive(Debug)]
pub(crate) struct CachedFile {
    path: PathBuf,
    mode: OpenMode,
    cache: Arc<FileCache>,
    current: Mutex<Weak<OpenFile>>,
}

impl CachedFile {
    /// The file at `path`, not opened yet.
    pub fn new(path: PathBuf, mode: OpenMode, cache: &Arc<FileCache>) -> CachedFile {
        CachedFile {
            path,
            mode,
            cache: cache.clone(),
            current: Mutex::new(Weak::new()),
        }
    }

    /// The file at `path`, already open as `file` (just created or scanned).
    pub fn with_open(
        path: PathBuf,
        mode: OpenMode,
        cache: &Arc<FileCache>,
        file: File,
    ) -> CachedFile {
        let f = CachedFile::new(path, mode, cache);
        f.install(file);
        f
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cache this file is opened through (for the files that accompany it).
    pub fn cache(&self) -> &Arc<FileCache> {
        &self.cache
    }

    /// The open descriptor, opening the file if the cache closed it.
    pub fn get(&self) -> io::Result<Arc<OpenFile>> {
        let mut current = self
            .current
            .lock()
            .map_err(|_| io::Error::other("file handle lock poisoned"))?;
        if let Some(open) = current.upgrade() {
            open.referenced.store(true, Ordering::Relaxed);
            return Ok(open);
        }
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        if self.mode == OpenMode::CreateIfMissing {
            options.create(true).truncate(false);
        }
        let file = options.open(&self.path)?;
        self.cache.opens.fetch_add(1, Ordering::Relaxed);
        let open = self.cache.insert(file);
        *current = Arc::downgrade(&open);
        Ok(open)
    }

    /// Whether the cache holds this file's descriptor now.
    #[cfg(test)]
    pub fn is_open(&self) -> bool {
        let Some(open) = self.current.lock().ok().and_then(|c| c.upgrade()) else {
            return false;
        };
        let ring = self.cache.ring.lock().expect("ring");
        ring.slots
            .get(open.slot.load(Ordering::Relaxed))
            .is_some_and(|e| Arc::ptr_eq(e, &open))
    }

    /// Replaces the descriptor with `file` (the path now names a new file, e.g. after a
    /// rename over it); the old one is closed.
    pub fn install(&self, file: File) {
        let open = self.cache.insert(file);
        if let Ok(mut current) = self.current.lock() {
            if let Some(old) = std::mem::replace(&mut *current, Arc::downgrade(&open)).upgrade() {
                self.cache.remove(&old);
            }
        }
    }

    /// Closes the descriptor now (before deleting the file, or when idle).
    pub fn close(&self) {
        let old = match self.current.lock() {
            Ok(mut current) => std::mem::take(&mut *current).upgrade(),
            Err(_) => None,
        };
        if let Some(old) = old {
            self.cache.remove(&old);
        }
    }
}

impl Drop for CachedFile {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    fn files(dir: &Path, n: usize, cache: &Arc<FileCache>) -> Vec<CachedFile> {
        (0..n)
            .map(|i| {
                let path = dir.join(format!("{i}.log"));
                let mut f = File::create(&path).unwrap();
                writeln!(f, "file {i}").unwrap();
                CachedFile::new(path, OpenMode::Existing, cache)
            })
            .collect()
    }

    #[test]
    fn never_holds_more_than_its_limit_and_reopens_what_it_closed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(MIN_OPEN_FILES);
        let fs = files(dir.path(), 100, &cache);
        for round in 0..3 {
            for (i, f) in fs.iter().enumerate() {
                let open = f.get().unwrap();
                let mut buf = vec![0u8; 32];
                let n = open.read_at(&mut buf, 0).unwrap();
                assert_eq!(&buf[..n], format!("file {i}\n").as_bytes(), "round {round}");
                assert!(cache.stats().open <= MIN_OPEN_FILES);
            }
        }
        let s = cache.stats();
        assert_eq!(s.open, MIN_OPEN_FILES);
        assert_eq!(
            s.opens, 300,
            "every access missed: 100 files cycled through 16 slots"
        );
        assert_eq!(s.evictions, 300 - MIN_OPEN_FILES as u64);
    }

    #[test]
    fn a_file_in_use_keeps_hitting_while_others_cycle() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(MIN_OPEN_FILES);
        let fs = files(dir.path(), 40, &cache);
        let hot = &fs[0];
        hot.get().unwrap();
        for f in &fs[1..] {
            f.get().unwrap();
            // The hot file is used between every other access: CLOCK spares it.
            hot.get().unwrap();
        }
        assert!(hot.is_open());
        assert_eq!(
            cache.stats().opens,
            40,
            "the hot file was opened once; each other file once"
        );
    }

    #[test]
    fn a_descriptor_evicted_while_in_use_stays_usable() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(MIN_OPEN_FILES);
        let fs = files(dir.path(), 40, &cache);
        let held = fs[0].get().unwrap();
        for f in &fs[1..] {
            f.get().unwrap();
        }
        assert!(!fs[0].is_open(), "the cache let go of it");
        let mut buf = [0u8; 7];
        held.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"file 0\n");
    }

    #[test]
    fn dropping_or_closing_a_file_frees_its_slot() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(MIN_OPEN_FILES);
        let mut fs = files(dir.path(), 10, &cache);
        for f in &fs {
            f.get().unwrap();
        }
        assert_eq!(cache.stats().open, 10);
        fs[3].close();
        assert!(!fs[3].is_open());
        fs.truncate(5);
        assert_eq!(cache.stats().open, 4);
        // The survivors are still reachable through their slots after the swaps.
        for f in fs.iter().filter(|f| f.is_open()) {
            f.close();
        }
        assert_eq!(cache.stats().open, 0);
    }

    #[test]
    fn install_replaces_the_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(MIN_OPEN_FILES);
        let fs = files(dir.path(), 1, &cache);
        fs[0].get().unwrap();
        let replacement = dir.path().join("new");
        std::fs::write(&replacement, b"replaced").unwrap();
        std::fs::rename(&replacement, fs[0].path()).unwrap();
        fs[0].install(
            File::options()
                .read(true)
                .write(true)
                .open(fs[0].path())
                .unwrap(),
        );
        assert_eq!(cache.stats().open, 1);
        let mut buf = [0u8; 8];
        fs[0].get().unwrap().read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"replaced");
    }

    #[test]
    fn a_missing_file_is_an_error_unless_it_may_be_created() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(MIN_OPEN_FILES);
        let gone = CachedFile::new(dir.path().join("gone.log"), OpenMode::Existing, &cache);
        assert_eq!(gone.get().unwrap_err().kind(), io::ErrorKind::NotFound);
        let index = CachedFile::new(
            dir.path().join("new.index"),
            OpenMode::CreateIfMissing,
            &cache,
        );
        index.get().unwrap();
        assert!(dir.path().join("new.index").exists());
    }
}
