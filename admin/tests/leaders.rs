//! `rill leaders` against a real 3-node cluster: describe leaders against preferred replicas,
//! preferred elections (kafka-leader-election.sh's flags and the shorthands), exit codes.

mod common;

use common::{cluster, rill, wait_for, RillOut};
use serde_json::Value;

fn run(bootstrap: &str, args: &[&str]) -> RillOut {
    let mut all = vec!["leaders", "--bootstrap-server", bootstrap];
    all.extend_from_slice(args);
    rill(&all)
}

/// `rill leaders --describe --topic t --output json`, when it succeeds.
fn describe(bootstrap: &str) -> Option<Vec<Value>> {
    let out = run(
        bootstrap,
        &["--describe", "--topic", "t", "--output", "json"],
    );
    if out.code != 0 {
        return None;
    }
    serde_json::from_str::<Value>(&out.stdout)
        .ok()?
        .as_array()
        .cloned()
}

#[test]
fn describe_and_elect_preferred_leaders() {
    // No automatic rebalance, and a session long enough that a busy machine does not get a
    // node fenced (either would move leaderships this test expects to stay).
    let mut nodes = cluster::start(&[
        "auto.leader.rebalance.enable=false",
        "broker.session.timeout.ms=5000",
    ]);
    let b = nodes[1].bootstrap.clone();
    rill(&[
        "topics",
        "--bootstrap-server",
        &b,
        "--create",
        "--topic",
        "t",
        "--partitions",
        "3",
        "--replication-factor",
        "3",
    ])
    .ok();
    wait_for(60, "every partition on its preferred leader", || {
        let d = describe(&b)?;
        (d.len() == 3 && d.iter().all(|p| p["is_preferred"] == true)).then_some(())
    });
    // Every topic: `t` and the CLI's audit trail `__rill_audit` (1 partition, written by
    // the create above).
    let table = run(&b, &["--describe"]);
    assert!(
        table
            .ok()
            .contains("0 of 4 partitions are not led by their preferred replica"),
        "{table:#?}"
    );
    assert!(table.stdout.contains("__rill_audit"), "{table:#?}");
    let out = run(
        &b,
        &["--elect", "--preferred", "--topic", "t", "--partition", "0"],
    );
    assert!(
        out.ok()
            .contains("Valid replica already elected for partitions t-0"),
        "{out:#?}"
    );

    // Node 1, the preferred leader of t-0, leaves and comes back: it is only a follower now.
    nodes[0].stop();
    wait_for(60, "t-0 to move away from node 1", || {
        let d = describe(&b)?;
        (d[0]["leader"] != 1 && !d[0]["leader"].is_null()).then_some(())
    });
    nodes[0].restart();
    wait_for(60, "node 1 back in the ISR of t-0", || {
        let d = describe(&b)?;
        let in_isr = d[0]["isr"].as_array()?.iter().any(|r| r == 1);
        in_isr.then_some(())
    });
    let table = run(&b, &["--describe", "--topic", "t"]);
    assert!(
        table
            .ok()
            .contains("1 of 3 partitions are not led by their preferred replica"),
        "{table:#?}"
    );
    let out = run(
        &b,
        &[
            "--elect",
            "--election-type",
            "PREFERRED",
            "--all-topic-partitions",
        ],
    );
    // t-0 and the audit trail's partition (led by node 1 too) move back.
    assert!(
        out.ok().contains(
            "Successfully completed leader election (PREFERRED) for partitions __rill_audit-0, t-0"
        ),
        "{out:#?}"
    );
    // The election went through the controller; this node's metadata follows.
    wait_for(30, "t-0 back on node 1 in the metadata", || {
        let d = describe(&b)?;
        d.iter().all(|p| p["is_preferred"] == true).then_some(())
    });

    // JSON output of an election, and an unclean election where every partition has a leader.
    let out = run(
        &b,
        &["--elect", "--unclean", "--topic", "t", "--output", "json"],
    );
    let v: Value = serde_json::from_str(out.ok()).expect("json");
    assert_eq!(v["election_type"], "UNCLEAN");
    assert_eq!(v["not_needed"].as_array().map(Vec::len), Some(3), "{v}");

    // kafka-leader-election.sh's JSON file of partitions.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("partitions.json");
    std::fs::write(
        &file,
        r#"{"partitions": [{"topic": "t", "partition": 1}, {"topic": "t", "partition": 2}]}"#,
    )
    .expect("write");
    let f = file.to_str().expect("utf-8 path");
    let out = run(&b, &["--elect", "--preferred", "--path-to-json-file", f]);
    assert!(
        out.ok()
            .contains("Valid replica already elected for partitions t-1, t-2"),
        "{out:#?}"
    );
    std::fs::write(&file, r#"{"partitions": [{"topic": "t"}]}"#).expect("write");
    let out = run(&b, &["--elect", "--preferred", "--path-to-json-file", f]);
    assert_eq!(out.code, 2, "{out:#?}");

    // Bad usage exits 2, a failed operation 1.
    for bad in [
        vec!["--elect", "--topic", "t"],
        vec!["--elect", "--preferred"],
        vec!["--elect", "--preferred", "--unclean", "--topic", "t"],
        vec!["--describe", "--preferred"],
        vec!["--elect", "--preferred", "--partition", "0"],
    ] {
        let out = run(&b, &bad);
        assert_eq!(out.code, 2, "{bad:?}: {out:#?}");
    }
    let out = run(&b, &["--elect", "--preferred", "--topic", "missing"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stderr.contains("does not exist"), "{out:#?}");
}
