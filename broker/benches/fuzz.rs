//! The long fuzz run (a report, not a timed test): `RILL_FUZZ_INPUTS` inputs (default
//! 10,000,000) through every parser the network reaches, the same engine and oracles as the
//! CI fuzz test (`tests/fuzz.rs`, `tests/common/fuzz.rs`), in worker processes so that an
//! abort or a hang is counted rather than ending the run.
//!
//! `cargo bench -p rill-broker --bench fuzz` writes `target/bench/fuzz.md`: inputs per target,
//! panics, oracle failures (allocation beyond 64 x the input + 1 MiB), aborts, hangs (an input
//! over 10 s), the most one input allocated, the slowest input, inputs per second and each
//! worker's peak RSS.

#[path = "../tests/common/fuzz.rs"]
mod fuzz;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// The seed of the whole run; worker `w` takes inputs `w, w + workers, ...` of it.
const SEED: u64 = 0xF022_ED5E;
/// An input slower than this is a hang (the worker aborts and is counted).
const HANG: Duration = Duration::from_secs(10);

fn main() {
    if let Ok(w) = std::env::var("RILL_FUZZ_WORKER") {
        worker(&w);
        return;
    }
    let total: u64 = std::env::var("RILL_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let workers: u64 = std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1);
    let exe = std::env::current_exe().expect("own path");
    let t0 = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let exe = exe.clone();
            std::thread::spawn(move || {
                Command::new(exe)
                    .env("RILL_FUZZ_WORKER", format!("{w}/{workers}/{total}"))
                    .output()
                    .expect("worker")
            })
        })
        .collect();
    let mut report = String::new();
    let _ = writeln!(report, "# rill-broker fuzz run\n");
    let _ = writeln!(
        report,
        "- {total} inputs (seed {SEED:#x}), {workers} worker processes on {workers} CPUs, release build; corpus: {} recorded exchanges (`broker/tests/fuzz-corpus/`)",
        fuzz::load_corpus().len()
    );
    let _ = writeln!(report, "- targets: the server's request decode (every advertised ApiKey and version; mutations of recorded frames and random bytes), the client's response decoders, record-batch validation + streaming walk + bounded decode, the controller RPC parser\n");
    let _ = writeln!(report, "| worker | inputs | by target | panics | oracle failures | aborts | hangs | most allocated by one input | slowest input | inputs/s | peak RSS |");
    let _ = writeln!(
        report,
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let mut failures = Vec::new();
    let (mut sum_inputs, mut sum_panics, mut sum_oracle, mut aborts, mut hangs) =
        (0u64, 0, 0, 0, 0);
    for (w, h) in handles.into_iter().enumerate() {
        let out = h.join().expect("join");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stdout.lines().find(|l| l.starts_with("RESULT "));
        let hang = stderr.contains("HANG");
        match (out.status.success(), line) {
            (true, Some(l)) => {
                let f: BTreeMap<&str, &str> = l
                    .trim_start_matches("RESULT ")
                    .split(' ')
                    .filter_map(|kv| kv.split_once('='))
                    .collect();
                let get = |k: &str| f.get(k).copied().unwrap_or("?");
                let n: u64 = get("inputs").parse().unwrap_or(0);
                sum_inputs += n;
                sum_panics += get("panics").parse::<u64>().unwrap_or(0);
                sum_oracle += get("oracle").parse::<u64>().unwrap_or(0);
                let _ = writeln!(
                    report,
                    "| {w} | {n} | {} | {} | {} | 0 | 0 | {} B | {} µs | {} | {} MiB |",
                    get("targets"),
                    get("panics"),
                    get("oracle"),
                    get("max_alloc"),
                    get("slowest_us"),
                    get("rate"),
                    get("rss_mib")
                );
                failures.extend(
                    stdout
                        .lines()
                        .filter(|l| l.starts_with("FAIL "))
                        .map(str::to_string),
                );
            }
            _ => {
                if hang {
                    hangs += 1;
                } else {
                    aborts += 1;
                }
                let last = stderr.lines().rev().take(5).collect::<Vec<_>>().join(" / ");
                let _ = writeln!(
                    report,
                    "| {w} | - | - | - | - | {} | {} | - | - | - | - |",
                    u8::from(!hang),
                    u8::from(hang)
                );
                failures.push(format!("worker {w} ended with {:?}: {last}", out.status));
            }
        }
    }
    let _ = writeln!(
        report,
        "\n**Total: {sum_inputs} inputs in {:.1} s; panics {sum_panics}, oracle failures {sum_oracle}, aborts {aborts}, hangs {hangs}.**",
        t0.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        let _ = writeln!(
            report,
            "\n## Failures (replay with RILL_FUZZ_SEED and RILL_FUZZ_INDEX in tests/fuzz.rs)\n"
        );
        for f in failures.iter().take(50) {
            let _ = writeln!(report, "- {f}");
        }
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("fuzz.md");
    std::fs::write(&path, &report).expect("write report");
    print!("{report}");
    eprintln!("report: {}", path.display());
}

fn worker(spec: &str) {
    let mut it = spec.split('/').map(|x| x.parse::<u64>().unwrap_or(0));
    let (w, workers, total) = (
        it.next().unwrap_or(0),
        it.next().unwrap_or(1).max(1),
        it.next().unwrap_or(0),
    );
    ALLOC.set_limit(4 << 30).expect("limit");
    let inputs = fuzz::Inputs::load();
    let current = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    let started = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let t0 = Instant::now();
    {
        use std::sync::atomic::Ordering;
        let (current, started) = (current.clone(), started.clone());
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            let i = current.load(Ordering::Acquire);
            let since = t0.elapsed().as_millis() as u64 - started.load(Ordering::Acquire);
            if i != u64::MAX && Duration::from_millis(since) > HANG {
                eprintln!("HANG: seed {SEED} input {i} ran {since} ms");
                std::process::abort();
            }
        });
    }
    let mut targets: BTreeMap<String, u64> = BTreeMap::new();
    let (mut panics, mut oracle, mut max_alloc, mut slowest) = (0u64, 0u64, 0usize, Duration::ZERO);
    let mut n = 0u64;
    let mut i = w;
    while i < total {
        use std::sync::atomic::Ordering;
        let (target, bytes) = inputs.input(SEED, i);
        started.store(t0.elapsed().as_millis() as u64, Ordering::Release);
        current.store(i, Ordering::Release);
        let t = Instant::now();
        match fuzz::check(target, &bytes, || ALLOC.total_allocated()) {
            Ok(used) => max_alloc = max_alloc.max(used),
            Err(why) => {
                if why.contains("panicked") {
                    panics += 1;
                } else {
                    oracle += 1;
                }
                if panics + oracle <= 20 {
                    println!("FAIL seed={SEED} index={i}: {why}");
                }
            }
        }
        slowest = slowest.max(t.elapsed());
        *targets.entry(format!("{target:?}")).or_insert(0) += 1;
        n += 1;
        i += workers;
    }
    let rss_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let targets = targets
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect::<Vec<_>>()
        .join(",");
    println!(
        "RESULT inputs={n} targets={targets} panics={panics} oracle={oracle} max_alloc={max_alloc} slowest_us={} rate={:.0} rss_mib={}",
        slowest.as_micros(),
        n as f64 / t0.elapsed().as_secs_f64(),
        rss_kib / 1024
    );
}
