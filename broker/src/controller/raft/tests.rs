//! Quorum tests on loopback: real TCP between members, real directories, bounded waits.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use uuid::Uuid;

use super::network::{RpcBody, RpcClient, RpcError};
use super::*;
use crate::metadata::image::{BrokerInfo, PartitionMeta, TopicMeta};
use crate::types::{BrokerId, LeaderEpoch};

/// Upper bound on any wait in these tests.
const WAIT: Duration = Duration::from_secs(30);

/// Polls `cond` until it returns `Some`, failing the test at the deadline.
async fn eventually<T, F, Fut>(what: &str, mut cond: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = cond().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn topic(name: &str, partitions: usize) -> TopicMeta {
    TopicMeta {
        name: name.into(),
        id: Uuid::new_v4(),
        partitions: (0..partitions)
            .map(|i| {
                let r = [
                    BrokerId(1 + (i as i32 % 3)),
                    BrokerId(1 + ((i as i32 + 1) % 3)),
                ];
                PartitionMeta {
                    replicas: r.to_vec(),
                    isr: r.to_vec(),
                    leader: r[0],
                    leader_epoch: LeaderEpoch(0),
                    partition_epoch: 0,
                }
            })
            .collect(),
        configs: BTreeMap::new(),
    }
}

fn broker(id: i32) -> BrokerInfo {
    BrokerInfo {
        endpoints: Vec::new(),
        id: BrokerId(id),
        host: "127.0.0.1".into(),
        port: 9000 + id as u16,
        rack: None,
        max_partitions: None,
    }
}

/// The image as JSON without the field that legitimately differs across leader terms.
fn comparable(img: &MetadataImage) -> serde_json::Value {
    let mut img = img.clone();
    img.controller_id = BrokerId(-1);
    serde_json::to_value(&img).expect("image serializes")
}

struct Cluster {
    voters: BTreeMap<NodeId, String>,
    dirs: BTreeMap<NodeId, TempDir>,
    nodes: BTreeMap<NodeId, MetadataQuorum>,
    snapshot_every: u64,
    cluster_id: String,
}

impl Cluster {
    async fn start(n: u64, snapshot_every: u64) -> Cluster {
        let mut listeners = BTreeMap::new();
        let mut voters = BTreeMap::new();
        for id in 1..=n {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            voters.insert(id, l.local_addr().expect("addr").to_string());
            listeners.insert(id, l);
        }
        let mut c = Cluster {
            voters,
            dirs: (1..=n)
                .map(|id| (id, tempfile::tempdir().expect("tempdir")))
                .collect(),
            nodes: BTreeMap::new(),
            snapshot_every,
            cluster_id: "test-cluster".into(),
        };
        for (id, l) in listeners {
            let q = MetadataQuorum::start_on(c.config(id), l)
                .await
                .expect("start");
            c.nodes.insert(id, q);
        }
        c
    }

    fn config(&self, id: NodeId) -> QuorumConfig {
        let listen = self.voters[&id].parse().expect("socket addr");
        let mut cfg = QuorumConfig::new(
            id,
            self.voters.clone(),
            listen,
            self.dirs[&id].path().to_path_buf(),
        );
        cfg.snapshot_every = self.snapshot_every;
        cfg.cluster_id = Some(self.cluster_id.clone());
        cfg
    }

    fn node(&self, id: NodeId) -> &MetadataQuorum {
        &self.nodes[&id]
    }

    async fn stop(&mut self, id: NodeId) {
        if let Some(q) = self.nodes.remove(&id) {
            q.shutdown().await.expect("shutdown");
        }
    }

    async fn restart(&mut self, id: NodeId) {
        let cfg = self.config(id);
        let q = eventually("the old port to be free", || {
            let cfg = cfg.clone();
            async move {
                match MetadataQuorum::start(cfg).await {
                    Ok(q) => Some(q),
                    Err(QuorumError::Listen { .. }) => None,
                    Err(e) => panic!("restart of node {id} failed: {e}"),
                }
            }
        })
        .await;
        self.nodes.insert(id, q);
    }

    /// Exactly one running node leads and every running node follows it.
    async fn leader(&self) -> NodeId {
        eventually("one agreed leader", || async {
            let statuses: Vec<QuorumStatus> = self.nodes.values().map(|q| q.status()).collect();
            let leaders: Vec<NodeId> = statuses
                .iter()
                .filter(|s| s.role == QuorumRole::Leader)
                .map(|s| s.node_id)
                .collect();
            match leaders.as_slice() {
                [l] if statuses.iter().all(|s| s.leader == Some(*l)) => Some(*l),
                _ => None,
            }
        })
        .await
    }

    /// Every running node applied the same index and holds the same image.
    async fn converged(&self) -> serde_json::Value {
        eventually("images to converge", || async {
            let views: Vec<(Option<u64>, serde_json::Value)> = self
                .nodes
                .values()
                .map(|q| (q.status().last_applied, comparable(&q.image())))
                .collect();
            let first = views.first()?.clone();
            views.iter().all(|v| *v == first).then_some(first.1)
        })
        .await
    }

    async fn shutdown_all(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.stop(id).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_elects_itself_applies_and_recovers() {
    let mut c = Cluster::start(1, DEFAULT_SNAPSHOT_EVERY).await;
    let q = c.node(1).clone();
    assert_eq!(q.wait_for_leader(WAIT).await.expect("leader"), 1);
    let mut rx = q.subscribe();

    q.propose(MetadataCommand::SetClusterId(c.cluster_id.clone()))
        .await
        .expect("cluster id");
    q.propose(MetadataCommand::RegisterBroker {
        info: broker(1),
        epoch: 1,
    })
    .await
    .expect("register");
    q.propose(MetadataCommand::UnfenceBroker { id: BrokerId(1) })
        .await
        .expect("unfence");
    q.propose(MetadataCommand::CreateTopic {
        topic: topic("orders", 3),
    })
    .await
    .expect("create");
    let first = q
        .propose(MetadataCommand::AllocateProducerIds { count: 10 })
        .await
        .expect("pids");
    assert_eq!(first, CommandResult::ProducerIds { first: 1000 });
    let err = q
        .propose(MetadataCommand::DeleteTopic {
            name: "nope".into(),
        })
        .await
        .expect_err("unknown topic");
    assert!(
        matches!(err, QuorumError::Rejected(CommandError::UnknownTopic(_))),
        "{err}"
    );

    let img = q.image();
    assert_eq!(img.cluster_id, c.cluster_id);
    assert_eq!(img.topics["orders"].partitions.len(), 3);
    assert!(img.fenced_brokers.is_empty());
    assert_eq!(img.controller_id, BrokerId(1));
    assert!(rx.has_changed().expect("publisher alive"));
    assert_eq!(rx.borrow_and_update().next_producer_id, 1010);

    let st = q.status();
    assert_eq!(st.role, QuorumRole::Leader);
    assert_eq!(st.leader, Some(1));
    assert!(
        st.commit_index.is_some() && st.commit_index >= st.last_applied,
        "{st:?}"
    );
    assert_eq!(st.voters.keys().copied().collect::<Vec<_>>(), vec![1]);
    let before = comparable(&img);

    c.stop(1).await;
    assert!(matches!(
        q.propose(MetadataCommand::AllocateProducerIds { count: 1 })
            .await,
        Err(QuorumError::Shutdown)
    ));
    c.restart(1).await;
    let q = c.node(1).clone();
    // The recovered image is visible before any new leader is elected (snapshot + replay).
    assert_eq!(comparable(&q.image()), before);
    q.wait_for_leader(WAIT).await.expect("leader after restart");
    let next = q
        .propose(MetadataCommand::AllocateProducerIds { count: 1 })
        .await
        .expect("pids after restart");
    assert_eq!(next, CommandResult::ProducerIds { first: 1010 });
    c.shutdown_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_one_leader_and_follower_proposals_converge() {
    let mut c = Cluster::start(3, DEFAULT_SNAPSHOT_EVERY).await;
    let leader = c.leader().await;
    let follower = *c
        .nodes
        .keys()
        .find(|id| **id != leader)
        .expect("a follower");
    let f = c.node(follower).clone();
    for id in 1..=3 {
        f.propose(MetadataCommand::RegisterBroker {
            info: broker(id),
            epoch: 1,
        })
        .await
        .expect("register");
        f.propose(MetadataCommand::UnfenceBroker { id: BrokerId(id) })
            .await
            .expect("unfence");
    }
    for i in 0..5 {
        f.propose(MetadataCommand::CreateTopic {
            topic: topic(&format!("t{i}"), 2),
        })
        .await
        .expect("create");
    }
    let change = MetadataCommand::ChangePartition {
        topic: "t0".into(),
        partition: 0,
        state: PartitionMeta {
            replicas: vec![BrokerId(1), BrokerId(2)],
            isr: vec![BrokerId(2)],
            leader: BrokerId(2),
            leader_epoch: LeaderEpoch(1),
            partition_epoch: 1,
        },
    };
    f.propose(change.clone()).await.expect("change partition");
    let err = f.propose(change).await.expect_err("stale repeat");
    assert!(
        matches!(
            err,
            QuorumError::Rejected(CommandError::StalePartitionState { .. })
        ),
        "{err}"
    );
    let pid = f
        .propose(MetadataCommand::AllocateProducerIds { count: 5 })
        .await
        .expect("pids");
    assert_eq!(pid, CommandResult::ProducerIds { first: 1000 });

    let image = c.converged().await;
    assert_eq!(image["topics"].as_object().map(|t| t.len()), Some(5));
    for q in c.nodes.values() {
        let img = q.image();
        assert_eq!(img.brokers.len(), 3);
        assert_eq!(img.topics["t0"].partitions[0].leader, BrokerId(2));
    }
    // Every image names the active controller: the leader of the last applied entry.
    let leader = c.leader().await;
    eventually("every image to name the leader as controller", || async {
        c.nodes
            .values()
            .all(|q| q.image().controller_id == BrokerId(leader as i32))
            .then_some(())
    })
    .await;
    c.shutdown_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failover_then_old_leader_catches_up_by_snapshot() {
    let snapshot_every = 5;
    let mut c = Cluster::start(3, snapshot_every).await;
    let old = c.leader().await;
    for i in 0..3 {
        c.node(old)
            .propose(MetadataCommand::CreateTopic {
                topic: topic(&format!("a{i}"), 1),
            })
            .await
            .expect("create");
    }
    c.converged().await;
    let old_last = c.node(old).status().last_log_index.expect("log index");

    // Leader shutdown -> next successful proposal, proposed through a survivor.
    let survivor = *c.nodes.keys().find(|id| **id != old).expect("survivor");
    let t0 = Instant::now();
    c.stop(old).await;
    c.node(survivor)
        .propose(MetadataCommand::CreateTopic {
            topic: topic("after-failover", 1),
        })
        .await
        .expect("propose after failover");
    let failover = t0.elapsed();
    println!(
        "metadata quorum failover: leader shutdown -> next committed proposal in {} ms",
        failover.as_millis()
    );
    assert!(
        failover < Duration::from_secs(10),
        "failover took {failover:?}"
    );
    let new = c.leader().await;
    assert_ne!(new, old);

    // Enough entries that the survivors snapshot and purge past everything the old leader has.
    let ids: Vec<NodeId> = c.nodes.keys().copied().collect();
    for i in 0..(4 * snapshot_every) {
        let via = ids[i as usize % ids.len()];
        c.node(via)
            .propose(MetadataCommand::AllocateProducerIds { count: 1 })
            .await
            .expect("propose");
    }
    eventually("survivors to purge past the old leader's log", || async {
        c.nodes
            .values()
            .all(|q| q.status().purged_index.is_some_and(|p| p > old_last))
            .then_some(())
    })
    .await;

    c.restart(old).await;
    let image = c.converged().await;
    assert!(image["topics"].get("after-failover").is_some());
    let st = c.node(old).status();
    assert!(
        st.snapshot_index.is_some_and(|s| s > old_last),
        "caught up through a snapshot: {st:?}"
    );
    c.leader().await;

    // The restarted node proposes as a follower.
    let r = c
        .node(old)
        .propose(MetadataCommand::AllocateProducerIds { count: 1 })
        .await
        .expect("propose via old leader");
    assert_eq!(
        r,
        CommandResult::ProducerIds {
            first: 1000 + 4 * snapshot_every as i64
        }
    );
    c.converged().await;
    c.shutdown_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cluster_restart_recovers_the_same_image() {
    let mut c = Cluster::start(3, 7).await;
    c.leader().await;
    for i in 0..12 {
        let via = 1 + (i % 3);
        c.node(via)
            .propose(MetadataCommand::CreateTopic {
                topic: topic(&format!("r{i}"), 2),
            })
            .await
            .expect("create");
    }
    c.node(2)
        .propose(MetadataCommand::SetTopicConfigs {
            name: "r0".into(),
            configs: BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
        })
        .await
        .expect("configs");
    let before = c.converged().await;
    c.shutdown_all().await;
    for id in 1..=3 {
        c.restart(id).await;
    }
    c.leader().await;
    let after = c.converged().await;
    assert_eq!(after, before);
    c.node(3)
        .propose(MetadataCommand::DeleteTopic { name: "r1".into() })
        .await
        .expect("delete after restart");
    let last = c.converged().await;
    assert!(last["topics"].get("r1").is_none());
    c.shutdown_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_cluster_ids_are_refused() {
    let mut c = Cluster::start(1, DEFAULT_SNAPSHOT_EVERY).await;
    c.node(1).wait_for_leader(WAIT).await.expect("leader");
    // Garbage costs only its own connection: an oversized length, then undecodable JSON.
    for frame in [vec![0xff, 0xff, 0xff, 0xff], b"\0\0\0\x05hello".to_vec()] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(&c.voters[&1])
            .await
            .expect("connect");
        s.write_all(&frame).await.expect("write");
        let mut buf = Vec::new();
        let n = tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
            .await
            .expect("closed in time");
        assert_eq!(n.map(|_| buf.len()).unwrap_or(0), 0, "no reply to garbage");
    }
    // A peer from another cluster is told why it is refused.
    let stranger = RpcClient::new(9, Some("other-cluster".into()), 1 << 20, None);
    let vote = openraft::raft::VoteRequest {
        vote: openraft::Vote::new(99, 9),
        last_log_id: None,
    };
    let err = stranger
        .call(
            1,
            &c.voters[&1],
            RpcBody::Vote(vote),
            Duration::from_secs(5),
        )
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, RpcError::Refused { reason, .. } if reason.contains("test-cluster")),
        "{err}"
    );
    c.stop(1).await;

    // The directory remembers its cluster: another cluster id refuses to start there.
    let mut cfg = c.config(1);
    cfg.cluster_id = Some("other-cluster".into());
    let err = MetadataQuorum::start(cfg)
        .await
        .expect_err("wrong cluster id");
    assert!(
        matches!(err, QuorumError::ClusterIdMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("test-cluster"), "{err}");
    let mut cfg = c.config(1);
    cfg.node_id = 2;
    cfg.voters.insert(2, "127.0.0.1:1".into());
    assert!(matches!(
        MetadataQuorum::start(cfg).await,
        Err(QuorumError::NodeIdMismatch { .. })
    ));
    let mut cfg = c.config(1);
    cfg.voters.remove(&1);
    assert!(matches!(
        MetadataQuorum::start(cfg).await,
        Err(QuorumError::Config(_))
    ));
}
