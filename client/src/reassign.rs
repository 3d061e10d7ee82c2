//! Partition reassignment (KIP-455) and the calls around it, as methods on [`Cluster`]:
//! AlterPartitionReassignments (start or cancel), ListPartitionReassignments, dynamic broker
//! configs (the replication throttle rates live there) and the replica sizes per broker
//! (DescribeLogDirs), which is how copy progress is measured from the outside.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, DescribeConfigsRequest, DescribeLogDirsRequest,
    IncrementalAlterConfigsRequest, ListPartitionReassignmentsRequest,
};

use super::admin::{missing, sb, topic_name};
use super::{ClientError, Cluster, ConfigEntry, ConfigOp, TopicPartition};

use super::resource::RESOURCE_BROKER;

/// One reassignment in progress, as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    /// The partition.
    pub partition: TopicPartition,
    /// The current replica set: the target followed by the replicas being removed.
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding: Vec<i32>,
    /// Replicas being removed.
    pub removing: Vec<i32>,
}

impl OngoingReassignment {
    /// The target replica set.
    pub fn target(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .filter(|r| !self.removing.contains(r))
            .copied()
            .collect()
    }
}

/// The result of one partition of a batched reassignment request.
pub type PartitionResult = (TopicPartition, Result<(), ClientError>);

impl Cluster {
    /// Starts (`Some(replicas)`) or cancels (`None`) the reassignment of each partition; one
    /// result per partition, in request order.
    pub async fn alter_partition_reassignments(
        &self,
        changes: &[(TopicPartition, Option<Vec<i32>>)],
    ) -> Result<Vec<PartitionResult>, ClientError> {
        let mut topics: BTreeMap<&str, Vec<ReassignablePartition>> = BTreeMap::new();
        for (tp, replicas) in changes {
            topics.entry(&tp.topic).or_default().push(
                ReassignablePartition::default()
                    .with_partition_index(tp.partition)
                    .with_replicas(
                        replicas
                            .as_ref()
                            .map(|r| r.iter().map(|id| BrokerId(*id)).collect()),
                    ),
            );
        }
        let req = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_allow_replication_factor_change(true)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(name, partitions)| {
                        ReassignableTopic::default()
                            .with_name(topic_name(name))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let resp = self.send_to_controller(req).await?;
        ClientError::check(resp.error_code, resp.error_message.as_deref())?;
        Ok(changes
            .iter()
            .map(|(tp, _)| {
                let r = resp
                    .responses
                    .iter()
                    .filter(|t| *t.name.0 == *tp.topic)
                    .flat_map(|t| t.partitions.iter())
                    .find(|p| p.partition_index == tp.partition);
                let r = match r {
                    Some(p) => ClientError::check(p.error_code, p.error_message.as_deref()),
                    None => Err(missing("AlterPartitionReassignments", &tp.to_string())),
                };
                (tp.clone(), r)
            })
            .collect())
    }

    /// The reassignments in progress: all of them (`None`), or those of these partitions.
    pub async fn list_partition_reassignments(
        &self,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<OngoingReassignment>, ClientError> {
        let topics = partitions.map(|ps| {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for tp in ps {
                by_topic.entry(&tp.topic).or_default().push(tp.partition);
            }
            by_topic
                .into_iter()
                .map(|(t, p)| {
                    ListPartitionReassignmentsTopics::default()
                        .with_name(topic_name(t))
                        .with_partition_indexes(p)
                })
                .collect()
        });
        let req = ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(topics);
        let resp = self.send_to_controller(req).await?;
        ClientError::check(resp.error_code, resp.error_message.as_deref())?;
        let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
        let mut out: Vec<OngoingReassignment> = resp
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| OngoingReassignment {
                    partition: TopicPartition::new(t.name.0.to_string(), p.partition_index),
                    replicas: ids(&p.replicas),
                    adding: ids(&p.adding_replicas),
                    removing: ids(&p.removing_replicas),
                })
            })
            .collect();
        out.sort_by(|a, b| a.partition.cmp(&b.partition));
        Ok(out)
    }

    /// Applies `ops` to the dynamic configs of broker `broker`, or of every broker (`None`,
    /// the cluster-wide default), like `kafka-configs.sh --entity-type brokers`.
    pub async fn alter_broker_configs(
        &self,
        broker: Option<i32>,
        ops: &[ConfigOp],
    ) -> Result<(), ClientError> {
        let name = broker.map(|b| b.to_string()).unwrap_or_default();
        let configs = ConfigOp::alterable(ops);
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(RESOURCE_BROKER)
                .with_resource_name(sb(&name))
                .with_configs(configs),
        ]);
        let resp = self.send_to_controller(req).await?;
        let r = resp
            .responses
            .iter()
            .find(|r| *r.resource_name == *name)
            .ok_or_else(|| missing("IncrementalAlterConfigs", &format!("broker '{name}'")))?;
        ClientError::check(r.error_code, r.error_message.as_deref())
    }

    /// The configs broker `broker` reports for itself (static and dynamic).
    pub async fn describe_broker_configs(
        &self,
        broker: i32,
    ) -> Result<Vec<ConfigEntry>, ClientError> {
        let name = broker.to_string();
        let req = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_BROKER)
                .with_resource_name(sb(&name))
                .with_configuration_keys(None),
        ]);
        let resp = self.send_to(broker, req).await?;
        let r = resp
            .results
            .into_iter()
            .find(|r| r.resource_type == RESOURCE_BROKER && *r.resource_name == *name)
            .ok_or_else(|| missing("DescribeConfigs", &format!("broker {name}")))?;
        ClientError::check(r.error_code, r.error_message.as_deref())?;
        Ok(r.configs
            .into_iter()
            .map(ConfigEntry::from_described)
            .collect())
    }

    /// The size in bytes of every partition replica broker `broker` hosts (DescribeLogDirs),
    /// summed over its log dirs.
    pub async fn replica_sizes(
        &self,
        broker: i32,
    ) -> Result<BTreeMap<TopicPartition, i64>, ClientError> {
        let req = DescribeLogDirsRequest::default().with_topics(None);
        let resp = self.send_to(broker, req).await?;
        ClientError::check(resp.error_code, None)?;
        let mut out = BTreeMap::new();
        for dir in resp.results.iter().filter(|d| d.error_code == 0) {
            for t in &dir.topics {
                for p in &t.partitions {
                    *out.entry(TopicPartition::new(t.name.0.to_string(), p.partition_index))
                        .or_insert(0) += p.partition_size;
                }
            }
        }
        Ok(out)
    }
}
