//! Broker liveness and leader election, run by the active controller (the metadata quorum's
//! leader; every node runs the loop, only the leader acts).
//!
//! Design: instead of brokers sending heartbeats to the controller, the controller checks
//! every registered broker each `broker.heartbeat.interval.ms` with a Kafka ApiVersions
//! request over a kept-open connection (the shared client). A broker that has not answered
//! for `broker.session.timeout.ms` is fenced (`FenceBroker`); a fenced one that answers is
//! unfenced. Every node runs the checks, only the active controller acts on them: a node
//! that takes over as controller already knows how long each broker has been silent, so a
//! dead broker that was also the controller is fenced as soon as the new one is elected.
//!
//! After that, [`plan`] turns the image into partition changes, each proposed as a
//! `ChangePartition` (a compare-and-set on the partition epoch, so a change computed from an
//! old image is refused): a partition whose leader is fenced gets the first live ISR member
//! (in replica order) as leader with the leader epoch bumped; with none, it goes offline
//! (leader -1, ISR kept so its last members can take over when they return) unless the
//! topic's `unclean.leader.election.enable` lets any live replica lead; fenced brokers leave
//! the ISR of partitions whose leader is live; an offline partition gets a leader as soon as
//! an ISR member is live again.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiVersionsRequest;
use tokio::task::JoinSet;

use super::raft::Takeover;
use super::{Controller, MetadataCommand};
use crate::metadata::{MetadataImage, PartitionMeta, TopicConfigs, TopicMeta};
use crate::types::{BrokerId, LeaderEpoch};
use rill_client::{ClientError, Connection};

/// A partition change the controller makes on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Election {
    /// The topic.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
    /// The new state (partition epoch bumped).
    pub state: PartitionMeta,
    /// Why, for the log.
    pub reason: &'static str,
}

/// The partition changes `image` calls for (see the module docs). `unclean` says whether a
/// topic allows a replica outside the ISR to lead.
pub fn plan(image: &MetadataImage, unclean: impl Fn(&TopicMeta) -> bool) -> Vec<Election> {
    let mut out = Vec::new();
    for t in image.topics.values() {
        for (i, p) in t.partitions.iter().enumerate() {
            // Registered, unfenced, and this replica's log dir has not failed.
            let live = |b: &BrokerId| image.replica_eligible(*b, &t.name, i as i32);
            let isr_live: Vec<BrokerId> = p.isr.iter().filter(|b| live(b)).copied().collect();
            let bump = |leader: BrokerId, isr: Vec<BrokerId>, new_epoch: bool| PartitionMeta {
                replicas: p.replicas.clone(),
                isr,
                leader,
                leader_epoch: if new_epoch {
                    LeaderEpoch(p.leader_epoch.0 + 1)
                } else {
                    p.leader_epoch
                },
                partition_epoch: p.partition_epoch + 1,
            };
            let change = |state: PartitionMeta, reason| Election {
                topic: t.name.clone(),
                partition: i as i32,
                state,
                reason,
            };
            if p.leader.0 >= 0 && live(&p.leader) {
                if isr_live.len() != p.isr.len() {
                    out.push(change(
                        bump(p.leader, isr_live, false),
                        "fenced brokers and offline replicas leave the ISR",
                    ));
                }
                continue;
            }
            let from_isr = p.replicas.iter().find(|r| isr_live.contains(r)).copied();
            if let Some(leader) = from_isr {
                out.push(change(
                    bump(leader, isr_live, true),
                    "leader elected from the ISR",
                ));
            } else if let Some(leader) = p
                .replicas
                .iter()
                .find(|r| live(r))
                .copied()
                .filter(|_| unclean(t))
            {
                out.push(change(
                    bump(leader, vec![leader], true),
                    "unclean leader election (no live ISR member)",
                ));
            } else if p.leader.0 >= 0 {
                out.push(change(
                    bump(BrokerId(-1), p.isr.clone(), true),
                    "offline: no live ISR member",
                ));
            }
        }
    }
    out
}

