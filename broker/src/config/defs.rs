//! Topic-level configuration: every key Kafka exposes on a topic, its type, default, broker-level
//! synonym, validation and documentation. DescribeConfigs, CreateTopics, AlterConfigs and the log
//! all read this one table, so a key means the same thing everywhere.

use std::collections::BTreeMap;

/// Kafka's `ConfigType` codes as DescribeConfigs v3+ reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// `BOOLEAN` (1).
    Boolean = 1,
    /// `STRING` (2).
    String = 2,
    /// `INT` (3).
    Int = 3,
    /// `LONG` (5).
    Long = 5,
    /// `DOUBLE` (6).
    Double = 6,
    /// `LIST` (7).
    List = 7,
}

/// What values a key accepts beyond its type.
#[derive(Debug, Clone, Copy)]
pub enum Validator {
    /// Any value of the type.
    Any,
    /// A number at least this large.
    AtLeast(i64),
    /// A number in this closed range.
    Between(f64, f64),
    /// One of these strings (for a list: every element).
    OneOf(&'static [&'static str]),
    /// A throttled-replicas list: `partitionId:brokerId` pairs, or the wildcard `*`.
    ReplicaList,
    /// A Kafka release or inter-broker protocol version (`0.10.0`, `2.8-IV1`, `3.0-IV1`).
    ProtocolVersion,
}

/// One topic-level config key.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    /// The topic-level name (`retention.ms`).
    pub name: &'static str,
    /// The broker-level keys that set its default, most specific first (`log.retention.ms`,
    /// `log.retention.minutes`, `log.retention.hours`), with the factor that turns each into the
    /// topic key's unit.
    pub synonyms: &'static [(&'static str, i64)],
    /// The value type.
    pub kind: ConfigType,
    /// Kafka's built-in default.
    pub default: &'static str,
    /// Allowed values.
    pub validator: Validator,
    /// Help text, as Kafka's documentation words it.
    pub doc: &'static str,
}

const MAX: &str = "9223372036854775807";

