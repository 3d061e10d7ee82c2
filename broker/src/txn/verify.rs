//! KIP-890 part 1, the partition leader's half: before a producer's first transactional batch
//! lands in a partition, the leader asks the transactional id's coordinator whether that
//! partition was added to the producer's ongoing transaction (AddPartitionsToTxn v4 with
//! `verify_only`, or a direct call when this node is the coordinator). A batch the coordinator
//! does not know about would open a transaction no marker ever ends: a *hanging* transaction
//! that holds the partition's last stable offset, and so every read_committed consumer, until
//! an operator aborts it. The produce path also holds a guard from the verification to the
//! append so a marker landing in between (the ABA case) fails the append
//! (`replica::Partition::append_verified`). A partition not in the transaction is answered
//! INVALID_TXN_STATE, or TRANSACTION_ABORTABLE to request versions that know it (Produce v11+,
//! TxnOffsetCommit v4+), which lets a client abort the transaction instead of failing.
//!
//! KIP-890 part 2 (transactions v2: Produce v12+, TxnOffsetCommit v5+) turns the question into
//! an order: the client no longer sends AddPartitionsToTxn, so the leader *adds* the partition
//! (AddPartitionsToTxn v5 with `verify_only` false), which starts the transaction if none is
//! open. That add is always made, whatever `transaction.partition.verification.enable` says,
//! since without it no marker would ever reach the partition. A coordinator busy ending the
//! previous transaction answers CONCURRENT_TRANSACTIONS; the produce path retries that for
//! [`ADD_RETRY_MAX`] (Kafka's `add.partitions.to.txn.retry.backoff.max.ms`) before passing it
//! on, which v2 producers retry themselves.
//!
//! Kafka keeps a verification guard across a marker at the guard's own epoch (the previous
//! transaction's marker under v2). Rill does not need that: EndTxn is answered only once all
//! markers are written, so a v2 producer cannot start its next transaction while a marker of
//! the last one is still on its way; a guard a marker does clear fails the append with
//! INVALID_TXN_STATE rather than opening a transaction no marker ends.

use std::collections::BTreeSet;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use super::store::TRANSACTION_STATE_TOPIC;
use super::TxnCoordinator;
use crate::replica::Partition;
use crate::types::{BrokerId, ProducerEpoch, ProducerId, TopicPartition, TxnVersion};

/// The AddPartitionsToTxn version of a verification (the first with `verify_only`).
pub const VERIFY_VERSION: i16 = 4;
/// The AddPartitionsToTxn version of a transactions-v2 add (the coordinator may answer
/// TRANSACTION_ABORTABLE).
pub const ADD_VERSION: i16 = 5;
/// The first Produce version of transactions v2.
pub const FIRST_V2_PRODUCE: i16 = 12;
/// The first TxnOffsetCommit version of transactions v2.
pub const FIRST_V2_TXN_OFFSET_COMMIT: i16 = 5;
/// Pause before asking again after CONCURRENT_TRANSACTIONS (Kafka's
/// `add.partitions.to.txn.retry.backoff.ms`).
pub const ADD_RETRY_BACKOFF: Duration = Duration::from_millis(20);
/// How long a produce keeps asking after CONCURRENT_TRANSACTIONS (Kafka's
/// `add.partitions.to.txn.retry.backoff.max.ms`).
pub const ADD_RETRY_MAX: Duration = Duration::from_millis(100);

/// What a partition leader asks the coordinator about a producer's first transactional write
/// to a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnCheck {
    /// Transactions v1: is the partition already in the ongoing transaction?
    Verify,
    /// Transactions v2: add it (starting the transaction if none is open).
    Add,
}

impl TxnCheck {
    /// The check a request of `version` needs, `first_v2` being its API's first v2 version.
    pub fn of_request(version: i16, first_v2: i16) -> TxnCheck {
        if TxnVersion::of_request(version, first_v2).supports_epoch_bump() {
            TxnCheck::Add
        } else {
            TxnCheck::Verify
        }
    }
}

/// What a produce is answered when verification fails: the coordinator's code, with Kafka's
/// renaming for producers (`AddPartitionsToTxnManager` / `ReplicaManager`): PRODUCER_FENCED
/// becomes INVALID_PRODUCER_EPOCH, and a coordinator that cannot answer now (moving, loading,
/// ending the transaction) becomes NOT_ENOUGH_REPLICAS, which every producer retries. A
/// transactions-v2 add keeps CONCURRENT_TRANSACTIONS, which v2 producers retry.
pub fn produce_error(code: i16, check: TxnCheck) -> ResponseError {
    use ResponseError as E;
    match E::try_from_code(code) {
        Some(E::ProducerFenced) => E::InvalidProducerEpoch,
        Some(E::ConcurrentTransactions) if check == TxnCheck::Add => E::ConcurrentTransactions,
        Some(
            E::NotCoordinator
            | E::CoordinatorNotAvailable
            | E::CoordinatorLoadInProgress
            | E::ConcurrentTransactions
            | E::NetworkException
            | E::RequestTimedOut,
        ) => E::NotEnoughReplicas,
        Some(e) => e,
        None => E::UnknownServerError,
    }
}

