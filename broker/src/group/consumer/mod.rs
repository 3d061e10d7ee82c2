//! Consumer groups of the KIP-848 protocol: membership driven by ConsumerGroupHeartbeat,
//! assignments computed by the coordinator (`assignor.rs`) and reached by each member on its
//! own (`reconcile.rs`), with member epochs fencing zombies. Pure logic over explicit `now`
//! values, as the classic `state.rs` is; the coordinator persists the group after every
//! change ([`ConsumerGroup::take_dirty`]) and runs [`ConsumerGroup::tick`].
//!
//! Epochs: the group epoch is bumped by every change that calls for a new target assignment
//! (a member joining or leaving, a subscription changing, a subscribed topic gaining
//! partitions or appearing); the target is recomputed lazily when the group epoch is ahead
//! of the assignment epoch; a member's epoch reaches the assignment epoch once it has
//! revoked what it had to.

pub mod assignor;
pub mod classic;
mod member;
mod reconcile;
mod subscription;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use assignor::{AssignInput, Assignor, MemberSpec};

pub use classic::ClassicMember;
use member::{rebalance_timeout, session_of};
pub use member::{ConsumerMember, MemberState};
use subscription::validate_subscription;
pub use subscription::{
    compile, MAX_REGEX_BYTES, MAX_REGEX_PROGRAM_BYTES, MAX_SUBSCRIBED_TOPICS,
    REGEX_REFRESH_INTERVAL,
};

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The epoch a member sends to leave.
pub const LEAVE_EPOCH: i32 = -1;
/// The epoch a static member sends to leave for a while (its assignment is kept for its
/// session timeout, for the same `group.instance.id` to take back).
pub const STATIC_LEAVE_EPOCH: i32 = -2;

/// A consumer group's state as Kafka names it (ListGroups, ConsumerGroupDescribe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    /// No members.
    Empty,
    /// A new target assignment is due.
    Assigning,
    /// Members are moving to the target.
    Reconciling,
    /// Every member is at the target.
    Stable,
}

impl ConsumerGroupState {
    /// Every state, in the order of [`ConsumerGroupState::index`].
    pub const ALL: [ConsumerGroupState; 4] = [
        ConsumerGroupState::Empty,
        ConsumerGroupState::Assigning,
        ConsumerGroupState::Reconciling,
        ConsumerGroupState::Stable,
    ];

    /// Position in [`ConsumerGroupState::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// A subscribed topic as the target assignment saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribedTopic {
    /// Topic id.
    pub id: Uuid,
    /// Partition count.
    pub partitions: i32,
}

/// The cluster's topics as a group needs them (the metadata image, in the coordinator).
pub trait TopicSource {
    /// A topic by name.
    fn topic(&self, name: &str) -> Option<SubscribedTopic>;
    /// Calls `f` with every topic a regex may match (internal topics excluded).
    fn for_each_name(&self, f: &mut dyn FnMut(&str));
    /// Changes whenever the topics may have.
    fn version(&self) -> u64;
    /// A topic's name by id.
    fn name_of(&self, id: Uuid) -> Option<String>;
}

/// Settings of consumer groups (`group.consumer.*`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `group.consumer.session.timeout.ms`.
    pub session_timeout: Duration,
    /// `group.consumer.heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `group.consumer.assignors`, the first the default.
    pub assignors: Vec<Assignor>,
    /// `group.consumer.max.size`.
    pub max_size: usize,
}

impl Settings {
    /// From the broker's `group.consumer.*` settings (assignor names are validated there).
    pub fn from_config(c: &crate::config::group::ConsumerGroupConfig) -> Settings {
        Settings {
            session_timeout: c.session_timeout,
            heartbeat_interval: c.heartbeat_interval,
            assignors: c
                .assignors
                .iter()
                .filter_map(|a| Assignor::parse(a))
                .collect(),
            max_size: c.max_size,
        }
    }
}

