//! The transaction coordinator: owns every transactional id whose `__transaction_state`
//! partition this node leads (partition = Java's `String.hashCode` of the id, as Kafka maps
//! it), as the group coordinator owns the groups of its `__consumer_offsets` partitions.
//!
//! Every change to an id follows Kafka's three steps: *prepare* the transition under the
//! coordinator's lock (the id is then pending: other requests for it get
//! CONCURRENT_TRANSACTIONS), *append* its record to the id's partition under the same lock (so
//! the log and the cache change in the same order), then, outside the lock, *wait* for the ISR
//! to have it (acks=all) and *complete* it in the cache. A failed write drops the pending
//! transition and the client retries.
//!
//! Ending a transaction (EndTxn, a fence by a new producer instance, the timeout abort) writes
//! PrepareCommit/PrepareAbort, which decides the outcome; then the markers go to every
//! partition of the transaction (`markers.rs`), then CompleteCommit/CompleteAbort is written.
//! EndTxn is answered only once the markers are written (Kafka 3.x answers after the Prepare
//! record; answering later means a client that saw its commit acknowledged finds the
//! transaction's records readable by read_committed consumers at once, and can never start
//! its next transaction while markers of the last are in flight — the window behind the
//! KIP-890 "hanging transaction" reports). When the markers take longer than
//! [`END_TXN_MARKERS_WAIT`] the answer is CONCURRENT_TRANSACTIONS, which clients retry until
//! the transaction is complete.
//!
//! On becoming leader of a partition the coordinator replays it in the background
//! (COORDINATOR_LOAD_IN_PROGRESS meanwhile) and finishes every transaction it finds in a
//! Prepare state; on losing it, it drops the partition's ids and any marker writing for them
//! stops (the new coordinator finishes them). The coordinator epoch written into markers is
//! the partition's leader epoch, so a stale coordinator's markers are refused.
//!
//! [`TxnCoordinator::run`] aborts transactions open past their timeout (every
//! `transaction.abort.timed.out.transaction.cleanup.interval.ms`), fencing their producer,
//! and removes ids idle for `transactional.id.expiration.ms` with a tombstone.
//!
//! Here: the steps and the client requests. Beside it: `load.rs` (following leadership, the
//! replay), `sweep.rs` (timeouts and expiry), `describe.rs` (the read-only answers and
//! KIP-890's verification).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::sync::oneshot;

use super::markers::{self, MarkersStopped, TxnMarker};
use super::state::{
    self, InitTransit, Transit, TxnError, TxnMetadata, TxnResult, TxnState, TxnVersion,
};
use super::store::{self, TRANSACTION_STATE_TOPIC};
use super::txn_log::TxnLog;
use super::TxnConfig;
use crate::replica::Partition;
use crate::time::now_ms;
use crate::types::{
    CoordinatorEpoch, LeaderEpoch, Offset, ProducerEpoch, ProducerId, TopicPartition,
};

/// How long one `__transaction_state` append waits for the ISR (Kafka's
/// `request.timeout.ms` default, which bounds the coordinator's appends).
pub const STATE_APPEND_TIMEOUT: Duration = Duration::from_secs(30);

/// How long EndTxn waits for the markers before answering CONCURRENT_TRANSACTIONS (the
/// client retries; the transaction completes either way). Below librdkafka's and the Java
/// client's 30 s request timeout, so the answer arrives before the client gives up on it.
pub const END_TXN_MARKERS_WAIT: Duration = Duration::from_secs(20);

/// Pause between attempts to write a Complete record that failed for a retriable reason.
const COMPLETE_RETRY: Duration = Duration::from_millis(200);

/// The ids of one led and loaded `__transaction_state` partition.
struct TxnPartition {
    /// The partition's leader epoch when it was loaded: the coordinator epoch.
    coordinator_epoch: CoordinatorEpoch,
    ids: HashMap<String, TxnMetadata>,
}

