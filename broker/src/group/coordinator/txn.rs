//! The coordinator's transactional requests: TxnOffsetCommit (Kafka's
//! `GroupCoordinator.handleTxnCommitOffsets` / `doTxnCommitOffsets` and
//! `GroupMetadataManager.storeOffsets` for a producer) and the completion the transaction
//! markers trigger (`GroupMetadataManager.handleTxnCompletion`). The pending offsets themselves
//! and their rules are `txn_offsets.rs`.
//!
//! KIP-890 verification (that AddOffsetsToTxn added the partition to the transaction) is not
//! done here yet.

use kafka_protocol::error::ResponseError;

use super::{GroupCoordinator, OffsetToCommit, PendingCommit};
use crate::error::KafkaError;
use crate::group::entry::{GroupEntry, LoggedOffset};
use crate::group::state::{Group, GroupState};
use crate::group::store::{self, Entry, OffsetValue};
use crate::group::txn_offsets::{self, MAX_PENDING_TXN_OFFSETS_PER_PARTITION};
use crate::repeated::Repeated;
use crate::time::now_ms;
use crate::types::{Offset, ProducerEpoch, ProducerId, TopicPartition};

/// One TxnOffsetCommit request, as the handler passes it (v0-2 carry no member fields: -1,
/// "" and `None`).
#[derive(Debug, Clone)]
pub struct TxnOffsetCommit<'a> {
    /// The group.
    pub group_id: &'a str,
    /// The transactional producer.
    pub producer_id: ProducerId,
    /// Its epoch.
    pub producer_epoch: ProducerEpoch,
    /// The member committing (v3+; "" when not given).
    pub member_id: &'a str,
    /// Its static instance id (v3+).
    pub instance_id: Option<&'a str>,
    /// The generation it belongs to (v3+; -1 when not given).
    pub generation: i32,
    /// The offsets, each already authorized.
    pub offsets: &'a [OffsetToCommit],
    /// The KIP-890 verification the append must still hold (`replica::VerificationGuard`),
    /// when the transaction coordinator was asked.
    pub verification: Option<&'a crate::replica::VerificationGuard>,
}

/// Logs a refused commit at most once per interval (a busy partition at its cap would
/// otherwise log every request).
static CAP_REACHED: std::sync::LazyLock<Repeated> = std::sync::LazyLock::new(Repeated::default);

