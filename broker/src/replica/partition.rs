//! One hosted partition replica: its log, leader epoch, high watermark and, on the leader, the
//! state of every follower (Kafka's `Partition` + `Replica`).
//!
//! The log sits behind a plain mutex that is never held across an `.await`: appends and reads
//! are page-cache operations measured in microseconds, and one lock per partition keeps appends
//! to a partition totally ordered (which idempotent sequence checks rely on). Leadership
//! changes take the same lock, so a follower append fetched under an old epoch can never land
//! after this node became leader (or followed a new leader). The replication state (ISR,
//! follower fetch positions) has its own mutex, always taken after the log's.
//!
//! High watermark: on the leader, the minimum log end offset over the ISR of the committed
//! metadata image (a member whose position is not yet known since this node became leader
//! holds it back); it never moves backwards while this node leads. On a follower, the leader's
//! high watermark from the last fetch response, capped by the local log end. A log opened at
//! start has its high watermark at the log dir's checkpointed one (`checkpoint.rs`), capped by
//! the log end, or at the log start without one, until replication says more: what a crash
//! left behind past the last checkpoint is not known to be committed.
//!
//! The read side (what followers, read_uncommitted and read_committed consumers may read, the
//! last stable offset, aborted transactions) is `partition/read.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use uuid::Uuid;

use super::log_dirs::LogDirHealth;
use crate::error::KafkaError;
use crate::log::{AppendInfo, LogConfig, LogError, PartitionLog};
use crate::metadata::PartitionMeta;
use crate::types::{
    BrokerId, CoordinatorEpoch, LeaderEpoch, Offset, ProducerEpoch, ProducerId, TopicPartition,
};

mod read;
#[cfg(test)]
mod tests;
mod verification;

pub use read::{FetchIsolation, FetchRead};
pub use verification::{VerificationGuard, MAX_VERIFICATIONS};

/// Minimum pause before an ISR change that failed (stale epoch, no quorum) is tried again.
const ISR_RETRY_AFTER: Duration = Duration::from_millis(200);

/// What the leader knows of one follower, from its fetch requests.
#[derive(Debug, Clone)]
pub struct FollowerState {
    /// The follower's log end offset (its last fetch offset); -1 until it fetched in this
    /// leader epoch.
    pub log_end_offset: i64,
    /// When it last fetched.
    pub last_fetch: Instant,
    /// The leader's log end offset at that fetch.
    last_fetch_leader_leo: i64,
    /// The last time it had everything the leader had (Kafka's `lastCaughtUpTimeMs`).
    pub last_caught_up: Instant,
}

/// A change of the ISR the leader wants to make (KIP-497's AlterPartition, sent to the
/// controller as a compare-and-set on the partition epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    /// The leader proposing it (this node).
    pub leader: BrokerId,
    /// The leader epoch the change was computed in.
    pub leader_epoch: LeaderEpoch,
    /// The partition epoch of the state it replaces.
    pub partition_epoch: i32,
    /// The new ISR.
    pub isr: Vec<BrokerId>,
}

/// What a follower's fetch did to the leader's state.
#[derive(Debug, Default)]
pub struct FetchUpdate {
    /// The high watermark moved: wake consumers.
    pub high_watermark_moved: bool,
    /// The follower caught up and may join the ISR.
    pub expand: Option<IsrChange>,
}

/// The replication view of a partition, from the committed image plus follower fetches.
#[derive(Debug)]
struct Replication {
    node: BrokerId,
    replicas: Vec<BrokerId>,
    isr: Vec<BrokerId>,
    partition_epoch: i32,
    min_isr: usize,
    /// Log end offset when this node became leader in the current epoch: a follower joins
    /// the ISR only once it has reached it.
    epoch_start_offset: i64,
    followers: HashMap<BrokerId, FollowerState>,
    /// An ISR change is in flight (or failed recently): until then, propose no other.
    isr_change_blocked_until: Option<Instant>,
}