/// Which partitions are coordinated here.
#[derive(Default)]
struct State {
    /// Led and replayed, by partition.
    loaded: HashMap<i32, TxnPartition>,
    /// Led and being replayed in the background, by replay generation.
    loading: BTreeMap<i32, u64>,
    /// The last generation handed out.
    next_generation: u64,
}

/// Where an id lives: its partition, this node's replica of it and the coordinator epoch of
/// the load the request is served by.
#[derive(Clone)]
struct Owner {
    partition: i32,
    log: Arc<Partition>,
    epoch: CoordinatorEpoch,
}

/// A record appended, not yet known to be replicated.
struct Written {
    end: Offset,
    leader_epoch: LeaderEpoch,
}

/// One transactional id as DescribeTransactions and ListTransactions show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnDescription {
    /// The metadata (state, producer, partitions, start, timeout).
    pub metadata: TxnMetadata,
    /// The coordinator's `__transaction_state` partition for it.
    pub partition: i32,
}

/// The coordinator.
pub struct TxnCoordinator {
    /// Settings.
    pub config: TxnConfig,
    /// `offsets.topic.num.partitions`, for the `__consumer_offsets` partition AddOffsetsToTxn
    /// adds when that topic does not exist yet.
    offsets_partitions: i32,
    state: Mutex<State>,
    pub(super) log: TxnLog,
}

