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

/// The sum of `name` over `nodes` (nodes that do not answer count 0).
fn total(nodes: &[&BrokerProc], name: &str) -> f64 {
    nodes.iter().filter_map(|n| metric(n, name)).sum()
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
    // Node 1 hosts m-0 and solo-0; every partition has a leader somewhere (leadership may
    // move if a busy node misses its session, so count over the cluster).
    wait_for(30, "node 1 hosting m-0 and solo-0", || {
        metric(&nodes[0], "kafka_server_replicamanager_partitioncount").filter(|v| *v == 2.0)
    });
    let all: Vec<&BrokerProc> = nodes.iter().collect();
    wait_for(30, "3 leaders and 1 active controller", || {
        let leaders = total(&all, "kafka_server_replicamanager_leadercount");
        let active = total(
            &all,
            "kafka_controller_kafkacontroller_activecontrollercount",
        );
        (leaders == 3.0 && active == 1.0).then_some(())
    });

    // Follower 2 dies: fenced, it leaves the ISR of m-0 (a shrink on the leader, which is
    // now under min ISR), and solo-1 is offline (counted once, on the active controller).
    let live = [&nodes[0], &nodes[2]];
    let shrinks = total(&live, "kafka_server_replicamanager_isrshrinks_total");
    nodes[1].kill9();
    let live = [&nodes[0], &nodes[2]];
    wait_for(60, "an ISR shrink on the leader", || {
        (total(&live, "kafka_server_replicamanager_isrshrinks_total") > shrinks).then_some(())
    });
    wait_for(30, "m-0 under min ISR, one offline partition", || {
        let under = total(
            &live,
            "kafka_server_replicamanager_underminisrpartitioncount",
        );
        let offline = total(
            &live,
            "kafka_controller_kafkacontroller_offlinepartitionscount",
        );
        let active = total(
            &live,
            "kafka_controller_kafkacontroller_activecontrollercount",
        );
        (under == 1.0 && offline == 1.0 && active == 1.0).then_some(())
    });
    // The active controller's view of the cluster (solo-1 has no leader, so it is not on its
    // preferred replica either).
    let expected = [
        ("kafka_controller_kafkacontroller_fencedbrokercount", 1.0),
        ("kafka_controller_kafkacontroller_activebrokercount", 2.0),
        ("kafka_controller_kafkacontroller_globalpartitioncount", 3.0),
        ("kafka_controller_kafkacontroller_globaltopiccount", 2.0),
        (
            "kafka_controller_kafkacontroller_preferredreplicaimbalancecount",
            1.0,
        ),
    ];
    wait_for(30, "the controller's cluster gauges", || {
        let got: Vec<f64> = expected.iter().map(|(n, _)| total(&live, n)).collect();
        let want: Vec<f64> = expected.iter().map(|(_, v)| *v).collect();
        (got == want).then_some(())
    });

    // It returns, catches up and rejoins: an expansion, and m-0 is no longer under min ISR.
    let expands = total(&live, "kafka_server_replicamanager_isrexpands_total");
    nodes[1].restart();
    let all: Vec<&BrokerProc> = nodes.iter().collect();
    wait_for(60, "an ISR expansion on the leader", || {
        (total(&all, "kafka_server_replicamanager_isrexpands_total") > expands).then_some(())
    });
    wait_for(30, "m-0 back at full ISR", || {
        let under = total(
            &all,
            "kafka_server_replicamanager_underminisrpartitioncount",
        );
        (under == 0.0).then_some(())
    });
}
