//! SIGTERM moves a node's leaderships to in-sync replicas before it exits, without waiting
//! for its session to expire.

mod common;

use std::time::{Duration, Instant};

use common::{start_cluster, wait_for, BrokerProc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

fn leader(bootstrap: &str) -> Option<i32> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .ok()?;
    let md = c
        .fetch_metadata(Some("moving"), Duration::from_secs(5))
        .ok()?;
    let l = md.topics().first()?.partitions().first()?.leader();
    (l > 0).then_some(l)
}

fn bootstrap(nodes: &[&BrokerProc]) -> String {
    nodes
        .iter()
        .map(|n| n.bootstrap.clone())
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_moves_leaderships_before_exit() {
    // The default 9 s session: only a controlled shutdown moves leadership quickly.
    let mut nodes = start_cluster(3, &[]);
    let all = bootstrap(&nodes.iter().collect::<Vec<_>>());
    let a: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &all)
        .create()
        .expect("admin");
    let r = a
        .create_topics(
            [&NewTopic::new("moving", 1, TopicReplication::Fixed(3))
                .set("min.insync.replicas", "2")],
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
    for i in 0..50 {
        p.send(
            FutureRecord::<(), _>::to("moving").payload(&format!("{i}")),
            Duration::from_secs(30),
        )
        .await
        .expect("delivered");
    }
    let old = wait_for(30, "a leader", || leader(&all));
    // Every replica must be in sync before the leader can hand over.
    wait_for(30, "a full ISR", || {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &all)
            .create()
            .ok()?;
        let md = c
            .fetch_metadata(Some("moving"), Duration::from_secs(5))
            .ok()?;
        (md.topics()[0].partitions()[0].isr().len() == 3).then_some(())
    });
    let stopped = Instant::now();
    nodes[(old - 1) as usize].stop();
    let took = stopped.elapsed();
    let survivors = bootstrap(
        &nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i as i32 != old - 1)
            .map(|(_, n)| n)
            .collect::<Vec<_>>(),
    );
    let new = wait_for(5, "the survivors to report the new leader", || {
        leader(&survivors).filter(|l| *l != old)
    });
    assert_ne!(new, old);
    assert!(
        took < Duration::from_secs(9),
        "the node stopped in {took:?}, within the 9 s session it would otherwise take"
    );
    // Writes continue at once through the new leader.
    let sent = p
        .send(
            FutureRecord::<(), _>::to("moving").payload("after"),
            Duration::from_secs(10),
        )
        .await;
    assert!(sent.is_ok(), "{sent:?}");
}
