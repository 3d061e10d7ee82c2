//! Members of a consumer group that speak the classic protocol (JoinGroup, SyncGroup,
//! Heartbeat), as Kafka 4 keeps them when it converts a classic group online
//! (`group.consumer.migration.policy`), and the conversions both ways.
//!
//! Upgrade: when a ConsumerGroupHeartbeat arrives for a classic `consumer` group that has
//! members, the group becomes a consumer group; each classic member keeps its partitions
//! (decoded from its ConsumerProtocolAssignment) at an epoch equal to the classic
//! generation, and its subscription is decoded from its ConsumerProtocolSubscription. The
//! coordinator then computes assignments for everyone.
//!
//! A classic member of a consumer group learns its assignment through the classic protocol:
//! its JoinGroup is answered at once (generation = its member epoch, no leader work: the
//! members list is empty), its SyncGroup gets what it may own now, and its Heartbeat answers
//! REBALANCE_IN_PROGRESS whenever it is not at the target, so that it joins again. It reports
//! what it still owns in its subscription's `owned_partitions` (cooperative) or owns nothing
//! when it joins (eager), which is how a revocation is acknowledged.
//!
//! Downgrade: when the last member speaking the new protocol leaves and only classic members
//! remain, the group becomes a classic group again and rebalances the classic way.

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    consumer_protocol_assignment, ConsumerProtocolAssignment, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use serde::{Deserialize, Serialize};

use super::{
    Assignment, ConsumerGroup, ConsumerMember, MemberState, Settings, SubscribedTopic, TopicSource,
};
use crate::group::state::{decode_subscription, Group, GroupState, JoinRequest, StoredMember};

/// What the coordinator keeps of a classic member beside its consumer-group membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassicMember {
    /// Its session timeout (the classic protocol's, from JoinGroup).
    pub session_timeout_ms: i32,
    /// The protocols it offered, in its order of preference.
    pub protocols: Vec<ClassicProtocol>,
}

/// One protocol (assignor) a classic member offered, with its subscription metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassicProtocol {
    /// Assignor name (`range`, `cooperative-sticky`, ...).
    pub name: String,
    /// Its ConsumerProtocolSubscription.
    #[serde(with = "crate::group::store::hexbytes")]
    pub metadata: Bytes,
}

impl ClassicMember {
    fn from_protocols(session_timeout_ms: i32, protocols: &[(String, Bytes)]) -> ClassicMember {
        ClassicMember {
            session_timeout_ms,
            protocols: protocols
                .iter()
                .map(|(n, m)| ClassicProtocol {
                    name: n.clone(),
                    metadata: m.clone(),
                })
                .collect(),
        }
    }

    /// Its preferred protocol (assignor) name.
    pub fn protocol_name(&self) -> String {
        self.protocols
            .first()
            .map(|p| p.name.clone())
            .unwrap_or_default()
    }

    fn metadata_for(&self, name: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }
}

