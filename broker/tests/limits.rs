//! Resource limits that refuse cleanly, against real broker processes: connection floods and
//! slow writers while a healthy client is served, per-address and total connection limits,
//! idle connections, the request-memory budget, a node under a low file limit hosting far
//! more partitions than it has descriptors, and `max.broker.partitions` refusing a
//! CreateTopics (POLICY_VIOLATION) while the node serves what it has.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::wire::{batch, call, connect, frame, response};
use common::{BrokerProc, Launch};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn metadata(s: &mut TcpStream, corr: i32) -> MetadataResponse {
    call(s, ApiKey::Metadata, 12, corr, &MetadataRequest::default())
}

/// `n` Metadata round trips on one connection: their latencies, sorted.
fn metadata_latencies(b: &BrokerProc, n: usize) -> Vec<Duration> {
    let mut s = connect(b);
    metadata(&mut s, 0);
    let mut v: Vec<Duration> = (1..=n as i32)
        .map(|corr| {
            let t = Instant::now();
            metadata(&mut s, corr);
            t.elapsed()
        })
        .collect();
    v.sort();
    v
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// True once the peer has closed `s` (read returns 0 or a reset) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).expect("timeout");
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn metric(b: &BrokerProc, name: &str) -> f64 {
    let (status, body) = b.http_get("/metrics");
    assert_eq!(status, 200);
    body.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// 1,000 idle connections and 300 slow writers (a frame's size prefix, then a byte every
/// 100 ms): a healthy client's Metadata p99 stays under 50 ms, and the slow writers are cut off
/// by `socket.request.read.timeout.ms`.
#[test]
fn a_healthy_client_is_served_through_a_connection_flood() {
    let b = BrokerProc::start(&["socket.request.read.timeout.ms=4000"]);
    let idle = metadata_latencies(&b, 300);
    let mut idle_conns: Vec<TcpStream> = (0..1000).map(|_| connect(&b)).collect();
    let mut slow: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = connect(&b);
            s.write_all(&(1i32 << 20).to_be_bytes()).expect("prefix");
            s
        })
        .collect();
    common::wait_for(20, "1,300 connections counted", || {
        (metric(&b, "kafka_server_socket_server_metrics_connection_count") >= 1300.0).then_some(())
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dribble = {
        let stop = stop.clone();
        let mut slow: Vec<TcpStream> = slow.iter().map(|s| s.try_clone().expect("clone")).collect();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for s in &mut slow {
                    let _ = s.write_all(&[0]);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let flooded = metadata_latencies(&b, 300);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    dribble.join().expect("dribbler");
    eprintln!(
        "Metadata round trip p50/p99/max: idle {:?}/{:?}/{:?}; with 1,000 idle connections and 300 slow writers {:?}/{:?}/{:?}",
        pct(&idle, 0.5),
        pct(&idle, 0.99),
        idle.last().unwrap(),
        pct(&flooded, 0.5),
        pct(&flooded, 0.99),
        flooded.last().unwrap()
    );
    assert!(
        pct(&flooded, 0.99) < Duration::from_millis(50),
        "Metadata p99 under the flood: {:?}",
        pct(&flooded, 0.99)
    );
    // The slow writers' frames never complete: each is closed once its read deadline passes.
    for s in &mut slow {
        assert!(
            closed_within(s, Duration::from_secs(20)),
            "a slow writer was not cut off"
        );
    }
    assert!(metric(&b, "rill_connections_closed_total{reason=\"slow_request\"}") >= 300.0);
    // The idle ones are still open (connections.max.idle.ms is 10 minutes) and still served.
    let mut s = idle_conns.pop().expect("a connection");
    metadata(&mut s, 7);
    let _ = metric(&b, "rill_request_bytes_queued");
    assert_eq!(
        metric(&b, "rill_request_bytes_queued"),
        0.0,
        "slow writers' bytes given back"
    );
}

#[test]
fn idle_connections_are_closed_after_connections_max_idle_ms() {
    let b = BrokerProc::start(&["connections.max.idle.ms=500"]);
    let mut s = connect(&b);
    metadata(&mut s, 1);
    assert!(closed_within(&mut s, Duration::from_secs(10)));
    assert!(metric(&b, "rill_connections_closed_total{reason=\"idle\"}") >= 1.0);
    // A busy connection is not idle.
    let mut busy = connect(&b);
    for corr in 0..10 {
        metadata(&mut busy, corr);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn one_address_gets_at_most_max_connections_per_ip() {
    let b = BrokerProc::start(&["max.connections.per.ip=5"]);
    let mut held: Vec<TcpStream> = (0..5).map(|_| connect(&b)).collect();
    for (i, s) in held.iter_mut().enumerate() {
        metadata(s, i as i32);
    }
    let mut sixth = connect(&b);
    assert!(
        closed_within(&mut sixth, Duration::from_secs(10)),
        "the sixth connection from 127.0.0.1 must be closed"
    );
    assert_eq!(
        metric(&b, "rill_connections_refused_total{reason=\"per_ip\"}"),
        1.0
    );
    drop(held.pop());
    // The count drops with the close; poll until a new connection is served.
    common::wait_for(10, "a connection slot freed for 127.0.0.1", || {
        let mut s = connect(&b);
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(&frame(ApiKey::Metadata, 12, 1, &MetadataRequest::default()))
            .ok()?;
        common::wire::read_frame(&mut s).map(|_| ())
    });
}

#[test]
fn at_max_connections_new_clients_wait_for_a_slot() {
    let b = BrokerProc::start(&["max.connections=3"]);
    // The HTTP scrape does not count: only Kafka connections do.
    let mut held: Vec<TcpStream> = (0..3).map(|_| connect(&b)).collect();
    for (i, s) in held.iter_mut().enumerate() {
        metadata(s, i as i32);
    }
    let mut waiting = connect(&b);
    waiting
        .write_all(&frame(ApiKey::Metadata, 12, 9, &MetadataRequest::default()))
        .expect("write");
    waiting
        .set_read_timeout(Some(Duration::from_millis(800)))
        .expect("timeout");
    let mut one = [0u8; 1];
    assert!(
        matches!(waiting.read(&mut one), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
        "no service beyond max.connections"
    );
    drop(held.remove(0));
    waiting
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let r: MetadataResponse = response(&mut waiting, ApiKey::Metadata, 12, 9);
    assert!(!r.brokers.is_empty(), "served once a slot freed");
}

/// Partial frames hold only the bytes that arrived, bounded by `queued.max.request.bytes`,
/// and the budget comes back when their connections are closed; meanwhile small requests are
/// served.
#[test]
fn request_memory_is_what_arrived_and_is_bounded() {
    let b = BrokerProc::start(&[
        "socket.request.max.bytes=1048576",
        "queued.max.request.bytes=2097152",
    ]);
    // Each claims 1 MiB and sends 600 KiB: 3 x 600 KiB > the 2 MiB budget, so the third
    // waits for memory.
    let partial = vec![0u8; 600 << 10];
    let mut senders: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = connect(&b);
            s.write_all(&(1i32 << 20).to_be_bytes()).expect("prefix");
            s
        })
        .collect();
    let writers: Vec<_> = senders
        .iter()
        .map(|s| {
            let mut s = s.try_clone().expect("clone");
            let data = partial.clone();
            std::thread::spawn(move || {
                let _ = s.write_all(&data);
            })
        })
        .collect();
    let held = common::wait_for(20, "partial frames buffered", || {
        let q = metric(&b, "rill_request_bytes_queued");
        (q >= (1200 << 10) as f64).then_some(q)
    });
    assert!(held <= (2 << 20) as f64, "over the budget: {held}");
    // A claimed size costs nothing by itself: 50 more connections that only send a 1 MiB
    // size prefix add no bytes.
    let claims: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = connect(&b);
            s.write_all(&(1i32 << 20).to_be_bytes()).expect("prefix");
            s
        })
        .collect();
    let mut healthy = connect(&b);
    metadata(&mut healthy, 1);
    assert!(metric(&b, "rill_request_bytes_queued") <= (2 << 20) as f64);
    drop(claims);
    for s in &senders {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
    senders.clear();
    for w in writers {
        let _ = w.join();
    }
    common::wait_for(20, "the budget given back", || {
        (metric(&b, "rill_request_bytes_queued") == 0.0).then_some(())
    });
    metadata(&mut healthy, 2);
}

fn create_topic(s: &mut TcpStream, name: &str, partitions: i32, corr: i32) -> (i16, String) {
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.into())))
            .with_num_partitions(partitions)
            .with_replication_factor(1)]);
    let r: CreateTopicsResponse = call(s, ApiKey::CreateTopics, 7, corr, &req);
    let t = &r.topics[0];
    (
        t.error_code,
        t.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

fn produce_to(s: &mut TcpStream, topic: &str, partition: i32, corr: i32) -> i16 {
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch(3).freeze())),
            ])]);
    let r: ProduceResponse = call(s, ApiKey::Produce, 9, corr, &req);
    r.responses[0].partition_responses[0].error_code
}