impl TxnCoordinator {
    /// A coordinator with nothing loaded.
    pub fn new(config: TxnConfig, offsets_partitions: i32, log: TxnLog) -> TxnCoordinator {
        TxnCoordinator {
            config,
            offsets_partitions,
            state: Mutex::new(State::default()),
            log,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates `__transaction_state` on first use, with the `transaction.state.log.*`
    /// settings (replication capped at the live brokers, `min.insync.replicas` at the
    /// replication, so a one-node cluster can run transactions).
    pub async fn ensure_topic(&self) -> Result<(), TxnError> {
        if self
            .log
            .image()
            .topics
            .contains_key(TRANSACTION_STATE_TOPIC)
        {
            return Ok(());
        }
        let brokers = self.log.image().live_brokers().len() as i16;
        let rf = self.config.log_replication_factor.min(brokers).max(1);
        let t = crate::controller::TopicCreation {
            name: TRANSACTION_STATE_TOPIC.into(),
            partitions: self.config.log_num_partitions,
            replication_factor: rf,
            assignment: None,
            configs: [
                ("cleanup.policy", "compact".to_string()),
                ("compression.type", "uncompressed".to_string()),
                (
                    "min.insync.replicas",
                    self.config.log_min_isr.min(i32::from(rf)).to_string(),
                ),
                ("segment.bytes", self.config.log_segment_bytes.to_string()),
                ("unclean.leader.election.enable", "false".to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        };
        match self.log.controller.create_topic(t, false).await {
            Ok(_) | Err(crate::error::KafkaError::TopicAlreadyExists(_)) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot create __transaction_state");
                Err(TxnError::Other(ResponseError::CoordinatorNotAvailable))
            }
        }
    }

    /// The `__transaction_state` partition of `transactional_id` (FindCoordinator), once the
    /// topic exists.
    pub fn partition_of(&self, transactional_id: &str) -> Option<i32> {
        let image = self.log.image();
        let topic = image.topics.get(TRANSACTION_STATE_TOPIC)?;
        Some(store::partition_for(
            transactional_id,
            topic.partitions.len() as i32,
        ))
    }

    /// The partition of an id, if this node coordinates it now.
    fn owner(&self, transactional_id: &str) -> Result<Owner, TxnError> {
        let Some(p) = self.partition_of(transactional_id) else {
            return Err(TxnError::Other(ResponseError::CoordinatorNotAvailable));
        };
        let image = self.log.image();
        let leader = image
            .partition(TRANSACTION_STATE_TOPIC, p)
            .map(|m| m.leader);
        if leader != Some(self.log.node) {
            return Err(TxnError::Other(ResponseError::NotCoordinator));
        }
        let state = self.lock();
        let Some(loaded) = state.loaded.get(&p) else {
            return Err(TxnError::Other(ResponseError::CoordinatorLoadInProgress));
        };
        let log = self
            .log
            .partition(p)
            .ok_or(TxnError::Other(ResponseError::CoordinatorLoadInProgress))?;
        Ok(Owner {
            partition: p,
            log,
            epoch: loaded.coordinator_epoch,
        })
    }

    /// Whether the load `o` is served by is still the current one.
    fn owns(&self, partition: i32, epoch: CoordinatorEpoch) -> bool {
        self.lock()
            .loaded
            .get(&partition)
            .is_some_and(|p| p.coordinator_epoch == epoch)
    }

    /// Runs `f` on the ids of `o`'s partition under the lock; NOT_COORDINATOR when that load
    /// is gone.
    fn locked<T>(&self, o: &Owner, f: impl FnOnce(&mut TxnPartition) -> T) -> Result<T, TxnError> {
        let mut state = self.lock();
        match state.loaded.get_mut(&o.partition) {
            Some(p) if p.coordinator_epoch == o.epoch => Ok(f(p)),
            _ => Err(TxnError::Other(ResponseError::NotCoordinator)),
        }
    }

    /// Appends the record of `t` for `id` (under the lock, right after preparing it).
    fn append(&self, o: &Owner, id: &str, t: &Transit) -> Result<Written, TxnError> {
        let bytes = encode_batch(id, t, store::value_version(self.config.version, t), now_ms())
            .map_err(|e| {
            tracing::error!(transactional_id = id, error = %e, "cannot encode a __transaction_state record");
            TxnError::Other(ResponseError::UnknownServerError)
        })?;
        o.log
            .check_enough_replicas()
            .map_err(|e| append_error(&e))?;
        let (info, leader_epoch) = o
            .log
            .append_as_leader(&bytes, now_ms())
            .map_err(|e| append_error(&e))?;
        Ok(Written {
            end: info.last_offset.next(),
            leader_epoch,
        })
    }

    /// Prepares a transition of `id` with `prepare` and appends it, under one lock hold.
    /// `Ok(None)`: nothing to write.
    fn prepare(
        &self,
        o: &Owner,
        id: &str,
        prepare: impl FnOnce(&mut TxnPartition) -> Result<Option<Transit>, TxnError>,
    ) -> Result<Option<(Transit, Written)>, TxnError> {
        self.locked(o, |p| {
            let Some(t) = prepare(p)? else {
                return Ok(None);
            };
            match self.append(o, id, &t) {
                Ok(w) => Ok(Some((t, w))),
                Err(e) => {
                    if let Some(m) = p.ids.get_mut(id) {
                        m.abort_pending(&t);
                    }
                    Err(e)
                }
            }
        })?
    }

    /// Waits for `w` to be replicated, then completes `t` in the cache (or drops it if the
    /// write failed). A tombstone removes the id.
    async fn persist(&self, o: &Owner, id: &str, t: &Transit, w: Written) -> Result<(), TxnError> {
        let deadline = tokio::time::Instant::now() + STATE_APPEND_TIMEOUT;
        let replicated = o
            .log
            .wait_replicated(w.end, w.leader_epoch, deadline)
            .await
            .map_err(|e| append_error(&e));
        self.locked(o, |p| {
            let Some(m) = p.ids.get_mut(id) else {
                return Err(TxnError::Other(ResponseError::NotCoordinator));
            };
            if let Err(e) = replicated {
                m.abort_pending(t);
                return Err(e);
            }
            if t.state == TxnState::Dead {
                if m.tombstone_written(t) {
                    p.ids.remove(id);
                }
                return Ok(());
            }
            m.complete(t).inspect_err(|e| {
                tracing::error!(transactional_id = id, error = %e, "transaction state transition cannot complete");
            })
        })?
    }

    /// A new producer id from the controller.
    async fn allocate(&self) -> Result<ProducerId, TxnError> {
        self.log
            .controller
            .allocate_producer_id()
            .await
            .map(ProducerId)
            .map_err(|e| TxnError::Other(e.response_error()))
    }

    /// InitProducerId with a transactional id: the producer id and epoch to use, after
    /// fencing older instances. An open transaction is aborted first (its producer fenced)
    /// and the answer is CONCURRENT_TRANSACTIONS, which the client retries.
    pub async fn init_producer_id(
        self: &Arc<Self>,
        id: &str,
        timeout_ms: i32,
        expected: Option<(ProducerId, ProducerEpoch)>,
    ) -> Result<(ProducerId, ProducerEpoch), TxnError> {
        state::validate_init(id, timeout_ms, self.config.max_timeout_ms)?;
        self.ensure_topic().await?;
        let o = self.owner(id)?;
        // A new id, or one whose epochs ran out, needs a producer id from the controller:
        // fetched before taking the lock.
        let needs_id = self.locked(&o, |p| {
            p.ids
                .get(id)
                .is_none_or(|m| state::is_epoch_exhausted(m.producer_epoch))
        })?;
        let fresh = if needs_id {
            Some(self.allocate().await?)
        } else {
            None
        };
        let now = now_ms();
        let mut init = None;
        let written = self.prepare(&o, id, |p| {
            let m = match (p.ids.contains_key(id), fresh) {
                (true, _) => p.ids.get_mut(id),
                (false, Some(pid)) => Some(
                    p.ids
                        .entry(id.to_string())
                        .or_insert_with(|| TxnMetadata::new(id, pid, timeout_ms, now)),
                ),
                // Expired between the two looks: the client retries.
                (false, None) => None,
            };
            let m = m.ok_or(TxnError::ConcurrentTransactions)?;
            let t = m.prepare_init_producer_id(
                timeout_ms,
                expected,
                || fresh.ok_or(TxnError::ConcurrentTransactions),
                now,
            )?;
            let transit = match &t {
                InitTransit::Init(t) | InitTransit::AbortOngoing(t) => t.clone(),
            };
            init = Some(t);
            Ok(Some(transit))
        })?;
        let Some((t, w)) = written else {
            return Err(TxnError::IllegalState(
                "InitProducerId wrote nothing".into(),
            ));
        };
        self.persist(&o, id, &t, w).await?;
        match init {
            Some(InitTransit::Init(_)) => Ok((t.producer_id, t.producer_epoch)),
            _ => {
                // The open transaction of the fenced producer is aborted in the background.
                self.complete_transaction(&o, id, TxnResult::Abort)?;
                Err(TxnError::ConcurrentTransactions)
            }
        }
    }

    /// A client request's transition of a known id (AddPartitionsToTxn, AddOffsetsToTxn,
    /// EndTxn): `prepare` on the id's metadata at `now_ms`, then the record written and
    /// completed. `Ok(None)`: nothing to write (the request changes nothing).
    async fn client_transition(
        &self,
        id: &str,
        prepare: impl FnOnce(&mut TxnMetadata, i64) -> Result<Option<Transit>, TxnError>,
    ) -> Result<Option<(Owner, Transit)>, TxnError> {
        if id.is_empty() {
            return Err(TxnError::InvalidRequest);
        }
        let o = self.owner(id)?;
        let now = now_ms();
        let written = self.prepare(&o, id, |p| {
            prepare(state::lookup(id, p.ids.get_mut(id))?, now)
        })?;
        let Some((t, w)) = written else {
            return Ok(None);
        };
        self.persist(&o, id, &t, w).await?;
        Ok(Some((o, t)))
    }

    /// AddPartitionsToTxn: adds `partitions` to the open transaction (starting one), for a
    /// client (v0-3, [`TxnVersion::TV0`]) or for a partition leader serving a transactions-v2
    /// producer (TV2, see `verify.rs`).
    pub async fn add_partitions(
        &self,
        id: &str,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        partitions: &BTreeSet<TopicPartition>,
        version: TxnVersion,
    ) -> Result<(), TxnError> {
        self.client_transition(id, |m, now| {
            m.prepare_add_partitions(producer_id, epoch, partitions, version, now)
        })
        .await
        .map(|_| ())
    }

    /// AddOffsetsToTxn: adds the group's `__consumer_offsets` partition to the transaction.
    pub async fn add_offsets(
        &self,
        id: &str,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        group_id: &str,
    ) -> Result<(), TxnError> {
        let offsets_partitions = self
            .log
            .image()
            .topics
            .get(crate::group::store::OFFSETS_TOPIC)
            .map_or(self.offsets_partitions, |t| t.partitions.len() as i32);
        self.client_transition(id, |m, now| {
            m.prepare_add_offsets(producer_id, epoch, group_id, offsets_partitions, now)
        })
        .await
        .map(|_| ())
    }

    /// EndTxn: commits or aborts the open transaction; answered once the markers are written
    /// (or CONCURRENT_TRANSACTIONS after [`END_TXN_MARKERS_WAIT`], see the module docs).
    /// `version` is the request's protocol: under transactions v2 (EndTxn v5+) the epoch is
    /// bumped and the answer is the producer id and epoch the client goes on with; under v1
    /// it is the unchanged pair (the response has no place for it).
    pub async fn end_txn(
        self: &Arc<Self>,
        id: &str,
        producer_id: ProducerId,
        epoch: ProducerEpoch,
        result: TxnResult,
        version: TxnVersion,
    ) -> Result<(ProducerId, ProducerEpoch), TxnError> {
        // An end whose epochs ran out hands over to a new producer id. The request is
        // validated first; only one that needs an id gets one (from the controller, outside
        // the lock), and is then validated again with it.
        let mut fresh: Option<ProducerId> = None;
        let (written, current) = loop {
            let mut needs_id = false;
            let mut current = None;
            let r = self
                .client_transition(id, |m, now| {
                    let t = if version.supports_epoch_bump() {
                        m.prepare_end_txn_v2(
                            producer_id,
                            epoch,
                            result,
                            || {
                                fresh.ok_or_else(|| {
                                    needs_id = true;
                                    TxnError::ConcurrentTransactions
                                })
                            },
                            now,
                        )
                    } else {
                        m.prepare_end_txn(producer_id, epoch, result, now)
                    }?;
                    current = Some((m.producer_id, m.producer_epoch));
                    Ok(t)
                })
                .await;
            match r {
                Err(_) if needs_id && fresh.is_none() => fresh = Some(self.allocate().await?),
                r => break (r?, current),
            }
        };
        let Some((o, _)) = written else {
            // The retry of an EndTxn that completed: the producer as it is now.
            return current.ok_or_else(|| TxnError::IllegalState("EndTxn saw no metadata".into()));
        };
        let (done, next) = self.complete_transaction(&o, id, result)?;
        match tokio::time::timeout(END_TXN_MARKERS_WAIT, done).await {
            Ok(Ok(r)) => r.map(|()| next),
            // The writer stopped without answering (the coordinator moved).
            Ok(Err(_)) => Err(TxnError::Other(ResponseError::NotCoordinator)),
            Err(_) => {
                tracing::info!(transactional_id = id, "transaction markers still being written; EndTxn answered CONCURRENT_TRANSACTIONS");
                Err(TxnError::ConcurrentTransactions)
            }
        }
    }

    /// After a Prepare record of `id` is written: prepares its Complete record and starts the
    /// background writer of its markers and then that record. The receiver gets the outcome;
    /// the pair is the producer id and epoch of the Complete record (what the producer goes on
    /// with).
    #[allow(clippy::type_complexity)]
    fn complete_transaction(
        self: &Arc<Self>,
        o: &Owner,
        id: &str,
        result: TxnResult,
    ) -> Result<
        (
            oneshot::Receiver<Result<(), TxnError>>,
            (ProducerId, ProducerEpoch),
        ),
        TxnError,
    > {
        let now = now_ms();
        let (marker, partitions, complete) = self.locked(o, |p| {
            let m = state::lookup(id, p.ids.get_mut(id))?;
            let partitions = m.topic_partitions.clone();
            let marker = TxnMarker {
                producer_id: m.producer_id,
                producer_epoch: m.producer_epoch,
                coordinator_epoch: o.epoch,
                commit: result == TxnResult::Commit,
            };
            let t = m.prepare_complete(m.producer_id, m.producer_epoch, result, now)?;
            Ok::<_, TxnError>((marker, partitions, t))
        })??;
        let next = (complete.producer_id, complete.producer_epoch);
        let (tx, rx) = oneshot::channel();
        let me = self.clone();
        let o = o.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let r = me.finish(&o, &id, marker, partitions, complete).await;
            let _ = tx.send(r);
        });
        Ok((rx, next))
    }

    /// Writes the markers, then the Complete record (retried while this load owns the id).
    async fn finish(
        &self,
        o: &Owner,
        id: &str,
        marker: TxnMarker,
        partitions: BTreeSet<TopicPartition>,
        complete: Transit,
    ) -> Result<(), TxnError> {
        let owned = || self.owns(o.partition, o.epoch);
        match markers::write_all(&self.log, marker, partitions, owned).await {
            Ok(()) => {}
            Err(MarkersStopped::NotCoordinator) => {
                return Err(TxnError::Other(ResponseError::NotCoordinator))
            }
            Err(MarkersStopped::Fenced(tp, code)) => {
                tracing::warn!(transactional_id = id, partition = %tp, code, "a partition refused this coordinator's transaction marker: a newer coordinator or producer owns it; leaving the transaction to it");
                return Err(TxnError::Other(ResponseError::NotCoordinator));
            }
        }
        loop {
            let w = self.locked(o, |_| self.append(o, id, &complete))?;
            match w {
                Ok(w) => {
                    let deadline = tokio::time::Instant::now() + STATE_APPEND_TIMEOUT;
                    if o.log
                        .wait_replicated(w.end, w.leader_epoch, deadline)
                        .await
                        .is_ok()
                    {
                        return self.locked(o, |p| match p.ids.get_mut(id) {
                            Some(m) => m.complete(&complete),
                            None => Err(TxnError::Other(ResponseError::NotCoordinator)),
                        })?;
                    }
                }
                Err(TxnError::Other(ResponseError::NotCoordinator)) => {
                    return Err(TxnError::Other(ResponseError::NotCoordinator))
                }
                Err(e) => {
                    tracing::debug!(transactional_id = id, error = %e, "cannot write the transaction's Complete record yet; retrying");
                }
            }
            if !self.owns(o.partition, o.epoch) {
                return Err(TxnError::Other(ResponseError::NotCoordinator));
            }
            tokio::time::sleep(COMPLETE_RETRY).await;
        }
    }
}

/// Kafka's mapping of a failed `__transaction_state` append to what the client is told.
fn append_error(e: &crate::error::KafkaError) -> TxnError {
    use crate::error::KafkaError as K;
    TxnError::Other(match e {
        K::NotLeaderOrFollower(_) | K::Log(_) => ResponseError::NotCoordinator,
        K::UnknownTopicOrPartition(_)
        | K::NotEnoughReplicas(_)
        | K::NotEnoughReplicasAfterAppend(_)
        | K::RequestTimedOut(_) => ResponseError::CoordinatorNotAvailable,
        _ => ResponseError::UnknownServerError,
    })
}

/// The record batch persisting `t` for `id` (the value at `value_version`; a tombstone for
/// Dead).
fn encode_batch(id: &str, t: &Transit, value_version: i16, now_ms: i64) -> anyhow::Result<Bytes> {
    let (key, value) = store::encode_transit(id, t, value_version)?;
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms,
        key: Some(Bytes::from(key)),
        value: value.map(Bytes::from),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &[record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )?;
    Ok(buf.freeze())
}

mod describe;
mod load;
mod sweep;