impl GroupCoordinator {
    /// TxnOffsetCommit: per-partition error codes in request order, and the append to wait on
    /// (acks=all) when something was written.
    ///
    /// Kafka's order: a partition that does not exist is UNKNOWN_TOPIC_OR_PARTITION whatever
    /// the group's state; then the group (INVALID_GROUP_ID, NOT_COORDINATOR,
    /// COORDINATOR_LOAD_IN_PROGRESS; an unknown group is created Empty); then the member when
    /// one is named (FENCED_INSTANCE_ID, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION; without member
    /// fields, as v0-2 send, any group state is accepted, unlike OffsetCommit); then
    /// OFFSET_METADATA_TOO_LARGE per partition. The rest is appended as one transactional
    /// batch of the producer and held pending until its marker ([`Self::complete_txn`]); a
    /// stale producer epoch is INVALID_PRODUCER_EPOCH, from the log.
    pub fn commit_txn(&self, c: &TxnOffsetCommit<'_>) -> (Vec<i16>, Option<PendingCommit>) {
        let image = self.log.image();
        let mut codes: Vec<i16> = c
            .offsets
            .iter()
            .map(|o| {
                if image.partition(&o.topic, o.partition).is_some() {
                    0
                } else {
                    ResponseError::UnknownTopicOrPartition.code()
                }
            })
            .collect();
        let fail = |codes: Vec<i16>, err: ResponseError| -> (Vec<i16>, Option<PendingCommit>) {
            let codes = codes
                .into_iter()
                .map(|x| if x == 0 { err.code() } else { x })
                .collect();
            (codes, None)
        };
        if c.group_id.is_empty() {
            return fail(codes, ResponseError::InvalidGroupId);
        }
        if c.producer_id.0 < 0 || c.producer_epoch.0 < 0 {
            // No coordinator hands these out; a batch under them would open nothing.
            return fail(codes, ResponseError::InvalidProducerIdMapping);
        }
        let p = match self.owner(c.group_id) {
            Ok(p) => p,
            Err(e) => return fail(codes, e),
        };
        let offsets_partition = p.tp.partition;
        let mut groups = self.lock();
        let e = groups
            .entry(c.group_id.to_string())
            .or_insert_with(|| GroupEntry::new(c.group_id));
        if e.group.state == GroupState::Dead {
            // A deleted group is a new one to Kafka (its cache lookup finds none).
            e.group = Group::new(c.group_id);
        }
        let valid = match &e.consumer {
            Some(cg) => cg.validate_txn_commit(c.member_id, c.generation),
            None => validate_member(&e.group, c),
        };
        if let Err(err) = valid {
            return fail(codes, err);
        }
        let now = now_ms();
        let mut entries = Vec::new();
        let mut values = Vec::new();
        for (o, code) in c.offsets.iter().zip(codes.iter_mut()) {
            if *code != 0 {
                continue;
            }
            let metadata = o.metadata.clone().unwrap_or_default();
            if metadata.len() > self.config.metadata_max_bytes {
                *code = ResponseError::OffsetMetadataTooLarge.code();
                continue;
            }
            let v = OffsetValue {
                offset: o.offset,
                leader_epoch: o.leader_epoch,
                metadata,
                commit_timestamp: now,
            };
            entries.push(Entry::offset(c.group_id, &o.topic, o.partition, &v));
            values.push((TopicPartition::new(&o.topic, o.partition), v));
        }
        if entries.is_empty() {
            return (codes, None);
        }
        let mut txn = self.txn_lock();
        let pending = txn.entry(offsets_partition).or_default();
        if pending.len() + entries.len() > MAX_PENDING_TXN_OFFSETS_PER_PARTITION {
            if let Some(left_out) = CAP_REACHED.check("pending transactional offsets cap") {
                tracing::warn!(
                    partition = %p.tp,
                    left_out,
                    pending = pending.len(),
                    cap = MAX_PENDING_TXN_OFFSETS_PER_PARTITION,
                    "too many pending transactional offsets; TxnOffsetCommit refused until transactions end"
                );
            }
            return fail(codes, ResponseError::CoordinatorNotAvailable);
        }
        let bytes = match store::encode_txn(&entries, now, c.producer_id.0, c.producer_epoch.0) {
            Ok(b) => b,
            Err(err) => {
                tracing::error!(error = %err, "cannot encode transactional offset records");
                return fail(codes, ResponseError::UnknownServerError);
            }
        };
        let appended = match c.verification {
            Some(g) => p.append_as_coordinator_verified(&bytes, now, g),
            None => p.append_as_coordinator(&bytes, now),
        };
        let (info, epoch) = match appended {
            Ok(appended) => appended,
            Err(err) => {
                if !matches!(
                    err,
                    KafkaError::Log(crate::log::LogError::InvalidProducerEpoch { .. })
                ) {
                    tracing::warn!(partition = %p.tp, error = %err, "cannot persist transactional offsets");
                }
                return fail(codes, append_error(&err));
            }
        };
        debug_assert!(
            !info.duplicate,
            "coordinator batches are never deduplicated"
        );
        // Pending from now on, whether or not replication then succeeds: the records are in
        // the log, and a replay would hold them pending too.
        for (tp, value) in values {
            let logged = LoggedOffset {
                value,
                log_offset: info.first_offset.0,
            };
            pending.add(c.producer_id.0, c.group_id, tp, logged);
        }
        tracing::debug!(
            group = c.group_id,
            producer_id = c.producer_id.0,
            offsets = entries.len(),
            base = info.first_offset.0,
            "transactional offsets pending"
        );
        let commit = PendingCommit {
            partition: p.clone(),
            end: Offset(info.last_offset.0 + 1),
            epoch,
        };
        (codes, Some(commit))
    }

