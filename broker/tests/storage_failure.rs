//! A full disk, for real: log dirs on a small tmpfs (the tests run as root, as CI does). The
//! broker takes the dir offline, producers see KAFKA_STORAGE_ERROR or fail over to a new
//! leader, nothing acknowledged is lost, and the log (one line), the metrics and `/readyz` say
//! why.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::{Bytes, BytesMut};
use common::checks::{assert_acked_exactly_once, create_topic, partition_info, producer, read_all};
use common::wire::{call, connect};
use common::{BrokerProc, Launch};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::admin::{NewTopic, TopicReplication};

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("tmp");
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            st.success(),
            "mounting a tmpfs needs root (CI runs as root): mount exited {st}"
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.path())
            .status()
            .expect("run mount");
        assert!(st.success(), "remount: {st}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.path()).status();
    }
}

fn metric(b: &BrokerProc, name: &str) -> f64 {
    let (_, body) = b.http_get("/metrics");
    body.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One batch of `n` records numbered from `first` (the value is the number).
fn numbered_batch(first: usize, n: usize) -> Bytes {
    let records: Vec<Record> = (first..first + n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: (i - first) as i64,
            sequence: -1,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(format!("{i:0>200}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode");
    buf.freeze()
}

fn produce(s: &mut std::net::TcpStream, topic: &str, records: Bytes, corr: i32) -> (i16, i64) {
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records)),
            ])]);
    let r: ProduceResponse = call(s, ApiKey::Produce, 9, corr, &req);
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn offline_lines(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("log dir is offline"))
        .count()
}

/// One node, its only log dir on a 2 MiB tmpfs: writes fail with KAFKA_STORAGE_ERROR once it
/// is full, the dir goes offline (log, metric, /readyz), and after the operator makes room and
/// restarts the node every acknowledged record is there.
#[test]
fn a_full_disk_on_one_node() {
    let fs = Tmpfs::mount("2m");
    let side = tempfile::tempdir().expect("tmp");
    let log = side.path().join("broker.log");
    let data: PathBuf = fs.path().join("data");
    let mut b = BrokerProc::start_with(
        Launch {
            log_file: Some(log.clone()),
            log_level: Some("warn".into()),
            ..Default::default()
        },
        &[
            &format!("log.dirs={}", data.display()),
            &format!("metadata.log.dir={}", side.path().join("meta").display()),
        ],
    );
    let mut s = connect(&b);
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("full")))
            .with_num_partitions(1)
            .with_replication_factor(1)]);
    let r: CreateTopicsResponse = call(&mut s, ApiKey::CreateTopics, 7, 1, &req);
    assert_eq!(r.topics[0].error_code, 0);
    const PER_BATCH: usize = 50;
    let mut acked = Vec::new();
    let mut first_error = None;
    for i in 0..2_000 {
        let (code, base) = produce(
            &mut s,
            "full",
            numbered_batch(i * PER_BATCH, PER_BATCH),
            i as i32,
        );
        if code != 0 {
            first_error = Some(code);
            break;
        }
        assert_eq!(base, (i * PER_BATCH) as i64, "dense offsets");
        acked.extend(i * PER_BATCH..(i + 1) * PER_BATCH);
    }
    assert_eq!(
        first_error,
        Some(56),
        "KAFKA_STORAGE_ERROR once the disk is full"
    );
    assert!(acked.len() > 1_000, "{} records fit", acked.len());
    // Later writes fail too (offline dir, then no leader): never a silent loss.
    let (code, _) = produce(&mut s, "full", numbered_batch(999_999, 1), 9_999);
    assert_ne!(code, 0);
    let (status, why) = b.http_get("/readyz");
    assert_eq!(status, 503, "{why}");
    assert!(why.contains("No space left on device"), "{why}");
    assert!(why.contains(&data.display().to_string()), "{why}");
    assert_eq!(
        metric(&b, "kafka_log_logmanager_offlinelogdirectorycount"),
        1.0
    );
    assert!(metric(&b, "rill_log_dir_errors_total{dir=") >= 1.0);
    assert_eq!(offline_lines(&log), 1, "one line for the failed dir");

    // The operator makes room and restarts the node: recovery cuts any half-written tail and
    // every acknowledged record is there, once.
    b.kill9();
    fs.resize("64m");
    b.restart();
    assert_eq!(b.http_get("/readyz").0, 200);
    let got = read_all(&b.bootstrap, "full", acked.len() as i64);
    let got: Vec<(i64, usize)> = got.into_iter().take(acked.len()).collect();
    assert_acked_exactly_once(&got, &acked);
}