/// Liveness timings.
#[derive(Debug, Clone)]
pub struct LivenessConfig {
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat: Duration,
    /// `broker.session.timeout.ms`.
    pub session_timeout: Duration,
    /// TLS and SASL towards the other brokers (the inter-broker listener's).
    pub security: rill_client::security::ClientSecurity,
}

/// The loop. Every node checks every registered broker each heartbeat interval, so a node
/// that becomes the active controller already knows who has been silent (a controller
/// failover does not restart the session clock, except after a stall of this loop); only
/// the active controller fences, unfences and applies [`plan`].
pub async fn run(
    controller: Arc<Controller>,
    me: BrokerId,
    cfg: LivenessConfig,
    topic_configs: Arc<TopicConfigs>,
) {
    // Names the observer, so a broker's logs (and a test's network proxy) can tell whose
    // checks they are.
    let client_id = format!("rill-controller-liveness-{}", me.0);
    let mut tick = tokio::time::interval(cfg.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Per broker: last answer, and the open connection with the address it goes to.
    let mut last_seen: HashMap<BrokerId, Instant> = HashMap::new();
    // Registration epochs seen: a (re-)registration starts a new session.
    let mut registered: HashMap<BrokerId, i64> = HashMap::new();
    let mut conns: HashMap<BrokerId, (String, Connection)> = HashMap::new();
    // Per broker: since when every check found its port closed (no listener).
    let mut refused_since: HashMap<BrokerId, Instant> = HashMap::new();
    let mut active = false;
    let mut last_round: Option<Instant> = None;
    let probe_timeout = cfg
        .heartbeat
        .max(Duration::from_millis(250))
        .min(cfg.session_timeout / 2);
    // A node that just became the quorum leader checks at once: the broker that was the
    // controller may be down, and its partitions wait for this round to get new leaders.
    let mut leading = controller.quorum.leading();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Ok(()) = leading.changed() => {}
        }
        let image = controller.image();
        let started = Instant::now();
        // This loop stalled (paused process, overloaded node): what it saw is too old to
        // fence anyone on, so every broker gets a fresh session.
        if last_round
            .is_some_and(|t| started.saturating_duration_since(t) > cfg.session_timeout / 2)
        {
            tracing::warn!("broker liveness checks stalled; restarting every broker's session");
            last_seen.clear();
        }
        for (id, epoch) in &image.broker_epochs {
            if registered
                .insert(*id, *epoch)
                .is_some_and(|old| old != *epoch)
            {
                last_seen.insert(*id, started);
            }
        }
        let mut probes = JoinSet::new();
        for b in image.brokers.values().filter(|b| b.id != me) {
            let addr = format!("{}:{}", b.host, b.port);
            let conn = conns
                .remove(&b.id)
                .filter(|(a, c)| *a == addr && c.is_usable())
                .map(|(_, c)| c);
            let id = b.id;
            let client_id = client_id.clone();
            let security = cfg.security.clone();
            probes.spawn(async move {
                let conn = probe(&addr, &client_id, conn, probe_timeout, &security).await;
                (id, addr, conn)
            });
        }
        let mut answered = Vec::new();
        while let Some(r) = probes.join_next().await {
            match r {
                Ok((id, addr, Probe::Answered(conn))) => {
                    last_seen.insert(id, Instant::now());
                    refused_since.remove(&id);
                    conns.insert(id, (addr, *conn));
                    answered.push(id);
                }
                Ok((id, _, Probe::Refused)) => {
                    refused_since.entry(id).or_insert(started);
                }
                Ok((id, _, Probe::Silent)) => {
                    refused_since.remove(&id);
                }
                Err(_) => {}
            }
        }
        refused_since.retain(|id, _| image.brokers.contains_key(id));
        take_over_if_leader_gone(&controller, &refused_since, cfg.heartbeat).await;
        last_seen.insert(me, Instant::now());
        last_seen.retain(|id, _| image.brokers.contains_key(id));
        last_round = Some(Instant::now());
        if !controller.is_active() {
            if active {
                tracing::info!("no longer the active controller");
            }
            active = false;
            continue;
        }
        if !active {
            active = true;
            tracing::info!(
                brokers = image.brokers.len(),
                "active controller: fencing brokers whose session expires"
            );
        }
        for id in image.brokers.keys() {
            // A broker first seen now (new, or just after a stall) gets a full session.
            let seen = *last_seen.entry(*id).or_insert(started);
            let fenced = image.fenced_brokers.contains(id);
            let silent = started.saturating_duration_since(seen);
            // A broker whose port has refused connections for a whole heartbeat interval
            // (at least two checks) has no process behind it: no need to wait out the
            // session, which is for brokers that may only be slow or cut off.
            let gone = refused_since
                .get(id)
                .is_some_and(|t| started.saturating_duration_since(*t) >= cfg.heartbeat);
            if (silent > cfg.session_timeout || gone) && !fenced {
                tracing::warn!(
                    broker = id.0,
                    silent_ms = silent.as_millis() as u64,
                    port_closed = gone,
                    "broker session expired or its port closed: fencing it"
                );
                if let Err(e) = controller
                    .propose_as_active(MetadataCommand::FenceBroker { id: *id })
                    .await
                {
                    tracing::warn!(broker = id.0, error = %e, "cannot fence broker");
                }
            } else if fenced && answered.contains(id) {
                tracing::info!(broker = id.0, "fenced broker answers: unfencing it");
                if let Err(e) = controller
                    .propose_as_active(MetadataCommand::UnfenceBroker { id: *id })
                    .await
                {
                    tracing::warn!(broker = id.0, error = %e, "cannot unfence broker");
                }
            }
        }
        let image = controller.image();
        let changes = plan(&image, |t| topic_configs.get(t).unclean_leader_election);
        if changes.is_empty() {
            continue;
        }
        // One entry per chunk, not per partition: a fenced broker that led or followed tens
        // of thousands of partitions would otherwise cost as many Raft entries. One line per
        // chunk; each change at debug.
        let mut proposals = JoinSet::new();
        let image = controller.image();
        for chunk in changes.chunks(super::raft::command::MAX_CHANGES_PER_ENTRY) {
            let leaders = chunk
                .iter()
                .filter(|c| {
                    image
                        .partition(&c.topic, c.partition)
                        .is_none_or(|p| p.leader != c.state.leader)
                })
                .count();
            tracing::info!(
                partitions = chunk.len(),
                leaders_moved = leaders,
                first = %format!("{}-{}", chunk[0].topic, chunk[0].partition),
                reason = chunk[0].reason,
                "partition state changes"
            );
            for c in chunk {
                tracing::debug!(topic = %c.topic, partition = c.partition, leader = c.state.leader.0, epoch = c.state.leader_epoch.0, isr = ?c.state.isr, reason = c.reason, "partition state change");
            }
            let batch: Vec<super::raft::command::PartitionChange> = chunk
                .iter()
                .map(|c| super::raft::command::PartitionChange {
                    topic: c.topic.clone(),
                    partition: c.partition,
                    state: c.state.clone(),
                })
                .collect();
            let controller = controller.clone();
            proposals.spawn(async move { controller.change_partitions(batch).await });
        }
        while let Some(r) = proposals.join_next().await {
            match r {
                Ok(Ok(refused)) if refused.is_empty() => {}
                Ok(Ok(refused)) => {
                    tracing::debug!(
                        refused = refused.len(),
                        "partition state changes refused as stale"
                    )
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "partition state changes refused"),
                Err(e) => tracing::warn!(error = %e, "partition state change task failed"),
            }
        }
    }
}

