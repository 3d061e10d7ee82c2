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
use crate::group::state::GroupState;
use crate::group::store::Entry;
use crate::metadata::MetadataImage;
use crate::time::now_ms;

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
    /// The consumer-group settings.
    pub fn consumer_settings(&self) -> Settings {
        Settings::from_config(&self.config.consumer)
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
        let settings = self.consumer_settings();
        let mut groups = self.lock();
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
                return Err(Refusal {
                    error: ResponseError::GroupIdNotFound,
                    message: format!("Group {group_id} is not a consumer group."),
                });
            }
        }
        let Some(cg) = e.consumer.as_mut() else {
            return Err(refusal(ResponseError::UnknownServerError));
        };
        let reply = cg.heartbeat(hb, &ImageTopics(&image), &settings, Instant::now());
        cg.note_state(now_ms());
        if cg.take_dirty() {
            self.append(&p, &[Entry::consumer_group(cg)])
                .map_err(refusal)?;
        }
        reply
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

    /// Expires consumer-group sessions; persists the groups that changed. Called from
    /// [`GroupCoordinator::tick`] with `groups` held.
    pub(super) fn tick_consumer(
        &self,
        id: &str,
        e: &mut GroupEntry,
        loaded: &std::collections::BTreeSet<i32>,
        settings: &Settings,
        now: Instant,
    ) {
        let Some(cg) = e.consumer.as_mut() else {
            return;
        };
        cg.tick(settings, now);
        cg.note_state(now_ms());
        if cg.take_dirty() {
            if let Ok(p) = self.owner_among(id, loaded) {
                let _ = self.append(&p, &[Entry::consumer_group(cg)]);
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
    /// JoinGroup by a classic member into a consumer group.
    pub(super) fn join_consumer_group(
        &self,
        _p: &crate::replica::Partition,
        _e: &mut GroupEntry,
        _req: crate::group::state::JoinRequest,
    ) -> Result<tokio::sync::oneshot::Receiver<crate::group::state::JoinResult>, ResponseError>
    {
        Err(ResponseError::InconsistentGroupProtocol)
    }

    /// SyncGroup by a classic member of a consumer group.
    pub(super) fn sync_consumer_group(
        &self,
        _e: &mut GroupEntry,
        _member_id: &str,
        _generation: i32,
    ) -> Result<tokio::sync::oneshot::Receiver<crate::group::state::SyncResult>, ResponseError>
    {
        Err(ResponseError::UnknownMemberId)
    }

    /// Heartbeat by a classic member of a consumer group.
    pub(super) fn heartbeat_consumer_group(
        &self,
        _group_id: &str,
        _e: &mut GroupEntry,
        _member_id: &str,
        _generation: i32,
    ) -> i16 {
        ResponseError::UnknownMemberId.code()
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
                let target = match instance {
                    Some(i) => cg
                        .members
                        .values()
                        .find(|m| m.instance_id.as_deref() == Some(i.as_str()))
                        .map(|m| m.id.clone()),
                    None => Some(id.clone()),
                };
                match target {
                    Some(t) if (id.is_empty() || *id == t) && cg.remove_member(&t) => 0,
                    Some(_)
                        if instance.is_some()
                            && cg.members.values().any(|m| m.instance_id == *instance) =>
                    {
                        ResponseError::FencedInstanceId.code()
                    }
                    _ => ResponseError::UnknownMemberId.code(),
                }
            })
            .collect();
        cg.note_state(now_ms());
        if cg.take_dirty() {
            self.append(p, &[Entry::consumer_group(cg)])?;
        }
        Ok(codes)
    }
}
