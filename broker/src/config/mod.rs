//! Broker configuration: `server.properties` plus `--override key=value`, with Kafka's own key
//! names. Unknown keys are warned about; bad values stop the broker at start, naming the key.

pub mod defs;
pub mod dynamic;
pub mod group;
pub mod http;
pub mod limits;
pub mod quota;
pub mod replica_list;
pub mod security;
pub mod ssl;
pub mod txn;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A config problem found at start; the broker refuses to run and prints it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The properties file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line or override is not `key=value`.
    #[error("malformed property {0:?}: expected key=value")]
    Malformed(String),
    /// A key has a value it cannot take.
    #[error("invalid value {value:?} for {key}: {why}")]
    Invalid {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
}

/// One `listeners` entry: `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Listener name (`PLAINTEXT`, `CONTROLLER`, ...).
    pub name: String,
    /// Host to bind or advertise.
    pub host: String,
    /// Port; 0 binds an ephemeral port.
    pub port: u16,
}

/// Keys the broker understands besides the topic-default synonyms in [`defs::TOPIC_CONFIGS`].
/// Anything else is warned about at start.
const BROKER_KEYS: &[&str] = &[
    "node.id",
    "broker.id",
    "process.roles",
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "inter.broker.listener.name",
    "controller.listener.names",
    "controller.quorum.voters",
    "log.dirs",
    "log.dir",
    "num.partitions",
    "default.replication.factor",
    "auto.create.topics.enable",
    "delete.topic.enable",
    "socket.request.max.bytes",
    "http.listener",
    "log.retention.check.interval.ms",
    "broker.rack",
    "replica.selector.class",
    "transaction.version",
    "quota.window.num",
    "quota.window.size.seconds",
    "controller.quota.window.num",
    "controller.quota.window.size.seconds",
    "num.network.threads",
    "num.io.threads",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "num.recovery.threads.per.data.dir",
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "transaction.state.log.num.partitions",
    "transaction.state.log.segment.bytes",
    "transaction.max.timeout.ms",
    "transactional.id.expiration.ms",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
    "transaction.remove.expired.transaction.cleanup.interval.ms",
    "transaction.partition.verification.enable",
    "group.initial.rebalance.delay.ms",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
    "group.consumer.session.timeout.ms",
    "group.consumer.min.session.timeout.ms",
    "group.consumer.max.session.timeout.ms",
    "group.consumer.heartbeat.interval.ms",
    "group.consumer.assignors",
    "group.consumer.max.size",
    "group.consumer.migration.policy",
    "offsets.topic.num.partitions",
    "offsets.retention.minutes",
    "offsets.retention.check.interval.ms",
    "offset.metadata.max.bytes",
    "offsets.commit.timeout.ms",
    "log.cleaner.enable",
    "cluster.id",
    "replica.lag.time.max.ms",
    "replica.fetch.wait.max.ms",
    "replica.fetch.min.bytes",
    "replica.fetch.max.bytes",
    "replica.fetch.response.max.bytes",
    "replica.fetch.backoff.ms",
    "replica.socket.timeout.ms",
    "broker.heartbeat.interval.ms",
    "broker.session.timeout.ms",
    "controller.quorum.election.timeout.ms",
    "auto.leader.rebalance.enable",
    "leader.imbalance.check.interval.seconds",
    "leader.imbalance.per.broker.percentage",
    "replica.high.watermark.checkpoint.interval.ms",
    "metadata.log.dir",
    "max.connections",
    "max.connections.per.ip",
    "connections.max.idle.ms",
    "socket.request.read.timeout.ms",
    "queued.max.request.bytes",
    "max.broker.partitions",
    "log.max.open.files",
];