/// Brokers whose port has refused connections for a whole heartbeat interval have no process
/// behind them; if the quorum leader is one of them, the lowest surviving voter takes over
/// as soon as the leader lease allows (`raft::takeover`), at once or later in this interval.
async fn take_over_if_leader_gone(
    controller: &Controller,
    refused_since: &HashMap<BrokerId, Instant>,
    heartbeat: Duration,
) {
    let now = Instant::now();
    let gone: BTreeSet<u64> = refused_since
        .iter()
        .filter(|(_, t)| now.saturating_duration_since(**t) >= heartbeat)
        .filter_map(|(id, _)| u64::try_from(id.0).ok())
        .collect();
    if gone.is_empty() {
        return;
    }
    if let Takeover::Wait(left) = controller.quorum.take_over_if_leader_gone(&gone).await {
        if left < heartbeat {
            let quorum = controller.quorum.clone();
            tokio::spawn(async move {
                tokio::time::sleep(left).await;
                quorum.take_over_if_leader_gone(&gone).await;
            });
        }
    }
}

/// One liveness check: ApiVersions on the kept connection, or on a new one.
async fn probe(
    addr: &str,
    client_id: &str,
    conn: Option<Connection>,
    timeout: Duration,
    security: &rill_client::security::ClientSecurity,
) -> Probe {
    if let Some(mut c) = conn {
        let ok = tokio::time::timeout(timeout, c.send(ApiVersionsRequest::default()))
            .await
            .is_ok_and(|r| r.is_ok());
        if ok {
            return Probe::Answered(Box::new(c));
        }
    }
    // Connecting runs ApiVersions: a broker that answers it is alive.
    let config = rill_client::ConnectionConfig {
        client_id: client_id.to_string(),
        connect_timeout: timeout,
        request_timeout: timeout,
        security: security.clone(),
        ..rill_client::ConnectionConfig::default()
    };
    match tokio::time::timeout(timeout, Connection::connect(addr, config)).await {
        Ok(Ok(c)) => Probe::Answered(Box::new(c)),
        Ok(Err(ClientError::Io { source, .. }))
            if source.kind() == std::io::ErrorKind::ConnectionRefused =>
        {
            Probe::Refused
        }
        _ => Probe::Silent,
    }
}

