//! AlterPartitionReassignments (KIP-455): start, change or cancel (null replicas) the
//! reassignment of partitions. Each partition is checked and proposed on its own, with its
//! own error code, as Kafka's controller answers; the work itself is `controller/reassign.rs`.

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};

use crate::context::Broker;
use crate::types::BrokerId;

/// Handles AlterPartitionReassignments.
pub async fn handle(
    b: &Broker,
    req: AlterPartitionReassignmentsRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> AlterPartitionReassignmentsResponse {
    if !ctx.authz.cluster(crate::metadata::acl::AclOperation::Alter) {
        return AlterPartitionReassignmentsResponse::default()
            .with_error_code(
                kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code(),
            )
            .with_error_message(Some(super::sb("needs ALTER on the cluster")));
    }
    // v0 has no flag: replication factor changes are allowed, as before KIP-860.
    let allow_rf_change = version < 1 || req.allow_replication_factor_change;
    let mut responses = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.0.to_string();
        let unclean = b
            .replicas
            .topic_configs()
            .by_name(&b.controller.image(), &name)
            .is_some_and(|c| c.unclean_leader_election);
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let target = p
                .replicas
                .map(|r| r.into_iter().map(|id| BrokerId(id.0)).collect::<Vec<_>>());
            let cancel = target.is_none();
            let out =
                ReassignablePartitionResponse::default().with_partition_index(p.partition_index);
            let r = b
                .controller
                .alter_partition_reassignment(
                    &name,
                    p.partition_index,
                    target.clone(),
                    allow_rf_change,
                    unclean,
                )
                .await;
            partitions.push(match r {
                Ok(()) => {
                    tracing::info!(topic = %name, partition = p.partition_index, target = ?target, cancel, "partition reassignment accepted");
                    out.with_error_message(None)
                }
                Err(e) => {
                    tracing::info!(topic = %name, partition = p.partition_index, error = %e, "partition reassignment refused");
                    out.with_error_code(e.code())
                        .with_error_message(e.message())
                }
            });
        }
        responses.push(
            ReassignableTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(allow_rf_change)
        .with_error_message(None)
        .with_responses(responses)
}
