//! A group member, what it asked for, and the answers it waits on; the group's states.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;

/// Kafka's group states, with the names DescribeGroups and ListGroups use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members (offsets may still be committed).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Members have their assignment and heartbeat.
    Stable,
    /// Removed.
    Dead,
}

impl GroupState {
    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a JoinGroup caller receives.
#[derive(Debug, Clone, Default)]
pub struct JoinResult {
    /// Kafka error code.
    pub error: i16,
    /// Generation after the rebalance.
    pub generation: i32,
    /// The group's protocol type (`consumer`).
    pub protocol_type: Option<String>,
    /// The chosen assignor.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// For the leader: every member with its subscription metadata.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

/// What a SyncGroup caller receives.
#[derive(Debug, Clone, Default)]
pub struct SyncResult {
    /// Kafka error code.
    pub error: i16,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen assignor.
    pub protocol_name: Option<String>,
    /// This member's assignment.
    pub assignment: Bytes,
}

/// One member.
#[derive(Debug)]
pub struct Member {
    /// Member id (assigned by the coordinator).
    pub id: String,
    /// Static membership id (KIP-345).
    pub instance_id: Option<String>,
    /// Client id from the request header.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout: Duration,
    /// Rebalance timeout (max.poll.interval.ms).
    pub rebalance_timeout: Duration,
    /// Supported protocols in preference order: (name, metadata).
    pub protocols: Vec<(String, Bytes)>,
    /// Current assignment.
    pub assignment: Bytes,
    /// When the session was last refreshed.
    pub last_heartbeat: Instant,
    pub(super) join_waiter: Option<oneshot::Sender<JoinResult>>,
    pub(super) sync_waiter: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    /// Parks a JoinGroup answer; a request it supersedes (the same member joining again on
    /// another connection) is answered at once rather than dropped.
    pub(super) fn await_join(&mut self, tx: oneshot::Sender<JoinResult>) {
        if let Some(old) = self.join_waiter.replace(tx) {
            let _ = old.send(JoinResult {
                error: ResponseError::RebalanceInProgress.code(),
                generation: -1,
                member_id: self.id.clone(),
                ..Default::default()
            });
        }
    }

    /// The metadata this member sent for `protocol`.
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// A JoinGroup request, already parsed.
#[derive(Debug)]
pub struct JoinRequest {
    /// Given member id (empty for a new member).
    pub member_id: String,
    /// Static membership id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout: Duration,
    /// Rebalance timeout.
    pub rebalance_timeout: Duration,
    /// Protocol type.
    pub protocol_type: String,
    /// Protocols in preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// KIP-394: the client understands MEMBER_ID_REQUIRED (JoinGroup v4+).
    pub require_known_member_id: bool,
}

/// Group-level timing settings from the broker config.
#[derive(Debug, Clone, Copy)]
pub struct GroupTimings {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_delay: Duration,
}
