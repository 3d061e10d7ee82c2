//! Kafka's `replication-offset-checkpoint`: the high watermark of every partition in a log
//! dir, so a restarted node starts from the committed position instead of the log start (a
//! leader whose followers have not fetched yet, or a follower before its first fetch, would
//! otherwise show consumers nothing).
//!
//! Format (Kafka's `CheckpointFile`): a version line `0`, a count line, then one line per
//! partition, `topic partition offset`. Written atomically (a fsynced temp file renamed over
//! the old one, then the dir fsynced) every `replica.high.watermark.checkpoint.interval.ms`
//! and at clean shutdown; read once per log dir when the first partition of that dir opens.
//! A file that does not parse is ignored with a warning: high watermarks then start at the
//! log start, as without a checkpoint, and replication brings them up.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::types::TopicPartition;

/// The file name in each log dir.
pub const FILE: &str = "replication-offset-checkpoint";

/// The only format version.
const VERSION: u32 = 0;

/// High watermarks by partition.
pub type HighWatermarks = BTreeMap<TopicPartition, i64>;

/// The file's text for `hws`.
pub fn format(hws: &HighWatermarks) -> String {
    let mut s = format!("{VERSION}\n{}\n", hws.len());
    for (tp, hw) in hws {
        s.push_str(&format!("{} {} {hw}\n", tp.topic, tp.partition));
    }
    s
}

/// Parses the file's text; the error says what is wrong.
pub fn parse(text: &str) -> Result<HighWatermarks, String> {
    let mut lines = text.lines();
    match lines.next().map(str::trim) {
        Some(v) if v.parse::<u32>() == Ok(VERSION) => {}
        other => return Err(format!("unrecognized version line {other:?}")),
    }
    let count: usize = lines
        .next()
        .and_then(|c| c.trim().parse().ok())
        .ok_or("missing or malformed entry count")?;
    let mut out = HighWatermarks::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let entry = match f.as_slice() {
            [topic, p, hw] => p
                .parse::<i32>()
                .ok()
                .zip(hw.parse::<i64>().ok())
                .map(|(p, hw)| (TopicPartition::new(*topic, p), hw)),
            _ => None,
        };
        let (tp, hw) = entry.ok_or_else(|| format!("malformed entry line {}: {line:?}", i + 3))?;
        out.insert(tp, hw);
    }
    if out.len() != count {
        return Err(format!(
            "the count line says {count} entries but {} follow",
            out.len()
        ));
    }
    Ok(out)
}

/// Reads `dir`'s checkpoint: empty when there is none, or (with a warning) when it does not
/// parse.
pub fn read(dir: &Path) -> HighWatermarks {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return HighWatermarks::new(),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read the high-watermark checkpoint; ignoring it");
            return HighWatermarks::new();
        }
    };
    parse(&text).unwrap_or_else(|why| {
        tracing::warn!(file = %path.display(), %why, "damaged high-watermark checkpoint ignored; high watermarks start at the log start");
        HighWatermarks::new()
    })
}

/// Serializes writers: the periodic pass (on a blocking thread that shutdown cannot abort)
/// and the one at clean shutdown must not share the temp file.
static WRITING: Mutex<()> = Mutex::new(());

