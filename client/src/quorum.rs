//! The metadata quorum as methods on [`Cluster`]: KIP-595's DescribeQuorum, asked of the
//! active controller and again of the leader a node names when it is not that; KIP-853's
//! AddRaftVoter and RemoveRaftVoter, sent to the quorum's leader.

use kafka_protocol::messages::add_raft_voter_request::Listener;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{
    AddRaftVoterRequest, DescribeQuorumRequest, RemoveRaftVoterRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{ClientError, Cluster};

/// NOT_LEADER_OR_FOLLOWER.
const NOT_LEADER: i16 = 6;

/// One quorum member's progress as the leader reports it; `None` where the leader does not
/// know (Kafka's -1).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QuorumReplica {
    /// The node id.
    pub node_id: i32,
    /// Its log end offset.
    pub log_end_offset: Option<i64>,
    /// When it last fetched (ms since the epoch).
    pub last_fetch_timestamp: Option<i64>,
    /// When it was last caught up (ms since the epoch).
    pub last_caught_up_timestamp: Option<i64>,
}

/// The quorum as its leader describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QuorumInfo {
    /// The leader's node id.
    pub leader_id: i32,
    /// The leader's epoch.
    pub leader_epoch: i32,
    /// The quorum's high watermark.
    pub high_watermark: i64,
    /// The voters.
    pub voters: Vec<QuorumReplica>,
    /// The observers.
    pub observers: Vec<QuorumReplica>,
}

fn known(v: i64) -> Option<i64> {
    (v >= 0).then_some(v)
}

impl Cluster {
    /// Describes the metadata quorum (`__cluster_metadata` partition 0).
    pub async fn describe_quorum(&self) -> Result<QuorumInfo, ClientError> {
        let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
        let mut resp = self.send_to_controller(req.clone()).await?;
        for _ in 0..2 {
            let leader = resp
                .topics
                .first()
                .and_then(|t| t.partitions.first())
                .filter(|p| p.error_code == NOT_LEADER && p.leader_id.0 >= 0)
                .map(|p| p.leader_id.0);
            match leader {
                Some(l) => resp = self.send_to(l, req.clone()).await?,
                None => break,
            }
        }
        ClientError::check(resp.error_code, resp.error_message.as_deref())?;
        let p = resp
            .topics
            .into_iter()
            .next()
            .and_then(|t| t.partitions.into_iter().next())
            .ok_or_else(|| ClientError::Kafka {
                code: -1,
                message: Some("DescribeQuorum answered no partition".into()),
            })?;
        ClientError::check(p.error_code, p.error_message.as_deref())?;
        let replica =
            |r: &kafka_protocol::messages::describe_quorum_response::ReplicaState| QuorumReplica {
                node_id: r.replica_id.0,
                log_end_offset: known(r.log_end_offset),
                last_fetch_timestamp: known(r.last_fetch_timestamp),
                last_caught_up_timestamp: known(r.last_caught_up_timestamp),
            };
        Ok(QuorumInfo {
            leader_id: p.leader_id.0,
            leader_epoch: p.leader_epoch,
            high_watermark: p.high_watermark,
            voters: p.current_voters.iter().map(replica).collect(),
            observers: p.observers.iter().map(replica).collect(),
        })
    }
}

impl Cluster {
    /// Adds node `id`, whose CONTROLLER listener is `host:port`, to the quorum's voters. The
    /// node must be running; the leader catches it up first, for up to `timeout_ms`.
    pub async fn add_quorum_voter(
        &self,
        id: i32,
        listener: &str,
        host: &str,
        port: u16,
        timeout_ms: i32,
    ) -> Result<(), ClientError> {
        let leader = self.describe_quorum().await?.leader_id;
        let req = AddRaftVoterRequest::default()
            .with_cluster_id(self.cluster_id().map(StrBytes::from_string))
            .with_timeout_ms(timeout_ms)
            .with_voter_id(id)
            .with_listeners(vec![Listener::default()
                .with_name(StrBytes::from_string(listener.to_string()))
                .with_host(StrBytes::from_string(host.to_string()))
                .with_port(port)]);
        let resp = self.send_to(leader, req).await?;
        ClientError::check(resp.error_code, resp.error_message.as_deref())
    }

    /// Removes node `id` from the quorum's voters.
    pub async fn remove_quorum_voter(&self, id: i32) -> Result<(), ClientError> {
        let leader = self.describe_quorum().await?.leader_id;
        let req = RemoveRaftVoterRequest::default()
            .with_cluster_id(self.cluster_id().map(StrBytes::from_string))
            .with_voter_id(id);
        let resp = self.send_to(leader, req).await?;
        ClientError::check(resp.error_code, resp.error_message.as_deref())
    }
}
