//! `rill reassign` against a real 3-node cluster: --generate proposes a balanced plan in
//! Kafka's JSON, --execute --throttle --wait moves the replicas while showing progress,
//! --verify reports completion and clears the throttles, --cancel reverts a move in progress,
//! and bad plans are refused with a message and exit code 1 or 2.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{cluster, rill, wait_for, RillOut};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{json, Value};

fn run(bootstrap: &str, args: &[&str]) -> RillOut {
    let mut all = vec!["reassign", "--bootstrap-server", bootstrap];
    all.extend_from_slice(args);
    rill(&all)
}

fn write_plan(dir: &Path, name: &str, plan: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, plan.to_string()).expect("write plan");
    p.display().to_string()
}

/// The replicas of each partition of `topic`, from `rill topics --describe --output json`.
fn replicas(bootstrap: &str, topic: &str) -> Vec<Vec<i64>> {
    let out = rill(&[
        "topics",
        "--bootstrap-server",
        bootstrap,
        "--describe",
        "--topic",
        topic,
        "--output",
        "json",
    ])
    .json();
    let t = out
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or(out);
    t["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            p["replicas"]
                .as_array()
                .expect("replicas")
                .iter()
                .filter_map(Value::as_i64)
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_execute_verify_cancel() {
    let nodes = cluster::start(&[]);
    let all = nodes
        .iter()
        .map(|n| n.bootstrap.clone())
        .collect::<Vec<_>>()
        .join(",");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &all)
        .create()
        .expect("admin");
    let assignment: &[&[i32]] = &[&[1, 2], &[2, 1]];
    let topic = NewTopic::new("cli-move", 2, TopicReplication::Variable(assignment));
    admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .expect("rpc")[0]
        .clone()
        .expect("created");
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &all)
        .set("batch.size", "16384")
        .create()
        .expect("producer");
    let value = vec![b'v'; 1024];
    for part in 0..2 {
        for _ in 0..200 {
            p.send(
                BaseRecord::<(), _>::to("cli-move")
                    .partition(part)
                    .payload(&value),
            )
            .expect("enqueue");
        }
    }
    p.flush(Duration::from_secs(30)).expect("flushed");
    let tmp = tempfile::tempdir().expect("tempdir");
    let b = &nodes[0].bootstrap;

    // --generate: current and a proposal over brokers 2 and 3, in Kafka's JSON.
    let gen = run(
        b,
        &[
            "--generate",
            "--topics",
            "cli-move",
            "--broker-list",
            "2,3",
            "--output",
            "json",
        ],
    )
    .json();
    let cur: Vec<Value> = gen["current"]["partitions"]
        .as_array()
        .expect("current")
        .clone();
    assert_eq!(gen["current"]["version"], 1);
    assert_eq!(cur[0]["replicas"], json!([1, 2]));
    assert_eq!(cur[1]["replicas"], json!([2, 1]));
    let proposed = gen["proposed"].clone();
    let parts = proposed["partitions"].as_array().expect("proposed");
    assert_eq!(parts.len(), 2);
    let mut leaders = Vec::new();
    for p in parts {
        let mut r: Vec<i64> = p["replicas"]
            .as_array()
            .expect("replicas")
            .iter()
            .filter_map(Value::as_i64)
            .collect();
        leaders.push(r[0]);
        r.sort();
        assert_eq!(r, vec![2, 3], "{gen}");
    }
    leaders.sort();
    assert_eq!(leaders, vec![2, 3], "balanced leaders: {gen}");
    let table = run(
        b,
        &["--generate", "--topics", "cli-move", "--broker-list", "2,3"],
    );
    assert!(table
        .ok()
        .contains("Proposed partition reassignment configuration"));

    // --execute --throttle --wait: progress while it copies, then done and unthrottled.
    let plan = write_plan(tmp.path(), "plan.json", &proposed);
    let exec = run(
        b,
        &[
            "--execute",
            "--reassignment-json-file",
            &plan,
            "--throttle",
            "100000",
            "--wait",
        ],
    );
    let stdout = exec.ok();
    assert!(
        stdout.contains("Successfully started partition reassignments"),
        "{exec:?}"
    );
    assert!(
        stdout.contains("Save this to use as the --reassignment-json-file"),
        "{exec:?}"
    );
    assert!(
        exec.stderr.contains("cli-move-")
            && exec.stderr.contains("% ")
            && exec.stderr.contains("ETA"),
        "a progress line while copying: {exec:?}"
    );
    assert!(
        exec.stderr
            .contains("All partition reassignments are complete."),
        "{exec:?}"
    );
    let want: Vec<Vec<i64>> = parts
        .iter()
        .map(|p| {
            p["replicas"]
                .as_array()
                .expect("r")
                .iter()
                .filter_map(Value::as_i64)
                .collect()
        })
        .collect();
    assert_eq!(replicas(b, "cli-move"), want);
    let verify = run(b, &["--verify", "--reassignment-json-file", &plan]);
    assert_eq!(
        verify.ok().matches("is completed.").count(),
        2,
        "{verify:?}"
    );
    assert!(
        verify.stderr.contains("Clearing broker-level throttles"),
        "{verify:?}"
    );

    // --cancel while a slow move back to the original replicas copies.
    let back = json!({"version": 1, "partitions": [
        {"topic": "cli-move", "partition": 0, "replicas": [1, 2]},
        {"topic": "cli-move", "partition": 1, "replicas": [2, 1]},
    ]});
    let back_plan = write_plan(tmp.path(), "back.json", &back);
    run(
        b,
        &[
            "--execute",
            "--reassignment-json-file",
            &back_plan,
            "--throttle",
            "1000",
        ],
    )
    .ok();
    let twice = run(b, &["--execute", "--reassignment-json-file", &back_plan]);
    assert_eq!(twice.code, 1, "{twice:?}");
    assert!(twice.stderr.contains("--additional"), "{twice:?}");
    let listed = run(b, &["--list"]);
    assert!(listed.ok().contains("adding: 1"), "{listed:?}");
    let in_progress = run(b, &["--verify", "--reassignment-json-file", &back_plan]);
    assert!(
        in_progress.ok().contains("still in progress"),
        "{in_progress:?}"
    );
    let cancel = run(b, &["--cancel", "--reassignment-json-file", &back_plan]);
    assert!(cancel.ok().contains("Successfully cancelled"), "{cancel:?}");
    assert_eq!(
        replicas(b, "cli-move"),
        want,
        "cancel reverts to the replicas before it"
    );
    wait_for(30, "no reassignment listed", || {
        run(b, &["--list"])
            .ok()
            .contains("No partition reassignments")
            .then_some(())
    });
    let again = run(b, &["--cancel", "--reassignment-json-file", &back_plan]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(
        again.stderr.contains("NO_REASSIGNMENT_IN_PROGRESS"),
        "{again:?}"
    );

    // Bad plans: malformed (exit 2), or not fitting the cluster (exit 1); never a panic.
    let bad = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).expect("write");
        run(
            b,
            &[
                "--execute",
                "--reassignment-json-file",
                &p.display().to_string(),
            ],
        )
    };
    let plan_of = |replicas: Value, partition: i64| {
        json!({"version": 1, "partitions": [
            {"topic": "cli-move", "partition": partition, "replicas": replicas}]})
        .to_string()
    };
    for (name, text, code, says) in [
        ("garbage.json", "{not json".to_string(), 2, "not valid JSON"),
        (
            "dup.json",
            plan_of(json!([2, 2]), 0),
            2,
            "Duplicate replica",
        ),
        ("empty.json", plan_of(json!([]), 0), 2, "empty replica list"),
        (
            "missing-broker.json",
            plan_of(json!([2, 9]), 0),
            1,
            "broker 9 is not in the cluster",
        ),
        (
            "rf.json",
            plan_of(json!([1, 2, 3, 4]), 0),
            1,
            "larger than the 3 available brokers",
        ),
        (
            "no-partition.json",
            plan_of(json!([1, 2]), 7),
            1,
            "non-existent partitions: cli-move-7",
        ),
    ] {
        let out = bad(name, &text);
        assert_eq!(out.code, code, "{name}: {out:?}");
        assert!(out.stderr.contains(says), "{name}: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{name}: {out:?}");
    }
    let no_file = run(b, &["--execute"]);
    assert_eq!(no_file.code, 2, "{no_file:?}");
    let missing_file = run(
        b,
        &[
            "--verify",
            "--reassignment-json-file",
            "/nonexistent/plan.json",
        ],
    );
    assert_eq!(missing_file.code, 2, "{missing_file:?}");
}
