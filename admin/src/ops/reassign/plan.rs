//! Reassignment plans in kafka-reassign-partitions.sh's JSON format
//! (`{"version":1,"partitions":[{"topic":..,"partition":..,"replicas":[..]}]}`): parsing with
//! clear refusals, checks against the cluster, and `--generate`'s balanced proposal.

use std::collections::{BTreeMap, BTreeSet};

use rill_broker::controller::placement;
use rill_broker::metadata::BrokerInfo;
use rill_broker::types::BrokerId;
use rill_client::{BrokerNode, TopicMetadata, TopicPartition};
use serde_json::{json, Value};

use crate::cli::CliError;

/// One partition's target replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// The partition.
    pub tp: TopicPartition,
    /// Its target replicas, preferred leader first.
    pub replicas: Vec<i32>,
}

/// A plan: partitions and their target replicas, in file order.
pub type Plan = Vec<Move>;

/// Parses a plan file's text. Anything malformed (not JSON, wrong shape, a version other than
/// 1, an empty list, an empty or duplicated replica list, a partition listed twice) is a usage
/// error naming what is wrong.
pub fn parse(text: &str, source: &str) -> Result<Plan, CliError> {
    let bad = |m: String| CliError::Usage(format!("{source}: {m}"));
    let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    match v.get("version").and_then(Value::as_i64) {
        Some(1) => {}
        Some(other) => return Err(bad(format!("unsupported version {other} (expected 1)"))),
        None => return Err(bad("missing \"version\": 1".into())),
    }
    let parts = v
        .get("partitions")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("missing the \"partitions\" array".into()))?;
    if parts.is_empty() {
        return Err(bad("Partition reassignment list cannot be empty".into()));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        let topic = p
            .get("topic")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad(format!("partitions[{i}] has no \"topic\" string")))?;
        let partition = p
            .get("partition")
            .and_then(Value::as_i64)
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad(format!("partitions[{i}] has no valid \"partition\" number")))?;
        let replicas: Vec<i32> = p
            .get("replicas")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(format!("partitions[{i}] has no \"replicas\" array")))?
            .iter()
            .map(|r| {
                r.as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .filter(|n| *n >= 0)
            })
            .collect::<Option<Vec<i32>>>()
            .ok_or_else(|| bad(format!("partitions[{i}]: replicas must be broker ids")))?;
        let tp = TopicPartition::new(topic, partition);
        if replicas.is_empty() {
            return Err(bad(format!("Partition {tp} has an empty replica list")));
        }
        let distinct: BTreeSet<i32> = replicas.iter().copied().collect();
        if distinct.len() != replicas.len() {
            return Err(bad(format!(
                "Duplicate replica assignment found: {tp} -> {replicas:?}"
            )));
        }
        if !seen.insert(tp.clone()) {
            return Err(bad(format!("Partition {tp} is listed more than once")));
        }
        out.push(Move { tp, replicas });
    }
    Ok(out)
}

/// Checks a plan against the cluster: every partition exists, every broker is registered, no
/// replica list is longer than the cluster has brokers. Failures exit 1.
pub fn check(
    plan: &Plan,
    topics: &[TopicMetadata],
    brokers: &[BrokerNode],
) -> Result<(), CliError> {
    let ids: BTreeSet<i32> = brokers.iter().map(|b| b.node_id).collect();
    let missing: Vec<String> = plan
        .iter()
        .filter(|m| current(topics, &m.tp).is_none())
        .map(|m| m.tp.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(CliError::Failed(format!(
            "The proposed assignment contains non-existent partitions: {}",
            missing.join(", ")
        )));
    }
    for m in plan {
        if m.replicas.len() > ids.len() {
            return Err(CliError::Failed(format!(
                "Partition {}: replication factor {} is larger than the {} available brokers",
                m.tp,
                m.replicas.len(),
                ids.len()
            )));
        }
        if let Some(b) = m.replicas.iter().find(|b| !ids.contains(b)) {
            return Err(CliError::Failed(format!(
                "Partition {}: broker {b} is not in the cluster (brokers: {})",
                m.tp,
                crate::cli::join_ids(&ids.iter().copied().collect::<Vec<_>>())
            )));
        }
    }
    Ok(())
}

/// A partition's current replicas from metadata.
pub fn current(topics: &[TopicMetadata], tp: &TopicPartition) -> Option<Vec<i32>> {
    topics
        .iter()
        .find(|t| t.name == tp.topic && t.error_code == 0)?
        .partitions
        .iter()
        .find(|p| p.partition == tp.partition)
        .map(|p| p.replicas.clone())
}

