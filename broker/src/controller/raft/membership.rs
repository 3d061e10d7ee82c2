//! Changing the quorum's voters at run time (KIP-853's AddRaftVoter and RemoveRaftVoter), so
//! that a controller whose machine failed can be replaced: on the leader, a new voter is
//! first added as a learner and caught up (openraft's `add_learner`, blocking), then promoted
//! through joint consensus (`change_membership`); a voter is removed the same way. Each step
//! is a Raft log entry, so the voters survive restarts and failovers like any metadata.
//!
//! A node joining this way starts with its own id among `controller.quorum.voters` (so it
//! knows where the others are) but forms nothing: it waits for the leader's appends once it
//! has been added. The configured voter lists of the other nodes are not rewritten; the
//! quorum's effective membership is what counts (`status`, DescribeQuorum).

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, ServerState};

use super::{MetadataQuorum, NodeId};

/// Why a voter change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoterChangeError {
    /// This node does not lead the quorum; the leader it knows, if any.
    #[error("this node does not lead the metadata quorum")]
    NotLeader(Option<NodeId>),
    /// The node is already a voter.
    #[error("node {0} is already a voter")]
    Duplicate(NodeId),
    /// The node is not a voter.
    #[error("node {0} is not a voter")]
    NotFound(NodeId),
    /// The change cannot be made (the last voter, another change in progress, bad address).
    #[error("{0}")]
    Invalid(String),
    /// The new voter did not catch up, or the change did not commit, in time.
    #[error("{0}")]
    Timeout(String),
}

impl MetadataQuorum {
    fn voter_ids(&self) -> BTreeSet<NodeId> {
        self.inner
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect()
    }

    fn check_leader(&self) -> Result<(), VoterChangeError> {
        let m = self.inner.raft.metrics().borrow().clone();
        if m.state == ServerState::Leader {
            Ok(())
        } else {
            Err(VoterChangeError::NotLeader(m.current_leader))
        }
    }

    /// Adds node `id`, reachable at `addr` (its CONTROLLER listener), as a voter: it must be
    /// running; it is caught up as a learner first, within `timeout`.
    pub async fn add_voter(
        &self,
        id: NodeId,
        addr: &str,
        timeout: Duration,
    ) -> Result<(), VoterChangeError> {
        self.check_leader()?;
        if self.voter_ids().contains(&id) {
            return Err(VoterChangeError::Duplicate(id));
        }
        if addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            return Err(VoterChangeError::Invalid(format!(
                "{addr:?} is not host:port"
            )));
        }
        let learner = self.inner.raft.add_learner(id, BasicNode::new(addr), true);
        run(timeout, learner, "catching the new voter up").await?;
        tracing::info!(node = id, %addr, "new voter caught up as a learner; promoting it");
        let promote = self
            .inner
            .raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false);
        run(timeout, promote, "committing the new voter set").await?;
        tracing::info!(node = id, voters = ?self.voter_ids(), "voter added to the metadata quorum");
        Ok(())
    }

    /// Removes voter `id` (a failed controller, or one being retired), within `timeout`.
    pub async fn remove_voter(
        &self,
        id: NodeId,
        timeout: Duration,
    ) -> Result<(), VoterChangeError> {
        self.check_leader()?;
        let voters = self.voter_ids();
        if !voters.contains(&id) {
            return Err(VoterChangeError::NotFound(id));
        }
        if voters.len() == 1 {
            return Err(VoterChangeError::Invalid(format!(
                "node {id} is the only voter; the quorum cannot lose it"
            )));
        }
        let change = self
            .inner
            .raft
            .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false);
        run(timeout, change, "committing the new voter set").await?;
        tracing::info!(node = id, voters = ?self.voter_ids(), "voter removed from the metadata quorum");
        Ok(())
    }
}

async fn run<T>(
    timeout: Duration,
    fut: impl std::future::Future<
        Output = Result<T, RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>>,
    >,
    what: &str,
) -> Result<T, VoterChangeError> {
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Err(VoterChangeError::Timeout(format!(
            "{what} took longer than {timeout:?}"
        ))),
        Ok(Ok(t)) => Ok(t),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
            Err(VoterChangeError::NotLeader(f.leader_id))
        }
        Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => match e {
            ChangeMembershipError::InProgress(_) => Err(VoterChangeError::Invalid(
                "another voter change is in progress; retry once it completes".into(),
            )),
            other => Err(VoterChangeError::Invalid(other.to_string())),
        },
        Ok(Err(e)) => Err(VoterChangeError::Invalid(e.to_string())),
    }
}
