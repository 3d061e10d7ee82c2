//! The coordinator's side of consumer groups (KIP-848): ConsumerGroupHeartbeat and
//! ConsumerGroupDescribe over the groups it owns, each change persisted as the group's
//! record in `__consumer_offsets` before the answer goes out. The protocol itself is
//! `group/consumer/`.

use std::time::Instant;

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::GroupCoordinator;
use crate::group::consumer::{
    Assignment, ConsumerGroup, Heartbeat, HeartbeatReply, Refusal, Settings, SubscribedTopic,
    TopicSource,
};
use crate::group::entry::GroupEntry;
use crate::group::state::{GroupState, JoinRequest, JoinResult, SyncResult};
use crate::group::store::Entry;
use crate::metadata::MetadataImage;
use crate::time::now_ms;
use tokio::sync::oneshot;

/// The metadata image as a consumer group sees topics.
pub struct ImageTopics<'a>(pub &'a MetadataImage);

impl TopicSource for ImageTopics<'_> {
    fn topic(&self, name: &str) -> Option<SubscribedTopic> {
        self.0.topics.get(name).map(|t| SubscribedTopic {
            id: t.id,
            partitions: t.partitions.len() as i32,
        })
    }

    fn for_each_name(&self, f: &mut dyn FnMut(&str)) {
        for t in self.0.topics.values() {
            if !t.is_internal() {
                f(&t.name);
            }
        }
    }

    fn version(&self) -> u64 {
        self.0.version
    }

    fn name_of(&self, id: Uuid) -> Option<String> {
        self.0.topic_by_id(id).map(|t| t.name.clone())
    }
}

/// One member of a described consumer group.
#[derive(Debug, Clone)]
pub struct DescribedMember {
    /// The member as the group holds it.
    pub member: crate::group::consumer::ConsumerMember,
    /// Its target assignment.
    pub target: Assignment,
}

/// A consumer group as ConsumerGroupDescribe (and the console) show it.
#[derive(Debug, Clone)]
pub struct DescribedConsumerGroup {
    /// Group id.
    pub id: String,
    /// Kafka's state name.
    pub state: &'static str,
    /// Group epoch.
    pub group_epoch: i32,
    /// Assignment epoch.
    pub assignment_epoch: i32,
    /// The assignor of the target.
    pub assignor: String,
    /// Members.
    pub members: Vec<DescribedMember>,
}

fn refusal(e: ResponseError) -> Refusal {
    Refusal {
        error: e,
        message: String::new(),
    }
}

impl GroupCoordinator {
    /// The consumer-group settings (`group.consumer.*`, read once at start).
    pub fn consumer_settings(&self) -> &Settings {
        &self.consumer
    }

    /// ConsumerGroupHeartbeat.
    pub fn consumer_heartbeat(
        &self,
        group_id: &str,
        hb: Heartbeat,
    ) -> Result<HeartbeatReply, Refusal> {
        if group_id.is_empty() {
            return Err(Refusal {
                error: ResponseError::InvalidRequest,
                message: "GroupId can't be empty.".into(),
            });
        }
        let p = self.owner(group_id).map_err(refusal)?;
        let image = self.log.image();
        let settings = &self.consumer;
        let mut groups = self.lock();
        // Kafka answers GROUP_ID_NOT_FOUND here; librdkafka 2.12 has no case for it in its
        // heartbeat handling and retries at the same epoch, where UNKNOWN_MEMBER_ID makes it
        // join again, which is what a member of a group this coordinator lost must do.
        if !groups.contains_key(group_id) && hb.member_epoch != 0 {
            return Err(Refusal {
                error: ResponseError::UnknownMemberId,
                message: format!("consumer group {group_id} not found"),
            });
        }
        let e = groups
            .entry(group_id.to_string())
            .or_insert_with(|| GroupEntry::new(group_id));
        if e.consumer.is_none() {
            if e.group.state == GroupState::Dead || e.group.members.is_empty() {
                // An empty classic group (offsets only) becomes a consumer group.
                e.group = crate::group::state::Group::new(group_id);
                e.consumer = Some(Box::new(ConsumerGroup::new(group_id)));
            } else {
                self.upgrade(e, group_id)?;
            }
        }
        let Some(cg) = e.consumer.as_mut() else {
            return Err(refusal(ResponseError::UnknownServerError));
        };
        let leaving = hb.member_epoch == crate::group::consumer::LEAVE_EPOCH;
        let reply = cg.heartbeat(hb, &ImageTopics(&image), settings, Instant::now());
        cg.note_state(now_ms());
        if cg.take_dirty() {
            self.append(&p, &[Entry::consumer_group(cg)])
                .map_err(refusal)?;
        }
        if leaving {
            self.maybe_downgrade(&p, e);
        }
        reply
    }

