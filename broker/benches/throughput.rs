//! Throughput, latency and resource benchmark for `rill-broker` (DESIGN.md §5). Not a timed
//! test: it measures, writes `target/bench/throughput.md` and prints it. It never fails on a
//! missed target; it fails only when something could not be measured.
//!
//! Run with `cargo bench -p rill-broker --bench throughput` (see `broker/benches/README.md`).
//! Cargo builds the release `rill-broker` binary for the bench and hands its path over in
//! `CARGO_BIN_EXE_rill-broker` (`target/release/rill-broker`); `RILL_BROKER_BIN` overrides it.
//!
//! Phases, all in one run on one machine (client and server share its cores):
//! - broker start: idle RSS, then RSS after topic creation;
//! - produce trials, alternating: librdkafka against a trivial in-process server that only
//!   acknowledges (the client-bound ceiling), then the same client and config against the
//!   broker, each trial writing 1 GiB of 1 KiB records to a fresh topic (msgs/s, MB/s, CPU/GB);
//! - consume trials: each 1 GiB log from offset 0 (MB/s);
//! - latency: paced produce at 10k msg/s, acks=1, linger.ms=0 (p50/p99/p999);
//! - RSS per phase (VmRSS sampled every 20 ms, VmHWM).
//!
//! Knobs (environment): `RILL_BENCH_RECORDS` (records per trial, default 2^20),
//! `RILL_BENCH_TRIALS` (default 3), `RILL_BENCH_PERF` (profile the broker with `perf record`),
//! `RILL_BROKER_BIN`, `RILL_LOG`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Size of every record value; records have no key and no headers.
const RECORD_SIZE: usize = 1024;
/// Records in the throughput phases: 1 GiB of values, which the consume phase reads back.
const DEFAULT_RECORDS: u64 = 1 << 20;
/// Produce trials per target (and consume trials), each to / from its own topic.
const DEFAULT_TRIALS: u64 = 3;
/// Topic name prefix of the throughput trials (`bench-throughput-1`, ...).
const TOPIC: &str = "bench-throughput";
const LATENCY_TOPIC: &str = "bench-latency";
const LATENCY_RATE: u64 = 10_000;
const LATENCY_WARMUP: Duration = Duration::from_secs(1);
const LATENCY_MEASURED: Duration = Duration::from_secs(10);
/// A phase making no progress for this long is reported as stuck (the bench aborts).
const STALL: Duration = Duration::from_secs(60);

