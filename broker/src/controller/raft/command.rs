//! The metadata log's application records: [`MetadataCommand`]s, their results, and their
//! deterministic application to a [`MetadataImage`].
//!
//! Applying is a pure function of the image and the command: no clock, no randomness, no I/O,
//! so every replica that applies the same committed log reaches the same image. A command that
//! does not fit the image (unknown topic, stale epoch, ...) changes nothing and yields a
//! [`CommandError`]; it never panics.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::metadata::acl::{AclBinding, MAX_ACL_BINDINGS};
use crate::metadata::image::{BrokerInfo, MetadataImage, PartitionMeta, Reassignment, TopicMeta};
use crate::metadata::quota::QuotaChange;
use crate::metadata::security::{ScramDeletion, ScramUpsert};
use crate::types::{BrokerId, TopicPartition};

/// Largest block of producer ids one [`MetadataCommand::AllocateProducerIds`] may take.
pub const MAX_PRODUCER_ID_BLOCK: i64 = 1 << 20;

/// The most partition changes one [`MetadataCommand::ChangePartitions`] entry carries (about
/// 300 KiB of JSON, well within a metadata RPC frame).
pub const MAX_CHANGES_PER_ENTRY: usize = 2_000;

/// One partition's new state in a [`MetadataCommand::ChangePartitions`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionChange {
    /// The topic's name.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
    /// The partition's new state.
    pub state: PartitionMeta,
}

/// One change to the cluster metadata, as replicated through the Raft log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// Registers (or re-registers) a broker. The broker starts fenced, as in KRaft; an
    /// [`MetadataCommand::UnfenceBroker`] makes it eligible for leadership. Refused when the
    /// image already holds a newer epoch for this id.
    RegisterBroker {
        /// The broker's endpoints and rack.
        info: BrokerInfo,
        /// The registration's epoch; must not go backwards for one broker id.
        epoch: i64,
    },
    /// Fences a registered broker (missed heartbeats, controlled shutdown).
    FenceBroker {
        /// The broker.
        id: BrokerId,
    },
    /// Unfences a registered broker.
    UnfenceBroker {
        /// The broker.
        id: BrokerId,
    },
    /// Creates a topic whose placement the proposer already chose.
    CreateTopic {
        /// The whole topic: name, id, partitions, configs.
        topic: TopicMeta,
    },
    /// Deletes a topic by name.
    DeleteTopic {
        /// The topic's name.
        name: String,
    },
    /// Appends partitions to a topic (CreatePartitions).
    AddPartitions {
        /// The topic's name.
        name: String,
        /// The new partitions, numbered after the existing ones.
        partitions: Vec<PartitionMeta>,
    },
    /// Replaces a topic's config overrides (validated by the proposer).
    SetTopicConfigs {
        /// The topic's name.
        name: String,
        /// The new overrides, replacing the old ones.
        configs: BTreeMap<String, String>,
    },
    /// Replaces one partition's state (leader, ISR, replicas, epochs). A compare-and-set on
    /// the partition epoch: `state.partition_epoch` must be greater than the current one, the
    /// leader epoch must not go backwards, and a leader change must bump the leader epoch.
    ChangePartition {
        /// The topic's name.
        topic: String,
        /// The partition index.
        partition: i32,
        /// The partition's new state.
        state: PartitionMeta,
    },
    /// Many partition changes in one entry (the controller's elections and ISR shrinks after
    /// a broker is fenced: thousands at once at scale). Each is its own compare-and-set, as
    /// [`MetadataCommand::ChangePartition`]; a refused one is skipped and counted, the others
    /// apply. At most [`MAX_CHANGES_PER_ENTRY`].
    ChangePartitions {
        /// The changes, in order.
        changes: Vec<PartitionChange>,
    },
    /// Starts, completes or cancels a partition reassignment (KIP-455): the partition's new
    /// state and the reassignment now in progress (`None`: none). The same compare-and-set
    /// as [`MetadataCommand::ChangePartition`]; `adding` and `removing` must be replicas.
    ReassignPartition {
        /// The topic's name.
        topic: String,
        /// The partition index.
        partition: i32,
        /// The partition's new state.
        state: PartitionMeta,
        /// The reassignment in progress after this change.
        reassignment: Option<Reassignment>,
    },
    /// Replaces the dynamic configs of one broker (`resource` = its id) or of all brokers
    /// (`resource` = ""), validated by the proposer. Empty configs remove the entry.
    SetBrokerConfigs {
        /// `""` or a broker id.
        resource: String,
        /// The new dynamic configs, replacing the old ones.
        configs: BTreeMap<String, String>,
    },
    /// Takes a block of `count` producer ids; the result is the first id of the block.
    AllocateProducerIds {
        /// How many ids, `1..=MAX_PRODUCER_ID_BLOCK`.
        count: i64,
    },
    /// Sets the cluster id once; setting the same id again is a no-op, a different one fails.
    SetClusterId(String),
    /// A broker's replicas whose log dir failed (`replica/log_dirs.rs`): they may no longer
    /// lead or be in an ISR until the broker registers again (restarts). The active
    /// controller then moves their leadership, as for a fenced broker. Refused for an
    /// outdated registration `epoch`.
    MarkReplicasOffline {
        /// The broker.
        broker: BrokerId,
        /// Its registration epoch.
        epoch: i64,
        /// The partitions whose replica on `broker` is offline.
        partitions: Vec<TopicPartition>,
        /// Every log dir of `broker` is offline: it can host no new replica.
        #[serde(default)]
        no_storage: bool,
    },
    /// Sets and removes SCRAM credentials (AlterUserScramCredentials, validated by the
    /// proposer). Removing a credential that is not there changes nothing.
    AlterScramCredentials {
        /// Credentials to set, replacing any for the same user and mechanism.
        upserts: Vec<ScramUpsert>,
        /// Credentials to remove.
        deletions: Vec<ScramDeletion>,
    },
    /// Adds ACL bindings (CreateAcls, validated by the proposer); ones already there are
    /// kept once. Refused beyond [`MAX_ACL_BINDINGS`].
    CreateAcls {
        /// The bindings.
        bindings: Vec<AclBinding>,
    },
    /// Removes exactly these ACL bindings (DeleteAcls' filters resolved by the proposer).
    DeleteAcls {
        /// The bindings.
        bindings: Vec<AclBinding>,
    },
    /// Sets and removes client quotas (AlterClientQuotas, validated by the proposer), in
    /// order, all or none. Refused beyond [`crate::metadata::quota::MAX_QUOTA_ENTITIES`].
    AlterClientQuotas {
        /// The changes.
        changes: Vec<QuotaChange>,
    },
}

