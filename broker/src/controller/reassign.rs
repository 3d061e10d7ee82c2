//! Partition reassignment (KIP-455), Kafka's KRaft semantics: a reassignment first grows the
//! replica set to the target followed by the replicas being removed (`adding` = target minus
//! current, `removing` = current minus target; ISR and leader unchanged), so the new replicas
//! open their logs and catch up by fetching from the leader like any follower. When the ISR
//! holds every target replica, the controller completes it in one partition change: replicas
//! = target, the removed replicas leave the ISR (and, seeing they are no longer replicas, delete
//! their logs), and a leader outside the target gives way to the first target replica in the
//! ISR (leader epoch + 1). A reassignment that only removes or reorders replicas already in
//! the ISR completes at once. Cancelling reverts to the original replicas (`replicas` minus
//! `adding`), keeping the ISR members among them.
//!
//! Completion is checked where ISR changes are committed ([`Controller::commit_isr_change`],
//! so the AlterPartition that adds the last target replica completes it, as in Kafka) and,
//! as a backstop, by the active controller's loop ([`run`]) for changes that arrive another
//! way (a fenced replica leaving the ISR, a controller failover between the two steps).

use std::sync::Arc;
use std::time::Duration;

use super::raft::command::MetadataCommand;
use super::Controller;
use crate::error::KafkaError;
use crate::metadata::{MetadataImage, PartitionMeta, Reassignment};
use crate::types::{BrokerId, LeaderEpoch};

/// How often the active controller looks for reassignments it can complete.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// One partition change a reassignment calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The topic.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
    /// The partition's new state (partition epoch bumped).
    pub state: PartitionMeta,
    /// The reassignment in progress after the change (`None` when done or cancelled).
    pub reassignment: Option<Reassignment>,
}

/// Kafka's checks on a manual assignment: not empty, every broker registered, none twice.
pub fn validate_target(image: &MetadataImage, target: &[BrokerId]) -> Result<(), KafkaError> {
    let bad = |m: String| Err(KafkaError::InvalidReplicaAssignment(m));
    if target.is_empty() {
        return bad("The manual partition assignment includes an empty replica list.".into());
    }
    let mut sorted = target.to_vec();
    sorted.sort();
    for (i, b) in sorted.iter().enumerate() {
        if !image.brokers.contains_key(b) {
            return bad(format!(
                "The manual partition assignment includes broker {b}, but no such broker is registered."
            ));
        }
        if i > 0 && sorted[i - 1] == *b {
            return bad(format!(
                "The manual partition assignment includes the broker {b} more than once."
            ));
        }
    }
    Ok(())
}

fn find<'a>(
    image: &'a MetadataImage,
    topic: &str,
    partition: i32,
) -> Result<&'a PartitionMeta, KafkaError> {
    if !image.topics.contains_key(topic) {
        return Err(KafkaError::UnknownTopicOrPartition(format!(
            "Unable to find a topic named {topic}."
        )));
    }
    image.partition(topic, partition).ok_or_else(|| {
        KafkaError::UnknownTopicOrPartition(format!(
            "Unable to find partition {topic}:{partition}."
        ))
    })
}

/// The change that starts a reassignment of `topic`-`partition` to `target` (and completes
/// it at once when nothing needs copying), or `None` when the partition already is there.
/// `allow_rf_change` is KIP-860's flag: false refuses a target of another size.
pub fn plan_start(
    image: &MetadataImage,
    topic: &str,
    partition: i32,
    target: &[BrokerId],
    allow_rf_change: bool,
) -> Result<Option<Step>, KafkaError> {
    let cur = find(image, topic, partition)?;
    validate_target(image, target)?;
    if !allow_rf_change {
        let original = match image.reassignment(topic, partition) {
            Some(r) => r.original(&cur.replicas),
            None => cur.replicas.clone(),
        };
        if original.len() != target.len() {
            return Err(KafkaError::InvalidReplicationFactor(format!(
                "The replication factor is changed from {} to {} but the allowReplicationFactorChange flag was set to false.",
                original.len(),
                target.len()
            )));
        }
    }
    // Kafka computes a new reassignment against the current (possibly merged) replica set.
    let mut removing: Vec<BrokerId> = cur
        .replicas
        .iter()
        .filter(|r| !target.contains(r))
        .copied()
        .collect();
    removing.sort();
    let mut adding: Vec<BrokerId> = target
        .iter()
        .filter(|r| !cur.replicas.contains(r))
        .copied()
        .collect();
    adding.sort();
    super::placement::check_capacity(image, &[adding.clone()])?;
    let mut replicas = target.to_vec();
    replicas.extend(&removing);
    let original = match image.reassignment(topic, partition) {
        Some(r) => r.original(&cur.replicas),
        None => cur.replicas.clone(),
    };
    let reassignment = Reassignment {
        adding,
        removing,
        original,
    };
    let in_progress = image.reassignment(topic, partition).is_some();
    let moves = !reassignment.adding.is_empty() || !reassignment.removing.is_empty();
    if replicas == cur.replicas && !moves && !in_progress {
        return Ok(None);
    }
    let started = PartitionMeta {
        replicas,
        partition_epoch: cur.partition_epoch + 1,
        ..cur.clone()
    };
    let live = |b: &BrokerId| !image.fenced_brokers.contains(b);
    let step = match complete(&started, &reassignment, live) {
        Some(done) => Step {
            topic: topic.to_string(),
            partition,
            state: PartitionMeta {
                partition_epoch: cur.partition_epoch + 1,
                ..done
            },
            reassignment: None,
        },
        None => Step {
            topic: topic.to_string(),
            partition,
            state: started,
            reassignment: Some(reassignment),
        },
    };
    Ok(Some(step))
}