/// Replication and broker-liveness settings, Kafka's names and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// `replica.lag.time.max.ms` (30000): a follower that has not caught up with the leader
    /// for this long leaves the ISR.
    pub lag_time_max_ms: u64,
    /// `replica.fetch.wait.max.ms` (500): how long a follower's fetch long-polls.
    pub fetch_wait_max_ms: i32,
    /// `replica.fetch.min.bytes` (1).
    pub fetch_min_bytes: i32,
    /// `replica.fetch.max.bytes` (1 MiB): per partition.
    pub fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes` (10 MiB): per fetch response.
    pub fetch_response_max_bytes: i32,
    /// `replica.fetch.backoff.ms` (1000): the longest pause after a failed fetch (the pause
    /// starts at 50 ms and doubles).
    pub fetch_backoff_ms: u64,
    /// `replica.socket.timeout.ms` (30000): limit for connecting to a leader and for one
    /// request beyond its long-poll time.
    pub socket_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms` (250; Kafka: 2000): how often the active controller
    /// checks that each registered broker answers.
    pub heartbeat_interval_ms: u64,
    /// `broker.session.timeout.ms` (3000; Kafka: 9000): a broker that has not answered for
    /// this long is fenced and its leaderships move to other in-sync replicas. A broker whose
    /// port refuses connections (its process is gone) is fenced sooner, see
    /// `controller/liveness.rs`; this timeout is for brokers that are slow or cut off, so it
    /// stays long enough that a node starved of CPU for a moment is not fenced.
    pub session_timeout_ms: u64,
    /// `controller.quorum.election.timeout.ms` (500; Kafka: 1000): a controller that hears no
    /// quorum leader for a random time between this and twice this starts an election.
    pub election_timeout_ms: u64,
    /// `replica.selector.class` (unset): Kafka's `RackAwareReplicaSelector` lets consumers
    /// that name their rack read from an in-sync replica there (KIP-392).
    pub replica_selector: ReplicaSelector,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            lag_time_max_ms: 30_000,
            fetch_wait_max_ms: 500,
            fetch_min_bytes: 1,
            fetch_max_bytes: 1_048_576,
            fetch_response_max_bytes: 10_485_760,
            fetch_backoff_ms: 1_000,
            socket_timeout_ms: 30_000,
            heartbeat_interval_ms: 250,
            session_timeout_ms: 3_000,
            election_timeout_ms: 500,
            replica_selector: ReplicaSelector::Leader,
        }
    }
}

/// Kafka's class name for the rack-aware selector, as operators set it.
pub const RACK_AWARE_SELECTOR_CLASS: &str =
    "org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// `replica.selector.class`: how a leader picks the replica a consumer reads from (KIP-392,
/// `replica/selector.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplicaSelector {
    /// Unset (Kafka's default): consumers read from the leader.
    #[default]
    Leader,
    /// Kafka's `RackAwareReplicaSelector`.
    RackAware,
}

impl ReplicaSelector {
    /// The selector a `replica.selector.class` value names; `None` for a class Rill does not
    /// implement.
    pub fn from_class(class: &str) -> Option<ReplicaSelector> {
        match class.trim() {
            "" => Some(ReplicaSelector::Leader),
            RACK_AWARE_SELECTOR_CLASS => Some(ReplicaSelector::RackAware),
            _ => None,
        }
    }
}

