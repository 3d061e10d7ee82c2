//! One transactional id's coordinator state and its transitions (Kafka 3.x's
//! `TransactionMetadata` and the decisions of `TransactionCoordinator`), as pure logic over an
//! explicit `now_ms`.
//!
//! Every change is two-step, as in Kafka: a `prepare_*` function validates the request against
//! the metadata, marks the target state *pending* and returns the [`Transit`] (the record to
//! append to `__transaction_state`); once that append is replicated the coordinator calls
//! [`TxnMetadata::complete`], or [`TxnMetadata::abort_pending`] when it failed. While a
//! transition is pending every other request for the id answers CONCURRENT_TRANSACTIONS, so
//! the in-memory state never runs ahead of the log except in the one place Kafka lets it (the
//! epoch bump of a fence, see [`TxnMetadata::prepare_timeout_abort`]).
//!
//! Nothing here allocates producer ids, appends, sends markers or reads a clock: the caller
//! passes the allocator and the time, so each decision is a table row a test can check.

use std::collections::BTreeSet;

use crate::group::store::{partition_for as offsets_partition_for, OFFSETS_TOPIC};
use crate::types::{ProducerEpoch, ProducerId, TopicPartition};

/// No producer id (Kafka's `RecordBatch.NO_PRODUCER_ID`).
pub const NO_PRODUCER_ID: ProducerId = ProducerId(-1);
/// No producer epoch (Kafka's `RecordBatch.NO_PRODUCER_EPOCH`): a freshly created id, or no
/// last epoch to remember.
pub const NO_PRODUCER_EPOCH: ProducerEpoch = ProducerEpoch(-1);
/// The transaction start time of an id with no transaction open.
pub const NO_TIMESTAMP: i64 = -1;
/// The first epoch Kafka calls exhausted (`Short.MaxValue - 1`): a producer is never handed an
/// epoch above it, so the coordinator can always fence it with one more bump.
pub const EXHAUSTED_EPOCH: i16 = i16::MAX - 1;

/// Whether a producer id has run out of epochs (Kafka's `isEpochExhausted`): the next
/// InitProducerId hands out a new producer id at epoch 0 instead of bumping.
pub fn is_epoch_exhausted(epoch: ProducerEpoch) -> bool {
    epoch.0 >= EXHAUSTED_EPOCH
}

pub(crate) use super::error::illegal;
pub use super::error::{TxnApi, TxnError};
pub use super::status::{TxnResult, TxnState, TxnVersion};

/// The first checks of InitProducerId with a transactional id, before any metadata is looked
/// up or created: an empty id is INVALID_REQUEST, a timeout outside `1..=max_timeout_ms`
/// (`transaction.max.timeout.ms`) INVALID_TRANSACTION_TIMEOUT.
pub fn validate_init(
    transactional_id: &str,
    timeout_ms: i32,
    max_timeout_ms: i32,
) -> Result<(), TxnError> {
    if transactional_id.is_empty() {
        return Err(TxnError::InvalidRequest);
    }
    if timeout_ms <= 0 || timeout_ms > max_timeout_ms {
        return Err(TxnError::InvalidTransactionTimeout);
    }
    Ok(())
}

/// The producer an InitProducerId v3+ request presents (`ProducerId`, `ProducerEpoch`, both -1
/// by default): `None` when both are -1 (a new instance), the pair for a KIP-360 recovery, and
/// INVALID_REQUEST when only one of them is -1 (Kafka's `KafkaApis.handleInitProducerIdRequest`).
pub fn expected_producer(
    producer_id: i64,
    producer_epoch: i16,
) -> Result<Option<(ProducerId, ProducerEpoch)>, TxnError> {
    match (
        producer_id == NO_PRODUCER_ID.0,
        producer_epoch == NO_PRODUCER_EPOCH.0,
    ) {
        (true, true) => Ok(None),
        (false, false) => Ok(Some((
            ProducerId(producer_id),
            ProducerEpoch(producer_epoch),
        ))),
        _ => Err(TxnError::InvalidRequest),
    }
}

