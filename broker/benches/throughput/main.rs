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
//! `RILL_BROKER_BIN`, `RILL_LOG`, `RILL_RDKAFKA_PERFORMANCE` (the path of librdkafka's
//! `rdkafka_performance`: its latency mode runs against the ceiling and the broker too), and
//! `RILL_BASELINE_BROKER_BIN`: another build of the broker
//! (say, the previous commit's) run through the same produce, consume and latency trials,
//! alternating with this build's, in a section of its own.

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
    let load_at_start = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
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
    let mut quiet = Quiet::new(clk_tck);

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
        quiet.wait(&broker_stat);
        let req0 = fake.stats.produce_requests.load(Ordering::Relaxed);
        let cpu0 = CpuSnapshot::take(&broker_stat);
        let fake0 = cpu_ticks(&fake.stat_path);
        let mut r = produce_throughput(&fake.addr, topic, records, &payload);
        let cpu = cpu0.since(&broker_stat, clk_tck);
        r.server_cpu = cpu_delta(fake0, cpu_ticks(&fake.stat_path), clk_tck);
        r.client_cpu = cpu.bench - r.server_cpu;
        r.other_cpu = cpu.other;
        r.requests = fake.stats.produce_requests.load(Ordering::Relaxed) - req0;
        ceiling.push(r);

        progress(&format!("produce trial {}/{trials}: rill-broker", k + 1));
        quiet.wait(&broker_stat);
        let req0 = scrape_requests(&broker.http, "Produce").total;
        let cpu0 = CpuSnapshot::take(&broker_stat);
        let mut r = produce_throughput(&broker.bootstrap, topic, records, &payload);
        let cpu = cpu0.since(&broker_stat, clk_tck);
        r.server_cpu = cpu.broker;
        r.client_cpu = cpu.bench;
        r.other_cpu = cpu.other;
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
        quiet.wait(&broker_stat);
        let req0 = scrape_requests(&broker.http, "Fetch").total;
        let cpu0 = CpuSnapshot::take(&broker_stat);
        let mut r = consume_all(&broker.bootstrap, topic, p.delivered);
        let cpu = cpu0.since(&broker_stat, clk_tck);
        r.server_cpu = cpu.broker;
        r.client_cpu = cpu.bench;
        r.other_cpu = cpu.other;
        r.requests = scrape_requests(&broker.http, "Fetch").total - req0;
        consumed.push(r);
    }
    drop(profiler);
    let consume_rss_peak = sampler.finish();
    let consume_rss_end = status_kb(broker.pid, "VmRSS");
    let consume_hwm = status_kb(broker.pid, "VmHWM");

    // 5. Paced latency: the same client against the ack-only server first (the client's own
    // share of the tail), then against the broker.
    progress("latency: paced produce at a steady rate, ack-only server (ceiling)");
    quiet.wait(&broker_stat);
    let latency_ceiling = produce_latency(&fake.addr, &payload);
    progress("latency: paced produce at a steady rate, rill-broker");
    quiet.wait(&broker_stat);
    let sampler = RssSampler::start(broker.pid);
    let cpu0 = CpuSnapshot::take(&broker_stat);
    let latency = produce_latency(&broker.bootstrap, &payload);
    let latency_cpu = cpu0.since(&broker_stat, clk_tck);
    let latency_broker_cpu = latency_cpu.broker;
    let latency_rss_peak = sampler.finish();
    let latency_rss_end = status_kb(broker.pid, "VmRSS");
    // 5b. The same target with librdkafka's rdkafka_performance, when its path is given:
    // ceiling and broker alternating, `trials` runs each.
    let perf_tool = std::env::var_os("RILL_RDKAFKA_PERFORMANCE").map(PathBuf::from);
    let mut tool_runs: Vec<(&str, Result<Vec<u64>, String>)> = Vec::new();
    if let Some(tool) = &perf_tool {
        for k in 1..=trials {
            for (name, addr) in [
                ("ack-only server (ceiling)", fake.addr.as_str()),
                ("rill-broker", broker.bootstrap.as_str()),
            ] {
                progress(&format!(
                    "latency: rdkafka_performance run {k}/{trials}, {name}"
                ));
                quiet.wait(&broker_stat);
                tool_runs.push((name, rdkafka_performance_latency(tool, addr, &bench_dir)));
            }
        }
    }
    let final_hwm = status_kb(broker.pid, "VmHWM");

    progress("stopping rill-broker");
    broker.stop();
    drop(data);

    // The report.
    let mut r = Report::default();
    r.header(&bin, records, trials, clk_tck, &load_at_start);
    r.line(&format!(
        "- before each trial the bench waited (up to {} s) until other processes used < {:.0} % of the machine for 1 s: {} waits, {:.0} s waited in total, {} trial(s) started on a busy machine",
        QUIET_MAX_WAIT.as_secs(),
        QUIET_THRESHOLD * 100.0,
        quiet.waits,
        quiet.waited.as_secs_f64(),
        quiet.gave_up
    ));
    if perf {
        r.line("- **RILL_BENCH_PERF was set: `perf record` ran on the broker during produce and consume; those figures are perturbed.** Profiles: target/bench/perf-{produce,consume}.data");
    }
    let value_gb = (records * RECORD_SIZE as u64) as f64 / 1e9;

    r.section("1. Produce throughput (1 KiB records, acks=1, one partition)");
    r.line(&format!("Client: librdkafka `ThreadedProducer`, acks=1, linger.ms=5, batch.size=1000000, compression none, queue.buffering.max.messages=1000000, queue.buffering.max.kbytes=1048576; one sending thread. Timed from the first send to the last delivery report (connection and metadata set up before). {trials} trials per target, ceiling and broker alternating, each trial to a fresh topic; the median trial is shown."));
    r.line("");
    r.line("| target | msgs/s (median) | MB/s (median) | msgs/s (best) | trials msgs/s | Produce requests / trial | time s / trial | server CPU s / trial | client CPU s / trial | other processes' CPU s / trial |");
    r.line("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    for (name, v) in [
        (
            format!("ack-only server, Produce v{fake_version} (ceiling)"),
            &ceiling,
        ),
        (format!("rill-broker, Produce {broker_versions}"), &produced),
    ] {
        let rates: Vec<f64> = v.iter().map(ProduceResult::msgs_per_s).collect();
        r.line(&format!(
                        "| {name} | **{:.0}** | **{:.1}** | {:.0} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            median(&rates),
            median(&rates) * RECORD_SIZE as f64 / 1e6,
            best(&rates),
            rates
                .iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(" / "),
            mean(v.iter().map(|p| p.requests as f64)),
            mean(v.iter().map(|p| p.elapsed.as_secs_f64())),
            mean(v.iter().map(|p| p.server_cpu)),
            mean(v.iter().map(|p| p.client_cpu)),
            mean(v.iter().map(|p| p.other_cpu)),
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
    let best_ratio = best(
        &produced
            .iter()
            .map(ProduceResult::msgs_per_s)
            .collect::<Vec<_>>(),
    ) / best(
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
                "**2. broker / ceiling: {ratio:.1} %** of medians ({best_ratio:.1} % of best trials; per trial pair: {}). Target >= 80 %: {}",
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
    r.line("| MB/s values (median) | MB/s log bytes (median) | MB/s values (best) | trials MB/s (values) | Fetch requests / trial | time s / trial | broker CPU s / trial | client CPU s / trial | other processes' CPU s / trial |");
    r.line("| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    let c_rates: Vec<f64> = consumed
        .iter()
        .map(|c| c.value_bytes as f64 / 1e6 / c.elapsed.as_secs_f64())
        .collect();
    let consume_mbs = median(&c_rates);
    let log_ratio = log_bytes as f64 / (records * RECORD_SIZE as u64) as f64;
    r.line(&format!(
        "| **{consume_mbs:.1}** | {:.1} | {:.1} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
        consume_mbs * log_ratio,
        best(&c_rates),
        c_rates
            .iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(" / "),
        mean(consumed.iter().map(|c| c.requests as f64)),
        mean(consumed.iter().map(|c| c.elapsed.as_secs_f64())),
        mean(consumed.iter().map(|c| c.server_cpu)),
        mean(consumed.iter().map(|c| c.client_cpu)),
        mean(consumed.iter().map(|c| c.other_cpu)),
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
    r.line("| server | measure | samples | p50 ms | p99 ms | p999 ms | max ms |");
    r.line("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    for (name, v) in [
        ("rill-broker | send→ack", &latency.send_to_ack),
        ("rill-broker | schedule→ack", &latency.sched_to_ack),
        (
            "ack-only server (ceiling) | send→ack",
            &latency_ceiling.send_to_ack,
        ),
        (
            "ack-only server (ceiling) | schedule→ack",
            &latency_ceiling.sched_to_ack,
        ),
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
        "\nAchieved rate {:.0} msg/s; largest send lateness {:.3} ms; delivery failures {}; broker CPU {:.2} s over the phase ({:.0} % of one core); other processes' CPU meanwhile {:.2} s.",
        latency.achieved_rate,
        latency.max_lateness.as_secs_f64() * 1e3,
        latency.failed,
        latency_broker_cpu,
                latency_broker_cpu / (LATENCY_WARMUP + LATENCY_MEASURED).as_secs_f64() * 100.0,
        latency_cpu.other
    ));

    let (p99, p999) = (
        pct_ms(&latency.send_to_ack, 0.99),
        pct_ms(&latency.send_to_ack, 0.999),
    );
    r.line(&format!(
        "\nTarget: broker send→ack p99 <= 1 ms and p999 <= 3 ms: {}. The ceiling rows are the same client and pacing against a server that only acknowledges: what is left of the tail there is the client's and the machine's.",
        if p99 <= 1.0 && p999 <= 3.0 { "met" } else { "not met" }
    ));

    if let Some(tool) = &perf_tool {
        r.line("");
        r.line(&format!(
            "The same target with librdkafka's `rdkafka_performance` (`{}`) in latency mode: `-P -p 0 -s {RECORD_SIZE} -r {LATENCY_RATE} -c {} -a 1 -l -X linger.ms=0 -X socket.nagle.disable=true`; latency is its own, produce call to delivery report per message (`-A`, µs), paced by its rate limiter; the first {} s left out. Ceiling and broker runs alternate.",
            tool.display(),
            perf_tool_records(),
            LATENCY_WARMUP.as_secs()
        ));
        r.line("");
        r.line("| run | server | samples | p50 ms | p99 ms | p999 ms | max ms |");
        r.line("| ---: | --- | ---: | ---: | ---: | ---: | ---: |");
        for (i, (name, run)) in tool_runs.iter().enumerate() {
            match run {
                Ok(v) => r.line(&format!(
                    "| {} | {name} | {} | {:.3} | **{:.3}** | **{:.3}** | {:.3} |",
                    i / 2 + 1,
                    v.len(),
                    pct_ms(v, 0.50),
                    pct_ms(v, 0.99),
                    pct_ms(v, 0.999),
                    v.last().map_or(f64::NAN, |n| *n as f64 / 1e6),
                )),
                Err(e) => r.line(&format!("| {} | {name} | failed: {e} | | | | |", i / 2 + 1)),
            }
        }
    }

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
    if let Some(baseline) = std::env::var_os("RILL_BASELINE_BROKER_BIN") {
        let section = compare_with_baseline(
            Path::new(&baseline),
            &bin,
            &bench_dir,
            records,
            trials,
            &payload,
            &mut quiet,
        );
        r.line(&section);
    }
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

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

include!("machine.rs");
include!("clients.rs");
include!("ceiling.rs");
include!("report.rs");
include!("baseline.rs");
