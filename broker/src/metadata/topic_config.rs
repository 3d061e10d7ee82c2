//! A topic's effective configuration, typed: its overrides over this broker's defaults,
//! resolved once per config change rather than parsed from strings wherever a value is
//! needed (the fetch path asked for the throttled-replicas list of every partition on every
//! fetch). [`TopicConfigs`] is the one place that answers "what is this topic's effective
//! config"; DescribeConfigs shows the same resolution with its sources (`config::defs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use crate::config::defs;
use crate::config::replica_list::ReplicaList;
use crate::log::LogConfig;
use crate::metadata::{MetadataImage, TopicMeta};

/// Topic config: replicas throttled on their leader.
pub const LEADER_THROTTLED_REPLICAS: &str = "leader.replication.throttled.replicas";
/// Topic config: replicas throttled on their follower.
pub const FOLLOWER_THROTTLED_REPLICAS: &str = "follower.replication.throttled.replicas";

/// One topic's effective configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    /// What the partition log needs (segments, retention, compaction, flush, limits).
    pub log: LogConfig,
    /// `min.insync.replicas` (at least 1).
    pub min_insync_replicas: usize,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election: bool,
    /// `leader.replication.throttled.replicas`.
    pub leader_throttled: ReplicaList,
    /// `follower.replication.throttled.replicas`.
    pub follower_throttled: ReplicaList,
}

impl TopicConfig {
    /// Resolves `overrides` over `broker` defaults (the broker's properties, Kafka's
    /// synonyms included). Values were validated when they were set; anything unreadable
    /// falls back to the key's default.
    pub fn resolve(
        overrides: &BTreeMap<String, String>,
        broker: &BTreeMap<String, String>,
    ) -> TopicConfig {
        let value = |k: &str| -> String {
            defs::topic_config(k)
                .map(|d| defs::resolve(d, overrides, broker).value)
                .unwrap_or_default()
        };
        let num = |k: &str| -> i64 { value(k).trim().parse::<i64>().unwrap_or(0) };
        let policy: Vec<String> = value("cleanup.policy")
            .split(',')
            .map(|p| p.trim().to_ascii_lowercase())
            .collect();
        let log = LogConfig {
            segment_bytes: num("segment.bytes").max(14) as u64,
            segment_ms: num("segment.ms"),
            retention_ms: num("retention.ms"),
            retention_bytes: num("retention.bytes"),
            index_interval_bytes: num("index.interval.bytes").clamp(0, u32::MAX as i64) as u32,
            max_message_bytes: num("max.message.bytes").clamp(0, u32::MAX as i64) as u32,
            timestamp_type_log_append: value("message.timestamp.type") == "LogAppendTime",
            timestamp_bounds: crate::log::TimestampBounds {
                before_max_ms: num("message.timestamp.before.max.ms"),
                after_max_ms: num("message.timestamp.after.max.ms"),
            },
            flush_messages: num("flush.messages"),
            flush_ms: num("flush.ms"),
            file_delete_delay_ms: num("file.delete.delay.ms"),
            cleanup_compact: policy.iter().any(|p| p == "compact"),
            cleanup_delete: policy.iter().any(|p| p == "delete"),
            delete_retention_ms: num("delete.retention.ms"),
            min_compaction_lag_ms: num("min.compaction.lag.ms"),
            min_cleanable_dirty_ratio: value("min.cleanable.dirty.ratio")
                .trim()
                .parse::<f64>()
                .unwrap_or(0.5),
        };
        TopicConfig {
            log,
            min_insync_replicas: usize::try_from(num("min.insync.replicas"))
                .unwrap_or(1)
                .max(1),
            unclean_leader_election: value("unclean.leader.election.enable")
                .trim()
                .eq_ignore_ascii_case("true"),
            leader_throttled: ReplicaList::parse(&value(LEADER_THROTTLED_REPLICAS))
                .unwrap_or_default(),
            follower_throttled: ReplicaList::parse(&value(FOLLOWER_THROTTLED_REPLICAS))
                .unwrap_or_default(),
        }
    }
}

