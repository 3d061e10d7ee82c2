//! Ending a transaction: EndTxn for transactions v1 and v2 (KIP-890 part 2's epoch bump per
//! transaction and hand-over to a new producer id), the coordinator's own aborts (a fence by a
//! new producer instance, the timeout), and the Complete record after the markers. Part of
//! [`TxnMetadata`]'s transitions; the shared machinery (`prepare_transition`, `complete`) is in
//! the parent module.

use std::collections::BTreeSet;

use super::{
    illegal, is_epoch_exhausted, Transit, TxnError, TxnMetadata, TxnResult, TxnState, TxnVersion,
    EXHAUSTED_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};
use crate::types::{ProducerEpoch, ProducerId, TopicPartition};

impl TxnMetadata {
    /// Fences the current producer of an open transaction and prepares its abort (Kafka's
    /// `prepareFenceProducerEpoch` followed by `endTransaction(ABORT, isFromClient = false)`):
    /// the epoch is bumped in memory now (not again if the last fence failed to be written),
    /// so the old producer's next request is PRODUCER_FENCED, and the returned PrepareAbort
    /// carries it.
    ///
    /// Kafka takes the id's lock twice, leaving PrepareEpochFence pending in between, and
    /// a client EndTxn(ABORT) landing there is let through with the *old* epoch. Here both
    /// steps happen under the caller's one lock, so that window does not exist and
    /// PrepareEpochFence is never left pending.
    pub(super) fn prepare_fence_and_abort(&mut self, now_ms: i64) -> Result<Transit, TxnError> {
        if self.client_txn_version.supports_epoch_bump() {
            return self.prepare_v2_fence_abort(now_ms);
        }
        if self.producer_epoch.0 == i16::MAX {
            return Err(illegal(format!(
                "cannot fence {} at epoch {}: it would overflow",
                self.transactional_id, self.producer_epoch
            )));
        }
        let bumped = if self.has_failed_epoch_fence {
            self.producer_epoch
        } else {
            ProducerEpoch(self.producer_epoch.0 + 1)
        };
        // The PrepareEpochFence step: validated like any transition, never written.
        self.prepare_transition(
            TxnState::PrepareEpochFence,
            self.producer_id,
            bumped,
            NO_PRODUCER_EPOCH,
            self.txn_timeout_ms,
            self.topic_partitions.clone(),
            self.txn_start_ms,
            self.last_update_ms,
        )?;
        // endTransaction with isFromClient = false clears it and takes the bumped epoch.
        self.pending = None;
        debug_assert!(
            bumped >= self.producer_epoch,
            "a fence never lowers the epoch"
        );
        self.producer_epoch = bumped;
        self.last_producer_epoch = NO_PRODUCER_EPOCH;
        let mut t = self.prepare_end(TxnState::PrepareAbort, now_ms)?;
        t.epoch_fence = true;
        Ok(t)
    }

    /// The fence of a transactions-v2 transaction (Kafka 4.1's coordinator-initiated abort
    /// under TV_2): the bump is the abort's own, written with its PrepareAbort (epoch e+1,
    /// last epoch e), and nothing changes in memory before that record is written. A failed
    /// append therefore leaves the producer as it was: it can still end its transaction itself,
    /// where a bump kept in memory would answer it PRODUCER_FENCED, which v2 clients treat as
    /// fatal.
    fn prepare_v2_fence_abort(&mut self, now_ms: i64) -> Result<Transit, TxnError> {
        if self.producer_epoch.0 == i16::MAX {
            return Err(illegal(format!(
                "cannot fence {} at epoch {}: it would overflow",
                self.transactional_id, self.producer_epoch
            )));
        }
        let mut t = self.prepare_transition(
            TxnState::PrepareAbort,
            self.producer_id,
            ProducerEpoch(self.producer_epoch.0 + 1),
            self.producer_epoch,
            self.txn_timeout_ms,
            self.topic_partitions.clone(),
            self.txn_start_ms,
            now_ms,
        )?;
        t.client_txn_version = TxnVersion::TV2;
        Ok(t)
    }

    fn prepare_end(&mut self, state: TxnState, now_ms: i64) -> Result<Transit, TxnError> {
        self.prepare_transition(
            state,
            self.producer_id,
            self.producer_epoch,
            self.last_producer_epoch,
            self.txn_timeout_ms,
            self.topic_partitions.clone(),
            self.txn_start_ms,
            now_ms,
        )
    }

