//! Admin operations on topics, configs and partition offsets, as methods on [`Cluster`].
//! Each one is a thin, typed wrapper around one or a few Kafka requests.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeConfigsRequest, IncrementalAlterConfigsRequest, ListOffsetsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{ClientError, Cluster};

use super::resource::RESOURCE_TOPIC;
/// ListOffsets' timestamp for "the log end offset".
const LATEST_TIMESTAMP: i64 = -1;
/// ListOffsets' timestamp for "the log start offset".
const EARLIEST_TIMESTAMP: i64 = -2;

/// A topic and a partition index (the address of one partition log).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic-partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// The directory name Kafka uses for this partition's log: `topic-N`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A topic to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Partition count; `None` for the broker's `num.partitions`.
    pub partitions: Option<i32>,
    /// Replication factor; `None` for the broker's `default.replication.factor`.
    pub replication_factor: Option<i16>,
    /// Topic configs (`retention.ms`, `cleanup.policy`, ...).
    pub configs: Vec<(String, String)>,
}

/// Where a config value comes from (DescribeConfigs' `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on this topic.
    DynamicTopic,
    /// A dynamic per-broker value.
    DynamicBroker,
    /// A dynamic cluster-wide default.
    DynamicDefaultBroker,
    /// From the broker's properties file or overrides.
    StaticBroker,
    /// The built-in default.
    Default,
    /// Anything else (or a source this client does not know).
    Other(i8),
}

impl ConfigSource {
    /// The source for a DescribeConfigs `config_source` code.
    pub(super) fn from_code(code: i8) -> ConfigSource {
        match code {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            other => ConfigSource::Other(other),
        }
    }

    /// Kafka's name for the source (`DYNAMIC_TOPIC_CONFIG`, `DEFAULT_CONFIG`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            ConfigSource::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
            ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
            ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
            ConfigSource::Default => "DEFAULT_CONFIG",
            ConfigSource::Other(6) => "DYNAMIC_BROKER_LOGGER_CONFIG",
            ConfigSource::Other(_) => "UNKNOWN",
        }
    }
}

/// One config entry of a described resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Config name.
    pub name: String,
    /// Value (`None` for sensitive or unset values).
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// True when it cannot be altered.
    pub read_only: bool,
    /// True for passwords and the like.
    pub sensitive: bool,
}

/// A change for IncrementalAlterConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    /// Set `name` to `value`.
    Set(String, String),
    /// Remove `name`, reverting to the default.
    Delete(String),
    /// Append `value` to the list config `name`.
    Append(String, String),
    /// Remove `value` from the list config `name`.
    Subtract(String, String),
}

impl ConfigOp {
    /// The IncrementalAlterConfigs entries for `ops` (topics and brokers alike).
    pub(super) fn alterable(ops: &[ConfigOp]) -> Vec<AlterableConfig> {
        ops.iter()
            .map(|op| {
                let (name, kind, value) = match op {
                    ConfigOp::Set(k, v) => (k, 0, Some(sb(v))),
                    ConfigOp::Delete(k) => (k, 1, None),
                    ConfigOp::Append(k, v) => (k, 2, Some(sb(v))),
                    ConfigOp::Subtract(k, v) => (k, 3, Some(sb(v))),
                };
                AlterableConfig::default()
                    .with_name(sb(name))
                    .with_config_operation(kind)
                    .with_value(value)
            })
            .collect()
    }
}

impl ConfigEntry {
    /// One entry of a DescribeConfigs result.
    pub(super) fn from_described(c: DescribeConfigsResourceResult) -> ConfigEntry {
        ConfigEntry {
            name: c.name.to_string(),
            value: c.value.map(|v| v.to_string()),
            source: ConfigSource::from_code(c.config_source),
            read_only: c.read_only,
            sensitive: c.is_sensitive,
        }
    }
}

/// Which offset ListOffsets should return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (high watermark).
    Latest,
    /// The first offset whose timestamp is at or after this many ms since the epoch.
    Timestamp(i64),
}

