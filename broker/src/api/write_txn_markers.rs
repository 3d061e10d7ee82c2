//! WriteTxnMarkers: a transaction coordinator on another node asks this one to end
//! transactions in partitions it leads. Each marker is appended as leader and answered once
//! the partition's ISR has it; markers in `__consumer_offsets` complete the producer's
//! pending offsets (`txn::markers::append_local`). Only other brokers may send it
//! (CLUSTER_ACTION on the cluster).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use crate::context::Broker;
use crate::metadata::acl::AclOperation;
use crate::txn::markers::{append_local, TxnMarker, MARKER_APPEND_TIMEOUT};
use crate::types::{CoordinatorEpoch, ProducerEpoch, ProducerId, TopicPartition};

/// Handles WriteTxnMarkers.
pub async fn handle(
    b: &Broker,
    req: WriteTxnMarkersRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> WriteTxnMarkersResponse {
    let allowed = ctx.authz.cluster(AclOperation::ClusterAction);
    let mut markers = Vec::with_capacity(req.markers.len());
    for m in req.markers {
        let marker = TxnMarker {
            producer_id: ProducerId(m.producer_id.0),
            producer_epoch: ProducerEpoch(m.producer_epoch),
            coordinator_epoch: CoordinatorEpoch(m.coordinator_epoch),
            commit: m.transaction_result,
        };
        let mut topics = Vec::with_capacity(m.topics.len());
        for t in m.topics {
            let mut partitions = Vec::with_capacity(t.partition_indexes.len());
            for p in t.partition_indexes {
                let code = if !allowed {
                    ResponseError::ClusterAuthorizationFailed.code()
                } else {
                    let tp = TopicPartition::new(t.name.0.as_str(), p);
                    append_local(&b.replicas, &b.groups, &marker, &tp, MARKER_APPEND_TIMEOUT).await
                };
                partitions.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(p)
                        .with_error_code(code),
                );
            }
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(t.name)
                    .with_partitions(partitions),
            );
        }
        markers.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(markers)
}
