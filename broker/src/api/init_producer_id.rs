//! InitProducerId: a producer id and epoch for an idempotent producer (a fresh id from the
//! controller each time), or for a transactional one from the id's transaction coordinator
//! (the epoch bumped, older instances fenced, an open transaction aborted first; KIP-360
//! recovery when the request presents its producer id and epoch).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::context::Broker;
use crate::metadata::acl::{AclOperation, ResourceType};
use crate::txn::state::{self, TxnApi};

/// Handles InitProducerId.
pub async fn handle(
    b: &Broker,
    req: InitProducerIdRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> InitProducerIdResponse {
    let refuse = |code: i16| {
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if let Some(id) = &req.transactional_id {
        // WRITE on the transactional id (Kafka's rule).
        if !ctx.authz.allowed(
            AclOperation::Write,
            ResourceType::TransactionalId,
            id.as_str(),
        ) {
            return refuse(ResponseError::TransactionalIdAuthorizationFailed.code());
        }
        let expected = match state::expected_producer(req.producer_id.0, req.producer_epoch) {
            Ok(e) => e,
            Err(e) => return refuse(e.code_for(TxnApi::InitProducerId, version)),
        };
        return match b
            .txns
            .init_producer_id(id.as_str(), req.transaction_timeout_ms, expected)
            .await
        {
            Ok((pid, epoch)) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(pid.0))
                .with_producer_epoch(epoch.0),
            Err(e) => refuse(e.code_for(TxnApi::InitProducerId, version)),
        };
    }
    // Idempotent producers need IDEMPOTENT_WRITE on the cluster or, since KIP-679, WRITE on
    // any topic.
    if !ctx.authz.cluster(AclOperation::IdempotentWrite)
        && !ctx.authz.any(AclOperation::Write, ResourceType::Topic)
    {
        return refuse(ResponseError::ClusterAuthorizationFailed.code());
    }
    // Only one of id and epoch given is malformed; without a transactional id Kafka always
    // hands out a fresh id (never bumps a given one, which would let anyone fence a producer).
    if (req.producer_id.0 < 0) != (req.producer_epoch < 0) {
        return refuse(ResponseError::InvalidRequest.code());
    }
    match b.controller.allocate_producer_id().await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => refuse(e.code()),
    }
}
