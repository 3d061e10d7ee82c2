//! The group coordinator (classic protocol): owns every group whose `__consumer_offsets`
//! partition this node leads (partition = Java's `String.hashCode` of the group id, as Kafka
//! maps it), writes every commit and every completed rebalance there before answering
//! (OffsetCommit only once the ISR has it, acks=all, as Kafka's coordinator writes offsets),
//! replays a partition in the background when it becomes leader of it
//! (COORDINATOR_LOAD_IN_PROGRESS meanwhile; an empty partition is ready at once) and drops the
//! groups of partitions it stops leading, after every committed image. It ticks every 100 ms
//! for session expiry and phase deadlines and expires offsets of empty groups after
//! `offsets.retention.minutes` (KIP-211). It reaches the node only through [`OffsetsLog`].
//! Join and sync responses wait on oneshot channels, never holding the coordinator's lock.
//!
//! One mutex guards all groups. Every operation under it is short and synchronous (an append
//! to a local log is a page-cache write), and holding it across the append keeps the log and
//! the in-memory view in the same order. Transactional offset commits (TxnOffsetCommit,
//! pending until the producer's marker: `txn_offsets.rs`, the requests in `coordinator/txn.rs`)
//! are held per `__consumer_offsets` partition under a second mutex. Lock order: `loads`, then
//! `groups`, then `txn`; `loads` is never taken while `groups` is held.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;

use super::entry::{GroupEntry, LoggedOffset};
use super::offsets_log::OffsetsLog;
use super::state::{Group, GroupState, GroupTimings, JoinRequest, JoinResult, SyncResult};
use super::store::{self, Entry, GroupValue, OffsetValue, OFFSETS_TOPIC};
use super::txn_offsets::{self, PartitionTxnOffsets};
use crate::config::group::GroupConfig;
use crate::time::now_ms;
use crate::types::{Offset, TopicPartition};

mod consumer;
mod load;
mod txn;
pub use super::entry::Committed;
pub use consumer::{
    describe as describe_consumer_group, DescribedConsumerGroup, DescribedMember, ImageTopics,
};
pub use txn::TxnOffsetCommit;

/// A commit appended locally that the caller must see replicated (acks=all, as Kafka's
/// coordinator writes offsets) before answering.
pub struct PendingCommit {
    /// The `__consumer_offsets` partition written.
    pub partition: std::sync::Arc<crate::replica::Partition>,
    /// One past the last offset written.
    pub end: Offset,
    /// The leader epoch of the append.
    pub epoch: crate::types::LeaderEpoch,
}

impl PendingCommit {
    /// Waits for the ISR to have the commit; maps failures as Kafka's coordinator does.
    pub async fn replicated(&self, timeout: Duration) -> Result<(), ResponseError> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.partition
            .wait_replicated(self.end, self.epoch, deadline)
            .await
            .map_err(|e| match e {
                crate::error::KafkaError::NotLeaderOrFollower(_) => ResponseError::NotCoordinator,
                crate::error::KafkaError::RequestTimedOut(_) => ResponseError::RequestTimedOut,
                _ => ResponseError::CoordinatorNotAvailable,
            })
    }
}

/// One offset to commit (an OffsetCommit partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetToCommit {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset the group will read next.
    pub offset: i64,
    /// The leader epoch of the last record read (-1 when unknown).
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: Option<String>,
}

/// Committed offsets by topic, partitions in order.
pub type TopicOffsets = Vec<(String, Vec<(i32, Committed)>)>;

/// A group summary for ListGroups/DescribeGroups.
#[derive(Debug, Clone)]
pub struct GroupSummary {
    /// Group id.
    pub id: String,
    /// Kafka's name of its state (a classic or a consumer group's).
    pub state: &'static str,
    /// `classic` or `consumer` (ListGroups v5's group type).
    pub group_type: &'static str,
    /// Protocol type.
    pub protocol_type: String,
    /// Chosen protocol.
    pub protocol: String,
    /// Members: (id, instance id, client id, host, metadata for the chosen protocol, assignment).
    pub members: Vec<(String, Option<String>, String, String, Bytes, Bytes)>,
}

