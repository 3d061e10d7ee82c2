//! Client quota cost on the request path (a report, not a timed test): what measuring one
//! request costs, side by side in one run — no quota in the cluster (the baseline: one check
//! of the image), a quota configured for another client (resolved, not measured), and a quota
//! that applies but is never hit (resolved, recorded in its sensor, gauges updated) — single
//! threaded and from two threads at once (the sensors share one lock).
//!
//! `cargo bench -p rill-broker --bench quota` writes `target/bench/quota.md`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use prometheus::Registry;
use rill_broker::config::quota::QuotaConfig;
use rill_broker::metadata::quota::{
    ClientQuotas, EntityName, QuotaChange, QuotaEntity, QuotaKey, QuotaValue,
};
use rill_broker::quota::{ClientRef, QuotaKind, QuotaManager};

/// Requests per measurement.
const ROUNDS: usize = 1_000_000;
/// Measurements per variant (the median is reported).
const TRIALS: usize = 5;

fn quotas(client: &str) -> ClientQuotas {
    let mut q = ClientQuotas::default();
    q.apply(&[QuotaChange {
        entity: QuotaEntity {
            user: None,
            client_id: Some(EntityName::Named(client.into())),
        },
        key: QuotaKey::ProducerByteRate,
        value: Some(QuotaValue(1e15)),
    }])
    .expect("valid");
    q
}

/// Nanoseconds per request, median of the trials, from `threads` threads at once.
fn measure(quotas: &Arc<ClientQuotas>, threads: usize) -> f64 {
    let mut per = Vec::new();
    for _ in 0..TRIALS {
        let m = Arc::new(QuotaManager::new(QuotaConfig::default(), &Registry::new()).expect("m"));
        let start = Instant::now();
        std::thread::scope(|s| {
            for t in 0..threads {
                let (m, q) = (m.clone(), quotas.clone());
                s.spawn(move || {
                    let user = format!("u{t}");
                    for _ in 0..ROUNDS {
                        let c = ClientRef {
                            user: &user,
                            client_id: "app",
                        };
                        std::hint::black_box(m.record(
                            &q,
                            QuotaKind::Produce,
                            c,
                            16384.0,
                            Instant::now(),
                        ));
                    }
                });
            }
        });
        per.push(start.elapsed().as_nanos() as f64 / (ROUNDS * threads) as f64);
    }
    per.sort_by(f64::total_cmp);
    per[per.len() / 2]
}

fn main() {
    let none = Arc::new(ClientQuotas::default());
    let other = Arc::new(quotas("someone-else"));
    let applies = Arc::new(quotas("app"));
    let mut r = String::new();
    let _ = writeln!(r, "# Client quota cost per produce request\n");
    let _ = writeln!(
        r,
        "{ROUNDS} requests per thread, median of {TRIALS} trials, ns per request.\n"
    );
    let _ = writeln!(r, "| quotas in the cluster | 1 thread | 2 threads |");
    let _ = writeln!(r, "| --- | --- | --- |");
    for (name, q) in [
        ("none (baseline)", &none),
        ("one, for another client", &other),
        ("one that applies, never hit", &applies),
    ] {
        let _ = writeln!(
            r,
            "| {name} | {:.0} | {:.0} |",
            measure(q, 1),
            measure(q, 2)
        );
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("quota.md"), &r);
    print!("{r}");
}
