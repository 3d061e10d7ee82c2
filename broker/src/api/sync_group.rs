//! SyncGroup: the leader hands in the assignment; every member receives its share.

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::sb;
use crate::context::Broker;

/// Handles SyncGroup.
pub async fn handle(
    b: &Broker,
    req: SyncGroupRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> SyncGroupResponse {
    if !ctx.authz.group(
        crate::metadata::acl::AclOperation::Read,
        req.group_id.0.as_str(),
    ) {
        return SyncGroupResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code(),
        );
    }
    let assignments = req
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let rx = match b.groups.sync(
        req.group_id.0.as_str(),
        req.member_id.as_str(),
        req.group_instance_id.as_ref().map(|s| s.as_str()),
        req.generation_id,
        assignments,
    ) {
        Ok(rx) => rx,
        Err(e) => return SyncGroupResponse::default().with_error_code(e.code()),
    };
    let Ok(r) = rx.await else {
        return SyncGroupResponse::default()
            .with_error_code(kafka_protocol::error::ResponseError::CoordinatorNotAvailable.code());
    };
    let resp = SyncGroupResponse::default()
        .with_error_code(r.error)
        .with_assignment(r.assignment);
    if version >= 5 {
        resp.with_protocol_type(r.protocol_type.map(sb))
            .with_protocol_name(r.protocol_name.map(sb))
    } else {
        resp
    }
}
