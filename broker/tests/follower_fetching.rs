//! Follower fetching (KIP-392) with librdkafka against three real `rill-broker` processes in
//! racks a, b and c, `replica.selector.class` set to Kafka's rack-aware selector: a consumer
//! with `client.rack=b` is sent by the leader (rack a) to the rack-b replica and reads every
//! record there (the brokers' metrics show who served the bytes); when that replica is killed
//! it carries on from the leader and still reads every record, once.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::checks::{create_topic, partition_info, produce_range, producer};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "rack-reads";
const RACKS: [&str; 3] = ["a", "b", "c"];

/// `rill_consumer_fetch_bytes_total{replica, rack}` on a node (0 when never counted).
fn consumer_bytes(node: &common::BrokerProc, replica: &str, rack: &str) -> u64 {
    let (status, body) = node.http_get("/metrics");
    assert_eq!(status, 200);
    let series =
        format!("rill_consumer_fetch_bytes_total{{rack=\"{rack}\",replica=\"{replica}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().expect("counter value"))
}

/// Polls `c` until it has read every number in `want` (each once), for at most a minute.
fn read_numbers(c: &BaseConsumer, got: &mut Vec<usize>, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < want {
        assert!(
            Instant::now() < deadline,
            "read {} of {want} records",
            got.len()
        );
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            let m = match m {
                Ok(m) => m,
                // The killed replica's connection dropping is reported, not fatal.
                Err(KafkaError::MessageConsumption(RDKafkaErrorCode::BrokerTransportFailure)) => {
                    continue
                }
                Err(e) => panic!("consume: {e}"),
            };
            let n: usize = String::from_utf8_lossy(m.payload().unwrap_or_default())
                .parse()
                .expect("numbered record");
            got.push(n);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_reads_from_its_racks_replica_and_falls_back_to_the_leader() {
    let mut nodes = common::start_cluster_with(
        3,
        &["replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector"],
        |i| vec![format!("broker.rack={}", RACKS[i])],
    );
    let bootstrap = nodes
        .iter()
        .map(|n| n.bootstrap.clone())
        .collect::<Vec<_>>()
        .join(",");
    // Leader on node 1 (rack a), followers on 2 (b) and 3 (c).
    create_topic(
        &bootstrap,
        NewTopic::new(TOPIC, 1, TopicReplication::Variable(&[&[1, 2, 3]])),
    )
    .await;
    common::wait_for(30, "all three replicas in sync", || {
        partition_info(&nodes[0], TOPIC).filter(|p| p.isr.len() == 3 && p.leader == 1)
    });
    let p = producer(&bootstrap);
    assert_eq!(produce_range(&p, TOPIC, 0, 200).await.len(), 200);

    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "rack-b-reader")
        .set("client.rack", "b")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let mut got = Vec::new();
    read_numbers(&c, &mut got, 200);

    // Every consumer byte came from the rack-b follower; the leader served none.
    let from_b = consumer_bytes(&nodes[1], "follower", "same");
    assert!(from_b > 200, "rack-b follower served {from_b} bytes");
    assert_eq!(consumer_bytes(&nodes[0], "leader", "other"), 0);
    assert_eq!(consumer_bytes(&nodes[2], "follower", "other"), 0);

    // The rack-b replica dies: the consumer goes back to the leader and misses nothing.
    nodes[1].kill9();
    assert_eq!(produce_range(&p, TOPIC, 200, 400).await.len(), 200);
    read_numbers(&c, &mut got, 400);
    let distinct: BTreeSet<usize> = got.iter().copied().collect();
    assert_eq!(distinct.len(), 400, "every record once");
    assert_eq!(got.len(), 400, "no record twice");
    assert!(consumer_bytes(&nodes[0], "leader", "other") > 0);
}