/// What a successfully applied command yields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    /// Applied; nothing to report.
    Done,
    /// A [`MetadataCommand::ChangePartitions`] applied; this many of its changes were refused
    /// (stale: the partition moved on meanwhile).
    Changes {
        /// Indices of the changes skipped because their compare-and-set failed.
        refused: Vec<usize>,
    },
    /// The first id of the allocated producer id block.
    ProducerIds {
        /// First id of the block (the block is `first..first + count`).
        first: i64,
    },
}

/// Why a command was refused by the state machine. Refusals are deterministic: every replica
/// refuses the same command the same way, and a refused command changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CommandError {
    /// The broker is not registered.
    #[error("broker {0} is not registered")]
    UnknownBroker(BrokerId),
    /// A registration older than the one the image holds.
    #[error("broker {id} registration epoch {given} is older than the registered epoch {current}")]
    StaleBrokerEpoch {
        /// The broker.
        id: BrokerId,
        /// The epoch in the image.
        current: i64,
        /// The epoch in the command.
        given: i64,
    },
    /// A topic with this name exists.
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    /// Another topic already has this topic id.
    #[error("topic id {0} is already in use")]
    TopicIdInUse(Uuid),
    /// No topic with this name.
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    /// The topic has no such partition.
    #[error("topic '{topic}' has no partition {partition}")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition index.
        partition: i32,
    },
    /// A partition change computed from an outdated state.
    #[error("stale change to {topic}-{partition}: {reason}")]
    StalePartitionState {
        /// The topic.
        topic: String,
        /// The partition index.
        partition: i32,
        /// Which epoch check failed.
        reason: String,
    },
    /// The cluster id is already set to something else.
    #[error("cluster id is {current}, refusing to change it to {given}")]
    ClusterIdMismatch {
        /// The id in the image.
        current: String,
        /// The id in the command.
        given: String,
    },
    /// The command is malformed (bad name, empty replica list, overflow, ...).
    #[error("invalid metadata command: {0}")]
    Invalid(String),
}

