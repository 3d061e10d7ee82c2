//! The real `rill` binary against a real `rill-broker` process: topics and consumer groups,
//! table and JSON output, exit codes, bad input.

mod common;

use std::time::Duration;

use common::{rill, wait_for, BrokerProc};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

/// Broker settings that keep group tests quick: no initial rebalance delay, few offsets
/// partitions.
const FAST_GROUPS: &[&str] = &[
    "group.initial.rebalance.delay.ms=0",
    "group.min.session.timeout.ms=500",
    "offsets.topic.num.partitions=3",
];

/// `rill <cmd> --bootstrap-server <b> args...`.
fn run(b: &BrokerProc, cmd: &str, args: &[&str]) -> common::RillOut {
    let mut all = vec![cmd, "--bootstrap-server", b.bootstrap.as_str()];
    all.extend_from_slice(args);
    rill(&all)
}

fn create_topic(b: &BrokerProc, topic: &str, partitions: u32) {
    let p = partitions.to_string();
    run(
        b,
        "topics",
        &["--create", "--topic", topic, "--partitions", &p],
    )
    .ok();
}

/// Produces `n` records to each of `partitions`; record `i` of each gets timestamp
/// `ts(i)` when given.
fn produce(b: &BrokerProc, topic: &str, partitions: i32, n: usize, ts: Option<fn(usize) -> i64>) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
    for part in 0..partitions {
        for i in 0..n {
            let value = format!("value-{part}-{i}");
            let mut rec = BaseRecord::<str, str>::to(topic)
                .partition(part)
                .key("k")
                .payload(value.as_str());
            if let Some(ts) = ts {
                rec = rec.timestamp(ts(i));
            }
            p.send(rec).expect("enqueue");
        }
    }
    p.flush(Duration::from_secs(20)).expect("flush");
}

/// The `offsets` entry of a `groups --describe --output json` for one partition.
fn offsets_of(describe: &Value, topic: &str, partition: i64) -> Value {
    describe["offsets"]
        .as_array()
        .expect("offsets array")
        .iter()
        .find(|o| o["topic"] == topic && o["partition"] == partition)
        .cloned()
        .unwrap_or(Value::Null)
}

fn describe_group(b: &BrokerProc, group: &str) -> Value {
    run(
        b,
        "groups",
        &["--describe", "--group", group, "--output", "json"],
    )
    .json()
}

/// The fields of the table row that starts with `first` and `second`.
fn table_row(out: &str, first: &str, second: &str) -> Vec<String> {
    out.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|f| f.len() >= 2 && f[0] == first && f[1] == second)
        .unwrap_or_else(|| panic!("no row '{first} {second}' in:\n{out}"))
}

