//! `rill quorum` against a real 3-node cluster, in kafka-metadata-quorum.sh's shape:
//! `describe` (the leader, its epoch and high watermark, three voters; each voter's lag; with
//! a follower killed, its lag grows while metadata changes go on and the status says so), and
//! `add-controller` / `remove-controller` replacing a lost controller with a new node.

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

#[test]
fn a_failed_controller_is_replaced_with_add_and_remove_controller() {
    let mut nodes = cluster::start(&[]);
    let all = cluster::bootstrap(&nodes);
    let leader = quorum(&all, &["--output", "json", "describe", "--status"]).json()["leader_id"]
        .as_i64()
        .expect("leader");
    // A follower's machine is lost.
    let vi = usize::try_from(leader % 3).expect("index");
    let victim = i64::try_from(vi).expect("id") + 1;
    nodes[vi].kill9();
    let live: Vec<String> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != vi)
        .map(|(_, n)| n.bootstrap.clone())
        .collect();
    let live = live.join(",");
    // Its replacement, node 4, joins.
    let joining = cluster::Joining::launch(&nodes[0], 4);
    let endpoint = joining.controller.clone();
    let added = quorum(
        &live,
        &[
            "add-controller",
            "--controller-id",
            "4",
            "--controller-endpoint",
            &endpoint,
        ],
    );
    assert!(added.ok().contains("Added controller 4"), "{added:?}");
    let n4 = joining.ready();
    let bad = quorum(
        &live,
        &[
            "add-controller",
            "--controller-id",
            "4",
            "--controller-endpoint",
            &endpoint,
        ],
    );
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("already part of the set of voters")
            || bad.stderr.contains("already a voter"),
        "{bad:?}"
    );
    let removed = quorum(
        &live,
        &["remove-controller", "--controller-id", &victim.to_string()],
    );
    assert!(
        removed
            .ok()
            .contains(&format!("Removed controller {victim}")),
        "{removed:?}"
    );
    let everyone = format!("{live},{}", n4.bootstrap);
    let status = quorum(&everyone, &["--output", "json", "describe", "--status"]).json();
    let mut voters: Vec<i64> = status["current_voters"]
        .as_array()
        .expect("voters")
        .iter()
        .filter_map(|v| v.as_i64())
        .collect();
    voters.sort();
    let mut want: Vec<i64> = (1..=4).filter(|i| *i != victim).collect();
    want.sort();
    assert_eq!(voters, want, "{status}");
    rill(&[
        "topics",
        "--bootstrap-server",
        &everyone,
        "--create",
        "--topic",
        "after-replace",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ])
    .ok();
}
