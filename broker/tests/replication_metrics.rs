//! Replication metrics under their Strimzi/JMX-exporter names, scraped from `/metrics` of a
//! real 3-node cluster: replication bytes in/out, ISR shrinks and expands when a follower dies
//! and returns, under-min-ISR, offline partitions, leader/partition/active-controller counts.

mod common;

use std::time::Duration;

use common::{start_cluster, wait_for, BrokerProc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// The value of an unlabelled sample `name` in a Prometheus text page.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// `name` scraped from `node` (None while the node does not answer).
fn metric(node: &BrokerProc, name: &str) -> Option<f64> {
    let (status, page) = node.http_get("/metrics");
    if status != 200 {
        return None;
    }
    Some(sample(&page, name).unwrap_or_else(|| panic!("{name} missing from /metrics")))
}

async fn create(bootstrap: &str, topic: &NewTopic<'_>) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin");
    let r = admin
        .create_topics(
            [topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("rpc");
    r[0].clone().expect("created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_metrics_follow_the_cluster() {
    let mut nodes = start_cluster(3, &["auto.leader.rebalance.enable=false"]);
    let b = nodes[0].bootstrap.clone();
    // m-0 is led by node 1 (placement starts at the lowest id) and followed by 2 and 3.
    create(
        &b,
        &NewTopic::new("m", 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "3"),
    )
    .await;
    // solo-1 lives on node 2 alone: it goes offline with it.
    create(&b, &NewTopic::new("solo", 2, TopicReplication::Fixed(1))).await;
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &b)
        .set("acks", "all")
        .create()
        .expect("producer");
    for i in 0..20 {
        p.send(
            FutureRecord::<(), _>::to("m")
                .partition(0)
                .payload(&format!("record-{i:04}")),
            Duration::from_secs(20),
        )
        .await
        .expect("acks=all produce");
    }
    // acks=all returned: both followers have the records, so their fetches moved bytes.
    let out = metric(
        &nodes[0],
        "kafka_server_brokertopicmetrics_replicationbytesout_total",
    );
    assert!(
        out.is_some_and(|v| v > 0.0),
        "leader sent replication bytes"
    );
    for f in &nodes[1..] {
        let v = metric(
            f,
            "kafka_server_brokertopicmetrics_replicationbytesin_total",
        );
        assert!(
            v.is_some_and(|v| v > 0.0),
            "follower appended replication bytes"
        );
    }
    // Counts: 1 partition + 1 of solo on node 1 (solo-0), leading both.
    assert_eq!(
        metric(&nodes[0], "kafka_server_replicamanager_partitioncount"),
        Some(2.0)
    );
    assert_eq!(
        metric(&nodes[0], "kafka_server_replicamanager_leadercount"),
        Some(2.0)
    );
    let controllers: f64 = nodes
        .iter()
        .filter_map(|n| metric(n, "kafka_controller_kafkacontroller_activecontrollercount"))
        .sum();
    assert_eq!(controllers, 1.0, "exactly one active controller");
    assert_eq!(
        metric(&nodes[0], "kafka_server_replicamanager_isrshrinks_total"),
        Some(0.0)
    );

    // Follower 2 dies: fenced, it leaves the ISR of m-0 (a shrink on the leader, which is
    // now under min ISR), and solo-1 is offline (counted once, on the active controller).
    nodes[1].kill9();
    wait_for(60, "an ISR shrink on the leader", || {
        metric(&nodes[0], "kafka_server_replicamanager_isrshrinks_total").filter(|v| *v >= 1.0)
    });
    assert_eq!(
        metric(
            &nodes[0],
            "kafka_server_replicamanager_underminisrpartitioncount"
        ),
        Some(1.0)
    );
    wait_for(30, "one offline partition across the live nodes", || {
        let live = [&nodes[0], &nodes[2]];
        let offline: f64 = live
            .iter()
            .filter_map(|n| metric(n, "kafka_controller_kafkacontroller_offlinepartitionscount"))
            .sum();
        let active: f64 = live
            .iter()
            .filter_map(|n| metric(n, "kafka_controller_kafkacontroller_activecontrollercount"))
            .sum();
        (offline == 1.0 && active == 1.0).then_some(())
    });

    // It returns, catches up and rejoins: an expansion, and m-0 is no longer under min ISR.
    let expands = metric(&nodes[0], "kafka_server_replicamanager_isrexpands_total");
    nodes[1].restart();
    wait_for(60, "an ISR expansion on the leader", || {
        metric(&nodes[0], "kafka_server_replicamanager_isrexpands_total")
            .filter(|v| Some(*v) > expands)
    });
    wait_for(30, "m-0 back at full ISR", || {
        metric(
            &nodes[0],
            "kafka_server_replicamanager_underminisrpartitioncount",
        )
        .filter(|v| *v == 0.0)
    });
}
