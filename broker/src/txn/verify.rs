//! KIP-890 part 1, the partition leader's half: before a producer's first transactional batch
//! lands in a partition, the leader asks the transactional id's coordinator whether that
//! partition was added to the producer's ongoing transaction (AddPartitionsToTxn v4 with
//! `verify_only`, or a direct call when this node is the coordinator). A batch the coordinator
//! does not know about would open a transaction no marker ever ends: a *hanging* transaction
//! that holds the partition's last stable offset, and so every read_committed consumer, until
//! an operator aborts it. The produce path also holds a guard from the verification to the
//! append so a marker landing in between (the ABA case) fails the append
//! (`replica::Partition::append_verified`).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use super::store::TRANSACTION_STATE_TOPIC;
use super::TxnCoordinator;
use crate::replica::Partition;
use crate::types::{BrokerId, ProducerEpoch, ProducerId, TopicPartition};

/// The AddPartitionsToTxn version of a verification (the first with `verify_only`).
pub const VERIFY_VERSION: i16 = 4;

/// What a produce is answered when verification fails: the coordinator's code, with Kafka's
/// renaming for producers (`AddPartitionsToTxnManager` / `ReplicaManager`): PRODUCER_FENCED
/// becomes INVALID_PRODUCER_EPOCH, and a coordinator that cannot answer now (moving, loading,
/// ending the transaction) becomes NOT_ENOUGH_REPLICAS, which every producer retries.
pub fn produce_error(code: i16) -> ResponseError {
    use ResponseError as E;
    match E::try_from_code(code) {
        Some(E::ProducerFenced) => E::InvalidProducerEpoch,
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

/// What TxnOffsetCommit is answered when verification fails: PRODUCER_FENCED becomes
/// INVALID_PRODUCER_EPOCH (as for every pre-KIP-588 path), and a coordinator that cannot
/// answer now becomes COORDINATOR_NOT_AVAILABLE, which clients retry after looking the group
/// coordinator up again.
pub fn txn_offset_commit_error(code: i16) -> ResponseError {
    use ResponseError as E;
    match produce_error(code) {
        E::NotEnoughReplicas => E::CoordinatorNotAvailable,
        e => e,
    }
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
    /// `epoch`. `Err` carries the code to answer the produce with ([`produce_error`]).
    pub async fn verify_for_produce(
        &self,
        id: &str,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        tp: &TopicPartition,
    ) -> Result<(), ResponseError> {
        match self.verify_added(id, producer_id, epoch, tp).await {
            0 => Ok(()),
            code => Err(produce_error(code)),
        }
    }

    /// Asks `id`'s coordinator whether `tp` is in the ongoing transaction: the coordinator's
    /// code for the partition (0 when it is), unmapped.
    pub async fn verify_added(
        &self,
        id: &str,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        tp: &TopicPartition,
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
        if coordinator == self.log.node {
            match self.verify(id, producer_id, epoch, std::slice::from_ref(tp)) {
                Ok(codes) => codes.first().map_or(0, |(_, c)| *c),
                Err(e) => e.code(),
            }
        } else {
            self.verify_remote(coordinator, id, producer_id, epoch, tp)
                .await
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
                .with_verify_only(true)
                .with_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(tp.topic.clone())))
                    .with_partitions(vec![tp.partition])]),
        ]);
        let resp = match self
            .log
            .peers
            .send(coordinator, &addr, req, Some(VERIFY_VERSION))
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