/// Every topic-level key Rill accepts, sorted by name.
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    ConfigDef { name: "cleanup.policy", synonyms: &[("log.cleanup.policy", 1)], kind: ConfigType::List, default: "delete", validator: Validator::OneOf(&["delete", "compact"]), doc: "The retention policy for old log segments: \"delete\" discards them by time or size, \"compact\" keeps the latest value per key." },
    ConfigDef { name: "compression.type", synonyms: &[("compression.type", 1)], kind: ConfigType::String, default: "producer", validator: Validator::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]), doc: "The final compression type for a topic; \"producer\" keeps the codec the producer chose." },
    ConfigDef { name: "delete.retention.ms", synonyms: &[("log.cleaner.delete.retention.ms", 1)], kind: ConfigType::Long, default: "86400000", validator: Validator::AtLeast(0), doc: "How long delete tombstones are kept for compacted topics." },
    ConfigDef { name: "file.delete.delay.ms", synonyms: &[("log.segment.delete.delay.ms", 1)], kind: ConfigType::Long, default: "60000", validator: Validator::AtLeast(0), doc: "The time to wait before deleting a file from the filesystem." },
    ConfigDef { name: "flush.messages", synonyms: &[("log.flush.interval.messages", 1)], kind: ConfigType::Long, default: MAX, validator: Validator::AtLeast(1), doc: "Force an fsync of the log after this many messages; by default Kafka relies on replication, not fsync." },
    ConfigDef { name: "flush.ms", synonyms: &[("log.flush.interval.ms", 1)], kind: ConfigType::Long, default: MAX, validator: Validator::AtLeast(0), doc: "Force an fsync of the log after this many milliseconds." },
    ConfigDef { name: "follower.replication.throttled.replicas", synonyms: &[], kind: ConfigType::List, default: "", validator: Validator::ReplicaList, doc: "Replicas whose log replication should be throttled on the follower side: partitionId:brokerId pairs or the wildcard '*'." },
    ConfigDef { name: "index.interval.bytes", synonyms: &[("log.index.interval.bytes", 1)], kind: ConfigType::Int, default: "4096", validator: Validator::AtLeast(0), doc: "How often an entry is added to the offset index." },
    ConfigDef { name: "leader.replication.throttled.replicas", synonyms: &[], kind: ConfigType::List, default: "", validator: Validator::ReplicaList, doc: "Replicas whose log replication should be throttled on the leader side: partitionId:brokerId pairs or the wildcard '*'." },
    ConfigDef { name: "max.compaction.lag.ms", synonyms: &[("log.cleaner.max.compaction.lag.ms", 1)], kind: ConfigType::Long, default: MAX, validator: Validator::AtLeast(1), doc: "The maximum time a message remains ineligible for compaction." },
    ConfigDef { name: "max.message.bytes", synonyms: &[("message.max.bytes", 1)], kind: ConfigType::Int, default: "1048588", validator: Validator::AtLeast(0), doc: "The largest record batch size allowed (after compression if compression is enabled)." },
    ConfigDef { name: "message.format.version", synonyms: &[("log.message.format.version", 1)], kind: ConfigType::String, default: "3.0-IV1", validator: Validator::ProtocolVersion, doc: "Deprecated and ignored, as in Kafka 3.x from inter-broker protocol 3.0 (removed in Kafka 4.0): records are always stored in batch format v2. Accepted so older tools that set it keep working." },
    ConfigDef { name: "message.timestamp.after.max.ms", synonyms: &[("log.message.timestamp.after.max.ms", 1)], kind: ConfigType::Long, default: "3600000", validator: Validator::AtLeast(0), doc: "How far in the future a CreateTime timestamp may be, relative to the broker's clock." },
    ConfigDef { name: "message.timestamp.before.max.ms", synonyms: &[("log.message.timestamp.before.max.ms", 1)], kind: ConfigType::Long, default: MAX, validator: Validator::AtLeast(0), doc: "How far in the past a CreateTime timestamp may be, relative to the broker's clock." },
    ConfigDef { name: "message.timestamp.type", synonyms: &[("log.message.timestamp.type", 1)], kind: ConfigType::String, default: "CreateTime", validator: Validator::OneOf(&["CreateTime", "LogAppendTime"]), doc: "Whether a record's timestamp is the producer's create time or the broker's log append time." },
    ConfigDef { name: "min.cleanable.dirty.ratio", synonyms: &[("log.cleaner.min.cleanable.ratio", 1)], kind: ConfigType::Double, default: "0.5", validator: Validator::Between(0.0, 1.0), doc: "How dirty a compacted log must be before it is cleaned." },
    ConfigDef { name: "min.compaction.lag.ms", synonyms: &[("log.cleaner.min.compaction.lag.ms", 1)], kind: ConfigType::Long, default: "0", validator: Validator::AtLeast(0), doc: "The minimum time a message remains uncompacted in the log." },
    ConfigDef { name: "min.insync.replicas", synonyms: &[("min.insync.replicas", 1)], kind: ConfigType::Int, default: "1", validator: Validator::AtLeast(1), doc: "With acks=all, the minimum number of in-sync replicas that must acknowledge a write." },
    ConfigDef { name: "preallocate", synonyms: &[("log.preallocate", 1)], kind: ConfigType::Boolean, default: "false", validator: Validator::Any, doc: "Preallocate the file on disk when creating a new log segment." },
    ConfigDef { name: "retention.bytes", synonyms: &[("log.retention.bytes", 1)], kind: ConfigType::Long, default: "-1", validator: Validator::Any, doc: "The maximum size a partition can grow to before old segments are discarded; -1 means no limit." },
    ConfigDef { name: "retention.ms", synonyms: &[("log.retention.ms", 1), ("log.retention.minutes", 60_000), ("log.retention.hours", 3_600_000)], kind: ConfigType::Long, default: "604800000", validator: Validator::AtLeast(-1), doc: "How long a segment is kept before it is discarded; -1 means no time limit." },
    ConfigDef { name: "segment.bytes", synonyms: &[("log.segment.bytes", 1)], kind: ConfigType::Int, default: "1073741824", validator: Validator::AtLeast(14), doc: "The segment file size of the log." },
    ConfigDef { name: "segment.index.bytes", synonyms: &[("log.index.size.max.bytes", 1)], kind: ConfigType::Int, default: "10485760", validator: Validator::AtLeast(4), doc: "The size of the index that maps offsets to file positions." },
    ConfigDef { name: "segment.jitter.ms", synonyms: &[("log.roll.jitter.ms", 1), ("log.roll.jitter.hours", 3_600_000)], kind: ConfigType::Long, default: "0", validator: Validator::AtLeast(0), doc: "The maximum random jitter subtracted from segment.ms." },
    ConfigDef { name: "segment.ms", synonyms: &[("log.roll.ms", 1), ("log.roll.hours", 3_600_000)], kind: ConfigType::Long, default: "604800000", validator: Validator::AtLeast(1), doc: "The time after which the log rolls a new segment even if it is not full." },
    ConfigDef { name: "unclean.leader.election.enable", synonyms: &[("unclean.leader.election.enable", 1)], kind: ConfigType::Boolean, default: "false", validator: Validator::Any, doc: "Whether a replica outside the ISR may become leader as a last resort, at the risk of data loss." },
];

