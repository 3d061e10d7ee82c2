//! Resource limits of the Kafka listener and of what a node hosts, with Kafka's key names where
//! Kafka has one. They exist so that a flood of connections, slow writers or an oversized
//! CreateTopics is refused cleanly at the door instead of failing later (out of file
//! descriptors, out of memory) for everyone on the node.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{get_num, invalid, ConfigError};

/// Listener and hosting limits as configured; `None` means "derive from the file limit" (see
/// `crate::resources`) or, for the per-IP limit, unlimited (Kafka's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// `max.connections`: the most client connections the listener holds at once. When it is
    /// reached the listener stops accepting until one closes (Kafka's acceptor does the same).
    /// Default: a quarter of the file-descriptor limit.
    pub max_connections: Option<usize>,
    /// `max.connections.per.ip`: connections beyond it from one address are closed at once
    /// (default unlimited, as Kafka).
    pub max_connections_per_ip: Option<usize>,
    /// `connections.max.idle.ms` (600000, Kafka's): a connection with no request for this long
    /// is closed.
    pub connections_max_idle: Duration,
    /// `socket.request.read.timeout.ms` (30000, Rill's own key; Kafka has none): once the
    /// first byte of a request has arrived, the whole frame must arrive within this time, so
    /// a slow writer cannot hold a connection and its buffer forever.
    pub request_read_timeout: Duration,
    /// `queued.max.request.bytes`: the most request bytes held in memory across all
    /// connections; reading stops (back-pressure) while it is reached. Kafka's default is -1
    /// (unbounded); Rill bounds it by default at 512 MiB. -1 turns the bound off.
    pub queued_max_request_bytes: Option<usize>,
    /// `max.broker.partitions` (the name of KIP-578): the most partition replicas this node
    /// hosts. CreateTopics, CreatePartitions and reassignments that would place more on it are
    /// refused with POLICY_VIOLATION. Default: unbounded, as Kafka's (partitions are bounded by
    /// memory: their files are opened on demand through a cache of `log.max.open.files`).
    pub max_broker_partitions: Option<u32>,
    /// `log.max.open.files` (Rill's own key; Kafka has none): the most segment and index files
    /// the node's logs hold open at once (`crate::log::FileCache`); others are opened on
    /// demand and the least recently used closed. Default: what the file-descriptor limit
    /// leaves after connections and a reserve.
    pub log_max_open_files: Option<usize>,
}

/// Rill's default for `queued.max.request.bytes` (Kafka's is unbounded).
pub const DEFAULT_QUEUED_MAX_REQUEST_BYTES: usize = 512 << 20;

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: None,
            max_connections_per_ip: None,
            connections_max_idle: Duration::from_millis(600_000),
            request_read_timeout: Duration::from_millis(30_000),
            queued_max_request_bytes: Some(DEFAULT_QUEUED_MAX_REQUEST_BYTES),
            max_broker_partitions: None,
            log_max_open_files: None,
        }
    }
}

/// Reads the limits from the raw properties; `socket_request_max_bytes` is the largest frame,
/// which the request memory bound must be able to hold.
pub(super) fn limits_config(
    raw: &BTreeMap<String, String>,
    socket_request_max_bytes: usize,
) -> Result<LimitsConfig, ConfigError> {
    let d = LimitsConfig::default();
    let opt = |key: &str, min: i64| -> Result<Option<usize>, ConfigError> {
        raw.get(key)
            .map(|v| super::parse_num::<usize>(key, v, min))
            .transpose()
    };
    let queued = match raw.get("queued.max.request.bytes").map(|v| v.trim()) {
        None => d.queued_max_request_bytes,
        Some("-1") => None,
        Some(v) => Some(super::parse_num::<usize>("queued.max.request.bytes", v, 1)?),
    };
    if let Some(q) = queued {
        if q < socket_request_max_bytes {
            return Err(invalid(
                "queued.max.request.bytes",
                &q.to_string(),
                &format!(
                    "must be at least socket.request.max.bytes ({socket_request_max_bytes}), or one request could never be read; use -1 for no bound"
                ),
            ));
        }
    }
    Ok(LimitsConfig {
        max_connections: opt("max.connections", 1)?,
        max_connections_per_ip: opt("max.connections.per.ip", 1)?,
        connections_max_idle: Duration::from_millis(get_num(
            raw,
            "connections.max.idle.ms",
            d.connections_max_idle.as_millis() as u64,
            1,
        )?),
        request_read_timeout: Duration::from_millis(get_num(
            raw,
            "socket.request.read.timeout.ms",
            d.request_read_timeout.as_millis() as u64,
            1,
        )?),
        queued_max_request_bytes: queued,
        max_broker_partitions: raw
            .get("max.broker.partitions")
            .map(|v| super::parse_num::<u32>("max.broker.partitions", v, 1))
            .transpose()?,
        log_max_open_files: opt("log.max.open.files", crate::log::MIN_OPEN_FILES as i64)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(kv: &[(&str, &str)]) -> Result<LimitsConfig, ConfigError> {
        let raw = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        limits_config(&raw, 100 << 20)
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(load(&[]).unwrap(), LimitsConfig::default());
        let c = load(&[
            ("max.connections", "100"),
            ("max.connections.per.ip", "5"),
            ("connections.max.idle.ms", "1000"),
            ("socket.request.read.timeout.ms", "2000"),
            ("queued.max.request.bytes", "-1"),
            ("max.broker.partitions", "300"),
            ("log.max.open.files", "64"),
        ])
        .unwrap();
        assert_eq!(c.max_connections, Some(100));
        assert_eq!(c.max_connections_per_ip, Some(5));
        assert_eq!(c.connections_max_idle, Duration::from_secs(1));
        assert_eq!(c.request_read_timeout, Duration::from_secs(2));
        assert_eq!(c.queued_max_request_bytes, None);
        assert_eq!(c.max_broker_partitions, Some(300));
        assert_eq!(c.log_max_open_files, Some(64));
    }

    #[test]
    fn bad_values_name_the_key() {
        for (k, v) in [
            ("max.connections", "0"),
            ("max.connections.per.ip", "x"),
            ("connections.max.idle.ms", "0"),
            ("queued.max.request.bytes", "1000"),
            ("max.broker.partitions", "-3"),
            ("log.max.open.files", "3"),
        ] {
            let e = load(&[(k, v)]).unwrap_err().to_string();
            assert!(e.contains(k), "{k}={v}: {e}");
        }
    }
}