/// What one liveness check found.
enum Probe {
    /// The broker answered ApiVersions (the connection is kept for the next check).
    Answered(Box<Connection>),
    /// Nothing listens on the broker's port any more: its process is gone (a crash or a
    /// `kill -9` closes the listener at once), as opposed to a slow or unreachable broker.
    Refused,
    /// No answer in time, or the connection broke: slow, or cut off.
    Silent,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::fixtures::{self, part};

    fn image(fenced: &[i32], partitions: Vec<PartitionMeta>) -> MetadataImage {
        fixtures::image(3, fenced, partitions)
    }

    fn ids(v: &[BrokerId]) -> Vec<i32> {
        v.iter().map(|b| b.0).collect()
    }

    #[test]
    fn a_fenced_leader_is_replaced_from_the_isr() {
        let img = image(&[1], vec![part(&[1, 2, 3], &[1, 3, 2], 1)]);
        let plan = plan(&img, |_| false);
        assert_eq!(plan.len(), 1);
        let s = &plan[0].state;
        assert_eq!(
            s.leader,
            BrokerId(2),
            "first live ISR member in replica order"
        );
        assert_eq!(s.leader_epoch, LeaderEpoch(5));
        assert_eq!(s.partition_epoch, 8);
        assert_eq!(ids(&s.isr), vec![3, 2]);
    }

