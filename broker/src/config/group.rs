//! Consumer-group settings (`group.*`, `offsets.*`), Kafka's names and defaults. Parsed here
//! with the rest of the broker's properties; the group coordinator reads them.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{get_num, invalid, ConfigError};

/// Group-related broker settings, with Kafka's names and defaults.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `offsets.topic.num.partitions` (50).
    pub offsets_partitions: i32,
    /// `offsets.topic.replication.factor` (3; capped at the broker count).
    pub offsets_replication_factor: i16,
    /// `offsets.retention.minutes` (7 days).
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms` (10 minutes).
    pub retention_check: Duration,
    /// `group.initial.rebalance.delay.ms` (3 s).
    pub initial_delay: Duration,
    /// `group.min.session.timeout.ms` (6 s).
    pub min_session: Duration,
    /// `group.max.session.timeout.ms` (30 min).
    pub max_session: Duration,
    /// `offset.metadata.max.bytes` (4096).
    pub metadata_max_bytes: usize,
    /// `offsets.commit.timeout.ms` (5000): how long a commit waits for the ISR.
    pub commit_timeout_ms: u64,
    /// Consumer groups of the KIP-848 protocol (`group.consumer.*`).
    pub consumer: ConsumerGroupConfig,
}

/// `group.consumer.*`: groups of the KIP-848 consumer protocol.
#[derive(Debug, Clone)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.session.timeout.ms` (45 s): a member that does not heartbeat for
    /// this long is removed.
    pub session_timeout: Duration,
    /// `group.consumer.heartbeat.interval.ms` (5 s): told to every member.
    pub heartbeat_interval: Duration,
    /// `group.consumer.assignors` (`uniform,range`): the server-side assignors members may
    /// ask for, the first the default. Names as Kafka spells them (or its class names).
    pub assignors: Vec<String>,
    /// `group.consumer.max.size`: most members of one group (Kafka's default is unbounded;
    /// ours is [`DEFAULT_CONSUMER_GROUP_MAX_SIZE`]).
    pub max_size: usize,
    /// `group.consumer.migration.policy` (`bidirectional`): whether a classic group converts
    /// online to a consumer group (`upgrade`), back (`downgrade`), both, or neither
    /// (`disabled`).
    pub migration_policy: MigrationPolicy,
}

/// The default of `group.consumer.max.size`: members of one consumer group.
pub const DEFAULT_CONSUMER_GROUP_MAX_SIZE: usize = 10_000;

/// `group.consumer.migration.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationPolicy {
    /// Both ways.
    Bidirectional,
    /// Classic to consumer only.
    Upgrade,
    /// Consumer to classic only.
    Downgrade,
    /// Neither.
    Disabled,
}

impl MigrationPolicy {
    /// A classic group may become a consumer group online.
    pub fn upgrades(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Bidirectional | MigrationPolicy::Upgrade
        )
    }

    /// A consumer group left with classic members only becomes classic again.
    pub fn downgrades(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Bidirectional | MigrationPolicy::Downgrade
        )
    }
}

/// The server-side assignors, by every name Kafka accepts for them, and their short name.
pub const CONSUMER_ASSIGNORS: &[(&str, &str)] = &[
    ("uniform", "uniform"),
    (
        "org.apache.kafka.coordinator.group.assignor.UniformAssignor",
        "uniform",
    ),
    ("range", "range"),
    (
        "org.apache.kafka.coordinator.group.assignor.RangeAssignor",
        "range",
    ),
];

impl Default for ConsumerGroupConfig {
    fn default() -> Self {
        ConsumerGroupConfig {
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(5),
            assignors: vec!["uniform".into(), "range".into()],
            max_size: DEFAULT_CONSUMER_GROUP_MAX_SIZE,
            migration_policy: MigrationPolicy::Bidirectional,
        }
    }
}

