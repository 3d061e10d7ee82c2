//! The fuzz harness's inputs over real sockets against a real broker process: mutated frames
//! of every advertised request type (`RILL_FUZZ_SOCKET_FRAMES`, default 3000), every count
//! of every request type blown up in turn, lying size prefixes and truncated frames. The
//! broker must answer a healthy client throughout, never die, and keep its memory bounded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::fuzz::{self, Rng};
use common::wire::{call, connect};
use common::BrokerProc;
use kafka_protocol::messages::*;

/// Resident memory the broker may reach under all of this (peak, VmHWM).
const MAX_RSS_KB: u64 = 512 << 10;

fn healthy(b: &BrokerProc, corr: i32) {
    let mut s = connect(b);
    let r: ApiVersionsResponse = call(
        &mut s,
        ApiKey::ApiVersions,
        3,
        corr,
        &ApiVersionsRequest::default(),
    );
    assert_eq!(r.error_code, 0);
    let m: MetadataResponse = call(
        &mut s,
        ApiKey::Metadata,
        12,
        corr + 1,
        &MetadataRequest::default().with_topics(None),
    );
    assert!(!m.brokers.is_empty());
}

fn peak_rss_kb(b: &BrokerProc) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", b.pid()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A connection that sends frames and drains what comes back; reconnects when the broker
/// closes it (as it must for a malformed frame).
struct Sender<'a> {
    b: &'a BrokerProc,
    s: Option<TcpStream>,
    closed_by_broker: u64,
}

impl Sender<'_> {
    fn send(&mut self, frame: &[u8]) {
        let s = self.s.get_or_insert_with(|| {
            let s = connect(self.b);
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            s
        });
        let mut out = (frame.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(frame);
        if s.write_all(&out).is_err() {
            self.s = None;
            self.closed_by_broker += 1;
            return;
        }
        // A response, a close, or (a long-polling request) nothing for a while: any is fine.
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) | Err(_) => {
                self.s = None;
                self.closed_by_broker += 1;
            }
            Ok(_) => {
                // Drain the rest of a large response so the next request starts clean.
                let _ = s.set_read_timeout(Some(Duration::from_millis(5)));
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        self.s = None;
                        break;
                    }
                }
                if let Some(s) = &self.s {
                    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
                }
            }
        }
    }
}

