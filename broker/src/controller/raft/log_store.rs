//! The Raft log on disk (openraft's [`RaftLogStorage`]).
//!
//! Layout under the quorum directory:
//! - `vote.json`: the last vote, replaced atomically (tmp, fsync, rename, fsync dir) before
//!   `save_vote` returns;
//! - `purged.json`: the last purged log id, written (durably) before segments are deleted;
//! - `committed.json`: the last committed log id, a recovery hint only (written without fsync;
//!   a missing or unreadable one just means less is replayed at start);
//! - `log/<first index, 20 digits>.log`: segments of records `[u32 BE length][u32 BE CRC32C of
//!   the payload][payload: one JSON entry]`, entries with consecutive indexes. A segment rolls
//!   after [`SEGMENT_MAX_ENTRIES`] entries or [`SEGMENT_MAX_BYTES`] bytes.
//!
//! Every entry is also kept in memory (the log is bounded by the snapshot policy, which purges
//! it up to each snapshot), with its segment and byte position for truncation. `append` writes
//! then fsyncs before reporting the entries flushed. `truncate` deletes later segments newest
//! first then cuts the containing one, and `purge` records the purge point then deletes whole
//! segments at or below it, so a crash at any point leaves no hole. On open, a torn or corrupt
//! tail of the last segment (a crash mid-append) is cut off; corruption elsewhere is an error.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, LogState, RaftLogReader, StorageError, StorageIOError, Vote,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{NodeId, TypeConfig};

/// A segment rolls after this many entries.
pub const SEGMENT_MAX_ENTRIES: u64 = 1024;
/// A segment rolls after this many bytes.
pub const SEGMENT_MAX_BYTES: u64 = 8 << 20;
/// Record header: length and CRC.
const HEADER: usize = 8;

type Res<T> = Result<T, StorageError<NodeId>>;

fn any(e: &io::Error) -> AnyError {
    AnyError::new(e)
}

/// Sentinel for "no committed index" in [`CommitTracker`].
const NONE: u64 = u64::MAX;

/// The last committed index, shared with the status report.
#[derive(Debug)]
pub(crate) struct CommitTracker(AtomicU64);

impl CommitTracker {
    fn new(v: Option<u64>) -> CommitTracker {
        CommitTracker(AtomicU64::new(v.unwrap_or(NONE)))
    }

    fn set(&self, v: Option<u64>) {
        self.0.store(v.unwrap_or(NONE), Ordering::Relaxed);
    }

    /// The last committed log index known to this node.
    pub(crate) fn get(&self) -> Option<u64> {
        match self.0.load(Ordering::Relaxed) {
            NONE => None,
            v => Some(v),
        }
    }
}