/// Decodes a version-prefixed ConsumerProtocolAssignment into (topic, partitions).
pub fn decode_assignment(bytes: &Bytes) -> Vec<(String, Vec<i32>)> {
    let mut b = bytes.clone();
    if b.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([b[0], b[1]]);
    bytes::Buf::advance(&mut b, 2);
    ConsumerProtocolAssignment::decode(&mut b, version.clamp(0, 3))
        .map(|a| {
            a.assigned_partitions
                .iter()
                .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Encodes an assignment as a version-0 ConsumerProtocolAssignment (what every client reads).
pub fn encode_assignment(a: &Assignment, topics: &dyn TopicSource) -> Bytes {
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        a.iter()
            .filter_map(|(id, ps)| {
                let name = topics.name_of(*id)?;
                Some(
                    consumer_protocol_assignment::TopicPartition::default()
                        .with_topic(TopicName(StrBytes::from_string(name)))
                        .with_partitions(ps.iter().copied().collect()),
                )
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    if assignment.encode(&mut buf, 0).is_err() {
        return Bytes::new();
    }
    buf.freeze()
}

/// Topic names and partitions as an [`Assignment`] (unknown topics left out).
fn by_id(list: &[(String, Vec<i32>)], topics: &dyn TopicSource) -> Assignment {
    let mut a = Assignment::new();
    for (name, ps) in list {
        if let Some(SubscribedTopic { id, partitions }) = topics.topic(name) {
            let set = a.entry(id).or_default();
            set.extend(ps.iter().copied().filter(|p| *p >= 0 && *p < partitions));
        }
    }
    a.retain(|_, ps| !ps.is_empty());
    a
}

/// How a JoinGroup of a classic member is answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassicJoinReply {
    /// MEMBER_ID_REQUIRED for a new member that must join again with `member_id` (KIP-394).
    pub error: Option<ResponseError>,
    /// Member id (generated for a new member).
    pub member_id: String,
    /// Its member epoch, as the generation.
    pub generation: i32,
    /// The protocol (assignor) it will use to read its assignment.
    pub protocol_name: String,
}

impl ConsumerGroup {
    /// The classic group `g` as a consumer group (Kafka's `ConsumerGroup.fromClassicGroup`):
    /// every member keeps what it owns at the classic generation.
    pub fn from_classic(g: &Group, topics: &dyn TopicSource) -> ConsumerGroup {
        let protocol = g.protocol.clone().unwrap_or_default();
        let mut cg = ConsumerGroup::new(&g.id);
        cg.group_epoch = g.generation;
        cg.assignment_epoch = g.generation;
        for m in g.members.values() {
            let sub = decode_subscription(&m.metadata_for(&protocol));
            let assigned = by_id(&decode_assignment(&m.assignment), topics);
            let mut member = ConsumerMember::new(&m.id);
            member.instance_id = m.instance_id.clone();
            member.client_id = m.client_id.clone();
            member.client_host = m.client_host.clone();
            member.subscribed_topic_names = sub.map(|s| s.topics).unwrap_or_default();
            member.subscribed_topic_names.sort();
            member.subscribed_topic_names.dedup();
            member.rebalance_timeout_ms = duration_ms(m.rebalance_timeout);
            member.member_epoch = g.generation;
            member.previous_member_epoch = g.generation;
            member.state = MemberState::Stable;
            member.classic = Some(ClassicMember::from_protocols(
                duration_ms(m.session_timeout),
                &m.protocols,
            ));
            cg.target.insert(m.id.clone(), assigned.clone());
            member.assigned = assigned;
            cg.members.insert(m.id.clone(), member);
        }
        // The subscriptions as the classic assignment saw them: no new target until
        // something changes.
        cg.subscribed = cg.resolve_subscribed(topics);
        cg.resolved_at = Some(topics.version());
        cg.dirty = true;
        cg
    }

    /// JoinGroup by a classic member: updates its subscription and moves it towards its
    /// target; answered at once.
    pub fn classic_join(
        &mut self,
        req: &JoinRequest,
        topics: &dyn TopicSource,
        settings: &Settings,
        now: Instant,
    ) -> Result<ClassicJoinReply, ResponseError> {
        self.bumped = false;
        if req.protocol_type != "consumer" {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        let Some((protocol_name, meta)) = req.protocols.first().cloned() else {
            return Err(ResponseError::InconsistentGroupProtocol);
        };
        let Some(sub) = decode_subscription(&meta) else {
            return Err(ResponseError::InconsistentGroupProtocol);
        };
        // A static member coming back under a new member id takes its old place.
        let mut member_id = req.member_id.clone();
        if let Some(i) = &req.instance_id {
            let holder = self
                .members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(i))
                .map(|m| m.id.clone());
            if let Some(old) = holder.filter(|old| *old != member_id) {
                if member_id.is_empty() {
                    member_id = crate::group::state::new_member_id(&req.client_id);
                }
                let mut m = self.members.remove(&old).expect("found above");
                m.id = member_id.clone();
                if let Some(t) = self.target.remove(&old) {
                    self.target.insert(member_id.clone(), t);
                }
                self.members.insert(member_id.clone(), m);
                self.dirty = true;
            }
        }
        if member_id.is_empty() {
            member_id = crate::group::state::new_member_id(&req.client_id);
            if req.require_known_member_id && req.instance_id.is_none() {
                // KIP-394: the client joins again with this id.
                return Ok(ClassicJoinReply {
                    error: Some(ResponseError::MemberIdRequired),
                    member_id,
                    generation: -1,
                    protocol_name,
                });
            }
        }
        if !self.members.contains_key(&member_id) {
            if self.members.len() >= settings.max_size {
                return Err(ResponseError::GroupMaxSizeReached);
            }
            let mut m = ConsumerMember::new(&member_id);
            m.instance_id = req.instance_id.clone();
            self.members.insert(member_id.clone(), m);
            self.bump();
        }
        let m = self.members.get_mut(&member_id).expect("inserted above");
        let mut topics_wanted = sub.topics.clone();
        topics_wanted.sort();
        topics_wanted.dedup();
        let changed = topics_wanted != m.subscribed_topic_names;
        m.subscribed_topic_names = topics_wanted;
        m.subscribed_topic_regex = None;
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        m.rebalance_timeout_ms = duration_ms(req.rebalance_timeout);
        m.classic = Some(ClassicMember::from_protocols(
            duration_ms(req.session_timeout),
            &req.protocols,
        ));
        m.session_deadline = Some(now + req.session_timeout);
        if changed {
            self.bump();
        }
        self.refresh_subscriptions(topics, changed);
        self.ensure_target(settings);
        // What it still owns: its subscription says so (cooperative); an eager member gave
        // everything up before joining.
        let owned = by_id(&sub.owned.unwrap_or_default(), topics);
        self.reconcile_member(&member_id, Some(&owned), now);
        let m = &self.members[&member_id];
        self.dirty = true;
        Ok(ClassicJoinReply {
            error: None,
            member_id,
            generation: m.member_epoch,
            protocol_name,
        })
    }

    /// SyncGroup by a classic member: what it may own now, encoded for its assignor.
    pub fn classic_sync(
        &self,
        member_id: &str,
        generation: i32,
        topics: &dyn TopicSource,
    ) -> Result<(String, Bytes), ResponseError> {
        let m = self.classic_member(member_id)?;
        if generation != m.member_epoch {
            return Err(ResponseError::IllegalGeneration);
        }
        let name = m
            .classic
            .as_ref()
            .map(|c| c.protocol_name())
            .unwrap_or_default();
        Ok((name, encode_assignment(&m.assigned, topics)))
    }

    /// Heartbeat by a classic member: REBALANCE_IN_PROGRESS while it is not at its target,
    /// so that it joins again.
    pub fn classic_heartbeat(
        &mut self,
        member_id: &str,
        generation: i32,
        topics: &dyn TopicSource,
        settings: &Settings,
        now: Instant,
    ) -> Result<(), ResponseError> {
        self.bumped = false;
        let m = self.classic_member(member_id)?;
        if generation != m.member_epoch {
            return Err(ResponseError::IllegalGeneration);
        }
        let session = m.classic.as_ref().map_or(settings.session_timeout, |c| {
            Duration::from_millis(c.session_timeout_ms.max(0) as u64)
        });
        if let Some(m) = self.members.get_mut(member_id) {
            m.session_deadline = Some(now + session);
        }
        self.refresh_subscriptions(topics, false);
        self.ensure_target(settings);
        let m = &self.members[member_id];
        let at_target = m.state == MemberState::Stable
            && m.member_epoch == self.assignment_epoch
            && self.target.get(member_id).is_none_or(|t| *t == m.assigned);
        if at_target {
            Ok(())
        } else {
            Err(ResponseError::RebalanceInProgress)
        }
    }

    fn classic_member(&self, member_id: &str) -> Result<&ConsumerMember, ResponseError> {
        match self.members.get(member_id) {
            Some(m) if m.classic.is_some() => Ok(m),
            _ => Err(ResponseError::UnknownMemberId),
        }
    }

    /// True when only classic members are left (and some are): the group may become classic
    /// again.
    pub fn only_classic_members(&self) -> bool {
        !self.members.is_empty() && self.members.values().all(|m| m.classic.is_some())
    }

    /// The group as a classic group (Kafka's `ClassicGroup.fromConsumerGroup`), rebalancing
    /// so that every member joins the classic way. `None` when the members share no protocol.
    pub fn to_classic(&self, topics: &dyn TopicSource) -> Option<Group> {
        let first = self.members.values().next()?.classic.as_ref()?;
        let protocol = first
            .protocols
            .iter()
            .map(|p| &p.name)
            .find(|name| {
                self.members.values().all(|m| {
                    m.classic
                        .as_ref()
                        .is_some_and(|c| c.protocols.iter().any(|p| p.name == **name))
                })
            })?
            .clone();
        let members: Vec<StoredMember> = self
            .members
            .values()
            .map(|m| {
                let c = m.classic.as_ref().expect("all members are classic");
                StoredMember {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: c.session_timeout_ms.max(0) as u64,
                    rebalance_timeout_ms: m.rebalance_timeout_ms.max(0) as u64,
                    subscription: c.metadata_for(&protocol),
                    assignment: encode_assignment(&m.assigned, topics),
                }
            })
            .collect();
        let leader = members.first().map(|m| m.id.clone());
        // The generation the members are at (not the group epoch, which the departure of the
        // last member of the new protocol has just bumped): their commits stay valid while
        // the classic group rebalances, as Kafka converts before bumping.
        let generation = self
            .members
            .values()
            .map(|m| m.member_epoch)
            .max()
            .unwrap_or(self.group_epoch);
        let g = Group::restore(
            &self.id,
            generation,
            Some("consumer".into()),
            Some(protocol),
            leader,
            members,
            Instant::now(),
        );
        debug_assert!(g.state == GroupState::Stable);
        Some(g)
    }
}

fn duration_ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
