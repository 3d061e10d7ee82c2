//! Consumer-group benchmark (a report, not a timed test): how long 10 consumers take to reach
//! Stable after the first JoinGroup, and OffsetCommit throughput on one node.
//!
//! `cargo bench -p rill-broker --bench groups` writes `target/bench/groups.md`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::BrokerProc;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rill_client::{Cluster, Connection, ConnectionConfig};

const MEMBERS: usize = 10;
const PARTITIONS: i32 = 20;
const COMMIT_SECONDS: u64 = 5;
const CONNECTIONS: usize = 4;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut report = String::new();
    let _ = writeln!(report, "# rill-broker consumer-group benchmark\n");
    let _ = writeln!(report, "- machine: {} CPUs; client (librdkafka 2.12 via rdkafka, and Rill's own client) on the same machine", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
    let _ = writeln!(report, "- broker: the `rill-broker` binary of this build profile (cargo bench: release), one node\n");

    let _ = writeln!(
        report,
        "## Time to Stable: {MEMBERS} consumers, one {PARTITIONS}-partition topic\n"
    );
    let _ = writeln!(report, "From the first consumer's subscribe to DescribeGroups reporting Stable with all {MEMBERS} members (each member polled on its own thread; session.timeout.ms=10000, heartbeat.interval.ms=500). Target: within group.initial.rebalance.delay.ms + 1 s.\n");
    let _ = writeln!(report, "| group.initial.rebalance.delay.ms | time to Stable s | every member assigned s | target s | met |");
    let _ = writeln!(report, "| ---: | ---: | ---: | ---: | --- |");
    for delay in [3000u64, 0] {
        let (stable, assigned) = rt.block_on(time_to_stable(delay));
        let target = delay as f64 / 1000.0 + 1.0;
        let _ = writeln!(
            report,
            "| {delay} | **{stable:.3}** | {assigned:.3} | {target:.1} | {} |",
            if stable <= target { "yes" } else { "no" }
        );
        eprintln!("time to stable (delay {delay} ms): {stable:.3} s");
    }

    let _ = writeln!(report, "\n## OffsetCommit throughput\n");
    let _ = writeln!(report, "{CONNECTIONS} connections, each sending OffsetCommit requests back to back (one in flight per connection, as a consumer does) for {COMMIT_SECONDS} s, each to its own group (generation -1 commits, as assign-only consumers make); every commit is appended to __consumer_offsets before it is answered. Target: >= 20k commits/s.\n");
    let _ = writeln!(
        report,
        "| partitions per request | requests/s | partition commits/s | met (>= 20k commits/s) |"
    );
    let _ = writeln!(report, "| ---: | ---: | ---: | --- |");
    for per_request in [1usize, 10] {
        let (reqs, commits) = rt.block_on(commit_throughput(per_request));
        let _ = writeln!(
            report,
            "| {per_request} | {reqs:.0} | **{commits:.0}** | {} |",
            if commits >= 20_000.0 { "yes" } else { "no" }
        );
        eprintln!("commit throughput ({per_request}/request): {commits:.0} commits/s");
    }

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("groups.md");
    if let Err(e) = std::fs::write(&path, &report) {
        eprintln!("cannot write {}: {e}", path.display());
    }
    println!("{report}");
}

async fn time_to_stable(delay_ms: u64) -> (f64, f64) {
    let b = BrokerProc::start(&[
        &format!("group.initial.rebalance.delay.ms={delay_ms}"),
        &format!("num.partitions={PARTITIONS}"),
    ]);
    let cluster = Cluster::connect(&b.bootstrap, ConnectionConfig::default())
        .await
        .expect("client");
    // Topic and offsets topic exist before the clock starts.
    cluster
        .create_topics(&[rill_client::NewTopic {
            name: "bench-group".into(),
            partitions: Some(PARTITIONS),
            replication_factor: Some(1),
            configs: vec![],
        }])
        .await
        .expect("create");
    let _ = cluster.coordinator("warmup").await;
    let stop = Arc::new(AtomicBool::new(false));
    let assigned_at: Arc<Vec<AtomicU64>> =
        Arc::new((0..MEMBERS).map(|_| AtomicU64::new(0)).collect());
    let start = Instant::now();
    let mut threads = Vec::new();
    for i in 0..MEMBERS {
        let (bootstrap, stop, assigned_at) =
            (b.bootstrap.clone(), stop.clone(), assigned_at.clone());
        threads.push(std::thread::spawn(move || {
            let c: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", "bench-g")
                .set("session.timeout.ms", "10000")
                .set("heartbeat.interval.ms", "500")
                .create()
                .expect("consumer");
            c.subscribe(&["bench-group"]).expect("subscribe");
            while !stop.load(Ordering::SeqCst) {
                let _ = c.poll(Duration::from_millis(20));
                if assigned_at[i].load(Ordering::SeqCst) == 0
                    && c.assignment().map(|a| a.count() > 0).unwrap_or(false)
                {
                    assigned_at[i].store(start.elapsed().as_micros() as u64, Ordering::SeqCst);
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let stable = loop {
        if let Ok(d) = cluster.describe_group("bench-g").await {
            if d.state == "Stable" && d.members.len() == MEMBERS {
                break start.elapsed().as_secs_f64();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the group did not reach Stable within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while assigned_at.iter().any(|a| a.load(Ordering::SeqCst) == 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all = assigned_at
        .iter()
        .map(|a| a.load(Ordering::SeqCst))
        .max()
        .unwrap_or(0) as f64
        / 1e6;
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    (stable, all)
}

async fn commit_throughput(per_request: usize) -> (f64, f64) {
    let b = BrokerProc::start(&[&format!("num.partitions={}", per_request.max(1))]);
    let cluster = Cluster::connect(&b.bootstrap, ConnectionConfig::default())
        .await
        .expect("client");
    cluster
        .create_topics(&[rill_client::NewTopic {
            name: "bench-commits".into(),
            partitions: Some(per_request as i32),
            replication_factor: Some(1),
            configs: vec![],
        }])
        .await
        .expect("create");
    let _ = cluster.coordinator("warmup").await;
    let requests = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(COMMIT_SECONDS);
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let (addr, requests) = (b.bootstrap.clone(), requests.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::connect(&addr, ConnectionConfig::default())
                .await
                .expect("connect");
            let group = format!("commit-bench-{c}");
            let mut offset = 0i64;
            while Instant::now() < until {
                offset += 1;
                let parts = (0..per_request as i32)
                    .map(|p| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(offset)
                    })
                    .collect();
                let req = OffsetCommitRequest::default()
                    .with_group_id(GroupId(StrBytes::from_string(group.clone())))
                    .with_generation_id_or_member_epoch(-1)
                    .with_topics(vec![OffsetCommitRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_static_str("bench-commits")))
                        .with_partitions(parts)]);
                let resp = conn.send(req).await.expect("commit");
                let ok = resp
                    .topics
                    .iter()
                    .flat_map(|t| t.partitions.iter())
                    .all(|p| p.error_code == 0);
                assert!(ok, "commit refused: {resp:?}");
                requests.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        t.await.expect("task");
    }
    let secs = started.elapsed().as_secs_f64();
    let n = requests.load(Ordering::Relaxed) as f64;
    (n / secs, n * per_request as f64 / secs)
}
