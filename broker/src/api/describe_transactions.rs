//! DescribeTransactions (KIP-664): the coordinator's view of transactional ids — state,
//! producer, timeout, start time and the partitions of the open transaction.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};

use super::sb;
use crate::context::Broker;
use crate::metadata::acl::{AclOperation, ResourceType};

/// Handles DescribeTransactions: one answer per id asked, in request order.
pub async fn handle(
    b: &Broker,
    req: DescribeTransactionsRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> DescribeTransactionsResponse {
    let states = req
        .transactional_ids
        .into_iter()
        .map(|id| {
            let name = id.0.to_string();
            let out = TransactionState::default()
                .with_transactional_id(id)
                .with_transaction_state(sb(""))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
                .with_transaction_start_time_ms(-1);
            if !ctx
                .authz
                .allowed(AclOperation::Describe, ResourceType::TransactionalId, &name)
            {
                return out
                    .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
            }
            match b.txns.describe(&name) {
                Err(e) => out.with_error_code(e.code()),
                Ok(d) => {
                    let m = d.metadata;
                    // As Kafka: the partitions of topics the caller may not describe are left
                    // out rather than failing the whole id.
                    let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                    for tp in &m.topic_partitions {
                        if ctx.authz.topic(AclOperation::Describe, &tp.topic) {
                            topics
                                .entry(tp.topic.to_string())
                                .or_default()
                                .push(tp.partition);
                        }
                    }
                    out.with_transaction_state(sb(m.state.name()))
                        .with_transaction_timeout_ms(m.txn_timeout_ms)
                        .with_transaction_start_time_ms(m.txn_start_ms)
                        .with_producer_id(ProducerId(m.producer_id.0))
                        .with_producer_epoch(m.producer_epoch.0)
                        .with_topics(
                            topics
                                .into_iter()
                                .map(|(t, partitions)| {
                                    TopicData::default()
                                        .with_topic(TopicName(sb(t)))
                                        .with_partitions(partitions)
                                })
                                .collect(),
                        )
                }
            }
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