/// Produces `batch(3)` to partitions `0..partitions` of `topic` in one request; the error
/// code of each partition.
fn produce_all(s: &mut TcpStream, topic: &str, partitions: i32, corr: i32) -> Vec<i16> {
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(
                (0..partitions)
                    .map(|p| {
                        produce_request::PartitionProduceData::default()
                            .with_index(p)
                            .with_records(Some(batch(3).freeze()))
                    })
                    .collect(),
            )]);
    let r: ProduceResponse = call(s, ApiKey::Produce, 9, corr, &req);
    let mut codes = vec![-1; partitions as usize];
    for p in &r.responses[0].partition_responses {
        codes[p.index as usize] = p.error_code;
    }
    codes
}

/// Fetches every partition of `topic` from offset 0 (v12, topics by name) and counts the
/// records each returned, decoded by `kafka-protocol`; `None` for a partition that answered
/// an error (e.g. not led yet after a restart).
fn fetch_counts(s: &mut TcpStream, topic: &str, partitions: i32, corr: i32) -> Vec<Option<usize>> {
    use fetch_request::{FetchPartition, FetchTopic};
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(64 << 20)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.into())))
            .with_partitions(
                (0..partitions)
                    .map(|p| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_fetch_offset(0)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )]);
    let r: FetchResponse = call(s, ApiKey::Fetch, 12, corr, &req);
    let mut counts = vec![None; partitions as usize];
    for p in &r.responses[0].partitions {
        if p.error_code != 0 {
            continue;
        }
        let mut records = p.records.clone().unwrap_or_default();
        let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut records)
            .expect("stored batches decode");
        counts[p.partition_index as usize] = Some(sets.iter().map(|s| s.records.len()).sum());
    }
    counts
}

