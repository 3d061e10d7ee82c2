//! Leader elections asked for by an operator (KIP-460's ElectLeaders) and the automatic
//! preferred-leader rebalance (Kafka's `auto.leader.rebalance.enable`).
//!
//! Both produce a new partition state from the image and propose it as a `ChangePartition`
//! compare-and-set (partition epoch + 1, leader epoch + 1), like the elections of
//! [`super::liveness::plan`], so an election computed from an image that moved on is refused
//! by the state machine instead of undoing the newer state.
//!
//! - Preferred: the first replica leads if it is live and in the ISR
//!   (PREFERRED_LEADER_NOT_AVAILABLE otherwise; ELECTION_NOT_NEEDED if it already leads).
//! - Unclean: only for a partition without a (live) leader: the first live ISR member in
//!   replica order, else any live replica with the ISR reset to it (Kafka's unclean election,
//!   which may lose acknowledged records); ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is
//!   live, ELECTION_NOT_NEEDED when the partition has a leader.
//! - Rebalance: every `leader.imbalance.check.interval.seconds` the active controller counts,
//!   per broker, the partitions it is the preferred leader of but does not lead; when that share
//!   is above `leader.imbalance.per.broker.percentage`, those partitions get a preferred
//!   election (ZooKeeper-mode Kafka's rule; KRaft ignores the percentage and always balances);
//!   partitions being reassigned are left to the reassignment.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::Controller;
use crate::config::RebalanceConfig;
use crate::error::KafkaError;
use crate::metadata::{MetadataImage, PartitionMeta};
use crate::types::{BrokerId, LeaderEpoch};

/// ElectLeaders' `election_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// 0: move leadership to the preferred (first) replica.
    Preferred,
    /// 1: elect any live replica of a partition that has no leader.
    Unclean,
}

impl ElectionType {
    /// From the wire code; `None` for codes Kafka does not define.
    pub fn from_code(code: i8) -> Option<ElectionType> {
        match code {
            0 => Some(ElectionType::Preferred),
            1 => Some(ElectionType::Unclean),
            _ => None,
        }
    }
}

/// One partition's outcome of an election request.
#[derive(Debug)]
pub struct ElectionOutcome {
    /// The topic.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
    /// Ok once the new leader is committed, or why not.
    pub result: Result<(), KafkaError>,
}

/// The new state `kind` calls for in `topic`-`partition` of `image` (see the module docs).
pub fn elect(
    image: &MetadataImage,
    topic: &str,
    partition: i32,
    kind: ElectionType,
) -> Result<PartitionMeta, KafkaError> {
    let p = image.partition(topic, partition).ok_or_else(|| {
        KafkaError::UnknownTopicOrPartition(format!(
            "The partition {topic}-{partition} does not exist."
        ))
    })?;
    // Registered, unfenced, and this replica's log dir has not failed.
    let live = |b: &BrokerId| image.replica_eligible(*b, topic, partition);
    let with_leader = |leader: BrokerId, isr: Vec<BrokerId>| PartitionMeta {
        leader,
        isr,
        leader_epoch: LeaderEpoch(p.leader_epoch.0 + 1),
        partition_epoch: p.partition_epoch + 1,
        ..p.clone()
    };
    match kind {
        ElectionType::Preferred => {
            let preferred = p.replicas.first().copied().unwrap_or(BrokerId(-1));
            if p.leader == preferred {
                return Err(KafkaError::ElectionNotNeeded(format!(
                    "Leader election not needed for {topic}-{partition}: the preferred replica {preferred} leads it."
                )));
            }
            if !live(&preferred) || !p.isr.contains(&preferred) {
                return Err(KafkaError::PreferredLeaderNotAvailable(format!(
                    "Failed to elect leader for {topic}-{partition}: the preferred replica {preferred} is not live or not in the ISR {:?}.",
                    ids(&p.isr)
                )));
            }
            Ok(with_leader(preferred, p.isr.clone()))
        }
        ElectionType::Unclean => {
            if p.leader.0 >= 0 && live(&p.leader) {
                return Err(KafkaError::ElectionNotNeeded(format!(
                    "Leader election not needed for {topic}-{partition}: broker {} leads it.",
                    p.leader
                )));
            }
            let isr_live: Vec<BrokerId> = p.isr.iter().filter(|b| live(b)).copied().collect();
            if let Some(leader) = p.replicas.iter().find(|r| isr_live.contains(r)) {
                return Ok(with_leader(*leader, isr_live.clone()));
            }
            match p.replicas.iter().find(|r| live(r)) {
                Some(leader) => Ok(with_leader(*leader, vec![*leader])),
                None => Err(KafkaError::EligibleLeadersNotAvailable(format!(
                    "Failed to elect leader for {topic}-{partition}: none of its replicas {:?} is live.",
                    ids(&p.replicas)
                ))),
            }
        }
    }
}

