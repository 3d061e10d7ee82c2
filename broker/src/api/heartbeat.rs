//! Heartbeat: keeps a member's session alive and tells it when to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::context::Broker;

/// Handles Heartbeat.
pub async fn handle(
    b: &Broker,
    req: HeartbeatRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> HeartbeatResponse {
    if !ctx.authz.group(
        crate::metadata::acl::AclOperation::Read,
        req.group_id.0.as_str(),
    ) {
        return HeartbeatResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code(),
        );
    }
    let code = b.groups.heartbeat(
        req.group_id.0.as_str(),
        req.member_id.as_str(),
        req.group_instance_id.as_ref().map(|s| s.as_str()),
        req.generation_id,
    );
    HeartbeatResponse::default().with_error_code(code)
}
