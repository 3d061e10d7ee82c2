//! The console at scale (a report, not a timed test): issue 5's benchmark.
//!
//! `cargo bench -p rill-admin --bench console` starts a 3-node cluster (`rill broker`
//! processes, the same node code as `rill-broker`), creates 100 topics × 100 partitions
//! (10,000 partitions, replication factor 1), produces a little data into 10 of them,
//! commits offsets for 1,000 consumer groups (simple commits, no members: each group owns
//! 10 partitions of one topic, so every partition has exactly one committed group), then
//! starts `rill console` on an SQLite store in a temp dir at its default 10 s collection
//! interval and default 7 d retention, and measures over keep-alive HTTP/1.1:
//! topic-list and group-list latency (HTML and JSON), `/metrics` scrape time and size,
//! the collector's cycle time, the store's rows and bytes after the cycles of the run with
//! the growth per day and the bound that retention gives, and the console's RSS.
//! Writes `target/bench/console.md`.
//!
//! Three nodes rather than one: when this bench was written a node kept about three files
//! open per partition and this machine's hard `ulimit -n` is 20,000, so one node could not
//! hold 10,000 partitions. Nodes now open segment files through a bounded cache
//! (`log.max.open.files`) and one node holds 100,000 (`rill-broker`'s `scale` bench); the
//! three nodes stay so the figures compare with earlier runs. RILL_BENCH_REQUESTS (200) sets the requests per
//! page, RILL_BENCH_TOPICS (100) the topics of 100 partitions, RILL_BENCH_OBSERVE_S (60) how long the paced
//! rounds (the same requests spread over several collector cycles) last.

mod baseline;
mod http;
mod machine;
mod procs;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rill_client::{Cluster, ConnectionConfig, NewTopic, TopicPartition};
use sqlx::Row;

use http::*;
use machine::*;
use procs::*;

const NODES: usize = 3;
/// Topics by default; `RILL_BENCH_TOPICS` sets it (1,000: the 100,000 partitions of issue 17).
const DEFAULT_TOPICS: usize = 100;
const PARTITIONS_PER_TOPIC: usize = 100;
const GROUPS: usize = 1_000;
/// Partitions each group commits (a tenth of one topic).
const GROUP_PARTITIONS: usize = 10;
/// Topics that get data.
const DATA_TOPICS: usize = 10;
const RECORDS_PER_PARTITION: usize = 20;
/// The console's defaults (`rill console --help`): what the figures are for.
const INTERVAL_S: f64 = 10.0;
const RETENTION_S: f64 = 7.0 * 86_400.0;
/// store.rs: tier 0 kept 70 min, tier 1 (5 min buckets) 25 h, tier 2 (30 min buckets)
/// `--retention`; `expire` runs every 30 cycles (collector.rs EXPIRE_EVERY).
const TIER0_KEEP_S: f64 = 70.0 * 60.0;
const TIER1_BUCKET_S: f64 = 300.0;
const TIER1_KEEP_S: f64 = 25.0 * 3600.0;
const TIER2_BUCKET_S: f64 = 1800.0;
const EXPIRE_EVERY: f64 = 30.0;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One cycle seen from outside: when the snapshot changed and what `/metrics` said.
#[derive(Clone, Debug)]
struct Cycle {
    seen: Instant,
    taken_at_ms: i64,
    collect_s: Option<f64>,
}

fn mib(b: f64) -> f64 {
    b / 1_048_576.0
}