/// The first checks of AddPartitionsToTxn, AddOffsetsToTxn and EndTxn: an empty id is
/// INVALID_REQUEST, an id the coordinator does not know INVALID_PRODUCER_ID_MAPPING.
pub fn lookup<'a>(
    transactional_id: &str,
    metadata: Option<&'a mut TxnMetadata>,
) -> Result<&'a mut TxnMetadata, TxnError> {
    if transactional_id.is_empty() {
        return Err(TxnError::InvalidRequest);
    }
    metadata.ok_or(TxnError::InvalidProducerIdMapping)
}

/// The `__consumer_offsets` partition AddOffsetsToTxn adds for `group_id`: the partition of the
/// group's coordinator, where TxnOffsetCommit will write.
pub fn offsets_partition(group_id: &str, offsets_partitions: i32) -> TopicPartition {
    TopicPartition::new(
        OFFSETS_TOPIC,
        offsets_partition_for(group_id, offsets_partitions),
    )
}

/// The target of one transition: the record to append to `__transaction_state` (Kafka's
/// `TxnTransitMetadata`). Immutable once prepared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transit {
    /// Producer id after the transition.
    pub producer_id: ProducerId,
    /// The producer id before it (differs only when the epochs ran out and a new id was
    /// allocated).
    pub last_producer_id: ProducerId,
    /// Producer epoch after the transition.
    pub producer_epoch: ProducerEpoch,
    /// The epoch a KIP-360 retry may present (-1 when a new instance took over).
    pub last_producer_epoch: ProducerEpoch,
    /// The client's `transaction.timeout.ms`.
    pub txn_timeout_ms: i32,
    /// The state after the transition.
    pub state: TxnState,
    /// The partitions of the transaction after the transition.
    pub topic_partitions: BTreeSet<TopicPartition>,
    /// When the transaction started (ms), [`NO_TIMESTAMP`] when none is open.
    pub txn_start_ms: i64,
    /// When this transition was prepared (ms).
    pub last_update_ms: i64,
    /// This is the abort of an epoch fence (not persisted): if its append fails the bumped
    /// epoch stays in memory and the next fence must not bump again.
    pub epoch_fence: bool,
    /// The producer id a transactions-v2 Prepare record hands over to when the epochs ran out
    /// (`NextProducerId`, tag 1); [`NO_PRODUCER_ID`] otherwise.
    pub next_producer_id: ProducerId,
    /// The protocol of the client's transaction (`ClientTransactionVersion`, tag 2).
    pub client_txn_version: TxnVersion,
}

/// What InitProducerId does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitTransit {
    /// Append this (state Empty) and answer its producer id and epoch once it is replicated.
    Init(Transit),
    /// A transaction was open: it is fenced and aborted first. Append this PrepareAbort (the
    /// epoch already bumped), write its abort markers, and answer CONCURRENT_TRANSACTIONS (or
    /// the append's error); the client retries and then gets its own bump. The fencing epoch
    /// is never handed out.
    AbortOngoing(Transit),
}

/// One open transaction past its timeout (Kafka's `TransactionalIdAndProducerIdEpoch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOut {
    /// The transactional id.
    pub transactional_id: String,
    /// Its producer id when checked.
    pub producer_id: ProducerId,
    /// Its producer epoch when checked.
    pub producer_epoch: ProducerEpoch,
}

/// The open transactions of `metadata` whose timeout has passed at `now_ms` (Kafka's
/// `timedOutTransactions`): Ongoing, nothing pending, `start + timeout < now`.
pub fn timed_out<'a>(
    metadata: impl IntoIterator<Item = &'a TxnMetadata>,
    now_ms: i64,
) -> Vec<TimedOut> {
    metadata
        .into_iter()
        .filter(|m| m.is_timed_out(now_ms))
        .map(|m| TimedOut {
            transactional_id: m.transactional_id.clone(),
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
        })
        .collect()
}