/// A partition replica hosted by this node.
pub struct Partition {
    /// Which partition this is.
    pub tp: TopicPartition,
    /// Its topic's id.
    pub topic_id: Uuid,
    log: Mutex<PartitionLog>,
    leader_epoch: AtomicI32,
    leader: AtomicBool,
    closed: AtomicBool,
    high_watermark: AtomicI64,
    log_end: AtomicI64,
    log_start: AtomicI64,
    size: AtomicI64,
    repl: Mutex<Replication>,
    /// Bumped whenever the high watermark, leadership or ISR changes: acks=all waits on it.
    changed: watch::Sender<u64>,
    /// Set when the log dir holding this partition went offline (`log_dirs.rs`): every
    /// operation then fails with KAFKA_STORAGE_ERROR until the node restarts.
    offline: AtomicBool,
    /// Where storage errors are reported, with the `log.dirs` entry holding this log; `None`
    /// for partitions built without a replica manager (tests).
    health: Option<(Arc<LogDirHealth>, PathBuf)>,
    /// Long-polling fetches waiting on this partition (Kafka's delayed-fetch watch list):
    /// woken when data arrives, the high watermark moves or leadership changes. Weak, so a
    /// fetch that ended leaves nothing behind but a dead entry, pruned at the next
    /// registration; at most one entry per fetch waiting here.
    fetch_waiters: Mutex<Vec<Weak<Notify>>>,
    /// KIP-890 verifications in flight (`verification.rs`).
    verifications: Mutex<verification::Verifications>,
}

impl Partition {
    /// Wraps an opened log; this node is neither leader nor follower until
    /// [`Partition::apply_meta`].
    pub fn new(
        tp: TopicPartition,
        topic_id: Uuid,
        log: PartitionLog,
        leader_epoch: LeaderEpoch,
    ) -> Partition {
        let leo = log.log_end_offset().0;
        let start = log.log_start_offset().0;
        Partition {
            tp,
            topic_id,
            log_end: AtomicI64::new(leo),
            log_start: AtomicI64::new(start),
            size: AtomicI64::new(log.size_bytes() as i64),
            high_watermark: AtomicI64::new(start),
            log: Mutex::new(log),
            leader_epoch: AtomicI32::new(leader_epoch.0),
            leader: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            repl: Mutex::new(Replication {
                node: BrokerId(-1),
                replicas: Vec::new(),
                isr: Vec::new(),
                partition_epoch: -1,
                min_isr: 1,
                epoch_start_offset: leo,
                followers: HashMap::new(),
                isr_change_blocked_until: None,
            }),
            changed: watch::channel(0).0,
            offline: AtomicBool::new(false),
            health: None,
            fetch_waiters: Mutex::new(Vec::new()),
            verifications: Mutex::new(verification::Verifications::default()),
        }
    }

    /// Registers a waiting fetch, to be notified when this partition has something new for
    /// it (see `fetch_waiters`).
    pub fn watch_for_fetch(&self, waiter: &Arc<Notify>) {
        let mut w = self.fetch_waiters.lock().unwrap_or_else(|p| p.into_inner());
        w.retain(|x| x.strong_count() > 0 && !std::ptr::eq(x.as_ptr(), Arc::as_ptr(waiter)));
        w.push(Arc::downgrade(waiter));
    }

    /// Wakes every fetch waiting on this partition.
    fn wake_fetches(&self) {
        let waiters =
            std::mem::take(&mut *self.fetch_waiters.lock().unwrap_or_else(|p| p.into_inner()));
        for w in waiters {
            if let Some(n) = w.upgrade() {
                n.notify_one();
            }
        }
    }

    /// Reports this partition's storage errors to `health`, as part of log dir `root`.
    pub fn with_health(mut self, health: Arc<LogDirHealth>, root: PathBuf) -> Partition {
        self.health = Some((health, root));
        self
    }

    /// The `log.dirs` entry holding this partition's log, when known.
    pub fn log_dir_root(&self) -> Option<&Path> {
        self.health.as_ref().map(|(_, root)| root.as_path())
    }

    /// Takes this partition offline (its log dir failed): operations fail with
    /// KAFKA_STORAGE_ERROR, waiting acks=all produces are woken to fail.
    pub fn set_offline(&self) {
        if !self.offline.swap(true, Ordering::AcqRel) {
            self.bump();
        }
    }

