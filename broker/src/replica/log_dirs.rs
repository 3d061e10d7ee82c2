//! Log dir failures, Kafka's way. A storage error that means the disk cannot be trusted to
//! take writes (no space, quota exceeded, an I/O error, a read-only file system) takes the
//! whole log dir offline: a half-written batch may sit at the tail of a segment, so appending
//! after it would corrupt the log, and the same error would hit every partition in the dir
//! anyway. Then:
//! - every partition in the dir answers KAFKA_STORAGE_ERROR (retriable: clients refresh their
//!   metadata) and its follower fetching stops;
//! - the node tells the controller which of its replicas are offline
//!   (`MarkReplicasOffline`); the active controller moves their leadership to in-sync replicas
//!   on other brokers and drops them from the ISR, as it does for a fenced broker;
//! - the failure is logged once per dir with its cause, counted
//!   (`kafka_log_logmanager_offlinelogdirectorycount`, `rill_log_dir_errors_total`) and shown
//!   by `/readyz`.
//!
//! The dir stays offline until the node restarts (after the operator freed space or replaced
//! the disk); recovery then cuts any half-written tail. Errors that are about this process
//! rather than the disk (out of file descriptors) fail only the operation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::ReplicaManager;
use crate::controller::Controller;
use crate::metrics::Metrics;
use crate::repeated::Repeated;
use crate::types::{BrokerId, TopicPartition};

/// Why a log dir went offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineDir {
    /// The error that took it offline, as the OS said it.
    pub reason: String,
    /// When, in ms since the epoch.
    pub since_ms: i64,
}

/// The state of this node's log dirs, shared by its partitions (which report errors) and the
/// replica manager (which acts on failures).
pub struct LogDirHealth {
    offline: Mutex<BTreeMap<PathBuf, OfflineDir>>,
    /// Wakes the task that takes failed dirs' partitions offline and tells the controller.
    pub(super) failed: Notify,
    metrics: Arc<Metrics>,
    repeated: Repeated,
}

/// The `kind` label of `rill_log_dir_errors_total` for an I/O error, and whether it takes the
/// log dir offline.
pub fn classify(e: &std::io::Error) -> (&'static str, bool) {
    // Linux errno values: the std ErrorKinds for these are not all stable.
    const EIO: i32 = 5;
    const ENOSPC: i32 = 28;
    const EROFS: i32 = 30;
    const EDQUOT: i32 = 122;
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    match e.raw_os_error() {
        Some(ENOSPC) => ("no_space", true),
        Some(EDQUOT) => ("quota", true),
        Some(EIO) => ("io", true),
        Some(EROFS) => ("read_only", true),
        Some(ENFILE) | Some(EMFILE) => ("too_many_open_files", false),
        _ => ("other", false),
    }
}

impl LogDirHealth {
    /// All dirs online.
    pub fn new(metrics: Arc<Metrics>) -> LogDirHealth {
        LogDirHealth {
            offline: Mutex::new(BTreeMap::new()),
            failed: Notify::new(),
            metrics,
            repeated: Repeated::default(),
        }
    }

    /// Records a storage error seen in log dir `dir` (the `log.dirs` entry, not the
    /// partition's own directory). Counts it, logs it at most once per interval per dir and
    /// kind, and takes the dir offline when the error calls for it. True when the dir is
    /// offline now.
    pub fn record_error(&self, dir: &Path, e: &std::io::Error, now_ms: i64) -> bool {
        let (kind, fatal) = classify(e);
        let name = dir.display().to_string();
        self.metrics
            .log_dir_errors
            .with_label_values(&[&name, kind])
            .inc();
        if !fatal {
            if let Some(left_out) = self.repeated.check(&format!("{name}\u{0}{kind}")) {
                tracing::warn!(dir = %name, kind, error = %e, left_out, "storage operation failed");
            }
            return self.is_offline(dir);
        }
        let mut offline = self.offline.lock().unwrap_or_else(|p| p.into_inner());
        if offline.contains_key(dir) {
            return true;
        }
        offline.insert(
            dir.to_path_buf(),
            OfflineDir {
                reason: e.to_string(),
                since_ms: now_ms,
            },
        );
        self.metrics.offline_log_dirs.set(offline.len() as i64);
        drop(offline);
        tracing::error!(
            dir = %name,
            kind,
            error = %e,
            "log dir is offline: its partitions answer KAFKA_STORAGE_ERROR and their leadership moves to in-sync replicas on other brokers; fix the disk (free space) and restart this node"
        );
        self.failed.notify_one();
        true
    }

    /// Whether `dir` (a `log.dirs` entry) is offline.
    pub fn is_offline(&self, dir: &Path) -> bool {
        self.offline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(dir)
    }

    /// The offline dirs and why.
    pub fn offline_dirs(&self) -> BTreeMap<PathBuf, OfflineDir> {
        self.offline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The longest pause between attempts to tell the controller about offline replicas.
const MAX_REPORT_BACKOFF: Duration = Duration::from_secs(5);

/// Acts on log dir failures: takes the failed dirs' partitions offline and tells the
/// controller, retrying (with backoff) until the metadata quorum has committed it, so their
/// leadership moves even if the quorum was busy or electing when the disk failed.
pub async fn run(replicas: Arc<ReplicaManager>, controller: Arc<Controller>, me: BrokerId) {
    let health = replicas.log_dir_health().clone();
    let mut reported: BTreeSet<TopicPartition> = BTreeSet::new();
    let mut reported_no_storage = false;
    loop {
        health.failed.notified().await;
        let down = replicas.take_offline_dirs_down();
        let no_storage = replicas.no_online_log_dir();
        let new: Vec<TopicPartition> = down
            .into_iter()
            .filter(|tp| !reported.contains(tp))
            .collect();
        if new.is_empty() && no_storage == reported_no_storage {
            continue;
        }
        tracing::warn!(partitions = new.len(), "replicas in failed log dirs are offline; asking the controller to move their leadership");
        let mut backoff = Duration::from_millis(100);
        loop {
            match controller
                .mark_replicas_offline(me, new.clone(), no_storage)
                .await
            {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot report offline replicas to the controller yet");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_REPORT_BACKOFF);
                }
            }
        }
        reported.extend(new);
        reported_no_storage = no_storage;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: i32) -> std::io::Error {
        std::io::Error::from_raw_os_error(code)
    }

    #[test]
    fn a_full_disk_takes_the_dir_offline_once() {
        let m = Arc::new(Metrics::new().unwrap());
        let h = LogDirHealth::new(m.clone());
        let d = Path::new("/data/a");
        assert!(
            !h.record_error(d, &err(24), 1),
            "EMFILE fails the operation only"
        );
        assert!(!h.is_offline(d));
        assert!(h.record_error(d, &err(28), 2));
        assert!(h.record_error(d, &err(28), 3));
        assert!(h.is_offline(d));
        assert!(!h.is_offline(Path::new("/data/b")));
        assert_eq!(m.offline_log_dirs.get(), 1);
        let off = h.offline_dirs();
        assert_eq!(off[d].since_ms, 2, "the first failure is kept");
        assert!(off[d].reason.contains("No space left"), "{:?}", off[d]);
        assert_eq!(
            m.log_dir_errors
                .with_label_values(&["/data/a", "no_space"])
                .get(),
            2,
            "every occurrence is counted"
        );
    }
}