/// The ids of `metadata` idle for `expiration_ms` (`transactional.id.expiration.ms`) at
/// `now_ms` (Kafka's `shouldExpire` with no pending transition).
pub fn expired<'a>(
    metadata: impl IntoIterator<Item = &'a TxnMetadata>,
    now_ms: i64,
    expiration_ms: i64,
) -> Vec<&'a str> {
    metadata
        .into_iter()
        .filter(|m| m.is_expired(now_ms, expiration_ms))
        .map(|m| m.transactional_id.as_str())
        .collect()
}

/// What the coordinator knows about one transactional id (Kafka's `TransactionMetadata`).
///
/// Fields are public to read; change them only through the methods, which keep Kafka's rules
/// (one pending transition at a time, epochs never going back within a producer id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer id handed out for it.
    pub producer_id: ProducerId,
    /// The producer id before the last rotation (the current one when there was none).
    pub last_producer_id: ProducerId,
    /// The current producer epoch ([`NO_PRODUCER_EPOCH`] until the first InitProducerId is
    /// written).
    pub producer_epoch: ProducerEpoch,
    /// The epoch before the last KIP-360 bump, so a retry of that bump gets the same answer;
    /// -1 after a new instance took over. Not in the v0 record, so -1 after a reload.
    pub last_producer_epoch: ProducerEpoch,
    /// The client's `transaction.timeout.ms`, replaced by every InitProducerId.
    pub txn_timeout_ms: i32,
    /// The current (written) state.
    pub state: TxnState,
    /// The partitions of the open transaction; while markers are written, those still
    /// lacking one.
    pub topic_partitions: BTreeSet<TopicPartition>,
    /// When the open transaction started (ms), [`NO_TIMESTAMP`] when none was.
    pub txn_start_ms: i64,
    /// When the id last changed (ms), for expiry.
    pub last_update_ms: i64,
    /// The producer id a transactions-v2 commit or abort moves to once its markers are
    /// written (its epochs ran out); [`NO_PRODUCER_ID`] otherwise.
    pub next_producer_id: ProducerId,
    /// The protocol of the id's last transaction (set by each add of partitions).
    pub client_txn_version: TxnVersion,
    /// The state being written, if a transition is in flight.
    pending: Option<TxnState>,
    /// A fence's append failed after its epoch bump: the next fence reuses that epoch.
    has_failed_epoch_fence: bool,
}