/// The state machine's answer to one command: what openraft hands back to the proposer.
pub type CommandResponse = Result<CommandResult, CommandError>;

/// A command plus the unique id the proposer gave it, so that a retried proposal (after a
/// leader change or a lost reply) is applied once: the state machine remembers the responses
/// to recent proposal ids and answers a duplicate with the remembered response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Unique per proposal (not per attempt).
    pub id: Uuid,
    /// The change.
    pub command: MetadataCommand,
}

/// Applies `cmd` to `image`. On error the image is unchanged: every check runs before the
/// first mutation.
pub fn apply_command(image: &mut MetadataImage, cmd: &MetadataCommand) -> CommandResponse {
    match cmd {
        MetadataCommand::RegisterBroker { info, epoch } => {
            if info.id.0 < 0 {
                return Err(CommandError::Invalid(format!(
                    "broker id {} is negative",
                    info.id
                )));
            }
            if let Some(&current) = image.broker_epochs.get(&info.id) {
                if current > *epoch {
                    return Err(CommandError::StaleBrokerEpoch {
                        id: info.id,
                        current,
                        given: *epoch,
                    });
                }
            }
            image.brokers.insert(info.id, info.clone());
            image.broker_epochs.insert(info.id, *epoch);
            image.fenced_brokers.insert(info.id);
            // A restarted broker has recovered its log dirs (or they are gone and it will
            // catch up as a follower): its replicas are eligible again.
            image.offline_replicas.remove(&info.id);
            image.brokers_without_storage.remove(&info.id);
            Ok(CommandResult::Done)
        }
        MetadataCommand::MarkReplicasOffline {
            broker,
            epoch,
            partitions,
            no_storage,
        } => {
            match image.broker_epochs.get(broker) {
                None => return Err(CommandError::UnknownBroker(*broker)),
                Some(&current) if current != *epoch => {
                    return Err(CommandError::StaleBrokerEpoch {
                        id: *broker,
                        current,
                        given: *epoch,
                    })
                }
                Some(_) => {}
            }
            image
                .offline_replicas
                .entry(*broker)
                .or_default()
                .extend(partitions.iter().cloned());
            if *no_storage {
                image.brokers_without_storage.insert(*broker);
            }
            Ok(CommandResult::Done)
        }
        MetadataCommand::FenceBroker { id } => {
            if !image.brokers.contains_key(id) {
                return Err(CommandError::UnknownBroker(*id));
            }
            image.fenced_brokers.insert(*id);
            Ok(CommandResult::Done)
        }
        MetadataCommand::UnfenceBroker { id } => {
            if !image.brokers.contains_key(id) {
                return Err(CommandError::UnknownBroker(*id));
            }
            image.fenced_brokers.remove(id);
            Ok(CommandResult::Done)
        }
        MetadataCommand::CreateTopic { topic } => {
            crate::controller::validate_topic_name(&topic.name)
                .map_err(|e| CommandError::Invalid(e.to_string()))?;
            if image.topics.contains_key(&topic.name) {
                return Err(CommandError::TopicExists(topic.name.clone()));
            }
            if image.topic_by_id(topic.id).is_some() {
                return Err(CommandError::TopicIdInUse(topic.id));
            }
            if topic.partitions.is_empty() {
                return Err(CommandError::Invalid(format!(
                    "topic '{}' has no partitions",
                    topic.name
                )));
            }
            for (i, p) in topic.partitions.iter().enumerate() {
                check_partition(&topic.name, i, p)?;
            }
            image
                .topics
                .insert(topic.name.clone(), Arc::new(topic.clone()));
            Ok(CommandResult::Done)
        }
        MetadataCommand::DeleteTopic { name } => match image.topics.remove(name) {
            Some(_) => {
                image.reassignments.remove(name);
                Ok(CommandResult::Done)
            }
            None => Err(CommandError::UnknownTopic(name.clone())),
        },
        MetadataCommand::AddPartitions { name, partitions } => {
            let topic = Arc::make_mut(
                image
                    .topics
                    .get_mut(name)
                    .ok_or_else(|| CommandError::UnknownTopic(name.clone()))?,
            );
            if partitions.is_empty() {
                return Err(CommandError::Invalid(format!(
                    "no partitions to add to '{name}'"
                )));
            }
            let first = topic.partitions.len();
            if first + partitions.len() > i32::MAX as usize {
                return Err(CommandError::Invalid(format!(
                    "too many partitions for '{name}'"
                )));
            }
            for (i, p) in partitions.iter().enumerate() {
                check_partition(name, first + i, p)?;
            }
            topic.partitions.extend(partitions.iter().cloned());
            Ok(CommandResult::Done)
        }
        MetadataCommand::SetTopicConfigs { name, configs } => {
            let topic = Arc::make_mut(
                image
                    .topics
                    .get_mut(name)
                    .ok_or_else(|| CommandError::UnknownTopic(name.clone()))?,
            );
            topic.configs = configs.clone();
            Ok(CommandResult::Done)
        }
        MetadataCommand::ChangePartition {
            topic,
            partition,
            state,
        } => {
            let unknown = || CommandError::UnknownPartition {
                topic: topic.clone(),
                partition: *partition,
            };
            let t = Arc::make_mut(
                image
                    .topics
                    .get_mut(topic)
                    .ok_or_else(|| CommandError::UnknownTopic(topic.clone()))?,
            );
            let idx = usize::try_from(*partition).map_err(|_| unknown())?;
            let current = t.partitions.get_mut(idx).ok_or_else(unknown)?;
            check_partition(topic, idx, state)?;
            let stale = |reason: String| CommandError::StalePartitionState {
                topic: topic.clone(),
                partition: *partition,
                reason,
            };
            if state.partition_epoch <= current.partition_epoch {
                return Err(stale(format!(
                    "partition epoch {} is not above the current {}",
                    state.partition_epoch, current.partition_epoch
                )));
            }
            if state.leader_epoch < current.leader_epoch {
                return Err(stale(format!(
                    "leader epoch {} is below the current {}",
                    state.leader_epoch, current.leader_epoch
                )));
            }
            if state.leader != current.leader && state.leader_epoch == current.leader_epoch {
                return Err(stale(format!(
                    "leader changes from {} to {} without a new leader epoch",
                    current.leader, state.leader
                )));
            }
            *current = state.clone();
            Ok(CommandResult::Done)
        }
        MetadataCommand::ChangePartitions { changes } => {
            if changes.len() > MAX_CHANGES_PER_ENTRY {
                return Err(CommandError::Invalid(format!(
                    "{} partition changes in one entry, above {MAX_CHANGES_PER_ENTRY}",
                    changes.len()
                )));
            }
            let mut refused = Vec::new();
            for (i, c) in changes.iter().enumerate() {
                let one = MetadataCommand::ChangePartition {
                    topic: c.topic.clone(),
                    partition: c.partition,
                    state: c.state.clone(),
                };
                // A refusal leaves the image as it was (every check precedes the write).
                if apply_command(image, &one).is_err() {
                    refused.push(i);
                }
            }
            Ok(CommandResult::Changes { refused })
        }
        MetadataCommand::ReassignPartition {
            topic,
            partition,
            state,
            reassignment,
        } => {
            if let Some(r) = reassignment {
                if let Some(b) = r
                    .adding
                    .iter()
                    .chain(&r.removing)
                    .find(|b| !state.replicas.contains(b))
                {
                    return Err(CommandError::Invalid(format!(
                        "{topic}-{partition}: reassigned replica {b} is not a replica"
                    )));
                }
            }
            let change = MetadataCommand::ChangePartition {
                topic: topic.clone(),
                partition: *partition,
                state: state.clone(),
            };
            apply_command(image, &change)?;
            match reassignment {
                Some(r) if !r.adding.is_empty() || !r.removing.is_empty() => {
                    image
                        .reassignments
                        .entry(topic.clone())
                        .or_default()
                        .insert(*partition, r.clone());
                }
                _ => {
                    if let Some(t) = image.reassignments.get_mut(topic) {
                        t.remove(partition);
                        if t.is_empty() {
                            image.reassignments.remove(topic);
                        }
                    }
                }
            }
            Ok(CommandResult::Done)
        }
        MetadataCommand::SetBrokerConfigs { resource, configs } => {
            if !resource.is_empty() && resource.parse::<i32>().is_err() {
                return Err(CommandError::Invalid(format!(
                    "broker config resource '{resource}' is neither empty nor a broker id"
                )));
            }
            if configs.is_empty() {
                image.broker_configs.remove(resource);
            } else {
                image
                    .broker_configs
                    .insert(resource.clone(), configs.clone());
            }
            Ok(CommandResult::Done)
        }
        MetadataCommand::AllocateProducerIds { count } => {
            if !(1..=MAX_PRODUCER_ID_BLOCK).contains(count) {
                return Err(CommandError::Invalid(format!(
                    "producer id block size {count} is outside 1..={MAX_PRODUCER_ID_BLOCK}"
                )));
            }
            let first = image.next_producer_id.max(0);
            let next = first
                .checked_add(*count)
                .ok_or_else(|| CommandError::Invalid("producer ids exhausted".into()))?;
            image.next_producer_id = next;
            Ok(CommandResult::ProducerIds { first })
        }
        MetadataCommand::AlterScramCredentials { upserts, deletions } => {
            let known = |m: &str| m == "SCRAM-SHA-256" || m == "SCRAM-SHA-512";
            if let Some(bad) = upserts
                .iter()
                .map(|u| (&u.user, &u.mechanism))
                .chain(deletions.iter().map(|d| (&d.user, &d.mechanism)))
                .find(|(user, m)| user.is_empty() || !known(m))
            {
                return Err(CommandError::Invalid(format!(
                    "SCRAM credential for user {:?} with mechanism {:?}",
                    bad.0, bad.1
                )));
            }
            for d in deletions {
                if let Some(by_mech) = image.scram_credentials.get_mut(&d.user) {
                    by_mech.remove(&d.mechanism);
                    if by_mech.is_empty() {
                        image.scram_credentials.remove(&d.user);
                    }
                }
            }
            for u in upserts {
                image
                    .scram_credentials
                    .entry(u.user.clone())
                    .or_default()
                    .insert(u.mechanism.clone(), u.credential.clone());
            }
            Ok(CommandResult::Done)
        }
        MetadataCommand::CreateAcls { bindings } => {
            if let Some((b, e)) = bindings
                .iter()
                .find_map(|b| b.validate().err().map(|e| (b, e)))
            {
                return Err(CommandError::Invalid(format!("ACL {b:?}: {e}")));
            }
            let mut acls = (*image.acls).clone();
            acls.extend(bindings.iter().cloned());
            if acls.len() > MAX_ACL_BINDINGS {
                return Err(CommandError::Invalid(format!(
                    "the cluster would hold {} ACLs, more than {MAX_ACL_BINDINGS}",
                    acls.len()
                )));
            }
            image.acls = std::sync::Arc::new(acls);
            Ok(CommandResult::Done)
        }
        MetadataCommand::DeleteAcls { bindings } => {
            let mut acls = (*image.acls).clone();
            for b in bindings {
                acls.remove(b);
            }
            image.acls = std::sync::Arc::new(acls);
            Ok(CommandResult::Done)
        }
        MetadataCommand::AlterClientQuotas { changes } => {
            let mut quotas = (*image.client_quotas).clone();
            quotas.apply(changes).map_err(CommandError::Invalid)?;
            image.client_quotas = std::sync::Arc::new(quotas);
            Ok(CommandResult::Done)
        }
        MetadataCommand::SetClusterId(id) => {
            if id.is_empty() {
                return Err(CommandError::Invalid("empty cluster id".into()));
            }
            if !image.cluster_id.is_empty() && image.cluster_id != *id {
                return Err(CommandError::ClusterIdMismatch {
                    current: image.cluster_id.clone(),
                    given: id.clone(),
                });
            }
            image.cluster_id = id.clone();
            Ok(CommandResult::Done)
        }
    }
}

/// Structural checks on one partition: a non-empty replica set without duplicates, an ISR
/// inside it, a leader inside the ISR (or -1 for offline).
fn check_partition(topic: &str, index: usize, p: &PartitionMeta) -> Result<(), CommandError> {
    let bad = |why: String| Err(CommandError::Invalid(format!("{topic}-{index}: {why}")));
    if p.replicas.is_empty() {
        return bad("empty replica set".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for r in &p.replicas {
        if !seen.insert(*r) {
            return bad(format!("replica {r} listed twice"));
        }
    }
    if let Some(r) = p.isr.iter().find(|r| !p.replicas.contains(r)) {
        return bad(format!("ISR member {r} is not a replica"));
    }
    if p.leader.0 != -1 && !p.isr.contains(&p.leader) {
        return bad(format!("leader {} is not in the ISR", p.leader));
    }
    Ok(())
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
