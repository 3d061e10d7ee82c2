//! Server-side assignor cost (KIP-848; a report, not a timed test): how long `uniform` and
//! `range` take to compute a group's target assignment, from the group a consumer console
//! shows (6 members, 12 partitions) to a large one (1,000 members, 100,000 partitions), for
//! a first assignment, a scale-out by one member (what every join costs: sticky, so it starts
//! from the previous target) and heterogeneous subscriptions (members on different topics,
//! where `uniform` balances along chains of members). Side by side in one run.
//!
//! `cargo bench -p rill-broker --bench assignor` writes `target/bench/assignor.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Instant;

use rill_broker::group::consumer::assignor::{AssignInput, Assignor, MemberSpec};
use rill_broker::group::consumer::Assignment;
use uuid::Uuid;

/// Runs per measurement (the median is reported).
const TRIALS: usize = 5;

struct Case {
    name: String,
    members: BTreeMap<String, MemberSpec>,
    partitions: BTreeMap<Uuid, i32>,
    previous: BTreeMap<String, Assignment>,
}

/// `members` members all on `topics` topics of `per_topic` partitions; with `previous`, the
/// target of the same group without its last member (a scale-out by one).
fn homogeneous(members: usize, topics: usize, per_topic: i32, scale_out: bool) -> Case {
    let ids: Vec<Uuid> = (0..topics)
        .map(|i| Uuid::from_u128(i as u128 + 1))
        .collect();
    let partitions: BTreeMap<Uuid, i32> = ids.iter().map(|t| (*t, per_topic)).collect();
    let spec = MemberSpec {
        topics: ids.iter().copied().collect(),
    };
    let all: BTreeMap<String, MemberSpec> = (0..members)
        .map(|i| (format!("member-{i:05}"), spec.clone()))
        .collect();
    let previous = if scale_out {
        let mut fewer = all.clone();
        fewer.pop_last();
        Assignor::Uniform.assign(&AssignInput {
            members: &fewer,
            partitions: &partitions,
            previous: &BTreeMap::new(),
        })
    } else {
        BTreeMap::new()
    };
    Case {
        name: format!(
            "{members} members, {} partitions{}",
            topics as i32 * per_topic,
            if scale_out { ", scale-out by one" } else { "" }
        ),
        members: all,
        partitions,
        previous,
    }
}

/// Members each on two of `topics` neighbouring topics (a ring), so no two share the same set.
fn heterogeneous(members: usize, topics: usize, per_topic: i32) -> Case {
    let ids: Vec<Uuid> = (0..topics)
        .map(|i| Uuid::from_u128(i as u128 + 1))
        .collect();
    let partitions: BTreeMap<Uuid, i32> = ids.iter().map(|t| (*t, per_topic)).collect();
    let all = (0..members)
        .map(|i| {
            let topics: BTreeSet<Uuid> = [ids[i % topics], ids[(i + 1) % topics]].into();
            (format!("member-{i:05}"), MemberSpec { topics })
        })
        .collect();
    Case {
        name: format!(
            "{members} members, {} partitions, heterogeneous (2 of {topics} topics each)",
            topics as i32 * per_topic
        ),
        members: all,
        partitions,
        previous: BTreeMap::new(),
    }
}

/// Median milliseconds of one assignment, and the spread of partitions per member.
fn measure(assignor: Assignor, c: &Case) -> (f64, usize, usize) {
    let mut times = Vec::with_capacity(TRIALS);
    let mut spread = (0, 0);
    for _ in 0..TRIALS {
        let t0 = Instant::now();
        let out = assignor.assign(&AssignInput {
            members: &c.members,
            partitions: &c.partitions,
            previous: &c.previous,
        });
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        let counts: Vec<usize> = out
            .values()
            .map(|a| a.values().map(|p| p.len()).sum())
            .collect();
        spread = (
            counts.iter().copied().min().unwrap_or(0),
            counts.iter().copied().max().unwrap_or(0),
        );
    }
    times.sort_by(f64::total_cmp);
    (times[TRIALS / 2], spread.0, spread.1)
}

fn main() {
    let cases = [
        homogeneous(6, 1, 12, false),
        homogeneous(6, 1, 12, true),
        homogeneous(100, 10, 100, false),
        homogeneous(100, 10, 100, true),
        homogeneous(1000, 100, 1000, false),
        homogeneous(1000, 100, 1000, true),
        heterogeneous(30, 10, 12),
        heterogeneous(300, 100, 30),
    ];
    let mut report = String::from(
        "# Server-side assignors (KIP-848): time to compute a target assignment\n\n\
         Median of 5 runs, one thread; `min-max` is the partitions per member.\n\n\
         | group | uniform ms | uniform min-max | range ms | range min-max |\n|---|---|---|---|---|\n",
    );
    for c in &cases {
        let (u, umin, umax) = measure(Assignor::Uniform, c);
        let (r, rmin, rmax) = measure(Assignor::Range, c);
        let _ = writeln!(
            report,
            "| {} | {u:.3} | {umin}-{umax} | {r:.3} | {rmin}-{rmax} |",
            c.name
        );
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("assignor.md");
    if let Err(e) = std::fs::write(&path, &report) {
        eprintln!("cannot write {}: {e}", path.display());
    }
    print!("{report}");
}
