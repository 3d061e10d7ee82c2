//! DescribeProducers (KIP-664): the producer state of partitions this node leads — each
//! producer's epoch, last sequence and timestamp, the coordinator epoch of its last marker and
//! where its open transaction starts (what `find-hanging` and `abort` work from).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use crate::context::Broker;
use crate::error::KafkaError;
use crate::log::ProducerEntrySnapshot;
use crate::metadata::acl::AclOperation;

/// Handles DescribeProducers: one answer per partition asked, in request order.
pub async fn handle(
    b: &Broker,
    req: DescribeProducersRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> DescribeProducersResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let readable = ctx.authz.topic(AclOperation::Read, &name);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&i| {
                    let out = PartitionResponse::default().with_partition_index(i);
                    if !readable {
                        return out.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    match producers(b, &name, i) {
                        Ok(states) => out.with_active_producers(
                            states.into_iter().map(producer_state).collect(),
                        ),
                        Err(e) => out
                            .with_error_code(e.code())
                            .with_error_message(e.message()),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

/// Every producer of a partition this node leads (NOT_LEADER_OR_FOLLOWER when another node
/// leads it, UNKNOWN_TOPIC_OR_PARTITION when it does not exist).
fn producers(
    b: &Broker,
    topic: &str,
    partition: i32,
) -> Result<Vec<ProducerEntrySnapshot>, KafkaError> {
    let p = b.replicas.leader(topic, partition)?;
    p.with_log(|l| Ok(l.producer_states()))
}

fn producer_state(s: ProducerEntrySnapshot) -> ProducerState {
    ProducerState::default()
        .with_producer_id(ProducerId(s.producer_id.0))
        .with_producer_epoch(i32::from(s.producer_epoch.0))
        .with_last_sequence(s.last_sequence)
        .with_last_timestamp(s.last_timestamp)
        .with_coordinator_epoch(s.coordinator_epoch.0)
        .with_current_txn_start_offset(s.current_txn_start_offset.map_or(-1, |o| o.0))
}
