//! EndTxn: commits or aborts a producer's open transaction. Answered once every partition of
//! the transaction has its marker (see `txn/coordinator.rs` for why not earlier).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use crate::context::Broker;
use crate::metadata::acl::{AclOperation, ResourceType};
use crate::txn::state::{TxnApi, TxnResult};
use crate::types::{ProducerEpoch, ProducerId};

/// Handles EndTxn.
pub async fn handle(
    b: &Broker,
    req: EndTxnRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> EndTxnResponse {
    let id = req.transactional_id.0.as_str();
    let code = if !ctx
        .authz
        .allowed(AclOperation::Write, ResourceType::TransactionalId, id)
    {
        ResponseError::TransactionalIdAuthorizationFailed.code()
    } else {
        let result = if req.committed {
            TxnResult::Commit
        } else {
            TxnResult::Abort
        };
        match b
            .txns
            .end_txn(
                id,
                ProducerId(req.producer_id.0),
                ProducerEpoch(req.producer_epoch),
                result,
            )
            .await
        {
            Ok(()) => 0,
            Err(e) => e.code_for(TxnApi::EndTxn, version),
        }
    };
    EndTxnResponse::default().with_error_code(code)
}