fn main() {
    let t_start = Instant::now();
    let records = env_u64("RILL_BENCH_RECORDS", DEFAULT_RECORDS);
    let trials = env_u64("RILL_BENCH_TRIALS", DEFAULT_TRIALS).max(1) as usize;
    let perf = std::env::var_os("RILL_BENCH_PERF").is_some();
    let target = target_dir();
    let bench_dir = target.join("bench");
    std::fs::create_dir_all(&bench_dir).expect("cannot create target/bench");
    let bin = broker_binary();
    let clk_tck = clk_tck();
    let payload = payload();
    let topics: Vec<String> = (1..=trials).map(|k| format!("{TOPIC}-{k}")).collect();

    // Broker start and idle footprint.
    progress("starting rill-broker");
    let data = tempfile::Builder::new()
        .prefix("throughput-data-")
        .tempdir_in(&bench_dir)
        .expect("cannot create a data dir under target/bench");
    let mut broker = BrokerProc::start(&bin, data.path());
    let rss_idle = status_kb(broker.pid, "VmRSS");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut all_topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    all_topics.push(LATENCY_TOPIC);
    rt.block_on(create_topics(&broker.bootstrap, &all_topics));
    std::thread::sleep(Duration::from_millis(500));
    let rss_topics = status_kb(broker.pid, "VmRSS");
    let broker_stat = format!("/proc/{}/stat", broker.pid);
    let fake = FakeServer::start();

    // 1 + 2. Produce: ceiling and broker trials interleaved, so drift hits both alike.
    let sampler = RssSampler::start(broker.pid);
    let profiler = perf.then(|| Perf::start(broker.pid, &bench_dir.join("perf-produce.data")));
    let mut ceiling = Vec::new();
    let mut produced = Vec::new();
    for (k, topic) in topics.iter().enumerate() {
        progress(&format!(
            "produce trial {}/{trials}: ack-only server (ceiling)",
            k + 1
        ));
        let req0 = fake.stats.produce_requests.load(Ordering::Relaxed);
        let (fake0, self0) = (cpu_ticks(&fake.stat_path), cpu_ticks("/proc/self/stat"));
        let mut r = produce_throughput(&fake.addr, topic, records, &payload);
        r.server_cpu = cpu_delta(fake0, cpu_ticks(&fake.stat_path), clk_tck);
        r.client_cpu = cpu_delta(self0, cpu_ticks("/proc/self/stat"), clk_tck) - r.server_cpu;
        r.requests = fake.stats.produce_requests.load(Ordering::Relaxed) - req0;
        ceiling.push(r);

        progress(&format!("produce trial {}/{trials}: rill-broker", k + 1));
        let req0 = scrape_requests(&broker.http, "Produce").total;
        let (b0, self0) = (cpu_ticks(&broker_stat), cpu_ticks("/proc/self/stat"));
        let mut r = produce_throughput(&broker.bootstrap, topic, records, &payload);
        r.server_cpu = cpu_delta(b0, cpu_ticks(&broker_stat), clk_tck);
        r.client_cpu = cpu_delta(self0, cpu_ticks("/proc/self/stat"), clk_tck);
        r.requests = scrape_requests(&broker.http, "Produce").total - req0;
        produced.push(r);
    }
    drop(profiler);
    let produce_rss_peak = sampler.finish();
    let produce_rss_end = status_kb(broker.pid, "VmRSS");
    let produce_hwm = status_kb(broker.pid, "VmHWM");
    let fake_version = fake.stats.produce_version.load(Ordering::Relaxed);
    let broker_versions = scrape_requests(&broker.http, "Produce").versions;
    let log_bytes = dir_log_bytes(&data.path().join("logs").join(format!("{}-0", topics[0])));

    // 3. Consume each trial's log from its start.
    let sampler = RssSampler::start(broker.pid);
    let profiler = perf.then(|| Perf::start(broker.pid, &bench_dir.join("perf-consume.data")));
    let mut consumed = Vec::new();
    for (k, (topic, p)) in topics.iter().zip(&produced).enumerate() {
        progress(&format!(
            "consume trial {}/{trials}: {topic} from offset 0",
            k + 1
        ));
        let req0 = scrape_requests(&broker.http, "Fetch").total;
        let (b0, self0) = (cpu_ticks(&broker_stat), cpu_ticks("/proc/self/stat"));
        let mut r = consume_all(&broker.bootstrap, topic, p.delivered);
        r.server_cpu = cpu_delta(b0, cpu_ticks(&broker_stat), clk_tck);
        r.client_cpu = cpu_delta(self0, cpu_ticks("/proc/self/stat"), clk_tck);
        r.requests = scrape_requests(&broker.http, "Fetch").total - req0;
        consumed.push(r);
    }
    drop(profiler);
    let consume_rss_peak = sampler.finish();
    let consume_rss_end = status_kb(broker.pid, "VmRSS");
    let consume_hwm = status_kb(broker.pid, "VmHWM");

    // 5. Paced latency.
    progress("latency: paced produce at a steady rate");
    let sampler = RssSampler::start(broker.pid);
    let b_cpu0 = cpu_ticks(&broker_stat);
    let latency = produce_latency(&broker.bootstrap, &payload);
    let latency_broker_cpu = cpu_delta(b_cpu0, cpu_ticks(&broker_stat), clk_tck);
    let latency_rss_peak = sampler.finish();
    let latency_rss_end = status_kb(broker.pid, "VmRSS");
    let final_hwm = status_kb(broker.pid, "VmHWM");

    progress("stopping rill-broker");
    broker.stop();
    drop(data);

    // The report.
    let mut r = Report::default();
    r.header(&bin, records, trials, clk_tck);
    if perf {
        r.line("- **RILL_BENCH_PERF was set: `perf record` ran on the broker during produce and consume; those figures are perturbed.** Profiles: target/bench/perf-{produce,consume}.data");
    }
    let value_gb = (records * RECORD_SIZE as u64) as f64 / 1e9;

    r.section("1. Produce throughput (1 KiB records, acks=1, one partition)");
    r.line(&format!("Client: librdkafka `ThreadedProducer`, acks=1, linger.ms=5, batch.size=1000000, compression none, queue.buffering.max.messages=1000000, queue.buffering.max.kbytes=1048576; one sending thread. Timed from the first send to the last delivery report (connection and metadata set up before). {trials} trials per target, ceiling and broker alternating, each trial to a fresh topic; the median trial is shown."));
    r.line("");
    r.line("| target | msgs/s (median) | MB/s (median) | trials msgs/s | Produce requests / trial | server CPU s / trial | client CPU s / trial |");
    r.line("| --- | ---: | ---: | --- | ---: | ---: | ---: |");
    for (name, v) in [
        (
            format!("ack-only server, Produce v{fake_version} (ceiling)"),
            &ceiling,
        ),
        (format!("rill-broker, Produce {broker_versions}"), &produced),
    ] {
        let rates: Vec<f64> = v.iter().map(ProduceResult::msgs_per_s).collect();
        r.line(&format!(
            "| {name} | **{:.0}** | **{:.1}** | {} | {:.0} | {:.2} | {:.2} |",
            median(&rates),
            median(&rates) * RECORD_SIZE as f64 / 1e6,
            rates
                .iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(" / "),
            mean(v.iter().map(|p| p.requests as f64)),
            mean(v.iter().map(|p| p.server_cpu)),
            mean(v.iter().map(|p| p.client_cpu)),
        ));
    }
    r.line("");
    r.line("Server CPU for the ceiling is its one thread's; client CPU is the bench process minus that thread.");
    let ratio = median(
        &produced
            .iter()
            .map(ProduceResult::msgs_per_s)
            .collect::<Vec<_>>(),
    ) / median(
        &ceiling
            .iter()
            .map(ProduceResult::msgs_per_s)
            .collect::<Vec<_>>(),
    ) * 100.0;
    let pair: Vec<String> = produced
        .iter()
        .zip(&ceiling)
        .map(|(b, c)| format!("{:.0} %", b.msgs_per_s() / c.msgs_per_s() * 100.0))
        .collect();
    r.line("");
    r.line(&format!(
        "**2. broker / ceiling: {ratio:.1} %** of medians (per trial pair: {}). Target >= 80 %: {}",
        pair.join(", "),
        verdict(ratio >= 80.0)
    ));
    let failures: u64 = produced.iter().chain(&ceiling).map(|p| p.failed).sum();
    if failures > 0 {
        let first = produced
            .iter()
            .chain(&ceiling)
            .find_map(|p| p.first_error.clone())
            .unwrap_or_default();
        r.line(&format!(
            "\n**Delivery failures: {failures}** (first: {first})"
        ));
    }

    r.section("3. Consume throughput (from offset 0 of a 1 GiB log)");
    r.line(&format!("Client: librdkafka `BaseConsumer`, assign from Beginning, no commits, fetch.max.bytes=52428800, max.partition.fetch.bytes=10485760. Timed from assign to the last record. One trial per topic written above (each log {log_bytes} bytes on disk, page cache warm); the median trial is shown."));
    r.line("");
    r.line("| MB/s values (median) | MB/s log bytes (median) | trials MB/s (values) | Fetch requests / trial | broker CPU s / trial | client CPU s / trial |");
    r.line("| ---: | ---: | --- | ---: | ---: | ---: |");
    let c_rates: Vec<f64> = consumed
        .iter()
        .map(|c| c.value_bytes as f64 / 1e6 / c.elapsed.as_secs_f64())
        .collect();
    let consume_mbs = median(&c_rates);
    let log_ratio = log_bytes as f64 / (records * RECORD_SIZE as u64) as f64;
    r.line(&format!(
        "| **{consume_mbs:.1}** | {:.1} | {} | {:.0} | {:.2} | {:.2} |",
        consume_mbs * log_ratio,
        c_rates
            .iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(" / "),
        mean(consumed.iter().map(|c| c.requests as f64)),
        mean(consumed.iter().map(|c| c.server_cpu)),
        mean(consumed.iter().map(|c| c.client_cpu)),
    ));
    r.line(&format!(
        "\nTarget >= 500 MB/s: {}",
        verdict(consume_mbs >= 500.0)
    ));

    r.section("4. Broker CPU per GB");
    r.line("utime+stime of the server process (/proc/PID/stat) per 10^9 bytes of record values, mean over trials.");
    r.line("");
    r.line("| phase | CPU s / GB |");
    r.line("| --- | ---: |");
    r.line(&format!(
        "| rill-broker, produce (ingest) | **{:.2}** |",
        mean(produced.iter().map(|p| p.server_cpu)) / value_gb
    ));
    r.line(&format!(
        "| rill-broker, consume (egress) | {:.2} |",
        mean(consumed.iter().map(|c| c.server_cpu)) / value_gb
    ));
    r.line(&format!(
        "| ack-only server, produce (reference floor: read + decode + ack) | {:.2} |",
        mean(ceiling.iter().map(|p| p.server_cpu)) / value_gb
    ));

    r.section("5. Produce latency at a steady rate");
    r.line(&format!(
        "Client: librdkafka `ThreadedProducer`, acks=1, linger.ms=0, socket.nagle.disable=true, 1 KiB records, {LATENCY_RATE} msg/s paced on an absolute schedule (a late send is not skipped; the next ones catch up). {} s warm-up discarded, then {} s measured. send→ack: from just before `send()` to the delivery report; schedule→ack also counts the time the sender was late (no coordinated omission).",
        LATENCY_WARMUP.as_secs(),
        LATENCY_MEASURED.as_secs()
    ));
    r.line("");
    r.line("| measure | samples | p50 ms | p99 ms | p999 ms | max ms |");
    r.line("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (name, v) in [
        ("send→ack", &latency.send_to_ack),
        ("schedule→ack", &latency.sched_to_ack),
    ] {
        r.line(&format!(
            "| {name} | {} | **{:.3}** | **{:.3}** | **{:.3}** | {:.3} |",
            v.len(),
            pct_ms(v, 0.50),
            pct_ms(v, 0.99),
            pct_ms(v, 0.999),
            v.last().map_or(f64::NAN, |n| *n as f64 / 1e6),
        ));
    }
    r.line(&format!(
        "\nAchieved rate {:.0} msg/s; largest send lateness {:.3} ms; delivery failures {}; broker CPU {:.2} s over the phase ({:.0} % of one core).",
        latency.achieved_rate,
        latency.max_lateness.as_secs_f64() * 1e3,
        latency.failed,
        latency_broker_cpu,
        latency_broker_cpu / (LATENCY_WARMUP + LATENCY_MEASURED).as_secs_f64() * 100.0
    ));

    r.section("6. Broker memory (/proc/PID/status)");
    r.line("| when | VmRSS MiB | peak VmRSS over the phase MiB (20 ms samples) | VmHWM MiB |");
    r.line("| --- | ---: | ---: | ---: |");
    let mb = |kb: u64| format!("{:.1}", kb as f64 / 1024.0);
    r.line(&format!(
        "| idle, right after the ready line | **{}** | | |",
        mb(rss_idle)
    ));
    r.line(&format!(
        "| idle, after creating {} topics | **{}** | | |",
        all_topics.len(),
        mb(rss_topics)
    ));
    r.line(&format!(
        "| after the produce trials | {} | {} | {} |",
        mb(produce_rss_end),
        mb(produce_rss_peak),
        mb(produce_hwm)
    ));
    r.line(&format!(
        "| after the consume trials | {} | {} | {} |",
        mb(consume_rss_end),
        mb(consume_rss_peak),
        mb(consume_hwm)
    ));
    r.line(&format!(
        "| after the latency phase | {} | {} | {} |",
        mb(latency_rss_end),
        mb(latency_rss_peak),
        mb(final_hwm)
    ));
    r.line(&format!(
        "\nTarget idle < 30 MB: {} (the kernel updates VmHWM lazily, so it can trail the sampled peak slightly)",
        verdict(rss_idle.max(rss_topics) < 30 * 1024)
    ));
    r.line(&format!(
        "\n---\nWhole bench (excluding the build): {:.0} s.",
        t_start.elapsed().as_secs_f64()
    ));
    let out = bench_dir.join("throughput.md");
    std::fs::write(&out, &r.text).expect("cannot write target/bench/throughput.md");
    println!("{}", r.text);
    progress(&format!("report written to {}", out.display()));
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} must be a non-negative integer, got {v:?}"))
        })
        .unwrap_or(default)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    sum / n as f64
}