/// Three nodes; the leader's log dir fills up under an idempotent acks=all producer: the
/// leader takes the dir offline and tells the controller, leadership moves to an in-sync
/// replica, the producer carries on, and every acknowledged record is readable exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_on_the_leader_moves_leadership() {
    let fs = Tmpfs::mount("2m");
    let side = tempfile::tempdir().expect("tmp");
    let full_dir = fs.path().join("node1");
    let meta = side.path().join("meta1");
    let nodes = common::start_cluster_with(3, &[], |i| {
        if i == 0 {
            vec![
                format!("log.dirs={}", full_dir.display()),
                format!("metadata.log.dir={}", meta.display()),
            ]
        } else {
            Vec::new()
        }
    });
    let all = nodes
        .iter()
        .map(|n| n.bootstrap.clone())
        .collect::<Vec<_>>()
        .join(",");
    create_topic(
        &all,
        NewTopic::new("t", 1, TopicReplication::Variable(&[&[1, 2, 3]])),
    )
    .await;
    common::wait_for(30, "node 1 leading with a full ISR", || {
        partition_info(&nodes[1], "t").filter(|i| i.leader == 1 && i.isr.len() == 3)
    });
    let p = producer(&all);
    const N: usize = 30_000;
    // 200-byte values: 2 MiB fill up about a third of the way through.
    let mut acked = Vec::new();
    for round in 0..10 {
        let from = round * N / 10;
        acked.extend(produce_padded(&p, "t", from, from + N / 10).await);
    }
    assert_eq!(
        acked.len(),
        N,
        "every record acknowledged, after the failover"
    );
    let info = partition_info(&nodes[1], "t").expect("metadata");
    assert_ne!(info.leader, 1, "leadership moved off the full node");
    assert!(
        !info.isr.contains(&1),
        "the full node left the ISR: {info:?}"
    );
    let (status, why) = nodes[0].http_get("/readyz");
    assert_eq!(status, 503);
    assert!(why.contains("No space left on device"), "{why}");
    assert_eq!(
        metric(&nodes[0], "kafka_log_logmanager_offlinelogdirectorycount"),
        1.0
    );
    let leader = &nodes[(info.leader - 1) as usize];
    let end = common::checks::wait_same_offsets(&[&nodes[1], &nodes[2]], "t", N as i64);
    let got = read_all(&leader.bootstrap, "t", end);
    assert_acked_exactly_once(&got, &acked);
    // Node 1 gets no new replicas while it has no online log dir (the readers' group made
    // __consumer_offsets after the failure).
    create_topic(&all, NewTopic::new("after", 6, TopicReplication::Fixed(2))).await;
    let r: MetadataResponse = common::checks::try_call(
        &nodes[1].bootstrap,
        ApiKey::Metadata,
        12,
        &MetadataRequest::default(),
    )
    .expect("metadata");
    for t in &r.topics {
        for p in &t.partitions {
            assert!(
                !p.replica_nodes.contains(&BrokerId(1)),
                "{:?}-{} placed on the full node: {:?}",
                t.name,
                p.partition_index,
                p.replica_nodes
            );
        }
    }
    eprintln!(
        "node 1's disk filled; leader now {} (isr {:?}); {} records acknowledged and read back once",
        info.leader,
        info.isr,
        acked.len()
    );
}

/// Produces records numbered `from..to` with the number zero-padded to 200 bytes (still a
/// number to the checker), pipelined; returns the acknowledged numbers.
async fn produce_padded(
    p: &rdkafka::producer::FutureProducer,
    topic: &str,
    from: usize,
    to: usize,
) -> Vec<usize> {
    use rdkafka::producer::FutureRecord;
    let futs: Vec<_> = (from..to)
        .map(|i| {
            let value = format!("{i:0>200}");
            let f = p
                .send_result(
                    FutureRecord::<(), _>::to(topic)
                        .partition(0)
                        .payload(&value),
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

/// The metadata log's disk fills up: the node cannot follow metadata any more, so it stops
/// with one line naming `metadata.log.dir` (as Kafka halts when its metadata log dir fails),
/// which lets the others fence it by its closed port.
#[test]
fn a_failed_metadata_log_dir_stops_the_node() {
    let fs = Tmpfs::mount("1m");
    let side = tempfile::tempdir().expect("tmp");
    let log = side.path().join("broker.log");
    let mut b = BrokerProc::start_with(
        Launch {
            log_file: Some(log.clone()),
            log_level: Some("error".into()),
            ..Default::default()
        },
        &[&format!(
            "metadata.log.dir={}",
            fs.path().join("meta").display()
        )],
    );
    // Fill the rest of the disk.
    let mut filler = std::fs::File::create(fs.path().join("filler")).expect("filler");
    let chunk = vec![0u8; 64 << 10];
    while std::io::Write::write_all(&mut filler, &chunk).is_ok() {}
    drop(filler);
    // Metadata changes now fail to be stored.
    let mut s = connect(&b);
    for i in 0..50 {
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(5_000)
            .with_topics(vec![create_topics_request::CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(format!("t{i}"))))
                .with_num_partitions(1)
                .with_replication_factor(1)]);
        if std::io::Write::write_all(
            &mut s,
            &common::wire::frame(ApiKey::CreateTopics, 7, i, &req),
        )
        .is_err()
            || common::wire::read_frame(&mut s).is_none()
        {
            break;
        }
        if !b.alive() {
            break;
        }
    }
    common::wait_for(30, "the node to stop", || (!b.alive()).then_some(()));
    let text = std::fs::read_to_string(&log).expect("log");
    let line = text
        .lines()
        .find(|l| l.starts_with("rill-broker:"))
        .unwrap_or_else(|| panic!("no error line in:\n{text}"));
    eprintln!("the node stopped with: {line}");
    assert!(line.contains("metadata.log.dir"), "{line}");
}
