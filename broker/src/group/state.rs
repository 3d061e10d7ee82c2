//! One consumer group's membership state machine (Kafka's classic protocol): Empty,
//! PreparingRebalance, CompletingRebalance, Stable, Dead. Pure logic over explicit `now`
//! values; the coordinator owns persistence, timers and delivering responses.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use indexmap::IndexMap;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;

pub use super::member::{GroupState, GroupTimings, JoinRequest, JoinResult, Member, SyncResult};
pub use super::store::{hexbytes, StoredMember};
pub use subscription::{decode_subscription, Subscription};

mod join;
mod subscription;

/// One consumer group.
#[derive(Debug)]
pub struct Group {
    /// Group id.
    pub id: String,
    /// Current state.
    pub state: GroupState,
    /// Generation (bumped by every completed join).
    pub generation: i32,
    /// Protocol type of the members (`consumer`, `connect`, ...).
    pub protocol_type: Option<String>,
    /// Chosen protocol (assignor).
    pub protocol: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// Members in join order.
    pub members: IndexMap<String, Member>,
    /// KIP-394 member ids handed out but not yet used, with their expiry.
    pending: HashMap<String, Instant>,
    /// Static instance id → member id.
    statics: HashMap<String, String>,
    /// When the current join phase ends at the latest.
    join_deadline: Option<Instant>,
    /// True while in the initial delayed join of an empty group.
    initial_join: bool,
    /// When the initial delayed join began: new joiners extend the delay, but never past
    /// this plus the rebalance timeout.
    initial_started: Option<Instant>,
    /// When the leader must have synced by.
    sync_deadline: Option<Instant>,
    /// Set when membership changed in a way that must be persisted before answering (a
    /// static member replaced without a rebalance).
    needs_store: bool,
    /// When the group last became Empty (ms since the epoch); offsets of a consumer group
    /// expire `offsets.retention.minutes` after this (KIP-211).
    pub empty_since_ms: Option<i64>,
}

/// The member id handed out to a new member: client id plus a random suffix, as Kafka does.
pub(crate) fn new_member_id(client_id: &str) -> String {
    format!(
        "{}-{}",
        if client_id.is_empty() {
            "member"
        } else {
            client_id
        },
        uuid::Uuid::new_v4()
    )
}

fn err(e: ResponseError) -> i16 {
    e.code()
}