impl TxnMetadata {
    /// The metadata of an id seen for the first time: a freshly allocated producer id, no
    /// epoch yet, Empty. Its first InitProducerId moves it to epoch 0.
    pub fn new(
        transactional_id: &str,
        producer_id: ProducerId,
        txn_timeout_ms: i32,
        now_ms: i64,
    ) -> TxnMetadata {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            last_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            txn_timeout_ms,
            state: TxnState::Empty,
            topic_partitions: BTreeSet::new(),
            txn_start_ms: NO_TIMESTAMP,
            last_update_ms: now_ms,
            next_producer_id: NO_PRODUCER_ID,
            client_txn_version: TxnVersion::TV0,
            pending: None,
            has_failed_epoch_fence: false,
        }
    }

    /// Metadata as loaded from `__transaction_state` (nothing pending; the last epoch is not
    /// stored, so it is -1, and partitions only count outside Empty).
    #[allow(clippy::too_many_arguments)]
    pub fn loaded(
        transactional_id: &str,
        producer_id: ProducerId,
        last_producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        txn_timeout_ms: i32,
        state: TxnState,
        topic_partitions: BTreeSet<TopicPartition>,
        txn_start_ms: i64,
        last_update_ms: i64,
    ) -> TxnMetadata {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            last_producer_id,
            producer_epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            txn_timeout_ms,
            state,
            topic_partitions: if state == TxnState::Empty {
                BTreeSet::new()
            } else {
                topic_partitions
            },
            txn_start_ms,
            last_update_ms,
            next_producer_id: NO_PRODUCER_ID,
            client_txn_version: TxnVersion::TV0,
            pending: None,
            has_failed_epoch_fence: false,
        }
    }

    /// The transactions-v2 fields of a loaded flexible record: the producer id it was handed
    /// over from and to, and the client's protocol. A Prepare record with a next producer id
    /// completes on it (see [`TxnMetadata::prepare_complete`]).
    pub fn with_v2_fields(
        mut self,
        previous_producer_id: ProducerId,
        next_producer_id: ProducerId,
        client_txn_version: TxnVersion,
    ) -> TxnMetadata {
        if previous_producer_id != NO_PRODUCER_ID {
            self.last_producer_id = previous_producer_id;
        }
        if matches!(self.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            self.next_producer_id = next_producer_id;
        }
        self.client_txn_version = client_txn_version;
        self
    }

    /// The state being written, if any.
    pub fn pending(&self) -> Option<TxnState> {
        self.pending
    }

    /// Whether a fence's bumped epoch is in memory but its abort failed to be written.
    pub fn has_failed_epoch_fence(&self) -> bool {
        self.has_failed_epoch_fence
    }

    /// Whether the id is in `now_ms`'s list of timed-out transactions.
    pub fn is_timed_out(&self, now_ms: i64) -> bool {
        self.pending.is_none()
            && self.state == TxnState::Ongoing
            && self
                .txn_start_ms
                .saturating_add(i64::from(self.txn_timeout_ms))
                < now_ms
    }

    /// Whether the id has been idle long enough to expire at `now_ms`.
    pub fn is_expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        self.pending.is_none()
            && self.state.is_expiration_allowed()
            && self.last_update_ms <= now_ms.saturating_sub(expiration_ms)
    }

    /// Kafka's `prepareTransitionTo`: checks the transition is legal and marks it pending.
    /// The last producer id of every transit is the current producer id.
    #[allow(clippy::too_many_arguments)]
    fn prepare_transition(
        &mut self,
        state: TxnState,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        last_producer_epoch: ProducerEpoch,
        txn_timeout_ms: i32,
        topic_partitions: BTreeSet<TopicPartition>,
        txn_start_ms: i64,
        last_update_ms: i64,
    ) -> Result<Transit, TxnError> {
        if let Some(p) = self.pending {
            return Err(illegal(format!(
                "preparing {state} while {p} is pending for {}",
                self.transactional_id
            )));
        }
        if producer_id.0 < 0 {
            return Err(illegal(format!("illegal new producer id {producer_id}")));
        }
        if state != TxnState::Dead && producer_epoch.0 < 0 {
            return Err(illegal(format!(
                "illegal new producer epoch {producer_epoch}"
            )));
        }
        if !state.valid_previous_states().contains(&self.state) {
            return Err(illegal(format!(
                "{state} cannot follow {} for {}",
                self.state, self.transactional_id
            )));
        }
        debug_assert!(
            producer_id != self.producer_id || producer_epoch >= self.producer_epoch,
            "epochs never go back within a producer id"
        );
        self.pending = Some(state);
        Ok(Transit {
            producer_id,
            last_producer_id: self.producer_id,
            producer_epoch,
            last_producer_epoch,
            txn_timeout_ms,
            state,
            topic_partitions,
            txn_start_ms,
            last_update_ms,
            epoch_fence: false,
            next_producer_id: NO_PRODUCER_ID,
            client_txn_version: self.client_txn_version,
        })
    }

    /// Applies a transit once its record is replicated (Kafka's `completeTransitionTo`). A
    /// transit that does not follow from the current metadata is a bug: the metadata stays as
    /// it was and the error says why.
    pub fn complete(&mut self, t: &Transit) -> Result<(), TxnError> {
        let fail = |m: &TxnMetadata| {
            Err(illegal(format!(
                "{} cannot complete {t:?} from {m:?}",
                m.transactional_id
            )))
        };
        if self.pending != Some(t.state) {
            return fail(self);
        }
        let same_producer =
            t.producer_id == self.producer_id && t.producer_epoch == self.producer_epoch;
        match t.state {
            TxnState::Empty => {
                let bump = t.producer_epoch.0 == self.producer_epoch.0.wrapping_add(1)
                    || (t.producer_epoch.0 == 0 && t.producer_id != self.producer_id);
                if (self.producer_epoch != t.producer_epoch && !bump)
                    || !t.topic_partitions.is_empty()
                    || t.txn_start_ms != NO_TIMESTAMP
                {
                    return fail(self);
                }
                self.txn_timeout_ms = t.txn_timeout_ms;
                self.producer_epoch = t.producer_epoch;
                self.last_producer_epoch = t.last_producer_epoch;
                self.producer_id = t.producer_id;
                self.last_producer_id = t.last_producer_id;
                // -1, as in the record (Kafka keeps the last transaction's start in memory,
                // which only DescribeTransactions shows, and forgets it on reload).
                self.txn_start_ms = t.txn_start_ms;
            }
            TxnState::Ongoing => {
                if !same_producer
                    || !self.topic_partitions.is_subset(&t.topic_partitions)
                    || self.txn_timeout_ms != t.txn_timeout_ms
                {
                    return fail(self);
                }
                self.txn_start_ms = t.txn_start_ms;
                self.topic_partitions = t.topic_partitions.clone();
                self.client_txn_version = t.client_txn_version;
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                // Transactions v2 bumps the epoch by one (or keeps i16::MAX, see
                // `prepare_end_txn_v2`); an empty abort starts from no transaction.
                let bumped = t.client_txn_version.supports_epoch_bump()
                    && t.producer_id == self.producer_id
                    && i32::from(t.producer_epoch.0) == i32::from(self.producer_epoch.0) + 1;
                let empty_abort = self.state != TxnState::Ongoing;
                if !(same_producer || bumped)
                    || self.topic_partitions != t.topic_partitions
                    || self.txn_timeout_ms != t.txn_timeout_ms
                    || (!empty_abort && self.txn_start_ms != t.txn_start_ms)
                    || (empty_abort && !t.client_txn_version.supports_epoch_bump())
                {
                    return fail(self);
                }
                self.producer_epoch = t.producer_epoch;
                self.last_producer_epoch = t.last_producer_epoch;
                self.next_producer_id = t.next_producer_id;
                self.client_txn_version = t.client_txn_version;
                self.txn_start_ms = t.txn_start_ms;
            }
            TxnState::CompleteCommit | TxnState::CompleteAbort => {
                // A transactions-v2 end whose epochs ran out hands over to the next id.
                let rotated = self.next_producer_id != NO_PRODUCER_ID
                    && t.producer_id == self.next_producer_id
                    && t.producer_epoch.0 == 0;
                if !(same_producer || rotated)
                    || self.txn_timeout_ms != t.txn_timeout_ms
                    || t.txn_start_ms == NO_TIMESTAMP
                {
                    return fail(self);
                }
                if rotated {
                    self.producer_id = t.producer_id;
                    self.producer_epoch = t.producer_epoch;
                    self.last_producer_id = t.last_producer_id;
                    self.last_producer_epoch = t.last_producer_epoch;
                }
                self.next_producer_id = NO_PRODUCER_ID;
                self.txn_start_ms = t.txn_start_ms;
                self.topic_partitions.clear();
            }
            // Never completed: a fence becomes PrepareAbort before anything is written, and an
            // expired id is removed from the cache (see `tombstone_written`).
            TxnState::PrepareEpochFence | TxnState::Dead => return fail(self),
        }
        self.last_update_ms = t.last_update_ms;
        self.pending = None;
        self.state = t.state;
        Ok(())
    }

    /// The append of `t` failed: the pending transition is dropped (Kafka resets it unless the
    /// caller retries the same append). A failed fence leaves its bumped epoch in memory and
    /// remembers it, so the next fence does not bump again.
    pub fn abort_pending(&mut self, t: &Transit) {
        if self.pending == Some(t.state) {
            self.pending = None;
        }
        if t.epoch_fence {
            self.has_failed_epoch_fence = true;
        }
    }

    /// InitProducerId for this id (Kafka's `prepareInitProducerIdTransit`), after
    /// [`validate_init`] and after the metadata was found or created with
    /// [`TxnMetadata::new`]. `expected` is the producer id and epoch a KIP-360 client
    /// (v3+) presents to recover, `None` for a new instance; `allocate` hands out a new
    /// producer id and is called only when the epochs ran out.
    pub fn prepare_init_producer_id(
        &mut self,
        timeout_ms: i32,
        expected: Option<(ProducerId, ProducerEpoch)>,
        allocate: impl FnOnce() -> Result<ProducerId, TxnError>,
        now_ms: i64,
    ) -> Result<InitTransit, TxnError> {
        if self.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        // A recovering producer keeps its id only if no other instance took it over: the
        // metadata was just created (its old id expired), the id is the current one (the epoch
        // is checked below), or it is the previous one and the retry of a rotation.
        if let Some((pid, epoch)) = expected {
            let valid = self.producer_epoch == NO_PRODUCER_EPOCH
                || pid == self.producer_id
                || (pid == self.last_producer_id && is_epoch_exhausted(epoch));
            if !valid {
                return Err(TxnError::ProducerFenced);
            }
        }
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                Err(TxnError::ConcurrentTransactions)
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let rotate = is_epoch_exhausted(self.producer_epoch)
                    && expected.is_none_or(|(_, e)| e == self.producer_epoch);
                let t = if rotate {
                    let new_pid = allocate()?;
                    let last = if expected.is_some() {
                        self.producer_epoch
                    } else {
                        NO_PRODUCER_EPOCH
                    };
                    self.prepare_empty(new_pid, ProducerEpoch(0), last, timeout_ms, now_ms)?
                } else {
                    let (epoch, last) = self.next_epoch(expected.map(|(_, e)| e))?;
                    self.prepare_empty(self.producer_id, epoch, last, timeout_ms, now_ms)?
                };
                Ok(InitTransit::Init(t))
            }
            TxnState::Ongoing => Ok(InitTransit::AbortOngoing(
                self.prepare_fence_and_abort(now_ms)?,
            )),
            TxnState::Dead | TxnState::PrepareEpochFence => Err(illegal(format!(
                "{} found in state {}",
                self.transactional_id, self.state
            ))),
        }
    }

    /// The epoch (and last epoch) InitProducerId moves to without a new producer id (Kafka's
    /// `prepareIncrementProducerEpoch`).
    fn next_epoch(
        &self,
        expected: Option<ProducerEpoch>,
    ) -> Result<(ProducerEpoch, ProducerEpoch), TxnError> {
        let bumped = ProducerEpoch(self.producer_epoch.0.saturating_add(1));
        match expected {
            // A new instance: bump, forget the last epoch (-1 becomes 0 for a new id).
            None => Ok((bumped, NO_PRODUCER_EPOCH)),
            // KIP-360 recovery by the current owner (or of a just-created id): bump, and
            // remember the epoch it had so a retry of this bump is recognised.
            Some(e) if self.producer_epoch == NO_PRODUCER_EPOCH || e == self.producer_epoch => {
                Ok((bumped, self.producer_epoch))
            }
            // The retry of a bump whose answer was lost: the same answer again. Also reached
            // with an exhausted current epoch (a lost answer of the bump to 32766): Kafka 3.9
            // asserts there and answers UNKNOWN_SERVER_ERROR; Rill answers as for any retry,
            // and PRODUCER_FENCED for any other epoch, as nothing is bumped either way.
            Some(e) if e == self.last_producer_epoch => {
                Ok((self.producer_epoch, self.last_producer_epoch))
            }
            Some(_) => Err(TxnError::ProducerFenced),
        }
    }

    fn prepare_empty(
        &mut self,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        last_epoch: ProducerEpoch,
        timeout_ms: i32,
        now_ms: i64,
    ) -> Result<Transit, TxnError> {
        debug_assert!(
            producer_id != self.producer_id
                || !is_epoch_exhausted(self.producer_epoch)
                || epoch == self.producer_epoch,
            "an exhausted epoch is never bumped, the producer id rotates"
        );
        self.prepare_transition(
            TxnState::Empty,
            producer_id,
            epoch,
            last_epoch,
            timeout_ms,
            BTreeSet::new(),
            NO_TIMESTAMP,
            now_ms,
        )
    }

    /// The producer checks every client request of an open transaction starts with.
    fn check_producer(
        &self,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
    ) -> Result<(), TxnError> {
        if producer_id != self.producer_id {
            Err(TxnError::InvalidProducerIdMapping)
        } else if epoch != self.producer_epoch {
            Err(TxnError::ProducerFenced)
        } else {
            Ok(())
        }
    }

    /// AddPartitionsToTxn (Kafka's `handleAddPartitionsToTransaction`): from a client (v0-3,
    /// `version` [`TxnVersion::TV0`]), or from a partition leader adding the partition a
    /// transactions-v2 producer writes to (v4+ with `verify_only` false, TV2).
    /// `Ok(None)`: every partition is already in the open transaction, answer NONE without
    /// writing. `Ok(Some(t))`: append `t` (Ongoing with the union; a transaction starting now
    /// if none was open).
    pub fn prepare_add_partitions(
        &mut self,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        partitions: &BTreeSet<TopicPartition>,
        version: TxnVersion,
        now_ms: i64,
    ) -> Result<Option<Transit>, TxnError> {
        // Transactions v2 checks the pending transition first: while an end whose epochs ran
        // out is being written, the producer may already present its next producer id
        // (KAFKA-18660), which must be told to retry, not that it is unknown.
        if version.supports_epoch_bump() && self.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        self.check_producer(producer_id, epoch)?;
        if self.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        let start = match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                return Err(TxnError::ConcurrentTransactions)
            }
            TxnState::Ongoing if partitions.is_subset(&self.topic_partitions) => return Ok(None),
            TxnState::Ongoing => self.txn_start_ms,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => now_ms,
            TxnState::Dead | TxnState::PrepareEpochFence => self.txn_start_ms,
        };
        let union = self.topic_partitions.union(partitions).cloned().collect();
        let mut t = self.prepare_transition(
            TxnState::Ongoing,
            self.producer_id,
            self.producer_epoch,
            self.last_producer_epoch,
            self.txn_timeout_ms,
            union,
            start,
            now_ms,
        )?;
        t.client_txn_version = version;
        Ok(Some(t))
    }

    /// AddOffsetsToTxn: AddPartitionsToTxn of the group's `__consumer_offsets` partition
    /// (`offsets_partitions` is `offsets.topic.num.partitions`).
    pub fn prepare_add_offsets(
        &mut self,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        group_id: &str,
        offsets_partitions: i32,
        now_ms: i64,
    ) -> Result<Option<Transit>, TxnError> {
        let tp = BTreeSet::from([offsets_partition(group_id, offsets_partitions)]);
        self.prepare_add_partitions(producer_id, epoch, &tp, TxnVersion::TV0, now_ms)
    }

    /// Expiry of an idle id (Kafka's `prepareDead`): pending Dead until its tombstone is
    /// written. The transit's state is Dead; its record is the tombstone.
    pub fn prepare_dead(&mut self) -> Result<Transit, TxnError> {
        self.prepare_transition(
            TxnState::Dead,
            self.producer_id,
            self.producer_epoch,
            self.last_producer_epoch,
            self.txn_timeout_ms,
            BTreeSet::new(),
            self.txn_start_ms,
            self.last_update_ms,
        )
    }

    /// The tombstone of `t` (from [`TxnMetadata::prepare_dead`]) is written: `true` means
    /// remove the id from the cache; `false` means something took the id meanwhile and it
    /// stays (pending cleared), as in Kafka's `writeTombstonesForExpiredTransactionalIds`.
    pub fn tombstone_written(&mut self, t: &Transit) -> bool {
        if self.pending == Some(TxnState::Dead) && self.producer_epoch == t.producer_epoch {
            true
        } else {
            if self.pending == Some(TxnState::Dead) {
                self.pending = None;
            }
            false
        }
    }
}

mod end;

#[cfg(test)]
#[path = "init_tests.rs"]
mod init_tests;
#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
#[cfg(test)]
#[path = "v2_tests.rs"]
mod v2_tests;