    /// True when `member_id` is a member of the consumer group `group_id` speaking the KIP-848
    /// protocol (not a classic member of a converted group).
    pub fn uses_consumer_protocol(&self, group_id: &str, member_id: &str) -> bool {
        let groups = self.lock();
        groups
            .get(group_id)
            .and_then(|e| e.consumer.as_ref())
            .and_then(|cg| cg.members.get(member_id))
            .is_some_and(|m| m.classic.is_none())
    }

    /// OffsetFetch v9's member check: a member of a consumer group that names its epoch must
    /// be at it (STALE_MEMBER_EPOCH, UNKNOWN_MEMBER_ID); anyone else is not checked.
    pub fn validate_fetch_member(
        &self,
        group_id: &str,
        member_id: &str,
        member_epoch: i32,
    ) -> Result<(), ResponseError> {
        if member_epoch < 0 && member_id.is_empty() {
            return Ok(());
        }
        let groups = self.lock();
        match groups.get(group_id).and_then(|e| e.consumer.as_ref()) {
            Some(cg) => cg.validate_fetch(member_id, member_epoch),
            None => Ok(()),
        }
    }

    /// ConsumerGroupDescribe of one group: GROUP_ID_NOT_FOUND for an unknown or classic one.
    pub fn consumer_describe(&self, group_id: &str) -> Result<DescribedConsumerGroup, Refusal> {
        self.owner(group_id).map_err(refusal)?;
        let groups = self.lock();
        let Some(e) = groups.get(group_id) else {
            return Err(Refusal {
                error: ResponseError::GroupIdNotFound,
                message: format!("Group {group_id} not found."),
            });
        };
        let Some(cg) = e.consumer.as_ref() else {
            return Err(Refusal {
                error: ResponseError::GroupIdNotFound,
                message: format!("Group {group_id} is not a consumer group."),
            });
        };
        Ok(describe(cg))
    }

    /// Expires consumer-group sessions and matches subscription regexes; persists the groups
    /// that changed. Called from [`GroupCoordinator::tick`] with `groups` held.
    pub(super) fn tick_consumer(
        &self,
        id: &str,
        e: &mut GroupEntry,
        loaded: &std::collections::BTreeSet<i32>,
        topics: &ImageTopics<'_>,
        now: Instant,
    ) {
        let Some(cg) = e.consumer.as_mut() else {
            return;
        };
        let removed = cg.tick(&self.consumer, now);
        cg.refresh_regexes(topics, now);
        cg.note_state(now_ms());
        if cg.take_dirty() {
            if let Ok(p) = self.owner_among(id, loaded) {
                let _ = self.append(&p, &[Entry::consumer_group(cg)]);
                if removed {
                    self.maybe_downgrade(&p, e);
                }
            }
        }
    }
}

/// A consumer group's description.
pub fn describe(cg: &ConsumerGroup) -> DescribedConsumerGroup {
    DescribedConsumerGroup {
        id: cg.id.clone(),
        state: cg.state().name(),
        group_epoch: cg.group_epoch,
        assignment_epoch: cg.assignment_epoch,
        assignor: cg.assignor.clone(),
        members: cg
            .members
            .values()
            .map(|m| DescribedMember {
                member: m.clone(),
                target: cg.target.get(&m.id).cloned().unwrap_or_default(),
            })
            .collect(),
    }
}

impl GroupCoordinator {
    /// JoinGroup by a classic member into a consumer group (a group converted online):
    /// answered at once with its member epoch as the generation and no members to assign.
    pub(super) fn join_consumer_group(
        &self,
        p: &crate::replica::Partition,
        e: &mut GroupEntry,
        req: JoinRequest,
    ) -> Result<oneshot::Receiver<JoinResult>, ResponseError> {
        let image = self.log.image();
        let settings = &self.consumer;
        let Some(cg) = e.consumer.as_mut() else {
            return Err(ResponseError::UnknownServerError);
        };
        let r = cg.classic_join(&req, &ImageTopics(&image), settings, Instant::now())?;
        cg.note_state(now_ms());
        if cg.take_dirty() {
            self.append(p, &[Entry::consumer_group(cg)])?;
        }
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(JoinResult {
            error: r.error.map_or(0, |e| e.code()),
            generation: r.generation,
            protocol_type: Some("consumer".into()),
            protocol_name: Some(r.protocol_name),
            // Nobody leads: the coordinator assigns.
            leader: String::new(),
            member_id: r.member_id,
            members: Vec::new(),
        });
        Ok(rx)
    }