    /// EndTxn from a client (Kafka's `endTransaction` with `isFromClient = true`).
    /// `Ok(Some(t))`: append the PrepareCommit/PrepareAbort `t`, then
    /// [`TxnMetadata::prepare_complete`] and the markers. `Ok(None)`: the retry of an EndTxn
    /// that already completed, answer NONE.
    pub fn prepare_end_txn(
        &mut self,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        result: TxnResult,
        now_ms: i64,
    ) -> Result<Option<Transit>, TxnError> {
        self.check_producer(producer_id, epoch)?;
        if self
            .pending
            .is_some_and(|p| p != TxnState::PrepareEpochFence)
        {
            return Err(TxnError::ConcurrentTransactions);
        }
        use TxnResult::*;
        match (self.state, result) {
            (TxnState::Ongoing, Commit) => {
                self.prepare_end(TxnState::PrepareCommit, now_ms).map(Some)
            }
            (TxnState::Ongoing, Abort) => {
                self.prepare_end(TxnState::PrepareAbort, now_ms).map(Some)
            }
            // Retries: of a finished EndTxn (its answer was lost), of one still writing markers.
            (TxnState::CompleteCommit, Commit) | (TxnState::CompleteAbort, Abort) => Ok(None),
            (TxnState::PrepareCommit, Commit) | (TxnState::PrepareAbort, Abort) => {
                Err(TxnError::ConcurrentTransactions)
            }
            (TxnState::Empty, _)
            | (TxnState::CompleteCommit, Abort)
            | (TxnState::CompleteAbort, Commit)
            | (TxnState::PrepareCommit, Abort)
            | (TxnState::PrepareAbort, Commit) => Err(TxnError::InvalidTxnState),
            (TxnState::Dead | TxnState::PrepareEpochFence, _) => Err(illegal(format!(
                "{} found in state {}",
                self.transactional_id, self.state
            ))),
        }
    }

    /// EndTxn v5+ (transactions v2, Kafka 4.1's `endTransaction` for TV_2 with
    /// `isFromClient = true`): every commit or abort bumps the producer epoch, so the markers
    /// (written at the new epoch) fence any late write of the transaction they end, and the
    /// answer hands the client its next epoch. When the epochs ran out (`e >= 32766`), the
    /// Prepare record names a new producer id (`allocate`, called only then) which the
    /// Complete record switches to at epoch 0.
    ///
    /// `Ok(Some(t))`: append the Prepare `t` (a commit or abort of the open transaction, or an
    /// "empty abort" when none is open, which only bumps the epoch). `Ok(None)`: the retry of
    /// an end that was written (the request carries the epoch before its bump): answer NONE
    /// with the id's current producer id and epoch.
    pub fn prepare_end_txn_v2(
        &mut self,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        result: TxnResult,
        allocate: impl FnOnce() -> Result<ProducerId, TxnError>,
        now_ms: i64,
    ) -> Result<Option<Transit>, TxnError> {
        if self
            .pending
            .is_some_and(|p| p != TxnState::PrepareEpochFence)
        {
            return Err(TxnError::ConcurrentTransactions);
        }
        let current = i32::from(self.producer_epoch.0);
        let asked = i32::from(epoch.0);
        // The answer of an end whose epochs ran out was lost: the client still has the old id.
        let retry_on_overflow = self.last_producer_id == producer_id
            && producer_id != self.producer_id
            && epoch.0 == EXHAUSTED_EPOCH
            && self.producer_epoch.0 == 0;
        // The answer of an end was lost: the client still has the epoch before its bump.
        let retry_on_bump = current == asked + 1;
        let is_retry = retry_on_bump || retry_on_overflow;
        let valid_epoch = match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => retry_on_bump,
            TxnState::CompleteCommit | TxnState::CompleteAbort => is_retry || current == asked,
            _ => current == asked,
        };
        if producer_id != self.producer_id && !retry_on_overflow {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if !valid_epoch {
            return Err(TxnError::ProducerFenced);
        }
        use TxnResult::*;
        let state = match (self.state, result) {
            (TxnState::Ongoing, Commit) => TxnState::PrepareCommit,
            (TxnState::Ongoing, Abort) => TxnState::PrepareAbort,
            (TxnState::PrepareCommit, Commit) | (TxnState::PrepareAbort, Abort) => {
                return Err(TxnError::ConcurrentTransactions)
            }
            (TxnState::PrepareCommit, Abort) | (TxnState::PrepareAbort, Commit) => {
                return Err(TxnError::InvalidTxnState)
            }
            (TxnState::CompleteCommit, Commit) | (TxnState::CompleteAbort, Abort) if is_retry => {
                return Ok(None)
            }
            (TxnState::CompleteCommit, Abort) if is_retry => return Err(TxnError::InvalidTxnState),
            // Nothing open: an abort still bumps the epoch (the client may have written
            // somewhere its coordinator never heard of; the bump fences that).
            (TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort, Abort) => {
                TxnState::PrepareAbort
            }
            (TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort, Commit) => {
                return Err(TxnError::InvalidTxnState)
            }
            (TxnState::Dead | TxnState::PrepareEpochFence, _) => {
                return Err(illegal(format!(
                    "{} found in state {}",
                    self.transactional_id, self.state
                )))
            }
        };
        let next_producer_id = if is_epoch_exhausted(self.producer_epoch) {
            allocate()?
        } else {
            NO_PRODUCER_ID
        };
        // i16::MAX (only after a fence at 32766) cannot be bumped: the markers reuse it, and
        // the new producer id takes over.
        let bumped = ProducerEpoch(self.producer_epoch.0.saturating_add(1));
        let start = if self.state == TxnState::Ongoing {
            self.txn_start_ms
        } else {
            now_ms
        };
        let mut t = self.prepare_transition(
            state,
            self.producer_id,
            bumped,
            self.producer_epoch,
            self.txn_timeout_ms,
            self.topic_partitions.clone(),
            start,
            now_ms,
        )?;
        t.next_producer_id = next_producer_id;
        t.client_txn_version = TxnVersion::TV2;
        Ok(Some(t))
    }