fn ids(v: &[BrokerId]) -> Vec<i32> {
    v.iter().map(|b| b.0).collect()
}

/// Every partition of the image, in topic then partition order (ElectLeaders with null
/// topic partitions).
pub fn all_partitions(image: &MetadataImage) -> Vec<(String, i32)> {
    image
        .topics
        .values()
        .flat_map(|t| (0..t.partitions.len() as i32).map(|i| (t.name.clone(), i)))
        .collect()
}

/// The partitions the rebalance should move back to their preferred replica: those of each
/// broker whose share of partitions it prefers but does not lead is above `percentage`, and
/// whose preferred replica is live and in the ISR, unless they are being reassigned.
pub fn imbalanced(image: &MetadataImage, percentage: u32) -> Vec<(String, i32)> {
    // Per preferred broker: (partitions it prefers, those led by someone else).
    let mut per_broker: BTreeMap<BrokerId, (usize, Vec<(String, i32)>)> = BTreeMap::new();
    for t in image.topics.values() {
        for (i, p) in t.partitions.iter().enumerate() {
            let Some(preferred) = p.replicas.first() else {
                continue;
            };
            let e = per_broker.entry(*preferred).or_default();
            e.0 += 1;
            if p.leader != *preferred {
                e.1.push((t.name.clone(), i as i32));
            }
        }
    }
    let mut out = Vec::new();
    for (total, off) in per_broker.into_values() {
        // Kafka: imbalance ratio = not-led / preferred, compared with percentage / 100.
        if total == 0 || (off.len() as u64) * 100 <= u64::from(percentage) * total as u64 {
            continue;
        }
        // A partition being reassigned gets its leader from the reassignment, as in Kafka.
        out.extend(off.into_iter().filter(|(t, p)| {
            image.reassignment(t, *p).is_none()
                && elect(image, t, *p, ElectionType::Preferred).is_ok()
        }));
    }
    out
}

/// How many times an election is recomputed when the partition changed under it.
const ELECTION_ATTEMPTS: usize = 3;

impl Controller {
    /// Elects leaders for `targets` (every partition when `None`, leaving out those whose
    /// election is not needed, as Kafka does). Each election is one compare-and-set on the
    /// partition; one refused because the partition moved on is recomputed from the new
    /// image. Results come back in request order.
    pub async fn elect_leaders(
        self: &Arc<Self>,
        kind: ElectionType,
        targets: Option<Vec<(String, i32)>>,
        timeout: Duration,
    ) -> Vec<ElectionOutcome> {
        let all = targets.is_none();
        let targets = targets.unwrap_or_else(|| all_partitions(&self.image()));
        let mut tasks = tokio::task::JoinSet::new();
        for (idx, (topic, partition)) in targets.into_iter().enumerate() {
            let c = self.clone();
            tasks.spawn(async move {
                let result =
                    match tokio::time::timeout(timeout, c.elect_one(&topic, partition, kind)).await
                    {
                        Ok(r) => r,
                        Err(_) => Err(KafkaError::RequestTimedOut(format!(
                            "The election for {topic}-{partition} did not complete within {} ms.",
                            timeout.as_millis()
                        ))),
                    };
                (
                    idx,
                    ElectionOutcome {
                        topic,
                        partition,
                        result,
                    },
                )
            });
        }
        let mut out = Vec::new();
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(o) => out.push(o),
                Err(e) => tracing::error!(error = %e, "election task failed"),
            }
        }
        out.sort_by_key(|(i, _)| *i);
        out.into_iter()
            .map(|(_, o)| o)
            .filter(|o| !(all && matches!(o.result, Err(KafkaError::ElectionNotNeeded(_)))))
            .collect()
    }

    async fn elect_one(
        &self,
        topic: &str,
        partition: i32,
        kind: ElectionType,
    ) -> Result<(), KafkaError> {
        let mut last = None;
        for _ in 0..ELECTION_ATTEMPTS {
            let state = elect(&self.image(), topic, partition, kind)?;
            let leader = state.leader;
            match self.change_partition(topic, partition, state).await {
                Ok(()) => {
                    tracing::info!(
                        topic,
                        partition,
                        leader = leader.0,
                        ?kind,
                        "leader elected on request"
                    );
                    return Ok(());
                }
                // The state machine refused a stale compare-and-set: look again.
                Err(e @ KafkaError::InvalidRequest(_)) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| KafkaError::Unknown("election failed".into())))
    }
}