fn replication_config(raw: &BTreeMap<String, String>) -> Result<ReplicationConfig, ConfigError> {
    let d = ReplicationConfig::default();
    let cfg = ReplicationConfig {
        lag_time_max_ms: get_num(raw, "replica.lag.time.max.ms", d.lag_time_max_ms, 1)?,
        fetch_wait_max_ms: get_num(raw, "replica.fetch.wait.max.ms", d.fetch_wait_max_ms, 0)?,
        fetch_min_bytes: get_num(raw, "replica.fetch.min.bytes", d.fetch_min_bytes, 1)?,
        fetch_max_bytes: get_num(raw, "replica.fetch.max.bytes", d.fetch_max_bytes, 1024)?,
        fetch_response_max_bytes: get_num(
            raw,
            "replica.fetch.response.max.bytes",
            d.fetch_response_max_bytes,
            1024,
        )?,
        fetch_backoff_ms: get_num(raw, "replica.fetch.backoff.ms", d.fetch_backoff_ms, 1)?,
        socket_timeout_ms: get_num(raw, "replica.socket.timeout.ms", d.socket_timeout_ms, 100)?,
        heartbeat_interval_ms: get_num(
            raw,
            "broker.heartbeat.interval.ms",
            d.heartbeat_interval_ms,
            10,
        )?,
        session_timeout_ms: get_num(raw, "broker.session.timeout.ms", d.session_timeout_ms, 100)?,
        election_timeout_ms: get_num(
            raw,
            "controller.quorum.election.timeout.ms",
            d.election_timeout_ms,
            100,
        )?,
        replica_selector: match raw.get("replica.selector.class") {
            None => d.replica_selector,
            Some(class) => ReplicaSelector::from_class(class).ok_or_else(|| {
                invalid(
                    "replica.selector.class",
                    class,
                    &format!("Rill implements {RACK_AWARE_SELECTOR_CLASS} (or leave it unset)"),
                )
            })?,
        },
    };
    if cfg.session_timeout_ms <= cfg.heartbeat_interval_ms {
        return Err(invalid(
            "broker.session.timeout.ms",
            &cfg.session_timeout_ms.to_string(),
            "must be above broker.heartbeat.interval.ms",
        ));
    }
    if u64::try_from(cfg.fetch_wait_max_ms).unwrap_or(0) >= cfg.socket_timeout_ms {
        return Err(invalid(
            "replica.fetch.wait.max.ms",
            &cfg.fetch_wait_max_ms.to_string(),
            "must be below replica.socket.timeout.ms",
        ));
    }
    Ok(cfg)
}

/// `auto.leader.rebalance.enable` and its timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebalanceConfig {
    /// `auto.leader.rebalance.enable` (true).
    pub enable: bool,
    /// `leader.imbalance.check.interval.seconds` (300).
    pub interval: std::time::Duration,
    /// `leader.imbalance.per.broker.percentage` (10).
    pub percentage: u32,
}

/// The broker's configuration, parsed and validated.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `node.id` (or the legacy `broker.id`).
    pub node_id: i32,
    /// `listeners`; the first non-CONTROLLER entry serves clients.
    pub listeners: Vec<Listener>,
    /// `advertised.listeners`, when set.
    pub advertised_listeners: Vec<Listener>,
    /// `log.dirs` (or `log.dir`).
    pub log_dirs: Vec<PathBuf>,
    /// `metadata.log.dir` (KRaft's key): where the metadata quorum keeps its log; the first
    /// of `log.dirs` when unset. A failure of this directory stops the node (as in Kafka),
    /// while a failed data log dir only takes its own partitions offline.
    pub metadata_log_dir: PathBuf,
    /// `num.partitions` for auto-created topics and CreateTopics with -1.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `socket.request.max.bytes`: frames above this are refused before any allocation.
    pub socket_request_max_bytes: usize,
    /// `http.listener`: the admin/metrics HTTP address.
    pub http_listener: SocketAddr,
    /// The HTTP API's authentication and TLS (`http.auth.*`, `http.ssl.*`).
    pub http: http::HttpConfig,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// The controller listener (`CONTROLLER://host:port`, named by `controller.listener.names`);
    /// an ephemeral loopback port when not configured (fine for a quorum of one).
    pub controller_listener: Listener,
    /// `controller.quorum.voters` (`id@host:port,...`); empty means a quorum of this node alone.
    pub quorum_voters: Vec<(i32, String)>,
    /// Consumer-group settings (`group.*`, `offsets.*`).
    pub groups: group::GroupConfig,
    /// Transaction coordinator settings (`transaction.*`).
    pub transactions: txn::TxnConfig,
    /// Client quota windows (`quota.window.*`).
    pub quotas: quota::QuotaConfig,
    /// Replication and liveness settings (`replica.*`, `broker.heartbeat.*`, `broker.session.*`).
    pub replication: ReplicationConfig,
    /// `auto.leader.rebalance.enable` (true), `leader.imbalance.check.interval.seconds` (300),
    /// `leader.imbalance.per.broker.percentage` (10).
    pub leader_rebalance: RebalanceConfig,
    /// `replica.high.watermark.checkpoint.interval.ms` (5000): how often each log dir's
    /// `replication-offset-checkpoint` is written.
    pub hw_checkpoint_interval_ms: u64,
    /// `num.recovery.threads.per.data.dir`: threads per log dir that open partition logs
    /// (recovery at start, and new replicas after a metadata change). Rill's default is 8
    /// (Kafka's is 2): opening a new log waits on a few fsyncs, and concurrent fsyncs share
    /// the file system's journal commits (one fsync 390 µs alone, 110 µs at 8 at once here).
    pub recovery_threads_per_data_dir: usize,
    /// Connection, request-memory and hosting limits (`max.connections`, ...).
    pub limits: limits::LimitsConfig,
    /// Listener security, SASL, re-authentication and the authorizer (`ssl.*`, `sasl.*`,
    /// `listener.security.protocol.map`, `authorizer.class.name`, ...).
    pub security: security::SecurityConfig,
    /// Every property as given, for DescribeConfigs and topic defaults.
    pub raw: BTreeMap<String, String>,
}