/// The hard file limit no longer bounds what a node hosts: under `prlimit --nofile=512`
/// (128 descriptors for the log file cache after the reserve and the connections' share) a
/// node creates 2,000 partitions, takes writes to every one of them twice and serves them
/// all back, with the cache evicting and reopening files and the process staying under its
/// limit. After kill -9 it recovers every acknowledged record of every partition, under the
/// same limit.
#[test]
fn a_node_under_a_low_file_limit_hosts_2000_partitions_and_recovers_them() {
    const TOPICS: usize = 20;
    const PARTITIONS: i32 = 100;
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("broker.log");
    let mut b = BrokerProc::start_with(
        Launch {
            wrapper: vec!["prlimit".into(), "--nofile=512".into(), "--".into()],
            log_file: Some(log.clone()),
            log_level: Some("warn".into()),
        },
        &[],
    );
    assert_eq!(metric(&b, "rill_max_file_descriptors"), 512.0);
    assert_eq!(metric(&b, "rill_log_max_open_files"), 128.0);
    assert_eq!(metric(&b, "rill_max_broker_partitions"), -1.0);
    let mut s = connect(&b);
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let topics: Vec<String> = (0..TOPICS).map(|t| format!("many-{t}")).collect();
    let started = Instant::now();
    for (i, t) in topics.iter().enumerate() {
        assert_eq!(
            create_topic(&mut s, t, PARTITIONS, 1 + i as i32),
            (0, String::new())
        );
    }
    eprintln!(
        "created {} partitions in {:?}",
        TOPICS as i32 * PARTITIONS,
        started.elapsed()
    );
    for round in 0..2 {
        for (i, t) in topics.iter().enumerate() {
            let codes = produce_all(&mut s, t, PARTITIONS, 100 + round * 100 + i as i32);
            assert!(
                codes.iter().all(|&c| c == 0),
                "round {round} {t}: {codes:?}"
            );
        }
    }
    for (i, t) in topics.iter().enumerate() {
        let counts = fetch_counts(&mut s, t, PARTITIONS, 300 + i as i32);
        assert!(counts.iter().all(|&c| c == Some(6)), "{t}: {counts:?}");
    }
    let open = metric(&b, "rill_open_file_descriptors");
    let cached = metric(&b, "rill_log_open_files");
    let evictions = metric(&b, "rill_log_file_evictions_total");
    eprintln!("open descriptors {open}, cached {cached}, evictions {evictions}");
    assert!(
        open < 512.0 && cached <= 128.0,
        "{open} open, {cached} cached"
    );
    assert!(
        evictions > 0.0,
        "2,000 partitions cannot fit 128 descriptors"
    );

    b.kill9();
    let started = Instant::now();
    b.restart();
    eprintln!(
        "restarted after kill -9 with 2,000 partitions in {:?}",
        started.elapsed()
    );
    let mut s = connect(&b);
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    for (i, t) in topics.iter().enumerate() {
        let counts = common::wait_for(60, "every partition served after the restart", || {
            let counts = fetch_counts(&mut s, t, PARTITIONS, 400 + i as i32);
            counts.iter().all(Option::is_some).then_some(counts)
        });
        assert!(
            counts.iter().all(|&c| c == Some(6)),
            "{t} after kill -9: {counts:?}"
        );
    }
    assert!(metric(&b, "rill_open_file_descriptors") < 512.0);
}

