//! EndTxn: commits or aborts a producer's open transaction. Answered once every partition of
//! the transaction has its marker (see `txn/coordinator.rs` for why not earlier). From v5
//! (transactions v2, KIP-890 part 2) every end bumps the producer epoch and the answer
//! carries the producer id and epoch to go on with; every error answers -1/-1.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use crate::context::Broker;
use crate::metadata::acl::{AclOperation, ResourceType};
use crate::txn::state::{TxnApi, TxnResult, TxnVersion};
use crate::types::{ProducerEpoch, ProducerId};

/// The first EndTxn version of transactions v2.
pub const FIRST_V2_VERSION: i16 = 5;

/// Handles EndTxn.
pub async fn handle(
    b: &Broker,
    req: EndTxnRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> EndTxnResponse {
    let id = req.transactional_id.0.as_str();
    let mut next = (ProducerId(-1), ProducerEpoch(-1));
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
                TxnVersion::of_request(version, FIRST_V2_VERSION),
            )
            .await
        {
            Ok(producer) => {
                if version >= FIRST_V2_VERSION {
                    next = producer;
                }
                0
            }
            Err(e) => e.code_for(TxnApi::EndTxn, version),
        }
    };
    EndTxnResponse::default()
        .with_error_code(code)
        .with_producer_id(kafka_protocol::messages::ProducerId(next.0 .0))
        .with_producer_epoch(next.1 .0)
}