#[test]
fn mutated_frames_over_a_socket_never_take_the_broker_down() {
    let b = BrokerProc::start(&["num.partitions=2", "group.initial.rebalance.delay.ms=0"]);
    let corpus = fuzz::load_corpus();
    let seeds: Vec<Vec<bytes::Bytes>> = fuzz::seeds(&corpus).into_values().collect();
    assert!(seeds.len() >= 30, "corpus missing");
    let advertised = fuzz::advertised();
    let frames = std::env::var("RILL_FUZZ_SOCKET_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000u64);
    let seed = 0x0050_C4E7_u64;
    let mut sender = Sender {
        b: &b,
        s: None,
        closed_by_broker: 0,
    };
    let t0 = Instant::now();
    for i in 0..frames {
        let mut rng = Rng::new(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let frame = if rng.one_in(5) {
            let (api, v) = advertised[rng.below(advertised.len())];
            fuzz::random_frame(&mut rng, api, v)
        } else {
            let group = &seeds[rng.below(seeds.len())];
            let f = &group[rng.below(group.len())];
            fuzz::mutate(&mut rng, f, &[])
        };
        sender.send(&frame);
        if i % 250 == 249 {
            healthy(&b, i as i32);
        }
    }
    healthy(&b, 1);
    let rss = peak_rss_kb(&b);
    eprintln!(
        "{frames} mutated frames in {:?}; the broker closed {} connections; peak RSS {} MiB",
        t0.elapsed(),
        sender.closed_by_broker,
        rss / 1024
    );
    assert!(rss < MAX_RSS_KB, "peak RSS {rss} kB");
}

/// For one frame of every request type, every 4-byte window set to 0x7fffffff and every byte
/// replaced by a maximal varint, in turn: each lands on a count, a length or something else,
/// and none may hurt the broker.
#[test]
fn oversized_counts_in_every_request_type() {
    let b = BrokerProc::start(&[]);
    let corpus = fuzz::load_corpus();
    let seeds = fuzz::seeds(&corpus);
    // The newest advertised version of each API, with the longest seed for it.
    let mut per_api: std::collections::BTreeMap<i16, (i16, bytes::Bytes)> = Default::default();
    for ((api, v), frames) in &seeds {
        if let Some(f) = frames.iter().max_by_key(|f| f.len()) {
            let e = per_api.entry(*api).or_insert((*v, f.clone()));
            if *v > e.0 {
                *e = (*v, f.clone());
            }
        }
    }
    assert!(per_api.len() >= 30, "{} request types", per_api.len());
    let mut sender = Sender {
        b: &b,
        s: None,
        closed_by_broker: 0,
    };
    let mut sent = 0;
    for (api, (_, frame)) in &per_api {
        // Past the API key, version and correlation id; at most 256 positions per type.
        let end = frame.len().min(8 + 256);
        for at in 8..end {
            let mut f = frame.to_vec();
            for (k, byte) in 0x7fff_ffffi32.to_be_bytes().iter().enumerate() {
                if let Some(slot) = f.get_mut(at + k) {
                    *slot = *byte;
                }
            }
            sender.send(&f);
            let mut g = frame.to_vec();
            g.splice(at..at + 1, [0xff, 0xff, 0xff, 0xff, 0x0f]);
            sender.send(&g);
            sent += 2;
        }
        healthy(&b, i32::from(*api));
    }
    let rss = peak_rss_kb(&b);
    eprintln!(
        "{sent} frames with oversized counts over {} request types; peak RSS {} MiB",
        per_api.len(),
        rss / 1024
    );
    assert!(rss < MAX_RSS_KB, "peak RSS {rss} kB");
}

#[test]
fn lying_size_prefixes_and_truncated_frames() {
    let b = BrokerProc::start(&[]);
    let corpus = fuzz::load_corpus();
    let frame = corpus
        .iter()
        .find(|e| e.api == ApiKey::Metadata)
        .expect("a Metadata frame")
        .request
        .clone();
    // Claims more than it sends, then closes: the broker drops the half frame.
    for claim in [frame.len() + 1, frame.len() * 2, 100 << 20] {
        let mut s = connect(&b);
        s.write_all(&(claim as i32).to_be_bytes()).expect("write");
        s.write_all(&frame).expect("write");
        drop(s);
    }
    // Claims less than it sends: the rest is read as the next frame's size and body.
    for short in [1usize, 4, frame.len() / 2] {
        let mut s = connect(&b);
        s.write_all(&(short as i32).to_be_bytes()).expect("write");
        s.write_all(&frame).expect("write");
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf);
    }
    // Negative and oversized prefixes, and a frame cut inside its size prefix.
    for prefix in [-1i32, i32::MIN, 0x7fff_ffff, (100 << 20) + 1] {
        let mut s = connect(&b);
        s.write_all(&prefix.to_be_bytes()).expect("write");
        let mut buf = [0u8; 1];
        assert!(
            matches!(s.read(&mut buf), Ok(0) | Err(_)),
            "prefix {prefix} closes"
        );
    }
    let mut s = connect(&b);
    s.write_all(&[0, 0]).expect("write");
    drop(s);
    healthy(&b, 1);
}

/// Regression (found by `oversized_counts_in_every_request_type`): a CreateTopics or
/// CreatePartitions asking for 2^31-1 partitions made placement reserve 51 GB and abort the
/// broker. Refused now with POLICY_VIOLATION before anything is placed.
#[test]
fn regression_a_huge_partition_count_is_refused() {
    let b = BrokerProc::start(&[]);
    let mut s = connect(&b);
    let create = |count: i32| {
        CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![create_topics_request::CreatableTopic::default()
                .with_name(TopicName(
                    kafka_protocol::protocol::StrBytes::from_static_str("huge"),
                ))
                .with_num_partitions(count)
                .with_replication_factor(1)])
    };
    let r: CreateTopicsResponse = call(&mut s, ApiKey::CreateTopics, 7, 1, &create(i32::MAX));
    assert_eq!(r.topics[0].error_code, 44, "POLICY_VIOLATION");
    let r: CreateTopicsResponse = call(&mut s, ApiKey::CreateTopics, 7, 2, &create(1));
    assert_eq!(r.topics[0].error_code, 0);
    let grow = CreatePartitionsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(TopicName(
                    kafka_protocol::protocol::StrBytes::from_static_str("huge"),
                ))
                .with_count(i32::MAX)
                .with_assignments(None),
        ]);
    let r: CreatePartitionsResponse = call(&mut s, ApiKey::CreatePartitions, 3, 3, &grow);
    assert_eq!(r.results[0].error_code, 44, "POLICY_VIOLATION");
    healthy(&b, 4);
}

