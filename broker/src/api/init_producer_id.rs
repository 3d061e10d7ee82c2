//! InitProducerId for idempotent producers. Transactional ids are not served yet (transactions
//! are a later issue): such requests are refused rather than half-supported.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::context::Broker;

/// Handles InitProducerId.
pub async fn handle(
    b: &Broker,
    req: InitProducerIdRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> InitProducerIdResponse {
    // Idempotent producers need IDEMPOTENT_WRITE on the cluster or, since KIP-679, WRITE on
    // any topic.
    if req.transactional_id.is_none()
        && !ctx
            .authz
            .cluster(crate::metadata::acl::AclOperation::IdempotentWrite)
        && !ctx.authz.any(
            crate::metadata::acl::AclOperation::Write,
            crate::metadata::acl::ResourceType::Topic,
        )
    {
        return InitProducerIdResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    if req.transactional_id.is_some() {
        return InitProducerIdResponse::default()
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    // Only one of id and epoch given is malformed; without a transactional id Kafka always
    // hands out a fresh id (never bumps a given one, which would let anyone fence a producer).
    if (req.producer_id.0 < 0) != (req.producer_epoch < 0) {
        return InitProducerIdResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    match b.controller.allocate_producer_id().await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => InitProducerIdResponse::default()
            .with_error_code(e.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    }
}
