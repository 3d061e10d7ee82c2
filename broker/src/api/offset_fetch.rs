//! OffsetFetch: committed offsets of one group (v0-7) or several (v8+); -1 where nothing is
//! committed. Offsets of open transactions are never returned; with `require_stable` (v7+) a
//! partition that has one answers UNSTABLE_OFFSET_COMMIT and the client retries (Kafka's
//! `getOffsets`).

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopics;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};

use super::sb;
use crate::context::Broker;
use crate::metadata::acl::AclOperation;

type Fetched =
    Result<crate::group::coordinator::TopicOffsets, kafka_protocol::error::ResponseError>;

/// DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED otherwise), then only the topics the
/// principal may describe (Kafka leaves the others out).
fn fetch(
    b: &Broker,
    ctx: &super::Ctx<'_>,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Fetched {
    if !ctx.authz.group(AclOperation::Describe, group) {
        return Err(kafka_protocol::error::ResponseError::GroupAuthorizationFailed);
    }
    let mut offsets = b
        .groups
        .fetch_offsets(group, topics.as_deref(), require_stable)?;
    offsets.retain(|(t, _)| ctx.authz.topic(AclOperation::Describe, t));
    Ok(offsets)
}

/// Handles OffsetFetch.
pub async fn handle(
    b: &Broker,
    req: OffsetFetchRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = req
            .groups
            .iter()
            .map(|g| {
                let wanted = g.topics.as_ref().map(|ts: &Vec<OffsetFetchRequestTopics>| {
                    ts.iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                        .collect()
                });
                let out = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                // v9: a consumer-group member names itself and its epoch (KIP-848).
                let member = g.member_id.as_ref().map(|m| m.as_str()).unwrap_or("");
                let fetched = b
                    .groups
                    .validate_fetch_member(g.group_id.0.as_str(), member, g.member_epoch)
                    .and_then(|()| {
                        fetch(b, ctx, g.group_id.0.as_str(), wanted, req.require_stable)
                    });
                match fetched {
                    Ok(topics) => out.with_topics(
                        topics
                            .into_iter()
                            .map(|(t, ps)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(TopicName(sb(t)))
                                    .with_partitions(
                                        ps.into_iter()
                                            .map(|(p, c)| {
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(p)
                                                    .with_committed_offset(c.offset)
                                                    .with_committed_leader_epoch(c.leader_epoch)
                                                    .with_metadata(Some(sb(c.metadata)))
                                                    .with_error_code(c.error)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ),
                    Err(e) => out.with_error_code(e.code()),
                }
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    // The field exists from v7; older requests decode it as false.
    match fetch(b, ctx, req.group_id.0.as_str(), wanted, req.require_stable) {
        Ok(topics) => OffsetFetchResponse::default().with_topics(
            topics
                .into_iter()
                .map(|(t, ps)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(sb(t)))
                        .with_partitions(
                            ps.into_iter()
                                .map(|(p, c)| {
                                    let r = OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(c.offset)
                                        .with_metadata(Some(sb(c.metadata)))
                                        .with_error_code(c.error);
                                    if version >= 5 {
                                        r.with_committed_leader_epoch(c.leader_epoch)
                                    } else {
                                        r
                                    }
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
        Err(e) if version >= 2 => OffsetFetchResponse::default().with_error_code(e.code()),
        Err(e) => {
            // v0-1 carry errors per partition only.
            let topics = req
                .topics
                .unwrap_or_default()
                .into_iter()
                .map(|t| {
                    OffsetFetchResponseTopic::default()
                        .with_name(t.name)
                        .with_partitions(
                            t.partition_indexes
                                .iter()
                                .map(|p| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(*p)
                                        .with_committed_offset(-1)
                                        .with_error_code(e.code())
                                })
                                .collect(),
                        )
                })
                .collect();
            OffsetFetchResponse::default().with_topics(topics)
        }
    }
}
