//! CreateTopics: validate_only, per-topic configs, explicit assignments, clear error messages.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::sb;
use crate::config::defs;
use crate::context::Broker;
use crate::controller::TopicCreation;
use crate::error::KafkaError;
use crate::types::BrokerId;

/// Handles CreateTopics.
pub async fn handle(
    b: &Broker,
    req: CreateTopicsRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> CreateTopicsResponse {
    // CREATE on the cluster covers every topic; otherwise CREATE on each topic.
    let create_any = ctx
        .authz
        .cluster(crate::metadata::acl::AclOperation::Create);
    // A name given twice creates neither copy and is answered once (as Kafka does).
    let mut counts = std::collections::HashMap::new();
    for t in &req.topics {
        *counts.entry(t.name.0.to_string()).or_insert(0) += 1;
    }
    let mut answered = std::collections::HashSet::new();
    // KIP-599: strict from v6.
    let mut mutations = super::throttle::Mutations::new(b, ctx, version >= 6);
    let mut topics = Vec::new();
    for t in req.topics {
        let name = t.name.0.to_string();
        if counts.get(&name).copied().unwrap_or(0) > 1 {
            if answered.insert(name.clone()) {
                let e = KafkaError::InvalidRequest(format!(
                    "Duplicate topic name: '{name}' appears more than once in the request."
                ));
                topics.push(
                    CreatableTopicResult::default()
                        .with_name(t.name.clone())
                        .with_error_code(e.code())
                        .with_error_message(e.message().filter(|_| version >= 1)),
                );
            }
            continue;
        }
        if !create_any
            && !ctx
                .authz
                .topic(crate::metadata::acl::AclOperation::Create, &name)
        {
            let e = KafkaError::TopicAuthorizationFailed(format!(
                "{} may not create topic {name}",
                ctx.principal
            ));
            topics.push(
                CreatableTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(e.code())
                    .with_error_message(e.message().filter(|_| version >= 1)),
            );
            continue;
        }
        topics.push(async {
            let out = CreatableTopicResult::default().with_name(t.name.clone());
            let mut configs = BTreeMap::new();
            for c in &t.configs {
                match &c.value {
                    Some(v) => {
                        configs.insert(c.name.to_string(), v.to_string());
                    }
                    None => {
                        let e = KafkaError::InvalidConfig(format!("Null value not supported for topic config {}", c.name));
                        return out.with_error_code(e.code()).with_error_message(e.message().filter(|_| version >= 1));
                    }
                }
            }
            let assignment = if t.assignments.is_empty() {
                None
            } else {
                if t.num_partitions != -1 || t.replication_factor != -1 {
                    let e = KafkaError::InvalidRequest("Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into());
                    return out.with_error_code(e.code()).with_error_message(e.message().filter(|_| version >= 1));
                }
                let mut a: Vec<_> = t.assignments.iter().map(|a| (a.partition_index, a.broker_ids.iter().map(|x| BrokerId(x.0)).collect::<Vec<_>>())).collect();
                a.sort_by_key(|(i, _)| *i);
                if a.iter().enumerate().any(|(i, (p, _))| *p != i as i32) {
                    let e = KafkaError::InvalidReplicaAssignment("Partitions in the assignment must be numbered consecutively from 0.".into());
                    return out.with_error_code(e.code()).with_error_message(e.message().filter(|_| version >= 1));
                }
                Some(a.into_iter().map(|(_, r)| r).collect::<Vec<_>>())
            };
            let partitions = match (&assignment, t.num_partitions) {
                (Some(a), _) => a.len() as i32,
                (None, -1) => b.config.num_partitions,
                (None, n) => n,
            };
            let rf = match (&assignment, t.replication_factor) {
                (Some(a), _) => a.first().map(|r| r.len() as i16).unwrap_or(0),
                (None, -1) => b.config.default_replication_factor,
                (None, n) => n,
            };
            let new = TopicCreation { name: name.clone(), partitions, replication_factor: rf, assignment, configs };
            if let Err(e) = mutations.admit() {
                return out.with_error_code(e.code()).with_error_message(e.message().filter(|_| version >= 1));
            }
            match b.controller.create_topic(new, req.validate_only).await {
                Ok(topic) => {
                    // Kafka counts a validate_only creation too.
                    mutations.record(u32::try_from(partitions).unwrap_or(0));
                    if !req.validate_only {
                        tracing::info!(topic = %name, partitions, replication_factor = rf, "created topic");
                    }
                    let out = if version >= 7 { out.with_topic_id(topic.id) } else { out };
                    if version >= 5 {
                        let out = out.with_num_partitions(partitions).with_replication_factor(rf);
                        let resolved = defs::resolve_all(&topic.configs, &b.config.raw);
                        out.with_configs(Some(
                            resolved
                                .into_iter()
                                .map(|r| CreatableTopicConfigs::default().with_name(sb(r.def.name)).with_value(Some(sb(r.value))).with_config_source(r.source as i8))
                                .collect(),
                        ))
                    } else {
                        out
                    }
                }
                Err(e) => out.with_error_code(e.code()).with_error_message(e.message().filter(|_| version >= 1)),
            }
        }
        .await);
    }
    CreateTopicsResponse::default()
        .with_topics(topics)
        .with_throttle_time_ms(mutations.throttle_ms())
}