/// What a ConsumerGroupHeartbeat carries (null fields: unchanged since the last one).
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    /// Member id.
    pub member_id: String,
    /// Member epoch: 0 joins, -1 leaves, -2 leaves for a while (static).
    pub member_epoch: i32,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// Rebalance timeout, -1 if unchanged.
    pub rebalance_timeout_ms: i32,
    /// Subscribed names.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// Subscribed regex ("" clears it).
    pub subscribed_topic_regex: Option<String>,
    /// Requested assignor.
    pub server_assignor: Option<String>,
    /// Partitions it owns.
    pub owned: Option<Assignment>,
    /// The connection's client id.
    pub client_id: String,
    /// The connection's host.
    pub client_host: String,
}

/// A heartbeat's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatReply {
    /// Member id.
    pub member_id: String,
    /// Member epoch.
    pub member_epoch: i32,
    /// The assignment, when the member must (re)learn it.
    pub assignment: Option<Assignment>,
}

/// A refused request: Kafka's error and a message for the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// Error.
    pub error: ResponseError,
    /// Why.
    pub message: String,
}

fn refuse(error: ResponseError, message: impl Into<String>) -> Refusal {
    Refusal {
        error,
        message: message.into(),
    }
}

/// One consumer group (the persisted part serializes as its `__consumer_offsets` record).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsumerGroup {
    /// Group id.
    pub id: String,
    /// Bumped by every change that calls for a new target assignment.
    pub group_epoch: i32,
    /// The group epoch the target was computed at.
    pub assignment_epoch: i32,
    /// Members by id.
    pub members: BTreeMap<String, ConsumerMember>,
    /// Target assignment by member.
    pub target: BTreeMap<String, Assignment>,
    /// The subscribed topics the target was computed against, by name.
    pub subscribed: BTreeMap<String, SubscribedTopic>,
    /// The assignor of the target.
    pub assignor: String,
    /// When the group last became empty (ms since the epoch), for offset expiry (KIP-211).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_since_ms: Option<i64>,
    /// The topics each subscription regex in use matched when last resolved
    /// ([`ConsumerGroup::refresh_regexes`]); a regex not here matches nothing yet. Persisted,
    /// so a reloaded group assigns what it did before its first refresh.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub regex_matches: BTreeMap<String, BTreeSet<String>>,
    /// The metadata version and time of the last regex resolution.
    #[serde(skip)]
    regexes_at: Option<(u64, Instant)>,
    /// Metadata version the subscriptions were last resolved at.
    #[serde(skip)]
    resolved_at: Option<u64>,
    /// Changed since last persisted.
    #[serde(skip)]
    dirty: bool,
    /// The group epoch was bumped by the operation under way: one operation (a join that
    /// also brings new topics) bumps it once.
    #[serde(skip)]
    bumped: bool,
}

impl ConsumerGroup {
    /// A new, empty group.
    pub fn new(id: &str) -> ConsumerGroup {
        ConsumerGroup {
            id: id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            subscribed: BTreeMap::new(),
            assignor: String::new(),
            empty_since_ms: None,
            regex_matches: BTreeMap::new(),
            regexes_at: None,
            resolved_at: None,
            dirty: false,
            bumped: false,
        }
    }

    /// Tracks when the group became empty; call after every operation.
    pub fn note_state(&mut self, now_ms: i64) {
        match (self.members.is_empty(), self.empty_since_ms) {
            (true, None) => {
                self.empty_since_ms = Some(now_ms);
                self.dirty = true;
            }
            (false, Some(_)) => self.empty_since_ms = None,
            _ => {}
        }
    }

