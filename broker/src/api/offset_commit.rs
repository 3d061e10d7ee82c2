//! OffsetCommit: generation- and member-checked commits, or simple commits (generation -1)
//! from assign-only consumers and admin tools while the group has no members.

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use kafka_protocol::error::ResponseError;

use crate::context::Broker;
use crate::group::OffsetToCommit;
use crate::metadata::acl::AclOperation;

/// Handles OffsetCommit.
pub async fn handle(
    b: &Broker,
    req: OffsetCommitRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> OffsetCommitResponse {
    // READ on the group for the whole request, then READ on each topic (Kafka's order).
    let group_ok = ctx.authz.group(AclOperation::Read, req.group_id.0.as_str());
    let topic_ok: Vec<bool> = req
        .topics
        .iter()
        .map(|t| group_ok && ctx.authz.topic(AclOperation::Read, t.name.0.as_str()))
        .collect();
    let offsets: Vec<OffsetToCommit> = req
        .topics
        .iter()
        .zip(&topic_ok)
        .filter(|(_, ok)| **ok)
        .flat_map(|(t, _)| {
            t.partitions.iter().map(move |p| OffsetToCommit {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let result = if offsets.is_empty() && !group_ok {
        Ok((Vec::new(), None))
    } else if version < 9
        && b.groups
            .uses_consumer_protocol(req.group_id.0.as_str(), req.member_id.as_str())
    {
        // A member of the KIP-848 protocol commits with its member epoch, which only v9+
        // carries (Kafka's UNSUPPORTED_VERSION).
        Err(kafka_protocol::error::ResponseError::UnsupportedVersion)
    } else {
        b.groups.commit(
            req.group_id.0.as_str(),
            req.member_id.as_str(),
            req.group_instance_id.as_ref().map(|s| s.as_str()),
            req.generation_id_or_member_epoch,
            &offsets,
        )
    };
    let codes: Vec<i16> = match result {
        Ok((codes, None)) => codes,
        // Answered only once the ISR has the commit (Kafka writes offsets with acks=all).
        Ok((codes, Some(pending))) => match pending
            .replicated(std::time::Duration::from_millis(
                b.groups.config.commit_timeout_ms,
            ))
            .await
        {
            Ok(()) => codes,
            Err(e) => codes
                .into_iter()
                .map(|c| if c == 0 { e.code() } else { c })
                .collect(),
        },
        Err(e) => vec![e.code(); offsets.len()],
    };
    let mut codes = codes.into_iter();
    let topics = req
        .topics
        .into_iter()
        .zip(topic_ok)
        .map(|(t, ok)| {
            let refused = if group_ok {
                ResponseError::TopicAuthorizationFailed.code()
            } else {
                ResponseError::GroupAuthorizationFailed.code()
            };
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(if ok {
                            codes.next().unwrap_or(0)
                        } else {
                            refused
                        })
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(parts)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