impl BrokerConfig {
    /// Loads a properties file (if any) and applies overrides on top.
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<BrokerConfig, ConfigError> {
        let mut raw = BTreeMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            raw.extend(parse_properties(&text)?);
        }
        for o in overrides {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| ConfigError::Malformed(o.clone()))?;
            raw.insert(k.trim().to_string(), v.trim().to_string());
        }
        Self::from_map(raw)
    }

    /// Builds the config from a key/value map (what [`BrokerConfig::load`] parsed).
    pub fn from_map(raw: BTreeMap<String, String>) -> Result<BrokerConfig, ConfigError> {
        for k in raw.keys() {
            let known = BROKER_KEYS.contains(&k.as_str())
                || security::is_security_key(k)
                || defs::TOPIC_CONFIGS
                    .iter()
                    .any(|d| d.synonyms.iter().any(|(s, _)| s == k));
            if !known {
                tracing::warn!(key = %k, "unknown configuration key ignored");
            }
        }
        let node_id = match raw.get("node.id").or_else(|| raw.get("broker.id")) {
            Some(v) => parse_num::<i32>("node.id", v, 0)?,
            None => 1,
        };
        let listeners = parse_listeners(
            "listeners",
            raw.get("listeners")
                .map(String::as_str)
                .unwrap_or("PLAINTEXT://127.0.0.1:9092"),
        )?;
        let controller_names = raw
            .get("controller.listener.names")
            .cloned()
            .unwrap_or_else(|| "CONTROLLER".into());
        if !listeners
            .iter()
            .any(|l| !defs::split_list(&controller_names).any(|n| n == l.name))
        {
            return Err(invalid(
                "listeners",
                raw.get("listeners").map(String::as_str).unwrap_or(""),
                "needs at least one client listener",
            ));
        }
        let advertised_listeners = match raw.get("advertised.listeners") {
            Some(v) => parse_listeners("advertised.listeners", v)?,
            None => Vec::new(),
        };
        let dirs = raw
            .get("log.dirs")
            .or_else(|| raw.get("log.dir"))
            .map(String::as_str)
            .unwrap_or("./rill-data");
        let log_dirs: Vec<PathBuf> = defs::split_list(dirs).map(PathBuf::from).collect();
        if log_dirs.is_empty() {
            return Err(invalid("log.dirs", dirs, "needs at least one directory"));
        }
        let http = raw
            .get("http.listener")
            .map(String::as_str)
            .unwrap_or("127.0.0.1:9644");
        let http_listener = http.parse().map_err(|_| {
            invalid(
                "http.listener",
                http,
                "expected host:port, e.g. 127.0.0.1:9644",
            )
        })?;
        let http_settings = http::http_config(&raw, http_listener, http)?;
        let socket_request_max_bytes = get_num(&raw, "socket.request.max.bytes", 104_857_600, 1)?;
        let metadata_log_dir = raw
            .get("metadata.log.dir")
            .map(|d| PathBuf::from(d.trim()))
            .unwrap_or_else(|| log_dirs[0].clone());
        let controller_name_list: Vec<String> = defs::split_list(&controller_names)
            .map(str::to_string)
            .collect();
        let security = security::security_config(&raw, &listeners, &controller_name_list)?;
        let cfg = BrokerConfig {
            security,
            node_id,
            listeners,
            advertised_listeners,
            limits: limits::limits_config(&raw, socket_request_max_bytes)?,
            log_dirs,
            metadata_log_dir,
            num_partitions: get_num(&raw, "num.partitions", 1, 1)?,
            default_replication_factor: get_num(&raw, "default.replication.factor", 1, 1)?,
            auto_create_topics: get_bool(&raw, "auto.create.topics.enable", true)?,
            delete_topic_enable: get_bool(&raw, "delete.topic.enable", true)?,
            socket_request_max_bytes,
            http_listener,
            http: http_settings,
            retention_check_interval_ms: get_num(
                &raw,
                "log.retention.check.interval.ms",
                300_000,
                1,
            )?,
            rack: raw.get("broker.rack").cloned(),
            controller_listener: Listener {
                name: String::new(),
                host: String::new(),
                port: 0,
            },
            quorum_voters: Vec::new(),
            groups: group::group_config(&raw)?,
            transactions: txn::txn_config(&raw)?,
            quotas: quota::quota_config(&raw)?,
            replication: replication_config(&raw)?,
            leader_rebalance: RebalanceConfig {
                enable: get_bool(&raw, "auto.leader.rebalance.enable", true)?,
                interval: std::time::Duration::from_secs(get_num(
                    &raw,
                    "leader.imbalance.check.interval.seconds",
                    300,
                    1,
                )?),
                percentage: get_num(&raw, "leader.imbalance.per.broker.percentage", 10, 0)?,
            },
            hw_checkpoint_interval_ms: get_num(
                &raw,
                "replica.high.watermark.checkpoint.interval.ms",
                5_000,
                1,
            )?,
            recovery_threads_per_data_dir: get_num(
                &raw,
                "num.recovery.threads.per.data.dir",
                8,
                1,
            )?,
            raw,
        };
        let mut cfg = cfg;
        let roles = cfg
            .raw
            .get("process.roles")
            .cloned()
            .unwrap_or_else(|| "broker,controller".into());
        let roles: Vec<&str> = defs::split_list(&roles).collect();
        if !(roles.contains(&"broker") && roles.contains(&"controller")) {
            return Err(invalid(
                "process.roles",
                &roles.join(","),
                "only combined nodes (broker,controller) are supported so far",
            ));
        }
        let controller_name = cfg
            .raw
            .get("controller.listener.names")
            .and_then(|v| defs::split_list(v).next().map(str::to_string))
            .unwrap_or_else(|| "CONTROLLER".into());
        cfg.controller_listener = cfg
            .listeners
            .iter()
            .find(|l| l.name == controller_name)
            .cloned()
            .unwrap_or(Listener {
                name: controller_name,
                host: "127.0.0.1".into(),
                port: 0,
            });
        if let Some(v) = cfg.raw.get("controller.quorum.voters") {
            for item in defs::split_list(v) {
                let (id, addr) = item.split_once('@').ok_or_else(|| {
                    invalid("controller.quorum.voters", item, "expected id@host:port")
                })?;
                let id: i32 = id.parse().map_err(|_| {
                    invalid("controller.quorum.voters", item, "the id must be a number")
                })?;
                if addr
                    .rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok())
                    .is_none()
                {
                    return Err(invalid(
                        "controller.quorum.voters",
                        item,
                        "expected id@host:port",
                    ));
                }
                if let Some((_, other)) = cfg.quorum_voters.iter().find(|(v, _)| *v == id) {
                    return Err(invalid(
                        "controller.quorum.voters",
                        v,
                        &format!("node id {id} is listed twice ({other} and {addr}): give every voter its own node.id"),
                    ));
                }
                if let Some((other, _)) = cfg.quorum_voters.iter().find(|(_, a)| a == addr) {
                    return Err(invalid(
                        "controller.quorum.voters",
                        v,
                        &format!("{addr} is listed for node {other} and node {id}: every voter needs its own address"),
                    ));
                }
                cfg.quorum_voters.push((id, addr.to_string()));
            }
            if !cfg.quorum_voters.iter().any(|(id, _)| *id == cfg.node_id) {
                return Err(invalid(
                    "controller.quorum.voters",
                    v,
                    &format!("must list this node (node.id={})", cfg.node_id),
                ));
            }
        }
        // Every topic default set at broker level must be a valid value for its topic key.
        for def in defs::TOPIC_CONFIGS {
            for (key, factor) in def.synonyms {
                if let Some(v) = cfg.raw.get(*key) {
                    let probe = if *factor == 1 {
                        v.clone()
                    } else {
                        parse_num::<i64>(key, v, -1)?.to_string()
                    };
                    def.validate(&probe).map_err(|e| invalid(key, v, &e.0))?;
                }
            }
        }
        Ok(cfg)
    }

    /// The listeners that serve Kafka clients: every one but the controller's.
    pub fn client_listeners(&self) -> impl Iterator<Item = &Listener> {
        self.listeners
            .iter()
            .filter(|l| l.name != self.controller_listener.name)
    }

    /// The listener brokers reach each other on (`inter.broker.listener.name`).
    pub fn client_listener(&self) -> &Listener {
        // from_map guarantees a client listener exists.
        self.client_listeners()
            .find(|l| l.name == self.security.inter_broker_listener)
            .or_else(|| self.client_listeners().next())
            .unwrap_or(&self.listeners[0])
    }
}

