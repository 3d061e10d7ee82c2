//! The console at scale (a benchmark, not a timed test: `#[ignore]`d, run it with
//! `cargo test --release -p rill-admin --test console_scale -- --ignored --nocapture`).
//! Creates RILL_SCALE_PARTITIONS partitions (default 10,000, in topics of 10) and
//! RILL_SCALE_GROUPS groups (default 1,000, each with offsets on one topic), then reports
//! the collector's cycle time, page p99s, the `/metrics` scrape time and the store's
//! bound. All partitions sit on one broker, which keeps about three files open per
//! partition: 10,000 partitions need `ulimit -n` above 30,000 (this machine allows 20,000,
//! so use RILL_SCALE_PARTITIONS=5000 here).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::console::ConsoleProc;
use common::{wait_for, BrokerProc};
use rill_broker::client::{Cluster, ConnectionConfig, NewTopic, TopicPartition};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

#[test]
#[ignore = "benchmark: run explicitly"]
fn console_at_scale() {
    let partitions = env("RILL_SCALE_PARTITIONS", 10_000);
    let groups = env("RILL_SCALE_GROUPS", 1_000);
    let topics = partitions.div_ceil(10);
    let b = BrokerProc::start(&[
        "offsets.topic.num.partitions=10",
        "group.initial.rebalance.delay.ms=0",
    ]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let started = Instant::now();
    rt.block_on(async {
        let config = ConnectionConfig {
            request_timeout: Duration::from_secs(120),
            ..ConnectionConfig::default()
        };
        let mut c = Cluster::connect(&b.bootstrap, config)
            .await
            .expect("connect");
        let names: Vec<String> = (0..topics).map(|i| format!("scale-{i:05}")).collect();
        for chunk in names.chunks(100) {
            let new: Vec<NewTopic> = chunk
                .iter()
                .map(|n| NewTopic {
                    name: n.clone(),
                    partitions: Some(10),
                    replication_factor: Some(1),
                    configs: vec![],
                })
                .collect();
            for (n, r) in c.create_topics(&new).await.expect("create") {
                r.unwrap_or_else(|e| panic!("{n}: {e}"));
            }
        }
        for g in 0..groups {
            let topic = &names[g % names.len()];
            let offsets: BTreeMap<TopicPartition, i64> = (0..10)
                .map(|p| (TopicPartition::new(topic.clone(), p), 0))
                .collect();
            c.commit_offsets(&format!("group-{g:05}"), &offsets)
                .await
                .expect("commit");
        }
    });
    println!(
        "setup: {topics} topics, {partitions} partitions, {groups} groups in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("console.db");
    let db = format!("sqlite://{}", db_path.display());
    let c = ConsoleProc::start_full(&b.bootstrap, &db, dir, &["--collect-interval-ms", "10000"]);
    wait_for(300, "every group collected", || {
        let v = c.json("/");
        (v["totals"]["groups"].as_u64() == Some(groups as u64)).then_some(())
    });
    let cycle = |body: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix("rill_console_collect_duration_seconds "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(-1.0)
    };
    // The database plus its write-ahead log.
    let db_size = || {
        let wal = db_path.with_extension("db-wal");
        std::fs::metadata(&db_path).map_or(0, |m| m.len())
            + std::fs::metadata(wal).map_or(0, |m| m.len())
    };
    let mut report = Vec::new();
    for (path, json) in [
        ("/topics", true),
        ("/topics", false),
        ("/groups", true),
        ("/groups", false),
        ("/", false),
        ("/groups/group-00000", false),
        ("/metrics", false),
    ] {
        let mut times = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            let r = c.request("GET", path, None, json);
            times.push(t.elapsed());
            assert_eq!(r.status, 200, "{path}");
        }
        report.push(format!(
            "GET {path}{}: p99 {:.1} ms",
            if json { " (JSON)" } else { "" },
            p99(times).as_secs_f64() * 1000.0
        ));
    }
    // The store: rows and bytes per row now, and its bound at 7 d retention, 10 s cycles
    // (partition series keep 70 min of cycles = 420 rows; group series 420 + 300 five-minute
    // rows for 25 h + 336 half-hour rows for 7 d = 1056).
    std::thread::sleep(Duration::from_secs(21));
    let metrics = c.get("/metrics").body;
    let (rows, bytes) = rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db).await.expect("open the store");
        let rows: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM partition_offsets) + (SELECT COUNT(*) FROM group_offsets)",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&pool).await.expect("checkpoint");
        (rows, db_size())
    });
    let bound_rows = partitions as f64 * 420.0 + (groups * 10) as f64 * 1056.0;
    let bytes_per_row = bytes as f64 / rows.max(1) as f64;
    println!("collector cycle: {:.2} s", cycle(&metrics));
    for line in report {
        println!("{line}");
    }
    println!(
        "store: {rows} rows in {:.1} MiB ({bytes_per_row:.0} B/row); bounded at about {:.0} MiB \
         ({bound_rows} rows at 10 s cycles and 7 d retention)",
        bytes as f64 / 1048576.0,
        bound_rows * bytes_per_row / 1048576.0
    );
}