/// This broker's resolved topic configs: each topic's resolution is kept until its overrides
/// change, so asking is a map lookup. Holds at most one entry per topic of the latest image
/// ([`TopicConfigs::retain`]).
pub struct TopicConfigs {
    broker: BTreeMap<String, String>,
    resolved: RwLock<HashMap<String, Resolved>>,
}

struct Resolved {
    overrides: BTreeMap<String, String>,
    config: Arc<TopicConfig>,
}

impl TopicConfigs {
    /// A resolver over this broker's properties (`server.properties` and overrides).
    pub fn new(broker: BTreeMap<String, String>) -> TopicConfigs {
        TopicConfigs {
            broker,
            resolved: RwLock::new(HashMap::new()),
        }
    }

    /// The topic's effective config.
    pub fn get(&self, topic: &TopicMeta) -> Arc<TopicConfig> {
        if let Ok(m) = self.resolved.read() {
            if let Some(r) = m.get(&topic.name) {
                if r.overrides == topic.configs {
                    return r.config.clone();
                }
            }
        }
        let config = Arc::new(TopicConfig::resolve(&topic.configs, &self.broker));
        if let Ok(mut m) = self.resolved.write() {
            m.insert(
                topic.name.clone(),
                Resolved {
                    overrides: topic.configs.clone(),
                    config: config.clone(),
                },
            );
        }
        config
    }

    /// The effective config of the topic named `name` in `image`, if it exists.
    pub fn by_name(&self, image: &MetadataImage, name: &str) -> Option<Arc<TopicConfig>> {
        image.topics.get(name).map(|t| self.get(t))
    }

    /// Forgets topics that are not in `image` (deleted), so the cache stays bounded.
    pub fn retain(&self, image: &MetadataImage) {
        if let Ok(mut m) = self.resolved.write() {
            m.retain(|name, _| image.topics.contains_key(name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::BrokerId;

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn overrides_over_broker_defaults_and_synonyms() {
        let c = TopicConfig::resolve(&BTreeMap::new(), &map(&[("log.retention.hours", "1")]));
        assert_eq!(c.log.retention_ms, 3_600_000);
        assert_eq!(c.min_insync_replicas, 1);
        assert!(!c.unclean_leader_election);
        let c = TopicConfig::resolve(
            &map(&[
                ("retention.ms", "5"),
                ("min.insync.replicas", "2"),
                ("cleanup.policy", "compact,delete"),
                ("unclean.leader.election.enable", "true"),
                (LEADER_THROTTLED_REPLICAS, "0:1"),
            ]),
            &map(&[("log.retention.hours", "1")]),
        );
        assert_eq!(c.log.retention_ms, 5);
        assert_eq!(c.min_insync_replicas, 2);
        assert!(c.log.cleanup_compact && c.log.cleanup_delete);
        assert!(c.unclean_leader_election);
        assert!(c.leader_throttled.contains(0, BrokerId(1)));
        assert_eq!(c.follower_throttled, ReplicaList::None);
    }

    #[test]
    fn resolved_once_per_change() {
        let cfgs = TopicConfigs::new(BTreeMap::new());
        let mut t = TopicMeta {
            name: "t".into(),
            id: uuid::Uuid::nil(),
            partitions: Vec::new(),
            configs: BTreeMap::new(),
        };
        let a = cfgs.get(&t);
        assert!(Arc::ptr_eq(&a, &cfgs.get(&t)), "kept while unchanged");
        t.configs.insert("retention.ms".into(), "7".into());
        let b = cfgs.get(&t);
        assert_eq!(b.log.retention_ms, 7);
        cfgs.retain(&MetadataImage::default());
        assert!(cfgs.resolved.read().unwrap().is_empty());
    }
}