/// The change that cancels the reassignment of `topic`-`partition`: back to the original
/// replicas, the ISR kept among them. NO_REASSIGNMENT_IN_PROGRESS without one; refused when
/// no original replica is in the ISR unless `unclean` (the topic allows unclean elections).
pub fn plan_cancel(
    image: &MetadataImage,
    topic: &str,
    partition: i32,
    unclean: bool,
) -> Result<Step, KafkaError> {
    let cur = find(image, topic, partition)?;
    let Some(r) = image.reassignment(topic, partition) else {
        return Err(KafkaError::NoReassignmentInProgress(format!(
            "No partition reassignment is in progress for {topic}-{partition}."
        )));
    };
    let replicas = r.original(&cur.replicas);
    let mut isr: Vec<BrokerId> = cur
        .isr
        .iter()
        .filter(|b| replicas.contains(b))
        .copied()
        .collect();
    let live = |b: &BrokerId| !image.fenced_brokers.contains(b);
    if isr.is_empty() {
        if !unclean {
            return Err(KafkaError::InvalidReplicaAssignment(format!(
                "Unable to revert partition assignment for {topic}:{partition} because it would require an unclean leader election."
            )));
        }
        isr = replicas
            .iter()
            .find(|b| live(b))
            .copied()
            .into_iter()
            .collect();
    }
    let (leader, leader_epoch) = elect(cur, &replicas, &isr, live);
    Ok(Step {
        topic: topic.to_string(),
        partition,
        state: PartitionMeta {
            replicas,
            isr,
            leader,
            leader_epoch,
            partition_epoch: cur.partition_epoch + 1,
        },
        reassignment: None,
    })
}

/// The completed state of a partition whose reassignment `r` is in progress, if its ISR
/// (without the replicas being removed) now holds every target replica. The partition epoch
/// is left for the caller to set.
pub fn complete(
    cur: &PartitionMeta,
    r: &Reassignment,
    live: impl Fn(&BrokerId) -> bool,
) -> Option<PartitionMeta> {
    let target = r.target(&cur.replicas);
    let isr: Vec<BrokerId> = cur
        .isr
        .iter()
        .filter(|b| !r.removing.contains(b))
        .copied()
        .collect();
    if target.is_empty() || isr.is_empty() || !target.iter().all(|b| isr.contains(b)) {
        return None;
    }
    let (leader, leader_epoch) = elect(cur, &target, &isr, &live);
    if leader.0 < 0 && cur.leader.0 >= 0 {
        // Nobody in the target can lead right now: wait rather than take the partition offline.
        return None;
    }
    Some(PartitionMeta {
        replicas: target,
        isr,
        leader,
        leader_epoch,
        partition_epoch: cur.partition_epoch,
    })
}

/// The leader after the replica set becomes `replicas` with `isr`: the current one if it
/// stays in the ISR, else the first live replica in the ISR (leader epoch + 1), else none.
fn elect(
    cur: &PartitionMeta,
    replicas: &[BrokerId],
    isr: &[BrokerId],
    live: impl Fn(&BrokerId) -> bool,
) -> (BrokerId, LeaderEpoch) {
    if cur.leader.0 >= 0 && isr.contains(&cur.leader) && replicas.contains(&cur.leader) {
        return (cur.leader, cur.leader_epoch);
    }
    let next = replicas
        .iter()
        .find(|b| isr.contains(b) && live(b))
        .copied()
        .unwrap_or(BrokerId(-1));
    if next == cur.leader {
        (next, cur.leader_epoch)
    } else {
        (next, LeaderEpoch(cur.leader_epoch.0 + 1))
    }
}

