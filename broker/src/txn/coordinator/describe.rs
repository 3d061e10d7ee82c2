//! What the coordinator tells without changing anything: the ids it holds (ListTransactions,
//! DescribeTransactions, the console, metrics) and KIP-890's verification of a partition.

use kafka_protocol::error::ResponseError;

use super::{TxnCoordinator, TxnDescription};
use crate::txn::state::{self, TxnError, TxnState};
use crate::types::{ProducerEpoch, ProducerId, TopicPartition};

impl TxnCoordinator {
    /// The ids this node coordinates, with their partitions (ListTransactions,
    /// DescribeTransactions, the console).
    pub fn transactions(&self) -> Vec<TxnDescription> {
        let state = self.lock();
        state
            .loaded
            .iter()
            .flat_map(|(i, p)| {
                p.ids.values().map(|m| TxnDescription {
                    metadata: m.clone(),
                    partition: *i,
                })
            })
            .collect()
    }

    /// KIP-890 verification, the coordinator's half (AddPartitionsToTxn v4 `verify_only`, or
    /// a produce on this node): for each of `partitions`, NONE when it is in `id`'s ongoing
    /// transaction of this producer, INVALID_TXN_STATE when not. The whole request fails as
    /// the other calls do: INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED,
    /// CONCURRENT_TRANSACTIONS while the transaction is ending, NOT_COORDINATOR, ...
    pub fn verify(
        &self,
        id: &str,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, i16)>, TxnError> {
        if id.is_empty() {
            return Err(TxnError::InvalidRequest);
        }
        let o = self.owner(id)?;
        self.locked(&o, |p| {
            let m = state::lookup(id, p.ids.get_mut(id))?;
            if m.producer_id != producer_id {
                return Err(TxnError::InvalidProducerIdMapping);
            }
            if m.producer_epoch != epoch {
                return Err(TxnError::ProducerFenced);
            }
            if m.pending().is_some()
                || matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort)
            {
                return Err(TxnError::ConcurrentTransactions);
            }
            let ongoing = m.state == TxnState::Ongoing;
            Ok(partitions
                .iter()
                .map(|tp| {
                    let code = if ongoing && m.topic_partitions.contains(tp) {
                        0
                    } else {
                        ResponseError::InvalidTxnState.code()
                    };
                    (tp.clone(), code)
                })
                .collect())
        })?
    }

    /// One id, if this node coordinates it (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS
    /// otherwise; TRANSACTIONAL_ID_NOT_FOUND when it coordinates but does not know it).
    pub fn describe(&self, id: &str) -> Result<TxnDescription, TxnError> {
        let o = self.owner(id)?;
        self.locked(&o, |p| {
            p.ids
                .get(id)
                .map(|m| TxnDescription {
                    metadata: m.clone(),
                    partition: o.partition,
                })
                .ok_or(TxnError::Other(ResponseError::TransactionalIdNotFound))
        })?
    }

    /// True while any `__transaction_state` partition this node leads is still being
    /// replayed: its ids are missing from [`Self::transactions`] meanwhile (ListTransactions
    /// answers COORDINATOR_LOAD_IN_PROGRESS rather than an incomplete list).
    pub fn loading(&self) -> bool {
        !self.lock().loading.is_empty()
    }
}
