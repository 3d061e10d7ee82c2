//! The high-watermark checkpoint (`replication-offset-checkpoint`) across a restart: a
//! restarted leader serves consumers up to the old high watermark at once, even while an ISR
//! member is still down (without the checkpoint it would start at the log start and wait for
//! that member to be fenced).

mod common;

use std::time::Duration;

use common::{start_cluster, wait_for};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rill_client::{Cluster, ConnectionConfig, OffsetSpec, TopicPartition};

const RECORDS: i64 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_leader_serves_up_to_the_checkpointed_high_watermark() {
    let mut nodes = start_cluster(
        3,
        &[
            "replica.high.watermark.checkpoint.interval.ms=100",
            "auto.leader.rebalance.enable=false",
        ],
    );
    let b = nodes[0].bootstrap.clone();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &b)
        .create()
        .expect("admin");
    admin
        .create_topics(
            [&NewTopic::new("hw", 1, TopicReplication::Fixed(3))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("rpc")[0]
        .clone()
        .expect("created");
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &b)
        .set("acks", "all")
        .create()
        .expect("producer");
    for i in 0..RECORDS {
        p.send(
            FutureRecord::<(), _>::to("hw").payload(&format!("r{i}")),
            Duration::from_secs(20),
        )
        .await
        .expect("acks=all produce");
    }
    drop(p);
    // Every node has checkpointed the high watermark (followers learn it from their next
    // fetch).
    for n in &nodes {
        let file = n.data.join("logs").join("replication-offset-checkpoint");
        wait_for(30, "the checkpoint to hold the high watermark", || {
            let text = std::fs::read_to_string(&file).ok()?;
            text.lines()
                .any(|l| l == format!("hw 0 {RECORDS}"))
                .then_some(())
        });
    }
    // The whole cluster dies at once (no fencing, the ISR stays {1,2,3}); nodes 1 and 2
    // return, node 3 stays down.
    for n in nodes.iter_mut() {
        n.kill9();
    }
    let (first, rest) = nodes.split_at_mut(1);
    std::thread::scope(|s| {
        s.spawn(|| first[0].restart());
        s.spawn(|| rest[0].restart());
    });
    let bootstrap = format!("{},{}", nodes[0].bootstrap, nodes[1].bootstrap);
    let c = Cluster::connect(&bootstrap, ConnectionConfig::default())
        .await
        .expect("connect");
    let tp = TopicPartition::new("hw", 0);
    let latest = c
        .list_offsets(std::slice::from_ref(&tp), OffsetSpec::Latest)
        .await
        .expect("list offsets");
    assert_eq!(
        latest[&tp].offset, RECORDS,
        "consumers see the old high watermark at once"
    );
    // And what the high watermark covers is readable.
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "hw-check")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset("hw", 0, rdkafka::Offset::Beginning)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let mut seen = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen < RECORDS && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            assert_eq!(m.offset(), seen);
            seen += 1;
        }
    }
    assert_eq!(
        seen, RECORDS,
        "every record below the high watermark is readable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_shutdown_writes_the_checkpoint() {
    // An hour between periodic writes: only the shutdown can have written it.
    let mut node =
        common::BrokerProc::start(&["replica.high.watermark.checkpoint.interval.ms=3600000"]);
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &node.bootstrap)
        .create()
        .expect("producer");
    for i in 0..7 {
        p.send(
            FutureRecord::<(), _>::to("clean").payload(&format!("r{i}")),
            Duration::from_secs(20),
        )
        .await
        .expect("produce");
    }
    drop(p);
    let file = node.data.join("logs").join("replication-offset-checkpoint");
    let before = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(!before.contains("clean 0 7"), "not yet written: {before:?}");
    node.stop();
    let text = std::fs::read_to_string(&file).expect("checkpoint written at shutdown");
    assert!(text.starts_with("0\n"), "{text:?}");
    assert!(text.lines().any(|l| l == "clean 0 7"), "{text:?}");
}