/// The rebalance loop: every interval, the active controller moves leadership back to the
/// preferred replicas of brokers above the imbalance threshold.
pub async fn run_rebalance(controller: Arc<Controller>, cfg: RebalanceConfig) {
    if !cfg.enable {
        return;
    }
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if !controller.is_active() {
            continue;
        }
        let targets = imbalanced(&controller.image(), cfg.percentage);
        if targets.is_empty() {
            continue;
        }
        tracing::info!(
            partitions = targets.len(),
            "leader imbalance: electing preferred leaders"
        );
        for o in controller
            .elect_leaders(ElectionType::Preferred, Some(targets), cfg.interval)
            .await
        {
            if let Err(e) = o.result {
                tracing::debug!(topic = %o.topic, partition = o.partition, error = %e, "preferred election skipped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::fixtures::{self, part};

    fn image(fenced: &[i32], partitions: Vec<PartitionMeta>) -> MetadataImage {
        fixtures::image(3, fenced, partitions)
    }

    #[test]
    fn preferred_election() {
        let img = image(&[], vec![part(&[1, 2, 3], &[1, 2, 3], 2)]);
        let s = elect(&img, "t", 0, ElectionType::Preferred).unwrap();
        assert_eq!(s.leader, BrokerId(1));
        assert_eq!((s.leader_epoch, s.partition_epoch), (LeaderEpoch(5), 8));
        assert_eq!(ids(&s.isr), vec![1, 2, 3]);
        let led = image(&[], vec![part(&[1, 2, 3], &[1, 2, 3], 1)]);
        assert!(matches!(
            elect(&led, "t", 0, ElectionType::Preferred),
            Err(KafkaError::ElectionNotNeeded(_))
        ));
        let out_of_isr = image(&[], vec![part(&[1, 2, 3], &[2, 3], 2)]);
        let fenced = image(&[1], vec![part(&[1, 2, 3], &[1, 2, 3], 2)]);
        for img in [out_of_isr, fenced] {
            assert!(matches!(
                elect(&img, "t", 0, ElectionType::Preferred),
                Err(KafkaError::PreferredLeaderNotAvailable(_))
            ));
        }
        assert!(matches!(
            elect(&img, "t", 1, ElectionType::Preferred),
            Err(KafkaError::UnknownTopicOrPartition(_))
        ));
    }

    #[test]
    fn unclean_election() {
        let led = image(&[], vec![part(&[1, 2, 3], &[1], 1)]);
        assert!(matches!(
            elect(&led, "t", 0, ElectionType::Unclean),
            Err(KafkaError::ElectionNotNeeded(_))
        ));
        // Offline, ISR {1} fenced, 3 live outside the ISR: 3 leads alone.
        let offline = image(&[1, 2], vec![part(&[1, 2, 3], &[1], -1)]);
        let s = elect(&offline, "t", 0, ElectionType::Unclean).unwrap();
        assert_eq!((s.leader, ids(&s.isr)), (BrokerId(3), vec![3]));
        // A live ISR member is preferred over an unclean choice.
        let isr_back = image(&[1], vec![part(&[1, 2, 3], &[1, 2], -1)]);
        let s = elect(&isr_back, "t", 0, ElectionType::Unclean).unwrap();
        assert_eq!((s.leader, ids(&s.isr)), (BrokerId(2), vec![2]));
        let dead = image(&[1, 2, 3], vec![part(&[1, 2, 3], &[1], -1)]);
        assert!(matches!(
            elect(&dead, "t", 0, ElectionType::Unclean),
            Err(KafkaError::EligibleLeadersNotAvailable(_))
        ));
    }

    #[test]
    fn imbalance_threshold() {
        // Broker 1 prefers 4 partitions and leads 3 (25% off): above 10%.
        let mut parts: Vec<PartitionMeta> = (0..3).map(|_| part(&[1, 2], &[1, 2], 1)).collect();
        parts.push(part(&[1, 2], &[1, 2], 2));
        let img = image(&[], parts.clone());
        assert_eq!(imbalanced(&img, 10), vec![("t".to_string(), 3)]);
        assert!(
            imbalanced(&img, 25).is_empty(),
            "at the threshold: balanced enough"
        );
        let mut moving = img.clone();
        moving
            .reassignments
            .entry("t".into())
            .or_default()
            .insert(3, crate::metadata::image::Reassignment::default());
        assert!(
            imbalanced(&moving, 10).is_empty(),
            "left to the reassignment"
        );
        // The preferred replica is out of the ISR: nothing to do.
        parts[3] = part(&[1, 2], &[2], 2);
        assert!(imbalanced(&image(&[], parts), 10).is_empty());
    }

    #[test]
    fn elections_pass_the_state_machine() {
        use crate::controller::raft::command::{apply_command, MetadataCommand};
        let mut img = image(&[], vec![part(&[1, 2, 3], &[1, 2, 3], 3)]);
        let state = elect(&img, "t", 0, ElectionType::Preferred).unwrap();
        let cmd = MetadataCommand::ChangePartition {
            topic: "t".into(),
            partition: 0,
            state,
        };
        apply_command(&mut img, &cmd).expect("accepted");
        assert_eq!(img.topics["t"].partitions[0].leader, BrokerId(1));
        assert!(
            apply_command(&mut img, &cmd).is_err(),
            "a replayed election is stale"
        );
    }
}