/// The plan's JSON in Kafka's format.
pub fn to_json(plan: &[Move]) -> Value {
    json!({
        "version": 1,
        "partitions": plan.iter().map(|m| json!({
            "topic": m.tp.topic,
            "partition": m.tp.partition,
            "replicas": m.replicas,
            "log_dirs": m.replicas.iter().map(|_| "any").collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The current assignment of the given topics, as a plan.
pub fn current_plan(topics: &[TopicMetadata]) -> Plan {
    let mut out = Vec::new();
    for t in topics {
        let mut parts = t.partitions.clone();
        parts.sort_by_key(|p| p.partition);
        for p in parts {
            out.push(Move {
                tp: TopicPartition::new(&t.name, p.partition),
                replicas: p.replicas.clone(),
            });
        }
    }
    out
}

/// `--generate`: a balanced placement of `topics` (keeping each one's partition count and
/// replication factor) over `broker_list`, rack-aware when those brokers have racks unless
/// `rack_aware` is false (Kafka's `--disable-rack-aware`).
pub fn generate(
    topics: &[TopicMetadata],
    brokers: &[BrokerNode],
    broker_list: &[i32],
    rack_aware: bool,
) -> Result<Plan, CliError> {
    let known: BTreeMap<i32, &BrokerNode> = brokers.iter().map(|b| (b.node_id, b)).collect();
    let mut infos = Vec::new();
    for id in broker_list {
        let b = known.get(id).ok_or_else(|| {
            CliError::Failed(format!(
                "Broker {id} in --broker-list is not in the cluster (brokers: {})",
                crate::cli::join_ids(&known.keys().copied().collect::<Vec<_>>())
            ))
        })?;
        infos.push(BrokerInfo {
            endpoints: Vec::new(),
            id: BrokerId(*id),
            host: b.host.clone(),
            port: u16::try_from(b.port).unwrap_or(0),
            rack: if rack_aware { b.rack.clone() } else { None },
            // The plan is a proposal: the brokers check their limits when it is executed.
            max_partitions: None,
        });
    }
    let wanted: Vec<(String, i32, i16)> = topics
        .iter()
        .map(|t| {
            let rf = t.partitions.first().map_or(1, |p| p.replicas.len());
            (
                t.name.clone(),
                t.partitions.len() as i32,
                i16::try_from(rf).unwrap_or(i16::MAX),
            )
        })
        .collect();
    let refs: Vec<&BrokerInfo> = infos.iter().collect();
    let placed = placement::plan_assignment(&wanted, &refs)
        .map_err(|e| CliError::Failed(format!("cannot place the topics: {e}")))?;
    let mut out = Vec::new();
    for (name, _, _) in &wanted {
        for (i, replicas) in placed.get(name).into_iter().flatten().enumerate() {
            out.push(Move {
                tp: TopicPartition::new(name, i as i32),
                replicas: replicas.iter().map(|b| b.0).collect(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(r: Result<Plan, CliError>) -> String {
        match r {
            Err(CliError::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    fn broker(id: i32, rack: Option<&str>) -> BrokerNode {
        BrokerNode {
            node_id: id,
            host: "h".into(),
            port: 9092,
            rack: rack.map(str::to_string),
        }
    }

    fn topic(name: &str, partitions: i32, rf: usize) -> TopicMetadata {
        TopicMetadata {
            name: name.into(),
            topic_id: Default::default(),
            is_internal: false,
            partitions: (0..partitions)
                .map(|p| rill_client::PartitionMetadata {
                    partition: p,
                    leader: 1,
                    leader_epoch: 0,
                    replicas: (1..=rf as i32).collect(),
                    isr: (1..=rf as i32).collect(),
                    offline_replicas: vec![],
                    error_code: 0,
                })
                .collect(),
            error_code: 0,
        }
    }

    #[test]
    fn generated_plans_are_balanced_and_rack_aware() {
        let brokers = [
            broker(1, Some("a")),
            broker(2, Some("a")),
            broker(3, Some("b")),
            broker(4, Some("b")),
        ];
        let rack = |id: i32| if id <= 2 { "a" } else { "b" };
        let topics = [topic("x", 4, 2), topic("y", 4, 2)];
        let plan = generate(&topics, &brokers, &[1, 2, 3, 4], true).unwrap();
        assert_eq!(plan.len(), 8);
        let mut leaders = BTreeMap::new();
        for m in &plan {
            assert_eq!(m.replicas.len(), 2, "{m:?}");
            assert_ne!(
                rack(m.replicas[0]),
                rack(m.replicas[1]),
                "one replica per rack: {m:?}"
            );
            *leaders.entry(m.replicas[0]).or_insert(0) += 1;
        }
        assert_eq!(
            leaders.values().copied().collect::<Vec<_>>(),
            vec![2, 2, 2, 2]
        );
        assert!(matches!(
            generate(&topics, &brokers, &[1, 9], true),
            Err(CliError::Failed(m)) if m.contains("Broker 9")
        ));
        assert!(matches!(
            generate(&[topic("z", 1, 3)], &brokers, &[1, 2], true),
            Err(CliError::Failed(_))
        ));
    }

    #[test]
    fn plans_parse_and_bad_ones_are_refused() {
        let ok = parse(
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3],"log_dirs":["any","any"]}]}"#,
            "p.json",
        )
        .unwrap();
        assert_eq!(ok[0].replicas, vec![2, 3]);
        assert_eq!(ok[0].tp, TopicPartition::new("t", 0));
        let back = parse(&to_json(&ok).to_string(), "x").unwrap();
        assert_eq!(back, ok);
        assert!(usage(parse("{", "p.json")).contains("not valid JSON"));
        assert!(usage(parse(r#"{"version":2,"partitions":[]}"#, "p")).contains("version 2"));
        assert!(usage(parse(r#"{"version":1,"partitions":[]}"#, "p")).contains("empty"));
        let dup = r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,1]}]}"#;
        assert!(usage(parse(dup, "p")).contains("Duplicate replica"));
        let twice = r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}"#;
        assert!(usage(parse(twice, "p")).contains("more than once"));
        let neg = r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[-1]}]}"#;
        assert!(usage(parse(neg, "p")).contains("broker ids"));
        let empty = r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[]}]}"#;
        assert!(usage(parse(empty, "p")).contains("empty replica list"));
    }
}
