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