    #[test]
    fn fenced_followers_leave_the_isr_without_a_new_leader_epoch() {
        let img = image(&[3], vec![part(&[1, 2, 3], &[1, 2, 3], 1)]);
        let plan = plan(&img, |_| false);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].state.leader, BrokerId(1));
        assert_eq!(plan[0].state.leader_epoch, LeaderEpoch(4));
        assert_eq!(ids(&plan[0].state.isr), vec![1, 2]);
        // Nothing to do when all is well.
        assert!(super::plan(&image(&[], vec![part(&[1, 2], &[1, 2], 2)]), |_| false).is_empty());
    }

    #[test]
    fn no_live_isr_member_means_offline_unless_unclean() {
        // Replica 3 is live but not in the ISR.
        let img = image(&[1, 2], vec![part(&[1, 2, 3], &[1, 2], 1)]);
        let clean = plan(&img, |_| false);
        assert_eq!(clean[0].state.leader, BrokerId(-1));
        assert_eq!(ids(&clean[0].state.isr), vec![1, 2], "last ISR kept");
        assert_eq!(clean[0].state.leader_epoch, LeaderEpoch(5));
        let unclean = plan(&img, |_| true);
        assert_eq!(unclean[0].state.leader, BrokerId(3));
        assert_eq!(ids(&unclean[0].state.isr), vec![3]);
        // Offline already: nothing more until an ISR member returns.
        let offline = image(&[1, 2], vec![part(&[1, 2, 3], &[1, 2], -1)]);
        assert!(plan(&offline, |_| false).is_empty());
        // Broker 2 returns: it leads.
        let back = image(&[1], vec![part(&[1, 2, 3], &[1, 2], -1)]);
        let p = plan(&back, |_| false);
        assert_eq!(p[0].state.leader, BrokerId(2));
        assert_eq!(ids(&p[0].state.isr), vec![2]);
    }

    #[test]
    fn an_offline_replica_loses_leadership_and_its_isr_place_until_it_registers_again() {
        use crate::controller::raft::command::{apply_command, MetadataCommand};
        let mut img = image(&[], vec![part(&[1, 2, 3], &[1, 2, 3], 1)]);
        img.broker_epochs.insert(BrokerId(1), 10);
        let mark = |epoch| MetadataCommand::MarkReplicasOffline {
            broker: BrokerId(1),
            epoch,
            partitions: vec![crate::types::TopicPartition::new("t", 0)],
            no_storage: true,
        };
        assert!(
            apply_command(&mut img.clone(), &mark(9)).is_err(),
            "an outdated registration's report is refused"
        );
        apply_command(&mut img, &mark(10)).unwrap();
        assert!(!img.replica_eligible(BrokerId(1), "t", 0));
        assert!(
            img.replica_eligible(BrokerId(1), "other", 0),
            "only that replica"
        );
        assert!(
            !img.live_brokers().iter().any(|b| b.id == BrokerId(1)),
            "no new replicas for a broker without storage"
        );
        let p = plan(&img, |_| false);
        assert_eq!(
            p[0].state.leader,
            BrokerId(2),
            "leadership moves in the ISR"
        );
        assert_eq!(ids(&p[0].state.isr), vec![2, 3]);
        assert_eq!(p[0].state.leader_epoch, LeaderEpoch(5));
        // A restart (new registration) makes it eligible again.
        let info = img.brokers[&BrokerId(1)].clone();
        apply_command(
            &mut img,
            &MetadataCommand::RegisterBroker { info, epoch: 11 },
        )
        .unwrap();
        assert!(
            img.replica_eligible(BrokerId(1), "t", 0) || img.fenced_brokers.contains(&BrokerId(1))
        );
        assert!(img.offline_replicas.is_empty() && img.brokers_without_storage.is_empty());
    }

    #[test]
    fn planned_changes_pass_the_state_machine() {
        use crate::controller::raft::command::{apply_command, MetadataCommand};
        let mut img = image(&[1], vec![part(&[1, 2, 3], &[1, 2, 3], 1)]);
        for e in plan(&img.clone(), |_| false) {
            apply_command(
                &mut img,
                &MetadataCommand::ChangePartition {
                    topic: e.topic,
                    partition: e.partition,
                    state: e.state,
                },
            )
            .expect("accepted");
        }
        assert_eq!(img.topics["t"].partitions[0].leader, BrokerId(2));
        assert!(plan(&img, |_| false).is_empty(), "stable after one round");
    }
}