    /// Whether this partition's log dir is offline.
    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Acquire)
    }

    fn offline_error(&self) -> LogError {
        LogError::Offline(format!(
            "the log dir holding {} is offline after a storage error",
            self.tp
        ))
    }

    /// Passes a log result through, reporting a storage error to the log dir's health (which
    /// may take the whole dir, this partition included, offline).
    fn checked<T>(&self, r: Result<T, LogError>) -> Result<T, LogError> {
        if let (Err(LogError::Io(e)), Some((health, root))) = (&r, &self.health) {
            if health.record_error(root, e, crate::time::now_ms()) {
                self.set_offline();
            }
        }
        r
    }

    fn log(&self) -> Result<MutexGuard<'_, PartitionLog>, KafkaError> {
        if self.is_offline() {
            return Err(self.offline_error().into());
        }
        self.log
            .lock()
            .map_err(|_| KafkaError::Unknown(format!("log lock of {} poisoned", self.tp)))
    }

    fn repl(&self) -> MutexGuard<'_, Replication> {
        // The state is plain data, consistent after every statement: a panic elsewhere does
        // not leave it half-updated.
        self.repl.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
        self.wake_fetches();
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> LeaderEpoch {
        LeaderEpoch(self.leader_epoch.load(Ordering::Acquire))
    }

    /// True while this node leads the partition.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    /// Takes the partition's state from a committed metadata image: leader epoch, leadership,
    /// replicas, ISR and `min.insync.replicas`. Becoming leader (or a new leader epoch) resets
    /// what is known of the followers: each gets `replica.lag.time.max.ms` from now to catch
    /// up. Returns true when this node's role or the leader epoch changed.
    pub fn apply_meta(&self, node: BrokerId, meta: &PartitionMeta, min_isr: usize) -> bool {
        // The log lock orders this against follower appends and truncations.
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let leo = log.log_end_offset().0;
        let was_leader = self.is_leader();
        let old_epoch = self.leader_epoch();
        let leader_now = meta.leader == node;
        let role_changed = was_leader != leader_now || old_epoch != meta.leader_epoch;
        self.leader_epoch
            .store(meta.leader_epoch.0, Ordering::Release);
        self.leader.store(leader_now, Ordering::Release);
        let mut r = self.repl();
        let isr_changed = r.isr != meta.isr || r.partition_epoch != meta.partition_epoch;
        r.node = node;
        r.replicas = meta.replicas.clone();
        r.isr = meta.isr.clone();
        r.partition_epoch = meta.partition_epoch;
        r.min_isr = min_isr.max(1);
        if leader_now {
            let now = Instant::now();
            if role_changed {
                r.followers.clear();
                r.epoch_start_offset = leo;
                r.isr_change_blocked_until = None;
                tracing::info!(partition = %self.tp, epoch = meta.leader_epoch.0, isr = ?meta.isr, log_end = leo, "leading partition");
            }
            let replicas = r.replicas.clone();
            r.followers.retain(|id, _| replicas.contains(id));
            for id in replicas.iter().filter(|id| **id != node) {
                r.followers.entry(*id).or_insert(FollowerState {
                    log_end_offset: -1,
                    last_fetch: now,
                    last_fetch_leader_leo: -1,
                    last_caught_up: now,
                });
            }
            self.advance_high_watermark(&r);
        } else {
            r.followers.clear();
            r.isr_change_blocked_until = None;
            self.cap_high_watermark(leo);
            if role_changed && was_leader {
                tracing::info!(partition = %self.tp, epoch = meta.leader_epoch.0, leader = meta.leader.0, "no longer leading partition");
            }
        }
        drop(r);
        self.pass_high_watermark(&mut log);
        drop(log);
        if role_changed || isr_changed {
            self.bump();
        }
        role_changed
    }

    /// At open: starts from the checkpointed high watermark `hw` (Kafka's
    /// `replication-offset-checkpoint`), kept within the log.
    pub fn restore_high_watermark(&self, hw: i64) {
        let hw = hw.clamp(self.log_start_offset().0, self.log_end_offset().0);
        self.high_watermark.store(hw, Ordering::Release);
        // The rebuild at open kept every decided transaction: drop those the hw passed.
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        self.pass_high_watermark(&mut log);
    }

    /// The high watermark: the end of what consumers may read.
    pub fn high_watermark(&self) -> Offset {
        Offset(self.high_watermark.load(Ordering::Acquire))
    }

    /// The log end offset.
    pub fn log_end_offset(&self) -> Offset {
        Offset(self.log_end.load(Ordering::Acquire))
    }

    /// The log start offset.
    pub fn log_start_offset(&self) -> Offset {
        Offset(self.log_start.load(Ordering::Acquire))
    }

    /// Bytes on disk.
    pub fn size_bytes(&self) -> u64 {
        self.size.load(Ordering::Relaxed).max(0) as u64
    }

    /// The in-sync replicas of the committed image.
    pub fn isr(&self) -> Vec<BrokerId> {
        self.repl().isr.clone()
    }

    /// The assigned replicas.
    pub fn replicas(&self) -> Vec<BrokerId> {
        self.repl().replicas.clone()
    }

    /// `min.insync.replicas` of the topic.
    pub fn min_isr(&self) -> usize {
        self.repl().min_isr
    }

    /// What the leader knows of each follower (empty on a follower).
    pub fn followers(&self) -> Vec<(BrokerId, FollowerState)> {
        let mut v: Vec<_> = self
            .repl()
            .followers
            .iter()
            .map(|(id, s)| (*id, s.clone()))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        v
    }

    /// Checks a client's idea of the leader epoch (KIP-320): older is fenced, newer is unknown.
    pub fn check_epoch(&self, client_epoch: i32) -> Result<(), KafkaError> {
        let mine = self.leader_epoch().0;
        if client_epoch < 0 || client_epoch == mine {
            Ok(())
        } else if client_epoch < mine {
            Err(KafkaError::FencedLeaderEpoch(format!(
                "{}: request epoch {client_epoch} is older than the current leader epoch {mine}",
                self.tp
            )))
        } else {
            Err(KafkaError::UnknownLeaderEpoch(format!(
                "{}: request epoch {client_epoch} is newer than the current leader epoch {mine}",
                self.tp
            )))
        }
    }

    /// Appends a produce request's (or the group coordinator's) batches as leader.
    pub fn append(&self, records: &[u8], now_ms: i64) -> Result<AppendInfo, KafkaError> {
        self.append_as_leader(records, now_ms).map(|(info, _)| info)
    }

    /// Appends as leader and returns the leader epoch the batches were written in, which an
    /// acks=all produce then waits under.
    pub fn append_as_leader(
        &self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<(AppendInfo, LeaderEpoch), KafkaError> {
        self.leader_append(|log, epoch| log.append_as_leader(records, epoch, now_ms))
    }

    /// Appends batches a coordinator of this node wrote (the group coordinator's
    /// TxnOffsetCommit records: a transactional batch without sequence) as leader, with the
    /// leader epoch for the acks=all wait. Refusals are the log's (`append_as_coordinator`):
    /// a stale producer epoch is INVALID_PRODUCER_EPOCH.
    pub fn append_as_coordinator(
        &self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<(AppendInfo, LeaderEpoch), KafkaError> {
        self.leader_append(|log, epoch| log.append_as_coordinator(records, epoch, now_ms))
    }

    /// Appends a transaction marker (COMMIT when `commit`, else ABORT) for `producer_id` as
    /// leader (WriteTxnMarkers, or the coordinator's own partitions), with the leader epoch it
    /// was written in for the acks=all wait. Refusals are the log's (`append_control`):
    /// INVALID_PRODUCER_EPOCH, TRANSACTION_COORDINATOR_FENCED.
    pub fn append_control(
        &self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        coordinator_epoch: CoordinatorEpoch,
        commit: bool,
        now_ms: i64,
    ) -> Result<(AppendInfo, LeaderEpoch), KafkaError> {
        self.leader_append(|log, epoch| {
            let info = log.append_control(
                producer_id,
                producer_epoch,
                coordinator_epoch,
                commit,
                epoch,
                now_ms,
            )?;
            self.end_verification(producer_id);
            Ok(info)
        })
    }

    /// One leader append through `append`, under the log lock: refused on a closed partition
    /// or a follower, then the cached offsets refreshed, fetches woken and the high watermark
    /// advanced.
    fn leader_append(
        &self,
        append: impl FnOnce(&mut PartitionLog, LeaderEpoch) -> Result<AppendInfo, LogError>,
    ) -> Result<(AppendInfo, LeaderEpoch), KafkaError> {
        let mut log = self.log()?;
        // Checked under the lock that close() takes: nothing lands after the clean marker.
        if self.closed.load(Ordering::Acquire) {
            return Err(KafkaError::NotLeaderOrFollower(format!(
                "{} is closed: the broker is shutting down",
                self.tp
            )));
        }
        // Under the lock leadership changes take: a follower's log only takes the leader's data.
        if !self.is_leader() {
            return Err(KafkaError::NotLeaderOrFollower(format!(
                "This node is not the leader of {}.",
                self.tp
            )));
        }
        let epoch = self.leader_epoch();
        let info = self.checked(append(&mut log, epoch))?;
        self.refresh(&log);
        drop(log);
        // Followers long-poll for new data, whether or not the high watermark moves.
        self.wake_fetches();
        let r = self.repl();
        self.advance_high_watermark(&r);
        Ok((info, epoch))
    }

    /// NOT_ENOUGH_REPLICAS when an acks=all write must be refused before it is appended: the
    /// ISR is smaller than `min.insync.replicas`.
    pub fn check_enough_replicas(&self) -> Result<(), KafkaError> {
        let r = self.repl();
        if r.isr.len() < r.min_isr {
            return Err(KafkaError::NotEnoughReplicas(format!(
                    "The size of the current ISR {:?} is insufficient to satisfy the min.isr requirement of {} for partition {}",
                    r.isr, r.min_isr, self.tp
                )));
        }
        Ok(())
    }

    /// Waits until the high watermark reaches `end` (one past the last offset of an acks=all
    /// append made in `epoch`), or `deadline`. Fails with NOT_LEADER_OR_FOLLOWER if leadership
    /// moves, NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR that committed it is smaller than
    /// `min.insync.replicas`, REQUEST_TIMED_OUT at the deadline. Holds no lock while waiting.
    pub async fn wait_replicated(
        &self,
        end: Offset,
        epoch: LeaderEpoch,
        deadline: tokio::time::Instant,
    ) -> Result<(), KafkaError> {
        let mut rx = self.changed.subscribe();
        loop {
            if self.is_offline() {
                return Err(KafkaError::Log(self.offline_error()));
            }
            if self.closed.load(Ordering::Acquire)
                || !self.is_leader()
                || self.leader_epoch() != epoch
            {
                return Err(KafkaError::NotLeaderOrFollower(format!(
                    "Leadership of {} changed before the write was replicated.",
                    self.tp
                )));
            }
            if self.high_watermark() >= end {
                let r = self.repl();
                if r.isr.len() < r.min_isr {
                    return Err(KafkaError::NotEnoughReplicasAfterAppend(format!(
                            "The write to {} was appended, but the ISR {:?} shrank below min.insync.replicas={}",
                            self.tp, r.isr, r.min_isr
                        )));
                }
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives as long as the partition, which outlives this borrow.
                Ok(Err(_)) | Err(_) => {
                    if self.high_watermark() >= end && self.is_leader() {
                        continue;
                    }
                    return Err(KafkaError::RequestTimedOut(format!(
                        "{}: the write was not replicated to the ISR within the request timeout",
                        self.tp
                    )));
                }
            }
        }
    }

    /// Leader: records a follower's fetch at `fetch_offset` (its log end offset): updates its
    /// position and caught-up time (Kafka's rule: caught up now if it asked for the log end,
    /// or caught up as of its previous fetch if it asked for what was the log end then),
    /// advances the high watermark, and says whether it may join the ISR.
    pub fn record_follower_fetch(
        &self,
        replica: BrokerId,
        fetch_offset: i64,
        now: Instant,
    ) -> FetchUpdate {
        let mut out = FetchUpdate::default();
        if !self.is_leader() {
            return out;
        }
        let leo = self.log_end_offset().0;
        if fetch_offset < 0 || fetch_offset > leo {
            return out;
        }
        let mut r = self.repl();
        let Some(f) = r.followers.get_mut(&replica) else {
            return out;
        };
        if fetch_offset >= leo {
            f.last_caught_up = now;
        } else if fetch_offset >= f.last_fetch_leader_leo && f.last_fetch_leader_leo >= 0 {
            f.last_caught_up = f.last_caught_up.max(f.last_fetch);
        }
        f.last_fetch_leader_leo = leo;
        f.last_fetch = now;
        f.log_end_offset = fetch_offset;
        out.high_watermark_moved = self.advance_high_watermark(&r);
        let hw = self.high_watermark().0;
        if !r.isr.contains(&replica)
            && fetch_offset >= hw
            && fetch_offset >= r.epoch_start_offset
            && r.isr_change_blocked_until.is_none_or(|t| now >= t)
        {
            let mut isr = r.isr.clone();
            isr.push(replica);
            r.isr_change_blocked_until = Some(now + Duration::from_secs(3600));
            out.expand = Some(IsrChange {
                leader: r.node,
                leader_epoch: self.leader_epoch(),
                partition_epoch: r.partition_epoch,
                isr,
            });
        }
        out
    }

    /// Leader: an ISR without the followers that have not caught up for `lag_max`
    /// (`replica.lag.time.max.ms`), if there are any and no other change is in flight.
    pub fn shrink_candidate(&self, now: Instant, lag_max: Duration) -> Option<IsrChange> {
        if !self.is_leader() {
            return None;
        }
        let mut r = self.repl();
        if r.isr_change_blocked_until.is_some_and(|t| now < t) {
            return None;
        }
        let node = r.node;
        let out: Vec<BrokerId> = r
            .isr
            .iter()
            .filter(|id| **id != node)
            .filter(|id| {
                r.followers
                    .get(id)
                    .is_none_or(|f| now.saturating_duration_since(f.last_caught_up) > lag_max)
            })
            .copied()
            .collect();
        if out.is_empty() {
            return None;
        }
        let isr: Vec<BrokerId> = r
            .isr
            .iter()
            .filter(|id| !out.contains(id))
            .copied()
            .collect();
        tracing::info!(partition = %self.tp, from = ?r.isr, to = ?isr, lagging = ?out, "shrinking ISR");
        r.isr_change_blocked_until = Some(now + Duration::from_secs(3600));
        Some(IsrChange {
            leader: node,
            leader_epoch: self.leader_epoch(),
            partition_epoch: r.partition_epoch,
            isr,
        })
    }

    /// An ISR change proposed by this node finished: another may be proposed (soon, if this
    /// one failed).
    pub fn isr_change_done(&self, ok: bool) {
        let mut r = self.repl();
        r.isr_change_blocked_until = if ok {
            None
        } else {
            Some(Instant::now() + ISR_RETRY_AFTER)
        };
    }

    /// Moves the leader's high watermark up to the minimum log end offset over the ISR.
    /// Returns whether it moved (and wakes acks=all waiters if so).
    fn advance_high_watermark(&self, r: &Replication) -> bool {
        if !self.is_leader() {
            return false;
        }
        let own_leo = self.log_end_offset().0;
        let mut candidate = own_leo;
        for id in r.isr.iter().filter(|id| **id != r.node) {
            let leo = r.followers.get(id).map_or(-1, |f| f.log_end_offset);
            candidate = candidate.min(leo);
        }
        // The high watermark is a minimum over the ISR, this log included.
        debug_assert!(candidate <= own_leo);
        let old = self.high_watermark.load(Ordering::Acquire);
        if candidate > old {
            self.high_watermark.store(candidate, Ordering::Release);
            // The caller holds the replication lock, which comes after the log's: only try the
            // log. A miss costs nothing but memory until the next report (the LSO ignores
            // transactions the hw passed), and reads and later moves report again.
            if let Ok(mut log) = self.log.try_lock() {
                self.pass_high_watermark(&mut log);
            }
            self.bump();
            true
        } else {
            false
        }
    }

    /// Keeps the high watermark at or below the log end (after a truncation).
    fn cap_high_watermark(&self, leo: i64) {
        let hw = self.high_watermark.load(Ordering::Acquire);
        if hw > leo {
            self.high_watermark.store(leo, Ordering::Release);
        }
        let start = self.log_start.load(Ordering::Acquire);
        if self.high_watermark.load(Ordering::Acquire) < start {
            self.high_watermark.store(start, Ordering::Release);
        }
    }

    /// Follower: appends batches fetched from the leader in `epoch`. `Ok(None)` when this node
    /// is no longer a follower in that epoch (the data is dropped).
    pub fn append_as_follower(
        &self,
        records: &[u8],
        epoch: LeaderEpoch,
    ) -> Result<Option<AppendInfo>, KafkaError> {
        let mut log = self.log()?;
        if self.closed.load(Ordering::Acquire) || self.is_leader() || self.leader_epoch() != epoch {
            return Ok(None);
        }
        let info = self.checked(log.append_as_follower(records))?;
        self.refresh(&log);
        self.pass_high_watermark(&mut log);
        Ok(Some(info))
    }

    /// Follower: truncates the log to `offset` (divergent data found through OffsetForLeaderEpoch
    /// or a diverging epoch); false when this node is no longer a follower in `epoch`.
    pub fn truncate_as_follower(
        &self,
        offset: Offset,
        epoch: LeaderEpoch,
    ) -> Result<bool, KafkaError> {
        let mut log = self.log()?;
        if self.closed.load(Ordering::Acquire) || self.is_leader() || self.leader_epoch() != epoch {
            return Ok(false);
        }
        if offset < log.log_end_offset() {
            tracing::info!(partition = %self.tp, from = log.log_end_offset().0, to = offset.0, "follower truncating divergent log");
            self.checked(log.truncate_to(offset))?;
        }
        self.refresh(&log);
        // The truncation rebuilt the log's transactions from its batches.
        self.pass_high_watermark(&mut log);
        Ok(true)
    }

    /// Follower: moves the log start offset up to the leader's (DeleteRecords or retention on
    /// the leader), within the local log.
    pub fn advance_log_start_as_follower(&self, start: Offset) -> Result<(), KafkaError> {
        let mut log = self.log()?;
        if self.is_leader() || start <= log.log_start_offset() || start > log.log_end_offset() {
            return Ok(());
        }
        let end = log.log_end_offset();
        self.checked(log.delete_records_before(start, end))?;
        self.refresh(&log);
        Ok(())
    }

    /// Follower: takes the leader's high watermark, capped by the local log end.
    pub fn set_follower_high_watermark(&self, leader_hw: i64) {
        if self.is_leader() || leader_hw < 0 {
            return;
        }
        let hw = leader_hw.min(self.log_end_offset().0);
        let old = self.high_watermark.swap(hw, Ordering::AcqRel);
        if old != hw {
            if let Ok(mut log) = self.log() {
                self.pass_high_watermark(&mut log);
            }
            self.bump();
        }
    }

    /// The newest leader epoch in the log's leader-epoch cache.
    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.log().ok()?.latest_epoch()
    }

    /// The leader-epoch cache's end offset for `epoch` (see `PartitionLog::end_offset_for_epoch`).
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        self.log().ok()?.end_offset_for_epoch(epoch)
    }

    /// Runs `f` with the log locked (ListOffsets, DeleteRecords, retention, ...), then refreshes
    /// the cached offsets.
    pub fn with_log<T>(
        &self,
        f: impl FnOnce(&mut PartitionLog) -> Result<T, LogError>,
    ) -> Result<T, KafkaError> {
        let mut log = self.log()?;
        let out = self.checked(f(&mut log));
        self.refresh(&log);
        self.pass_high_watermark(&mut log);
        drop(log);
        if self.is_leader() {
            let r = self.repl();
            self.advance_high_watermark(&r);
        }
        Ok(out?)
    }

    /// Applies new topic configs.
    pub fn set_config(&self, config: LogConfig) {
        if let Ok(mut log) = self.log.lock() {
            log.set_config(config);
        }
    }

    /// Flushes and marks the log cleanly closed; the partition is unusable afterwards.
    pub fn close(&self) -> Result<(), LogError> {
        let mut log = self
            .log
            .lock()
            .map_err(|_| LogError::Corrupted("log lock poisoned".into()))?;
        self.closed.store(true, Ordering::Release);
        self.bump();
        if self.is_offline() {
            // No clean-shutdown marker: the next start must recover the log's tail.
            return Err(self.offline_error());
        }
        log.flush()?;
        let dir = log.dir().to_path_buf();
        // The marker skips recovery at the next start, so it must be durable itself.
        std::fs::File::create(dir.join(crate::log::CLEAN_SHUTDOWN_FILE))?.sync_all()?;
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(())
    }

    fn refresh(&self, log: &PartitionLog) {
        let leo = log.log_end_offset().0;
        debug_assert!(
            log.log_start_offset().0 <= leo,
            "the log start never passes the log end"
        );
        self.log_end.store(leo, Ordering::Release);
        self.log_start
            .store(log.log_start_offset().0, Ordering::Release);
        self.size.store(log.size_bytes() as i64, Ordering::Relaxed);
        if !self.is_leader() {
            self.cap_high_watermark(leo);
        }
    }
}