/// Groups by protocol, for the coordinator's gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCounts {
    /// Classic groups (offsets-only groups included).
    pub classic: usize,
    /// Consumer groups by state.
    pub consumer: [usize; 4],
}

/// The coordinator.
pub struct GroupCoordinator {
    /// Settings.
    pub config: GroupConfig,
    groups: Mutex<HashMap<String, GroupEntry>>,
    /// Which `__consumer_offsets` partitions are replayed or being replayed.
    loads: Mutex<Loads>,
    /// Pending transactional offsets of each loaded `__consumer_offsets` partition.
    txn: Mutex<HashMap<i32, PartitionTxnOffsets>>,
    /// The node as the coordinator sees it.
    log: OffsetsLog,
    /// `config.consumer` as the consumer-group logic takes it.
    consumer: crate::group::consumer::Settings,
}

/// The coordinator's `__consumer_offsets` partitions.
#[derive(Default)]
struct Loads {
    /// Led and replayed: this node coordinates exactly the groups hashing to these.
    loaded: BTreeSet<i32>,
    /// Led and being replayed in the background, by replay generation.
    loading: BTreeMap<i32, u64>,
    /// The last generation handed out.
    next_generation: u64,
    /// Transactions that ended (producer id → COMMIT) in a partition while it was being
    /// replayed: applied to the replay before it is installed, since the replay may have read
    /// the log before their markers. Only markers can be appended to a partition while it
    /// loads (TxnOffsetCommit is refused then), so only the first completion per producer
    /// counts and the map is bounded by the producers with pending offsets there.
    deferred: BTreeMap<i32, HashMap<i64, bool>>,
}

