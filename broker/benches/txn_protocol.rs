//! Transactions v1 against transactions v2 (KIP-890 part 2) on the wire, side by side in one
//! run against one real `rill-broker` (a report, not a timed test): the same transactions of
//! 100 records of 1 KiB, committed one after another on one connection, as a v1 client sends
//! them (AddPartitionsToTxn v3, Produce v9, EndTxn v4) and as a v2 client does (Produce v12,
//! whose leader adds the partition, and EndTxn v5, which bumps the epoch). Modes alternate
//! within each trial; medians are reported.
//!
//! `cargo bench -p rill-broker --bench txn_protocol` writes `target/bench/txn-protocol.md`.
//! `RILL_BENCH_TXNS` sets the transactions per mode and trial (default 3000),
//! `RILL_BENCH_TRIALS` the trials (default 5).

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::BrokerProc;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, EndTxnRequest, EndTxnResponse,
    ProduceRequest, ProduceResponse, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};

const RECORDS_PER_TXN: usize = 100;
const VALUE_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    V1,
    V2,
}

/// One mode's trial: transactions per second and EndTxn latencies (ms).
struct Trial {
    txns_per_s: f64,
    end_txn_ms: Vec<f64>,
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// One transaction's batch: sequences from `seq`, values of about `VALUE_BYTES` bytes.
fn batch(pid: i64, epoch: i16, seq: i32) -> Bytes {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let prefix = "x".repeat(VALUE_BYTES - 4);
    common::batches::txn_batch_from(pid, epoch, seq, RECORDS_PER_TXN, now, &prefix)
}

fn run(b: &BrokerProc, mode: Mode, id: &str, topic: &str, txns: usize) -> Trial {
    let (pid, mut epoch) = common::checks::init_transactional(&b.bootstrap, id);
    let mut s = TcpStream::connect(&b.bootstrap).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.set_nodelay(true).expect("nodelay");
    let mut corr = 0;
    let mut seq = 0;
    let mut end_txn_ms = Vec::with_capacity(txns);
    let started = Instant::now();
    for _ in 0..txns {
        if mode == Mode::V1 {
            corr += 1;
            let r: AddPartitionsToTxnResponse = common::wire::call(
                &mut s,
                ApiKey::AddPartitionsToTxn,
                3,
                corr,
                &AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(TransactionalId(sb(id)))
                    .with_v3_and_below_producer_id(ProducerId(pid))
                    .with_v3_and_below_producer_epoch(epoch)
                    .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(sb(topic)))
                        .with_partitions(vec![0])]),
            );
            let code =
                r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code;
            assert_eq!(code, 0, "AddPartitionsToTxn");
        }
        corr += 1;
        let produce = ProduceRequest::default()
            .with_transactional_id(Some(TransactionalId(sb(id))))
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(sb(topic)))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(pid, epoch, seq)))])]);
        let version = if mode == Mode::V1 { 9 } else { 12 };
        let r: ProduceResponse =
            common::wire::call(&mut s, ApiKey::Produce, version, corr, &produce);
        let code = r.responses[0].partition_responses[0].error_code;
        assert_eq!(code, 0, "Produce v{version}");
        corr += 1;
        let version = if mode == Mode::V1 { 4 } else { 5 };
        let t = Instant::now();
        let r: EndTxnResponse = common::wire::call(
            &mut s,
            ApiKey::EndTxn,
            version,
            corr,
            &EndTxnRequest::default()
                .with_transactional_id(TransactionalId(sb(id)))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_committed(true),
        );
        end_txn_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(r.error_code, 0, "EndTxn v{version}");
        match mode {
            // v1 keeps the epoch; sequences go on.
            Mode::V1 => seq += RECORDS_PER_TXN as i32,
            // v2 hands out the next epoch; sequences restart.
            Mode::V2 => {
                assert_eq!(r.producer_id.0, pid);
                epoch = r.producer_epoch;
                seq = 0;
            }
        }
    }
    Trial {
        txns_per_s: txns as f64 / started.elapsed().as_secs_f64(),
        end_txn_ms,
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}

fn median(mut v: Vec<f64>) -> f64 {
    percentile(&mut v, 0.5)
}

fn main() {
    let txns: usize = std::env::var("RILL_BENCH_TXNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let trials_wanted: usize = std::env::var("RILL_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let b = BrokerProc::start(&["transaction.state.log.num.partitions=1"]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut results: Vec<(Mode, Vec<Trial>)> = vec![(Mode::V1, Vec::new()), (Mode::V2, Vec::new())];
    for trial in 0..trials_wanted {
        for (mode, trials) in results.iter_mut() {
            let topic = format!("txn-bench-{mode:?}-{trial}").to_lowercase();
            rt.block_on(common::checks::create_topic(
                &b.bootstrap,
                NewTopic::new(&topic, 1, TopicReplication::Fixed(1)),
            ));
            let t = run(&b, *mode, &format!("bench-{mode:?}-{trial}"), &topic, txns);
            eprintln!("trial {trial} {mode:?}: {:.0} txn/s", t.txns_per_s);
            trials.push(t);
        }
    }
    let mut report = String::new();
    let _ = writeln!(report, "# Transactions v1 against v2 on the wire\n");
    let _ = writeln!(report, "- machine: {} CPUs; client (raw requests on one connection) and broker on the same machine", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
    let _ = writeln!(report, "- one node, one partition, acks=all; {txns} transactions of {RECORDS_PER_TXN} records of {VALUE_BYTES} B per mode and trial, {trials_wanted} trials, modes alternating; medians over trials\n");
    let _ = writeln!(report, "| protocol | requests per transaction | transactions/s | records/s | MB/s | EndTxn p50 ms | EndTxn p99 ms |");
    let _ = writeln!(report, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (mode, trials) in &results {
        let tps = median(trials.iter().map(|t| t.txns_per_s).collect());
        let p50 = median(
            trials
                .iter()
                .map(|t| percentile(&mut t.end_txn_ms.clone(), 0.5))
                .collect(),
        );
        let p99 = median(
            trials
                .iter()
                .map(|t| percentile(&mut t.end_txn_ms.clone(), 0.99))
                .collect(),
        );
        let (name, requests) = match mode {
            Mode::V1 => ("v1 (AddPartitionsToTxn v3, Produce v9, EndTxn v4)", 3),
            Mode::V2 => ("v2 (Produce v12, EndTxn v5)", 2),
        };
        let records = tps * RECORDS_PER_TXN as f64;
        let _ = writeln!(
            report,
            "| {name} | {requests} | **{tps:.0}** | {records:.0} | {:.1} | {p50:.2} | {p99:.2} |",
            records * VALUE_BYTES as f64 / 1e6
        );
    }
    // Trials drift with the machine (page-cache writeback of the earlier trials' data), and
    // each trial runs both modes back to back: the paired ratio is the steadier figure.
    let ratios: Vec<f64> = results[0]
        .1
        .iter()
        .zip(&results[1].1)
        .map(|(v1, v2)| v2.txns_per_s / v1.txns_per_s)
        .collect();
    let _ = writeln!(
        report,
        "\nv2 / v1 transactions/s per trial: {}; median **{:.2}**",
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        median(ratios.clone())
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("txn-protocol.md");
    if let Err(e) = std::fs::write(&path, &report) {
        eprintln!("cannot write {}: {e}", path.display());
    }
    println!("{report}");
}
