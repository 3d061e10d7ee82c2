//! The fuzz harness, in process, for a bounded time (`RILL_FUZZ_SECS`, default 30): mutations
//! of real client frames and random frames for every ApiKey and version the broker
//! advertises, through the server's own decode step (`api::decode`), the client-side response
//! decoders, record-batch validation and decompression, and the controller RPC parser.
//!
//! Oracles: no panic (caught per input), no hang (a watchdog aborts, naming the input, if one
//! takes over 10 s), and no allocation beyond what the input justifies: a counting global
//! allocator fails any input that allocates more than 64 x its size + 1 MiB, and caps the
//! process at 4 GiB so a runaway allocation aborts here rather than somewhere later.
//! Deterministic: input `i` of seed `s` is always the same bytes; a failure prints both, and
//! `RILL_FUZZ_SEED=s RILL_FUZZ_INDEX=i` replays just that input. Every crash found gets a
//! regression test below.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::fuzz::{self, check, Inputs, ALLOC_SLACK};

#[global_allocator]
static ALLOC: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// The longest one input may take before the watchdog calls it a hang.
const HANG: Duration = Duration::from_secs(10);

fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok()?.parse().ok()
}

/// The tests share the allocation counter: one at a time, even under `cargo test`.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn every_parser_that_sees_the_network_survives_mutated_input() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    ALLOC.set_limit(4 << 30).expect("limit");
    let inputs = Inputs::load();
    assert!(
        inputs.seeds.len() >= 30 && inputs.responses.len() >= 30 && !inputs.batches.is_empty(),
        "the corpus is missing (broker/tests/fuzz-corpus; record it with `cargo run -p rill-broker --example record_fuzz_corpus`)"
    );
    // Every advertised API and version has well-formed seeds to mutate.
    for (api, v) in &inputs.advertised {
        assert!(
            inputs
                .seeds
                .iter()
                .any(|((k, ver), _)| *k == *api as i16 && ver == v),
            "no seed for {api:?} v{v}"
        );
    }
    let seed = env_u64("RILL_FUZZ_SEED").unwrap_or(0x5EED_F00D);
    if let Some(i) = env_u64("RILL_FUZZ_INDEX") {
        let (target, bytes) = inputs.input(seed, i);
        eprintln!(
            "replaying seed {seed} input {i}: {target:?}, {} bytes: {bytes:02x?}",
            bytes.len()
        );
        check(target, &bytes, || ALLOC.total_allocated()).expect("the input passes");
        return;
    }
    let budget = Duration::from_secs(env_u64("RILL_FUZZ_SECS").unwrap_or(30));
    // The watchdog: an input running longer than HANG is a hang; abort, naming it.
    let current = Arc::new(AtomicU64::new(u64::MAX));
    let started_ms = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    {
        let (current, started_ms) = (current.clone(), started_ms.clone());
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            let i = current.load(Ordering::Acquire);
            let since = t0.elapsed().as_millis() as u64 - started_ms.load(Ordering::Acquire);
            if i != u64::MAX && Duration::from_millis(since) > HANG {
                eprintln!("HANG: seed {seed} input {i} has run for {since} ms; replay with RILL_FUZZ_SEED={seed} RILL_FUZZ_INDEX={i}");
                std::process::abort();
            }
        });
    }
    let mut per_target = std::collections::BTreeMap::new();
    let mut max_alloc = 0usize;
    let mut i = 0u64;
    while t0.elapsed() < budget {
        let (target, bytes) = inputs.input(seed, i);
        started_ms.store(t0.elapsed().as_millis() as u64, Ordering::Release);
        current.store(i, Ordering::Release);
        match check(target, &bytes, || ALLOC.total_allocated()) {
            Ok(used) => max_alloc = max_alloc.max(used),
            Err(why) => panic!(
                "{why}\nreplay: RILL_FUZZ_SEED={seed} RILL_FUZZ_INDEX={i} cargo nextest run -p rill-broker --test fuzz"
            ),
        }
        *per_target.entry(format!("{target:?}")).or_insert(0u64) += 1;
        i += 1;
    }
    current.store(u64::MAX, Ordering::Release);
    eprintln!(
        "fuzzed {i} inputs in {:?} (seed {seed}): {per_target:?}; most allocated by one input: {max_alloc} bytes",
        t0.elapsed()
    );
    assert!(i > 1000, "only {i} inputs ran");
}

/// Regression: the frame that took a broker down (a Fetch whose topic-array count was
/// 0x7fffffff: 163 GB reserved, abort). It must decode to an error allocating next to nothing.
#[test]
fn regression_fetch_with_an_oversized_array_count() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let frame =
        std::fs::read(fuzz::corpus_dir().join("../fuzz-regressions/fetch-oversized-array.bin"))
            .expect("regression input");
    let before = ALLOC.total_allocated();
    assert!(rill_broker::api::decode::decode(Bytes::from(frame.clone())).is_err());
    assert!(ALLOC.total_allocated() - before < 64 * frame.len() + ALLOC_SLACK);
}