impl Group {
    /// A new, empty group.
    pub fn new(id: &str) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: IndexMap::new(),
            pending: HashMap::new(),
            statics: HashMap::new(),
            join_deadline: None,
            initial_join: false,
            initial_started: None,
            sync_deadline: None,
            needs_store: false,
            empty_since_ms: None,
        }
    }

    /// Answers every parked JoinGroup and SyncGroup with REBALANCE_IN_PROGRESS: the group is
    /// being replaced (converted online to a consumer group) and its members must join again.
    pub fn abandon(&mut self) {
        for m in self.members.values_mut() {
            if let Some(tx) = m.join_waiter.take() {
                let _ = tx.send(JoinResult {
                    error: ResponseError::RebalanceInProgress.code(),
                    generation: -1,
                    member_id: m.id.clone(),
                    ..Default::default()
                });
            }
            if let Some(tx) = m.sync_waiter.take() {
                let _ = tx.send(SyncResult {
                    error: ResponseError::RebalanceInProgress.code(),
                    ..Default::default()
                });
            }
        }
    }

    /// Tracks when the group became Empty; call after every operation.
    pub fn note_state(&mut self, now_ms: i64) {
        match (self.state, self.empty_since_ms) {
            (GroupState::Empty, None) => self.empty_since_ms = Some(now_ms),
            (GroupState::Empty, Some(_)) => {}
            _ => self.empty_since_ms = None,
        }
    }

    /// True (once) when the caller must persist the group before the answer is used.
    pub fn take_needs_store(&mut self) -> bool {
        std::mem::take(&mut self.needs_store)
    }

    /// Restores a stable group from its stored metadata (at load time).
    pub fn restore(
        id: &str,
        generation: i32,
        protocol_type: Option<String>,
        protocol: Option<String>,
        leader: Option<String>,
        members: Vec<StoredMember>,
        now: Instant,
    ) -> Group {
        let mut g = Group::new(id);
        g.generation = generation;
        g.protocol_type = protocol_type;
        g.protocol = protocol.clone();
        g.leader = leader;
        for m in members {
            if let Some(i) = &m.instance_id {
                g.statics.insert(i.clone(), m.id.clone());
            }
            let protocols = vec![(protocol.clone().unwrap_or_default(), m.subscription)];
            g.members.insert(
                m.id.clone(),
                Member {
                    id: m.id,
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout: Duration::from_millis(m.session_timeout_ms),
                    rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms),
                    protocols,
                    assignment: m.assignment,
                    last_heartbeat: now,
                    join_waiter: None,
                    sync_waiter: None,
                },
            );
        }
        g.state = if g.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        g
    }

    /// The members as stored in `__consumer_offsets`.
    pub fn stored_members(&self) -> Vec<StoredMember> {
        let protocol = self.protocol.clone().unwrap_or_default();
        self.members
            .values()
            .map(|m| StoredMember {
                id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: m.session_timeout.as_millis() as u64,
                rebalance_timeout_ms: m.rebalance_timeout.as_millis() as u64,
                subscription: m.metadata_for(&protocol),
                assignment: m.assignment.clone(),
            })
            .collect()
    }

    /// Handles SyncGroup. `assignments` is non-empty only from the leader.
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> (oneshot::Receiver<SyncResult>, bool) {
        let (tx, rx) = oneshot::channel();
        let fail = |tx: oneshot::Sender<SyncResult>, e: ResponseError| {
            let _ = tx.send(SyncResult {
                error: e.code(),
                ..Default::default()
            });
        };
        if let Err(e) = self.check_member(member_id, instance_id) {
            fail(tx, e);
            return (rx, false);
        }
        if generation != self.generation {
            fail(tx, ResponseError::IllegalGeneration);
            return (rx, false);
        }
        match self.state {
            GroupState::PreparingRebalance => fail(tx, ResponseError::RebalanceInProgress),
            GroupState::Stable => {
                let _ = tx.send(self.sync_result_for(member_id));
            }
            GroupState::CompletingRebalance => {
                if let Some(m) = self.members.get_mut(member_id) {
                    if let Some(old) = m.sync_waiter.replace(tx) {
                        let _ = old.send(SyncResult {
                            error: err(ResponseError::RebalanceInProgress),
                            ..Default::default()
                        });
                    }
                    m.last_heartbeat = now;
                }
                if self.leader.as_deref() == Some(member_id) {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = given.remove(&m.id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    self.sync_deadline = None;
                    // The caller persists the group, then calls `deliver_sync`.
                    return (rx, true);
                }
            }
            GroupState::Empty | GroupState::Dead => fail(tx, ResponseError::UnknownMemberId),
        }
        (rx, false)
    }

    /// Answers every member waiting in SyncGroup with its assignment (after persisting).
    pub fn deliver_sync(&mut self, error: i16) {
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let mut r = self.sync_result_for(&id);
            if error != 0 {
                r = SyncResult {
                    error,
                    ..Default::default()
                };
            }
            if let Some(m) = self.members.get_mut(&id) {
                if let Some(w) = m.sync_waiter.take() {
                    m.last_heartbeat = Instant::now();
                    let _ = w.send(r);
                }
            }
        }
    }

    fn sync_result_for(&self, member_id: &str) -> SyncResult {
        SyncResult {
            error: 0,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        if let Some(i) = instance_id {
            match self.statics.get(i) {
                Some(id) if id == member_id => return Ok(()),
                Some(_) => return Err(ResponseError::FencedInstanceId),
                None => return Err(ResponseError::UnknownMemberId),
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(ResponseError::UnknownMemberId)
        }
    }

    /// Handles Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> i16 {
        if self.state == GroupState::Dead {
            return ResponseError::CoordinatorNotAvailable.code();
        }
        if let Err(e) = self.check_member(member_id, instance_id) {
            return e.code();
        }
        if matches!(self.state, GroupState::Empty | GroupState::Dead) {
            return ResponseError::UnknownMemberId.code();
        }
        // Kafka checks the generation before the state, in every state.
        if generation != self.generation {
            return ResponseError::IllegalGeneration.code();
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat = now;
        }
        match self.state {
            GroupState::PreparingRebalance => ResponseError::RebalanceInProgress.code(),
            _ => 0,
        }
    }

    /// Handles one LeaveGroup member entry; returns the member's error code.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        timings: GroupTimings,
        now: Instant,
    ) -> i16 {
        let id = match instance_id {
            Some(i) => match self.statics.get(i) {
                Some(id) if member_id.is_empty() || id == member_id => id.clone(),
                Some(_) => return ResponseError::FencedInstanceId.code(),
                None => return ResponseError::UnknownMemberId.code(),
            },
            None => member_id.to_string(),
        };
        if self.pending.remove(&id).is_some() {
            self.maybe_complete_join(now);
            return 0;
        }
        if !self.members.contains_key(&id) {
            return ResponseError::UnknownMemberId.code();
        }
        self.remove_member(&id);
        self.after_member_removed(timings, now);
        0
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(mut m) = self.members.shift_remove(id) {
            if let Some(i) = &m.instance_id {
                if self.statics.get(i).map(String::as_str) == Some(id) {
                    self.statics.remove(i);
                }
            }
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinResult {
                    error: ResponseError::UnknownMemberId.code(),
                    generation: -1,
                    member_id: id.to_string(),
                    ..Default::default()
                });
            }
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(SyncResult {
                    error: ResponseError::UnknownMemberId.code(),
                    ..Default::default()
                });
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    fn after_member_removed(&mut self, timings: GroupTimings, now: Instant) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                if self.members.is_empty() {
                    self.state = GroupState::PreparingRebalance;
                    self.join_deadline = Some(now);
                    self.maybe_complete_join(now);
                } else {
                    self.prepare_rebalance(timings, now);
                    self.maybe_complete_join(now);
                }
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Periodic work: expire sessions, end join and sync phases whose time is up. Returns true
    /// when the group's persisted metadata changed (it became Empty).
    pub fn tick(&mut self, timings: GroupTimings, now: Instant) -> bool {
        let before = self.state;
        self.pending.retain(|_, exp| *exp > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.join_waiter.is_none()
                    && m.sync_waiter.is_none()
                    && now.duration_since(m.last_heartbeat) > m.session_timeout
            })
            .map(|m| m.id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member(id);
        }
        if !expired.is_empty() {
            self.after_member_removed(timings, now);
        }
        if self.state == GroupState::PreparingRebalance {
            self.maybe_complete_join(now);
        }
        if self.state == GroupState::CompletingRebalance
            && self.sync_deadline.is_some_and(|d| now >= d)
        {
            // The leader never sent the assignment: members that did not sync are dropped.
            let lagging: Vec<String> = self
                .members
                .values()
                .filter(|m| m.sync_waiter.is_none())
                .map(|m| m.id.clone())
                .collect();
            for id in &lagging {
                self.remove_member(id);
            }
            self.prepare_rebalance(timings, now);
            self.maybe_complete_join(now);
        }
        before != self.state && self.state == GroupState::Empty
    }

    /// Marks the group deleted.
    pub fn mark_dead(&mut self) {
        self.state = GroupState::Dead;
    }

    /// Topics the current members subscribe to, decoded from consumer-protocol metadata.
    pub fn subscribed_topics(&self) -> Option<Vec<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol.clone()?;
        let mut topics = Vec::new();
        for m in self.members.values() {
            let meta = m.metadata_for(&protocol);
            topics.extend(decode_subscription(&meta)?.topics);
        }
        topics.sort();
        topics.dedup();
        Some(topics)
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
