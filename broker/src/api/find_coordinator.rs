//! FindCoordinator: which node coordinates a group (key type 0) or a transactional id (key
//! type 1): the leader of the key's `__consumer_offsets` or `__transaction_state` partition,
//! each topic created on first use (v4+ batches keys).

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
    let (topic, partition) = match key_type {
        0 => {
            if let Err(e) = b.groups.ensure_offsets_topic().await {
                return fail(key, e, "the offsets topic could not be created");
            }
            (
                crate::group::store::OFFSETS_TOPIC,
                b.groups.partition_of(key.as_str()),
            )
        }
        1 if key.is_empty() => {
            return fail(
                key,
                ResponseError::InvalidRequest,
                "the transactional id is empty",
            )
        }
        1 => {
            if let Err(e) = b.txns.ensure_topic().await {
                let code = ResponseError::try_from_code(e.code())
                    .unwrap_or(ResponseError::CoordinatorNotAvailable);
                return fail(
                    key,
                    code,
                    "the transaction state topic could not be created",
                );
            }
            (
                crate::txn::store::TRANSACTION_STATE_TOPIC,
                b.txns.partition_of(key.as_str()),
            )
        }
        _ => {
            return fail(
                key,
                ResponseError::InvalidRequest,
                "key type must be 0 (group) or 1 (transaction)",
            )
        }
    };
    let image = b.controller.image();
    let leader = partition
        .and_then(|p| image.partition(topic, p))
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
            "the key's coordinator partition has no leader",
        ),
    }
}