/// The first Produce version that knows TRANSACTION_ABORTABLE (KIP-890 part 1).
pub const FIRST_ABORTABLE_PRODUCE: i16 = 11;
/// The first TxnOffsetCommit version that knows TRANSACTION_ABORTABLE (KIP-890 part 1).
pub const FIRST_ABORTABLE_TXN_OFFSET_COMMIT: i16 = 4;

/// How a failed verification says "this partition is not in your transaction": a request
/// version that knows TRANSACTION_ABORTABLE gets it (the client aborts and carries on), an
/// older one INVALID_TXN_STATE (Kafka's `AddPartitionsToTxnManager` and the coordinator's
/// verify answer). Other errors pass unchanged.
pub fn not_in_transaction(e: ResponseError, abortable_known: bool) -> ResponseError {
    use ResponseError as E;
    match e {
        E::InvalidTxnState | E::TransactionAbortable if abortable_known => E::TransactionAbortable,
        E::TransactionAbortable => E::InvalidTxnState,
        e => e,
    }
}

/// What TxnOffsetCommit is answered when verification fails: PRODUCER_FENCED becomes
/// INVALID_PRODUCER_EPOCH (as for every pre-KIP-588 path), and a coordinator that cannot
/// answer now becomes COORDINATOR_NOT_AVAILABLE, which clients retry after looking the group
/// coordinator up again. A transactions-v2 add follows Kafka's group coordinator
/// (`CoordinatorOperationExceptionHelper`): NETWORK_EXCEPTION becomes
/// COORDINATOR_LOAD_IN_PROGRESS, a timeout COORDINATOR_NOT_AVAILABLE, and the rest (including
/// CONCURRENT_TRANSACTIONS and NOT_COORDINATOR) pass through.
pub fn txn_offset_commit_error(code: i16, check: TxnCheck) -> ResponseError {
    use ResponseError as E;
    if check == TxnCheck::Add {
        return match E::try_from_code(code) {
            Some(E::ProducerFenced) => E::InvalidProducerEpoch,
            Some(E::NetworkException) => E::CoordinatorLoadInProgress,
            Some(E::NotEnoughReplicas | E::RequestTimedOut | E::UnknownTopicOrPartition) => {
                E::CoordinatorNotAvailable
            }
            Some(e) => e,
            None => E::UnknownServerError,
        };
    }
    match produce_error(code, check) {
        E::NotEnoughReplicas => E::CoordinatorNotAvailable,
        e => e,
    }
}

/// The epoch this replica's log knows for `producer_id` when `epoch` is older (KAFKA-18042:
/// such a batch is refused INVALID_PRODUCER_EPOCH at once, without asking the coordinator).
pub fn newer_epoch(
    p: &Partition,
    producer_id: ProducerId,
    epoch: ProducerEpoch,
) -> Option<ProducerEpoch> {
    p.with_log(|l| Ok(l.producer_state(producer_id).map(|s| s.producer_epoch)))
        .ok()
        .flatten()
        .filter(|current| *current > epoch)
}

/// Whether this replica's log has `producer_id`'s transaction open at `epoch`: its later
/// writes need no verification (the first one was verified, and a marker would have ended
/// it).
pub fn has_ongoing(p: &Partition, producer_id: ProducerId, epoch: ProducerEpoch) -> bool {
    p.with_log(|l| {
        Ok(l.producer_state(producer_id)
            .is_some_and(|s| s.current_txn_start_offset.is_some() && s.producer_epoch == epoch))
    })
    .unwrap_or(false)
}

impl TxnCoordinator {
    /// Asks `id`'s coordinator whether `tp` is in the ongoing transaction of `producer_id` at
    /// `epoch` (or has it added, under v2, retrying CONCURRENT_TRANSACTIONS for up to
    /// [`ADD_RETRY_MAX`]). `Err` carries the code to answer the produce with
    /// ([`produce_error`]).
    pub async fn verify_for_produce(
        &self,
        id: &str,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        tp: &TopicPartition,
        check: TxnCheck,
    ) -> Result<(), ResponseError> {
        let deadline = tokio::time::Instant::now() + ADD_RETRY_MAX;
        loop {
            match self.verify_added(id, producer_id, epoch, tp, check).await {
                0 => return Ok(()),
                code if check == TxnCheck::Add
                    && code == ResponseError::ConcurrentTransactions.code()
                    && tokio::time::Instant::now() + ADD_RETRY_BACKOFF <= deadline =>
                {
                    tokio::time::sleep(ADD_RETRY_BACKOFF).await;
                }
                code => return Err(produce_error(code, check)),
            }
        }
    }

