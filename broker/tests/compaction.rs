//! Log compaction over the wire: a topic created with `cleanup.policy=compact` is cleaned by the
//! broker's retention loop, and a consumer reading from the beginning then sees the latest value
//! of every key (with gaps in the offsets), before and after a restart.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{wait_for, BrokerProc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "compacted";
const KEYS: usize = 20;
const UPDATES: usize = 1_000;

fn partition_view(b: &BrokerProc) -> Option<serde_json::Value> {
    let (status, body) = b.http_get("/api/v1/partitions");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    v.as_array()?.iter().find(|p| p["topic"] == TOPIC).cloned()
}

/// Every (offset, key, value) from the beginning up to `end`, or `None` if the read did not
/// reach `end` within a few seconds.
fn read_all(b: &BrokerProc, end: i64) -> Option<Vec<(i64, String, String)>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("group.id", "rill-compaction-test")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while out.last().is_none_or(|(o, _, _)| *o < end - 1) {
        if Instant::now() > deadline {
            return None;
        }
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            let m = m.expect("consume error");
            let text =
                |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
            out.push((m.offset(), text(m.key()), text(m.payload())));
        }
    }
    Some(out)
}

/// Checks a read against what was written: offsets increase, the last write of every key is
/// there, nothing but the latest per key below the active segment.
fn check(read: &[(i64, String, String)], latest: &BTreeMap<String, String>, active_base: i64) {
    assert!(read.windows(2).all(|w| w[0].0 < w[1].0), "offsets increase");
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (_, k, v) in read {
        seen.insert(k.clone(), v.clone());
    }
    assert_eq!(&seen, latest, "latest value of every key");
    let cleaned = read.iter().filter(|r| r.0 < active_base).count();
    assert!(
        cleaned <= KEYS,
        "{cleaned} records below the active segment"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_topic_keeps_the_latest_value_per_key() {
    let mut b = BrokerProc::start(&["log.retention.check.interval.ms=100"]);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .create()
        .expect("admin");
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "4096")
        .set("min.cleanable.dirty.ratio", "0.01");
    let r = admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .expect("create_topics");
    assert!(r[0].is_ok(), "{:?}", r[0]);

    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("enable.idempotence", "false")
        .set("linger.ms", "2")
        // Batches must fit a 4 KiB segment (Kafka refuses bigger ones too).
        .set("batch.size", "2048")
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
    let mut latest = BTreeMap::new();
    let mut deliveries = Vec::new();
    for i in 0..UPDATES {
        let key = format!("key-{}", i % KEYS);
        let value = format!("{key}-update-{i:0>80}");
        let record = FutureRecord::to(TOPIC).key(&key).payload(&value);
        match p.send_result(record) {
            Ok(d) => deliveries.push(d),
            Err((e, _)) => panic!("enqueue: {e}"),
        }
        latest.insert(key, value);
    }
    for d in deliveries {
        d.await.expect("delivery").expect("delivered");
    }

    let end = UPDATES as i64;
    let (read, active_base) = wait_for(60, "compaction to leave one record per key", || {
        let view = partition_view(&b)?;
        assert_eq!(view["log_end_offset"], end, "compaction keeps the log end");
        let active_base = view["segments"].as_array()?.last()?["base_offset"].as_i64()?;
        let read = read_all(&b, end)?;
        let cleaned = read.iter().filter(|r| r.0 < active_base).count();
        let active = (end - active_base) as usize;
        (read.len() <= KEYS + active && cleaned <= KEYS).then_some((read, active_base))
    });
    check(&read, &latest, active_base);
    assert!(read.len() < UPDATES / 2, "{} records left", read.len());
    let view = partition_view(&b).expect("partition");
    assert_eq!(view["log_start_offset"], 0);
    assert_eq!(view["segments"][0]["base_offset"], 0);

    // The compacted log reads the same after a restart.
    b.stop();
    b.restart();
    let again = wait_for(30, "a read after the restart", || read_all(&b, end));
    check(&again, &latest, active_base);
}