/// Writes `dir`'s checkpoint atomically: temp file, fsync, rename, fsync of the dir.
pub fn write(dir: &Path, hws: &HighWatermarks) -> std::io::Result<()> {
    use std::io::Write;
    let _one_writer = WRITING.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(format(hws).as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Checkpoints read at start, handed out once per partition as its log opens.
#[derive(Debug, Default)]
pub struct Restored {
    by_dir: Mutex<HashMap<PathBuf, HighWatermarks>>,
}

impl Restored {
    /// The checkpointed high watermark of `tp` in log dir `log_dir` (read on first use). Each
    /// entry is handed out once: a partition re-created later starts afresh.
    pub fn take(&self, log_dir: &Path, tp: &TopicPartition) -> Option<i64> {
        let mut m = self.by_dir.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(log_dir.to_path_buf())
            .or_insert_with(|| read(log_dir))
            .remove(tp)
    }
}

/// The current high watermarks of `replicas`' partitions, grouped by log dir.
pub fn snapshot(replicas: &super::ReplicaManager) -> BTreeMap<PathBuf, HighWatermarks> {
    let mut out: BTreeMap<PathBuf, HighWatermarks> = BTreeMap::new();
    for p in replicas.all() {
        let Ok(dir) = p.with_log(|l| Ok(l.dir().to_path_buf())) else {
            continue;
        };
        if let Some(log_dir) = dir.parent() {
            out.entry(log_dir.to_path_buf())
                .or_default()
                .insert(p.tp.clone(), p.high_watermark().0);
        }
    }
    out
}

/// Writes every log dir's checkpoint (log dirs that host no partition get an empty one, so a
/// deleted partition's entry does not linger). Returns what was written.
pub fn write_all(
    log_dirs: &[PathBuf],
    hws: &BTreeMap<PathBuf, HighWatermarks>,
) -> BTreeMap<PathBuf, HighWatermarks> {
    let empty = HighWatermarks::new();
    let mut written = BTreeMap::new();
    for dir in log_dirs {
        let h = hws.get(dir).unwrap_or(&empty);
        match write(dir, h) {
            Ok(()) => {
                written.insert(dir.clone(), h.clone());
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot write the high-watermark checkpoint")
            }
        }
    }
    written
}

/// Every `interval`: writes the checkpoints that changed since the last write.
pub async fn run(replicas: Arc<super::ReplicaManager>, log_dirs: Vec<PathBuf>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: BTreeMap<PathBuf, HighWatermarks> = BTreeMap::new();
    loop {
        tick.tick().await;
        let r = replicas.clone();
        let dirs = log_dirs.clone();
        let prev = std::mem::take(&mut last);
        // File work and fsyncs: off the async threads.
        let pass = tokio::task::spawn_blocking(move || {
            let now = snapshot(&r);
            if now == prev {
                return prev;
            }
            // An offline log dir (a full or failed disk) is left alone until the restart.
            let health = r.log_dir_health();
            let changed: Vec<PathBuf> = dirs
                .iter()
                .filter(|d| now.get(*d) != prev.get(*d) && !health.is_offline(d))
                .cloned()
                .collect();
            let mut out = prev;
            out.extend(write_all(&changed, &now));
            out
        });
        match pass.await {
            Ok(written) => last = written,
            Err(e) => tracing::error!(error = %e, "high-watermark checkpoint pass panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hws(entries: &[(&str, i32, i64)]) -> HighWatermarks {
        entries
            .iter()
            .map(|(t, p, hw)| (TopicPartition::new(*t, *p), *hw))
            .collect()
    }

    #[test]
    fn format_is_kafkas() {
        let h = hws(&[
            ("orders", 0, 42),
            ("orders", 1, 7),
            ("__consumer_offsets", 3, 0),
        ]);
        let text = format(&h);
        assert_eq!(
            text,
            "0\n3\n__consumer_offsets 3 0\norders 0 42\norders 1 7\n"
        );
        assert_eq!(parse(&text).unwrap(), h);
        assert_eq!(parse("0\n0\n").unwrap(), HighWatermarks::new());
    }

    #[test]
    fn damaged_files_are_refused() {
        for bad in [
            "",
            "1\n0\n",
            "0\n",
            "0\nx\n",
            "0\n2\nt 0 5\n",
            "0\n1\nt 0\n",
            "0\n1\nt zero 5\n",
            "0\n1\nt 0 5 6\n",
            "\u{0}\u{0}\u{0}garbage",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn write_read_and_garbage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).is_empty(), "no file: nothing");
        let h = hws(&[("t", 0, 100), ("t", 1, 5)]);
        write(dir.path(), &h).unwrap();
        assert_eq!(read(dir.path()), h);
        assert!(!dir.path().join(format!("{FILE}.tmp")).exists());
        let restored = Restored::default();
        assert_eq!(
            restored.take(dir.path(), &TopicPartition::new("t", 0)),
            Some(100)
        );
        assert_eq!(
            restored.take(dir.path(), &TopicPartition::new("t", 0)),
            None,
            "once"
        );
        // A torn write (a crash of a non-atomic writer, a full disk): ignored, no panic.
        std::fs::write(dir.path().join(FILE), "0\n2\nt 0 100\nt 1").unwrap();
        assert!(read(dir.path()).is_empty());
        std::fs::write(dir.path().join(FILE), [0xff, 0xfe, 0x00, 0x01]).unwrap();
        assert!(read(dir.path()).is_empty());
    }
}
