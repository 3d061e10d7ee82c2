//! Taking over from a quorum leader whose process is gone.
//!
//! openraft starts an election only after the leader lease (`election_timeout_max`, during
//! which voters refuse to vote because a leader may still be alive) plus a randomized
//! election timeout: 1.5-2 s at the defaults. When the leader's broker port refuses
//! connections its process is gone (the liveness checks see it), and waiting out the random
//! part only delays the failover. So the lowest-id surviving voter starts the election as
//! soon as the lease has run out since it last heard the leader: the other voters have not
//! heard it for as long and grant the vote, and no second survivor runs against it, so the
//! vote is not split. A leader that is alive but unreachable on its broker port still sends
//! AppendEntries; then the lease has not run out and nothing happens.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openraft::ServerState;

use super::{MetadataQuorum, NodeId};

/// Margin past the lease before voting is asked for, for the voters' clocks and delivery.
const LEASE_MARGIN: Duration = Duration::from_millis(30);

/// When this node last received AppendEntries from each peer (a leader's heartbeat or log).
#[derive(Debug, Default)]
pub(crate) struct Heard {
    last: Mutex<HashMap<NodeId, Instant>>,
}

impl Heard {
    /// Notes AppendEntries from `from` now.
    pub(crate) fn note(&self, from: NodeId) {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(from, Instant::now());
    }

    /// When `from` was last heard, if ever.
    fn at(&self, from: NodeId) -> Option<Instant> {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&from)
            .copied()
    }
}

/// Why no election was started; for tests and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover {
    /// This node started an election.
    Started,
    /// The leader is not known to be gone, or this node is not a follower of it.
    NotNeeded,
    /// A lower-id surviving voter will start it.
    OtherVoter,
    /// Too early: the leader lease has not run out yet (in this much time it will).
    Wait(Duration),
}

impl MetadataQuorum {
    /// Starts an election at once if the current quorum leader is in `gone` (nodes whose
    /// process is known to have stopped), this node is the lowest-id voter not in `gone`,
    /// and the leader lease has run out since this node last heard the leader (see the
    /// module docs). Returns what it did.
    pub async fn take_over_if_leader_gone(&self, gone: &BTreeSet<NodeId>) -> Takeover {
        let inner = &self.inner;
        let (state, leader, voters) = {
            let m = inner.raft.metrics();
            let m = m.borrow();
            // The effective voters: they change at run time (`membership`).
            let voters: std::collections::BTreeSet<NodeId> =
                m.membership_config.membership().voter_ids().collect();
            (m.state, m.current_leader, voters)
        };
        let Some(leader) = leader.filter(|l| *l != inner.me && gone.contains(l)) else {
            return Takeover::NotNeeded;
        };
        if state != ServerState::Follower {
            return Takeover::NotNeeded;
        }
        let first_survivor = voters.iter().find(|v| !gone.contains(v));
        if first_survivor != Some(&inner.me) {
            return Takeover::OtherVoter;
        }
        let lease = inner.cfg.election_timeout_max + LEASE_MARGIN;
        let silent = inner
            .heard
            .at(leader)
            .map_or(lease, |t| Instant::now().saturating_duration_since(t));
        if silent < lease {
            return Takeover::Wait(lease - silent);
        }
        match inner.raft.trigger().elect().await {
            Ok(()) => {
                tracing::info!(
                    leader,
                    silent_ms = silent.as_millis() as u64,
                    "the quorum leader's process is gone: starting an election"
                );
                Takeover::Started
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start an election");
                Takeover::NotNeeded
            }
        }
    }
}