/// `perf record -g` on the broker while alive (only with RILL_BENCH_PERF set).
struct Perf {
    child: Option<Child>,
}

impl Perf {
    fn start(pid: u32, out: &Path) -> Perf {
        let child = Command::new("perf")
            .args(["record", "-g", "-F", "999", "-o"])
            .arg(out)
            .args(["-p", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(c) => {
                std::thread::sleep(Duration::from_millis(300));
                Perf { child: Some(c) }
            }
            Err(e) => {
                progress(&format!("RILL_BENCH_PERF: cannot run perf: {e}"));
                Perf { child: None }
            }
        }
    }
}

impl Drop for Perf {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Environment

fn progress(msg: &str) {
    eprintln!("[throughput] {msg}");
}

/// `target/` (or `$CARGO_TARGET_DIR`): the bench executable lives in `<target>/release/deps/`.
fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("cannot locate the bench executable");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .expect("bench executable is not under <target>/<profile>/deps/")
}

/// The release `rill-broker`: cargo builds it for benches; built here as a last resort.
fn broker_binary() -> PathBuf {
    if let Ok(bin) = std::env::var("RILL_BROKER_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "RILL_BROKER_BIN={} does not exist",
            bin.display()
        );
        return bin;
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_rill-broker"));
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        progress(&format!(
            "{} is missing: running `{cargo} build --release -p rill-broker --bin rill-broker`",
            bin.display()
        ));
        let ok = Command::new(&cargo)
            .args([
                "build",
                "--release",
                "-p",
                "rill-broker",
                "--bin",
                "rill-broker",
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok && bin.is_file(),
            "the bench needs the release broker at {}: build it with \
             `cargo build --release -p rill-broker --bin rill-broker`",
            bin.display()
        );
    }
    bin
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(100.0)
}

fn sh(cmd: &str, args: &[&str], dir: &Path) -> Option<String> {
    let o = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Incompressible-looking record value (xorshift), the same for every record.
fn payload() -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..RECORD_SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// /proc

/// utime + stime in clock ticks, from a `/proc/.../stat` file.
fn cpu_ticks(path: &str) -> u64 {
    let s = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = s
        .rsplit_once(')')
        .map(|(_, r)| r)
        .unwrap_or_else(|| panic!("unexpected format of {path}"));
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> u64 {
        f.get(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("unexpected format of {path}"))
    };
    field(11) + field(12)
}

fn cpu_delta(before: u64, after: u64, clk_tck: f64) -> f64 {
    after.saturating_sub(before) as f64 / clk_tck
}

/// A `kB` field of `/proc/PID/status` (VmRSS, VmHWM); 0 if the process is gone.
fn status_kb(pid: u32, field: &str) -> u64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Samples VmRSS every 20 ms on a thread, keeping the maximum.
struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = 0;
            while !s.load(Ordering::Relaxed) {
                peak = peak.max(status_kb(pid, "VmRSS"));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak.max(status_kb(pid, "VmRSS"))
        });
        RssSampler { stop, handle }
    }

    /// The peak VmRSS in kB.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("RSS sampler panicked")
    }
}