/// `max.broker.partitions` (KIP-578), when set, caps the replicas a node hosts: a CreateTopics
/// beyond it is refused with POLICY_VIOLATION naming the key, nothing of it is created, the
/// partitions the node has keep serving, and its log stays small.
#[test]
fn a_node_refuses_partitions_beyond_max_broker_partitions() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("broker.log");
    let b = BrokerProc::start_with(
        Launch {
            log_file: Some(log.clone()),
            log_level: Some("info".into()),
            ..Default::default()
        },
        &["max.broker.partitions=170"],
    );
    assert_eq!(metric(&b, "rill_max_broker_partitions"), 170.0);
    let mut s = connect(&b);
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    assert_eq!(create_topic(&mut s, "fits", 150, 1), (0, String::new()));
    let log_before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let (code, msg) = create_topic(&mut s, "too-many", 100, 2);
    assert_eq!(code, 44, "POLICY_VIOLATION, got {code}: {msg}");
    assert!(
        msg.contains("max.broker.partitions") && msg.contains("170"),
        "{msg}"
    );
    // Nothing of it exists.
    let m = metadata(&mut s, 3);
    let names: Vec<String> = m
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    assert!(!names.contains(&"too-many".to_string()), "{names:?}");
    // CreatePartitions past the limit is refused the same way.
    let req = CreatePartitionsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("fits")))
                .with_count(200)
                .with_assignments(None),
        ]);
    let r: CreatePartitionsResponse = call(&mut s, ApiKey::CreatePartitions, 3, 4, &req);
    assert_eq!(r.results[0].error_code, 44);
    // Every partition it has still takes writes.
    for p in 0..150 {
        assert_eq!(produce_to(&mut s, "fits", p, 10 + p), 0, "partition {p}");
    }
    let written = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) - log_before;
    eprintln!("log written during the refused creates and 150 produces: {written} bytes");
    assert!(written < 64 << 10, "{written} bytes of log");
}

/// A partition whose log cannot be opened (here its directory is taken by a file) fails on
/// every metadata change that still names it: the failures are counted every time but logged
/// once per interval, not once per partition per change.
#[test]
fn failures_to_open_partitions_are_logged_once_per_interval() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("broker.log");
    let b = BrokerProc::start_with(
        Launch {
            log_file: Some(log.clone()),
            log_level: Some("info".into()),
            ..Default::default()
        },
        &[],
    );
    for p in 0..10 {
        std::fs::write(
            b.data.join("logs").join(format!("blocked-{p}")),
            b"not a dir",
        )
        .expect("blocker");
    }
    let mut s = connect(&b);
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    assert_eq!(create_topic(&mut s, "blocked", 10, 1).0, 0);
    // 30 more metadata changes, each retrying the 10 failed opens.
    for i in 0..30 {
        assert_eq!(create_topic(&mut s, &format!("other-{i}"), 1, 2 + i).0, 0);
    }
    let failures = metric(&b, "rill_log_dir_errors_total");
    assert!(
        failures >= 300.0,
        "every failed open is counted: {failures}"
    );
    let text = std::fs::read_to_string(&log).expect("log");
    let lines = text
        .lines()
        .filter(|l| l.contains("cannot open partition log"))
        .count();
    eprintln!(
        "{failures} failed opens, {lines} 'cannot open' log lines, {} bytes of log in all",
        text.len()
    );
    assert!(lines <= 2, "{lines} lines:\n{text}");
    // The other partitions work, and the broker is not marked unready for it.
    assert_eq!(produce_to(&mut s, "other-0", 0, 100), 0);
    assert_eq!(b.http_get("/readyz").0, 200);
}
