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

    /// Handles JoinGroup. Returns a receiver for the (possibly delayed) result.
    pub fn join(
        &mut self,
        req: JoinRequest,
        timings: GroupTimings,
        now: Instant,
    ) -> oneshot::Receiver<JoinResult> {
        let (tx, rx) = oneshot::channel();
        let fail = |tx: oneshot::Sender<JoinResult>, code: i16, member_id: String| {
            let _ = tx.send(JoinResult {
                error: code,
                generation: -1,
                member_id,
                ..Default::default()
            });
        };
        if self.state == GroupState::Dead {
            fail(
                tx,
                err(ResponseError::CoordinatorNotAvailable),
                req.member_id,
            );
            return rx;
        }
        if !self.supports_protocols(&req) {
            fail(
                tx,
                err(ResponseError::InconsistentGroupProtocol),
                req.member_id,
            );
            return rx;
        }

        // Static members: the instance id decides who the member is.
        if let Some(instance) = req.instance_id.clone() {
            if let Some(old_id) = self.statics.get(&instance).cloned() {
                if !req.member_id.is_empty() && req.member_id != old_id {
                    fail(tx, err(ResponseError::FencedInstanceId), req.member_id);
                    return rx;
                }
                if req.member_id.is_empty() {
                    return self.replace_static_member(old_id, req, tx, rx, timings, now);
                }
            } else if !req.member_id.is_empty() {
                fail(tx, err(ResponseError::UnknownMemberId), req.member_id);
                return rx;
            } else {
                let id = new_member_id(&req.client_id);
                self.statics.insert(instance, id.clone());
                self.add_member(id, req, tx, timings, now);
                return rx;
            }
        }

        if req.member_id.is_empty() {
            let id = new_member_id(&req.client_id);
            if req.require_known_member_id {
                // KIP-394: make the client come back with the id, so a lost response never
                // leaves a phantom member behind.
                self.pending.insert(id.clone(), now + req.session_timeout);
                fail(tx, err(ResponseError::MemberIdRequired), id);
                return rx;
            }
            self.add_member(id, req, tx, timings, now);
            return rx;
        }
        if self.pending.remove(&req.member_id).is_some() {
            let id = req.member_id.clone();
            self.add_member(id, req, tx, timings, now);
            return rx;
        }
        let Some(member) = self.members.get_mut(&req.member_id) else {
            fail(tx, err(ResponseError::UnknownMemberId), req.member_id);
            return rx;
        };
        // A known member rejoining.
        let changed = member.protocols != req.protocols;
        member.protocols = req.protocols;
        member.session_timeout = req.session_timeout;
        member.rebalance_timeout = req.rebalance_timeout;
        member.last_heartbeat = now;
        let is_leader = self.leader.as_deref() == Some(req.member_id.as_str());
        match self.state {
            GroupState::Stable if !changed && !is_leader => {
                // Nothing to change: hand back the current generation (Kafka does the same).
                let _ = tx.send(self.join_result_for(&req.member_id, false));
            }
            GroupState::CompletingRebalance if !changed => {
                let _ = tx.send(self.join_result_for(&req.member_id, is_leader));
            }
            _ => {
                if let Some(m) = self.members.get_mut(&req.member_id) {
                    m.await_join(tx);
                }
                self.prepare_rebalance(timings, now);
                self.maybe_complete_join(now);
            }
        }
        rx
    }

    fn replace_static_member(
        &mut self,
        old_id: String,
        req: JoinRequest,
        tx: oneshot::Sender<JoinResult>,
        rx: oneshot::Receiver<JoinResult>,
        timings: GroupTimings,
        now: Instant,
    ) -> oneshot::Receiver<JoinResult> {
        let new_id = new_member_id(&req.client_id);
        let Some(mut member) = self.members.shift_remove(&old_id) else {
            // Known instance without a live member (expired): join as new.
            if let Some(i) = &req.instance_id {
                self.statics.insert(i.clone(), new_id.clone());
            }
            self.add_member(new_id, req, tx, timings, now);
            return rx;
        };
        // The old incarnation's pending calls are fenced.
        if let Some(w) = member.join_waiter.take() {
            let _ = w.send(JoinResult {
                error: err(ResponseError::FencedInstanceId),
                generation: -1,
                member_id: old_id.clone(),
                ..Default::default()
            });
        }
        if let Some(w) = member.sync_waiter.take() {
            let _ = w.send(SyncResult {
                error: err(ResponseError::FencedInstanceId),
                ..Default::default()
            });
        }
        let unchanged = member.protocols == req.protocols;
        member.id = new_id.clone();
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        member.session_timeout = req.session_timeout;
        member.rebalance_timeout = req.rebalance_timeout;
        member.protocols = req.protocols;
        member.last_heartbeat = now;
        let was_leader = self.leader.as_deref() == Some(old_id.as_str());
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        if let Some(i) = &req.instance_id {
            self.statics.insert(i.clone(), new_id.clone());
        }
        self.members.insert(new_id.clone(), member);
        if self.state == GroupState::Stable && unchanged {
            // The new member id must survive a coordinator restart, or the member is fenced.
            self.needs_store = true;
            // KIP-345: a restarted static member gets its old assignment without a rebalance.
            // The old leader id is returned so the member does not run an assignment that a
            // stable group would never broadcast.
            let mut r = self.join_result_for(&new_id, false);
            r.leader = if was_leader {
                old_id
            } else {
                self.leader.clone().unwrap_or_default()
            };
            let _ = tx.send(r);
        } else {
            if let Some(m) = self.members.get_mut(&new_id) {
                m.await_join(tx);
            }
            self.prepare_rebalance(timings, now);
            self.maybe_complete_join(now);
        }
        rx
    }

    fn add_member(
        &mut self,
        id: String,
        req: JoinRequest,
        tx: oneshot::Sender<JoinResult>,
        timings: GroupTimings,
        now: Instant,
    ) {
        if self.protocol_type.is_none() || self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        self.members.insert(
            id.clone(),
            Member {
                id,
                instance_id: req.instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                session_timeout: req.session_timeout,
                rebalance_timeout: req.rebalance_timeout,
                protocols: req.protocols,
                assignment: Bytes::new(),
                last_heartbeat: now,
                join_waiter: Some(tx),
                sync_waiter: None,
            },
        );
        let was_initial = self.state == GroupState::Empty;
        self.prepare_rebalance(timings, now);
        if self.initial_join && !was_initial {
            // Each new member during the initial delay extends it, bounded by the rebalance timeout.
            let cap = self.initial_started.unwrap_or(now) + self.max_rebalance_timeout();
            self.join_deadline = Some((now + timings.initial_delay).min(cap));
        }
        self.maybe_complete_join(now);
    }

    /// Kafka's `supportsProtocols`: an empty group takes any non-empty protocol type and list;
    /// otherwise the type must match and one of the offered protocols must be supported by
    /// every other member.
    fn supports_protocols(&self, req: &JoinRequest) -> bool {
        if req.protocols.is_empty() || req.protocol_type.is_empty() {
            return false;
        }
        let others: Vec<&Member> = self
            .members
            .values()
            .filter(|m| m.id != req.member_id)
            .collect();
        if others.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(req.protocol_type.as_str())
            && req.protocols.iter().any(|(n, _)| {
                others
                    .iter()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == n))
            })
    }

    fn max_rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Moves to PreparingRebalance (if not there already) and sets the join deadline.
    fn prepare_rebalance(&mut self, timings: GroupTimings, now: Instant) {
        if self.state == GroupState::PreparingRebalance {
            return;
        }
        // Members waiting in SyncGroup must rejoin.
        for m in self.members.values_mut() {
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(SyncResult {
                    error: err(ResponseError::RebalanceInProgress),
                    ..Default::default()
                });
            }
        }
        self.initial_join = self.state == GroupState::Empty && !timings.initial_delay.is_zero();
        self.initial_started = self.initial_join.then_some(now);
        self.join_deadline = Some(if self.initial_join {
            now + timings.initial_delay.min(self.max_rebalance_timeout())
        } else {
            now + self.max_rebalance_timeout()
        });
        self.sync_deadline = None;
        self.state = GroupState::PreparingRebalance;
    }

    /// Starts a rebalance for a reason outside JoinGroup (a member left or expired).
    pub fn trigger_rebalance(&mut self, timings: GroupTimings, now: Instant) {
        if matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance
        ) {
            self.prepare_rebalance(timings, now);
        }
        self.maybe_complete_join(now);
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    /// Completes the join phase if every member rejoined (or the deadline passed).
    pub fn maybe_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let deadline_passed = self.join_deadline.is_some_and(|d| now >= d);
        if self.initial_join && !deadline_passed {
            return;
        }
        if !self.all_joined() && !deadline_passed {
            return;
        }
        // Dynamic members that did not rejoin in time are removed; static ones stay until their
        // session expires (KIP-345), so a restart does not cost their partitions.
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.pending.clear();
        self.initial_join = false;
        self.join_deadline = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.generation += 1;
            self.protocol = None;
            self.leader = None;
            return;
        }
        self.generation += 1;
        self.protocol = self.select_protocol();
        // The leader must be a member that is waiting for this answer.
        let joined = |id: &str| {
            self.members
                .get(id)
                .is_some_and(|m| m.join_waiter.is_some())
        };
        if !self.leader.as_deref().is_some_and(joined) {
            self.leader = self
                .members
                .values()
                .find(|m| m.join_waiter.is_some())
                .map(|m| m.id.clone());
        }
        self.state = GroupState::CompletingRebalance;
        self.sync_deadline = Some(now + self.max_rebalance_timeout());
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let is_leader = self.leader.as_deref() == Some(id.as_str());
            let result = self.join_result_for(&id, is_leader);
            if let Some(m) = self.members.get_mut(&id) {
                // The session clock restarts with the answer, as Kafka's onCompleteJoin does:
                // a member that waited longer than its session in JoinGroup is not expired.
                m.last_heartbeat = now;
                if let Some(w) = m.join_waiter.take() {
                    let _ = w.send(result);
                }
            }
        }
    }

    fn join_result_for(&self, member_id: &str, with_members: bool) -> JoinResult {
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinResult {
            error: 0,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if with_members {
                self.members
                    .values()
                    .map(|m| {
                        (
                            m.id.clone(),
                            m.instance_id.clone(),
                            m.metadata_for(&protocol),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// The protocol every member supports that the members rank best (Kafka's vote).
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == *n))
            })
            .collect();
        let mut best: Option<(&String, usize)> = None;
        for c in &candidates {
            // Each member votes for its most preferred candidate.
            let votes = self
                .members
                .values()
                .filter(|m| {
                    m.protocols
                        .iter()
                        .map(|(n, _)| n)
                        .find(|n| candidates.contains(n))
                        == Some(*c)
                })
                .count();
            if best.is_none_or(|(_, v)| votes > v) {
                best = Some((c, votes));
            }
        }
        best.map(|(c, _)| c.clone())
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

/// A decoded ConsumerProtocolSubscription: the topics, and the partitions the member says it
/// still owns (`None` before v1, which cannot say).
pub struct Subscription {
    /// Subscribed topic names.
    pub topics: Vec<String>,
    /// Owned partitions by topic name.
    pub owned: Option<Vec<(String, Vec<i32>)>>,
}

/// Decodes a version-prefixed ConsumerProtocolSubscription (the classic consumer protocol's
/// member metadata).
pub fn decode_subscription(meta: &Bytes) -> Option<Subscription> {
    let mut b = meta.clone();
    if b.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([b[0], b[1]]);
    bytes::Buf::advance(&mut b, 2);
    use kafka_protocol::protocol::Decodable;
    let sub =
        kafka_protocol::messages::ConsumerProtocolSubscription::decode(&mut b, version.clamp(0, 3))
            .ok()?;
    Some(Subscription {
        topics: sub.topics.iter().map(|t| t.to_string()).collect(),
        owned: (version >= 1).then(|| {
            sub.owned_partitions
                .iter()
                .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
                .collect()
        }),
    })
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