/// Bytes in `*.log` segment files under a directory tree.
fn dir_log_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => dir_log_bytes(&p),
                Ok(_) if p.extension().is_some_and(|x| x == "log") => {
                    e.metadata().map(|m| m.len()).unwrap_or(0)
                }
                _ => 0,
            }
        })
        .sum()
}

// ---------------------------------------------------------------------------------------------
// The broker process

struct BrokerProc {
    child: Child,
    pid: u32,
    bootstrap: String,
    http: String,
}

impl BrokerProc {
    fn start(bin: &Path, data: &Path) -> BrokerProc {
        let mut cmd = Command::new(bin);
        for o in [
            "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
            "http.listener=127.0.0.1:0".to_string(),
            format!("log.dirs={}", data.join("logs").display()),
        ] {
            cmd.arg("--override").arg(o);
        }
        cmd.env(
            "RILL_LOG",
            std::env::var("RILL_LOG").unwrap_or_else(|_| "warn".into()),
        );
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("broker stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("rill-broker ready:") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("rill-broker did not print its ready line within 60 s");
            }
        };
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .map(str::to_string)
                .unwrap_or_else(|| panic!("ready line without {k}: {line}"))
        };
        let pid = child.id();
        progress(&format!("{line} (pid {pid})"));
        BrokerProc {
            pid,
            bootstrap: field("kafka="),
            http: field("http="),
            child,
        }
    }

    /// SIGTERM, then SIGKILL after 20 s.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        for _ in 0..400 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        progress("rill-broker ignored SIGTERM for 20 s: killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BrokerProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn create_topics(bootstrap: &str, names: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in admin
        .create_topics(&topics, &opts)
        .await
        .expect("CreateTopics request failed")
    {
        if let Err((name, code)) = r {
            panic!("cannot create topic {name}: {code}");
        }
    }
}

