//! Partition reassignment as both `rill reassign` and the console's reassignment page do
//! it: plans (`plan.rs`: parse, check, generate with the broker's placement), progress
//! (`progress.rs`: each adding replica's size from DescribeLogDirs), Kafka's throttle
//! configs set and cleared, and each partition's state against its target.

pub mod plan;
pub mod progress;

use std::collections::{BTreeMap, BTreeSet};

use rill_client::{Cluster, ConfigOp, TopicPartition};

use crate::cli::{join_ids, CliError};
use plan::{Move, Plan};

/// Broker config: the leaders' replication throttle, bytes/s.
pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
/// Broker config: the followers' replication throttle, bytes/s.
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
/// Topic config: the replicas throttled as leaders.
pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
/// Topic config: the replicas throttled as followers.
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

/// The plan's topics, sorted.
pub fn topics_of(plan: &[Move]) -> Vec<String> {
    let set: BTreeSet<&str> = plan.iter().map(|m| m.tp.topic.as_str()).collect();
    set.into_iter().map(str::to_string).collect()
}

/// Kafka's throttle setup: the rates on every broker involved, the partitions' existing
/// replicas leader-throttled and the moving ones follower-throttled.
pub async fn set_throttles(
    cluster: &Cluster,
    plan: &Plan,
    current: &[Move],
    rate: u64,
) -> Result<(), CliError> {
    let mut leaders: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut followers: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut brokers = BTreeSet::new();
    for m in plan {
        let cur = current
            .iter()
            .find(|c| c.tp == m.tp)
            .map(|c| c.replicas.clone())
            .unwrap_or_default();
        for b in &cur {
            leaders
                .entry(&m.tp.topic)
                .or_default()
                .insert(format!("{}:{b}", m.tp.partition));
        }
        for b in m.replicas.iter().filter(|b| !cur.contains(b)) {
            followers
                .entry(&m.tp.topic)
                .or_default()
                .insert(format!("{}:{b}", m.tp.partition));
        }
        brokers.extend(cur.iter().chain(&m.replicas).copied());
    }
    for topic in topics_of(plan) {
        let list = |m: &BTreeMap<&str, BTreeSet<String>>| {
            m.get(topic.as_str())
                .map(|s| s.iter().cloned().collect::<Vec<_>>().join(","))
                .unwrap_or_default()
        };
        let ops = [
            ConfigOp::Set(LEADER_REPLICAS.into(), list(&leaders)),
            ConfigOp::Set(FOLLOWER_REPLICAS.into(), list(&followers)),
        ];
        cluster
            .alter_topic_configs(&topic, &ops, false)
            .await
            .map_err(|e| CliError::client(format!("cannot throttle topic '{topic}'"), e))?;
    }
    for b in brokers {
        let ops = [
            ConfigOp::Set(LEADER_RATE.into(), rate.to_string()),
            ConfigOp::Set(FOLLOWER_RATE.into(), rate.to_string()),
        ];
        cluster
            .alter_broker_configs(Some(b), &ops)
            .await
            .map_err(|e| CliError::client(format!("cannot set the throttle on broker {b}"), e))?;
    }
    Ok(())
}

/// Removes the throttled-replica lists from the plan's topics and the rates from every broker.
pub async fn clear_throttles(cluster: &Cluster, plan: &Plan) -> Result<Vec<i32>, CliError> {
    for topic in topics_of(plan) {
        let ops = [
            ConfigOp::Delete(LEADER_REPLICAS.into()),
            ConfigOp::Delete(FOLLOWER_REPLICAS.into()),
        ];
        cluster
            .alter_topic_configs(&topic, &ops, false)
            .await
            .map_err(|e| CliError::client(format!("cannot clear the throttle of '{topic}'"), e))?;
    }
    let ids: Vec<i32> = cluster.brokers().into_iter().map(|b| b.node_id).collect();
    for b in &ids {
        let ops = [
            ConfigOp::Delete(LEADER_RATE.into()),
            ConfigOp::Delete(FOLLOWER_RATE.into()),
        ];
        cluster
            .alter_broker_configs(Some(*b), &ops)
            .await
            .map_err(|e| CliError::client(format!("cannot clear the throttle on broker {b}"), e))?;
    }
    Ok(ids)
}

/// Per partition: "complete", "in progress", or the replicas it has instead of the target.
pub async fn states(cluster: &Cluster, plan: &Plan) -> Result<Vec<(Move, String)>, CliError> {
    let tps: Vec<TopicPartition> = plan.iter().map(|m| m.tp.clone()).collect();
    let ongoing = cluster.list_partition_reassignments(Some(&tps)).await?;
    let md = cluster.metadata(Some(&topics_of(plan))).await?;
    Ok(plan
        .iter()
        .map(|m| {
            let state = if ongoing.iter().any(|o| o.partition == m.tp) {
                "in progress".to_string()
            } else {
                match plan::current(&md.topics, &m.tp) {
                    Some(r) if r == m.replicas => "complete".to_string(),
                    Some(r) => format!("replicas are [{}] rather than the target", join_ids(&r)),
                    None => "missing".to_string(),
                }
            };
            (m.clone(), state)
        })
        .collect())
}