impl GroupCoordinator {
    /// A coordinator with no groups loaded, writing through `log`.
    pub fn new(config: GroupConfig, log: OffsetsLog) -> GroupCoordinator {
        GroupCoordinator {
            consumer: crate::group::consumer::Settings::from_config(&config.consumer),
            config,
            groups: Mutex::new(HashMap::new()),
            loads: Mutex::new(Loads::default()),
            txn: Mutex::new(HashMap::new()),
            log,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, GroupEntry>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pending transactional offsets; taken after `groups` when both are needed.
    fn txn_lock(&self) -> MutexGuard<'_, HashMap<i32, PartitionTxnOffsets>> {
        self.txn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The partitions replayed and coordinated now (for loops that hold `groups`).
    fn loaded(&self) -> BTreeSet<i32> {
        self.loads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .loaded
            .clone()
    }

    fn timings(&self) -> GroupTimings {
        GroupTimings {
            initial_delay: self.config.initial_delay,
        }
    }

    /// Creates `__consumer_offsets` on first use.
    pub async fn ensure_offsets_topic(&self) -> Result<(), ResponseError> {
        if self.log.image().topics.contains_key(OFFSETS_TOPIC) {
            return Ok(());
        }
        let brokers = self.log.image().live_brokers().len() as i16;
        let t = crate::controller::TopicCreation {
            name: OFFSETS_TOPIC.into(),
            partitions: self.config.offsets_partitions,
            // offsets.topic.replication.factor, capped by the live brokers.
            replication_factor: self.config.offsets_replication_factor.min(brokers).max(1),
            assignment: None,
            configs: [
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("segment.bytes".to_string(), "104857600".to_string()),
            ]
            .into_iter()
            .collect(),
        };
        match self.log.controller.create_topic(t, false).await {
            Ok(_) | Err(crate::error::KafkaError::TopicAlreadyExists(_)) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot create __consumer_offsets");
                Err(ResponseError::CoordinatorNotAvailable)
            }
        }
    }

    /// The `__consumer_offsets` partition of a group, if this node leads it.
    fn owner(
        &self,
        group: &str,
    ) -> Result<std::sync::Arc<crate::replica::Partition>, ResponseError> {
        self.owner_among(group, &self.loaded())
    }

    /// `owner` against a set of loaded partitions read before (so that loops holding `groups`
    /// never take `loads`).
    fn owner_among(
        &self,
        group: &str,
        loaded: &BTreeSet<i32>,
    ) -> Result<std::sync::Arc<crate::replica::Partition>, ResponseError> {
        let image = self.log.image();
        let Some(topic) = image.topics.get(OFFSETS_TOPIC) else {
            return Err(ResponseError::CoordinatorNotAvailable);
        };
        let p = store::partition_for(group, topic.partitions.len() as i32);
        let leader = topic.partitions.get(p as usize).map(|m| m.leader.0);
        if leader != Some(self.log.node.0) {
            return Err(ResponseError::NotCoordinator);
        }
        if !loaded.contains(&p) {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        self.log
            .partition(p)
            .ok_or(ResponseError::CoordinatorLoadInProgress)
    }

    /// The partition a group maps to (FindCoordinator).
    pub fn partition_of(&self, group: &str) -> Option<i32> {
        let image = self.log.image();
        let topic = image.topics.get(OFFSETS_TOPIC)?;
        Some(store::partition_for(group, topic.partitions.len() as i32))
    }

    fn append(
        &self,
        p: &crate::replica::Partition,
        entries: &[Entry],
    ) -> Result<(), ResponseError> {
        self.append_at(p, entries).map(|_| ())
    }

    /// Appends and returns where the records start and end (one past the last, for waiting
    /// on replication).
    fn append_at(
        &self,
        p: &crate::replica::Partition,
        entries: &[Entry],
    ) -> Result<(Offset, Offset), ResponseError> {
        let bytes = store::encode(entries, now_ms()).map_err(|e| {
            tracing::error!(error = %e, "cannot encode group records");
            ResponseError::UnknownServerError
        })?;
        p.append(&bytes, now_ms())
            .map(|info| (info.first_offset, Offset(info.last_offset.0 + 1)))
            .map_err(|e| {
                tracing::error!(partition = %p.tp, error = %e, "cannot persist group records");
                ResponseError::CoordinatorNotAvailable
            })
    }

    fn group_value(g: &Group) -> GroupValue {
        GroupValue {
            protocol_type: g.protocol_type.clone(),
            generation: g.generation,
            protocol: g.protocol.clone(),
            leader: g.leader.clone(),
            members: g.stored_members(),
            empty_since_ms: g.empty_since_ms,
        }
    }

    /// JoinGroup: returns the receiver for the result, or an immediate error code.
    pub fn join(
        &self,
        group_id: &str,
        req: JoinRequest,
    ) -> Result<oneshot::Receiver<JoinResult>, ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        if req.session_timeout < self.config.min_session
            || req.session_timeout > self.config.max_session
        {
            return Err(ResponseError::InvalidSessionTimeout);
        }
        let p = self.owner(group_id)?;
        let mut groups = self.lock();
        if !groups.contains_key(group_id) && !req.member_id.is_empty() && req.instance_id.is_none()
        {
            return Err(ResponseError::UnknownMemberId);
        }
        let e = groups
            .entry(group_id.to_string())
            .or_insert_with(|| GroupEntry::new(group_id));
        if let Some(cg) = &e.consumer {
            if !cg.members.is_empty() {
                return self.join_consumer_group(&p, e, req);
            }
            // An empty consumer group becomes a classic one (its offsets stay).
            self.append(&p, &[Entry::consumer_group_tombstone(group_id)])?;
            e.consumer = None;
            e.group = Group::new(group_id);
        }
        if e.group.state == GroupState::Dead {
            e.group = Group::new(group_id);
        }
        let rx = e.group.join(req, self.timings(), Instant::now());
        e.group.note_state(now_ms());
        if e.group.take_needs_store() {
            // Persisted before the handler reads the answer from `rx`.
            let value = Self::group_value(&e.group);
            self.append(&p, &[Entry::group(group_id, &value)])?;
        }
        Ok(rx)
    }

    /// SyncGroup.
    pub fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> Result<oneshot::Receiver<SyncResult>, ResponseError> {
        let p = self.owner(group_id)?;
        let mut groups = self.lock();
        let Some(e) = groups.get_mut(group_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        if e.consumer.is_some() {
            return self.sync_consumer_group(e, member_id, generation);
        }
        let (rx, completed) = e.group.sync(
            member_id,
            instance_id,
            generation,
            assignments,
            Instant::now(),
        );
        if completed {
            let value = Self::group_value(&e.group);
            let result = self.append(&p, &[Entry::group(group_id, &value)]);
            e.group
                .deliver_sync(result.err().map(|e| e.code()).unwrap_or(0));
        }
        Ok(rx)
    }

    /// Heartbeat.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> i16 {
        if let Err(e) = self.owner(group_id) {
            return e.code();
        }
        let mut groups = self.lock();
        match groups.get_mut(group_id) {
            Some(e) if e.consumer.is_some() => {
                self.heartbeat_consumer_group(group_id, e, member_id, generation)
            }
            Some(e) => e
                .group
                .heartbeat(member_id, instance_id, generation, Instant::now()),
            None => ResponseError::UnknownMemberId.code(),
        }
    }

    /// LeaveGroup: per-member error codes.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<i16>, ResponseError> {
        let p = self.owner(group_id)?;
        let mut groups = self.lock();
        let Some(e) = groups.get_mut(group_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        if e.consumer.is_some() {
            return self.leave_consumer_group(&p, e, members);
        }
        let now = Instant::now();
        let codes: Vec<i16> = members
            .iter()
            .map(|(m, i)| e.group.leave(m, i.as_deref(), self.timings(), now))
            .collect();
        e.group.note_state(now_ms());
        if e.group.state == GroupState::Empty {
            let value = Self::group_value(&e.group);
            let _ = self.append(&p, &[Entry::group(group_id, &value)]);
        }
        Ok(codes)
    }

    /// OffsetCommit: per-partition error codes, in request order.
    pub fn commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        offsets: &[OffsetToCommit],
    ) -> Result<(Vec<i16>, Option<PendingCommit>), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let p = self.owner(group_id)?;
        let image = self.log.image();
        let mut groups = self.lock();
        let e = groups
            .entry(group_id.to_string())
            .or_insert_with(|| GroupEntry::new(group_id));
        let g = &e.group;
        if let Some(cg) = &e.consumer {
            cg.validate_commit(member_id, generation)?;
        } else if generation < 0 && member_id.is_empty() {
            // A simple (assign-only) consumer or an admin tool: allowed while nobody is a member.
            if !matches!(g.state, GroupState::Empty | GroupState::Dead) {
                return Err(ResponseError::UnknownMemberId);
            }
        } else {
            if let Some(i) = instance_id {
                if g.members
                    .get(member_id)
                    .and_then(|m| m.instance_id.as_deref())
                    != Some(i)
                    && g.members
                        .values()
                        .any(|m| m.instance_id.as_deref() == Some(i))
                {
                    return Err(ResponseError::FencedInstanceId);
                }
            }
            if !g.members.contains_key(member_id) {
                return Err(ResponseError::UnknownMemberId);
            }
            if generation != g.generation {
                return Err(ResponseError::IllegalGeneration);
            }
            if g.state == GroupState::CompletingRebalance {
                return Err(ResponseError::RebalanceInProgress);
            }
        }
        let now = now_ms();
        let mut codes = Vec::with_capacity(offsets.len());
        let mut entries = Vec::new();
        let mut values = Vec::new();
        for c in offsets {
            let known = image.partition(&c.topic, c.partition).is_some();
            let meta = c.metadata.clone().unwrap_or_default();
            let code = if !known {
                ResponseError::UnknownTopicOrPartition.code()
            } else if meta.len() > self.config.metadata_max_bytes {
                ResponseError::OffsetMetadataTooLarge.code()
            } else {
                let v = OffsetValue {
                    offset: c.offset,
                    leader_epoch: c.leader_epoch,
                    metadata: meta,
                    commit_timestamp: now,
                };
                entries.push(Entry::offset(group_id, &c.topic, c.partition, &v));
                values.push((TopicPartition::new(&c.topic, c.partition), v));
                0
            };
            codes.push(code);
        }
        let mut pending = None;
        if !entries.is_empty() {
            let epoch = p.leader_epoch();
            match self.append_at(&p, &entries) {
                Err(err) => {
                    return Ok((
                        codes
                            .iter()
                            .map(|c| if *c == 0 { err.code() } else { *c })
                            .collect(),
                        None,
                    ))
                }
                Ok((first, end)) => {
                    pending = Some(PendingCommit {
                        partition: p.clone(),
                        end,
                        epoch,
                    });
                    e.offsets.extend(values.into_iter().map(|(tp, value)| {
                        let logged = LoggedOffset {
                            value,
                            log_offset: first.0,
                        };
                        (tp, logged)
                    }));
                }
            }
        }
        Ok((codes, pending))
    }

    /// OffsetFetch for one group: `None` topics means every committed offset. Offsets of open
    /// transactions are never returned; with `require_stable` (OffsetFetch v7+) a partition
    /// that has one answers UNSTABLE_OFFSET_COMMIT (in [`Committed::error`]).
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        wanted: Option<&[(String, Vec<i32>)]>,
        require_stable: bool,
    ) -> Result<TopicOffsets, ResponseError> {
        let partition = self.owner(group_id)?.tp.partition;
        let groups = self.lock();
        let txn = self.txn_lock();
        let entry = groups.get(group_id);
        let offsets = entry.map(|e| &e.offsets);
        let pending = txn.get(&partition);
        let lookup = |t: &str, p: i32| -> Committed {
            let tp = TopicPartition::new(t, p);
            txn_offsets::lookup(entry, pending, group_id, &tp, require_stable)
        };
        Ok(match wanted {
            Some(list) => list
                .iter()
                .map(|(t, ps)| (t.clone(), ps.iter().map(|p| (*p, lookup(t, *p))).collect()))
                .collect(),
            None => {
                let mut by_topic: std::collections::BTreeMap<String, Vec<(i32, Committed)>> =
                    Default::default();
                if let Some(o) = offsets {
                    for tp in o.keys() {
                        by_topic
                            .entry(tp.topic.clone())
                            .or_default()
                            .push((tp.partition, lookup(&tp.topic, tp.partition)));
                    }
                }
                by_topic
                    .into_iter()
                    .map(|(t, mut v)| {
                        v.sort_by_key(|(p, _)| *p);
                        (t, v)
                    })
                    .collect()
            }
        })
    }

    /// Every live group (ListGroups), as summaries.
    pub fn list(&self) -> Vec<GroupSummary> {
        let groups = self.lock();
        let mut v: Vec<GroupSummary> = groups
            .values()
            .filter(|e| e.consumer.is_some() || e.group.state != GroupState::Dead)
            .map(summary)
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// How many groups this node coordinates: classic ones, and consumer groups (KIP-848) by
    /// state (indexed as [`crate::group::consumer::ConsumerGroupState::ALL`]).
    pub fn counts(&self) -> GroupCounts {
        let groups = self.lock();
        let mut c = GroupCounts::default();
        for e in groups.values() {
            match &e.consumer {
                Some(cg) => c.consumer[cg.state().index()] += 1,
                None if e.group.state != GroupState::Dead => c.classic += 1,
                None => {}
            }
        }
        c
    }

    /// One group (DescribeGroups); a group we do not know is reported Dead, as Kafka does. A
    /// consumer group (KIP-848) is GROUP_ID_NOT_FOUND here, as in Kafka 4: ConsumerGroupDescribe
    /// describes it.
    pub fn describe(&self, group_id: &str) -> Result<GroupSummary, ResponseError> {
        self.owner(group_id)?;
        let groups = self.lock();
        Ok(match groups.get(group_id) {
            Some(e) if e.consumer.is_some() => return Err(ResponseError::GroupIdNotFound),
            Some(e) => summary(e),
            None => GroupSummary {
                id: group_id.to_string(),
                state: GroupState::Dead.name(),
                group_type: "classic",
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            },
        })
    }

    /// DeleteGroups for one group.
    pub fn delete(&self, group_id: &str) -> i16 {
        let p = match self.owner(group_id) {
            Ok(p) => p,
            Err(e) => return e.code(),
        };
        let mut groups = self.lock();
        let Some(e) = groups.get_mut(group_id) else {
            return ResponseError::GroupIdNotFound.code();
        };
        if e.consumer.is_none() && e.group.state == GroupState::Dead {
            return ResponseError::GroupIdNotFound.code();
        }
        if !e.is_empty() {
            return ResponseError::NonEmptyGroup.code();
        }
        // Pending transactional offsets go with the group; a tombstone for each keeps a
        // later replay from committing them (txn_offsets.rs).
        let mut txn = self.txn_lock();
        let mut doomed: BTreeSet<TopicPartition> = e.offsets.keys().cloned().collect();
        if let Some(t) = txn.get(&p.tp.partition) {
            doomed.extend(t.pending_partitions(group_id));
        }
        let mut entries: Vec<Entry> = doomed
            .iter()
            .map(|tp| Entry::offset_tombstone(group_id, &tp.topic, tp.partition))
            .collect();
        if e.consumer.is_some() {
            entries.push(Entry::consumer_group_tombstone(group_id));
        }
        entries.push(Entry::group_tombstone(group_id));
        if let Err(err) = self.append(&p, &entries) {
            return err.code();
        }
        groups.remove(group_id);
        if let Some(t) = txn.get_mut(&p.tp.partition) {
            t.remove_group(group_id);
        }
        tracing::info!(group = group_id, "deleted group");
        0
    }

    /// OffsetDelete: per-partition codes, or a group-level error.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<i16>, ResponseError> {
        let p = self.owner(group_id)?;
        let mut groups = self.lock();
        let Some(e) = groups.get_mut(group_id) else {
            return Err(ResponseError::GroupIdNotFound);
        };
        if e.consumer.is_none() && e.group.state == GroupState::Dead {
            return Err(ResponseError::GroupIdNotFound);
        }
        let subscribed = if e.is_empty() {
            Vec::new()
        } else if let Some(cg) = &e.consumer {
            cg.subscribed_topic_names()
        } else {
            e.group
                .subscribed_topics()
                .ok_or(ResponseError::NonEmptyGroup)?
        };
        let mut txn = self.txn_lock();
        let mut pending = txn.get_mut(&p.tp.partition);
        let mut codes = Vec::new();
        let mut entries = Vec::new();
        for tp in partitions {
            if subscribed.contains(&tp.topic) {
                codes.push(ResponseError::GroupSubscribedToTopic.code());
            } else {
                codes.push(0);
                // A pending transactional offset goes too (Kafka's new coordinator), with a
                // tombstone so that a replay agrees.
                let is_pending = pending.as_ref().is_some_and(|t| t.is_pending(group_id, tp));
                if e.offsets.contains_key(tp) || is_pending {
                    entries.push(Entry::offset_tombstone(group_id, &tp.topic, tp.partition));
                }
            }
        }
        if !entries.is_empty() {
            self.append(&p, &entries)?;
            for tp in partitions {
                if !subscribed.contains(&tp.topic) {
                    e.offsets.remove(tp);
                    if let Some(t) = pending.as_mut() {
                        t.remove_offset(group_id, tp);
                    }
                }
            }
        }
        Ok(codes)
    }

    /// Session expiry and phase deadlines; persists groups that became empty.
    pub fn tick(&self) {
        let now = Instant::now();
        let now_ms = now_ms();
        let loaded = self.loaded();
        let image = self.log.image();
        let topics = consumer::ImageTopics(&image);
        let mut groups = self.lock();
        for (id, e) in groups.iter_mut() {
            if e.consumer.is_some() {
                self.tick_consumer(id, e, &loaded, &topics, now);
                continue;
            }
            let became_empty = e.group.tick(self.timings(), now);
            e.group.note_state(now_ms);
            if became_empty {
                // Under the lock, like every other write, so records land in order.
                if let Ok(p) = self.owner_among(id, &loaded) {
                    let _ = self.append(&p, &[Entry::group(id, &Self::group_value(&e.group))]);
                }
            }
        }
    }

    /// Expires committed offsets (KIP-211): a consumer group's offsets go once it has been
    /// Empty for `offsets.retention.minutes`; a simple (assign-only) group's offsets go one by
    /// one, that long after their commit. A group left with no offsets is removed.
    /// A partition with a pending transactional offset keeps its committed offset, and a group
    /// with one is not removed (Kafka: offsets with pending commits do not expire).
    pub fn expire_offsets(&self) {
        let cutoff = now_ms() - self.config.offsets_retention.as_millis() as i64;
        let loaded = self.loaded();
        let mut groups = self.lock();
        let txn = self.txn_lock();
        let count = self
            .log
            .image()
            .topics
            .get(OFFSETS_TOPIC)
            .map_or(0, |t| t.partitions.len() as i32);
        let mut removed = Vec::new();
        for (id, e) in groups.iter_mut() {
            if !e.is_empty() || (e.consumer.is_none() && e.group.state == GroupState::Dead) {
                continue;
            }
            let pending = txn.get(&store::partition_for(id, count));
            let is_pending = |tp: &TopicPartition| pending.is_some_and(|t| t.is_pending(id, tp));
            let old: Vec<TopicPartition> =
                if e.consumer.is_some() || e.group.protocol_type.is_some() {
                    if e.empty_since_ms().is_some_and(|t| t < cutoff) {
                        e.offsets
                            .keys()
                            .filter(|tp| !is_pending(tp))
                            .cloned()
                            .collect()
                    } else {
                        Vec::new()
                    }
                } else {
                    e.offsets
                        .iter()
                        .filter(|(tp, v)| v.value.commit_timestamp < cutoff && !is_pending(tp))
                        .map(|(k, _)| k.clone())
                        .collect()
                };
            if old.is_empty() {
                continue;
            }
            let Ok(p) = self.owner_among(id, &loaded) else {
                continue;
            };
            let mut entries: Vec<Entry> = old
                .iter()
                .map(|tp| Entry::offset_tombstone(id, &tp.topic, tp.partition))
                .collect();
            let all_gone =
                old.len() == e.offsets.len() && !pending.is_some_and(|t| t.group_has_pending(id));
            if all_gone {
                if e.consumer.is_some() {
                    entries.push(Entry::consumer_group_tombstone(id));
                }
                entries.push(Entry::group_tombstone(id));
            }
            if self.append(&p, &entries).is_ok() {
                for k in &old {
                    e.offsets.remove(k);
                }
                tracing::info!(group = %id, expired = old.len(), "expired committed offsets");
                if all_gone {
                    removed.push(id.clone());
                }
            }
        }
        for id in removed {
            groups.remove(&id);
        }
    }

    /// Runs ticks (100 ms) and offset expiry until the task is aborted.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut last_expiry = Instant::now();
        loop {
            tick.tick().await;
            self.tick();
            if last_expiry.elapsed() >= self.config.retention_check {
                last_expiry = Instant::now();
                self.expire_offsets();
            }
        }
    }
}

fn summary(e: &GroupEntry) -> GroupSummary {
    if let Some(cg) = &e.consumer {
        return GroupSummary {
            id: cg.id.clone(),
            state: cg.state().name(),
            group_type: "consumer",
            protocol_type: "consumer".into(),
            protocol: cg.assignor.clone(),
            members: Vec::new(),
        };
    }
    let g = &e.group;
    let protocol = g.protocol.clone().unwrap_or_default();
    GroupSummary {
        id: g.id.clone(),
        state: g.state.name(),
        group_type: "classic",
        protocol_type: g.protocol_type.clone().unwrap_or_default(),
        protocol: protocol.clone(),
        members: g
            .members
            .values()
            .map(|m| {
                (
                    m.id.clone(),
                    m.instance_id.clone(),
                    m.client_id.clone(),
                    m.client_host.clone(),
                    m.metadata_for(&protocol),
                    m.assignment.clone(),
                )
            })
            .collect(),
    }
}
