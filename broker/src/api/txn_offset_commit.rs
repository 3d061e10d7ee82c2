//! TxnOffsetCommit (v0-4): a transactional producer's offsets for a consumer group, appended to
//! the group's `__consumer_offsets` partition as part of the producer's transaction and
//! visible to OffsetFetch only once its COMMIT marker is written (`group/txn_offsets.rs`).
//!
//! Kafka's checks (`KafkaApis.handleTxnOffsetCommitRequest`): WRITE on the transactional id,
//! else TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every partition; READ on the group, else
//! GROUP_AUTHORIZATION_FAILED for every partition; READ on each topic, else
//! TOPIC_AUTHORIZATION_FAILED for its partitions. The rest is the coordinator's
//! ([`crate::group::GroupCoordinator::commit_txn`]), answered once the ISR has the records
//! (acks=all, as OffsetCommit). v0-1 clients get COORDINATOR_NOT_AVAILABLE for
//! COORDINATOR_LOAD_IN_PROGRESS (clients before Kafka 2.0 did not handle it, KAFKA-7296).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use crate::context::Broker;
use crate::group::{OffsetToCommit, TxnOffsetCommit};
use crate::metadata::acl::{AclOperation, ResourceType};
use crate::txn::verify::{TxnCheck, FIRST_ABORTABLE_TXN_OFFSET_COMMIT, FIRST_V2_TXN_OFFSET_COMMIT};
use crate::types::{ProducerEpoch, ProducerId};

/// Handles TxnOffsetCommit.
pub async fn handle(
    b: &Broker,
    req: TxnOffsetCommitRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> TxnOffsetCommitResponse {
    let txn_ok = ctx.authz.allowed(
        AclOperation::Write,
        ResourceType::TransactionalId,
        req.transactional_id.0.as_str(),
    );
    if !txn_ok {
        return every_partition(&req, ResponseError::TransactionalIdAuthorizationFailed);
    }
    if !ctx.authz.group(AclOperation::Read, req.group_id.0.as_str()) {
        return every_partition(&req, ResponseError::GroupAuthorizationFailed);
    }
    let topic_ok: Vec<bool> = req
        .topics
        .iter()
        .map(|t| ctx.authz.topic(AclOperation::Read, t.name.0.as_str()))
        .collect();
    let offsets: Vec<OffsetToCommit> = req
        .topics
        .iter()
        .zip(&topic_ok)
        .filter(|(_, ok)| **ok)
        .flat_map(|(t, _)| {
            t.partitions.iter().map(move |p| OffsetToCommit {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let codes: Vec<i16> = if offsets.is_empty() {
        Vec::new()
    } else {
        let commit = TxnOffsetCommit {
            group_id: req.group_id.0.as_str(),
            producer_id: ProducerId(req.producer_id.0),
            producer_epoch: ProducerEpoch(req.producer_epoch),
            member_id: req.member_id.as_str(),
            instance_id: req.group_instance_id.as_ref().map(|s| s.as_str()),
            generation: req.generation_id,
            offsets: &offsets,
            verification: None,
        };
        // KIP-890: the group's offsets partition must be in the producer's transaction
        // (AddOffsetsToTxn), checked with the transaction coordinator unless the producer's
        // transaction is already open in that partition.
        let guard = match verify(b, &req, version).await {
            Ok(g) => g,
            Err(code) => return every_partition(&req, code),
        };
        let commit = TxnOffsetCommit {
            verification: guard.as_ref(),
            ..commit
        };
        match b.groups.commit_txn(&commit) {
            (codes, None) => codes,
            // Answered only once the ISR has the records (acks=all).
            (codes, Some(pending)) => match pending
                .replicated(std::time::Duration::from_millis(
                    b.groups.config.commit_timeout_ms,
                ))
                .await
            {
                Ok(()) => codes,
                Err(e) => codes
                    .into_iter()
                    .map(|c| if c == 0 { e.code() } else { c })
                    .collect(),
            },
        }
    };
    let load = ResponseError::CoordinatorLoadInProgress.code();
    let codes = codes.into_iter().map(|c| {
        if version < 2 && c == load {
            ResponseError::CoordinatorNotAvailable.code()
        } else {
            c
        }
    });
    let mut codes = codes.fuse();
    let topics = req
        .topics
        .into_iter()
        .zip(topic_ok)
        .map(|(t, ok)| {
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    let code = if ok {
                        codes.next().unwrap_or(0)
                    } else {
                        ResponseError::TopicAuthorizationFailed.code()
                    };
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(parts)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// The same error for every partition of the request (Kafka's `getErrorResponse`).
fn every_partition(req: &TxnOffsetCommitRequest, error: ResponseError) -> TxnOffsetCommitResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(error.code())
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// The KIP-890 check of a TxnOffsetCommit (`transaction.partition.verification.enable`):
/// the error when the transaction coordinator does not have the group's `__consumer_offsets`
/// partition in the producer's ongoing transaction, else the guard the append must hold
/// (`None` when no check was needed). From v5 (transactions v2, where the client sends no
/// AddOffsetsToTxn) the coordinator is asked to add the partition, always.
async fn verify(
    b: &Broker,
    req: &TxnOffsetCommitRequest,
    version: i16,
) -> Result<Option<crate::replica::VerificationGuard>, ResponseError> {
    let check = TxnCheck::of_request(version, FIRST_V2_TXN_OFFSET_COMMIT);
    if check == TxnCheck::Verify && !b.config.transactions.partition_verification {
        return Ok(None);
    }
    let group = req.group_id.0.as_str();
    // Without the offsets topic, or its partition here, the coordinator answers the commit.
    let Some(log) = b
        .groups
        .partition_of(group)
        .and_then(|p| b.replicas.get(crate::group::store::OFFSETS_TOPIC, p))
    else {
        return Ok(None);
    };
    let (pid, epoch) = (
        ProducerId(req.producer_id.0),
        ProducerEpoch(req.producer_epoch),
    );
    if crate::txn::verify::has_ongoing(&log, pid, epoch) {
        return Ok(None);
    }
    let guard = log
        .start_verification(pid)
        .map_err(|_| ResponseError::CoordinatorNotAvailable)?;
    match b
        .txns
        .verify_added(req.transactional_id.0.as_str(), pid, epoch, &log.tp, check)
        .await
    {
        0 => Ok(Some(guard)),
        code => {
            let e = crate::txn::verify::txn_offset_commit_error(code, check);
            Err(if check == TxnCheck::Verify {
                crate::txn::verify::not_in_transaction(
                    e,
                    version >= FIRST_ABORTABLE_TXN_OFFSET_COMMIT,
                )
            } else {
                e
            })
        }
    }
}