struct RequestCount {
    total: u64,
    versions: String,
}

/// Requests of one API the broker counted, from `/metrics`, e.g. `1234 (v10)`.
fn scrape_requests(http: &str, api: &str) -> RequestCount {
    let body = http_get(http, "/metrics").unwrap_or_default();
    let label = format!("request=\"{api}\"");
    let mut total = 0;
    let mut versions = Vec::new();
    for line in body.lines() {
        if !line.starts_with("kafka_network_requestmetrics_requests_total{")
            || !line.contains(&label)
        {
            continue;
        }
        let n: u64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
        total += n;
        if let Some(v) = line
            .split("version=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
        {
            versions.push(format!("v{v}"));
        }
    }
    RequestCount {
        total,
        versions: if versions.is_empty() {
            "?".into()
        } else {
            versions.join(",")
        },
    }
}

/// Minimal HTTP/1.1 GET (keeps an HTTP client out of the dev-dependencies).
fn http_get(base: &str, path: &str) -> Option<String> {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    // Chunk-size lines, if any, never start with the metric name searched for.
    resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

// ---------------------------------------------------------------------------------------------
// Produce throughput

#[derive(Default)]
struct CountingContext {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

struct ProduceResult {
    delivered: u64,
    failed: u64,
    first_error: Option<String>,
    elapsed: Duration,
    /// Filled in by the caller: Produce requests the server saw, server and client CPU s.
    requests: u64,
    server_cpu: f64,
    client_cpu: f64,
}

impl ProduceResult {
    fn msgs_per_s(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64()
    }
    fn mb_per_s(&self) -> f64 {
        (self.delivered * RECORD_SIZE as u64) as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
}

fn produce_throughput(bootstrap: &str, topic: &str, n: u64, payload: &[u8]) -> ProduceResult {
    let producer: ThreadedProducer<CountingContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "1")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("compression.type", "none")
        .set("enable.idempotence", "false")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "120000")
        .create_with_context(CountingContext::default())
        .expect("cannot create the producer");
    // Connect and learn the leader before the clock starts.
    producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .expect("metadata before producing");
    let ctx = producer.context().clone();
    let t0 = Instant::now();
    let mut last = t0;
    let mut last_progress = (t0, 0u64);
    for i in 0..n {
        let mut rec = BaseRecord::<(), [u8]>::to(topic)
            .payload(payload)
            .partition(0);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    rec = back;
                    std::thread::sleep(Duration::from_micros(500));
                    let d = ctx.delivered.load(Ordering::Relaxed);
                    if d != last_progress.1 {
                        last_progress = (Instant::now(), d);
                    } else {
                        assert!(
                            last_progress.0.elapsed() < STALL,
                            "produce stalled: no delivery for {STALL:?} ({d} of {n} delivered)"
                        );
                    }
                }
                Err((e, _)) => panic!("send failed: {e}"),
            }
        }
        if i % 4096 == 0 && last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            progress(&format!(
                "  sent {i}, delivered {} after {:.1} s",
                ctx.delivered.load(Ordering::Relaxed),
                t0.elapsed().as_secs_f64()
            ));
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("flush did not finish within 120 s");
    let elapsed = t0.elapsed();
    let r = ProduceResult {
        delivered: ctx.delivered.load(Ordering::Relaxed),
        failed: ctx.failed.load(Ordering::Relaxed),
        first_error: ctx.first_error.lock().ok().and_then(|e| e.clone()),
        elapsed,
        requests: 0,
        server_cpu: 0.0,
        client_cpu: 0.0,
    };
    progress(&format!(
        "  {} delivered, {} failed in {:.2} s: {:.0} msgs/s, {:.1} MB/s",
        r.delivered,
        r.failed,
        elapsed.as_secs_f64(),
        r.msgs_per_s(),
        r.mb_per_s()
    ));
    r
}

