//! JoinGroup: the first phase of a rebalance. The response waits until every member rejoined
//! or the rebalance timeout passed (KIP-394 member ids, KIP-345 static members).

use std::time::Duration;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use super::sb;
use crate::context::Broker;
use crate::group::state::JoinRequest;

/// Handles JoinGroup.
pub async fn handle(
    b: &Broker,
    req: JoinGroupRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> JoinGroupResponse {
    let group_id = req.group_id.0.to_string();
    if !ctx
        .authz
        .group(crate::metadata::acl::AclOperation::Read, &group_id)
    {
        return JoinGroupResponse::default()
            .with_error_code(kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code())
            .with_generation_id(-1);
    }
    let join = JoinRequest {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: ctx.client_id(),
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout: Duration::from_millis(req.session_timeout_ms.max(0) as u64),
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout: Duration::from_millis(if version >= 1 {
            req.rebalance_timeout_ms.max(0)
        } else {
            req.session_timeout_ms.max(0)
        } as u64),
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let error = |code: i16, member_id: String| {
        JoinGroupResponse::default()
            .with_error_code(code)
            .with_generation_id(-1)
            .with_member_id(sb(member_id))
    };
    let rx = match b.groups.join(&group_id, join) {
        Ok(rx) => rx,
        Err(e) => return error(e.code(), req.member_id.to_string()),
    };
    let Ok(r) = rx.await else {
        return error(
            kafka_protocol::error::ResponseError::CoordinatorNotAvailable.code(),
            req.member_id.to_string(),
        );
    };
    let members = r
        .members
        .into_iter()
        .map(|(id, instance, meta)| {
            JoinGroupResponseMember::default()
                .with_member_id(sb(id))
                .with_group_instance_id(instance.filter(|_| version >= 5).map(sb))
                .with_metadata(meta)
        })
        .collect();
    let resp = JoinGroupResponse::default()
        .with_error_code(r.error)
        .with_generation_id(r.generation)
        // Non-nullable before v7: Kafka sends "" when no protocol was chosen.
        .with_protocol_name(
            r.protocol_name
                .or_else(|| (version < 7).then(String::new))
                .map(sb),
        )
        .with_leader(sb(r.leader))
        .with_member_id(sb(r.member_id))
        .with_members(members);
    if version >= 7 {
        resp.with_protocol_type(r.protocol_type.map(sb))
    } else {
        resp
    }
}
