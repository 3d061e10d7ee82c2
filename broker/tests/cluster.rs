//! A three-node cluster on loopback: the Raft metadata quorum, partitions spread over the
//! nodes, clients routed to each partition's leader, and controller failover (replication
//! itself is in `replication.rs`).

mod common;

use std::time::Duration;

use common::{start_cluster, wait_for, BrokerProc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const T: Duration = Duration::from_secs(30);

fn quorum(b: &BrokerProc) -> Option<serde_json::Value> {
    let (status, body) = b.http_get("/api/v1/quorum");
    (status == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

fn leader_index(nodes: &[BrokerProc]) -> Option<usize> {
    nodes
        .iter()
        .position(|n| quorum(n).is_some_and(|q| q["role"] == "leader"))
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin")
}

async fn create(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    rf: i32,
) -> Result<(), rdkafka::types::RDKafkaErrorCode> {
    let r = admin(bootstrap)
        .create_topics(
            [&NewTopic::new(
                name,
                partitions,
                TopicReplication::Fixed(rf),
            )],
            &AdminOptions::new().operation_timeout(Some(T)),
        )
        .await
        .expect("rpc");
    r[0].clone().map(|_| ()).map_err(|(_, e)| e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_metadata_and_serve_their_partitions() {
    let nodes = start_cluster(3, &[]);
    let all = nodes
        .iter()
        .map(|n| n.bootstrap.clone())
        .collect::<Vec<_>>()
        .join(",");
    wait_for(30, "exactly one quorum leader", || leader_index(&nodes));

    create(&nodes[0].bootstrap, "spread", 6, 1)
        .await
        .expect("create through node 1");
    // Every node learns the topic; partitions are led by all three nodes.
    let md = wait_for(30, "every node to know the topic", || {
        let mds: Vec<_> = nodes
            .iter()
            .map(|n| {
                let c: BaseConsumer = ClientConfig::new()
                    .set("bootstrap.servers", &n.bootstrap)
                    .create()
                    .expect("client");
                c.fetch_metadata(Some("spread"), Duration::from_secs(5))
                    .ok()
            })
            .collect();
        mds.iter()
            .all(|m| {
                m.as_ref()
                    .is_some_and(|m| m.topics()[0].partitions().len() == 6)
            })
            .then(|| mds.into_iter().next().flatten())
            .flatten()
    });
    assert_eq!(md.brokers().len(), 3);
    let mut leaders: Vec<i32> = md.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.leader())
        .collect();
    leaders.sort();
    leaders.dedup();
    assert_eq!(
        leaders,
        vec![1, 2, 3],
        "partitions are spread over all nodes"
    );

    // A client bootstrapped from any node reaches every partition's leader.
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &all)
        .create()
        .expect("producer");
    for i in 0..600 {
        p.send(
            FutureRecord::to("spread")
                .key(&format!("k{i}"))
                .payload(&format!("v{i}"))
                .partition(i % 6),
            T,
        )
        .await
        .expect("delivered");
    }
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &nodes[2].bootstrap)
        .set("group.id", "spread-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for part in 0..6 {
        tpl.add_partition_offset("spread", part, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut n = 0;
    let deadline = std::time::Instant::now() + T;
    while n < 600 && std::time::Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            let m = m.expect("message");
            assert_eq!(
                m.payload(),
                Some(
                    format!(
                        "v{}",
                        &String::from_utf8_lossy(m.key().unwrap_or_default())[1..]
                    )
                    .as_bytes()
                )
            );
            n += 1;
        }
    }
    assert_eq!(n, 600);

    // Three replicas fit on three nodes; four do not.
    create(&all, "replicated", 1, 3)
        .await
        .expect("replication factor 3 on 3 nodes");
    assert_eq!(
        create(&all, "overreplicated", 1, 4).await,
        Err(rdkafka::types::RDKafkaErrorCode::InvalidReplicationFactor)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_active_controller_elects_another_and_it_rejoins() {
    let mut nodes = start_cluster(3, &[]);
    let old = wait_for(30, "a quorum leader", || leader_index(&nodes));
    nodes[old].kill9();
    let survivors: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    let started = std::time::Instant::now();
    let new = wait_for(30, "a new quorum leader", || {
        survivors
            .iter()
            .copied()
            .find(|i| quorum(&nodes[*i]).is_some_and(|q| q["role"] == "leader"))
    });
    assert_ne!(new, old);
    // Topic creation works through either survivor.
    let other = survivors
        .iter()
        .copied()
        .find(|i| *i != new)
        .expect("two survivors");
    wait_for(30, "topic creation after failover", || {
        let rt = tokio::runtime::Handle::current();
        let ok = std::thread::scope(|s| {
            s.spawn(|| rt.block_on(create(&nodes[other].bootstrap, "after-failover", 2, 1)))
                .join()
                .ok()
        });
        ok.and_then(|r| r.ok())
    });
    eprintln!(
        "controller failover to a committed topic creation: {:?}",
        started.elapsed()
    );
    // The killed node restarts on its ports and follows the new leader.
    nodes[old].restart_same_ports();
    wait_for(30, "the restarted node to follow", || {
        quorum(&nodes[old])
            .is_some_and(|q| q["role"] == "follower")
            .then_some(())
    });
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &nodes[old].bootstrap)
        .create()
        .expect("client");
    let md = wait_for(30, "the restarted node to know the new topic", || {
        c.fetch_metadata(Some("after-failover"), Duration::from_secs(5))
            .ok()
            .filter(|m| m.topics()[0].partitions().len() == 2)
    });
    assert_eq!(md.brokers().len(), 3);
}

/// A quorum leader whose process is gone (its broker port refuses connections) is replaced
/// as soon as the leader lease allows: the lowest-id survivor starts the election instead of
/// everyone waiting out a random election timeout. With a long election timeout (3 s: lease
/// 6 s, then 3-6 s more) only the takeover can elect within 9 s, and only the lowest survivor
/// takes over.
#[test]
fn the_lowest_survivor_takes_over_from_a_dead_quorum_leader() {
    let mut nodes = start_cluster(3, &["controller.quorum.election.timeout.ms=3000"]);
    let old = wait_for(30, "a quorum leader", || leader_index(&nodes));
    nodes[old].kill9();
    let killed = std::time::Instant::now();
    let lowest = (0..3).find(|i| *i != old).expect("a survivor");
    let new = wait_for(30, "a new quorum leader", || {
        (0..3)
            .filter(|i| *i != old)
            .find(|i| quorum(&nodes[*i]).is_some_and(|q| q["role"] == "leader"))
    });
    let took = killed.elapsed();
    assert_eq!(new, lowest, "the lowest-id survivor took over");
    assert!(
        took < Duration::from_secs(9),
        "elected by the takeover, before any election timeout could fire: {took:?}"
    );
    eprintln!("quorum leader replaced {took:?} after the kill");
}

/// A node configured with another cluster's id refuses to join and says why, while the two
/// nodes that agree form the cluster without it.
#[test]
fn a_node_with_another_cluster_id_refuses_to_join_and_says_why() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let ports: Vec<u16> = (0..3).map(|_| common::free_port()).collect();
    let voters = common::voters(&ports);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let spawn = |i: usize, cluster: &str| {
        Command::new(env!("CARGO_BIN_EXE_rill-broker"))
            .args(["--override", &format!("node.id={}", i + 1)])
            .args(["--override", &format!("controller.quorum.voters={voters}")])
            .args(["--override", &format!("cluster.id={cluster}")])
            .args([
                "--override",
                &format!(
                    "listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{}",
                    ports[i]
                ),
            ])
            .args(["--override", "http.listener=127.0.0.1:0"])
            .args([
                "--override",
                &format!("log.dirs={}", dirs[i].path().join("logs").display()),
            ])
            .env("RILL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rill-broker")
    };
    let mut good: Vec<_> = (0..2).map(|i| spawn(i, "clusterAAAAAAAAAAAAAAA")).collect();
    let mut odd = spawn(2, "clusterBBBBBBBBBBBBBBB");
    // The odd node exits on its own, with the reason.
    let status = wait_for(60, "the odd node to exit", || odd.try_wait().ok().flatten());
    let mut err = String::new();
    odd.stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    eprintln!("odd node: {status}; stderr:\n{err}");
    assert!(!status.success(), "exits with a failure status");
    assert!(
        err.contains("clusterAAAAAAAAAAAAAAA") && err.contains("clusterBBBBBBBBBBBBBBB"),
        "names both cluster ids: {err}"
    );
    // The two that agree formed the cluster.
    for g in &mut good {
        let mut out = g.stdout.take().expect("stdout");
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\n") && out.read(&mut byte).is_ok_and(|n| n == 1) {
            line.push(byte[0]);
        }
        let line = String::from_utf8_lossy(&line);
        assert!(line.starts_with("rill-broker ready:"), "{line}");
        let _ = g.kill();
        let _ = g.wait();
    }
}
