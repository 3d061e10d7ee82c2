//! Cluster checks shared by the replication and fault tests: partition state from Metadata,
//! offsets from the HTTP API, numbered acks=all writes and reading them all back.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::{wait_for, BrokerProc};

pub const T: Duration = Duration::from_secs(30);

/// One partition as a node's Metadata reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct PartInfo {
    pub leader: i32,
    pub epoch: i32,
    pub isr: Vec<i32>,
    pub replicas: Vec<i32>,
}

/// Sends one request on a fresh connection; `None` if the node does not answer.
pub fn try_call<Q: kafka_protocol::protocol::Encodable, R: Decodable>(
    addr: &str,
    key: ApiKey,
    version: i16,
    req: &Q,
) -> Option<R> {
    let sock = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(15))).ok()?;
    s.write_all(&super::wire::frame(key, version, 7, req))
        .ok()?;
    let mut b = super::wire::read_frame(&mut s)?;
    ResponseHeader::decode(&mut b, key.response_header_version(version)).ok()?;
    R::decode(&mut b, version).ok()
}

/// Sends one request, again while the answer's `code` is COORDINATOR_LOAD_IN_PROGRESS (14) or
/// COORDINATOR_NOT_AVAILABLE (15) (a coordinator still loading or its topic being created),
/// for at most 30 s; the last answer either way.
pub fn call_retrying<Q: kafka_protocol::protocol::Encodable, R: Decodable>(
    addr: &str,
    key: ApiKey,
    version: i16,
    req: &Q,
    code: impl Fn(&R) -> i16,
) -> R {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r: R = try_call(addr, key, version, req).expect("answer");
        if ![14, 15].contains(&code(&r)) || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// InitProducerId (v5) for transactional id `id` at `addr` (retried while its coordinator
/// loads): the producer id and epoch.
pub fn init_transactional(addr: &str, id: &str) -> (i64, i16) {
    let r: InitProducerIdResponse = call_retrying(
        addr,
        ApiKey::InitProducerId,
        5,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_string(id.to_string()))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
        |r: &InitProducerIdResponse| r.error_code,
    );
    assert_eq!(r.error_code, 0, "{r:?}");
    (r.producer_id.0, r.producer_epoch)
}

/// One transactional offset commit: `offset` for `group` on `topic`-0, by the transactional
/// producer `id` at `producer_id`/`epoch`.
pub struct TxnCommit<'a> {
    pub id: &'a str,
    pub producer_id: i64,
    pub epoch: i16,
    pub group: &'a str,
    pub topic: &'a str,
    pub offset: i64,
}

/// TxnOffsetCommit at `version` to `addr` (retried while the group coordinator loads): the
/// partition's error code.
pub fn txn_offset_commit(addr: &str, version: i16, c: &TxnCommit<'_>) -> i16 {
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    let sb = |s: &str| StrBytes::from_string(s.to_string());
    let r: TxnOffsetCommitResponse = call_retrying(
        addr,
        ApiKey::TxnOffsetCommit,
        version,
        &TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(sb(c.id)))
            .with_group_id(GroupId(sb(c.group)))
            .with_producer_id(ProducerId(c.producer_id))
            .with_producer_epoch(c.epoch)
            .with_generation_id(-1)
            .with_member_id(sb(""))
            .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(sb(c.topic)))
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(c.offset)])]),
        |r: &TxnOffsetCommitResponse| {
            r.topics
                .first()
                .and_then(|t| t.partitions.first())
                .map_or(-1, |p| p.error_code)
        },
    );
    r.topics[0].partitions[0].error_code
}

pub fn partition_info(b: &BrokerProc, topic: &str) -> Option<PartInfo> {
    partition_info_at(&b.bootstrap, topic)
}

/// Partition 0 of `topic` as the broker at `addr` reports it in Metadata.
pub fn partition_info_at(addr: &str, topic: &str) -> Option<PartInfo> {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(TopicName(StrBytes::from_string(topic.into()))))]));
    let r: MetadataResponse = try_call(addr, ApiKey::Metadata, 12, &req)?;
    let t = r.topics.first()?;
    let p = t.partitions.first()?;
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    Some(PartInfo {
        leader: p.leader_id.0,
        epoch: p.leader_epoch,
        isr: ids(&p.isr_nodes),
        replicas: ids(&p.replica_nodes),
    })
}

/// (log end offset, high watermark) of `topic`-0 on a node, from its HTTP API.
pub fn offsets(b: &BrokerProc, topic: &str) -> Option<(i64, i64)> {
    let (status, body) = b.http_get("/api/v1/partitions");
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v.as_array()?
        .iter()
        .find(|p| p["topic"] == topic && p["partition"] == 0)
        .and_then(|p| Some((p["log_end_offset"].as_i64()?, p["high_watermark"].as_i64()?)))
}

