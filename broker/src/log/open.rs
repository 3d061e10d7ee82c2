//! Opening a partition log: finding its segments, checking them (recovery after an unclean
//! stop), rebuilding derived state (indexes, producer state, leader epochs).
//!
//! Producer state, open transactions included, is rebuilt by replaying every batch: headers,
//! plus the one tiny record of each marker. The same replay yields each segment's aborted
//! transactions, so `.txnindex` files are rebuilt (rewritten only if they differ), never
//! trusted: see `txn_index`.

use std::path::Path;
use std::sync::Arc;

use super::batch::BatchHeader;
use super::checkpoint::{self, LeaderEpochCache};
use super::error::LogError;
use super::files::FileCache;
use super::producer_state::ProducerStateManager;
use super::scan::ScanMode;
use super::segment::{file_name, Segment};
use super::txn_index::AbortedTxn;
use super::{LogConfig, PartitionLog, CLEAN_SHUTDOWN_FILE};

/// Suffixes of files an interrupted operation can leave behind; never part of the log.
const LEFTOVER_SUFFIXES: [&str; 4] = [".tmp", ".deleted", ".cleaned", ".swap"];

impl PartitionLog {
    /// Opens (creating if missing) the log in `dir`.
    ///
    /// Every segment's batch headers are walked (cheap: 61 bytes per batch) to rebuild producer
    /// state and check the offsets; indexes that disagree with the data are rebuilt. Without the
    /// `.clean-shutdown` marker the active segment is recovered too: every batch's CRC is checked
    /// and the segment is cut at the first bad or partial batch. Segments are fsynced when they
    /// roll, so only the active one can hold unflushed data. The leader-epoch checkpoint is
    /// loaded and entries past the log end dropped.
    pub fn open(
        dir: &Path,
        topic_id: &str,
        config: LogConfig,
        now_ms: i64,
        files: &Arc<FileCache>,
    ) -> Result<PartitionLog, LogError> {
        std::fs::create_dir_all(dir)?;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = marker.exists();
        checkpoint::check_partition_metadata(dir, topic_id)?;
        let bases = list_segments(dir)?;
        if !clean {
            tracing::info!(dir = %dir.display(), segments = bases.len(), "no clean-shutdown marker; recovering the active segment");
        }

        let mut producers = ProducerStateManager::new();
        let mut scanned_epochs: Vec<(i32, i64)> = Vec::new();
        let mut segments: Vec<Segment> = Vec::with_capacity(bases.len());
        for (i, &base) in bases.iter().enumerate() {
            if let Some(prev) = segments.last() {
                if prev.next_offset > base {
                    return Err(LogError::Corrupted(format!(
                        "segment {} ends at offset {} past the next segment's base {base}",
                        prev.base, prev.next_offset
                    )));
                }
            }
            let last = i + 1 == bases.len();
            let mode = if !clean && last {
                ScanMode::Full
            } else {
                ScanMode::Headers
            };
            let mut aborted: Vec<AbortedTxn> = Vec::new();
            let mut on_batch = |h: &BatchHeader, control: Option<&[u8]>| {
                aborted.extend(producers.replay(h, control));
                let newer = scanned_epochs
                    .last()
                    .is_none_or(|&(e, _)| h.partition_leader_epoch > e);
                if h.partition_leader_epoch >= 0 && newer {
                    scanned_epochs.push((h.partition_leader_epoch, h.base_offset));
                }
            };
            let (mut segment, damage) = Segment::open(
                dir,
                base,
                mode,
                config.index_interval_bytes,
                now_ms,
                files,
                &mut on_batch,
            )?;
            segment.set_txn_entries(aborted)?;
            segments.push(segment);
            if damage.is_some() && !last {
                // Kafka's rule: whatever follows a damaged segment cannot continue the log.
                for &later in bases.get(i + 1..).unwrap_or_default() {
                    tracing::warn!(dir = %dir.display(), base = later, "deleting segment after a damaged one");
                    remove_segment_files(dir, later)?;
                }
                break;
            }
        }

        let start_checkpoint = checkpoint::read_log_start(dir)?;
        if segments.is_empty() {
            let base = start_checkpoint.unwrap_or(0).max(0);
            segments.push(Segment::create(dir, base, files)?);
            checkpoint::sync_dir(dir)?;
        }
        let first_base = segments.first().map_or(0, |s| s.base);
        let log_end = segments.last().map_or(0, |s| s.next_offset);
        let log_start = start_checkpoint
            .unwrap_or(first_base)
            .max(first_base)
            .min(log_end);

        let mut epochs = LeaderEpochCache::load(dir)?;
        // Entries starting past the log end describe data that is gone.
        let mut changed = epochs.truncate_from_end(log_end + 1);
        for (epoch, start) in scanned_epochs {
            if epochs.latest().is_none_or(|l| epoch > l) {
                changed |= epochs.assign(epoch, start);
            }
        }
        changed |= epochs.truncate_from_start(log_start);
        if changed {
            epochs.write()?;
        }

        let log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset: log_start,
            epochs,
            producers,
            unflushed_messages: 0,
            last_flush_ms: now_ms,
            files: files.clone(),
        };
        if clean {
            // From here on a crash must trigger recovery again.
            std::fs::remove_file(&marker)?;
        }
        tracing::debug!(
            dir = %dir.display(),
            log_start,
            log_end,
            segments = log.segments.len(),
            producers = log.producers.len(),
            "partition log opened"
        );
        Ok(log)
    }
}

/// Base offsets of the segments in `dir`, sorted. Removes leftovers of interrupted operations
/// and index files whose `.log` is gone.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut bases = Vec::new();
    let mut index_files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if LEFTOVER_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            tracing::info!(file = %entry.path().display(), "removing leftover file");
            std::fs::remove_file(entry.path())?;
            continue;
        }
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        let base = match stem.parse::<i64>() {
            Ok(b) if stem.len() == 20 && b >= 0 => b,
            _ => continue,
        };
        match ext {
            "log" => bases.push(base),
            "index" | "timeindex" | "txnindex" => index_files.push((base, entry.path())),
            _ => {}
        }
    }
    bases.sort_unstable();
    for (base, path) in index_files {
        if bases.binary_search(&base).is_err() {
            tracing::info!(file = %path.display(), "removing index without a segment");
            std::fs::remove_file(path)?;
        }
    }
    Ok(bases)
}

/// Deletes a segment's files, tolerating missing ones.
pub(super) fn remove_segment_files(dir: &Path, base: i64) -> Result<(), LogError> {
    for ext in ["log", "index", "timeindex", "txnindex"] {
        match std::fs::remove_file(dir.join(file_name(base, ext))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    Ok(())
}