    /// After the Prepare record of an EndTxn (or a fence) is written: re-checks the producer
    /// and state under the lock, as Kafka's append callback does, and prepares the Complete
    /// record (pending until every marker is written; partitions cleared, start kept). The
    /// answer NONE goes to the client now. A coordinator that loads an id in a Prepare state
    /// calls this with the id's own producer and the matching result.
    pub fn prepare_complete(
        &mut self,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        result: TxnResult,
        now_ms: i64,
    ) -> Result<Transit, TxnError> {
        self.check_producer(producer_id, epoch)?;
        if self.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        let state = match (self.state, result) {
            (TxnState::PrepareCommit, TxnResult::Commit) => TxnState::CompleteCommit,
            (TxnState::PrepareAbort, TxnResult::Abort) => TxnState::CompleteAbort,
            (TxnState::Dead | TxnState::PrepareEpochFence, _) => {
                return Err(illegal(format!(
                    "{} found in state {}",
                    self.transactional_id, self.state
                )))
            }
            _ => return Err(TxnError::InvalidTxnState),
        };
        // The Prepare record is written, so a fence that failed before is now in the log.
        self.has_failed_epoch_fence = false;
        // A transactions-v2 end whose epochs ran out completes on the next producer id.
        let (pid, next_epoch) = if self.next_producer_id != NO_PRODUCER_ID {
            (self.next_producer_id, ProducerEpoch(0))
        } else {
            (self.producer_id, self.producer_epoch)
        };
        self.prepare_transition(
            state,
            pid,
            next_epoch,
            self.last_producer_epoch,
            self.txn_timeout_ms,
            BTreeSet::new(),
            self.txn_start_ms,
            now_ms,
        )
    }

    /// A marker for `tp` is written (or `tp` is gone): it no longer waits for one. Only legal
    /// while the markers of a Prepare state are written; when none are left the Complete
    /// record is appended.
    pub fn remove_partition(&mut self, tp: &TopicPartition) -> Result<(), TxnError> {
        if !matches!(self.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(illegal(format!(
                "marker done for {tp} of {} in state {}",
                self.transactional_id, self.state
            )));
        }
        self.topic_partitions.remove(tp);
        Ok(())
    }

    /// The timeout task's abort of an open transaction found by [`timed_out`] with
    /// `producer_id`: the producer is fenced (epoch bumped) and the abort prepared, as for
    /// InitProducerId over an open transaction. Another producer id, a pending transition or
    /// a transaction no longer open means the work is moot: skip it.
    pub fn prepare_timeout_abort(
        &mut self,
        producer_id: ProducerId,
        now_ms: i64,
    ) -> Result<Transit, TxnError> {
        if producer_id != self.producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if self.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        if self.state != TxnState::Ongoing {
            return Err(TxnError::InvalidTxnState);
        }
        self.prepare_fence_and_abort(now_ms)
    }
}