/// Parses Java-properties text (`rill_client::properties`, shared with the tools'
/// `--command-config`).
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    rill_client::properties::parse(text).map_err(ConfigError::Malformed)
}

fn parse_listeners(key: &str, v: &str) -> Result<Vec<Listener>, ConfigError> {
    defs::split_list(v)
        .map(|item| {
            let (name, rest) = item
                .split_once("://")
                .ok_or_else(|| invalid(key, item, "expected NAME://host:port"))?;
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| invalid(key, item, "expected NAME://host:port"))?;
            let port = port
                .parse::<u16>()
                .map_err(|_| invalid(key, item, "port must be 0-65535"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let host = if host.is_empty() { "0.0.0.0" } else { host };
            Ok(Listener {
                name: name.to_string(),
                host: host.to_string(),
                port,
            })
        })
        .collect()
}

fn invalid(key: &str, value: &str, why: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        why: why.to_string(),
    }
}

fn parse_num<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display + TryFrom<i64>>(
    key: &str,
    v: &str,
    min: i64,
) -> Result<T, ConfigError> {
    let n: T = v
        .trim()
        .parse()
        .map_err(|_| invalid(key, v, "not a number"))?;
    let min_t = T::try_from(min).map_err(|_| invalid(key, v, "out of range"))?;
    if n < min_t {
        return Err(invalid(key, v, &format!("must be at least {min}")));
    }
    Ok(n)
}

