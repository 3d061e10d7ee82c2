//! What this process can hold open. Every hosted partition keeps files open (its active
//! segment's log, offset index and time index) and every client connection a socket, all
//! from one per-process file-descriptor limit. Running out of descriptors used to fail late
//! and noisily (CreateTopics timing out, one "Too many open files" line per partition per
//! metadata change), so the node splits the limit up front into a share for connections and
//! a share for partitions, and refuses work beyond either at the door: the listener stops
//! accepting at `max.connections`, and the controller refuses a CreateTopics that would put
//! more than `max.broker.partitions` replicas on a node (POLICY_VIOLATION).
//!
//! Also here: the disk space of a log dir ([`disk_space`]), for DescribeLogDirs.

use crate::config::limits::LimitsConfig;

/// Descriptors a hosted partition needs: its active segment's log, offset index and time
/// index. Rolled segments keep their log file open too, so a partition with many segments
/// needs more; the estimate is for the common case of a few segments per partition.
pub const FILES_PER_PARTITION: u64 = 3;

/// Descriptors set aside for everything that is neither a client connection nor a partition:
/// the metadata log, Raft and replication connections to peers, the HTTP listener and its
/// clients, checkpoint files, the standard streams.
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
    /// Partition replicas this node hosts at most (`max.broker.partitions`).
    pub max_partitions: u32,
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

/// Splits `limit` descriptors between connections and partitions as configured. Refuses a
/// configuration that needs more descriptors than the limit allows, naming the key and the
/// fix, so the node fails at start rather than under load.
pub fn budget(limit: u64, cfg: &LimitsConfig) -> Result<FdBudget, String> {
    let fix = "raise the process's file limit (ulimit -n, systemd LimitNOFILE)";
    if limit <= RESERVED_FDS + FILES_PER_PARTITION {
        return Err(format!(
            "the file-descriptor limit is {limit}, below the {} this node needs to run at all: {fix}",
            RESERVED_FDS + FILES_PER_PARTITION + 1
        ));
    }
    let usable = limit - RESERVED_FDS;
    let connections = match cfg.max_connections {
        Some(c) => {
            if c as u64 + FILES_PER_PARTITION > usable {
                return Err(format!(
                    "max.connections={c} needs more file descriptors than this process may open ({limit}, {RESERVED_FDS} of them reserved): {fix} or lower max.connections"
                ));
            }
            c as u64
        }
        None => (limit / DEFAULT_CONNECTION_SHARE).max(1),
    };
    let fit = (usable - connections) / FILES_PER_PARTITION;
    let partitions = match cfg.max_broker_partitions {
        Some(p) if u64::from(p) > fit => {
            return Err(format!(
                "max.broker.partitions={p} needs {} file descriptors, but only {} of this process's limit of {limit} are left after max.connections ({connections}) and {RESERVED_FDS} reserved ones: {fix}, or lower max.broker.partitions or max.connections",
                u64::from(p) * FILES_PER_PARTITION,
                usable - connections
            ));
        }
        Some(p) => p,
        None => u32::try_from(fit).unwrap_or(u32::MAX),
    };
    Ok(FdBudget {
        limit,
        max_connections: usize::try_from(connections).unwrap_or(usize::MAX),
        max_partitions: partitions,
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
        assert_eq!(
            u64::from(b.max_partitions),
            (20_000 - RESERVED_FDS - 5_000) / 3
        );
        let b = budget(1_024, &LimitsConfig::default()).unwrap();
        assert_eq!(b.max_connections, 256);
        assert_eq!(b.max_partitions, (1_024 - 256 - 256) / 3);
    }

    #[test]
    fn configured_values_must_fit() {
        let cfg = LimitsConfig {
            max_connections: Some(100),
            max_broker_partitions: Some(200),
            ..Default::default()
        };
        let b = budget(1_024, &cfg).unwrap();
        assert_eq!((b.max_connections, b.max_partitions), (100, 200));
        let too_many = LimitsConfig {
            max_broker_partitions: Some(10_000),
            ..Default::default()
        };
        let e = budget(1_024, &too_many).unwrap_err();
        assert!(e.contains("max.broker.partitions=10000"), "{e}");
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
