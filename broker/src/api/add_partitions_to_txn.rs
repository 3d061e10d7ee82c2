//! AddPartitionsToTxn (v0-3, the client's form): adds partitions to a producer's open
//! transaction (starting it), so the coordinator knows where its markers must go. Every
//! partition gets the same answer: the coordinator's, or, when some partition is refused
//! before the coordinator is asked, that partition's reason (unknown partition, no WRITE on
//! the topic) and OPERATION_NOT_ATTEMPTED for the rest, with no state change (Kafka's
//! `KafkaApis.handleAddPartitionsToTxnRequest`).
//!
//! v4+ is the broker-to-broker form (KIP-890), for many transactions at once; only brokers may
//! send it (CLUSTER_ACTION): a partition leader asks whether partitions are in a producer's
//! ongoing transaction (`verify_only`, transactions v1), or adds the partitions a
//! transactions-v2 producer writes to (`verify_only` false), starting its transaction. A
//! partition unknown here fails that transaction's adds (UNKNOWN_TOPIC_OR_PARTITION, the
//! others OPERATION_NOT_ATTEMPTED), and one coordinator error answers every partition of it.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use crate::context::Broker;
use crate::metadata::acl::{AclOperation, ResourceType};
use crate::txn::state::{TxnApi, TxnVersion};
use crate::types::{ProducerEpoch, ProducerId, TopicPartition};

/// Handles AddPartitionsToTxn.
pub async fn handle(
    b: &Broker,
    req: AddPartitionsToTxnRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> AddPartitionsToTxnResponse {
    if version >= 4 {
        return from_broker(b, req, version, ctx).await;
    }
    let id = req.v3_and_below_transactional_id.0.as_str();
    let requested: Vec<TopicPartition> = req
        .v3_and_below_topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| TopicPartition::new(t.name.0.as_str(), *p))
        })
        .collect();
    let code_all = |code: i16| -> Vec<(TopicPartition, i16)> {
        requested.iter().map(|tp| (tp.clone(), code)).collect()
    };
    if !ctx
        .authz
        .allowed(AclOperation::Write, ResourceType::TransactionalId, id)
    {
        return respond(code_all(
            ResponseError::TransactionalIdAuthorizationFailed.code(),
        ));
    }
    // Checked before the coordinator is asked: a refused partition leaves the transaction
    // as it was.
    let image = b.controller.image();
    let refused: Vec<(TopicPartition, i16)> = requested
        .iter()
        .filter_map(|tp| {
            if !ctx.authz.topic(AclOperation::Write, &tp.topic) {
                Some((tp.clone(), ResponseError::TopicAuthorizationFailed.code()))
            } else if image.partition(&tp.topic, tp.partition).is_none() {
                Some((tp.clone(), ResponseError::UnknownTopicOrPartition.code()))
            } else {
                None
            }
        })
        .collect();
    if !refused.is_empty() {
        let mut out = refused.clone();
        for tp in &requested {
            if !refused.iter().any(|(r, _)| r == tp) {
                out.push((tp.clone(), ResponseError::OperationNotAttempted.code()));
            }
        }
        return respond(out);
    }
    let partitions: BTreeSet<TopicPartition> = requested.iter().cloned().collect();
    let code = match b
        .txns
        .add_partitions(
            id,
            ProducerId(req.v3_and_below_producer_id.0),
            ProducerEpoch(req.v3_and_below_producer_epoch),
            &partitions,
            TxnVersion::TV0,
        )
        .await
    {
        Ok(()) => 0,
        Err(e) => e.code_for(TxnApi::AddPartitionsToTxn, version),
    };
    respond(code_all(code))
}

/// The v0-3 response: results by topic, in request order.
fn respond(results: Vec<(TopicPartition, i16)>) -> AddPartitionsToTxnResponse {
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for (tp, code) in results {
        let r = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(tp.partition)
            .with_partition_error_code(code);
        match topics.iter_mut().find(|t| t.name.0.as_str() == tp.topic) {
            Some(t) => t.results_by_partition.push(r),
            None => topics.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(kafka_protocol::messages::TopicName(super::sb(tp.topic)))
                    .with_results_by_partition(vec![r]),
            ),
        }
    }
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics)
}

/// The v4+ broker form: each transaction's partitions verified against, or added to, its
/// coordinator state.
async fn from_broker(
    b: &Broker,
    req: AddPartitionsToTxnRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> AddPartitionsToTxnResponse {
    if !ctx.authz.cluster(AclOperation::ClusterAction) {
        return AddPartitionsToTxnResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let image = b.controller.image();
    let mut results = Vec::with_capacity(req.transactions.len());
    for t in req.transactions {
        let id = t.transactional_id.0.as_str();
        let tps: Vec<TopicPartition> = t
            .topics
            .iter()
            .flat_map(|topic| {
                topic
                    .partitions
                    .iter()
                    .map(|p| TopicPartition::new(topic.name.0.as_str(), *p))
            })
            .collect();
        let unknown: std::collections::HashSet<&TopicPartition> = tps
            .iter()
            .filter(|tp| image.partition(&tp.topic, tp.partition).is_none())
            .collect();
        let codes = if !t.verify_only && !unknown.is_empty() {
            tps.iter()
                .map(|tp| {
                    let code = if unknown.contains(tp) {
                        ResponseError::UnknownTopicOrPartition
                    } else {
                        ResponseError::OperationNotAttempted
                    };
                    (tp.clone(), code.code())
                })
                .collect()
        } else if !t.verify_only {
            let partitions: BTreeSet<TopicPartition> = tps.iter().cloned().collect();
            let code = match b
                .txns
                .add_partitions(
                    id,
                    ProducerId(t.producer_id.0),
                    ProducerEpoch(t.producer_epoch),
                    &partitions,
                    TxnVersion::TV2,
                )
                .await
            {
                Ok(()) => 0,
                Err(e) => e.code(),
            };
            tps.iter().map(|tp| (tp.clone(), code)).collect()
        } else {
            match b.txns.verify(
                id,
                ProducerId(t.producer_id.0),
                ProducerEpoch(t.producer_epoch),
                &tps,
            ) {
                // v5 knows TRANSACTION_ABORTABLE for a partition not in the transaction.
                Ok(codes) => codes
                    .into_iter()
                    .map(|(tp, code)| {
                        let e = ResponseError::try_from_code(code)
                            .map(|e| crate::txn::verify::not_in_transaction(e, version >= 5));
                        (tp, e.map_or(code, |e| e.code()))
                    })
                    .collect(),
                Err(e) => tps.iter().map(|tp| (tp.clone(), e.code())).collect(),
            }
        };
        results.push(
            kafka_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id)
                .with_topic_results(respond(codes).results_by_topic_v3_and_below),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}