    /// True (once) when the group changed and must be persisted.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Kafka's group state.
    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| m.state != MemberState::Stable || m.member_epoch != self.assignment_epoch)
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The topics the members subscribe to by name (OffsetDelete refuses those).
    pub fn subscribed_topic_names(&self) -> Vec<String> {
        self.subscribed.keys().cloned().collect()
    }

    /// True when some member speaks the classic protocol.
    pub fn has_classic_members(&self) -> bool {
        self.members.values().any(|m| m.classic.is_some())
    }

    fn bump(&mut self) {
        if !self.bumped {
            self.group_epoch += 1;
            self.bumped = true;
        }
        self.dirty = true;
    }

    /// Handles one ConsumerGroupHeartbeat.
    pub fn heartbeat(
        &mut self,
        hb: Heartbeat,
        topics: &dyn TopicSource,
        settings: &Settings,
        now: Instant,
    ) -> Result<HeartbeatReply, Refusal> {
        self.bumped = false;
        match hb.member_epoch {
            LEAVE_EPOCH => return self.leave(&hb.member_id, hb.instance_id.as_deref()),
            STATIC_LEAVE_EPOCH => {
                return self.static_leave(&hb.member_id, hb.instance_id.as_deref(), settings, now)
            }
            e if e < 0 => {
                return Err(refuse(
                    ResponseError::InvalidRequest,
                    "invalid member epoch",
                ))
            }
            _ => {}
        }
        let joining = hb.member_epoch == 0;
        if joining {
            self.admit(&hb, settings)?;
        }
        let member_id = hb.member_id.clone();
        let Some(member) = self.members.get(&member_id) else {
            return Err(refuse(
                ResponseError::UnknownMemberId,
                format!("member {member_id} is not a member of group {}", self.id),
            ));
        };
        if member.classic.is_some() {
            return Err(refuse(
                ResponseError::UnknownMemberId,
                format!("member {member_id} uses the classic protocol"),
            ));
        }
        if let (Some(i), Some(mine)) = (&hb.instance_id, &member.instance_id) {
            if i != mine {
                return Err(refuse(
                    ResponseError::FencedInstanceId,
                    format!("instance id {i} is not that of member {member_id}"),
                ));
            }
        }
        if !joining && hb.member_epoch != member.member_epoch {
            let lost_answer = hb.member_epoch == member.previous_member_epoch
                && hb
                    .owned
                    .as_ref()
                    .is_none_or(|o| is_subset(o, &member.assigned));
            if !lost_answer {
                return Err(refuse(
                    ResponseError::FencedMemberEpoch,
                    format!(
                        "the member epoch {} is fenced, the current one is {}",
                        hb.member_epoch, member.member_epoch
                    ),
                ));
            }
        }
        let validated = validate_subscription(&hb, settings)?;
        // Apply what changed.
        let m = self.members.get_mut(&member_id).expect("checked above");
        let mut subscription_changed = false;
        if let Some(names) = validated.names {
            if names != m.subscribed_topic_names {
                m.subscribed_topic_names = names;
                subscription_changed = true;
            }
        }
        if let Some(re) = validated.regex {
            if re != m.subscribed_topic_regex {
                m.subscribed_topic_regex = re;
                subscription_changed = true;
            }
        }
        if let Some(a) = validated.assignor {
            if Some(&a) != m.server_assignor.as_ref() {
                m.server_assignor = Some(a);
                subscription_changed = true;
            }
        }
        // What is persisted changes only when a field does: a heartbeat that only renews the
        // session writes nothing.
        let mut member_changed = false;
        if let Some(r) = &hb.rack_id {
            let rack = Some(r.clone()).filter(|r| !r.is_empty());
            member_changed |= rack != m.rack_id;
            m.rack_id = rack;
        }
        if hb.rebalance_timeout_ms > 0 && hb.rebalance_timeout_ms != m.rebalance_timeout_ms {
            m.rebalance_timeout_ms = hb.rebalance_timeout_ms;
            member_changed = true;
        }
        if m.client_id != hb.client_id || m.client_host != hb.client_host {
            m.client_id.clone_from(&hb.client_id);
            m.client_host.clone_from(&hb.client_host);
            member_changed = true;
        }
        m.session_deadline = Some(now + settings.session_timeout);
        if joining && m.member_epoch == 0 {
            // A fresh member, or one that rejoined after being fenced: it owns nothing.
            member_changed |= !m.assigned.is_empty() || !m.pending_revocation.is_empty();
            m.assigned.clear();
            m.pending_revocation.clear();
            m.state = MemberState::Stable;
        }
        if subscription_changed {
            self.bump();
            self.prune_regexes();
        }
        if member_changed {
            self.dirty = true;
        }
        self.refresh_subscriptions(topics, subscription_changed || joining);
        self.ensure_target(settings);
        let owned = hb.owned.as_ref();
        let reconciled = self.reconcile_member(&member_id, owned, now);
        let m = &self.members[&member_id];
        let changed = m.member_epoch != hb.member_epoch
            || reconciled
            || owned.is_some_and(|o| *o != m.assigned);
        let full = joining || (hb.subscribed_topic_names.is_some() && hb.owned.is_some());
        Ok(HeartbeatReply {
            member_id,
            member_epoch: m.member_epoch,
            assignment: (changed || full).then(|| m.assigned.clone()),
        })
    }

    /// Checks a joining member (epoch 0) and adds it, or takes over a static member's place.
    fn admit(&mut self, hb: &Heartbeat, settings: &Settings) -> Result<(), Refusal> {
        if hb.member_id.is_empty() {
            return Err(refuse(
                ResponseError::InvalidRequest,
                "MemberId can't be empty.",
            ));
        }
        if hb.rebalance_timeout_ms == -1 {
            return Err(refuse(
                ResponseError::InvalidRequest,
                "RebalanceTimeoutMs must be provided in first request.",
            ));
        }
        if hb.owned.as_ref().is_none_or(|o| !o.is_empty()) {
            return Err(refuse(
                ResponseError::InvalidRequest,
                "TopicPartitions must be empty when (re-)joining.",
            ));
        }
        if hb.subscribed_topic_names.is_none() && hb.subscribed_topic_regex.is_none() {
            return Err(refuse(
                ResponseError::InvalidRequest,
                "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
            ));
        }
        if let Some(instance) = &hb.instance_id {
            let holder = self
                .members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(instance))
                .map(|m| (m.id.clone(), m.member_epoch));
            match holder {
                Some((id, _)) if id == hb.member_id => {}
                Some((id, STATIC_LEAVE_EPOCH)) => {
                    // The instance comes back: the new member takes the old one's place,
                    // assignment and epoch included, without a new target.
                    let mut m = self.members.remove(&id).expect("found above");
                    m.id = hb.member_id.clone();
                    m.member_epoch = m.previous_member_epoch;
                    if let Some(t) = self.target.remove(&id) {
                        self.target.insert(m.id.clone(), t);
                    }
                    self.members.insert(m.id.clone(), m);
                    self.dirty = true;
                    return Ok(());
                }
                Some(_) => {
                    return Err(refuse(
                        ResponseError::UnreleasedInstanceId,
                        format!(
                            "static member {} with instance id {instance} cannot join the group \
                             because the instance id is is owned by another member",
                            hb.member_id
                        ),
                    ))
                }
                None => {}
            }
        }
        if let Some(m) = self.members.get_mut(&hb.member_id) {
            // Rejoining after being fenced: starts over at epoch 0, owning nothing.
            m.member_epoch = 0;
            m.previous_member_epoch = 0;
            return Ok(());
        }
        if self.members.len() >= settings.max_size {
            return Err(refuse(
                ResponseError::GroupMaxSizeReached,
                format!(
                    "the consumer group has reached its maximum capacity of {} members",
                    settings.max_size
                ),
            ));
        }
        let mut m = ConsumerMember::new(&hb.member_id);
        m.instance_id = hb.instance_id.clone();
        self.members.insert(m.id.clone(), m);
        self.bump();
        Ok(())
    }

    /// A member leaves (epoch -1): its partitions are free, a new target follows.
    fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<HeartbeatReply, Refusal> {
        let id = match instance_id {
            Some(i) => self
                .members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(i))
                .map(|m| m.id.clone()),
            None => None,
        }
        .unwrap_or_else(|| member_id.to_string());
        if self.members.remove(&id).is_none() {
            return Err(refuse(
                ResponseError::UnknownMemberId,
                format!("member {member_id} is not a member of group {}", self.id),
            ));
        }
        self.target.remove(&id);
        self.bump();
        self.prune_regexes();
        Ok(HeartbeatReply {
            member_id: member_id.to_string(),
            member_epoch: LEAVE_EPOCH,
            assignment: None,
        })
    }

    /// A static member leaves for a while (epoch -2): it keeps its partitions until its
    /// session times out, for its instance to take back.
    fn static_leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        settings: &Settings,
        now: Instant,
    ) -> Result<HeartbeatReply, Refusal> {
        let Some(instance) = instance_id else {
            return Err(refuse(
                ResponseError::InvalidRequest,
                "InstanceId can't be null when leaving with epoch -2.",
            ));
        };
        let Some(m) = self
            .members
            .values_mut()
            .find(|m| m.instance_id.as_deref() == Some(instance))
        else {
            return Err(refuse(
                ResponseError::UnknownMemberId,
                format!("instance id {instance} is unknown"),
            ));
        };
        if m.id != member_id {
            return Err(refuse(
                ResponseError::FencedInstanceId,
                format!("instance id {instance} belongs to another member"),
            ));
        }
        if m.member_epoch != STATIC_LEAVE_EPOCH {
            m.previous_member_epoch = m.member_epoch;
        }
        m.member_epoch = STATIC_LEAVE_EPOCH;
        m.session_deadline = Some(now + settings.session_timeout);
        self.dirty = true;
        Ok(HeartbeatReply {
            member_id: member_id.to_string(),
            member_epoch: STATIC_LEAVE_EPOCH,
            assignment: None,
        })
    }

    /// Recomputes the target when the group epoch is ahead of it.
    fn ensure_target(&mut self, settings: &Settings) {
        if self.group_epoch <= self.assignment_epoch {
            return;
        }
        let resolved = self.resolve_all();
        let specs: BTreeMap<String, MemberSpec> = resolved
            .iter()
            .map(|(id, names)| {
                let topics = names
                    .iter()
                    .filter_map(|n| self.subscribed.get(n).map(|t| t.id))
                    .collect();
                (id.clone(), MemberSpec { topics })
            })
            .collect();
        let partitions: BTreeMap<Uuid, i32> = self
            .subscribed
            .values()
            .map(|t| (t.id, t.partitions))
            .collect();
        let assignor = self.preferred_assignor(settings);
        self.target = assignor.assign(&AssignInput {
            members: &specs,
            partitions: &partitions,
            previous: &self.target,
        });
        self.assignor = assignor.name().to_string();
        self.assignment_epoch = self.group_epoch;
        self.dirty = true;
    }

    /// The assignor most members asked for, else the configured default.
    fn preferred_assignor(&self, settings: &Settings) -> Assignor {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = m.server_assignor.as_deref() {
                *votes.entry(a).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by_key(|(name, n)| (*n, std::cmp::Reverse(*name)))
            .and_then(|(name, _)| Assignor::parse(name))
            .or_else(|| settings.assignors.first().copied())
            .unwrap_or(Assignor::Uniform)
    }

    /// Moves one member a step towards its target; true (and the group to persist) when its
    /// state, epoch or partitions changed. A member already stable at the target epoch costs
    /// nothing: the ownership of the rest of the group is only gathered when it is needed.
    fn reconcile_member(
        &mut self,
        member_id: &str,
        owned: Option<&Assignment>,
        now: Instant,
    ) -> bool {
        let epoch = self.assignment_epoch;
        match self.members.get(member_id) {
            None => return false,
            Some(m) if m.member_epoch == STATIC_LEAVE_EPOCH => return false,
            Some(m) if m.state == MemberState::Stable && m.member_epoch == epoch => return false,
            Some(_) => {}
        }
        let owners: HashMap<(Uuid, i32), String> = self
            .members
            .values()
            .filter(|m| m.id != member_id)
            .flat_map(|m| m.owned().map(move |tp| (tp, m.id.clone())))
            .collect();
        let empty = Assignment::new();
        let target = self.target.get(member_id).unwrap_or(&empty);
        let Some(m) = self.members.get_mut(member_id) else {
            return false;
        };
        let current = reconcile::Reconciled {
            state: m.state,
            member_epoch: m.member_epoch,
            assigned: std::mem::take(&mut m.assigned),
            pending_revocation: std::mem::take(&mut m.pending_revocation),
        };
        let r = reconcile::next(&current, epoch, target, owned, &owners);
        let changed = r != current;
        if r.member_epoch != m.member_epoch {
            m.previous_member_epoch = m.member_epoch;
        }
        if r.state == MemberState::UnrevokedPartitions {
            if m.state != MemberState::UnrevokedPartitions {
                m.revocation_deadline = Some(now + rebalance_timeout(m));
            }
        } else {
            m.revocation_deadline = None;
        }
        m.state = r.state;
        m.member_epoch = r.member_epoch;
        m.assigned = r.assigned;
        m.pending_revocation = r.pending_revocation;
        if changed {
            self.dirty = true;
        }
        changed
    }

    /// Expires sessions and overdue revocations. True when the group changed.
    pub fn tick(&mut self, settings: &Settings, now: Instant) -> bool {
        self.bumped = false;
        // Members read back from the log start their sessions over at the first tick.
        for m in self.members.values_mut() {
            if m.session_deadline.is_none() {
                m.session_deadline = Some(now + session_of(m, settings));
            }
            if m.state == MemberState::UnrevokedPartitions && m.revocation_deadline.is_none() {
                m.revocation_deadline = Some(now + rebalance_timeout(m));
            }
        }
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline.is_some_and(|d| d <= now)
                    || m.revocation_deadline.is_some_and(|d| d <= now)
            })
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            tracing::info!(group = %self.id, member = %id, "consumer group member removed: session or rebalance timeout");
            self.members.remove(id);
            self.target.remove(id);
            self.bump();
        }
        self.bumped = false;
        self.prune_regexes();
        !gone.is_empty()
    }

    /// Removes a member (LeaveGroup by a classic member, or an admin's removal).
    pub fn remove_member(&mut self, member_id: &str) -> bool {
        self.bumped = false;
        if self.members.remove(member_id).is_some() {
            self.target.remove(member_id);
            self.bump();
            self.prune_regexes();
            true
        } else {
            false
        }
    }

    /// OffsetCommit's check (Kafka's `ConsumerGroup.validateOffsetCommit`): an admin commit
    /// (no member, negative epoch) is allowed only while the group is empty; a member must
    /// exist and commit at its epoch.
    pub fn validate_commit(&self, member_id: &str, epoch: i32) -> Result<(), ResponseError> {
        if member_id.is_empty() && epoch < 0 {
            return if self.members.is_empty() {
                Ok(())
            } else {
                Err(ResponseError::UnknownMemberId)
            };
        }
        let Some(m) = self.members.get(member_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        if m.classic.is_some() {
            return if epoch == m.member_epoch {
                Ok(())
            } else {
                Err(ResponseError::IllegalGeneration)
            };
        }
        if epoch != m.member_epoch {
            return Err(ResponseError::StaleMemberEpoch);
        }
        Ok(())
    }

    /// TxnOffsetCommit's check (Kafka's `validateOffsetCommit` for a transactional commit):
    /// without member fields anything goes; a member must exist and name its epoch
    /// (ILLEGAL_GENERATION otherwise).
    pub fn validate_txn_commit(&self, member_id: &str, epoch: i32) -> Result<(), ResponseError> {
        if member_id.is_empty() && epoch < 0 {
            return Ok(());
        }
        match self.members.get(member_id) {
            None => Err(ResponseError::UnknownMemberId),
            Some(m) if m.member_epoch != epoch => Err(ResponseError::IllegalGeneration),
            Some(_) => Ok(()),
        }
    }

    /// OffsetFetch v9's check: a member that names itself must be at its epoch.
    pub fn validate_fetch(&self, member_id: &str, epoch: i32) -> Result<(), ResponseError> {
        if epoch < 0 {
            return Ok(());
        }
        let Some(m) = self.members.get(member_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        match (epoch == m.member_epoch, m.classic.is_some()) {
            (true, _) => Ok(()),
            (false, true) => Err(ResponseError::IllegalGeneration),
            (false, false) => Err(ResponseError::StaleMemberEpoch),
        }
    }
}

/// `a` ⊆ `b`.
pub fn is_subset(a: &Assignment, b: &Assignment) -> bool {
    a.iter()
        .all(|(t, ps)| ps.is_empty() || b.get(t).is_some_and(|bs| ps.is_subset(bs)))
}
