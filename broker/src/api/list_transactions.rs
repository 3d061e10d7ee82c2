//! ListTransactions (KIP-664; v1 adds KIP-994's duration filter): the transactional ids this
//! node coordinates, filtered by state, producer id and how long their transaction has run.
//! Clients send it to every broker and merge the answers (each lists only its own ids).

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};

use super::sb;
use crate::context::Broker;
use crate::metadata::acl::{AclOperation, ResourceType};
use crate::txn::state::TxnState;

/// Handles ListTransactions.
pub async fn handle(
    b: &Broker,
    req: ListTransactionsRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> ListTransactionsResponse {
    // Names are Kafka's exactly ("Ongoing", not "ongoing"); unknown ones are echoed back and
    // match nothing, as Kafka does.
    let mut states = BTreeSet::new();
    let mut unknown = Vec::new();
    for name in &req.state_filters {
        match TxnState::ALL
            .into_iter()
            .find(|s| s.name() == name.as_str())
        {
            Some(s) => {
                states.insert(s);
            }
            None => unknown.push(name.clone()),
        }
    }
    let out = ListTransactionsResponse::default().with_unknown_state_filters(unknown.clone());
    // Some state filters given and none known: nothing can match.
    if !req.state_filters.is_empty() && states.is_empty() {
        return out;
    }
    // While a partition loads its ids are missing from the list: Kafka answers
    // COORDINATOR_LOAD_IN_PROGRESS rather than an incomplete list.
    if b.txns.loading() {
        return out.with_error_code(ResponseError::CoordinatorLoadInProgress.code());
    }
    let producers: BTreeSet<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
    let now = crate::time::now_ms();
    let mut listed: Vec<_> = b
        .txns
        .transactions()
        .into_iter()
        .map(|d| d.metadata)
        .filter(|m| m.state != TxnState::Dead)
        .filter(|m| states.is_empty() || states.contains(&m.state))
        .filter(|m| producers.is_empty() || producers.contains(&m.producer_id.0))
        // KIP-994: only transactions running for longer than the filter. An id with no
        // transaction started has run for no time at all, so it never passes a filter.
        .filter(|m| {
            req.duration_filter < 0
                || (m.txn_start_ms >= 0 && now.saturating_sub(m.txn_start_ms) > req.duration_filter)
        })
        .filter(|m| {
            ctx.authz.allowed(
                AclOperation::Describe,
                ResourceType::TransactionalId,
                &m.transactional_id,
            )
        })
        .collect();
    listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    out.with_transaction_states(
        listed
            .into_iter()
            .map(|m| {
                TransactionState::default()
                    .with_transaction_state(sb(m.state.name()))
                    .with_producer_id(ProducerId(m.producer_id.0))
                    .with_transactional_id(TransactionalId(sb(m.transactional_id)))
            })
            .collect(),
    )
}