// ---------------------------------------------------------------------------------------------
// Consume throughput

struct ConsumeResult {
    value_bytes: u64,
    elapsed: Duration,
    /// Filled in by the caller: Fetch requests the broker saw, broker and client CPU s.
    requests: u64,
    server_cpu: f64,
    client_cpu: f64,
}

fn consume_all(bootstrap: &str, topic: &str, n: u64) -> ConsumeResult {
    // librdkafka's assign() needs a group.id; the broker advertises no FindCoordinator, so
    // librdkafka never looks for a coordinator, and nothing is committed.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "rill-bench-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("receive.message.max.bytes", "104857600")
        .set("queued.max.messages.kbytes", "262144")
        .create()
        .expect("cannot create the consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("topic partition list");
    let t0 = Instant::now();
    consumer.assign(&tpl).expect("assign");
    let (mut records, mut value_bytes) = (0u64, 0u64);
    let mut last_msg = Instant::now();
    let mut last_progress = t0;
    while records < n {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                records += 1;
                value_bytes += m.payload_len() as u64;
                last_msg = Instant::now();
            }
            Some(Err(e)) => panic!("consume error after {records} records: {e}"),
            None => assert!(
                last_msg.elapsed() < STALL,
                "consume stalled: nothing for {STALL:?} after {records} of {n} records"
            ),
        }
        if records % 65536 == 0 && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            progress(&format!(
                "  consumed {records} after {:.1} s",
                t0.elapsed().as_secs_f64()
            ));
        }
    }
    let elapsed = t0.elapsed();
    progress(&format!(
        "  {records} records, {value_bytes} value bytes in {:.2} s: {:.1} MB/s",
        elapsed.as_secs_f64(),
        value_bytes as f64 / 1e6 / elapsed.as_secs_f64()
    ));
    ConsumeResult {
        value_bytes,
        elapsed,
        requests: 0,
        server_cpu: 0.0,
        client_cpu: 0.0,
    }
}

// ---------------------------------------------------------------------------------------------
// Latency

/// Per message: (index, scheduled send time, actual send time).
type Stamp = Box<(u64, Instant, Instant)>;

#[derive(Default)]
struct LatencyContext {
    /// (index, send→ack ns, schedule→ack ns)
    samples: Mutex<Vec<(u64, u64, u64)>>,
    failed: AtomicU64,
}

impl ClientContext for LatencyContext {}

impl ProducerContext for LatencyContext {
    type DeliveryOpaque = Stamp;

    fn delivery(&self, result: &DeliveryResult<'_>, stamp: Stamp) {
        let now = Instant::now();
        let (i, sched, sent) = *stamp;
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let ns = |t: Instant| now.duration_since(t).as_nanos() as u64;
        if let Ok(mut s) = self.samples.lock() {
            s.push((i, ns(sent), ns(sched)));
        }
    }
}

struct LatencyResult {
    /// Sorted nanoseconds.
    send_to_ack: Vec<u64>,
    sched_to_ack: Vec<u64>,
    achieved_rate: f64,
    max_lateness: Duration,
    failed: u64,
}

fn produce_latency(bootstrap: &str, payload: &[u8]) -> LatencyResult {
    let producer: ThreadedProducer<LatencyContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "1")
        .set("linger.ms", "0")
        .set("compression.type", "none")
        .set("enable.idempotence", "false")
        .set("socket.nagle.disable", "true")
        .set("message.timeout.ms", "30000")
        .create_with_context(LatencyContext::default())
        .expect("cannot create the latency producer");
    producer
        .client()
        .fetch_metadata(Some(LATENCY_TOPIC), Duration::from_secs(30))
        .expect("metadata before the latency phase");
    let ctx = producer.context().clone();
    let interval = Duration::from_nanos(1_000_000_000 / LATENCY_RATE);
    let warmup = LATENCY_RATE * LATENCY_WARMUP.as_secs();
    let total = warmup + LATENCY_RATE * LATENCY_MEASURED.as_secs();
    let start = Instant::now() + Duration::from_millis(10);
    let mut max_lateness = Duration::ZERO;
    let mut next_progress = start + Duration::from_secs(1);
    for i in 0..total {
        let sched = start + interval * i as u32;
        let now = Instant::now();
        if sched > now {
            std::thread::sleep(sched - now);
        }
        let sent = Instant::now();
        if i >= warmup {
            max_lateness = max_lateness.max(sent - sched);
        }
        let rec = BaseRecord::<(), [u8], Stamp>::with_opaque_to(
            LATENCY_TOPIC,
            Box::new((i, sched, sent)),
        )
        .payload(payload)
        .partition(0);
        if let Err((e, _)) = producer.send(rec) {
            panic!("latency send {i} failed: {e}");
        }
        if sent >= next_progress {
            next_progress += Duration::from_secs(1);
            progress(&format!(
                "  sent {i}, acked {}",
                ctx.samples.lock().map(|s| s.len()).unwrap_or(0)
            ));
        }
    }
    let sent_secs = start.elapsed().as_secs_f64();
    producer
        .flush(Duration::from_secs(30))
        .expect("latency flush did not finish within 30 s");
    drop(producer);
    let samples = std::mem::take(&mut *ctx.samples.lock().expect("latency samples"));
    let measured: Vec<&(u64, u64, u64)> = samples.iter().filter(|s| s.0 >= warmup).collect();
    let mut send_to_ack: Vec<u64> = measured.iter().map(|s| s.1).collect();
    let mut sched_to_ack: Vec<u64> = measured.iter().map(|s| s.2).collect();
    send_to_ack.sort_unstable();
    sched_to_ack.sort_unstable();
    let r = LatencyResult {
        achieved_rate: total as f64 / sent_secs,
        send_to_ack,
        sched_to_ack,
        max_lateness,
        failed: ctx.failed.load(Ordering::Relaxed),
    };
    progress(&format!(
        "  p50 {:.3} ms, p99 {:.3} ms, p999 {:.3} ms (send→ack, {} samples)",
        pct_ms(&r.send_to_ack, 0.5),
        pct_ms(&r.send_to_ack, 0.99),
        pct_ms(&r.send_to_ack, 0.999),
        r.send_to_ack.len()
    ));
    r
}

