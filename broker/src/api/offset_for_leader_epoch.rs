//! OffsetForLeaderEpoch (KIP-101/279/320): the end offset of a leader epoch, which followers
//! truncate to and consumers validate their positions against.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::context::Broker;
use crate::error::KafkaError;
use crate::types::LeaderEpoch;

/// Handles OffsetForLeaderEpoch.
pub async fn handle(
    b: &Broker,
    req: OffsetForLeaderEpochRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> OffsetForLeaderEpochResponse {
    // Followers need CLUSTER_ACTION, consumers DESCRIBE on the topic.
    let follower = req.replica_id.0 >= 0;
    let cluster_action = follower
        && ctx
            .authz
            .cluster(crate::metadata::acl::AclOperation::ClusterAction);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.topic.0.to_string();
            let allowed = if follower {
                cluster_action
            } else {
                ctx.authz
                    .topic(crate::metadata::acl::AclOperation::Describe, &name)
            };
            let parts = t
                .partitions
                .iter()
                .map(|op| {
                    let out = EpochEndOffset::default().with_partition(op.partition);
                    if !allowed {
                        return out
                            .with_error_code(
                                kafka_protocol::error::ResponseError::TopicAuthorizationFailed
                                    .code(),
                            )
                            .with_leader_epoch(-1)
                            .with_end_offset(-1);
                    }
                    match lookup(
                        b,
                        &name,
                        op.partition,
                        op.current_leader_epoch,
                        op.leader_epoch,
                    ) {
                        Ok((e, o)) => out.with_leader_epoch(e).with_end_offset(o),
                        Err(e) => out
                            .with_error_code(e.code())
                            .with_leader_epoch(-1)
                            .with_end_offset(-1),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(parts)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

fn lookup(
    b: &Broker,
    topic: &str,
    partition: i32,
    current: i32,
    wanted: i32,
) -> Result<(i32, i64), KafkaError> {
    let p = b.replicas.leader(topic, partition)?;
    p.check_epoch(current)?;
    // A leader's own epoch ends at its log end, whether or not it has appended in it yet.
    if wanted == p.leader_epoch().0 {
        return Ok((wanted, p.log_end_offset().0));
    }
    Ok(
        match p.with_log(|l| Ok(l.end_offset_for_epoch(LeaderEpoch(wanted))))? {
            Some((e, o)) => (e.0, o.0),
            None => (-1, -1),
        },
    )
}
