//! The join phase of a classic group: JoinGroup (new, known and static members), the
//! rebalance it starts, and completing the join round (leader, protocol, the answers).

use std::time::{Duration, Instant};

use super::*;

impl Group {
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
    pub(super) fn prepare_rebalance(&mut self, timings: GroupTimings, now: Instant) {
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
}
