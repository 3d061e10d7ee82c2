//! OffsetDelete: drop a group's committed offsets for partitions it no longer consumes.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use crate::context::Broker;

/// Handles OffsetDelete.
pub async fn handle(
    b: &Broker,
    req: OffsetDeleteRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> OffsetDeleteResponse {
    // DELETE on the group, READ on each topic (Kafka's rules; a refused topic refuses the
    // request here rather than being left half-deleted).
    if !ctx.authz.group(
        crate::metadata::acl::AclOperation::Delete,
        req.group_id.0.as_str(),
    ) {
        return OffsetDeleteResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code(),
        );
    }
    if req.topics.iter().any(|t| {
        !ctx.authz
            .topic(crate::metadata::acl::AclOperation::Read, t.name.0.as_str())
    }) {
        return OffsetDeleteResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::TopicAuthorizationFailed.code(),
        );
    }
    let partitions: Vec<crate::types::TopicPartition> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                crate::types::TopicPartition::new(t.name.0.as_str(), p.partition_index)
            })
        })
        .collect();
    match b
        .groups
        .delete_offsets(req.group_id.0.as_str(), &partitions)
    {
        Err(e) => OffsetDeleteResponse::default().with_error_code(e.code()),
        Ok(codes) => {
            let mut codes = codes.into_iter();
            let topics = req
                .topics
                .into_iter()
                .map(|t| {
                    let parts = t
                        .partitions
                        .iter()
                        .map(|p| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(codes.next().unwrap_or(0))
                        })
                        .collect();
                    OffsetDeleteResponseTopic::default()
                        .with_name(t.name)
                        .with_partitions(parts)
                })
                .collect();
            OffsetDeleteResponse::default().with_topics(topics)
        }
    }
}