fn main() {
    let requests = env_usize("RILL_BENCH_REQUESTS", 200);
    let topics_n = env_usize("RILL_BENCH_TOPICS", DEFAULT_TOPICS).max(DATA_TOPICS);
    let observe_s = env_usize("RILL_BENCH_OBSERVE_S", 60) as u64;
    let bench_started = Instant::now();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "?".into());
    let load_start = loadavg();
    let busy_start = busy_processes();
    eprintln!("console bench: {cpus} CPUs, load {load_start}");

    // ------------------------------------------------------------ the cluster
    let t = Instant::now();
    let (nodes, bootstrap) = start_cluster(
        NODES,
        &[
            "offsets.topic.num.partitions=10",
            "offsets.topic.replication.factor=1",
            "auto.create.topics.enable=false",
            "group.initial.rebalance.delay.ms=0",
        ],
    );
    let cluster_start_s = t.elapsed().as_secs_f64();
    eprintln!("{NODES} nodes up in {cluster_start_s:.1} s: {bootstrap}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let names: Vec<String> = (0..topics_n).map(|i| format!("bench-{i:04}")).collect();
    let t = Instant::now();
    rt.block_on(async {
        let config = ConnectionConfig {
            request_timeout: Duration::from_secs(180),
            ..ConnectionConfig::default()
        };
        let c = Cluster::connect(&bootstrap, config).await.expect("connect");
        for chunk in names.chunks(10) {
            let new: Vec<NewTopic> = chunk
                .iter()
                .map(|n| NewTopic {
                    name: n.clone(),
                    partitions: Some(PARTITIONS_PER_TOPIC as i32),
                    replication_factor: Some(1),
                    configs: vec![],
                })
                .collect();
            for (n, r) in c.create_topics(&new).await.expect("create topics") {
                r.unwrap_or_else(|e| panic!("create {n}: {e}"));
            }
        }
    });
    let create_s = t.elapsed().as_secs_f64();
    eprintln!(
        "{} partitions created in {create_s:.1} s",
        topics_n * PARTITIONS_PER_TOPIC
    );

    let t = Instant::now();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "120000")
        .create()
        .expect("producer");
    let payload = vec![b'x'; 100];
    for topic in names.iter().take(DATA_TOPICS) {
        for p in 0..PARTITIONS_PER_TOPIC as i32 {
            for i in 0..RECORDS_PER_PARTITION {
                let key = format!("k{i}");
                let mut rec = BaseRecord::to(topic)
                    .partition(p)
                    .key(&key)
                    .payload(&payload);
                loop {
                    match producer.send(rec) {
                        Ok(()) => break,
                        Err((_, back)) => {
                            rec = back;
                            producer.poll(Duration::from_millis(10));
                        }
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("every record acknowledged");
    let produce_s = t.elapsed().as_secs_f64();
    let records = DATA_TOPICS * PARTITIONS_PER_TOPIC * RECORDS_PER_PARTITION;
    eprintln!("{records} records produced in {produce_s:.1} s");

    let t = Instant::now();
    rt.block_on(async {
        let c = Cluster::connect(&bootstrap, ConnectionConfig::default())
            .await
            .expect("connect");
        for g in 0..GROUPS {
            let topic = &names[g % topics_n];
            let first = (g / topics_n) * GROUP_PARTITIONS;
            // Half the data read on the topics that have some, so lag is not zero there.
            let offset = if g % topics_n < DATA_TOPICS {
                (RECORDS_PER_PARTITION / 2) as i64
            } else {
                0
            };
            let offsets: BTreeMap<TopicPartition, i64> = (first..first + GROUP_PARTITIONS)
                .map(|p| (TopicPartition::new(topic.clone(), p as i32), offset))
                .collect();
            // The first commits create __consumer_offsets and meet its coordinators still
            // loading (COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR...): retry as clients do.
            let group = format!("bench-group-{g:04}");
            let mut attempt = 0;
            loop {
                match c.commit_offsets(&group, &offsets).await {
                    Ok(_) => break,
                    Err(e)
                        if attempt < 300
                            && matches!(e.kafka_error().map(|k| k.code()), Some(14..=16)) =>
                    {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("commit {group}: {e}"),
                }
            }
        }
    });
    let commit_s = t.elapsed().as_secs_f64();
    eprintln!("{GROUPS} groups committed in {commit_s:.1} s");

    // ------------------------------------------------------------ the console
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("console.db");
    let db_url = format!("sqlite://{}", db_path.display());
    let t = Instant::now();
    let (child, rx) = launch(
        &[
            "console".into(),
            "--bootstrap".into(),
            bootstrap.clone(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--database-url".into(),
            db_url.clone(),
        ],
        "rill console ready: ",
    );
    let pid = child.id();
    let console = Proc { child, _dir: None };
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("console ready line within 60 s");
    let addr = line
        .trim_start_matches("rill console ready: ")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut http = Http::new(&addr);
    let expected_partitions = topics_n * PARTITIONS_PER_TOPIC;
    let deadline = Instant::now() + Duration::from_secs(180);
    let first_snapshot_ms = loop {
        let v = http.json("/");
        let totals = &v["totals"];
        if totals["groups"].as_u64() == Some(GROUPS as u64)
            && totals["partitions"].as_u64().unwrap_or(0) >= expected_partitions as u64
        {
            break v["layout"]["collected_at_ms"].as_i64().unwrap_or(0);
        }
        assert!(
            Instant::now() < deadline,
            "the console did not show {GROUPS} groups and {expected_partitions} partitions within 180 s: {totals}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let first_full_s = t.elapsed().as_secs_f64();
    eprintln!("console: first full snapshot {first_full_s:.1} s after start");

    // A watcher: snapshot changes (the overview's collected_at_ms, polled every 50 ms),
    // the collector's own duration gauge from /metrics at each change, and RSS.
    let stop = Arc::new(AtomicBool::new(false));
    let cycles: Arc<Mutex<Vec<Cycle>>> = Arc::new(Mutex::new(Vec::new()));
    let rss_max = Arc::new(Mutex::new(0u64));
    let watcher = {
        let (stop, cycles, rss_max, addr) =
            (stop.clone(), cycles.clone(), rss_max.clone(), addr.clone());
        std::thread::spawn(move || {
            let mut h = Http::new(&addr);
            let mut last = first_snapshot_ms;
            while !stop.load(Ordering::SeqCst) {
                let ts = h.json("/")["layout"]["collected_at_ms"]
                    .as_i64()
                    .unwrap_or(0);
                if ts != last {
                    let seen = Instant::now();
                    last = ts;
                    let m = h.get("/metrics", false);
                    let text = String::from_utf8_lossy(&m.body);
                    let collect_s = metric(&text, "rill_console_collect_duration_seconds");
                    cycles.lock().expect("lock").push(Cycle {
                        seen,
                        taken_at_ms: ts,
                        collect_s,
                    });
                }
                let rss = proc_status_kb(pid, "VmRSS");
                let mut m = rss_max.lock().expect("lock");
                *m = (*m).max(rss);
                drop(m);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    // ------------------------------------------------------------ page latency
    let pages: [(&str, &str, bool, usize); 9] = [
        ("topic list", "/topics", false, requests),
        ("topic list", "/topics", true, requests),
        ("group list", "/groups", false, requests),
        ("group list", "/groups", true, requests),
        // Every group on one page: what the list rendered before it was paged (100 a page).
        (
            "group list, all 1,000 rows",
            "/groups?per_page=1000",
            false,
            requests,
        ),
        (
            "group list, all 1,000 rows",
            "/groups?per_page=1000",
            true,
            requests,
        ),
        ("/metrics scrape", "/metrics", false, requests),
        ("overview", "/", false, requests / 4),
        (
            "group detail",
            "/groups/bench-group-0005",
            false,
            requests / 4,
        ),
    ];
    let mut rows = Vec::new();
    let pages_from_s = bench_started.elapsed().as_secs_f64();
    for (what, path, json, n) in pages {
        for _ in 0..3 {
            let _ = http.get(path, json);
        }
        let mut times = Vec::with_capacity(n);
        let mut size = 0;
        for _ in 0..n {
            let t = Instant::now();
            let r = http.get(path, json);
            times.push(t.elapsed());
            assert_eq!(r.status, 200, "GET {path}");
            size = r.body.len();
        }
        times.sort();
        let mean = times.iter().sum::<Duration>().as_secs_f64() * 1000.0 / n as f64;
        let (p50, p99, max) = (pct(&times, 50.0), pct(&times, 99.0), pct(&times, 100.0));
        eprintln!(
            "{what} {path} {}: p50 {p50:.1} ms, p99 {p99:.1} ms, {size} B",
            if json { "JSON" } else { "HTML" }
        );
        rows.push((what, path, json, n, p50, p99, max, mean, size));
    }
    let pages_done = Instant::now();

    // ------------------------------------------------------------ paced, across cycles
    // The burst above lasts a few seconds, so it may miss the collector's busy part (its
    // store write). Here the same requests are spread over `observe_s` seconds: one round
    // of the five every `observe_s / requests` seconds, covering several whole cycles.
    let paced_forms: [(&str, bool); 5] = [
        ("/topics", false),
        ("/topics", true),
        ("/groups", false),
        ("/groups", true),
        ("/metrics", false),
    ];
    let mut paced: Vec<Vec<Duration>> = vec![Vec::new(); paced_forms.len()];
    let paced_cycles_before = cycles.lock().expect("lock").len();
    let step = Duration::from_secs_f64(observe_s as f64 / requests.max(1) as f64);
    let paced_start = Instant::now();
    for round in 0..requests {
        let due = paced_start + step * round as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for (i, (path, json)) in paced_forms.iter().enumerate() {
            let t = Instant::now();
            let r = http.get(path, *json);
            paced[i].push(t.elapsed());
            assert_eq!(r.status, 200, "GET {path}");
        }
    }
    let paced_s = paced_start.elapsed().as_secs_f64();
    let paced_cycles = cycles.lock().expect("lock").len() - paced_cycles_before;
    for v in &mut paced {
        v.sort();
    }

    // ------------------------------------------------------------ idle: CPU per cycle
    let idle_s = 30;
    let cpu_before = cpu_seconds(pid);
    let cycles_before = cycles.lock().expect("lock").len();
    std::thread::sleep(Duration::from_secs(idle_s));
    let cpu_after = cpu_seconds(pid);
    let cycles_in_window = cycles.lock().expect("lock").len() - cycles_before;
    let rss_now = proc_status_kb(pid, "VmRSS");
    let rss_hwm = proc_status_kb(pid, "VmHWM");
    stop.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    let cycles = cycles.lock().expect("lock").clone();
    let rss_max = *rss_max.lock().expect("lock");

    let db_file = file_len(&db_path);
    let wal_file = file_len(&db_path.with_extension("db-wal"));
    let store = rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db_url)
            .await
            .expect("open the store");
        let mut tiers: BTreeMap<(String, i64), (i64, i64)> = BTreeMap::new();
        for table in ["partition_offsets", "group_offsets"] {
            let q = format!("SELECT tier, COUNT(*), COUNT(DISTINCT ts) FROM {table} GROUP BY tier");
            for r in sqlx::query(&q).fetch_all(&pool).await.expect("count") {
                let tier: i64 = r.try_get(0).expect("tier");
                tiers.insert(
                    (table.to_string(), tier),
                    (r.try_get(1).expect("n"), r.try_get(2).expect("ts")),
                );
            }
        }
        let pragma = |name: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query(&format!("PRAGMA {name}"))
                    .fetch_one(&pool)
                    .await
                    .ok()
                    .and_then(|r| r.try_get::<i64, _>(0).ok())
                    .unwrap_or(0)
            }
        };
        let page_size = pragma("page_size").await;
        let pages = pragma("page_count").await;
        let free = pragma("freelist_count").await;
        // Bytes per table with its indexes, when SQLite was built with dbstat.
        let dbstat: Option<BTreeMap<String, i64>> =
            sqlx::query("SELECT name, CAST(SUM(pgsize) AS BIGINT) FROM dbstat GROUP BY name")
                .fetch_all(&pool)
                .await
                .ok()
                .map(|rows| {
                    rows.iter()
                        .filter_map(|r| {
                            Some((
                                r.try_get::<String, _>(0).ok()?,
                                r.try_get::<i64, _>(1).ok()?,
                            ))
                        })
                        .collect()
                });
        pool.close().await;
        (tiers, page_size, pages, free, dbstat)
    });
    drop(console);
    // This build's collector against a baseline's, alternated on the same cluster.
    let compared = std::env::var("RILL_BASELINE_RILL_BIN").ok().map(|bin| {
        let watch_s = env_usize("RILL_BENCH_COMPARE_S", 60) as u64;
        let mut v = Vec::new();
        for _ in 0..2 {
            v.push(baseline::observe(
                "baseline",
                &bin,
                &bootstrap,
                GROUPS as u64,
                watch_s,
            ));
            v.push(baseline::observe(
                "this build",
                rill(),
                &bootstrap,
                GROUPS as u64,
                watch_s,
            ));
        }
        (bin, v)
    });
    drop(nodes);
    let (tiers, page_size, page_count, freelist, dbstat) = store;
    let load_end = loadavg();
    let total_s = bench_started.elapsed().as_secs_f64();

    // ------------------------------------------------------------ the figures
    let count = |t: &str, tier: i64| tiers.get(&(t.to_string(), tier)).copied().unwrap_or((0, 0));
    // Every cycle writes group rows; partition rows only for partitions that changed (and a
    // flat one every 30 cycles), so the cycles are counted from the group table and P is
    // the run's average, the first cycle's full write included (an over-estimate).
    let (p0_rows, _) = count("partition_offsets", 0);
    let (g0_rows, stored_cycles) = count("group_offsets", 0);
    let (g1_rows, g1_buckets) = count("group_offsets", 1);
    let (g2_rows, g2_buckets) = count("group_offsets", 2);
    let cyc = stored_cycles.max(1) as f64;
    // Rows a cycle writes into tier 0 of each table: P (partitions with an offset) and
    // C (committed group partitions).
    let p_per_cycle = p0_rows as f64 / cyc;
    let c_per_cycle = g0_rows as f64 / cyc;
    let total_rows = tiers.values().map(|(n, _)| n).sum::<i64>().max(1) as f64;
    let used_bytes = ((page_count - freelist) * page_size) as f64;
    let (bpr_p, bpr_g, bpr_note) = match &dbstat {
        Some(m) if !m.is_empty() => {
            let sum = |prefix: &str| {
                m.iter()
                    .filter(|(k, _)| {
                        k.starts_with(prefix)
                            || k.starts_with(&format!("sqlite_autoindex_{prefix}"))
                    })
                    .map(|(_, v)| *v)
                    .sum::<i64>() as f64
            };
            let p_rows = tiers
                .iter()
                .filter(|((t, _), _)| t == "partition_offsets")
                .map(|(_, (n, _))| *n)
                .sum::<i64>()
                .max(1) as f64;
            let g_rows = tiers
                .iter()
                .filter(|((t, _), _)| t == "group_offsets")
                .map(|(_, (n, _))| *n)
                .sum::<i64>()
                .max(1) as f64;
            (
                sum("partition_offsets") / p_rows,
                sum("group_offsets") / g_rows,
                "from SQLite's dbstat (table + its indexes, pages as allocated)",
            )
        }
        _ => (
            used_bytes / total_rows,
            used_bytes / total_rows,
            "database pages in use / all sample rows (dbstat not available)",
        ),
    };
    // The real period (interval + collection + store write), measured; the interval if
    // no period was seen.
    let period_s = {
        let mut v: Vec<f64> = cycles
            .windows(2)
            .map(|w| (w[1].taken_at_ms - w[0].taken_at_ms) as f64 / 1000.0)
            .collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).map_or(INTERVAL_S, |m| m.max(INTERVAL_S))
    };
    let per_day_cycles = 86_400.0 / period_s;
    // Without expiry: every cycle's tier-0 rows plus a new bucket row per 5 and 30 minutes.
    let inserted_rows_day = (p_per_cycle + c_per_cycle) * per_day_cycles
        + c_per_cycle * (86_400.0 / TIER1_BUCKET_S + 86_400.0 / TIER2_BUCKET_S);
    let inserted_bytes_day = (p_per_cycle * bpr_p + c_per_cycle * bpr_g) * per_day_cycles
        + c_per_cycle * bpr_g * (86_400.0 / TIER1_BUCKET_S + 86_400.0 / TIER2_BUCKET_S);
    // Bound: tier 0 holds 70 min plus up to 30 cycles of expiry lag; tier 1 25 h of 5-min
    // buckets (+2: the open bucket and expiry lag); tier 2 the retention of 30-min buckets (+2).
    let t0_rows = (TIER0_KEEP_S + EXPIRE_EVERY * period_s) / period_s;
    let t1_rows = TIER1_KEEP_S / TIER1_BUCKET_S + 2.0;
    let t2_rows = RETENTION_S / TIER2_BUCKET_S + 2.0;
    let bound_bytes =
        p_per_cycle * t0_rows * bpr_p + c_per_cycle * (t0_rows + t1_rows + t2_rows) * bpr_g;
    let day1_bytes = p_per_cycle * t0_rows * bpr_p
        + c_per_cycle * (t0_rows + 86_400.0 / TIER1_BUCKET_S + 86_400.0 / TIER2_BUCKET_S) * bpr_g;
    let later_day_bytes = c_per_cycle * (86_400.0 / TIER2_BUCKET_S) * bpr_g;

    // Cycle figures.
    let collects: Vec<f64> = cycles.iter().filter_map(|c| c.collect_s).collect();
    let periods: Vec<f64> = cycles
        .windows(2)
        .map(|w| (w[1].taken_at_ms - w[0].taken_at_ms) as f64 / 1000.0)
        .collect();
    let seen_periods: Vec<f64> = cycles
        .windows(2)
        .map(|w| w[1].seen.duration_since(w[0].seen).as_secs_f64())
        .collect();
    let stats = |v: &[f64]| -> (f64, f64, f64) {
        if v.is_empty() {
            return (f64::NAN, f64::NAN, f64::NAN);
        }
        let mut s = v.to_vec();
        s.sort_by(|a, b| a.total_cmp(b));
        (s[0], s[s.len() / 2], s[s.len() - 1])
    };
    let (c_min, c_med, c_max) = stats(&collects);
    let (p_min, p_med, p_max) = stats(&periods);
    let (_, sp_med, _) = stats(&seen_periods);
    let cpu_per_cycle = if cycles_in_window > 0 {
        (cpu_after - cpu_before) / cycles_in_window as f64
    } else {
        f64::NAN
    };

    // ------------------------------------------------------------ the report
    let mut r = String::new();
    let _ = writeln!(r, "# rill console benchmark\n");
    let _ = writeln!(r, "`cargo bench -p rill-admin --bench console` (admin/benches/console/); one run, everything on the same machine.\n");
    let _ = writeln!(r, "- machine: {cpus} CPUs ({cpu_model}); load average (1/5/15 min) {load_start} at the start, {load_end} at the end");
    let _ = writeln!(r, "- busiest processes at the start (other agents' builds and tests share these cores): {busy_start}");
    let _ = writeln!(r, "- cluster: {NODES} `rill broker` nodes of this build (release), loopback; {topics_n} topics × {PARTITIONS_PER_TOPIC} partitions = **{} partitions** (RF 1, about {} per node; three nodes as in earlier runs of this bench), plus `__consumer_offsets` (10 partitions); started in {cluster_start_s:.1} s, topics created in {create_s:.1} s", topics_n * PARTITIONS_PER_TOPIC, topics_n * PARTITIONS_PER_TOPIC / NODES);
    let _ = writeln!(r, "- data: {records} records of 100 B in {DATA_TOPICS} topics ({RECORDS_PER_PARTITION} per partition), {produce_s:.1} s; **{GROUPS} consumer groups**, each with committed offsets on {GROUP_PARTITIONS} partitions of one topic (simple OffsetCommits, no members; lag {} on the topics with data), {commit_s:.1} s", RECORDS_PER_PARTITION / 2);
    let _ = writeln!(r, "- console: `rill console` with its defaults (collection every {INTERVAL_S:.0} s, retention 7 d, request timeout 10 s), SQLite store in a temp dir; first snapshot with every group {first_full_s:.1} s after start");
    let _ = writeln!(r, "- client: one keep-alive HTTP/1.1 connection (a raw client over TcpStream in the bench), requests back to back, while the collector runs its cycles; 3 warm-up requests per page not counted; a watcher thread polls `GET /` (JSON) every 50 ms on its own connection");
    let _ = writeln!(r, "- whole run: {total_s:.0} s\n");

    let _ = writeln!(r, "## Pages and /metrics\n");
    let _ = writeln!(r, "Targets: pages p99 < 150 ms, scrape < 200 ms.\n");
    let _ = writeln!(
        r,
        "| page | request | requests | p50 ms | p99 ms | max ms | mean ms | body | target | met |"
    );
    let _ = writeln!(
        r,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for (what, path, json, n, p50, p99, max, mean, size) in &rows {
        let target = match *what {
            "topic list" | "group list" => Some(150.0),
            "/metrics scrape" => Some(200.0),
            _ => None,
        };
        let _ = writeln!(
            r,
            "| {what} | `GET {path}` {} | {n} | {p50:.1} | **{p99:.1}** | {max:.1} | {mean:.1} | {:.0} KiB | {} | {} |",
            if *json { "JSON" } else { "HTML" },
            *size as f64 / 1024.0,
            target.map_or("—".to_string(), |t| format!("< {t:.0}")),
            target.map_or("—", |t| if *p99 < t { "yes" } else { "no" }),
        );
    }

    let _ = writeln!(r, "\nThe same requests paced over {paced_s:.0} s ({requests} rounds of the five, one every {:.0} ms, while {paced_cycles} collector cycles ran: their store writes included):\n", step.as_secs_f64() * 1000.0);
    let _ = writeln!(
        r,
        "| request | requests | p50 ms | p99 ms | max ms | target | met |"
    );
    let _ = writeln!(r, "| --- | ---: | ---: | ---: | ---: | ---: | --- |");
    for ((path, json), v) in paced_forms.iter().zip(&paced) {
        let target = if *path == "/metrics" { 200.0 } else { 150.0 };
        let p99 = pct(v, 99.0);
        let _ = writeln!(
            r,
            "| `GET {path}` {} | {} | {:.1} | **{p99:.1}** | {:.1} | < {target:.0} | {} |",
            if *json { "JSON" } else { "HTML" },
            v.len(),
            pct(v, 50.0),
            pct(v, 100.0),
            if p99 < target { "yes" } else { "no" }
        );
    }

    let _ = writeln!(r, "\n## Collector cycle\n");
    let _ = writeln!(r, "The console exposes the time of its last successful collection as `rill_console_collect_duration_seconds` on `/metrics` (the cluster requests and building the snapshot, measured from the cycle's start to before the store write). The bench polls the overview's JSON (`layout.collected_at_ms`, the cycle's start time) every 50 ms and reads the gauge after each change; the time between two snapshots' `collected_at_ms` is the whole period: collection + store write (+ expiry every 30 cycles) + the {INTERVAL_S:.0} s wait.\n");
    let _ = writeln!(r, "| figure | min | median | max |");
    let _ = writeln!(r, "| --- | ---: | ---: | ---: |");
    let _ = writeln!(r, "| collection (`rill_console_collect_duration_seconds`), s, {} cycles | {c_min:.2} | **{c_med:.2}** | {c_max:.2} |", collects.len());
    let _ = writeln!(r, "| period between snapshots (`collected_at_ms`), s, {} periods | {p_min:.2} | {p_med:.2} | {p_max:.2} |", periods.len());
    let _ = writeln!(r, "| store write + overhead = period − {INTERVAL_S:.0} s − collection (medians), s | | {:.2} | |", p_med - INTERVAL_S - c_med);
    let _ = writeln!(r, "\nPeriod as seen by the watcher (median): {sp_med:.2} s. Console CPU: {cpu_per_cycle:.2} CPU-s per cycle ({:.1} % of one core at this interval), over {cycles_in_window} cycles in {idle_s} s with no page requests.", 100.0 * cpu_per_cycle / (p_med.max(INTERVAL_S)));

    let _ = writeln!(r, "\n## Store (SQLite)\n");
    let _ = writeln!(r, "After {stored_cycles} stored cycles (the whole run): files `console.db` {:.1} MiB + WAL {:.1} MiB; {} pages of {page_size} B ({} free) = {:.1} MiB in use.\n", mib(db_file as f64), mib(wal_file as f64), page_count, freelist, mib(used_bytes));
    let _ = writeln!(r, "| table | tier | rows | distinct timestamps |");
    let _ = writeln!(r, "| --- | ---: | ---: | ---: |");
    for ((t, tier), (n, ts)) in &tiers {
        let _ = writeln!(r, "| {t} | {tier} | {n} | {ts} |");
    }
    let _ = writeln!(r, "\nRows per cycle: P = {p_per_cycle:.0} partition end offsets (tier 0 only; those that changed, a flat partition every 30 cycles, and every partition in the first cycle, so over this short run P over-states a day's average), C = {c_per_cycle:.0} committed group partitions (tier 0, plus an upsert into the open 5-min and 30-min buckets: {g1_rows} rows in {g1_buckets} bucket(s) and {g2_rows} in {g2_buckets}). Bytes per row ({bpr_note}): partition_offsets {bpr_p:.0} B, group_offsets {bpr_g:.0} B.\n");
    let _ = writeln!(r, "Growth per day at the default interval ({INTERVAL_S:.0} s), whose real period T (interval + collection + store write) measured {period_s:.2} s: N = 86,400 / T = {per_day_cycles:.0} cycles a day (8,640 if T were exactly 10 s):\n");
    let _ = writeln!(r, "- written, before expiry: (P + C) × N + C × (288 + 48) = **{:.1} M rows ≈ {:.0} MiB/day** — what the store would grow by without retention", inserted_rows_day / 1e6, mib(inserted_bytes_day));
    let _ = writeln!(r, "- kept (store.rs: tier 0 every cycle kept 70 min, tier 1 last of each 5 min kept 25 h, tier 2 last of each 30 min kept `--retention`; `expire` runs every 30 cycles): day 1 ends at P × {t0_rows:.0} × {bpr_p:.0} B + C × ({t0_rows:.0} + 288 + 48) × {bpr_g:.0} B ≈ **{:.0} MiB**; each later day adds only C × 48 tier-2 rows ≈ **{:.1} MiB/day** until the retention is reached", mib(day1_bytes), mib(later_day_bytes));
    let _ = writeln!(r, "- bound: rows ≤ P × (4200 s + 30 T) / T + C × ((4200 s + 30 T) / T + 90,000 s / 300 s + 2 + R / 1800 s + 2) = P × {t0_rows:.0} + C × {:.0} at R = 7 d, T = {period_s:.2} s ≈ **{:.0} MiB** with the bytes per row above (SQLite reuses freed pages, so the file stays near this size; it does not shrink without VACUUM)", t0_rows + t1_rows + t2_rows, mib(bound_bytes));
    let _ = writeln!(r, "- the measured growth over this run: {:.2} MiB in {stored_cycles} cycles ({:.0} KiB per cycle)", mib(used_bytes), used_bytes / cyc / 1024.0);

    let _ = writeln!(r, "\n## Memory\n");
    let _ = writeln!(r, "Console RSS: **{:.0} MiB** at the end, {:.0} MiB the most seen while sampling every 50 ms, peak (VmHWM) {:.0} MiB.", rss_now as f64 / 1024.0, rss_max as f64 / 1024.0, rss_hwm as f64 / 1024.0);
    let _ = writeln!(r, "\n(Back-to-back pages from {pages_from_s:.0} s to {:.0} s into the run, then the paced rounds for {paced_s:.0} s, then {idle_s} s idle.)", pages_done.duration_since(bench_started).as_secs_f64());

    if let Some((bin, runs)) = &compared {
        let _ = writeln!(r, "\n## Collector cycle, this build and a baseline\n");
        let _ = writeln!(r, "`RILL_BASELINE_RILL_BIN={bin}`: each console in turn on the same cluster ({GROUPS} groups), a fresh SQLite store each, its defaults; watched after its first full snapshot.\n");
        let _ = writeln!(r, "| build | first full snapshot s | cycles | collection min s | median s | max s | RSS max MiB |");
        let _ = writeln!(r, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for o in runs {
            let (lo, med, hi) = stats(&o.collects);
            let _ = writeln!(
                r,
                "| {} | {:.1} | {} | {lo:.2} | **{med:.2}** | {hi:.2} | {:.0} |",
                o.label,
                o.first_full_s,
                o.collects.len(),
                o.rss_max_kb as f64 / 1024.0
            );
        }
    }

    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let _ = std::fs::create_dir_all(&out);
    let path: PathBuf = out.join("console.md");
    if let Err(e) = std::fs::write(&path, &r) {
        eprintln!("cannot write {}: {e}", path.display());
    }
    println!("{r}");
}