pub async fn create_topic(bootstrap: &str, topic: NewTopic<'_>) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin");
    let r = admin
        .create_topics([&topic], &AdminOptions::new().operation_timeout(Some(T)))
        .await
        .expect("rpc");
    r[0].clone().expect("topic created");
}

pub fn producer(bootstrap: &str) -> FutureProducer {
    let mut cfg = ClientConfig::new();
    // librdkafka's own debug contexts when diagnosing a test (e.g. `msg,eos,topic,broker`).
    if let Ok(d) = std::env::var("RDKAFKA_DEBUG") {
        cfg.set("debug", d);
    }
    cfg.set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("request.timeout.ms", "10000")
        .set("message.timeout.ms", "120000")
        .set("retry.backoff.ms", "50")
        .set("retry.backoff.max.ms", "200")
        .create()
        .expect("producer")
}

/// Produces records numbered `from..to` (pipelined) and returns the acknowledged numbers.
pub async fn produce_range(p: &FutureProducer, topic: &str, from: usize, to: usize) -> Vec<usize> {
    let futs: Vec<_> = (from..to)
        .map(|i| {
            let f = p
                .send_result(
                    FutureRecord::<(), _>::to(topic)
                        .partition(0)
                        .payload(&format!("{i}")),
                )
                .map_err(|(e, _)| e)
                .expect("enqueued");
            (i, f)
        })
        .collect();
    let mut acked = Vec::new();
    for (i, f) in futs {
        match f.await.expect("not cancelled") {
            Ok(_) => acked.push(i),
            Err((e, _)) => eprintln!("record {i} not acknowledged: {e}"),
        }
    }
    acked
}

/// Waits until every live node reports the same log end offset and high watermark for
/// `topic`-0, at least `min`, and returns it.
pub fn wait_same_offsets(nodes: &[&BrokerProc], topic: &str, min: i64) -> i64 {
    wait_for(60, "every replica at the same LEO and HW", || {
        let all: Vec<_> = nodes.iter().map(|n| offsets(n, topic)).collect();
        let first = (*all.first()?)?;
        (first.0 >= min && first.0 == first.1 && all.iter().all(|o| *o == Some(first)))
            .then_some(first.0)
    })
}

/// A consumer assigned to `topic`-0 from its first offset (no group membership, no
/// commits): what the checks read partitions with.
pub fn reader_from_start(bootstrap: &str, topic: &str) -> BaseConsumer {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "check")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    c
}

/// Every record value of `topic`/`partition` up to its end, as a consumer at `isolation`
/// (`read_committed` or `read_uncommitted`) sees it.
pub fn read_to_end(bootstrap: &str, topic: &str, partition: i32, isolation: &str) -> Vec<String> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "rill-txn-test-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + T;
    loop {
        assert!(
            Instant::now() < deadline,
            "no end of partition within {T:?}"
        );
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into())
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("consume: {e}"),
            None => {}
        }
    }
}

/// Reads `topic`-0 from the beginning up to `end` through whichever node leads it.
pub fn read_all(bootstrap: &str, topic: &str, end: i64) -> Vec<(i64, usize)> {
    let c = reader_from_start(bootstrap, topic);
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.last().is_none_or(|(o, _)| *o + 1 < end) && Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            let m = m.expect("message");
            let n: usize = String::from_utf8_lossy(m.payload().unwrap_or_default())
                .parse()
                .expect("numbered record");
            out.push((m.offset(), n));
        }
    }
    out
}

/// A raw Produce v9 of one small batch; the partition's error code, or `None` if the node did
/// not answer.
pub fn produce_raw(b: &BrokerProc, topic: &str, acks: i16, timeout_ms: i32) -> Option<i16> {
    let req = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(super::wire::batch(3).freeze())),
            ])]);
    let r: ProduceResponse = try_call(&b.bootstrap, ApiKey::Produce, 9, &req)?;
    Some(r.responses.first()?.partition_responses.first()?.error_code)
}

/// The checker of every fault test: the numbers read back (`got`, in offset order) hold every
/// acknowledged number exactly once and in acknowledgement order, and no number twice.
/// Returns the numbers read.
pub fn assert_acked_exactly_once(got: &[(i64, usize)], acked: &[usize]) -> Vec<usize> {
    let values: Vec<usize> = got.iter().map(|(_, n)| *n).collect();
    let acked_set: std::collections::HashSet<usize> = acked.iter().copied().collect();
    let seen_acked: Vec<usize> = values
        .iter()
        .copied()
        .filter(|n| acked_set.contains(n))
        .collect();
    assert_eq!(
        seen_acked, acked,
        "every acknowledged record exactly once and in order"
    );
    let distinct: std::collections::HashSet<usize> = values.iter().copied().collect();
    assert_eq!(distinct.len(), values.len(), "no record twice");
    values
}
