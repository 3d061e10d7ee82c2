//! Interop with librdkafka (through the `rdkafka` crate) against a real `rill-broker` process.

mod common;

use std::time::Duration;

use common::BrokerProc;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, Timestamp, TopicPartitionList};

const T: Duration = Duration::from_secs(20);

fn producer(b: &BrokerProc, extra: &[(&str, &str)]) -> FutureProducer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &b.bootstrap)
        .set("message.timeout.ms", "20000")
        .set("linger.ms", "5");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("producer")
}

fn consumer(b: &BrokerProc) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("group.id", "rill-test-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer")
}

fn admin(b: &BrokerProc) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .create()
        .expect("admin")
}

/// Reads exactly `n` messages from the given partitions starting at `offset`.
fn read_n(
    c: &BaseConsumer,
    topic: &str,
    partitions: &[i32],
    offset: Offset,
    n: usize,
) -> Vec<rdkafka::message::OwnedMessage> {
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(topic, *p, offset).expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while out.len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "read {} of {n} messages before the deadline",
            out.len()
        );
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            out.push(m.expect("consume error").detach());
        }
    }
    out
}

async fn create_topic(
    a: &AdminClient<DefaultClientContext>,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    let r = a
        .create_topics([&t], &AdminOptions::new())
        .await
        .expect("create_topics");
    assert!(r[0].is_ok(), "create {name}: {:?}", r[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_consume_keys_headers_nulls_timestamps() {
    let b = BrokerProc::start(&[]);
    create_topic(&admin(&b), "events", 3, &[]).await;
    let p = producer(&b, &[]);
    let mut sent = Vec::new();
    for i in 0..300i64 {
        let key = format!("key-{i}");
        let value = format!("value-{i}");
        let part = (i % 3) as i32;
        let ts = 1_700_000_000_000 + i;
        let mut rec = FutureRecord::to("events")
            .key(&key)
            .partition(part)
            .timestamp(ts)
            .headers(OwnedHeaders::new().insert(Header {
                key: "h",
                value: Some(&format!("hv-{i}")),
            }));
        if i % 10 != 0 {
            rec = rec.payload(&value);
        }
        let d = p.send(rec, T).await.expect("delivery");
        assert_eq!(d.partition, part);
        sent.push((
            part,
            d.offset,
            key,
            (i % 10 != 0).then_some(value),
            ts,
            format!("hv-{i}"),
        ));
    }
    // Offsets are consecutive per partition, from 0.
    for part in 0..3 {
        let offs: Vec<i64> = sent.iter().filter(|s| s.0 == part).map(|s| s.1).collect();
        assert_eq!(offs, (0..100).collect::<Vec<_>>());
    }
    let c = consumer(&b);
    let got = read_n(&c, "events", &[0, 1, 2], Offset::Beginning, 300);
    assert_eq!(got.len(), 300);
    for m in &got {
        let s = sent
            .iter()
            .find(|s| s.0 == m.partition() && s.1 == m.offset())
            .expect("message was sent");
        assert_eq!(m.key(), Some(s.2.as_bytes()));
        assert_eq!(
            m.payload(),
            s.3.as_ref().map(|v| v.as_bytes()),
            "null values stay null"
        );
        assert_eq!(m.timestamp(), Timestamp::CreateTime(s.4));
        let h = m.headers().expect("headers").get(0);
        assert_eq!(h.key, "h");
        assert_eq!(h.value, Some(s.5.as_bytes()));
    }
    // Seek back into the middle of partition 1.
    c.seek("events", 1, Offset::Offset(42), T).expect("seek");
    let mut next = None;
    let deadline = std::time::Instant::now() + T;
    while next.is_none() && std::time::Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            let m = m.expect("msg");
            if m.partition() == 1 {
                next = Some(m.offset());
            }
        }
    }
    assert_eq!(next, Some(42));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_codec_round_trips() {
    let b = BrokerProc::start(&[]);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        let p = producer(&b, &[("compression.codec", codec), ("linger.ms", "20")]);
        let futures: Vec<_> = (0..200)
            .map(|i| {
                let v = format!("{codec}-{i}-{}", "x".repeat(100));
                p.send_result(FutureRecord::<(), _>::to(&topic).payload(&v))
                    .map_err(|(e, _)| e)
                    .expect("enqueued")
            })
            .collect();
        for f in futures {
            f.await.expect("not cancelled").expect("delivered");
        }
        let c = consumer(&b);
        let got = read_n(&c, &topic, &[0], Offset::Beginning, 200);
        let mut values: Vec<String> = got
            .iter()
            .map(|m| String::from_utf8(m.payload().expect("payload").to_vec()).expect("utf8"))
            .collect();
        values.sort();
        let mut want: Vec<String> = (0..200)
            .map(|i| format!("{codec}-{i}-{}", "x".repeat(100)))
            .collect();
        want.sort();
        assert_eq!(values, want, "codec {codec}");
        let offsets: Vec<i64> = got.iter().map(|m| m.offset()).collect();
        assert_eq!(
            offsets,
            (0..200).collect::<Vec<_>>(),
            "codec {codec}: offsets in order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_writes_each_record_once() {
    let b = BrokerProc::start(&[]);
    let p = producer(
        &b,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("max.in.flight.requests.per.connection", "5"),
        ],
    );
    // send_result enqueues at once: up to 5 requests in flight, as the idempotent producer allows.
    let futures: Vec<_> = (0..1000)
        .map(|i| {
            p.send_result(FutureRecord::<(), _>::to("idem").payload(&format!("{i}")))
                .map_err(|(e, _)| e)
                .expect("enqueued")
        })
        .collect();
    let mut offsets = Vec::new();
    for f in futures {
        offsets.push(f.await.expect("not cancelled").expect("delivered").offset);
    }
    offsets.sort();
    assert_eq!(offsets, (0..1000).collect::<Vec<_>>());
    let c = consumer(&b);
    let got = read_n(&c, "idem", &[0], Offset::Beginning, 1000);
    let values: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string())
        .collect();
    assert_eq!(
        values,
        (0..1000).map(|i| i.to_string()).collect::<Vec<_>>(),
        "in order, exactly once"
    );
    let (lo, hi) = c.fetch_watermarks("idem", 0, T).expect("watermarks");
    assert_eq!((lo, hi), (0, 1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_operations() {
    let b = BrokerProc::start(&[]);
    let a = admin(&b);
    let opts = AdminOptions::new().operation_timeout(Some(T));
    create_topic(
        &a,
        "adm",
        2,
        &[("retention.ms", "3600000"), ("cleanup.policy", "delete")],
    )
    .await;

    // Duplicate and invalid creations are refused with Kafka's errors.
    let dup = a
        .create_topics(
            [&NewTopic::new("adm", 1, TopicReplication::Fixed(1))],
            &opts,
        )
        .await
        .expect("rpc");
    assert_eq!(
        dup[0].as_ref().unwrap_err().1,
        rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists
    );
    let bad = a
        .create_topics(
            [&NewTopic::new("bad name!", 1, TopicReplication::Fixed(1))],
            &opts,
        )
        .await
        .expect("rpc");
    assert_eq!(
        bad[0].as_ref().unwrap_err().1,
        rdkafka::types::RDKafkaErrorCode::InvalidTopic
    );
    let badcfg = a
        .create_topics(
            [&NewTopic::new("badcfg", 1, TopicReplication::Fixed(1)).set("retention.ms", "soon")],
            &opts,
        )
        .await
        .expect("rpc");
    assert_eq!(
        badcfg[0].as_ref().unwrap_err().1,
        rdkafka::types::RDKafkaErrorCode::InvalidConfig
    );

    // Describe: the override and the defaults with their sources.
    let d = a
        .describe_configs([&ResourceSpecifier::Topic("adm")], &opts)
        .await
        .expect("describe");
    let res = d[0].as_ref().expect("describe ok");
    let get = |k: &str| res.get(k).unwrap_or_else(|| panic!("{k} described"));
    assert_eq!(get("retention.ms").value.as_deref(), Some("3600000"));
    assert_eq!(
        get("retention.ms").source,
        rdkafka::admin::ConfigSource::DynamicTopic
    );
    assert_eq!(get("segment.bytes").value.as_deref(), Some("1073741824"));
    assert_eq!(
        get("segment.bytes").source,
        rdkafka::admin::ConfigSource::Default
    );
    assert!(
        res.entries.len() >= 20,
        "every topic config is described, got {}",
        res.entries.len()
    );

    // Alter (legacy AlterConfigs replaces the override set).
    let r = a
        .alter_configs(
            [&AlterConfig::new(ResourceSpecifier::Topic("adm"))
                .set("retention.ms", "1000")
                .set("max.message.bytes", "2000000")],
            &opts,
        )
        .await
        .expect("alter");
    assert!(r[0].is_ok(), "{:?}", r[0]);
    let d = a
        .describe_configs([&ResourceSpecifier::Topic("adm")], &opts)
        .await
        .expect("describe");
    let res = d[0].as_ref().expect("ok");
    assert_eq!(
        res.get("retention.ms").and_then(|e| e.value.as_deref()),
        Some("1000")
    );
    assert_eq!(
        res.get("cleanup.policy").map(|e| &e.source),
        Some(&rdkafka::admin::ConfigSource::Default),
        "AlterConfigs replaces the whole set"
    );
    // rust-rdkafka drops per-resource AlterConfigs errors (it maps every resource to Ok), so
    // the refusal is checked by its effect here and by error code in bad_input.rs.
    a.alter_configs(
        [&AlterConfig::new(ResourceSpecifier::Topic("adm")).set("retention.ms", "-7")],
        &opts,
    )
    .await
    .expect("alter");
    let d = a
        .describe_configs([&ResourceSpecifier::Topic("adm")], &opts)
        .await
        .expect("describe");
    assert_eq!(
        d[0].as_ref()
            .expect("ok")
            .get("retention.ms")
            .and_then(|e| e.value.as_deref()),
        Some("1000"),
        "bad value refused, old value kept"
    );

    // Partitions: grow, refuse shrink.
    let r = a
        .create_partitions([&NewPartitions::new("adm", 4)], &opts)
        .await
        .expect("create_partitions");
    assert!(r[0].is_ok(), "{:?}", r[0]);
    let r = a
        .create_partitions([&NewPartitions::new("adm", 3)], &opts)
        .await
        .expect("create_partitions");
    assert_eq!(
        r[0].as_ref().unwrap_err().1,
        rdkafka::types::RDKafkaErrorCode::InvalidPartitions
    );
    let md = a.inner().fetch_metadata(Some("adm"), T).expect("metadata");
    assert_eq!(md.topics()[0].partitions().len(), 4);

    // Delete records below offset 5 of partition 0.
    let p = producer(&b, &[]);
    for i in 0..10 {
        p.send(
            FutureRecord::<(), _>::to("adm")
                .partition(0)
                .payload(&format!("{i}")),
            T,
        )
        .await
        .expect("sent");
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("adm", 0, Offset::Offset(5))
        .expect("tpl");
    let r = a.delete_records(&tpl, &opts).await.expect("delete_records");
    assert_eq!(
        r.find_partition("adm", 0).expect("p0").offset(),
        Offset::Offset(5)
    );
    let c = consumer(&b);
    assert_eq!(c.fetch_watermarks("adm", 0, T).expect("wm"), (5, 10));
    let got = read_n(&c, "adm", &[0], Offset::Beginning, 5);
    assert_eq!(
        got[0].offset(),
        5,
        "reading from the beginning starts at the new log start"
    );

    // Delete the topic.
    let r = a.delete_topics(&["adm"], &opts).await.expect("delete");
    assert!(r[0].is_ok());
    let r = a.delete_topics(&["adm"], &opts).await.expect("delete");
    assert_eq!(
        r[0].as_ref().unwrap_err().1,
        rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_by_timestamp() {
    let b = BrokerProc::start(&[]);
    let p = producer(&b, &[("linger.ms", "0")]);
    for i in 0..50i64 {
        p.send(
            FutureRecord::<(), _>::to("times")
                .payload("x")
                .timestamp(1_000_000 + i * 1000),
            T,
        )
        .await
        .expect("sent");
    }
    let c = consumer(&b);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("times", 0, Offset::Offset(1_000_000 + 20_500))
        .expect("tpl");
    let r = c.offsets_for_times(tpl, T).expect("offsets_for_times");
    assert_eq!(
        r.find_partition("times", 0).expect("p").offset(),
        Offset::Offset(21)
    );
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("times", 0, Offset::Offset(9_000_000))
        .expect("tpl");
    let r = c.offsets_for_times(tpl, T).expect("offsets_for_times");
    assert_eq!(
        r.find_partition("times", 0).expect("p").offset(),
        Offset::End,
        "past the last timestamp: no offset"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_append_time_topics_stamp_records() {
    let b = BrokerProc::start(&[]);
    create_topic(
        &admin(&b),
        "lat",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    let p = producer(&b, &[]);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    p.send(
        FutureRecord::<(), _>::to("lat").payload("x").timestamp(42),
        T,
    )
    .await
    .expect("sent");
    let c = consumer(&b);
    let got = read_n(&c, "lat", &[0], Offset::Beginning, 1);
    match got[0].timestamp() {
        Timestamp::LogAppendTime(t) => assert!(t >= before, "log append time {t} >= {before}"),
        other => panic!("expected LogAppendTime, got {other:?}"),
    }
}
