//! Log compaction over the wire: a topic created with `cleanup.policy=compact` is cleaned by the
//! broker's retention loop, and a consumer reading from the beginning then sees the latest value
//! of every key (with gaps in the offsets), before and after a restart; written by a
//! transactional producer, the aborted records go and read_committed sees the same table.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{wait_for, BrokerProc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "compacted";
const KEYS: usize = 20;
const UPDATES: usize = 1_000;

fn partition_view(b: &BrokerProc) -> Option<serde_json::Value> {
    topic_view(b, TOPIC)
}

fn topic_view(b: &BrokerProc, topic: &str) -> Option<serde_json::Value> {
    let (status, body) = b.http_get("/api/v1/partitions");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    v.as_array()?.iter().find(|p| p["topic"] == topic).cloned()
}

/// Every (offset, key, value) from the beginning up to `end`, or `None` if the read did not
/// reach `end` within a few seconds.
fn read_all(b: &BrokerProc, end: i64) -> Option<Vec<(i64, String, String)>> {
    read_topic(b, TOPIC, "read_uncommitted", end)
}

/// `read_all` of `topic` at `isolation`.
fn read_topic(
    b: &BrokerProc,
    topic: &str,
    isolation: &str,
    end: i64,
) -> Option<Vec<(i64, String, String)>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("group.id", "rill-compaction-test")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
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

/// A transactional producer over a compacted topic: every third transaction aborts. The
/// cleaner removes the aborted records (a read_uncommitted reader no longer sees them below
/// the active segment) and superseded committed ones, and read_committed readers see the same
/// latest committed value of every key before and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_transactions_are_compacted_away() {
    const TXN_TOPIC: &str = "compacted-txn";
    const TXNS: usize = 60;
    const PER_TXN: usize = 10;
    let b = BrokerProc::start(&[
        "log.retention.check.interval.ms=100",
        "transaction.state.log.num.partitions=1",
    ]);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .create()
        .expect("admin");
    let topic = NewTopic::new(TXN_TOPIC, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "4096")
        .set("min.cleanable.dirty.ratio", "0.01")
        .set("delete.retention.ms", "100");
    let r = admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .expect("create_topics");
    assert!(r[0].is_ok(), "{:?}", r[0]);

    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("transactional.id", "compaction-writer")
        .set("linger.ms", "5")
        .set("batch.size", "2048")
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
    let t = Duration::from_secs(20);
    p.init_transactions(t).expect("init_transactions");
    let mut latest = BTreeMap::new();
    for txn in 0..TXNS {
        // The last transactions commit, so the producer's last batches (kept whole for its
        // state) hold no aborted record.
        let abort = txn % 3 == 2 && txn < TXNS - 8;
        p.begin_transaction().expect("begin");
        let mut written = Vec::new();
        for i in 0..PER_TXN {
            let key = format!("key-{}", (txn * PER_TXN + i) % KEYS);
            let value = format!(
                "{key}-txn-{txn}-{}-{i:0>60}",
                if abort { "abort" } else { "commit" }
            );
            let record = BaseRecord::<str, str>::to(TXN_TOPIC)
                .key(&key)
                .payload(&value);
            if let Err((e, _)) = p.send(record) {
                panic!("send: {e}");
            }
            written.push((key, value));
        }
        // librdkafka delivers (and reports) every message before it ends a transaction.
        p.flush(t).expect("flush");
        if abort {
            p.abort_transaction(t).expect("abort");
        } else {
            p.commit_transaction(t).expect("commit");
            latest.extend(written);
        }
    }

    let end = wait_for(10, "the log end", || {
        topic_view(&b, TXN_TOPIC)?["log_end_offset"].as_i64()
    });
    let committed_before =
        read_topic(&b, TXN_TOPIC, "read_committed", end - 1).expect("read_committed before");
    let table = |read: &[(i64, String, String)]| -> BTreeMap<String, String> {
        read.iter()
            .map(|(_, k, v)| (k.clone(), v.clone()))
            .collect()
    };
    assert_eq!(table(&committed_before), latest);

    // Wait for a pass that leaves no aborted record below the active segment.
    let (uncommitted, active_base) = wait_for(60, "aborted records compacted away", || {
        let view = topic_view(&b, TXN_TOPIC)?;
        let active_base = view["segments"].as_array()?.last()?["base_offset"].as_i64()?;
        let read = read_topic(&b, TXN_TOPIC, "read_uncommitted", end - 1)?;
        let aborted_below = read
            .iter()
            .filter(|(o, _, v)| *o < active_base && v.contains("-abort-"))
            .count();
        let below = read.iter().filter(|(o, _, _)| *o < active_base).count();
        (aborted_below == 0 && below <= KEYS + 5 * PER_TXN).then_some((read, active_base))
    });
    assert!(active_base > end / 2, "most of the log was cleanable");
    assert!(
        uncommitted.len() < TXNS * PER_TXN / 2,
        "{} of {} records left",
        uncommitted.len(),
        TXNS * PER_TXN
    );
    let committed_after =
        read_topic(&b, TXN_TOPIC, "read_committed", end - 1).expect("read_committed after");
    assert_eq!(table(&committed_after), latest);
    assert!(committed_after
        .iter()
        .all(|(_, _, v)| !v.contains("-abort-")));
}
