//! What this process can hold open. Every client connection holds a socket, and partition
//! logs open their segment and index files through one bounded cache
//! (`crate::log::FileCache`), all from one per-process file-descriptor limit. Running out of
//! descriptors used to fail late and noisily (CreateTopics timing out, one "Too many open
//! files" line per partition per metadata change), so the node splits the limit up front into
//! a reserve, a share for connections (the listener stops accepting at `max.connections`) and
//! the file cache's size (`log.max.open.files`). Partitions are then bounded by memory, not by
//! descriptors; `max.broker.partitions` (KIP-578) still caps them when set, and the controller
//! refuses a CreateTopics beyond it with POLICY_VIOLATION.
//!
//! Also here: the disk space of a log dir ([`disk_space`]), for DescribeLogDirs.

use crate::config::limits::LimitsConfig;

/// Descriptors set aside for everything that is neither a client connection nor a cached
/// segment file: the metadata log, Raft and replication connections to peers, the HTTP
/// listener and its clients, checkpoint files and directories being fsynced, descriptors the
/// cache let go of while an operation still used them, the standard streams.
pub const RESERVED_FDS: u64 = 256;

/// The default share of the descriptor limit for client connections (`max.connections`
/// unset): a quarter.
pub const DEFAULT_CONNECTION_SHARE: u64 = 4;

/// The node's split of its file-descriptor limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdBudget {
    /// The process's file-descriptor limit (RLIMIT_NOFILE, soft, after raising it).
    pub limit: u64,
    /// Client connections the listener holds at most (`max.connections`).
    pub max_connections: usize,
    /// Segment and index files the logs hold open at most (`log.max.open.files`).
    pub open_files: usize,
    /// Partition replicas this node hosts at most (`max.broker.partitions`), when set.
    pub max_partitions: Option<u32>,
}

/// Raises the soft file-descriptor limit to the hard one (what servers are expected to do;
/// the soft limit is often a low 1024) and returns the limit now in force, or `None` when the
/// platform does not say.
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let lim = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (lim.current, lim.maximum) {
        if cur < max {
            let raised = rustix::process::Rlimit {
                current: Some(max),
                maximum: Some(max),
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => return Some(max),
                Err(e) => {
                    tracing::warn!(soft = cur, hard = max, error = %e, "cannot raise the file-descriptor limit");
                    return Some(cur);
                }
            }
        }
    }
    // `None` = unlimited; treat as the largest value a budget can use.
    Some(lim.current.unwrap_or(u64::MAX))
}

/// Splits `limit` descriptors between the reserve, connections and the log file cache as
/// configured. Refuses a configuration that needs more descriptors than the limit allows,
/// naming the key and the fix, so the node fails at start rather than under load.
pub fn budget(limit: u64, cfg: &LimitsConfig) -> Result<FdBudget, String> {
    let fix = "raise the process's file limit (ulimit -n, systemd LimitNOFILE)";
    let min_files = crate::log::MIN_OPEN_FILES as u64;
    if limit <= RESERVED_FDS + min_files {
        return Err(format!(
            "the file-descriptor limit is {limit}, below the {} this node needs to run at all: {fix}",
            RESERVED_FDS + min_files + 1
        ));
    }
    let usable = limit - RESERVED_FDS;
    let connections = match cfg.max_connections {
        Some(c) => {
            if c as u64 + min_files > usable {
                return Err(format!(
                    "max.connections={c} needs more file descriptors than this process may open ({limit}, {RESERVED_FDS} of them reserved, {min_files} at least for log files): {fix} or lower max.connections"
                ));
            }
            c as u64
        }
        None => (limit / DEFAULT_CONNECTION_SHARE).clamp(1, usable - min_files),
    };
    let left = usable - connections;
    let open_files = match cfg.log_max_open_files {
        Some(f) if f as u64 > left => {
            return Err(format!(
                "log.max.open.files={f} is more than the {left} file descriptors left of this process's limit of {limit} after max.connections ({connections}) and {RESERVED_FDS} reserved ones: {fix}, or lower log.max.open.files or max.connections"
            ));
        }
        Some(f) => f as u64,
        None => left,
    };
    Ok(FdBudget {
        limit,
        max_connections: usize::try_from(connections).unwrap_or(usize::MAX),
        open_files: usize::try_from(open_files).unwrap_or(usize::MAX),
        max_partitions: cfg.max_broker_partitions,
    })
}

/// Descriptors this process has open now (Linux: entries of `/proc/self/fd`), for the
/// `rill_open_file_descriptors` gauge.
pub fn open_fds() -> Option<u64> {
    std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_split_the_limit() {
        let b = budget(20_000, &LimitsConfig::default()).unwrap();
        assert_eq!(b.max_connections, 5_000);
        assert_eq!(b.open_files as u64, 20_000 - RESERVED_FDS - 5_000);
        assert_eq!(
            b.max_partitions, None,
            "bounded by memory, as Kafka's default"
        );
        let b = budget(512, &LimitsConfig::default()).unwrap();
        assert_eq!((b.max_connections, b.open_files), (128, 128));
    }

    #[test]
    fn configured_values_must_fit() {
        let cfg = LimitsConfig {
            max_connections: Some(100),
            max_broker_partitions: Some(200),
            log_max_open_files: Some(500),
            ..Default::default()
        };
        let b = budget(1_024, &cfg).unwrap();
        assert_eq!(
            (b.max_connections, b.open_files, b.max_partitions),
            (100, 500, Some(200))
        );
        let too_many = LimitsConfig {
            log_max_open_files: Some(10_000),
            ..Default::default()
        };
        let e = budget(1_024, &too_many).unwrap_err();
        assert!(e.contains("log.max.open.files=10000"), "{e}");
        let e = budget(
            1_024,
            &LimitsConfig {
                max_connections: Some(5_000),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.contains("max.connections=5000"), "{e}");
        assert!(budget(100, &LimitsConfig::default()).is_err());
        // A large max.broker.partitions is no longer a descriptor question.
        let many = LimitsConfig {
            max_broker_partitions: Some(1_000_000),
            ..Default::default()
        };
        assert_eq!(
            budget(1_024, &many).unwrap().max_partitions,
            Some(1_000_000)
        );
    }
}

/// The size of the file system holding a log dir, as Kafka reports it in DescribeLogDirs
/// (`FileStore.getTotalSpace` / `getUsableSpace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Bytes of the file system.
    pub total_bytes: u64,
    /// Bytes an unprivileged writer can still use (blocks available to non-root).
    pub usable_bytes: u64,
}

/// The disk space of the file system `dir` is on (statvfs, through rustix's safe wrapper), or
/// `None` when it cannot be read (the dir is gone, the disk failed): reported as unknown, -1.
pub fn disk_space(dir: &std::path::Path) -> Option<DiskSpace> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(DiskSpace {
        total_bytes: s.f_blocks.saturating_mul(s.f_frsize),
        usable_bytes: s.f_bavail.saturating_mul(s.f_frsize),
    })
}
