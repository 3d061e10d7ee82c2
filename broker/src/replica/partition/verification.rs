//! KIP-890's verification guard: the ABA defence between a producer's verification with its
//! transaction coordinator and the append it allows.
//!
//! A leader verifies a producer's first transactional write to this partition with the
//! coordinator (`txn/verify.rs`), which takes a round trip. If the transaction ends in the
//! meantime (its marker lands here), the write that follows belongs to nothing: appended, it
//! would open a transaction no marker will end. So the leader registers a guard for the
//! producer before asking; a marker for the producer removes it; the append checks, under the
//! log lock, that its guard is still the registered one (else INVALID_TXN_STATE) and removes
//! it. A guard dropped without an append (the request failed or its connection closed) is
//! removed too, so the table holds at most one entry per producer verifying right now,
//! and never more than [`MAX_VERIFICATIONS`].

use std::collections::HashMap;
use std::sync::Arc;

use super::Partition;
use crate::error::KafkaError;
use crate::log::{AppendInfo, LogError};
use crate::types::{LeaderEpoch, ProducerId};

/// Most producers verifying in one partition at once; more get NOT_ENOUGH_REPLICAS, which
/// producers retry (a partition with that many new transactions starting at once is being
/// flooded, and the table must not grow with it).
pub const MAX_VERIFICATIONS: usize = 10_000;

/// In-flight verifications: producer id → token of its latest one.
#[derive(Debug, Default)]
pub(super) struct Verifications {
    next_token: u64,
    pub(super) by_producer: HashMap<i64, u64>,
}

/// One registered verification; dropping it unregisters it unless an append or a marker
/// already did.
pub struct VerificationGuard {
    partition: Arc<Partition>,
    producer_id: ProducerId,
    token: u64,
}

impl std::fmt::Debug for VerificationGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationGuard")
            .field("partition", &self.partition.tp)
            .field("producer_id", &self.producer_id)
            .field("token", &self.token)
            .finish()
    }
}

impl Drop for VerificationGuard {
    fn drop(&mut self) {
        let mut v = self.partition.verifications();
        if v.by_producer.get(&self.producer_id.0) == Some(&self.token) {
            v.by_producer.remove(&self.producer_id.0);
        }
    }
}

impl Partition {
    pub(super) fn verifications(&self) -> std::sync::MutexGuard<'_, Verifications> {
        // Plain data, consistent after every statement.
        self.verifications.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a verification of `producer_id`'s first transactional write here; a newer
    /// one of the same producer replaces it.
    pub fn start_verification(
        self: &Arc<Self>,
        producer_id: ProducerId,
    ) -> Result<VerificationGuard, KafkaError> {
        let mut v = self.verifications();
        if v.by_producer.len() >= MAX_VERIFICATIONS && !v.by_producer.contains_key(&producer_id.0) {
            return Err(KafkaError::NotEnoughReplicas(format!(
                "{} has {MAX_VERIFICATIONS} transactions being verified; retry",
                self.tp
            )));
        }
        v.next_token += 1;
        let token = v.next_token;
        v.by_producer.insert(producer_id.0, token);
        Ok(VerificationGuard {
            partition: self.clone(),
            producer_id,
            token,
        })
    }

    /// A marker for `producer_id` was appended (log lock held): its transaction ended, so a
    /// verification made before it no longer holds.
    pub(super) fn end_verification(&self, producer_id: ProducerId) {
        self.verifications().by_producer.remove(&producer_id.0);
    }

    /// Checks `guard` is still registered (log lock held by the caller) and consumes it.
    fn take_guard(&self, guard: &VerificationGuard) -> Result<(), LogError> {
        debug_assert!(std::ptr::eq(self, guard.partition.as_ref()));
        let mut v = self.verifications();
        if v.by_producer.get(&guard.producer_id.0) != Some(&guard.token) {
            return Err(LogError::InvalidTxnState {
                producer_id: guard.producer_id,
            });
        }
        v.by_producer.remove(&guard.producer_id.0);
        Ok(())
    }

    /// [`Partition::append_as_leader`] of a verified producer's first transactional write:
    /// refused with INVALID_TXN_STATE when its transaction ended since `guard` was taken.
    pub fn append_verified(
        &self,
        records: &[u8],
        now_ms: i64,
        guard: &VerificationGuard,
    ) -> Result<(AppendInfo, LeaderEpoch), KafkaError> {
        self.leader_append(|log, epoch| {
            self.take_guard(guard)?;
            log.append_as_leader(records, epoch, now_ms)
        })
    }

    /// [`Partition::append_as_coordinator`] under a verification `guard` (TxnOffsetCommit).
    pub fn append_as_coordinator_verified(
        &self,
        records: &[u8],
        now_ms: i64,
        guard: &VerificationGuard,
    ) -> Result<(AppendInfo, LeaderEpoch), KafkaError> {
        self.leader_append(|log, epoch| {
            self.take_guard(guard)?;
            log.append_as_coordinator(records, epoch, now_ms)
        })
    }
}
