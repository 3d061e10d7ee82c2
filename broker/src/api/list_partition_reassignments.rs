//! ListPartitionReassignments (KIP-455): the reassignments in progress, as the metadata image
//! holds them (replicas = target then removing; adding and removing replicas). Null topics
//! list every one; named topics list only their named partitions that are reassigning.

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId as WireBrokerId, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, TopicName,
};

use super::sb;
use crate::context::Broker;
use crate::metadata::MetadataImage;
use crate::types::BrokerId;

/// Handles ListPartitionReassignments.
pub async fn handle(
    b: &Broker,
    req: ListPartitionReassignmentsRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> ListPartitionReassignmentsResponse {
    if !ctx
        .authz
        .cluster(crate::metadata::acl::AclOperation::Describe)
    {
        return ListPartitionReassignmentsResponse::default()
            .with_error_code(
                kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code(),
            )
            .with_error_message(Some(super::sb("needs DESCRIBE on the cluster")));
    }
    let image = b.controller.image();
    let wanted: Vec<(String, Option<Vec<i32>>)> = match req.topics {
        None => image
            .reassignments
            .keys()
            .map(|t| (t.clone(), None))
            .collect(),
        Some(ts) => ts
            .into_iter()
            .map(|t| (t.name.0.to_string(), Some(t.partition_indexes)))
            .collect(),
    };
    let topics = wanted
        .into_iter()
        .filter_map(|(name, parts)| ongoing(&image, &name, parts.as_deref()))
        .collect();
    ListPartitionReassignmentsResponse::default()
        .with_error_message(None)
        .with_topics(topics)
}

fn ongoing(
    image: &MetadataImage,
    topic: &str,
    partitions: Option<&[i32]>,
) -> Option<OngoingTopicReassignment> {
    let all = image.reassignments.get(topic)?;
    let wire = |v: &[BrokerId]| v.iter().map(|b| WireBrokerId(b.0)).collect::<Vec<_>>();
    let parts: Vec<OngoingPartitionReassignment> = all
        .iter()
        .filter(|(p, _)| partitions.is_none_or(|w| w.contains(p)))
        .filter_map(|(p, r)| {
            let meta = image.partition(topic, *p)?;
            Some(
                OngoingPartitionReassignment::default()
                    .with_partition_index(*p)
                    .with_replicas(wire(&meta.replicas))
                    .with_adding_replicas(wire(&r.adding))
                    .with_removing_replicas(wire(&r.removing)),
            )
        })
        .collect();
    (!parts.is_empty()).then(|| {
        OngoingTopicReassignment::default()
            .with_name(TopicName(sb(topic)))
            .with_partitions(parts)
    })
}
