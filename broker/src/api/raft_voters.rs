//! AddRaftVoter and RemoveRaftVoter (KIP-853): change the metadata quorum's voters at run
//! time, so a failed controller's machine can be replaced (kafka-metadata-quorum.sh
//! add-controller / remove-controller, `rill quorum`). ALTER on the cluster; answered by the
//! quorum leader (others: NOT_LEADER_OR_FOLLOWER, and the client asks the leader). A new
//! voter must be running: it is caught up as a learner, then promoted. The two APIs share
//! this file: they are one operation in two directions.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, RemoveRaftVoterRequest, RemoveRaftVoterResponse,
};

use super::sb;
use crate::context::Broker;
use crate::controller::raft::membership::VoterChangeError;
use crate::metadata::acl::AclOperation;

/// The longest a voter change may take (a request's `timeout_ms` is capped at it).
pub const MAX_VOTER_CHANGE: Duration = Duration::from_secs(300);
/// When the request gives no timeout.
const DEFAULT_VOTER_CHANGE: Duration = Duration::from_secs(30);

fn code(e: &VoterChangeError) -> i16 {
    match e {
        VoterChangeError::NotLeader(_) => ResponseError::NotLeaderOrFollower.code(),
        VoterChangeError::Duplicate(_) => ResponseError::DuplicateVoter.code(),
        VoterChangeError::NotFound(_) => ResponseError::VoterNotFound.code(),
        VoterChangeError::Invalid(_) => ResponseError::InvalidRequest.code(),
        VoterChangeError::Timeout(_) => ResponseError::RequestTimedOut.code(),
    }
}

/// Why a request is refused before anything is tried: its code and message.
fn precheck(
    b: &Broker,
    ctx: &super::Ctx<'_>,
    cluster_id: Option<&str>,
    voter_id: i32,
) -> Result<u64, (i16, String)> {
    if !ctx.authz.cluster(AclOperation::Alter) {
        return Err((
            ResponseError::ClusterAuthorizationFailed.code(),
            "changing the quorum's voters needs ALTER on the cluster".into(),
        ));
    }
    let ours = b.controller.image().cluster_id.clone();
    if let Some(theirs) = cluster_id.filter(|c| *c != ours) {
        return Err((
            ResponseError::InconsistentClusterId.code(),
            format!("the request is for cluster {theirs}, this is cluster {ours}"),
        ));
    }
    u64::try_from(voter_id).map_err(|_| {
        (
            ResponseError::InvalidRequest.code(),
            format!("voter id {voter_id} is negative"),
        )
    })
}

fn timeout(ms: i32) -> Duration {
    match u64::try_from(ms) {
        Ok(ms) if ms > 0 => Duration::from_millis(ms).min(MAX_VOTER_CHANGE),
        _ => DEFAULT_VOTER_CHANGE,
    }
}

/// Handles AddRaftVoter.
pub async fn add(
    b: &Broker,
    req: AddRaftVoterRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> AddRaftVoterResponse {
    let fail = |(code, msg): (i16, String)| {
        AddRaftVoterResponse::default()
            .with_error_code(code)
            .with_error_message(Some(sb(msg)))
    };
    let id = match precheck(b, ctx, req.cluster_id.as_deref(), req.voter_id) {
        Ok(id) => id,
        Err(e) => return fail(e),
    };
    // The new voter's endpoint on the listener the quorum speaks (ours), else its first.
    let ours = &b.config.controller_listener.name;
    let Some(l) = req
        .listeners
        .iter()
        .find(|l| l.name.as_str() == ours.as_str())
        .or_else(|| req.listeners.first())
    else {
        return fail((
            ResponseError::InvalidRequest.code(),
            "the new voter has no listener".into(),
        ));
    };
    let addr = format!("{}:{}", l.host.as_str(), l.port);
    match b
        .controller
        .add_voter(id, &addr, timeout(req.timeout_ms))
        .await
    {
        Ok(()) => {
            tracing::info!(principal = %ctx.principal, voter = id, %addr, "quorum voter added");
            AddRaftVoterResponse::default()
        }
        Err(e) => fail((code(&e), e.to_string())),
    }
}

/// Handles RemoveRaftVoter.
pub async fn remove(
    b: &Broker,
    req: RemoveRaftVoterRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> RemoveRaftVoterResponse {
    let fail = |(code, msg): (i16, String)| {
        RemoveRaftVoterResponse::default()
            .with_error_code(code)
            .with_error_message(Some(sb(msg)))
    };
    let id = match precheck(b, ctx, req.cluster_id.as_deref(), req.voter_id) {
        Ok(id) => id,
        Err(e) => return fail(e),
    };
    match b.controller.remove_voter(id, DEFAULT_VOTER_CHANGE).await {
        Ok(()) => {
            tracing::info!(principal = %ctx.principal, voter = id, "quorum voter removed");
            RemoveRaftVoterResponse::default()
        }
        Err(e) => fail((code(&e), e.to_string())),
    }
}
