//! FindCoordinator: which node coordinates a group (v4+ batches keys). Creates
//! `__consumer_offsets` on first use. Transaction coordinators are not served yet.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::sb;
use crate::context::Broker;
use crate::metadata::acl::{AclOperation, ResourceType};

/// Handles FindCoordinator.
pub async fn handle(
    b: &Broker,
    req: FindCoordinatorRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> FindCoordinatorResponse {
    let keys: Vec<StrBytes> = if version >= 4 {
        req.coordinator_keys.clone()
    } else {
        vec![req.key.clone()]
    };
    let mut answers: Vec<Coordinator> = Vec::with_capacity(keys.len());
    for k in keys {
        // DESCRIBE on the group (or transactional id) the key names.
        let rt = if req.key_type == 1 {
            ResourceType::TransactionalId
        } else {
            ResourceType::Group
        };
        if !ctx.authz.allowed(AclOperation::Describe, rt, k.as_str()) {
            let code = if req.key_type == 1 {
                ResponseError::TransactionalIdAuthorizationFailed
            } else {
                ResponseError::GroupAuthorizationFailed
            };
            answers.push(
                Coordinator::default()
                    .with_key(k)
                    .with_node_id(BrokerId(-1))
                    .with_port(-1)
                    .with_error_code(code.code())
                    .with_error_message(Some(sb(format!("{} may not describe it", ctx.principal)))),
            );
            continue;
        }
        answers.push(find(b, k, req.key_type, ctx.listener).await);
    }
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(answers);
    }
    let a = answers.into_iter().next().unwrap_or_default();
    let r = FindCoordinatorResponse::default()
        .with_error_code(a.error_code)
        .with_node_id(a.node_id)
        .with_host(a.host)
        .with_port(a.port);
    if version >= 1 {
        r.with_error_message(a.error_message)
    } else {
        r
    }
}

async fn find(b: &Broker, key: StrBytes, key_type: i8, listener: &str) -> Coordinator {
    let fail = |key: StrBytes, e: ResponseError, msg: &str| {
        Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(-1))
            .with_port(-1)
            .with_error_code(e.code())
            .with_error_message(Some(sb(msg)))
    };
    if key_type != 0 {
        return fail(
            key,
            ResponseError::CoordinatorNotAvailable,
            "transaction coordinators are not available on this cluster yet",
        );
    }
    if let Err(e) = b.groups.ensure_offsets_topic().await {
        return fail(key, e, "the offsets topic could not be created");
    }
    let image = b.controller.image();
    let leader = b
        .groups
        .partition_of(key.as_str())
        .and_then(|p| image.partition(crate::group::store::OFFSETS_TOPIC, p))
        .map(|p| p.leader);
    let node = leader
        .and_then(|l| image.brokers.get(&l))
        .and_then(|n| n.endpoint_for(listener).map(|(h, p)| (n.id, h, p)));
    match node {
        Some((id, host, port)) => Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(id.0))
            .with_host(sb(host))
            .with_port(port as i32),
        None => fail(
            key,
            ResponseError::CoordinatorNotAvailable,
            "the group's offsets partition has no leader",
        ),
    }
}