/// A batch whose one record's value is `value_len` zero bytes, zstd-compressed without ever
/// holding the value (a few KB on the wire), with a valid header and CRC.
fn zstd_bomb(value_len: u64) -> bytes::Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    fn varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            if z < 0x80 {
                out.push(z as u8);
                return;
            }
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
    }
    let mut len_field = Vec::new();
    varint(&mut len_field, value_len as i64);
    let mut head = Vec::new();
    // length, attributes, timestamp delta, offset delta, key length 1 ("k"), value length
    varint(
        &mut head,
        (1 + 1 + 1 + 1 + 1 + len_field.len()) as i64 + value_len as i64 + 1,
    );
    head.extend_from_slice(&[0, 0, 0]);
    varint(&mut head, 1);
    head.push(b'k');
    head.extend_from_slice(&len_field);
    let stream = head
        .as_slice()
        .chain(std::io::repeat(0).take(value_len))
        .chain(&[0u8][..]);
    let mut compressed = Vec::new();
    zstd::stream::read::Encoder::new(stream, 1)
        .expect("encoder")
        .read_to_end(&mut compressed)
        .expect("compress");
    let template = {
        let mut buf = bytes::BytesMut::new();
        let r = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 1_700_000_000_000,
            key: Some(bytes::Bytes::from_static(b"k")),
            value: Some(bytes::Bytes::new()),
            headers: Default::default(),
        };
        RecordBatchEncoder::encode(
            &mut buf,
            [&r],
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::Zstd,
            },
        )
        .expect("encode");
        buf
    };
    let mut b = template[..61].to_vec();
    b.extend_from_slice(&compressed);
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    bytes::Bytes::from(b)
}

/// A 600 MB value that zstd shrinks to a few KB, produced to a compacted topic (whose null-key
/// check walks the records) and to a plain one (whose timestamp lookups walk them): the broker
/// never expands it (peak RSS stays far below 600 MB) and keeps answering.
#[test]
fn a_zstd_bomb_costs_the_broker_nothing() {
    let b = BrokerProc::start(&[]);
    let bomb = zstd_bomb(600 << 20);
    assert!(bomb.len() < 64 << 10, "{} bytes on the wire", bomb.len());
    let mut s = connect(&b);
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mk = |name: &'static str, compact: bool| {
        let mut t = create_topics_request::CreatableTopic::default()
            .with_name(TopicName(
                kafka_protocol::protocol::StrBytes::from_static_str(name),
            ))
            .with_num_partitions(1)
            .with_replication_factor(1);
        if compact {
            t = t.with_configs(vec![create_topics_request::CreatableTopicConfig::default()
                .with_name(kafka_protocol::protocol::StrBytes::from_static_str(
                    "cleanup.policy",
                ))
                .with_value(Some(kafka_protocol::protocol::StrBytes::from_static_str(
                    "compact",
                )))]);
        }
        t
    };
    let r: CreateTopicsResponse = call(
        &mut s,
        ApiKey::CreateTopics,
        7,
        1,
        &CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![mk("bomb-compact", true), mk("bomb-plain", false)]),
    );
    assert!(r.topics.iter().all(|t| t.error_code == 0), "{r:?}");
    let produce = |topic: &'static str| {
        ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(TopicName(
                    kafka_protocol::protocol::StrBytes::from_static_str(topic),
                ))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(bomb.clone())),
                ])])
    };
    let r: ProduceResponse = call(&mut s, ApiKey::Produce, 9, 2, &produce("bomb-compact"));
    let code = r.responses[0].partition_responses[0].error_code;
    assert_eq!(code, 87, "INVALID_RECORD: too large to check its keys");
    let r: ProduceResponse = call(&mut s, ApiKey::Produce, 9, 3, &produce("bomb-plain"));
    assert_eq!(
        r.responses[0].partition_responses[0].error_code, 0,
        "stored as sent"
    );
    // A timestamp lookup walks the stored batch: answered at batch granularity.
    let lookup = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(TopicName(
                kafka_protocol::protocol::StrBytes::from_static_str("bomb-plain"),
            ))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(1_700_000_000_000),
            ])]);
    let r: ListOffsetsResponse = call(&mut s, ApiKey::ListOffsets, 7, 4, &lookup);
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.offset), (0, 0));
    healthy(&b, 5);
    let rss = peak_rss_kb(&b);
    eprintln!(
        "a {}-byte zstd batch holding a 600 MB value: broker peak RSS {} MiB",
        bomb.len(),
        rss / 1024
    );
    assert!(rss < 200 << 10, "peak RSS {rss} kB");
}