/// Where one entry sits on disk.
#[derive(Debug, Clone)]
struct Located {
    entry: Entry<TypeConfig>,
    segment: u64,
    pos: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct SegmentInfo {
    len: u64,
    count: u64,
}

#[derive(Debug)]
struct LogInner {
    state_dir: PathBuf,
    log_dir: PathBuf,
    entries: BTreeMap<u64, Located>,
    segments: BTreeMap<u64, SegmentInfo>,
    /// The newest segment, open for appending.
    active: Option<(u64, File)>,
    purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    max_record: usize,
}

/// The Raft log and vote store. Cloning shares the same log (the clone serves as the log
/// reader of replication tasks).
#[derive(Debug, Clone)]
pub(crate) struct LogStore {
    inner: Arc<Mutex<LogInner>>,
    commit: Arc<CommitTracker>,
}

impl LogStore {
    /// Opens (or creates) the log in `dir`, recovering from a crash mid-write.
    pub(crate) fn open(dir: &Path, max_record: usize) -> io::Result<LogStore> {
        let log_dir = dir.join("log");
        fs::create_dir_all(&log_dir)?;
        remove_tmp_files(dir)?;
        remove_tmp_files(&log_dir)?;
        let vote: Option<Vote<NodeId>> = read_json(&dir.join("vote.json"))?;
        let purged: Option<LogId<NodeId>> = read_json(&dir.join("purged.json"))?;
        let committed: Option<LogId<NodeId>> = match read_json(&dir.join("committed.json")) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring unreadable committed.json (a recovery hint)");
                None
            }
        };
        let mut inner = LogInner {
            state_dir: dir.to_path_buf(),
            log_dir,
            entries: BTreeMap::new(),
            segments: BTreeMap::new(),
            active: None,
            purged,
            vote,
            committed,
            max_record,
        };
        inner.load_segments()?;
        let commit = Arc::new(CommitTracker::new(committed.map(|c| c.index)));
        tracing::info!(
            dir = %dir.display(),
            entries = inner.entries.len(),
            segments = inner.segments.len(),
            purged = ?inner.purged,
            "opened metadata raft log"
        );
        Ok(LogStore {
            inner: Arc::new(Mutex::new(inner)),
            commit,
        })
    }

    /// The committed-index tracker this store updates.
    pub(crate) fn commit_tracker(&self) -> Arc<CommitTracker> {
        self.commit.clone()
    }

    fn lock(&self) -> MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl LogInner {
    fn segment_path(&self, base: u64) -> PathBuf {
        self.log_dir.join(format!("{base:020}.log"))
    }

    fn next_index(&self) -> u64 {
        match self.entries.last_key_value() {
            Some((i, _)) => i + 1,
            None => self.purged.map(|p| p.index + 1).unwrap_or(0),
        }
    }

    fn load_segments(&mut self) -> io::Result<()> {
        let mut bases = Vec::new();
        for e in fs::read_dir(&self.log_dir)? {
            let e = e?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            if let Some(base) = name
                .strip_suffix(".log")
                .and_then(|b| b.parse::<u64>().ok())
            {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        let purged_index = self.purged.map(|p| p.index);
        let n = bases.len();
        let mut expected: Option<u64> = None;
        for (i, base) in bases.into_iter().enumerate() {
            let last_segment = i + 1 == n;
            let path = self.segment_path(base);
            let mut bytes = Vec::new();
            File::open(&path)?.read_to_end(&mut bytes)?;
            if let Some(exp) = expected {
                if base != exp {
                    return Err(invalid(format!(
                        "{}: starts at {base}, expected {exp}",
                        path.display()
                    )));
                }
            }
            let mut pos = 0usize;
            let mut next = base;
            let mut count = 0u64;
            let cut = loop {
                if pos == bytes.len() {
                    break None;
                }
                match decode_record(&bytes[pos..], self.max_record) {
                    Ok((entry, used)) => {
                        if entry.log_id.index != next {
                            break Some(format!(
                                "entry index {} where {next} was expected",
                                entry.log_id.index
                            ));
                        }
                        if purged_index.is_none_or(|p| next > p) {
                            self.entries.insert(
                                next,
                                Located {
                                    entry,
                                    segment: base,
                                    pos: pos as u64,
                                },
                            );
                        }
                        pos += used;
                        next += 1;
                        count += 1;
                    }
                    Err(why) => break Some(why),
                }
            };
            if let Some(why) = cut {
                if !last_segment {
                    return Err(invalid(format!(
                        "{}: corrupt record at byte {pos}: {why}",
                        path.display()
                    )));
                }
                tracing::warn!(segment = %path.display(), pos, reason = %why, "cutting torn tail of the metadata log");
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(pos as u64)?;
                f.sync_all()?;
            }
            self.segments.insert(
                base,
                SegmentInfo {
                    len: pos as u64,
                    count,
                },
            );
            expected = Some(next);
        }
        // Segments entirely at or below the purge point are garbage.
        if let Some(p) = purged_index {
            let dead: Vec<u64> = self
                .segments
                .iter()
                .filter(|(base, info)| *base + info.count <= p + 1)
                .map(|(b, _)| *b)
                .collect();
            for base in dead {
                fs::remove_file(self.segment_path(base))?;
                self.segments.remove(&base);
            }
            sync_dir(&self.log_dir)?;
        }
        // The first entry must follow the purge point (or be index 0).
        if let Some((&first, _)) = self.entries.first_key_value() {
            let want = purged_index.map(|p| p + 1).unwrap_or(0);
            if first != want {
                return Err(invalid(format!(
                    "metadata log starts at {first} but the purge point requires {want}"
                )));
            }
        }
        if let Some((&base, _)) = self.segments.last_key_value() {
            let f = OpenOptions::new()
                .append(true)
                .open(self.segment_path(base))?;
            self.active = Some((base, f));
        }
        Ok(())
    }

    fn append(&mut self, entries: Vec<Entry<TypeConfig>>) -> io::Result<()> {
        let mut buf: Vec<u8> = Vec::new();
        for entry in entries {
            let index = entry.log_id.index;
            let want = self.next_index();
            if index != want {
                return Err(invalid(format!("append of index {index}, expected {want}")));
            }
            let roll = match &self.active {
                None => true,
                Some((base, _)) => {
                    let info = self.segments.get(base).copied().unwrap_or_default();
                    info.count >= SEGMENT_MAX_ENTRIES || info.len >= SEGMENT_MAX_BYTES
                }
            };
            if roll {
                self.flush_buf(&mut buf)?;
                if let Some((_, f)) = &self.active {
                    f.sync_data()?;
                }
                let path = self.segment_path(index);
                let f = OpenOptions::new()
                    .create_new(true)
                    .append(true)
                    .open(&path)?;
                sync_dir(&self.log_dir)?;
                self.segments.insert(index, SegmentInfo::default());
                self.active = Some((index, f));
            }
            let record = encode_record(&entry, self.max_record)?;
            let Some((base, _)) = &self.active else {
                return Err(io::Error::other("no active segment"));
            };
            let base = *base;
            let info = self.segments.entry(base).or_default();
            let pos = info.len + buf.len() as u64;
            buf.extend_from_slice(&record);
            info.count += 1;
            self.entries.insert(
                index,
                Located {
                    entry,
                    segment: base,
                    pos,
                },
            );
        }
        self.flush_buf(&mut buf)?;
        if let Some((_, f)) = &self.active {
            f.sync_data()?;
        }
        Ok(())
    }

    fn flush_buf(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let Some((base, f)) = &mut self.active else {
            return Err(io::Error::other("no active segment"));
        };
        f.write_all(buf)?;
        if let Some(info) = self.segments.get_mut(base) {
            info.len += buf.len() as u64;
        }
        buf.clear();
        Ok(())
    }

    /// Deletes entries from `since` on.
    fn truncate(&mut self, since: u64) -> io::Result<()> {
        let Some(first_gone) = self
            .entries
            .range(since..)
            .next()
            .map(|(_, l)| (l.segment, l.pos))
        else {
            return Ok(());
        };
        let (seg, pos) = first_gone;
        // Newest first, so a crash leaves a prefix of the log.
        let later: Vec<u64> = self
            .segments
            .range(seg + 1..)
            .map(|(b, _)| *b)
            .rev()
            .collect();
        for base in later {
            if self.active.as_ref().is_some_and(|(b, _)| *b == base) {
                self.active = None;
            }
            fs::remove_file(self.segment_path(base))?;
            self.segments.remove(&base);
        }
        if pos == 0 {
            if self.active.as_ref().is_some_and(|(b, _)| *b == seg) {
                self.active = None;
            }
            fs::remove_file(self.segment_path(seg))?;
            self.segments.remove(&seg);
        } else {
            let f = OpenOptions::new()
                .write(true)
                .open(self.segment_path(seg))?;
            f.set_len(pos)?;
            f.sync_all()?;
            // Entries are consecutive from the segment's base.
            self.segments.insert(
                seg,
                SegmentInfo {
                    len: pos,
                    count: since - seg,
                },
            );
        }
        sync_dir(&self.log_dir)?;
        self.entries.split_off(&since);
        if self.active.is_none() {
            if let Some((&base, _)) = self.segments.last_key_value() {
                let f = OpenOptions::new()
                    .append(true)
                    .open(self.segment_path(base))?;
                self.active = Some((base, f));
            }
        }
        Ok(())
    }

    /// Forgets entries up to `upto` (inclusive).
    fn purge(&mut self, upto: LogId<NodeId>) -> io::Result<()> {
        if self.purged.is_some_and(|p| p.index >= upto.index) {
            return Ok(());
        }
        write_json_atomic(&self.state_dir.join("purged.json"), &Some(upto), true)?;
        self.purged = Some(upto);
        self.entries = self.entries.split_off(&(upto.index + 1));
        let dead: Vec<u64> = self
            .segments
            .iter()
            .filter(|(base, info)| *base + info.count <= upto.index + 1)
            .map(|(b, _)| *b)
            .collect();
        for base in dead {
            if self.active.as_ref().is_some_and(|(b, _)| *b == base) {
                self.active = None;
            }
            fs::remove_file(self.segment_path(base))?;
            self.segments.remove(&base);
        }
        sync_dir(&self.log_dir)?;
        // A purge past the last entry (a snapshot install) empties the log: drop any segment
        // left, so the next append (at upto + 1) starts a segment of its own.
        if self.entries.is_empty() {
            for base in std::mem::take(&mut self.segments).into_keys() {
                fs::remove_file(self.segment_path(base))?;
            }
            self.active = None;
            sync_dir(&self.log_dir)?;
        }
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Res<Vec<Entry<TypeConfig>>> {
        let inner = self.lock();
        let start = match range.start_bound() {
            Bound::Included(&s) => Bound::Included(s),
            Bound::Excluded(&s) => Bound::Excluded(s),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => Bound::Included(e),
            Bound::Excluded(&e) => Bound::Excluded(e),
            Bound::Unbounded => Bound::Unbounded,
        };
        if let (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e)) = (start, end) {
            if s >= e {
                return Ok(Vec::new());
            }
        }
        Ok(inner
            .entries
            .range((start, end))
            .map(|(_, l)| l.entry.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Res<LogState<TypeConfig>> {
        let inner = self.lock();
        let last = inner
            .entries
            .last_key_value()
            .map(|(_, l)| l.entry.log_id)
            .or(inner.purged);
        Ok(LogState {
            last_purged_log_id: inner.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Res<()> {
        let mut inner = self.lock();
        write_json_atomic(&inner.state_dir.join("vote.json"), vote, true)
            .map_err(|e| StorageIOError::write_vote(any(&e)))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Res<Option<Vote<NodeId>>> {
        Ok(self.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Res<()> {
        let mut inner = self.lock();
        if inner.committed == committed {
            return Ok(());
        }
        // A hint for recovery: without fsync; an older or missing value only means that less
        // is re-applied at start (the leader's commit index brings the rest).
        if let Err(e) =
            write_json_atomic(&inner.state_dir.join("committed.json"), &committed, false)
        {
            tracing::warn!(error = %e, "cannot record the committed log id");
        }
        inner.committed = committed;
        self.commit.set(committed.map(|c| c.index));
        Ok(())
    }

    async fn read_committed(&mut self) -> Res<Option<LogId<NodeId>>> {
        Ok(self.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Res<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let res = self.lock().append(entries);
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "metadata log append failed");
                let err = StorageIOError::write_logs(any(&e));
                callback.log_io_completed(Err(e));
                Err(err.into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Res<()> {
        tracing::debug!(since = %log_id, "truncating metadata log");
        self.lock()
            .truncate(log_id.index)
            .map_err(|e| StorageIOError::write_logs(any(&e)).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Res<()> {
        tracing::debug!(upto = %log_id, "purging metadata log");
        self.lock()
            .purge(log_id)
            .map_err(|e| StorageIOError::write_logs(any(&e)).into())
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn encode_record(entry: &Entry<TypeConfig>, max: usize) -> io::Result<Vec<u8>> {
    let payload = serde_json::to_vec(entry).map_err(io::Error::other)?;
    if payload.len() > max {
        return Err(invalid(format!(
            "log entry of {} bytes exceeds the {max} byte limit",
            payload.len()
        )));
    }
    let len = u32::try_from(payload.len()).map_err(|_| invalid("log entry too large".into()))?;
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Decodes one record from the front of `buf`: the entry and the bytes used, or why not.
fn decode_record(buf: &[u8], max: usize) -> Result<(Entry<TypeConfig>, usize), String> {
    let (Some(len), Some(crc)) = (buf.get(0..4), buf.get(4..8)) else {
        return Err("truncated record header".into());
    };
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let crc = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if len > max {
        return Err(format!("record length {len} exceeds the {max} byte limit"));
    }
    let Some(payload) = buf.get(HEADER..HEADER + len) else {
        return Err("truncated record".into());
    };
    if crc32c::crc32c(payload) != crc {
        return Err("record checksum mismatch".into());
    }
    let entry = serde_json::from_slice(payload).map_err(|e| format!("undecodable entry: {e}"))?;
    Ok((entry, HEADER + len))
}

/// Reads a JSON file; `None` when it does not exist.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| invalid(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `value` as JSON through a temporary file and a rename; with `durable`
/// the data and the directory entry are fsynced before returning.
pub(crate) fn write_json_atomic<T: Serialize + ?Sized>(
    path: &Path,
    value: &T,
    durable: bool,
) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_atomic(path, &bytes, durable)
}

/// Replaces `path` with `bytes` through a temporary file and a rename (see [`write_json_atomic`]).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
    }
    fs::rename(&tmp, path)?;
    if durable {
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
    }
    Ok(())
}

/// Fsyncs a directory so created, renamed and deleted names survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn remove_tmp_files(dir: &Path) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_name().to_string_lossy().ends_with(".tmp") {
            fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::raft::command::{MetadataCommand, Proposal};
    use openraft::{CommittedLeaderId, EntryPayload};

    const MAX: usize = 1 << 20;

    fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Normal(Proposal {
                id: uuid::Uuid::from_u128(index as u128),
                command: MetadataCommand::AllocateProducerIds {
                    count: index as i64 + 1,
                },
            }),
        }
    }

    fn indexes(s: &LogStore) -> Vec<u64> {
        s.lock().entries.keys().copied().collect()
    }

    #[test]
    fn append_truncate_purge_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = LogStore::open(dir.path(), MAX).expect("open");
        let n = SEGMENT_MAX_ENTRIES * 2 + 10;
        s.lock()
            .append((0..n).map(|i| entry(1, i)).collect())
            .expect("append");
        assert_eq!(s.lock().segments.len(), 3);
        // Truncate inside the second segment, then into the first.
        s.lock()
            .truncate(SEGMENT_MAX_ENTRIES + 5)
            .expect("truncate");
        assert_eq!(indexes(&s).last(), Some(&(SEGMENT_MAX_ENTRIES + 4)));
        assert_eq!(s.lock().segments.len(), 2);
        s.lock()
            .append(vec![entry(2, SEGMENT_MAX_ENTRIES + 5)])
            .expect("append after truncate");
        drop(s);
        let s = LogStore::open(dir.path(), MAX).expect("reopen");
        let ix = indexes(&s);
        assert_eq!(ix.len() as u64, SEGMENT_MAX_ENTRIES + 6);
        assert_eq!(
            s.lock().entries[&(SEGMENT_MAX_ENTRIES + 5)]
                .entry
                .log_id
                .leader_id
                .term,
            2
        );
        // Truncating at a segment's first entry removes the segment.
        s.lock()
            .truncate(SEGMENT_MAX_ENTRIES)
            .expect("truncate at boundary");
        assert_eq!(s.lock().segments.len(), 1);
        s.lock()
            .append(vec![entry(3, SEGMENT_MAX_ENTRIES)])
            .expect("append");
        // Purge the first segment entirely: its file goes.
        s.lock()
            .purge(LogId::new(
                CommittedLeaderId::new(1, 1),
                SEGMENT_MAX_ENTRIES - 1,
            ))
            .expect("purge");
        assert_eq!(indexes(&s), vec![SEGMENT_MAX_ENTRIES]);
        drop(s);
        let s = LogStore::open(dir.path(), MAX).expect("reopen after purge");
        assert_eq!(indexes(&s), vec![SEGMENT_MAX_ENTRIES]);
        // Purge beyond the end (snapshot install): the log is empty and continues after it.
        s.lock()
            .purge(LogId::new(CommittedLeaderId::new(3, 1), 5000))
            .expect("purge past end");
        assert!(indexes(&s).is_empty());
        assert_eq!(s.lock().next_index(), 5001);
        s.lock()
            .append(vec![entry(4, 5001)])
            .expect("append after purge");
        drop(s);
        let s = LogStore::open(dir.path(), MAX).expect("reopen");
        assert_eq!(indexes(&s), vec![5001]);
        assert!(
            s.lock().append(vec![entry(4, 7)]).is_err(),
            "holes are refused"
        );
    }

    #[test]
    fn torn_tail_is_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = LogStore::open(dir.path(), MAX).expect("open");
        s.lock()
            .append((0..5).map(|i| entry(1, i)).collect())
            .expect("append");
        drop(s);
        let seg = dir.path().join("log").join(format!("{:020}.log", 0));
        let len = fs::metadata(&seg).expect("segment").len();
        // A half-written record, then garbage: both cut.
        let f = OpenOptions::new()
            .write(true)
            .open(&seg)
            .expect("open segment");
        f.set_len(len - 3).expect("tear");
        drop(f);
        let s = LogStore::open(dir.path(), MAX).expect("reopen torn");
        assert_eq!(indexes(&s), vec![0, 1, 2, 3]);
        s.lock()
            .append(vec![entry(1, 4)])
            .expect("append after cut");
        drop(s);
        let mut f = OpenOptions::new()
            .append(true)
            .open(&seg)
            .expect("open segment");
        f.write_all(&[0, 0, 0, 9, 1, 2, 3, 4, b'{'])
            .expect("garbage");
        drop(f);
        let s = LogStore::open(dir.path(), MAX).expect("reopen garbage");
        assert_eq!(indexes(&s), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn records_are_bounded() {
        let e = entry(1, 0);
        assert!(encode_record(&e, 10).is_err());
        let rec = encode_record(&e, MAX).expect("encode");
        assert!(decode_record(&rec, 10).is_err());
        let mut bad = rec.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(decode_record(&bad, MAX).is_err());
        assert_eq!(decode_record(&rec, MAX).expect("decode").1, rec.len());
    }

    #[tokio::test]
    async fn vote_and_committed_persist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = LogStore::open(dir.path(), MAX).expect("open");
        let vote = Vote::new(3, 2);
        s.save_vote(&vote).await.expect("save vote");
        let c = Some(LogId::new(CommittedLeaderId::new(3, 2), 9));
        s.save_committed(c).await.expect("save committed");
        drop(s);
        let mut s = LogStore::open(dir.path(), MAX).expect("reopen");
        assert_eq!(s.read_vote().await.expect("vote"), Some(vote));
        assert_eq!(s.read_committed().await.expect("committed"), c);
        assert_eq!(s.commit_tracker().get(), Some(9));
        fs::write(dir.path().join("committed.json"), b"{torn").expect("write");
        let mut s = LogStore::open(dir.path(), MAX).expect("reopen with torn hint");
        assert_eq!(s.read_committed().await.expect("committed"), None);
    }
}