fn consumer_group_config(
    raw: &BTreeMap<String, String>,
) -> Result<ConsumerGroupConfig, ConfigError> {
    let d = ConsumerGroupConfig::default();
    let ms = |key: &str, default: Duration| -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(get_num::<u64>(
            raw,
            key,
            default.as_millis() as u64,
            1,
        )?))
    };
    let session_timeout = ms("group.consumer.session.timeout.ms", d.session_timeout)?;
    let heartbeat_interval = ms("group.consumer.heartbeat.interval.ms", d.heartbeat_interval)?;
    if heartbeat_interval >= session_timeout {
        return Err(invalid(
            "group.consumer.heartbeat.interval.ms",
            &heartbeat_interval.as_millis().to_string(),
            "must be less than group.consumer.session.timeout.ms",
        ));
    }
    let min_session = ms(
        "group.consumer.min.session.timeout.ms",
        Duration::from_millis(1),
    )?;
    let max_session = ms(
        "group.consumer.max.session.timeout.ms",
        Duration::from_secs(3600),
    )?;
    if session_timeout < min_session || session_timeout > max_session {
        return Err(invalid(
            "group.consumer.session.timeout.ms",
            &session_timeout.as_millis().to_string(),
            "must be within group.consumer.min.session.timeout.ms and \
             group.consumer.max.session.timeout.ms",
        ));
    }
    let assignors = match raw.get("group.consumer.assignors") {
        None => d.assignors,
        Some(v) => {
            let mut out: Vec<String> = Vec::new();
            for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let Some((_, short)) = CONSUMER_ASSIGNORS.iter().find(|(n, _)| *n == name) else {
                    return Err(invalid(
                        "group.consumer.assignors",
                        v,
                        "unknown assignor (known: uniform, range)",
                    ));
                };
                if !out.iter().any(|o| o == short) {
                    out.push(short.to_string());
                }
            }
            if out.is_empty() {
                return Err(invalid(
                    "group.consumer.assignors",
                    v,
                    "must name an assignor",
                ));
            }
            out
        }
    };
    let migration_policy = match raw
        .get("group.consumer.migration.policy")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("bidirectional") => MigrationPolicy::Bidirectional,
        Some("upgrade") => MigrationPolicy::Upgrade,
        Some("downgrade") => MigrationPolicy::Downgrade,
        Some("disabled") => MigrationPolicy::Disabled,
        Some(other) => {
            return Err(invalid(
                "group.consumer.migration.policy",
                other,
                "must be one of bidirectional, upgrade, downgrade, disabled",
            ))
        }
    };
    Ok(ConsumerGroupConfig {
        session_timeout,
        heartbeat_interval,
        assignors,
        max_size: get_num(raw, "group.consumer.max.size", d.max_size, 1)?,
        migration_policy,
    })
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            offsets_partitions: 50,
            offsets_replication_factor: 3,
            offsets_retention: Duration::from_secs(7 * 24 * 3600),
            retention_check: Duration::from_secs(600),
            initial_delay: Duration::from_secs(3),
            min_session: Duration::from_secs(6),
            max_session: Duration::from_secs(1800),
            metadata_max_bytes: 4096,
            commit_timeout_ms: 5000,
            consumer: ConsumerGroupConfig::default(),
        }
    }
}

pub(super) fn group_config(raw: &BTreeMap<String, String>) -> Result<GroupConfig, ConfigError> {
    let d = GroupConfig::default();
    let ms = |key: &str, default: Duration, min: i64| -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(get_num::<u64>(
            raw,
            key,
            default.as_millis() as u64,
            min,
        )?))
    };
    let cfg = GroupConfig {
        offsets_partitions: get_num(raw, "offsets.topic.num.partitions", d.offsets_partitions, 1)?,
        offsets_replication_factor: get_num(
            raw,
            "offsets.topic.replication.factor",
            d.offsets_replication_factor,
            1,
        )?,
        offsets_retention: Duration::from_secs(
            60 * get_num::<u64>(
                raw,
                "offsets.retention.minutes",
                d.offsets_retention.as_secs() / 60,
                1,
            )?,
        ),
        retention_check: ms("offsets.retention.check.interval.ms", d.retention_check, 1)?,
        initial_delay: ms("group.initial.rebalance.delay.ms", d.initial_delay, 0)?,
        min_session: ms("group.min.session.timeout.ms", d.min_session, 0)?,
        max_session: ms("group.max.session.timeout.ms", d.max_session, 0)?,
        metadata_max_bytes: get_num(raw, "offset.metadata.max.bytes", d.metadata_max_bytes, 0)?,
        commit_timeout_ms: get_num(raw, "offsets.commit.timeout.ms", d.commit_timeout_ms, 1)?,
        consumer: consumer_group_config(raw)?,
    };
    if cfg.min_session > cfg.max_session {
        return Err(invalid(
            "group.min.session.timeout.ms",
            &cfg.min_session.as_millis().to_string(),
            "must not exceed group.max.session.timeout.ms",
        ));
    }
    Ok(cfg)
}