    /// Asks `id`'s coordinator whether `tp` is in the ongoing transaction ([`TxnCheck::Verify`])
    /// or to add it ([`TxnCheck::Add`]): the coordinator's code for the partition (0 when it
    /// is in, or was added), unmapped.
    pub async fn verify_added(
        &self,
        id: &str,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        tp: &TopicPartition,
        check: TxnCheck,
    ) -> i16 {
        let image = self.log.image();
        let coordinator = self
            .partition_of(id)
            .and_then(|p| image.partition(TRANSACTION_STATE_TOPIC, p))
            .map(|m| m.leader)
            .filter(|l| l.0 >= 0);
        let Some(coordinator) = coordinator else {
            return ResponseError::CoordinatorNotAvailable.code();
        };
        if coordinator != self.log.node {
            return self
                .verify_remote(coordinator, id, producer_id, epoch, tp, check)
                .await;
        }
        match check {
            TxnCheck::Verify => match self.verify(id, producer_id, epoch, std::slice::from_ref(tp))
            {
                Ok(codes) => codes.first().map_or(0, |(_, c)| *c),
                Err(e) => e.code(),
            },
            TxnCheck::Add => {
                let partitions = BTreeSet::from([tp.clone()]);
                match self
                    .add_partitions(id, producer_id, epoch, &partitions, TxnVersion::TV2)
                    .await
                {
                    Ok(()) => 0,
                    Err(e) => e.code(),
                }
            }
        }
    }

    /// The verification as a request to another node: the partition's code, the top-level
    /// code, or NETWORK_EXCEPTION when the node cannot be asked.
    async fn verify_remote(
        &self,
        coordinator: BrokerId,
        id: &str,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        tp: &TopicPartition,
        check: TxnCheck,
    ) -> i16 {
        let image = self.log.image();
        let Some(addr) = image
            .brokers
            .get(&coordinator)
            .map(|b| format!("{}:{}", b.host, b.port))
        else {
            return ResponseError::CoordinatorNotAvailable.code();
        };
        let req = AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(id.to_string())))
                .with_producer_id(kafka_protocol::messages::ProducerId(producer_id.0))
                .with_producer_epoch(epoch.0)
                .with_verify_only(check == TxnCheck::Verify)
                .with_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(tp.topic.clone())))
                    .with_partitions(vec![tp.partition])]),
        ]);
        let resp = match self
            .log
            .peers
            .send(
                coordinator,
                &addr,
                req,
                Some(match check {
                    TxnCheck::Verify => VERIFY_VERSION,
                    TxnCheck::Add => ADD_VERSION,
                }),
            )
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(coordinator = coordinator.0, error = %e, "transaction verification request failed");
                return ResponseError::NetworkException.code();
            }
        };
        if resp.error_code != 0 {
            return resp.error_code;
        }
        resp.results_by_transaction
            .iter()
            .filter(|r| r.transactional_id.0.as_str() == id)
            .flat_map(|r| r.topic_results.iter())
            .filter(|t| t.name.0.as_str() == tp.topic)
            .flat_map(|t| t.results_by_partition.iter())
            .find(|p| p.partition_index == tp.partition)
            .map_or(ResponseError::UnknownServerError.code(), |p| {
                p.partition_error_code
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_in_the_transaction_is_abortable_only_for_versions_that_know_it() {
        use ResponseError as E;
        assert_eq!(
            not_in_transaction(E::InvalidTxnState, true),
            E::TransactionAbortable
        );
        assert_eq!(
            not_in_transaction(E::TransactionAbortable, true),
            E::TransactionAbortable
        );
        assert_eq!(
            not_in_transaction(E::InvalidTxnState, false),
            E::InvalidTxnState
        );
        assert_eq!(
            not_in_transaction(E::TransactionAbortable, false),
            E::InvalidTxnState
        );
        assert_eq!(
            not_in_transaction(E::InvalidProducerEpoch, true),
            E::InvalidProducerEpoch
        );
        // A v2 add keeps CONCURRENT_TRANSACTIONS; v1 makes it NOT_ENOUGH_REPLICAS.
        assert_eq!(
            produce_error(E::ConcurrentTransactions.code(), TxnCheck::Add),
            E::ConcurrentTransactions
        );
        assert_eq!(
            produce_error(E::ConcurrentTransactions.code(), TxnCheck::Verify),
            E::NotEnoughReplicas
        );
        assert_eq!(
            produce_error(E::ProducerFenced.code(), TxnCheck::Add),
            E::InvalidProducerEpoch
        );
    }
}
