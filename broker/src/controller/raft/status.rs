//! What a quorum member reports about itself ([`MetadataQuorum::status`], the HTTP API's
//! `/api/v1/quorum`) and, on the leader, about every member (`describe`, DescribeQuorum).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use openraft::ServerState;
use serde::{Deserialize, Serialize};

use super::{MetadataQuorum, NodeId};

/// This node's role in the quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuorumRole {
    /// The active controller.
    Leader,
    /// Following a leader (or waiting for one).
    Follower,
    /// Running an election.
    Candidate,
    /// Not a voter (or not yet part of an initialized cluster).
    Learner,
    /// Stopped.
    Shutdown,
}

/// A point-in-time view of this node's quorum state, for the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumStatus {
    /// This node.
    pub node_id: NodeId,
    /// The cluster id, when known.
    pub cluster_id: Option<String>,
    /// This node's role.
    pub role: QuorumRole,
    /// Current Raft term.
    pub term: u64,
    /// The leader this node knows of.
    pub leader: Option<NodeId>,
    /// Last committed log index known here.
    pub commit_index: Option<u64>,
    /// Last log index applied to the image.
    pub last_applied: Option<u64>,
    /// Last log index in this node's log.
    pub last_log_index: Option<u64>,
    /// Last log index covered by this node's snapshot.
    pub snapshot_index: Option<u64>,
    /// Log purged up to (inclusive).
    pub purged_index: Option<u64>,
    /// The voters of the effective membership, with their addresses.
    pub voters: BTreeMap<NodeId, String>,
    /// On the leader: milliseconds since a quorum last acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
}

/// One quorum member as the leader sees it (DescribeQuorum's `ReplicaState`). Offsets count
/// log entries (the next index), so a follower's lag is the leader's log end minus its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaProgress {
    /// The member.
    pub id: NodeId,
    /// Its log end as the leader knows it; `None` before its first acknowledgement.
    pub log_end_offset: Option<u64>,
    /// When it last accepted an AppendEntries (ms since the epoch); `None`: not since this
    /// node leads.
    pub last_fetch_ms: Option<i64>,
    /// When it was last seen caught up with the leader's log end; `None` when it is not
    /// caught up now (the time it last was is not kept).
    pub last_caught_up_ms: Option<i64>,
}

/// The quorum as its leader describes it (DescribeQuorum, KIP-595).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuorumDescription {
    /// The leader (this node).
    pub leader: NodeId,
    /// The leader's term (KRaft's leader epoch).
    pub term: u64,
    /// Committed entries (the next index after the last committed one).
    pub high_watermark: u64,
    /// The voters, the leader first.
    pub voters: Vec<ReplicaProgress>,
    /// Members that replicate without voting (learners).
    pub observers: Vec<ReplicaProgress>,
    /// Each member's quorum address.
    pub addresses: BTreeMap<NodeId, String>,
}

impl MetadataQuorum {
    /// This node's quorum state.
    pub fn status(&self) -> QuorumStatus {
        let inner = &self.inner;
        let m = inner.raft.metrics().borrow().clone();
        let role = if inner.stopped.load(Ordering::SeqCst) {
            QuorumRole::Shutdown
        } else {
            match m.state {
                ServerState::Leader => QuorumRole::Leader,
                ServerState::Follower => QuorumRole::Follower,
                ServerState::Candidate => QuorumRole::Candidate,
                ServerState::Learner => QuorumRole::Learner,
                ServerState::Shutdown => QuorumRole::Shutdown,
            }
        };
        let membership = m.membership_config.membership();
        let voters = membership
            .voter_ids()
            .map(|id| {
                (
                    id,
                    membership
                        .get_node(&id)
                        .map(|n| n.addr.clone())
                        .unwrap_or_default(),
                )
            })
            .collect();
        QuorumStatus {
            node_id: inner.me,
            cluster_id: inner.cluster_id.clone(),
            role,
            term: m.current_term,
            leader: m.current_leader,
            commit_index: inner.commit.get(),
            last_applied: m.last_applied.map(|l| l.index),
            last_log_index: m.last_log_index,
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            voters,
            millis_since_quorum_ack: m.millis_since_quorum_ack,
        }
    }

    /// The quorum's progress as this node, its leader, sees it; `None` when this node does
    /// not lead (only the leader knows its followers' progress, as in KRaft).
    pub fn describe(&self) -> Option<QuorumDescription> {
        let inner = &self.inner;
        let m = inner.raft.metrics().borrow().clone();
        if m.state != ServerState::Leader || inner.stopped.load(Ordering::SeqCst) {
            return None;
        }
        let replication = m.replication.clone().unwrap_or_default();
        let acks = inner.client.last_acks();
        let (now, wall) = (Instant::now(), std::time::SystemTime::now());
        let epoch_ms = |at: Instant| -> Option<i64> {
            let t = wall.checked_sub(now.saturating_duration_since(at))?;
            let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
            i64::try_from(ms).ok()
        };
        let leader_end = m.last_log_index.map_or(0, |i| i + 1);
        let progress = |id: NodeId| -> ReplicaProgress {
            if id == inner.me {
                let at = epoch_ms(now);
                return ReplicaProgress {
                    id,
                    log_end_offset: Some(leader_end),
                    last_fetch_ms: at,
                    last_caught_up_ms: at,
                };
            }
            let end = replication
                .get(&id)
                .map(|matched| matched.map_or(0, |l| l.index + 1));
            let last_fetch_ms = acks.get(&id).and_then(|t| epoch_ms(*t));
            ReplicaProgress {
                id,
                log_end_offset: end,
                last_fetch_ms,
                last_caught_up_ms: if end == Some(leader_end) {
                    last_fetch_ms
                } else {
                    None
                },
            }
        };
        let membership = m.membership_config.membership();
        let mut voter_ids: Vec<NodeId> = membership.voter_ids().collect();
        voter_ids.sort_by_key(|id| (*id != inner.me, *id));
        let voters = voter_ids.iter().map(|id| progress(*id)).collect();
        let observers = membership
            .learner_ids()
            .filter(|id| !voter_ids.contains(id))
            .map(progress)
            .collect();
        let addresses = membership
            .nodes()
            .map(|(id, n)| {
                (
                    *id,
                    inner
                        .cfg
                        .voters
                        .get(id)
                        .cloned()
                        .unwrap_or_else(|| n.addr.clone()),
                )
            })
            .collect();
        Some(QuorumDescription {
            leader: inner.me,
            term: m.current_term,
            high_watermark: inner.commit.get().map_or(0, |i| i + 1),
            voters,
            observers,
            addresses,
        })
    }
}