    /// Ends `producer_id`'s transaction in `__consumer_offsets` partition `offsets_partition`:
    /// called after its COMMIT (`commit`) or ABORT marker was appended there on this node. On
    /// COMMIT the producer's pending offsets of that partition's groups become committed
    /// (each unless a plain commit was appended after it); on ABORT they are dropped. A
    /// partition still being replayed gets the completion once its replay is installed; one
    /// this node does not coordinate is left alone (its next coordinator replays the marker).
    /// Call it after the marker's append returned, not under the partition's log lock (it
    /// takes the coordinator's locks, which are held across the coordinator's own appends).
    pub fn complete_txn(&self, offsets_partition: i32, producer_id: ProducerId, commit: bool) {
        {
            let mut loads = self.loads.lock().unwrap_or_else(|e| e.into_inner());
            if loads.loading.contains_key(&offsets_partition) {
                loads
                    .deferred
                    .entry(offsets_partition)
                    .or_default()
                    .entry(producer_id.0)
                    .or_insert(commit);
                return;
            }
            if !loads.loaded.contains(&offsets_partition) {
                tracing::debug!(
                    partition = offsets_partition,
                    producer_id = producer_id.0,
                    "transaction completion for an offsets partition not coordinated here"
                );
                return;
            }
        }
        // Released `loads` first (lock order). Should the partition move meanwhile, its new
        // replay reads the marker already in the log; applying here then finds nothing.
        let mut groups = self.lock();
        let mut txn = self.txn_lock();
        let Some(pending) = txn.get_mut(&offsets_partition) else {
            return;
        };
        let applied = txn_offsets::complete(&mut groups, pending, producer_id.0, commit);
        tracing::debug!(
            partition = offsets_partition,
            producer_id = producer_id.0,
            commit,
            applied,
            "transactional offsets completed"
        );
    }
}

/// Kafka's `validateOffsetCommit` for a transactional commit: member fields, when given, must
/// name a current member of the current generation; without them any group state will do.
fn validate_member(g: &Group, c: &TxnOffsetCommit<'_>) -> Result<(), ResponseError> {
    if c.generation < 0 && c.member_id.is_empty() && c.instance_id.is_none() {
        return Ok(());
    }
    if let Some(i) = c.instance_id {
        let owner = g
            .members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(i))
            .map(|m| m.id.as_str());
        if owner.is_some_and(|m| m != c.member_id) {
            return Err(ResponseError::FencedInstanceId);
        }
    }
    if !g.members.contains_key(c.member_id) {
        return Err(ResponseError::UnknownMemberId);
    }
    if c.generation != g.generation {
        return Err(ResponseError::IllegalGeneration);
    }
    Ok(())
}

/// Kafka's `maybeConvertOffsetCommitError` for a failed append of offsets.
fn append_error(e: &KafkaError) -> ResponseError {
    match e.response_error() {
        ResponseError::UnknownTopicOrPartition
        | ResponseError::NotEnoughReplicas
        | ResponseError::NotEnoughReplicasAfterAppend => ResponseError::CoordinatorNotAvailable,
        ResponseError::NotLeaderOrFollower | ResponseError::KafkaStorageError => {
            ResponseError::NotCoordinator
        }
        ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge => {
            ResponseError::InvalidCommitOffsetSize
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;

    use super::*;
    use crate::group::state::{GroupTimings, JoinRequest};

    /// Joins a static member (`instance`) to `g`; returns its member id (generation 1).
    fn join_static(g: &mut Group, instance: &str) -> String {
        let req = |member: &str| JoinRequest {
            member_id: member.into(),
            instance_id: Some(instance.to_string()),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(5),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"m"))],
            require_known_member_id: true,
        };
        let timings = GroupTimings {
            initial_delay: Duration::ZERO,
        };
        let mut rx = g.join(req(""), timings, Instant::now());
        let mut r = rx.try_recv().expect("a single member is answered at once");
        if r.error == ResponseError::MemberIdRequired.code() {
            let mut rx = g.join(req(&r.member_id), timings, Instant::now());
            r = rx.try_recv().expect("answered at once");
        }
        assert_eq!((r.error, r.generation), (0, 1));
        r.member_id
    }

    fn check(g: &Group, member: &str, instance: Option<&str>, generation: i32) -> i16 {
        let c = TxnOffsetCommit {
            group_id: "g",
            producer_id: ProducerId(1),
            producer_epoch: ProducerEpoch(0),
            member_id: member,
            instance_id: instance,
            generation,
            offsets: &[],
            verification: None,
        };
        validate_member(g, &c).err().map_or(0, |e| e.code())
    }

    #[test]
    fn member_fields_are_checked_like_kafkas_transactional_commits() {
        let mut g = Group::new("g");
        let id = join_static(&mut g, "i");
        assert_ne!(g.state, GroupState::Empty);
        // Without member fields (v0-2) any group state will do.
        assert_eq!(check(&g, "", None, -1), 0);
        assert_eq!(check(&g, &id, Some("i"), 1), 0);
        assert_eq!(check(&g, &id, None, 1), 0);
        assert_eq!(check(&g, "other", Some("i"), 1), 82, "FENCED_INSTANCE_ID");
        assert_eq!(check(&g, "ghost", None, 1), 25, "UNKNOWN_MEMBER_ID");
        assert_eq!(check(&g, "", Some("j"), -1), 25, "an unknown instance");
        assert_eq!(check(&g, &id, None, 2), 22, "ILLEGAL_GENERATION");
        assert_eq!(
            check(&g, &id, None, -1),
            22,
            "a member must name its generation"
        );
        assert_eq!(
            check(&Group::new("g"), "", None, 0),
            25,
            "generation 0 names a member"
        );
    }

    #[test]
    fn append_errors_map_as_kafkas_offset_commits() {
        let cases = [
            (KafkaError::NotLeaderOrFollower(String::new()), 16),
            (KafkaError::NotEnoughReplicas(String::new()), 15),
            (
                KafkaError::Log(crate::log::LogError::MessageTooLarge { size: 2, max: 1 }),
                28,
            ),
            (
                KafkaError::Log(crate::log::LogError::InvalidProducerEpoch {
                    producer_id: ProducerId(1),
                    current: ProducerEpoch(2),
                    received: ProducerEpoch(1),
                }),
                47,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(append_error(&e).code(), code, "{e:?}");
        }
    }
}