#[test]
fn topics_create_list_describe_alter_delete() {
    let b = BrokerProc::start(&[]);
    let out = run(
        &b,
        "topics",
        &[
            "--create",
            "--topic",
            "orders",
            "--partitions",
            "3",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=3600000",
        ],
    );
    assert!(out.ok().contains("Created topic orders"), "{out:?}");
    create_topic(&b, "payments", 1);

    // --list: names, one per line; JSON: an array of names.
    let out = run(&b, "topics", &["--list"]);
    let names: Vec<&str> = out.ok().lines().collect();
    assert!(
        names.contains(&"orders") && names.contains(&"payments"),
        "{names:?}"
    );
    let list = run(&b, "topics", &["--list", "--output", "json"]).json();
    let list: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(list.contains(&"orders") && list.contains(&"payments"));

    // --describe: a header with the overrides, then one aligned row per partition.
    let out = run(&b, "topics", &["--describe", "--topic", "orders"]);
    let text = out.ok();
    assert!(text.contains("Topic: orders"), "{text}");
    assert!(text.contains("PartitionCount: 3"), "{text}");
    assert!(text.contains("ReplicationFactor: 1"), "{text}");
    assert!(text.contains("retention.ms=3600000"), "{text}");
    for p in ["0", "1", "2"] {
        assert_eq!(table_row(text, p, "1"), vec![p, "1", "1", "1"], "{text}");
    }
    // Without --topic: every topic.
    let all = run(&b, "topics", &["--describe", "--output", "json"]).json();
    let described: Vec<&str> = all
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(described.contains(&"orders") && described.contains(&"payments"));

    // --alter: more partitions, a new override, in one command.
    let out = run(
        &b,
        "topics",
        &[
            "--alter",
            "--topic",
            "orders",
            "--partitions",
            "5",
            "--config",
            "cleanup.policy=compact",
        ],
    );
    out.ok();
    let d = run(
        &b,
        "topics",
        &["--describe", "--topic", "orders", "--output", "json"],
    )
    .json();
    let t = &d[0];
    assert_eq!(t["name"], "orders");
    assert_eq!(t["partition_count"], 5);
    assert_eq!(t["partitions"].as_array().map(Vec::len), Some(5));
    assert_eq!(t["partitions"][4]["leader"], 1);
    assert_eq!(t["replication_factor"], 1);
    assert_eq!(t["configs"]["cleanup.policy"], "compact");
    assert_eq!(t["configs"]["retention.ms"], "3600000");
    assert_eq!(t["internal"], false);

    // --delete-config reverts an override to the default.
    run(
        &b,
        "topics",
        &[
            "--alter",
            "--topic",
            "orders",
            "--delete-config",
            "retention.ms",
        ],
    )
    .ok();
    let d = run(
        &b,
        "topics",
        &["--describe", "--topic", "orders", "--output", "json"],
    )
    .json();
    assert!(d[0]["configs"].get("retention.ms").is_none(), "{d}");
    assert_eq!(d[0]["configs"]["cleanup.policy"], "compact");

    // --delete, then it is gone.
    let out = run(&b, "topics", &["--delete", "--topic", "payments"]);
    assert!(out.ok().contains("Deleted topic payments"), "{out:?}");
    wait_for(20, "payments to disappear from --list", || {
        let out = run(&b, "topics", &["--list"]);
        (!out.ok().lines().any(|l| l == "payments")).then_some(())
    });
    let out = run(&b, "topics", &["--describe", "--topic", "payments"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("does not exist"), "{out:?}");
}

#[test]
fn topics_bad_input_exits_non_zero_with_a_message() {
    let b = BrokerProc::start(&[]);
    create_topic(&b, "t", 2);

    // Unknown topics.
    for args in [
        &["--describe", "--topic", "nope"][..],
        &["--delete", "--topic", "nope"][..],
        &["--alter", "--topic", "nope", "--partitions", "3"][..],
    ] {
        let out = run(&b, "topics", args);
        assert_eq!(out.code, 1, "{args:?}: {out:?}");
        assert!(
            out.stderr.contains("Topic 'nope' does not exist"),
            "{args:?}: {out:?}"
        );
    }

    // An invalid config value names the key and the value, on create and on alter; a
    // refused alter changes nothing (not even the partition count asked for with it).
    let out = run(
        &b,
        "topics",
        &[
            "--create",
            "--topic",
            "bad",
            "--config",
            "retention.ms=soon",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("retention.ms"), "{out:?}");
    assert!(out.stderr.contains("soon"), "{out:?}");
    assert!(out.stderr.contains("INVALID_CONFIG"), "{out:?}");
    let out = run(
        &b,
        "topics",
        &[
            "--alter",
            "--topic",
            "t",
            "--partitions",
            "4",
            "--config",
            "segment.bytes=-1",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("segment.bytes"), "{out:?}");
    let d = run(
        &b,
        "topics",
        &["--describe", "--topic", "t", "--output", "json"],
    )
    .json();
    assert_eq!(d[0]["partition_count"], 2, "{d}");
    assert!(d[0]["configs"].get("segment.bytes").is_none(), "{d}");
    let out = run(
        &b,
        "topics",
        &["--alter", "--topic", "t", "--config", "no.such.config=1"],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("no.such.config"), "{out:?}");

    // Shrinking is refused; creating twice is refused.
    let out = run(
        &b,
        "topics",
        &["--alter", "--topic", "t", "--partitions", "1"],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("has 2 partitions"), "{out:?}");
    let out = run(&b, "topics", &["--create", "--topic", "t"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("TOPIC_ALREADY_EXISTS"), "{out:?}");

    // Usage errors: exit 2, with clap's usage line.
    for args in [
        &[][..],
        &["--list", "--describe"][..],
        &["--create"][..],
        &["--alter", "--topic", "t"][..],
        &["--create", "--topic", "x", "--partitions", "0"][..],
        &["--create", "--topic", "x", "--config", "novalue"][..],
        &["--list", "--replication-factor", "2"][..],
        &["--describe", "--output", "yaml"][..],
    ] {
        let out = run(&b, "topics", args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("error:"), "{args:?}: {out:?}");
    }
}

#[test]
fn bad_or_unreachable_bootstrap_fails_quickly() {
    // Nothing listens on a port we just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    for cmd in [
        &["topics", "--list"][..],
        &["groups", "--list"][..],
        &["groups", "--describe", "--group", "g"][..],
    ] {
        let mut args = cmd.to_vec();
        args.extend(["--bootstrap-server", &addr]);
        let out = rill(&args);
        assert_eq!(out.code, 1, "{out:?}");
        assert!(out.stderr.contains("cannot connect"), "{out:?}");
        assert!(out.stderr.contains(&addr), "{out:?}");
        assert!(out.elapsed < Duration::from_secs(10), "{out:?}");
    }
    // A host that does not resolve.
    let out = rill(&[
        "topics",
        "--list",
        "--bootstrap-server",
        "no-such-host.invalid:9092",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("no-such-host.invalid"), "{out:?}");
    assert!(out.elapsed < Duration::from_secs(10), "{out:?}");
    // Not host:port at all: a usage error.
    for bad in ["localhost", "host:port", ":9092", ""] {
        let out = rill(&["topics", "--list", "--bootstrap-server", bad]);
        assert_eq!(out.code, 2, "{bad}: {out:?}");
        assert!(out.stderr.contains("bootstrap-server"), "{bad}: {out:?}");
    }
    // A port that accepts connections but never answers: bounded by --timeout, not hung.
    let b = BrokerProc::start(&[]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent = listener.local_addr().expect("addr").to_string();
    let out = rill(&[
        "topics",
        "--list",
        "--bootstrap-server",
        &silent,
        "--timeout",
        "1500",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("timed out"), "{out:?}");
    assert!(out.elapsed < Duration::from_secs(10), "{out:?}");
    // A list with one dead and one live server works.
    let list = format!("{addr},{}", b.bootstrap);
    rill(&["topics", "--list", "--bootstrap-server", &list]).ok();
    drop(listener);
}

#[test]
fn group_lag_after_cli_commits_and_reset_scenarios() {
    let b = BrokerProc::start(FAST_GROUPS);
    create_topic(&b, "events", 3);
    produce(&b, "events", 3, 10, None);

    // A group that does not exist yet.
    let out = run(&b, "groups", &["--describe", "--group", "cli-group"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("does not exist"), "{out:?}");

    // Commit M offsets through the CLI (a reset of a new group creates it).
    let out = run(
        &b,
        "groups",
        &[
            "--reset-offsets",
            "--group",
            "cli-group",
            "--topic",
            "events:0",
            "--to-offset",
            "4",
            "--execute",
        ],
    );
    let text = out.ok();
    assert_eq!(
        table_row(text, "events", "0"),
        vec!["events", "0", "-", "4"]
    );
    run(
        &b,
        "groups",
        &[
            "--reset-offsets",
            "--group",
            "cli-group",
            "--topic",
            "events:1",
            "--to-offset",
            "7",
            "--execute",
        ],
    )
    .ok();

    let d = describe_group(&b, "cli-group");
    assert_eq!(d["group"], "cli-group");
    assert_eq!(d["state"], "Empty", "{d}");
    assert_eq!(d["members"].as_array().map(Vec::len), Some(0));
    let p0 = offsets_of(&d, "events", 0);
    assert_eq!(
        (&p0["current_offset"], &p0["log_end_offset"], &p0["lag"]),
        (&Value::from(4), &Value::from(10), &Value::from(6)),
        "{d}"
    );
    let p1 = offsets_of(&d, "events", 1);
    assert_eq!(
        (&p1["current_offset"], &p1["lag"]),
        (&Value::from(7), &Value::from(3))
    );
    // Nothing committed and nobody assigned: not listed.
    assert!(offsets_of(&d, "events", 2).is_null(), "{d}");
    // The table says the same.
    let out = run(&b, "groups", &["--describe", "--group", "cli-group"]);
    let text = out.ok();
    assert!(text.contains("State: Empty"), "{text}");
    assert_eq!(
        table_row(text, "events", "0")[..5],
        ["events", "0", "4", "10", "6"],
        "{text}"
    );
    assert!(text.contains("CURRENT-OFFSET") && text.contains("LOG-END-OFFSET"));

    // --list shows it.
    let l = run(&b, "groups", &["--list", "--output", "json"]).json();
    let g = l
        .as_array()
        .expect("array")
        .iter()
        .find(|g| g["group"] == "cli-group")
        .cloned()
        .unwrap_or_else(|| panic!("cli-group not listed: {l}"));
    assert_eq!(g["state"], "Empty");
    assert!(table_row(run(&b, "groups", &["--list"]).ok(), "cli-group", "Empty").len() >= 2);

    // Scenarios, each over both committed partitions (--all-topics) or a --topic.
    let reset = |args: &[&str]| {
        let mut all = vec!["--reset-offsets", "--group", "cli-group"];
        all.extend_from_slice(args);
        all.push("--execute");
        run(&b, "groups", &all).ok().to_string()
    };
    let current = |p: i64| {
        offsets_of(&describe_group(&b, "cli-group"), "events", p)["current_offset"].clone()
    };
    reset(&["--all-topics", "--shift-by", "-2"]);
    assert_eq!((current(0), current(1)), (2.into(), 5.into()));
    reset(&["--all-topics", "--shift-by", "100"]);
    assert_eq!(
        (current(0), current(1)),
        (10.into(), 10.into()),
        "clamped to the end"
    );
    reset(&["--topic", "events:0,1", "--to-earliest"]);
    assert_eq!((current(0), current(1)), (0.into(), 0.into()));
    reset(&["--topic", "events", "--to-latest"]);
    assert_eq!(
        (current(0), current(1), current(2)),
        (10.into(), 10.into(), 10.into())
    );
    reset(&["--topic", "events:2", "--to-offset", "-5"]);
    assert_eq!(current(2), 0, "clamped to the start");

    // --shift-by needs a committed offset.
    create_topic(&b, "other", 1);
    let out = run(
        &b,
        "groups",
        &[
            "--reset-offsets",
            "--group",
            "cli-group",
            "--topic",
            "other",
            "--shift-by",
            "1",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("no current committed offset"),
        "{out:?}"
    );
    // Unknown topic or partition.
    let out = run(
        &b,
        "groups",
        &[
            "--reset-offsets",
            "--group",
            "cli-group",
            "--topic",
            "nope",
            "--to-earliest",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("Topic 'nope' does not exist"),
        "{out:?}"
    );
    let out = run(
        &b,
        "groups",
        &[
            "--reset-offsets",
            "--group",
            "cli-group",
            "--topic",
            "events:9",
            "--to-earliest",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("Partition 9"), "{out:?}");
}

#[test]
fn reset_to_datetime_uses_record_timestamps() {
    let b = BrokerProc::start(FAST_GROUPS);
    // Records from 2024 must survive retention for the length of the test.
    run(
        &b,
        "topics",
        &[
            "--create",
            "--topic",
            "timed",
            "--config",
            "retention.ms=-1",
        ],
    )
    .ok();
    // 2024-01-01T00:00:00Z plus i minutes.
    produce(
        &b,
        "timed",
        1,
        10,
        Some(|i| 1_704_067_200_000 + i as i64 * 60_000),
    );
    let plan = |ts: &str| {
        let d = run(
            &b,
            "groups",
            &[
                "--reset-offsets",
                "--group",
                "timed-group",
                "--topic",
                "timed",
                "--to-datetime",
                ts,
                "--output",
                "json",
            ],
        )
        .json();
        assert_eq!(d["executed"], false);
        d["partitions"][0]["new_offset"].clone()
    };
    assert_eq!(plan("2024-01-01T00:05:00.000"), 5);
    assert_eq!(plan("2024-01-01T00:04:30.000Z"), 5);
    assert_eq!(plan("2024-01-01T01:03:00.000+01:00"), 3);
    assert_eq!(plan("2023-01-01T00:00:00.000"), 0);
    // After every record: the end of the log.
    assert_eq!(plan("2030-01-01T00:00:00.000"), 10);
    let out = run(
        &b,
        "groups",
        &[
            "--reset-offsets",
            "--group",
            "g",
            "--topic",
            "timed",
            "--to-datetime",
            "yesterday",
        ],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("invalid date-time"), "{out:?}");
}

#[test]
fn groups_with_an_active_consumer() {
    let b = BrokerProc::start(FAST_GROUPS);
    create_topic(&b, "live", 3);
    produce(&b, "live", 3, 10, None);

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("group.id", "active")
        .set("client.id", "lag-test-client")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "300")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&["live"]).expect("subscribe");
    wait_for(30, "the consumer to be assigned all 3 partitions", || {
        let _ = consumer.poll(Duration::from_millis(100));
        let n = consumer.assignment().map(|a| a.count()).unwrap_or(0);
        (n == 3).then_some(())
    });
    // Commit partitions 0 and 1 only.
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("live", 0, Offset::Offset(4))
        .expect("tpl");
    tpl.add_partition_offset("live", 1, Offset::Offset(7))
        .expect("tpl");
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");

    let d = wait_for(20, "the group to be Stable", || {
        let d = describe_group(&b, "active");
        (d["state"] == "Stable").then_some(d)
    });
    assert_eq!(d["protocol_type"], "consumer", "{d}");
    assert!(!d["protocol"].as_str().unwrap_or("").is_empty(), "{d}");
    let members = d["members"].as_array().expect("members");
    assert_eq!(members.len(), 1, "{d}");
    let m = &members[0];
    assert_eq!(m["client_id"], "lag-test-client");
    assert!(!m["host"].as_str().unwrap_or("").is_empty(), "{d}");
    assert_eq!(m["assignment"].as_array().map(Vec::len), Some(3), "{d}");
    let p0 = offsets_of(&d, "live", 0);
    assert_eq!(
        (&p0["current_offset"], &p0["lag"]),
        (&4.into(), &6.into()),
        "{d}"
    );
    assert_eq!(p0["member_id"], m["member_id"]);
    let p1 = offsets_of(&d, "live", 1);
    assert_eq!(
        (&p1["current_offset"], &p1["lag"]),
        (&7.into(), &3.into()),
        "{d}"
    );
    // Assigned but never committed: listed with no offset, and the backlog it faces
    // counted from the log start (never "no lag"), labelled as such.
    let p2 = offsets_of(&d, "live", 2);
    assert_eq!(p2["current_offset"], Value::Null, "{d}");
    assert_eq!(p2["log_end_offset"], 10, "{d}");
    assert_eq!(p2["log_start_offset"], 0, "{d}");
    assert_eq!(p2["lag"], 10, "{d}");
    assert_eq!(p2["lag_basis"], "log_start", "{d}");
    assert_eq!(p0["lag_basis"], "committed", "{d}");
    // In the table, '-' where nothing is committed, the log-start lag starred and
    // explained, and the member's client id.
    let out = run(&b, "groups", &["--describe", "--group", "active"]);
    let text = out.ok();
    assert!(text.contains("State: Stable"), "{text}");
    let row = table_row(text, "live", "2");
    assert_eq!(row[2..5], ["-", "10", "10*"], "{text}");
    assert!(text.contains("* no committed offset"), "{text}");
    assert_eq!(
        row.last().map(String::as_str),
        Some("lag-test-client"),
        "{text}"
    );
    assert_eq!(
        table_row(text, "live", "1")[2..5],
        ["7", "10", "3"],
        "{text}"
    );
    assert!(text.contains("live(0,1,2)"), "{text}");

    // An active group's offsets cannot be reset, nor can it be deleted.
    for extra in [&["--dry-run"][..], &["--execute"][..]] {
        let mut args = vec![
            "--reset-offsets",
            "--group",
            "active",
            "--topic",
            "live",
            "--to-earliest",
        ];
        args.extend_from_slice(extra);
        let out = run(&b, "groups", &args);
        assert_eq!(out.code, 1, "{out:?}");
        assert!(out.stderr.contains("inactive"), "{out:?}");
        assert!(out.stderr.contains("Stable"), "{out:?}");
    }
    let out = run(&b, "groups", &["--delete", "--group", "active"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("not empty"), "{out:?}");
    assert_eq!(
        offsets_of(&describe_group(&b, "active"), "live", 0)["current_offset"],
        4,
        "a refused reset changed nothing"
    );

    // The consumer leaves; the group is Empty and keeps its offsets.
    drop(consumer);
    let d = wait_for(20, "the group to be Empty", || {
        let d = describe_group(&b, "active");
        (d["state"] == "Empty").then_some(d)
    });
    assert_eq!(d["members"].as_array().map(Vec::len), Some(0));
    assert_eq!(offsets_of(&d, "live", 0)["lag"], 6, "{d}");
    assert!(offsets_of(&d, "live", 2).is_null(), "{d}");

    // Dry run (the default): the plan, and nothing changes.
    let out = run(
        &b,
        "groups",
        &[
            "--reset-offsets",
            "--group",
            "active",
            "--topic",
            "live",
            "--to-earliest",
        ],
    );
    let text = out.ok();
    assert_eq!(
        table_row(text, "live", "0"),
        ["live", "0", "4", "0"],
        "{text}"
    );
    assert_eq!(
        table_row(text, "live", "1"),
        ["live", "1", "7", "0"],
        "{text}"
    );
    assert_eq!(
        table_row(text, "live", "2"),
        ["live", "2", "-", "0"],
        "{text}"
    );
    assert!(text.contains("Dry run"), "{text}");
    let d = describe_group(&b, "active");
    assert_eq!(offsets_of(&d, "live", 0)["current_offset"], 4, "{d}");
    assert_eq!(offsets_of(&d, "live", 1)["current_offset"], 7, "{d}");

    // --execute applies it.
    let out = run(
        &b,
        "groups",
        &[
            "--reset-offsets",
            "--group",
            "active",
            "--topic",
            "live",
            "--to-earliest",
            "--execute",
            "--output",
            "json",
        ],
    );
    let plan = out.json();
    assert_eq!(plan["executed"], true);
    assert_eq!(plan["partitions"].as_array().map(Vec::len), Some(3));
    let d = describe_group(&b, "active");
    for p in 0..3 {
        let o = offsets_of(&d, "live", p);
        assert_eq!(
            (&o["current_offset"], &o["lag"]),
            (&0.into(), &10.into()),
            "{d}"
        );
    }

    // A new consumer in the group starts from the reset offsets.
    let again: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("group.id", "active")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "latest")
        .create()
        .expect("consumer");
    again.subscribe(&["live"]).expect("subscribe");
    let first = wait_for(30, "a record from the reset position", || {
        again
            .poll(Duration::from_millis(100))
            .and_then(Result::ok)
            .map(|m| rdkafka::Message::offset(&m))
    });
    assert_eq!(first, 0);
    drop(again);
    wait_for(20, "the group to be Empty again", || {
        (describe_group(&b, "active")["state"] == "Empty").then_some(())
    });

    // Delete; then it is gone.
    let out = run(&b, "groups", &["--delete", "--group", "active"]);
    assert!(out.ok().contains("Deleted"), "{out:?}");
    let out = run(&b, "groups", &["--describe", "--group", "active"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("does not exist"), "{out:?}");
    let out = run(&b, "groups", &["--delete", "--group", "active"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("does not exist"), "{out:?}");
}

#[test]
fn groups_usage_errors_exit_2() {
    for args in [
        &["groups"][..],
        &["groups", "--describe"][..],
        &["groups", "--list", "--delete"][..],
        &["groups", "--reset-offsets", "--group", "g", "--topic", "t"][..],
        &["groups", "--reset-offsets", "--group", "g", "--to-earliest"][..],
        &[
            "groups",
            "--reset-offsets",
            "--group",
            "g",
            "--topic",
            "t",
            "--to-earliest",
            "--to-latest",
        ][..],
        &[
            "groups",
            "--reset-offsets",
            "--group",
            "g",
            "--topic",
            "t",
            "--to-earliest",
            "--dry-run",
            "--execute",
        ][..],
        &["groups", "--describe", "--group", "g", "--to-earliest"][..],
        &[
            "groups",
            "--reset-offsets",
            "--group",
            "g",
            "--topic",
            "t:x",
            "--to-earliest",
        ][..],
    ] {
        let out = rill(args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("error:"), "{args:?}: {out:?}");
    }
}