/// Looks up a topic-level key.
pub fn topic_config(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Why a config value was refused; the message is shown to the operator as-is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConfig(pub String);

impl ConfigDef {
    /// Checks a value for this key and returns it normalised (trimmed).
    pub fn validate(&self, value: &str) -> Result<String, InvalidConfig> {
        let v = value.trim();
        let bad = |why: &str| {
            InvalidConfig(format!(
                "Invalid value {value} for configuration {}: {why}",
                self.name
            ))
        };
        match self.kind {
            ConfigType::Boolean => {
                if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                    return Err(bad("Expected value to be either true or false"));
                }
                return Ok(v.to_ascii_lowercase());
            }
            ConfigType::Int | ConfigType::Long => {
                let n: i64 = v.parse().map_err(|_| bad("Not a number of type LONG"))?;
                if self.kind == ConfigType::Int && i32::try_from(n).is_err() {
                    return Err(bad("Not a number of type INT"));
                }
                if let Validator::AtLeast(min) = self.validator {
                    if n < min {
                        return Err(bad(&format!("Value must be at least {min}")));
                    }
                }
            }
            ConfigType::Double => {
                let n: f64 = v.parse().map_err(|_| bad("Not a number of type DOUBLE"))?;
                if let Validator::Between(lo, hi) = self.validator {
                    if !(lo..=hi).contains(&n) {
                        return Err(bad(&format!("Value must be between {lo} and {hi}")));
                    }
                }
            }
            ConfigType::String => {
                if matches!(self.validator, Validator::ProtocolVersion) && !is_protocol_version(v) {
                    return Err(bad(&format!(
                        "Version `{v}` is not a valid version (a Kafka release such as 0.10.0 or 3.0-IV1)"
                    )));
                }
                if let Validator::OneOf(allowed) = self.validator {
                    if !allowed.contains(&v) {
                        return Err(bad(&format!(
                            "String must be one of: {}",
                            allowed.join(", ")
                        )));
                    }
                }
            }
            ConfigType::List => {
                if let Validator::ReplicaList = self.validator {
                    super::replica_list::ReplicaList::parse(v).map_err(|m| bad(&m))?;
                }
                if let Validator::OneOf(allowed) = self.validator {
                    for item in split_list(v) {
                        if !allowed.contains(&item) {
                            return Err(bad(&format!(
                                "Invalid value {item}; each entry must be one of: {}",
                                allowed.join(", ")
                            )));
                        }
                    }
                }
            }
        }
        Ok(v.to_string())
    }
}

/// Splits a comma-separated list value, dropping empty entries.
pub fn split_list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Where an effective value came from, with Kafka's `ConfigSource` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic (`DYNAMIC_TOPIC_CONFIG`, 1).
    Topic = 1,
    /// Set at run time for one broker (`DYNAMIC_BROKER_CONFIG`, 2).
    DynamicBroker = 2,
    /// Set at run time for all brokers (`DYNAMIC_DEFAULT_BROKER_CONFIG`, 3).
    DynamicDefaultBroker = 3,
    /// Set in server.properties or by `--override` (`STATIC_BROKER_CONFIG`, 4).
    StaticBroker = 4,
    /// Kafka's built-in default (`DEFAULT_CONFIG`, 5).
    Default = 5,
}

/// One candidate value for a key, as DescribeConfigs lists synonyms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synonym {
    /// The key as set at that level (`retention.ms`, `log.retention.hours`, ...).
    pub name: String,
    /// The value as set there.
    pub value: String,
    /// The level.
    pub source: ConfigSource,
}

/// The effective value of one topic key, with every level that could supply it, most specific
/// first (the first synonym is the one in force).
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The key's definition.
    pub def: &'static ConfigDef,
    /// The value in force, in the topic key's unit.
    pub value: String,
    /// Where it came from.
    pub source: ConfigSource,
    /// All levels that set it, most specific first.
    pub synonyms: Vec<Synonym>,
}

/// Resolves every topic key from the topic's own overrides and the broker's static properties.
pub fn resolve_all(
    topic: &BTreeMap<String, String>,
    broker: &BTreeMap<String, String>,
) -> Vec<Resolved> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| resolve(def, topic, broker))
        .collect()
}

