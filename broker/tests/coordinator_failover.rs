//! The group coordinator's node is killed: another node takes the offsets partition over and
//! the group keeps every committed offset.

mod common;

use std::time::Duration;

use common::wire::{call, connect};
use common::{start_cluster, wait_for};
use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const FAST: &[&str] = &[
    "replica.lag.time.max.ms=5000",
    "group.initial.rebalance.delay.ms=0",
    "offsets.topic.num.partitions=3",
];

fn consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "cg")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

fn committed(c: &BaseConsumer) -> Option<(i64, String)> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("orders", 0);
    let got = c.committed_offsets(tpl, Duration::from_secs(5)).ok()?;
    let e = got.find_partition("orders", 0)?;
    match e.offset() {
        Offset::Offset(o) => Some((o, e.metadata().to_string())),
        _ => None,
    }
}

fn commit(c: &BaseConsumer, offset: i64, meta: &str) -> bool {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("orders", 0, Offset::Offset(offset))
        .expect("tpl");
    tpl.find_partition("orders", 0)
        .expect("p")
        .set_metadata(meta);
    c.commit(&tpl, CommitMode::Sync).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_the_coordinator_node() {
    let mut nodes = start_cluster(3, FAST);
    let all = nodes
        .iter()
        .map(|n| n.bootstrap.clone())
        .collect::<Vec<_>>()
        .join(",");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &all)
        .create()
        .expect("admin");
    let r = admin
        .create_topics(
            [&NewTopic::new("orders", 1, TopicReplication::Fixed(3))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("create");
    assert!(r[0].is_ok(), "{:?}", r[0]);
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &all)
        .set("acks", "all")
        .create()
        .expect("producer");
    for i in 0..100 {
        p.send(
            FutureRecord::<(), _>::to("orders").payload(&format!("{i}")),
            Duration::from_secs(30),
        )
        .await
        .expect("delivered");
    }
    let c = consumer(&all);
    wait_for(60, "the first commit", || {
        commit(&c, 42, "before-failover").then_some(())
    });
    assert_eq!(committed(&c), Some((42, "before-failover".to_string())));

    // Which node coordinates "cg"? Kill it.
    let mut s = connect(&nodes[0]);
    let r: FindCoordinatorResponse = call(
        &mut s,
        ApiKey::FindCoordinator,
        4,
        1,
        &FindCoordinatorRequest::default()
            .with_coordinator_keys(vec![StrBytes::from_static_str("cg")]),
    );
    let coordinator = r.coordinators[0].node_id.0;
    assert!((1..=3).contains(&coordinator), "{r:?}");
    let victim = (coordinator - 1) as usize;
    nodes[victim].kill9();
    let survivors = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, n)| n.bootstrap.clone())
        .collect::<Vec<_>>()
        .join(",");

    // A new coordinator serves the group with its committed offset and metadata.
    let c2 = consumer(&survivors);
    let got = wait_for(
        60,
        "the new coordinator to serve the committed offset",
        || committed(&c2).filter(|(o, _)| *o >= 0),
    );
    assert_eq!(
        got,
        (42, "before-failover".to_string()),
        "nothing committed was lost"
    );
    wait_for(60, "a commit through the new coordinator", || {
        commit(&c2, 57, "after-failover").then_some(())
    });
    assert_eq!(committed(&c2), Some((57, "after-failover".to_string())));
}
