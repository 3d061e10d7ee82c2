//! `rill quorum describe` against a real 3-node cluster, in kafka-metadata-quorum.sh's shape:
//! the leader, its epoch and high watermark, three voters; each voter's lag; with a follower
//! killed, its lag grows while metadata changes go on and the status says so.

mod common;

use common::{cluster, rill, wait_for};

fn quorum(bootstrap: &str, args: &[&str]) -> common::RillOut {
    let mut all = vec!["quorum", "--bootstrap-server", bootstrap];
    all.extend_from_slice(args);
    rill(&all)
}

#[test]
fn quorum_status_and_replication() {
    let mut nodes = cluster::start(&[]);
    let all = cluster::bootstrap(&nodes);
    let status = quorum(&all, &["--output", "json", "describe", "--status"]).json();
    let leader = status["leader_id"].as_i64().expect("leader");
    assert!((1..=3).contains(&leader), "{status}");
    assert_eq!(
        status["current_voters"].as_array().map(Vec::len),
        Some(3),
        "{status}"
    );
    assert!(status["high_watermark"].as_i64() > Some(0), "{status}");
    let text = quorum(&all, &["describe", "--status"]);
    for key in [
        "ClusterId:",
        "LeaderId:",
        "LeaderEpoch:",
        "HighWatermark:",
        "MaxFollowerLag:",
        "CurrentVoters:",
    ] {
        assert!(text.ok().contains(key), "{key} missing: {}", text.stdout);
    }
    let table = quorum(&all, &["describe", "--replication"]);
    let out = table.ok();
    assert!(out.starts_with("NodeId"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.ends_with("Leader")).count(),
        1,
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.ends_with("Follower")).count(),
        2,
        "{out}"
    );

    // A follower killed: the others take metadata changes, its lag grows.
    let victim = usize::try_from(leader % 3).expect("index"); // node leader+1, 0-based
    let victim_id = i64::try_from(victim).expect("id") + 1;
    nodes[victim].kill9();
    let live: Vec<&str> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, n)| n.bootstrap.as_str())
        .collect();
    let live = live.join(",");
    for t in ["q1", "q2", "q3"] {
        rill(&[
            "topics",
            "--bootstrap-server",
            &live,
            "--create",
            "--topic",
            t,
            "--partitions",
            "1",
            "--replication-factor",
            "1",
        ])
        .ok();
    }
    wait_for(30, "the killed follower to show lag", || {
        let r = quorum(&live, &["--output", "json", "describe", "--replication"]);
        if r.code != 0 {
            return None;
        }
        let v = r.json();
        v["replicas"]
            .as_array()
            .is_some_and(|rs| {
                rs.iter().any(|r| {
                    r["node_id"].as_i64() == Some(victim_id)
                        && r["lag"].as_i64() > Some(0)
                        && r["last_caught_up_timestamp"].is_null()
                })
            })
            .then_some(())
    });
    let status = quorum(&live, &["--output", "json", "describe", "--status"]).json();
    assert!(status["max_follower_lag"].as_i64() > Some(0), "{status}");
    assert!(
        status["max_follower_lag_time_ms"].is_null(),
        "unknown, not 0: {status}"
    );
}
