//! AddOffsetsToTxn: adds a consumer group's `__consumer_offsets` partition to a producer's
//! open transaction, before TxnOffsetCommit writes the group's offsets into it (KIP-98's
//! consume-transform-produce).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use crate::context::Broker;
use crate::metadata::acl::{AclOperation, ResourceType};
use crate::txn::state::TxnApi;
use crate::types::{ProducerEpoch, ProducerId};

/// Handles AddOffsetsToTxn.
pub async fn handle(
    b: &Broker,
    req: AddOffsetsToTxnRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> AddOffsetsToTxnResponse {
    let id = req.transactional_id.0.as_str();
    let group = req.group_id.0.as_str();
    // WRITE on the transactional id, READ on the group (Kafka's rules).
    let code = if !ctx
        .authz
        .allowed(AclOperation::Write, ResourceType::TransactionalId, id)
    {
        ResponseError::TransactionalIdAuthorizationFailed.code()
    } else if !ctx.authz.group(AclOperation::Read, group) {
        ResponseError::GroupAuthorizationFailed.code()
    } else if group.is_empty() {
        ResponseError::InvalidGroupId.code()
    } else {
        match b
            .txns
            .add_offsets(
                id,
                ProducerId(req.producer_id.0),
                ProducerEpoch(req.producer_epoch),
                group,
            )
            .await
        {
            Ok(()) => 0,
            Err(e) => e.code_for(TxnApi::AddOffsetsToTxn, version),
        }
    };
    AddOffsetsToTxnResponse::default().with_error_code(code)
}