fn get_num<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display + TryFrom<i64>>(
    raw: &BTreeMap<String, String>,
    key: &str,
    default: T,
    min: i64,
) -> Result<T, ConfigError> {
    raw.get(key).map_or(Ok(default), |v| parse_num(key, v, min))
}

fn get_bool(raw: &BTreeMap<String, String>, key: &str, default: bool) -> Result<bool, ConfigError> {
    match raw.get(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(invalid(key, &v, "expected true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_make_a_one_node_cluster() {
        let c = BrokerConfig::load(None, &[]).unwrap();
        assert_eq!(c.node_id, 1);
        assert_eq!(c.client_listener().port, 9092);
        assert_eq!(c.log_dirs, vec![PathBuf::from("./rill-data")]);
        assert!(c.auto_create_topics);
    }

    #[test]
    fn replica_selector_class_takes_kafkas_rack_aware_selector() {
        let c = BrokerConfig::load(None, &[]).unwrap();
        assert_eq!(c.replication.replica_selector, ReplicaSelector::Leader);
        let c = BrokerConfig::load(
            None,
            &[format!(
                "replica.selector.class={RACK_AWARE_SELECTOR_CLASS}"
            )],
        )
        .unwrap();
        assert_eq!(c.replication.replica_selector, ReplicaSelector::RackAware);
        let e = BrokerConfig::load(None, &["replica.selector.class=com.example.Nearest".into()])
            .expect_err("unknown class");
        assert!(e.to_string().contains("replica.selector.class"), "{e}");
    }

    #[test]
    fn properties_and_overrides() {
        let p = parse_properties(
            "# c\nnode.id=3\nlog.dirs = /a,/b\nlisteners: PLAINTEXT://0.0.0.0:1\\\n234\n",
        )
        .unwrap();
        assert_eq!(p["listeners"], "PLAINTEXT://0.0.0.0:1234");
        let c = BrokerConfig::from_map(p).unwrap();
        assert_eq!(c.log_dirs.len(), 2);
        assert_eq!(c.node_id, 3);
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = BrokerConfig::load(None, &["num.partitions=zero".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("num.partitions"), "{e}");
        let e = BrokerConfig::load(None, &["log.segment.bytes=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.segment.bytes"), "{e}");
        let e = BrokerConfig::load(None, &["listeners=nonsense".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("listeners"), "{e}");
        assert!(BrokerConfig::load(None, &["novalue".into()]).is_err());
        let e = BrokerConfig::load(
            None,
            &[
                "broker.session.timeout.ms=100".into(),
                "broker.heartbeat.interval.ms=500".into(),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("broker.session.timeout.ms"), "{e}");
    }

    #[test]
    fn voters_must_be_distinct() {
        let e = BrokerConfig::load(
            None,
            &["controller.quorum.voters=1@127.0.0.1:1,1@127.0.0.1:2".into()],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("controller.quorum.voters") && e.contains("listed twice"),
            "{e}"
        );
        let e = BrokerConfig::load(
            None,
            &["controller.quorum.voters=1@127.0.0.1:1,2@127.0.0.1:1".into()],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("its own address"), "{e}");
    }

    #[test]
    fn metadata_log_dir_defaults_to_the_first_log_dir() {
        let c = BrokerConfig::load(None, &["log.dirs=/a,/b".into()]).unwrap();
        assert_eq!(c.metadata_log_dir, PathBuf::from("/a"));
        let c = BrokerConfig::load(None, &["metadata.log.dir=/m".into()]).unwrap();
        assert_eq!(c.metadata_log_dir, PathBuf::from("/m"));
    }

    #[test]
    fn replication_settings() {
        let c = BrokerConfig::load(None, &[]).unwrap();
        assert_eq!(c.replication, ReplicationConfig::default());
        let c = BrokerConfig::load(
            None,
            &[
                "replica.lag.time.max.ms=3000".into(),
                "broker.session.timeout.ms=2000".into(),
                "broker.heartbeat.interval.ms=200".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.replication.lag_time_max_ms, 3000);
        assert_eq!(c.replication.session_timeout_ms, 2000);
        assert_eq!(c.replication.heartbeat_interval_ms, 200);
    }
}
