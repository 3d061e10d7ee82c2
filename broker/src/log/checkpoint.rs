//! The small text files of a partition directory: the leader-epoch checkpoint,
//! `partition.metadata` and the log-start-offset checkpoint. All written atomically
//! (temporary file, fsync, rename, fsync of the directory).

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use super::error::LogError;

/// File name of the leader-epoch checkpoint (Kafka's).
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
/// File name of the partition metadata (Kafka's).
pub const PARTITION_METADATA: &str = "partition.metadata";
/// File name of this partition's log start offset. Kafka keeps log start offsets in one
/// `log-start-offset-checkpoint` per log dir; a log that owns only its own directory keeps its
/// own, so DeleteRecords survives a restart.
pub const LOG_START_CHECKPOINT: &str = "log-start-offset-checkpoint";

/// Writes `contents` to `dir/name` atomically.
pub fn write_atomic(dir: &Path, name: &str, contents: &str) -> Result<(), LogError> {
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// fsyncs a directory so renames and deletions in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn read_optional(path: &Path) -> Result<Option<String>, LogError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The leader-epoch cache: for each leader epoch, the first offset written in it.
#[derive(Debug, Clone)]
pub(crate) struct LeaderEpochCache {
    dir: PathBuf,
    /// (epoch, start offset), both strictly increasing.
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochCache {
    /// Loads the checkpoint in `dir`. A missing file is an empty cache; an unreadable one is
    /// logged and treated as empty, since the log scan at open re-derives the entries.
    pub fn load(dir: &Path) -> Result<LeaderEpochCache, LogError> {
        let mut cache = LeaderEpochCache {
            dir: dir.to_path_buf(),
            entries: Vec::new(),
        };
        if let Some(text) = read_optional(&dir.join(LEADER_EPOCH_CHECKPOINT))? {
            match parse_epochs(&text) {
                Some(entries) => cache.entries = entries,
                None => {
                    tracing::warn!(dir = %dir.display(), "malformed leader-epoch-checkpoint; rebuilding from the log")
                }
            }
        }
        Ok(cache)
    }

    /// The newest epoch.
    pub fn latest(&self) -> Option<i32> {
        self.entries.last().map(|e| e.0)
    }

    /// Records that `epoch` starts at `start` (Kafka's `assign`): entries that conflict (same or
    /// newer epoch, or starting at or after `start`) are replaced. Returns whether anything changed.
    pub fn assign(&mut self, epoch: i32, start: i64) -> bool {
        if epoch < 0 {
            return false;
        }
        if let Some(&(e, s)) = self.entries.last() {
            if e == epoch && s <= start {
                return false;
            }
        }
        self.entries.retain(|&(e, s)| e < epoch && s < start);
        self.entries.push((epoch, start));
        true
    }

    /// Drops entries starting at or after `end` (the log was truncated to `end`).
    pub fn truncate_from_end(&mut self, end: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|&(_, s)| s < end);
        before != self.entries.len()
    }

    /// Drops entries wholly below a new log start; the last of them is kept, moved up to `start`.
    pub fn truncate_from_start(&mut self, start: i64) -> bool {
        let below = self.entries.partition_point(|&(_, s)| s < start);
        let Some(keep) = below.checked_sub(1) else {
            return false;
        };
        let Some(&(epoch, _)) = self.entries.get(keep) else {
            return false;
        };
        self.entries.drain(..keep);
        let next_starts_here = self.entries.get(1).is_some_and(|&(_, s)| s == start);
        if next_starts_here {
            self.entries.remove(0);
        } else if let Some(first) = self.entries.first_mut() {
            *first = (epoch, start);
        }
        true
    }

    /// OffsetForLeaderEpoch: the largest known epoch <= `requested` and its end offset (the start
    /// of the next epoch, or `log_end` for the latest). `None` when `requested` is older than
    /// every known epoch or nothing is known.
    pub fn end_offset_for(&self, requested: i32, log_end: i64) -> Option<(i32, i64)> {
        let n = self.entries.partition_point(|&(e, _)| e <= requested);
        let (epoch, _) = *self.entries.get(n.checked_sub(1)?)?;
        let end = self.entries.get(n).map_or(log_end, |&(_, s)| s);
        Some((epoch, end))
    }

    /// Writes the checkpoint in Kafka's format.
    pub fn write(&self) -> Result<(), LogError> {
        let mut text = format!("0\n{}\n", self.entries.len());
        for (epoch, start) in &self.entries {
            text.push_str(&format!("{epoch} {start}\n"));
        }
        write_atomic(&self.dir, LEADER_EPOCH_CHECKPOINT, &text)
    }
}

fn parse_epochs(text: &str) -> Option<Vec<(i32, i64)>> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut entries = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let mut parts = lines.next()?.split_whitespace();
        let epoch: i32 = parts.next()?.parse().ok()?;
        let start: i64 = parts.next()?.parse().ok()?;
        if entries
            .last()
            .is_some_and(|&(e, s)| e >= epoch || s > start)
        {
            return None;
        }
        entries.push((epoch, start));
    }
    Some(entries)
}

/// Checks `partition.metadata` against `topic_id`, writing it when missing. An empty
/// `topic_id` means "not known to the caller" and skips both.
pub fn check_partition_metadata(dir: &Path, topic_id: &str) -> Result<(), LogError> {
    if topic_id.is_empty() {
        return Ok(());
    }
    match read_optional(&dir.join(PARTITION_METADATA))? {
        Some(text) => {
            let stored = text
                .lines()
                .find_map(|l| l.strip_prefix("topic_id:"))
                .map(str::trim);
            match stored {
                Some(id) if id == topic_id => Ok(()),
                Some(id) => Err(LogError::Corrupted(format!(
                    "{} holds topic id {id}, expected {topic_id}",
                    dir.join(PARTITION_METADATA).display()
                ))),
                None => write_atomic(
                    dir,
                    PARTITION_METADATA,
                    &format!("version: 0\ntopic_id: {topic_id}\n"),
                ),
            }
        }
        None => write_atomic(
            dir,
            PARTITION_METADATA,
            &format!("version: 0\ntopic_id: {topic_id}\n"),
        ),
    }
}

/// Reads the partition's log start offset checkpoint, if any.
pub fn read_log_start(dir: &Path) -> Result<Option<i64>, LogError> {
    Ok(
        read_optional(&dir.join(LOG_START_CHECKPOINT))?.and_then(|text| {
            let mut lines = text.lines();
            (lines.next()?.trim() == "0").then_some(())?;
            lines.next()?.trim().parse().ok()
        }),
    )
}

/// Writes the partition's log start offset checkpoint.
pub fn write_log_start(dir: &Path, start: i64) -> Result<(), LogError> {
    write_atomic(dir, LOG_START_CHECKPOINT, &format!("0\n{start}\n"))
}