/// Resolves one topic key (see [`resolve_all`]).
pub fn resolve(
    def: &'static ConfigDef,
    topic: &BTreeMap<String, String>,
    broker: &BTreeMap<String, String>,
) -> Resolved {
    let mut synonyms = Vec::new();
    if let Some(v) = topic.get(def.name) {
        synonyms.push(Synonym {
            name: def.name.to_string(),
            value: v.clone(),
            source: ConfigSource::Topic,
        });
    }
    for (key, _) in def.synonyms {
        if let Some(v) = broker.get(*key) {
            synonyms.push(Synonym {
                name: key.to_string(),
                value: v.clone(),
                source: ConfigSource::StaticBroker,
            });
        }
    }
    let fallback_name = def.synonyms.first().map(|(k, _)| *k).unwrap_or(def.name);
    synonyms.push(Synonym {
        name: fallback_name.to_string(),
        value: def.default.to_string(),
        source: ConfigSource::Default,
    });
    let first = &synonyms[0];
    let value = match first.source {
        ConfigSource::StaticBroker => {
            let factor = def
                .synonyms
                .iter()
                .find(|(k, _)| *k == first.name)
                .map(|(_, f)| *f)
                .unwrap_or(1);
            scale(&first.value, factor)
        }
        _ => first.value.clone(),
    };
    Resolved {
        def,
        value,
        source: first.source,
        synonyms,
    }
}

/// Turns a broker value in coarser units (`log.retention.hours=2`) into the topic unit (ms).
fn scale(value: &str, factor: i64) -> String {
    if factor == 1 {
        return value.to_string();
    }
    match value.trim().parse::<i64>() {
        Ok(n) if n < 0 => n.to_string(),
        Ok(n) => n.saturating_mul(factor).to_string(),
        Err(_) => value.to_string(),
    }
}

/// Whether `v` reads as a Kafka release or inter-broker protocol version: two to four dotted
/// numbers, optionally followed by `-IV` and a number (Kafka's `MetadataVersion` names).
fn is_protocol_version(v: &str) -> bool {
    let (release, iv) = match v.split_once("-IV") {
        Some((r, iv)) => (r, Some(iv)),
        None => (v, None),
    };
    let numbers = |s: &str| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = release.split('.').collect();
    (2..=4).contains(&parts.len()) && parts.iter().all(|p| numbers(p)) && iv.is_none_or(numbers)
}

/// Validates a whole set of topic overrides (CreateTopics, AlterConfigs), naming the first bad key.
pub fn validate_topic_configs(
    configs: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, InvalidConfig> {
    let mut out = BTreeMap::new();
    for (k, v) in configs {
        let def = topic_config(k)
            .ok_or_else(|| InvalidConfig(format!("Unknown topic config name: {k}")))?;
        out.insert(k.clone(), def.validate(v)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_format_version_is_accepted_as_kafka_3_does() {
        let def = topic_config("message.format.version").expect("known key");
        for good in ["0.10.0.0", "0.10.0", "0.8.2", "2.8-IV1", "3.0-IV1", "3.0"] {
            assert_eq!(def.validate(good).as_deref(), Ok(good), "{good}");
        }
        for bad in ["", "3", "three", "3.0-IV", "1.2.3.4.5", "3.0-IVx", "-IV1"] {
            let e = def.validate(bad).expect_err(bad);
            assert!(e.0.contains("message.format.version"), "{e}");
        }
        let mut m = BTreeMap::new();
        m.insert("message.format.version".to_string(), "0.10.0.0".to_string());
        assert!(validate_topic_configs(&m).is_ok());
    }

    #[test]
    fn table_is_sorted_and_defaults_validate() {
        for w in TOPIC_CONFIGS.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
        for d in TOPIC_CONFIGS {
            assert!(
                d.validate(d.default).is_ok(),
                "default of {} must validate",
                d.name
            );
        }
    }

    #[test]
    fn bad_values_are_refused_with_the_key_named() {
        let d = topic_config("retention.ms").unwrap();
        let e = d.validate("soon").unwrap_err();
        assert!(e.0.contains("retention.ms"), "{e}");
        assert!(d.validate("-2").is_err());
        assert!(d.validate("-1").is_ok());
        let c = topic_config("cleanup.policy").unwrap();
        assert!(c.validate("compact,delete").is_ok());
        assert!(c.validate("compact,shred").is_err());
        assert!(topic_config("segment.bytes")
            .unwrap()
            .validate("3000000000")
            .is_err());
        assert!(validate_topic_configs(&BTreeMap::from([(
            "no.such".to_string(),
            "1".to_string()
        )]))
        .is_err());
    }

    #[test]
    fn broker_synonyms_resolve_in_topic_units() {
        let broker = BTreeMap::from([("log.retention.hours".to_string(), "2".to_string())]);
        let r = resolve(
            topic_config("retention.ms").unwrap(),
            &BTreeMap::new(),
            &broker,
        );
        assert_eq!(r.value, "7200000");
        assert_eq!(r.source, ConfigSource::StaticBroker);
        assert_eq!(r.synonyms.len(), 2);
        let topic = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        let r = resolve(topic_config("retention.ms").unwrap(), &topic, &broker);
        assert_eq!(r.value, "1000");
        assert_eq!(r.source, ConfigSource::Topic);
        assert_eq!(r.synonyms.len(), 3);
    }
}