/// Every reassignment in `image` that can complete now.
pub fn plan_completions(image: &MetadataImage) -> Vec<Step> {
    let live = |b: &BrokerId| !image.fenced_brokers.contains(b);
    let mut out = Vec::new();
    for (topic, parts) in &image.reassignments {
        for (partition, r) in parts {
            let Some(cur) = image.partition(topic, *partition) else {
                continue;
            };
            if let Some(done) = complete(cur, r, live) {
                out.push(Step {
                    topic: topic.clone(),
                    partition: *partition,
                    state: PartitionMeta {
                        partition_epoch: cur.partition_epoch + 1,
                        ..done
                    },
                    reassignment: None,
                });
            }
        }
    }
    out
}

impl Controller {
    /// Proposes one reassignment step.
    pub async fn apply_reassignment_step(&self, step: Step) -> Result<(), KafkaError> {
        tracing::info!(topic = %step.topic, partition = step.partition, replicas = ?step.state.replicas, isr = ?step.state.isr, leader = step.state.leader.0, reassignment = ?step.reassignment, "partition reassignment step");
        self.propose(MetadataCommand::ReassignPartition {
            topic: step.topic,
            partition: step.partition,
            state: step.state,
            reassignment: step.reassignment,
        })
        .await
        .map(|_| ())
    }

    /// Starts (`Some(target)`) or cancels (`None`) the reassignment of one partition, with
    /// Kafka's checks and error codes. `unclean` is the topic's unclean-election setting
    /// (a cancel that would need one is refused otherwise).
    pub async fn alter_partition_reassignment(
        &self,
        topic: &str,
        partition: i32,
        target: Option<Vec<BrokerId>>,
        allow_rf_change: bool,
        unclean: bool,
    ) -> Result<(), KafkaError> {
        let image = self.image();
        let step = match target {
            Some(t) => plan_start(&image, topic, partition, &t, allow_rf_change)?,
            None => Some(plan_cancel(&image, topic, partition, unclean)?),
        };
        match step {
            Some(s) => self.apply_reassignment_step(s).await,
            None => Ok(()),
        }
    }

    /// Replaces the dynamic configs of broker `resource` (or of all brokers, `""`): today the
    /// replication throttle rates that reassignments use. Each key and value is checked;
    /// nothing is half-applied.
    pub async fn set_broker_configs(
        &self,
        resource: &str,
        configs: std::collections::BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), KafkaError> {
        if !resource.is_empty() && resource.parse::<u32>().is_err() {
            return Err(KafkaError::InvalidRequest(format!(
                "Invalid broker id '{resource}': expected a broker id or the empty string (all brokers)"
            )));
        }
        let mut checked = std::collections::BTreeMap::new();
        for (k, v) in configs {
            let v = crate::config::dynamic::validate_broker_config(&k, &v)
                .map_err(KafkaError::InvalidConfig)?;
            checked.insert(k, v);
        }
        if validate_only {
            return Ok(());
        }
        self.propose(MetadataCommand::SetBrokerConfigs {
            resource: resource.to_string(),
            configs: checked,
        })
        .await
        .map(|_| ())
    }

    /// Commits a leader's ISR change; when it lets a reassignment complete, the same change
    /// completes it (Kafka's AlterPartition does the same).
    pub(super) async fn commit_isr_change(
        &self,
        topic: &str,
        partition: i32,
        state: PartitionMeta,
    ) -> Result<PartitionMeta, KafkaError> {
        let image = self.image();
        if let Some(r) = image.reassignment(topic, partition) {
            let live = |b: &BrokerId| !image.fenced_brokers.contains(b);
            if let Some(done) = complete(&state, r, live) {
                let done = PartitionMeta {
                    partition_epoch: state.partition_epoch,
                    ..done
                };
                self.apply_reassignment_step(Step {
                    topic: topic.to_string(),
                    partition,
                    state: done.clone(),
                    reassignment: None,
                })
                .await?;
                return Ok(done);
            }
        }
        self.change_partition(topic, partition, state.clone())
            .await?;
        Ok(state)
    }
}

/// The active controller's backstop: every [`CHECK_EVERY`], completes the reassignments whose
/// ISR already allows it.
pub async fn run(controller: Arc<Controller>) {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !controller.is_active() {
            continue;
        }
        let image = controller.image();
        if image.reassignments.is_empty() {
            continue;
        }
        for step in plan_completions(&image) {
            let (topic, partition) = (step.topic.clone(), step.partition);
            if let Err(e) = controller.apply_reassignment_step(step).await {
                tracing::debug!(topic = %topic, partition, error = %e, "reassignment completion refused");
            }
        }
    }
}

#[cfg(test)]
#[path = "reassign_tests.rs"]
mod tests;
