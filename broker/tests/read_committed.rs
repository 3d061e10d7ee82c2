//! The read path of transactions over the wire, against a real `rill-broker` process:
//! transactional batches produced as a transactional producer writes them (a raw Produce
//! with the transactional bit), then read_committed readers (raw Fetch and ListOffsets, and
//! librdkafka with `isolation.level=read_committed`) stop at the last stable offset while
//! read_uncommitted ones read through.
//!
//! No marker can be written from outside the broker yet (no transaction coordinator, no
//! WriteTxnMarkers), so the transaction here stays open; how the last stable offset moves when
//! a marker is appended and replicated is tested at the partition level
//! (`replica/partition/tests.rs`).

mod common;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::BrokerProc;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, ListOffsetsRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::Message;
use rdkafka::TopicPartitionList;
use rill_client::{Cluster, ConnectionConfig};

const TOPIC: &str = "txn-read";
/// The transactional producer's id (any id: nothing allocates them for this test).
const PID: i64 = 4242;

/// One batch of `n` records stamped from `ts`; `pid` >= 0 makes it an idempotent producer's,
/// `txn` sets the transactional bit.
fn batch(pid: i64, n: usize, txn: bool, ts: i64) -> Bytes {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: txn,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: if pid >= 0 { 0 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Sequences must advance with offsets or the encoder splits the batch.
            sequence: if pid >= 0 { i as i32 } else { (i as i32) - 1 },
            timestamp: ts + i as i64,
            key: None,
            value: Some(Bytes::from(format!("{ts}-{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).expect("encode");
    buf.freeze()
}

fn name() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

async fn produce(c: &Cluster, records: Bytes) -> i64 {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name())
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let resp = c.send_to_any(req).await.expect("produce");
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0, "{:?}", p.error_message);
    p.base_offset
}

/// A consumer's Fetch (v12: topics by name) from `offset` at `isolation`.
async fn fetch(c: &Cluster, offset: i64, isolation: i8) -> PartitionData {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_isolation_level(isolation)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name())
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    let mut conn = c.any_connection().await.expect("connection");
    let resp = conn.send_version(req, 12).await.expect("fetch");
    let pd = resp.responses[0].partitions[0].clone();
    assert_eq!(pd.error_code, 0);
    pd
}

/// Base offsets of the batches in a fetched blob.
fn base_offsets(records: &[u8]) -> Vec<i64> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let (Some(base), Some(len)) = (records.get(at..at + 8), records.get(at + 8..at + 12)) {
        out.push(i64::from_be_bytes(base.try_into().expect("8 bytes")));
        at += 12 + i32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
    }
    out
}

/// ListOffsets for `timestamp` (or LATEST -1, MAX_TIMESTAMP -3) at `isolation`: the offset.
async fn list_offsets(c: &Cluster, timestamp: i64, isolation: i8) -> i64 {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name())
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(timestamp)])]);
    let resp = c.send_to_any(req).await.expect("list offsets");
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

/// The offsets librdkafka delivers from the start at `isolation` until end of partition.
fn consume_to_eof(bootstrap: &str, isolation: &str) -> Vec<i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "rill-test-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, rdkafka::Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "no end of partition; got {out:?}"
        );
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(m.offset()),
            Some(Err(RdKafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_readers_stop_at_an_open_transaction() {
    let b = BrokerProc::start(&[]);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .create()
        .expect("admin");
    let created = admin
        .create_topics(
            [&NewTopic::new(TOPIC, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create_topics");
    assert!(created[0].is_ok(), "{:?}", created[0]);
    let c = Cluster::connect(&b.bootstrap, ConnectionConfig::default())
        .await
        .expect("connect");

    assert_eq!(produce(&c, batch(-1, 2, false, 1_000)).await, 0); // 0-1
    assert_eq!(produce(&c, batch(PID, 2, true, 2_000)).await, 2); // 2-3, left open
    assert_eq!(produce(&c, batch(-1, 1, false, 3_000)).await, 4); // 4

    // Raw Fetch: read_committed stops at the open transaction, with an (empty) aborted
    // list; read_uncommitted reads through with a null list. Both carry the LSO.
    let committed = fetch(&c, 0, 1).await;
    assert_eq!(
        (committed.high_watermark, committed.last_stable_offset),
        (5, 2)
    );
    assert_eq!(
        base_offsets(&committed.records.clone().unwrap_or_default()),
        vec![0]
    );
    assert_eq!(committed.aborted_transactions, Some(vec![]));
    let uncommitted = fetch(&c, 0, 0).await;
    assert_eq!(
        (uncommitted.high_watermark, uncommitted.last_stable_offset),
        (5, 2)
    );
    assert_eq!(
        base_offsets(&uncommitted.records.clone().unwrap_or_default()),
        vec![0, 2, 4]
    );
    assert_eq!(uncommitted.aborted_transactions, None);
    let at_lso = fetch(&c, 2, 1).await;
    assert!(at_lso.records.unwrap_or_default().is_empty());

    // ListOffsets LATEST: the LSO under read_committed, the high watermark otherwise; a
    // lookup that lands at or past that bound answers no offset.
    let both = |ts| {
        let c = &c;
        async move { (list_offsets(c, ts, 1).await, list_offsets(c, ts, 0).await) }
    };
    assert_eq!(both(-1).await, (2, 5), "LATEST");
    assert_eq!(both(1_001).await, (1, 1), "below the LSO");
    assert_eq!(both(2_000).await, (-1, 2), "inside the open transaction");
    assert_eq!(both(3_000).await, (-1, 4), "after it");
    assert_eq!(both(-3).await, (-1, 4), "MAX_TIMESTAMP");

    // librdkafka: read_committed reaches its end of partition at the LSO.
    let bootstrap = b.bootstrap.clone();
    let (committed, uncommitted) = tokio::task::spawn_blocking(move || {
        (
            consume_to_eof(&bootstrap, "read_committed"),
            consume_to_eof(&bootstrap, "read_uncommitted"),
        )
    })
    .await
    .expect("consumers");
    assert_eq!(committed, vec![0, 1]);
    assert_eq!(uncommitted, vec![0, 1, 2, 3, 4]);
}