/// Nearest-rank percentile of sorted nanoseconds, in milliseconds.
fn pct_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1e6
}

// ---------------------------------------------------------------------------------------------
// The ack-only server (client-bound ceiling)

#[derive(Default)]
struct FakeStats {
    produce_requests: AtomicU64,
    produce_version: AtomicI64,
    next_offset: AtomicI64,
}

struct FakeServer {
    addr: String,
    /// `/proc/PID/task/TID/stat` of the server's only thread.
    stat_path: String,
    stats: Arc<FakeStats>,
}

impl FakeServer {
    /// Serves on one thread (a current-thread tokio runtime) for the rest of the process.
    fn start() -> FakeServer {
        let stats = Arc::new(FakeStats::default());
        let (tx, rx) = mpsc::channel();
        let st = stats.clone();
        std::thread::Builder::new()
            .name("ack-only-server".into())
            .spawn(move || {
                let me = std::fs::read_link("/proc/thread-self")
                    .expect("cannot resolve /proc/thread-self");
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind the ack-only server");
                    let port = listener.local_addr().expect("local addr").port();
                    let stat = Path::new("/proc").join(me).join("stat");
                    let _ = tx.send((port, stat.display().to_string()));
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let st = st.clone();
                        tokio::spawn(async move {
                            if let Err(e) = fake_connection(stream, port, &st).await {
                                progress(&format!("ack-only server: connection error: {e}"));
                            }
                        });
                    }
                });
            })
            .expect("spawn the ack-only server thread");
        let (port, stat_path) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the ack-only server did not start");
        FakeServer {
            addr: format!("127.0.0.1:{port}"),
            stat_path,
            stats,
        }
    }
}

async fn fake_connection(
    stream: tokio::net::TcpStream,
    port: u16,
    st: &FakeStats,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (rd, mut wr) = stream.into_split();
    let mut rd = tokio::io::BufReader::with_capacity(1 << 20, rd);
    let mut out = BytesMut::with_capacity(64 * 1024);
    loop {
        let size = match rd.read_i32().await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let size = usize::try_from(size).map_err(|_| bad("negative frame size"))?;
        let mut buf = Vec::with_capacity(size);
        (&mut rd).take(size as u64).read_to_end(&mut buf).await?;
        if buf.len() != size || size < 8 {
            return Ok(());
        }
        let mut frame = Bytes::from(buf);
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let Ok(api) = ApiKey::try_from(key) else {
            return Ok(());
        };
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        if api == ApiKey::ApiVersions && version > 4 {
            // KIP-511: answer v0 with UNSUPPORTED_VERSION and our list; the client retries.
            let resp = fake_api_versions().with_error_code(35);
            encode_response(&mut out, correlation_id, api, 0, &resp)?;
            wr.write_all(&out).await?;
            continue;
        }
        RequestHeader::decode(&mut frame, api.request_header_version(version))
            .map_err(|e| bad(&format!("request header: {e}")))?;
        match api {
            ApiKey::ApiVersions => {
                encode_response(&mut out, correlation_id, api, version, &fake_api_versions())?
            }
            ApiKey::Metadata => {
                let req = MetadataRequest::decode(&mut frame, version)
                    .map_err(|e| bad(&format!("metadata: {e}")))?;
                encode_response(
                    &mut out,
                    correlation_id,
                    api,
                    version,
                    &fake_metadata(req, version, port),
                )?
            }
            ApiKey::Produce => {
                let req = ProduceRequest::decode(&mut frame, version)
                    .map_err(|e| bad(&format!("produce: {e}")))?;
                st.produce_requests.fetch_add(1, Ordering::Relaxed);
                st.produce_version.store(version.into(), Ordering::Relaxed);
                let acks = req.acks;
                let resp = fake_produce(req, st);
                if acks == 0 {
                    continue;
                }
                encode_response(&mut out, correlation_id, api, version, &resp)?
            }
            _ => return Ok(()),
        }
        wr.write_all(&out).await?;
    }
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

fn encode_response<R: Encodable>(
    out: &mut BytesMut,
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    body: &R,
) -> std::io::Result<()> {
    out.clear();
    out.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(out, api.response_header_version(version))
        .map_err(|e| bad(&format!("encode header: {e}")))?;
    body.encode(out, version)
        .map_err(|e| bad(&format!("encode {api:?}: {e}")))?;
    let len = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn fake_api_versions() -> ApiVersionsResponse {
    let v = |k: ApiKey, min: i16, max: i16| {
        ApiVersion::default()
            .with_api_key(k as i16)
            .with_min_version(min)
            .with_max_version(max)
    };
    ApiVersionsResponse::default().with_api_keys(vec![
        v(ApiKey::Produce, 0, 11),
        v(ApiKey::Metadata, 0, 12),
        v(ApiKey::ApiVersions, 0, 4),
    ])
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// One broker (itself, node 1); every topic asked for exists with one partition led by it.
fn fake_metadata(req: MetadataRequest, version: i16, port: u16) -> MetadataResponse {
    let names: Vec<String> = match req.topics {
        Some(list) if !list.is_empty() => list
            .into_iter()
            .filter_map(|t| t.name.map(|n| n.0.to_string()))
            .collect(),
        _ => vec![TOPIC.to_string()],
    };
    let topics = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            MetadataResponseTopic::default()
                .with_name(Some(TopicName(sb(name))))
                .with_topic_id(if version >= 10 {
                    uuid::Uuid::from_u128(0x5249_4c4c_0000_0000 + i as u128 + 1)
                } else {
                    uuid::Uuid::nil()
                })
                .with_partitions(vec![MetadataResponsePartition::default()
                    .with_partition_index(0)
                    .with_leader_id(BrokerId(1))
                    .with_leader_epoch(if version >= 7 { 0 } else { -1 })
                    .with_replica_nodes(vec![BrokerId(1)])
                    .with_isr_nodes(vec![BrokerId(1)])])
                .with_topic_authorized_operations(i32::MIN)
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(1))
            .with_host(sb("127.0.0.1"))
            .with_port(port.into())])
        .with_cluster_id((version >= 2).then(|| sb("ack-only")))
        .with_controller_id(BrokerId(if version >= 1 { 1 } else { -1 }))
        .with_topics(topics)
}

