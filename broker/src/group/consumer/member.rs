//! One member of a consumer group: what it subscribes to, its epochs, what it owns and what
//! it must give up, and its timers.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Assignment, ClassicMember, Settings};

/// Where a member is in reaching its target assignment (Kafka's `MemberState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// At the assignment epoch with everything it may have.
    Stable,
    /// Must revoke partitions first.
    UnrevokedPartitions,
    /// Waits for partitions other members still own.
    UnreleasedPartitions,
}

impl MemberState {
    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            MemberState::Stable => "STABLE",
            MemberState::UnrevokedPartitions => "UNREVOKED_PARTITIONS",
            MemberState::UnreleasedPartitions => "UNRELEASED_PARTITIONS",
        }
    }
}

/// One member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerMember {
    /// Member id (the client's, since ConsumerGroupHeartbeat v1).
    pub id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// Client id of its latest heartbeat's connection.
    pub client_id: String,
    /// Host it heartbeats from.
    pub client_host: String,
    /// Topics subscribed by name.
    pub subscribed_topic_names: Vec<String>,
    /// Topics subscribed by a regex (Kafka 4's server-side regex, full match).
    pub subscribed_topic_regex: Option<String>,
    /// The assignor it asked for.
    pub server_assignor: Option<String>,
    /// How long it may take to revoke partitions.
    pub rebalance_timeout_ms: i32,
    /// Its epoch ([`STATIC_LEAVE_EPOCH`] while a static member is away).
    pub member_epoch: i32,
    /// The epoch before the last bump: a heartbeat with it is accepted if its answer was lost.
    pub previous_member_epoch: i32,
    /// Reconciliation state.
    pub state: MemberState,
    /// What it owns now.
    pub assigned: Assignment,
    /// What it must give up.
    pub pending_revocation: Assignment,
    /// Set for a member speaking the classic protocol (JoinGroup/SyncGroup) in a group
    /// converted online to this protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classic: Option<ClassicMember>,
    /// Its session ends unless it heartbeats before this.
    #[serde(skip)]
    pub session_deadline: Option<Instant>,
    /// It must have revoked by this (its rebalance timeout), or it is removed.
    #[serde(skip)]
    pub revocation_deadline: Option<Instant>,
}

impl ConsumerMember {
    pub(super) fn new(id: &str) -> ConsumerMember {
        ConsumerMember {
            id: id.to_string(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            server_assignor: None,
            rebalance_timeout_ms: 300_000,
            member_epoch: 0,
            previous_member_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            classic: None,
            session_deadline: None,
            revocation_deadline: None,
        }
    }

    /// Every partition it owns: assigned or still to revoke.
    pub fn owned(&self) -> impl Iterator<Item = (Uuid, i32)> + '_ {
        self.assigned
            .iter()
            .chain(self.pending_revocation.iter())
            .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
    }
}

/// A member's session timeout: its own for a classic member, the group's otherwise.
pub(super) fn session_of(m: &ConsumerMember, settings: &Settings) -> Duration {
    m.classic.as_ref().map_or(settings.session_timeout, |c| {
        Duration::from_millis(c.session_timeout_ms.max(0) as u64)
    })
}

pub(super) fn rebalance_timeout(m: &ConsumerMember) -> Duration {
    Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64)
}