/// The coordinator on a node in process (its own metadata quorum of one, a replica manager,
/// real `__consumer_offsets` partitions): TxnOffsetCommit, the marker appended by the
/// partition, then `complete_txn`, as the transaction coordinator will drive it.
#[cfg(test)]
mod live_tests {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::config::BrokerConfig;
    use crate::controller::{Controller, TopicCreation};
    use crate::group::offsets_log::OffsetsLog;
    use crate::metadata::BrokerInfo;
    use crate::replica::ReplicaManager;
    use crate::types::{BrokerId, CoordinatorEpoch};

    fn must<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }

    struct Node {
        controller: Arc<Controller>,
        replicas: Arc<ReplicaManager>,
        groups: Arc<GroupCoordinator>,
    }

    async fn node(dir: &Path) -> Node {
        let logs = dir.join("logs");
        must(std::fs::create_dir_all(&logs));
        let overrides = [
            format!("log.dirs={}", logs.display()),
            "offsets.topic.num.partitions=1".to_string(),
            "offsets.topic.replication.factor=1".to_string(),
        ];
        let cfg = Arc::new(must(BrokerConfig::load(None, &overrides)));
        let me = BrokerInfo {
            endpoints: Vec::new(),
            id: BrokerId(cfg.node_id),
            host: "127.0.0.1".into(),
            port: 9092,
            rack: None,
            max_partitions: None,
        };
        let socket = must(std::net::TcpListener::bind("127.0.0.1:0"));
        let controller = must(
            Controller::start(
                &cfg,
                &dir.join("meta"),
                "cid-0123456789abcdefghi",
                me,
                socket,
            )
            .await,
        );
        let metrics = Arc::new(must(crate::metrics::Metrics::new()));
        let topic_configs = Arc::new(crate::metadata::TopicConfigs::new(cfg.raw.clone()));
        let replicas = Arc::new(ReplicaManager::new(
            cfg.clone(),
            metrics,
            topic_configs,
            Default::default(),
            crate::log::FileCache::new(crate::log::MIN_OPEN_FILES),
        ));
        {
            let (r, c) = (replicas.clone(), controller.clone());
            must(
                tokio::task::spawn_blocking(move || c.subscribe(Box::new(move |img| r.apply(img))))
                    .await,
            );
        }
        let groups = Arc::new(GroupCoordinator::new(
            cfg.groups.clone(),
            OffsetsLog::new(BrokerId(cfg.node_id), controller.clone(), replicas.clone()),
        ));
        {
            let (weak, c) = (Arc::downgrade(&groups), controller.clone());
            must(
                tokio::task::spawn_blocking(move || {
                    c.subscribe(Box::new(move |_| {
                        if let Some(g) = weak.upgrade() {
                            g.on_image();
                        }
                    }))
                })
                .await,
            );
        }
        Node {
            controller,
            replicas,
            groups,
        }
    }

    fn offsets(o: i64) -> Vec<OffsetToCommit> {
        vec![OffsetToCommit {
            topic: "t".into(),
            partition: 0,
            offset: o,
            leader_epoch: -1,
            metadata: None,
        }]
    }

    fn txn<'a>(producer: i64, offsets: &'a [OffsetToCommit]) -> TxnOffsetCommit<'a> {
        TxnOffsetCommit {
            group_id: "g",
            producer_id: ProducerId(producer),
            producer_epoch: ProducerEpoch(0),
            member_id: "",
            instance_id: None,
            generation: -1,
            offsets,
            verification: None,
        }
    }

    /// OffsetFetch of g's t-0: (offset, error).
    fn fetch(groups: &GroupCoordinator, require_stable: bool) -> (i64, i16) {
        let wanted = [("t".to_string(), vec![0])];
        let got = must(groups.fetch_offsets("g", Some(&wanted), require_stable));
        let c = &got[0].1[0].1;
        (c.offset, c.error)
    }

    async fn commit_txn(n: &Node, producer: i64, offset: i64) {
        let o = offsets(offset);
        let (codes, pending) = n.groups.commit_txn(&txn(producer, &o));
        assert_eq!(codes, vec![0]);
        let Some(pending) = pending else {
            panic!("nothing appended");
        };
        must(pending.replicated(Duration::from_secs(5)).await);
    }

    /// The transaction coordinator's part: the marker, then the completion.
    fn end_txn(n: &Node, producer: i64, commit: bool) {
        let Some(p) = n.replicas.get(store::OFFSETS_TOPIC, 0) else {
            panic!("no offsets partition");
        };
        must(p.append_control(
            ProducerId(producer),
            ProducerEpoch(0),
            CoordinatorEpoch(0),
            commit,
            now_ms(),
        ));
        n.groups.complete_txn(0, ProducerId(producer), commit);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transactional_offsets_complete_on_the_markers() {
        let dir = must(tempfile::tempdir());
        let n = node(dir.path()).await;
        let topic = TopicCreation {
            name: "t".into(),
            partitions: 2,
            replication_factor: 1,
            assignment: None,
            configs: BTreeMap::new(),
        };
        must(n.controller.create_topic(topic, false).await);
        must(n.groups.ensure_offsets_topic().await);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while n.groups.fetch_offsets("g", None, false).is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the offsets partition never loaded"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        commit_txn(&n, 5, 10).await;
        assert_eq!(fetch(&n.groups, true), (-1, 88));
        assert_eq!(fetch(&n.groups, false), (-1, 0));
        let open = n
            .replicas
            .get(store::OFFSETS_TOPIC, 0)
            .and_then(|p| p.with_log(|l| Ok(l.first_unstable_offset())).ok().flatten());
        assert!(
            open.is_some(),
            "the batch opened the producer's transaction"
        );
        end_txn(&n, 5, true);
        assert_eq!(fetch(&n.groups, true), (10, 0));

        commit_txn(&n, 6, 20).await;
        end_txn(&n, 6, false);
        assert_eq!(fetch(&n.groups, true), (10, 0), "aborted");

        // A plain commit appended after the transactional one wins at COMMIT.
        commit_txn(&n, 7, 30).await;
        let (codes, _) = must(n.groups.commit("g", "", None, -1, &offsets(40)));
        assert_eq!(codes, vec![0]);
        assert_eq!(fetch(&n.groups, true), (-1, 88));
        end_txn(&n, 7, true);
        assert_eq!(fetch(&n.groups, true), (40, 0));
        let open = n
            .replicas
            .get(store::OFFSETS_TOPIC, 0)
            .and_then(|p| p.with_log(|l| Ok(l.first_unstable_offset())).ok().flatten());
        assert_eq!(open, None, "every transaction ended in the log too");

        // DeleteGroups takes the pending offsets along.
        commit_txn(&n, 8, 50).await;
        assert_eq!(n.groups.delete("g"), 0);
        assert_eq!(fetch(&n.groups, true), (-1, 0));
        end_txn(&n, 8, true);
        assert_eq!(fetch(&n.groups, true), (-1, 0), "nothing left to commit");

        // A marker written while the partition replays, after the replay read past where it
        // lands: the completion waits for the replay's install.
        commit_txn(&n, 9, 60).await;
        let Some(p) = n.replicas.get(store::OFFSETS_TOPIC, 0) else {
            panic!("no offsets partition");
        };
        let generation = {
            let mut loads = n.groups.loads.lock().unwrap_or_else(|e| e.into_inner());
            loads.loaded.remove(&0);
            loads.next_generation += 1;
            let generation = loads.next_generation;
            loads.loading.insert(0, generation);
            generation
        };
        let replayed = crate::group::coordinator::load::load_partition(&p);
        assert_eq!(
            replayed.txn.len(),
            1,
            "the replay holds producer 9's offset"
        );
        end_txn(&n, 9, true);
        n.groups.finish_load(0, generation, 1, replayed);
        assert_eq!(fetch(&n.groups, true), (60, 0));
        n.controller.shutdown().await;
    }
}