/// Acknowledges every partition: error 0, base offsets increasing by the record count.
fn fake_produce(req: ProduceRequest, st: &FakeStats) -> ProduceResponse {
    let responses = req
        .topic_data
        .into_iter()
        .map(|t| {
            let parts = t
                .partition_data
                .iter()
                .map(|p| {
                    let n = p.records.as_deref().map_or(0, count_records);
                    let base = st.next_offset.fetch_add(n, Ordering::Relaxed);
                    PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_base_offset(base)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(0)
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(t.name)
                .with_partition_responses(parts)
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}

/// Records in a v2 record set: sum of lastOffsetDelta + 1 over its batch headers.
fn count_records(mut b: &[u8]) -> i64 {
    let mut n = 0;
    while b.len() >= 61 {
        let len = i32::from_be_bytes([b[8], b[9], b[10], b[11]]);
        let delta = i32::from_be_bytes([b[23], b[24], b[25], b[26]]);
        n += i64::from(delta) + 1;
        let total = 12 + len.max(0) as usize;
        if total > b.len() {
            break;
        }
        b = &b[total..];
    }
    n
}

// ---------------------------------------------------------------------------------------------
// Report text

#[derive(Default)]
struct Report {
    text: String,
}

impl Report {
    fn line(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
    }

    fn section(&mut self, title: &str) {
        let _ = write!(self.text, "\n## {title}\n\n");
    }

    fn header(&mut self, bin: &Path, records: u64, trials: usize, clk_tck: f64) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let rev = sh("git", &["rev-parse", "--short=12", "HEAD"], &root)
            .unwrap_or_else(|| "unknown".into());
        let dirty = sh(
            "git",
            &["status", "--porcelain", "--untracked-files=no"],
            &root,
        )
        .is_some_and(|s| !s.is_empty());
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, m)| m.trim())
            })
            .unwrap_or("unknown");
        let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
        let mem_total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        self.line("# rill-broker throughput benchmark");
        self.line("");
        self.line(&format!(
            "- git: `{rev}`{}",
            if dirty {
                " (working tree has uncommitted changes)"
            } else {
                ""
            }
        ));
        self.line(&format!(
            "- machine: {nproc} CPUs ({model}), {mem_total} RAM, Linux {kernel}; CLK_TCK {clk_tck}"
        ));
        self.line(&format!("- broker: `{}` (release), one node, data on local disk under target/bench/, RILL_LOG=warn", bin.display()));
        self.line(&format!(
            "- client: librdkafka {} via rdkafka 0.39, in the bench process on the same machine: client and server share the CPUs",
            rdkafka::util::get_rdkafka_version().1
        ));
        self.line(&format!(
            "- data: {records} records of {RECORD_SIZE} B values ({:.3} GiB) per trial, {trials} trials, no keys; MB = 10^6 bytes unless stated",
            (records * RECORD_SIZE as u64) as f64 / (1u64 << 30) as f64
        ));
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}
