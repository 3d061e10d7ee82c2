//! ACL decision benchmark (a report, not a timed test): what authorizing one request's topic
//! costs on the produce/fetch path, side by side in one run — no authorizer (the unsecured
//! baseline), the ACL index alone, and the index behind the decision cache (what brokers
//! run) — over a small and a large ACL set, single-threaded and from two threads at once.
//!
//! `cargo bench -p rill-broker --bench authorizer` writes `target/bench/authorizer.md`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use rill_broker::config::security::AuthorizerConfig;
use rill_broker::metadata::acl::{
    AclBinding, AclOperation, AclPermissionType, PatternType, ResourceType,
};
use rill_broker::metadata::MetadataImage;
use rill_broker::security::authorizer::{Authorizer, Authz};

/// Decisions per measurement.
const ROUNDS: usize = 2_000_000;
/// Measurements per variant (the median is reported).
const TRIALS: usize = 5;
/// Topics a producer cycles through (the working set of the cache).
const TOPICS: usize = 64;

fn acl(name: &str, pattern: PatternType, principal: &str, op: AclOperation) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::Topic,
        resource_name: name.into(),
        pattern_type: pattern,
        principal: principal.into(),
        host: "*".into(),
        operation: op,
        permission: AclPermissionType::Allow,
    }
}

/// A small set (what a team's cluster has) and a large one (a multi-tenant cluster: many
/// literal topic ACLs and prefixed ones of many lengths, so the index probes many prefixes).
fn acl_sets() -> Vec<(&'static str, Vec<AclBinding>)> {
    let mut small = vec![acl(
        "app-",
        PatternType::Prefixed,
        "User:app",
        AclOperation::Write,
    )];
    for i in 0..20 {
        small.push(acl(
            &format!("team{i}-"),
            PatternType::Prefixed,
            &format!("User:team{i}"),
            AclOperation::Read,
        ));
    }
    let mut large = small.clone();
    for i in 0..10_000 {
        large.push(acl(
            &format!("tenant-{i}-events"),
            PatternType::Literal,
            &format!("User:tenant{i}"),
            AclOperation::Write,
        ));
    }
    for len in 3..60 {
        for j in 0..20 {
            let p: String = format!("pfx{j}-{}", "x".repeat(len))
                .chars()
                .take(len)
                .collect();
            large.push(acl(
                &p,
                PatternType::Prefixed,
                &format!("User:p{j}"),
                AclOperation::Read,
            ));
        }
    }
    vec![
        ("21 ACLs", small),
        (
            "11,161 ACLs (10,000 literal, 1,140 prefixed of 57 lengths)",
            large,
        ),
    ]
}

fn topics() -> Vec<String> {
    (0..TOPICS)
        .map(|i| format!("app-orders-{i:03}-with-a-realistic-length"))
        .collect()
}

/// ns per decision: `f` runs one request's check of topic `i`.
fn measure(threads: usize, f: impl Fn(usize) -> bool + Sync) -> f64 {
    let mut trials: Vec<f64> = (0..TRIALS)
        .map(|_| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for t in 0..threads {
                    let f = &f;
                    s.spawn(move || {
                        let mut allowed = 0usize;
                        for i in 0..ROUNDS {
                            allowed += usize::from(f(black_box(i + t)));
                        }
                        assert!(allowed > 0, "the benchmark's principal must be allowed");
                    });
                }
            });
            start.elapsed().as_nanos() as f64 / (ROUNDS * threads) as f64
        })
        .collect();
    trials.sort_by(f64::total_cmp);
    trials[TRIALS / 2]
}

fn main() {
    // As a session makes it once per connection.
    let host = rill_broker::metadata::acl::host_string("10.1.2.3".parse().expect("address"));
    let topics = topics();
    let cfg = AuthorizerConfig {
        super_users: vec!["User:admin".into()],
        allow_everyone_if_no_acl_found: false,
    };
    let mut report = String::new();
    let _ = writeln!(report, "# ACL decision benchmark\n");
    let _ = writeln!(
        report,
        "One decision = what a Produce or Fetch of one topic asks (WRITE on the topic for `User:app`, allowed by a prefixed ACL), including the per-request set-up (`Authorizer::for_request`: the current index and cache). {ROUNDS} decisions per trial over {TOPICS} topics, median of {TRIALS} trials; {} CPUs. git {}.\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        std::process::Command::new("git").args(["rev-parse", "--short", "HEAD"]).output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
    );
    let _ = writeln!(report, "| ACL set | threads (ns = wall time / decisions) | no authorizer (baseline) ns | index, no cache ns | index + decision cache ns (what brokers run) |");
    let _ = writeln!(report, "| --- | --- | --- | --- | --- |");
    for (label, acls) in acl_sets() {
        let image = MetadataImage {
            acls: Arc::new(acls.iter().cloned().collect()),
            ..MetadataImage::default()
        };
        let authorizer = Authorizer::new(&cfg);
        let uncached = Authorizer::uncached(&cfg);
        for threads in [1, 2] {
            let baseline = measure(threads, |i| {
                Authz::open("User:app").topic(AclOperation::Write, &topics[i % TOPICS])
            });
            let index_only = measure(threads, |i| {
                uncached
                    .for_request(&image, "User:app", &host)
                    .topic(AclOperation::Write, &topics[i % TOPICS])
            });
            let cached = measure(threads, |i| {
                authorizer
                    .for_request(&image, "User:app", &host)
                    .topic(AclOperation::Write, &topics[i % TOPICS])
            });
            let _ = writeln!(
                report,
                "| {label} | {threads} | {baseline:.0} | {index_only:.0} | {cached:.0} |"
            );
            eprintln!("{label}, {threads} thread(s): baseline {baseline:.0} ns, index {index_only:.0} ns, cached {cached:.0} ns");
        }
    }
    let _ = writeln!(report, "\nWhat it costs a whole produce/fetch path, against a broker without an authorizer: `broker/benches/security/run.py` (PLAINTEXT without and with ACLs, side by side).");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("authorizer.md");
    if let Err(e) = std::fs::write(&path, &report) {
        eprintln!("cannot write {}: {e}", path.display());
    }
    print!("{report}");
}
