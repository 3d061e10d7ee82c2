//! DescribeQuorum (KIP-595; v2 with KIP-853's nodes): the metadata quorum as its leader sees
//! it, for kafka-metadata-quorum.sh and `rill quorum`. DESCRIBE on the cluster. Only the
//! leader knows its followers' progress, so another node answers NOT_LEADER_OR_FOLLOWER
//! with the leader it knows (clients send it to the active controller, as Kafka's admin
//! client does). Offsets count the quorum's log entries; a follower's lag is the leader's
//! log end minus its own. A timestamp the leader has not seen is -1 (unknown), as in Kafka.

use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};

use super::sb;
use crate::context::Broker;
use crate::controller::raft::{QuorumDescription, ReplicaProgress};
use crate::error::KafkaError;
use crate::metadata::acl::AclOperation;

/// The metadata log's name in KRaft.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// Handles DescribeQuorum.
pub async fn handle(
    b: &Broker,
    req: DescribeQuorumRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> DescribeQuorumResponse {
    if !ctx.authz.cluster(AclOperation::Describe) {
        let e = KafkaError::ClusterAuthorizationFailed(
            "DescribeQuorum needs DESCRIBE on the cluster".into(),
        );
        return DescribeQuorumResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(sb(e.to_string())));
    }
    let asked_metadata = req.topics.iter().any(|t| {
        t.topic_name.0.as_str() == METADATA_TOPIC
            && t.partitions.iter().any(|p| p.partition_index == 0)
    });
    if !asked_metadata {
        let e = KafkaError::InvalidRequest(format!(
            "DescribeQuorum describes {METADATA_TOPIC} partition 0 only"
        ));
        return DescribeQuorumResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(sb(e.to_string())));
    }
    let partition = match b.controller.describe_quorum() {
        Some(d) => described(&d),
        None => {
            let leader = b.controller.status().leader;
            let e = KafkaError::NotLeaderOrFollower(format!(
                "node {} does not lead the metadata quorum",
                b.config.node_id
            ));
            PartitionData::default()
                .with_error_code(e.code())
                .with_error_message(Some(sb(e.to_string())))
                .with_leader_id(BrokerId(
                    leader.and_then(|l| i32::try_from(l).ok()).unwrap_or(-1),
                ))
        }
    };
    let nodes = b
        .controller
        .describe_quorum()
        .map(|d| {
            d.addresses
                .iter()
                .filter_map(|(id, addr)| {
                    let (host, port) = addr.rsplit_once(':')?;
                    Some(
                        Node::default()
                            .with_node_id(BrokerId(i32::try_from(*id).ok()?))
                            .with_listeners(vec![Listener::default()
                                .with_name(sb("CONTROLLER"))
                                .with_host(sb(host))
                                .with_port(port.parse().ok()?)]),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    DescribeQuorumResponse::default()
        .with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(sb(METADATA_TOPIC)))
            .with_partitions(vec![partition])])
        .with_nodes(nodes)
}

fn offset(v: Option<u64>) -> i64 {
    v.and_then(|o| i64::try_from(o).ok()).unwrap_or(-1)
}

fn replica(r: &ReplicaProgress) -> ReplicaState {
    ReplicaState::default()
        .with_replica_id(BrokerId(i32::try_from(r.id).unwrap_or(-1)))
        .with_log_end_offset(offset(r.log_end_offset))
        .with_last_fetch_timestamp(r.last_fetch_ms.unwrap_or(-1))
        .with_last_caught_up_timestamp(r.last_caught_up_ms.unwrap_or(-1))
}

fn described(d: &QuorumDescription) -> PartitionData {
    PartitionData::default()
        .with_leader_id(BrokerId(i32::try_from(d.leader).unwrap_or(-1)))
        .with_leader_epoch(i32::try_from(d.term).unwrap_or(i32::MAX))
        .with_high_watermark(offset(Some(d.high_watermark)))
        .with_current_voters(d.voters.iter().map(replica).collect())
        .with_observers(d.observers.iter().map(replica).collect())
}