    /// SyncGroup by a classic member of a consumer group: its assignment, at once.
    pub(super) fn sync_consumer_group(
        &self,
        e: &mut GroupEntry,
        member_id: &str,
        generation: i32,
    ) -> Result<oneshot::Receiver<SyncResult>, ResponseError> {
        let image = self.log.image();
        let Some(cg) = e.consumer.as_ref() else {
            return Err(ResponseError::UnknownServerError);
        };
        let (protocol, assignment) =
            cg.classic_sync(member_id, generation, &ImageTopics(&image))?;
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(SyncResult {
            error: 0,
            protocol_type: Some("consumer".into()),
            protocol_name: Some(protocol),
            assignment,
        });
        Ok(rx)
    }

    /// Heartbeat by a classic member of a consumer group.
    pub(super) fn heartbeat_consumer_group(
        &self,
        group_id: &str,
        e: &mut GroupEntry,
        member_id: &str,
        generation: i32,
    ) -> i16 {
        let image = self.log.image();
        let settings = &self.consumer;
        let Some(cg) = e.consumer.as_mut() else {
            return ResponseError::UnknownServerError.code();
        };
        let r = cg.classic_heartbeat(
            member_id,
            generation,
            &ImageTopics(&image),
            settings,
            Instant::now(),
        );
        if cg.take_dirty() {
            if let Ok(p) = self.owner(group_id) {
                let _ = self.append(&p, &[Entry::consumer_group(cg)]);
            }
        }
        r.err().map_or(0, |e| e.code())
    }

    /// Makes a consumer group left with classic members only a classic group again
    /// (`group.consumer.migration.policy` downgrade), which then rebalances the classic way.
    pub(super) fn maybe_downgrade(&self, p: &crate::replica::Partition, e: &mut GroupEntry) {
        if !self.config.consumer.migration_policy.downgrades() {
            return;
        }
        let Some(cg) = e.consumer.as_ref() else {
            return;
        };
        if !cg.only_classic_members() {
            return;
        }
        let image = self.log.image();
        let Some(mut g) = cg.to_classic(&ImageTopics(&image)) else {
            return;
        };
        g.trigger_rebalance(self.timings(), Instant::now());
        let value = Self::group_value(&g);
        let id = cg.id.clone();
        if self
            .append(
                p,
                &[
                    Entry::consumer_group_tombstone(&id),
                    Entry::group(&id, &value),
                ],
            )
            .is_ok()
        {
            tracing::info!(group = %id, "consumer group with only classic members left becomes a classic group");
            e.consumer = None;
            e.group = g;
        }
    }

    /// Makes a classic `consumer` group with members a consumer group, for a member of the
    /// new protocol to join (`group.consumer.migration.policy` upgrade). The classic
    /// members' pending joins and syncs are answered REBALANCE_IN_PROGRESS so that they join
    /// the converted group.
    fn upgrade(&self, e: &mut GroupEntry, group_id: &str) -> Result<(), Refusal> {
        let not_consumer = || Refusal {
            error: ResponseError::GroupIdNotFound,
            message: format!("Group {group_id} is not a consumer group."),
        };
        let settings = &self.consumer;
        if !self.config.consumer.migration_policy.upgrades()
            || e.group.protocol_type.as_deref() != Some("consumer")
            || e.group.members.len() >= settings.max_size
        {
            return Err(not_consumer());
        }
        let image = self.log.image();
        let cg = ConsumerGroup::from_classic(&e.group, &ImageTopics(&image));
        e.group.abandon();
        e.group = crate::group::state::Group::new(group_id);
        e.consumer = Some(Box::new(cg));
        tracing::info!(
            group = group_id,
            "classic group converted online to a consumer group"
        );
        Ok(())
    }

    /// LeaveGroup from a consumer group: each named member (by id, or by instance id) is
    /// removed and its partitions freed for a new target.
    pub(super) fn leave_consumer_group(
        &self,
        p: &crate::replica::Partition,
        e: &mut GroupEntry,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<i16>, ResponseError> {
        let Some(cg) = e.consumer.as_mut() else {
            return Err(ResponseError::UnknownMemberId);
        };
        let codes = members
            .iter()
            .map(|(id, instance)| {
                let Some(instance) = instance else {
                    return if cg.remove_member(id) {
                        0
                    } else {
                        ResponseError::UnknownMemberId.code()
                    };
                };
                // A static member is named by its instance id; a member id given with it must
                // be the holder's.
                let holder = cg
                    .members
                    .values()
                    .find(|m| m.instance_id.as_deref() == Some(instance.as_str()))
                    .map(|m| m.id.clone());
                match holder {
                    None => ResponseError::UnknownMemberId.code(),
                    Some(h) if !id.is_empty() && *id != h => ResponseError::FencedInstanceId.code(),
                    Some(h) => {
                        cg.remove_member(&h);
                        0
                    }
                }
            })
            .collect();
        cg.note_state(now_ms());
        if cg.take_dirty() {
            self.append(p, &[Entry::consumer_group(cg)])?;
        }
        self.maybe_downgrade(p, e);
        Ok(codes)
    }
}
