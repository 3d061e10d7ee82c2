//! Heartbeat: keeps a member's session alive and tells it when to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::context::Broker;

/// Handles Heartbeat.
pub async fn handle(
    b: &Broker,
    req: HeartbeatRequest,
    _version: i16,
    _ctx: &super::Ctx<'_>,
) -> HeartbeatResponse {
    let code = b.groups.heartbeat(
        req.group_id.0.as_str(),
        req.member_id.as_str(),
        req.group_instance_id.as_ref().map(|s| s.as_str()),
        req.generation_id,
    );
    HeartbeatResponse::default().with_error_code(code)
}