impl OffsetSpec {
    fn timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => EARLIEST_TIMESTAMP,
            OffsetSpec::Latest => LATEST_TIMESTAMP,
            OffsetSpec::Timestamp(ts) => ts,
        }
    }
}

/// A ListOffsets answer for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset; -1 for a timestamp after every record in the partition.
    pub offset: i64,
    /// The timestamp of that record (-1 for earliest/latest).
    pub timestamp: i64,
}

/// The result of one item of a batched request (topic creation, deletion, ...).
pub type ItemResult = (String, Result<(), ClientError>);

impl Cluster {
    /// Every topic with its partitions (internal topics included).
    pub async fn list_topics(&self) -> Result<Vec<super::TopicMetadata>, ClientError> {
        Ok(self.metadata(None).await?.topics)
    }

    /// The named topics; a missing one comes back with UNKNOWN_TOPIC_OR_PARTITION in its
    /// `error_code` (see [`super::TopicMetadata::error`]).
    pub async fn describe_topics(
        &self,
        names: &[String],
    ) -> Result<Vec<super::TopicMetadata>, ClientError> {
        Ok(self.metadata(Some(names)).await?.topics)
    }

    /// Creates topics; one result per topic, in request order.
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<Vec<ItemResult>, ClientError> {
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(topic_name(&t.name))
                            .with_num_partitions(t.partitions.unwrap_or(-1))
                            .with_replication_factor(t.replication_factor.unwrap_or(-1))
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(sb(k))
                                            .with_value(Some(sb(v)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let resp = self.send_to_controller(req).await?;
        Ok(topics
            .iter()
            .map(|t| {
                let r = match resp.topics.iter().find(|r| *r.name.0 == *t.name) {
                    Some(r) => ClientError::check(r.error_code, r.error_message.as_deref()),
                    None => Err(missing("CreateTopics", &t.name)),
                };
                (t.name.clone(), r)
            })
            .collect())
    }

    /// Deletes topics by name; one result per topic, in request order.
    pub async fn delete_topics(&self, names: &[String]) -> Result<Vec<ItemResult>, ClientError> {
        let timeout = self.timeout_ms();
        let mut conn = match self.known_controller() {
            Some(id) => self.connection(id).await?,
            None => self.any_connection().await?,
        };
        let version = conn.version_for::<DeleteTopicsRequest>()?;
        let mut req = DeleteTopicsRequest::default().with_timeout_ms(timeout);
        if version >= 6 {
            req.topics = names
                .iter()
                .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
                .collect();
        } else {
            req.topic_names = names.iter().map(|n| topic_name(n)).collect();
        }
        let resp = conn.send_version(req, version).await?;
        Ok(names
            .iter()
            .map(|n| {
                let r = match resp
                    .responses
                    .iter()
                    .find(|r| r.name.as_ref().is_some_and(|x| *x.0 == **n))
                {
                    Some(r) => ClientError::check(r.error_code, r.error_message.as_deref()),
                    None => Err(missing("DeleteTopics", n)),
                };
                (n.clone(), r)
            })
            .collect())
    }

    /// Raises `topic`'s partition count to `total`, with the broker placing the new
    /// replicas. With `validate_only` the broker only checks that it could.
    pub async fn create_partitions(
        &self,
        topic: &str,
        total: i32,
        validate_only: bool,
    ) -> Result<(), ClientError> {
        let req = CreatePartitionsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_validate_only(validate_only)
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name(topic))
                .with_count(total)
                // Null, not the crate's default empty list: "no manual assignment".
                .with_assignments(None)]);
        let resp = self.send_to_controller(req).await?;
        let r = resp
            .results
            .iter()
            .find(|r| *r.name.0 == *topic)
            .ok_or_else(|| missing("CreatePartitions", topic))?;
        ClientError::check(r.error_code, r.error_message.as_deref())
    }

    /// Every config of `topic` with its value and source.
    pub async fn describe_topic_configs(
        &self,
        topic: &str,
    ) -> Result<Vec<ConfigEntry>, ClientError> {
        let mut all = self.describe_topics_configs(&[topic.to_string()]).await?;
        match all.pop() {
            Some((_, r)) => r,
            None => Err(missing("DescribeConfigs", topic)),
        }
    }

    /// The configs of several topics in one request; one result per topic, in request
    /// order (UNKNOWN_TOPIC_OR_PARTITION for a missing one).
    pub async fn describe_topics_configs(
        &self,
        topics: &[String],
    ) -> Result<Vec<(String, Result<Vec<ConfigEntry>, ClientError>)>, ClientError> {
        let req = DescribeConfigsRequest::default().with_resources(
            topics
                .iter()
                .map(|t| {
                    DescribeConfigsResource::default()
                        .with_resource_type(RESOURCE_TOPIC)
                        .with_resource_name(sb(t))
                        .with_configuration_keys(None)
                })
                .collect(),
        );
        let mut resp = self.send_to_any(req).await?;
        Ok(topics
            .iter()
            .map(|topic| {
                let pos = resp
                    .results
                    .iter()
                    .position(|r| r.resource_type == RESOURCE_TOPIC && *r.resource_name == **topic);
                let r = match pos.map(|i| resp.results.swap_remove(i)) {
                    None => Err(missing("DescribeConfigs", topic)),
                    Some(r) => {
                        ClientError::check(r.error_code, r.error_message.as_deref()).map(|()| {
                            let mut entries: Vec<ConfigEntry> = r
                                .configs
                                .into_iter()
                                .map(ConfigEntry::from_described)
                                .collect();
                            entries.sort_by(|a, b| a.name.cmp(&b.name));
                            entries
                        })
                    }
                };
                (topic.clone(), r)
            })
            .collect())
    }

    /// Applies `ops` to `topic`'s configs atomically (IncrementalAlterConfigs). With
    /// `validate_only` the broker only checks them.
    pub async fn alter_topic_configs(
        &self,
        topic: &str,
        ops: &[ConfigOp],
        validate_only: bool,
    ) -> Result<(), ClientError> {
        let configs = ConfigOp::alterable(ops);
        let req = IncrementalAlterConfigsRequest::default()
            .with_validate_only(validate_only)
            .with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(sb(topic))
                .with_configs(configs)]);
        let resp = self.send_to_any(req).await?;
        let r = resp
            .responses
            .iter()
            .find(|r| *r.resource_name == *topic)
            .ok_or_else(|| missing("IncrementalAlterConfigs", topic))?;
        ClientError::check(r.error_code, r.error_message.as_deref())
    }

    /// ListOffsets for each partition, asking each partition's leader. Leader changes
    /// (NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, ...) are retried with fresh metadata
    /// until the request timeout; any other partition error fails the call.
    pub async fn list_offsets(
        &self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, ListedOffset>, ClientError> {
        self.list_offsets_isolated(partitions, spec, false).await
    }

    /// [`Cluster::list_offsets`] with an isolation level: `read_committed` makes Latest the
    /// last stable offset (the end a read_committed consumer sees: no further than the first
    /// open transaction) and keeps timestamp lookups below it (KIP-98).
    pub async fn list_offsets_isolated(
        &self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
        read_committed: bool,
    ) -> Result<BTreeMap<TopicPartition, ListedOffset>, ClientError> {
        let deadline = Instant::now() + self.config().request_timeout;
        let mut out = BTreeMap::new();
        let mut todo: Vec<TopicPartition> = partitions.to_vec();
        todo.sort();
        todo.dedup();
        while !todo.is_empty() {
            let mut topics: Vec<String> = todo.iter().map(|tp| tp.topic.clone()).collect();
            topics.dedup();
            let md = self.metadata(Some(&topics)).await?;
            let mut by_leader: BTreeMap<i32, Vec<&TopicPartition>> = BTreeMap::new();
            let mut retry = Vec::new();
            let mut last_err = None;
            for tp in &todo {
                let t = md
                    .topic(&tp.topic)
                    .ok_or_else(|| missing("Metadata", &tp.topic))?;
                t.error()?;
                let p = t
                    .partitions
                    .iter()
                    .find(|p| p.partition == tp.partition)
                    .ok_or_else(|| {
                        ClientError::kafka(
                            kafka_protocol::error::ResponseError::UnknownTopicOrPartition,
                            format!("partition {tp} does not exist"),
                        )
                    })?;
                if p.leader < 0 {
                    retry.push(tp.clone());
                    last_err = Some(format!("{tp} has no leader"));
                } else {
                    by_leader.entry(p.leader).or_default().push(tp);
                }
            }
            for (leader, tps) in by_leader {
                let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
                for tp in &tps {
                    topics.entry(&tp.topic).or_default().push(
                        ListOffsetsPartition::default()
                            .with_partition_index(tp.partition)
                            .with_timestamp(spec.timestamp()),
                    );
                }
                let req = ListOffsetsRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_isolation_level(i8::from(read_committed))
                    .with_topics(
                        topics
                            .into_iter()
                            .map(|(name, parts)| {
                                ListOffsetsTopic::default()
                                    .with_name(topic_name(name))
                                    .with_partitions(parts)
                            })
                            .collect(),
                    );
                let resp = match self.send_to(leader, req).await {
                    Ok(r) => r,
                    Err(e) if e.is_retriable() => {
                        last_err = Some(e.to_string());
                        retry.extend(tps.into_iter().cloned());
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                for tp in tps {
                    let p = resp
                        .topics
                        .iter()
                        .filter(|t| *t.name.0 == *tp.topic)
                        .flat_map(|t| t.partitions.iter())
                        .find(|p| p.partition_index == tp.partition)
                        .ok_or_else(|| missing("ListOffsets", &tp.to_string()))?;
                    match ClientError::check(p.error_code, Some(&format!("partition {tp}"))) {
                        Ok(()) => {
                            out.insert(
                                tp.clone(),
                                ListedOffset {
                                    offset: p.offset,
                                    timestamp: p.timestamp,
                                },
                            );
                        }
                        Err(e) if e.is_retriable() => {
                            last_err = Some(e.to_string());
                            retry.push(tp.clone());
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            if !retry.is_empty() && Instant::now() + Duration::from_millis(100) >= deadline {
                return Err(ClientError::Timeout {
                    what: format!(
                        "ListOffsets ({})",
                        last_err.unwrap_or_else(|| "leaders unavailable".into())
                    ),
                    after: self.config().request_timeout,
                });
            }
            if !retry.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            todo = retry;
        }
        Ok(out)
    }

    /// Every partition of `topic`, from fresh metadata (an error if it does not exist).
    pub async fn topic_partitions(&self, topic: &str) -> Result<Vec<TopicPartition>, ClientError> {
        let md = self.metadata(Some(&[topic.to_string()])).await?;
        let t = md.topic(topic).ok_or_else(|| missing("Metadata", topic))?;
        t.error()?;
        Ok(t.partitions
            .iter()
            .map(|p| TopicPartition::new(topic, p.partition))
            .collect())
    }

    pub(super) fn timeout_ms(&self) -> i32 {
        i32::try_from(self.config().request_timeout.as_millis()).unwrap_or(i32::MAX)
    }
}

/// A `StrBytes` from a `&str`.
pub(super) fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A `TopicName` from a `&str`.
pub(super) fn topic_name(s: &str) -> TopicName {
    TopicName(sb(s))
}

/// The error for a response that leaves out something that was asked for.
pub(super) fn missing(api: &str, what: &str) -> ClientError {
    ClientError::Protocol(format!("{api} response has no entry for '{what}'"))
}
