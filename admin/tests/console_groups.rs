//! Consumer groups through the console: lag (−1 where nothing is committed), time lag,
//! `/metrics` names, lag history, thresholds and status, offset resets (preview, refusal
//! while active, apply) and deletion, against a broker process and an rdkafka consumer.

mod common;

use std::time::Duration;

use common::console::{assert_field_error, ConsoleProc};
use common::{wait_for, BrokerProc};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

const FAST_GROUPS: &[&str] = &[
    "group.initial.rebalance.delay.ms=0",
    "group.min.session.timeout.ms=500",
    "offsets.topic.num.partitions=3",
];

#[test]
fn groups_lag_metrics_reset_and_delete() {
    let b = BrokerProc::start(FAST_GROUPS);
    let c = ConsoleProc::start(&b.bootstrap);
    let (s, v) = c.post_json("/topics", json!({"name": "live", "partitions": 2}));
    assert_eq!(s, 200, "{v}");
    for i in 0..10 {
        let (s, v) = c.post_json(
            "/topics/live/produce",
            json!({"partition": 0, "value": format!("m{i}")}),
        );
        assert_eq!(s, 200, "{v}");
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("group.id", "billing")
        .set("client.id", "console-test")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "300")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&["live"]).expect("subscribe");
    wait_for(30, "assignment of both partitions", || {
        let _ = consumer.poll(Duration::from_millis(100));
        (consumer.assignment().map(|a| a.count()).unwrap_or(0) == 2).then_some(())
    });
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("live", 0, Offset::Offset(4))
        .expect("tpl");
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");

    // The collector sees the member, the commit on partition 0 and none on partition 1. A
    // cycle that started before the commit shows the member without it: wait for the commit.
    let g = wait_for(30, "the group with its lag", || {
        let _ = consumer.poll(Duration::from_millis(50));
        let g = c.json("/groups/billing");
        (g["group"]["members"].as_array().map(Vec::len) == Some(1)
            && g["group"]["partitions"].as_array().map(Vec::len) == Some(2)
            && g["group"]["partitions"][0]["committed"].as_i64() == Some(4))
        .then_some(g)
    });
    let parts = g["group"]["partitions"].as_array().unwrap();
    assert_eq!(
        (parts[0]["committed"].as_i64(), parts[0]["lag"].as_i64()),
        (Some(4), Some(6)),
        "{g}"
    );
    // No commit on partition 1 (which holds no records): the backlog from the log start,
    // labelled, not "no lag".
    assert_eq!(
        (parts[1]["committed"].as_i64(), parts[1]["lag"].as_i64()),
        (Some(-1), Some(0)),
        "{g}"
    );
    assert_eq!(parts[1]["basis"], "log_start", "{g}");
    assert_eq!(parts[0]["basis"], "committed", "{g}");
    assert!(g["group"]["status"].is_string(), "{g}");
    let list = c.json("/groups");
    let row = list["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group_id"] == "billing")
        .unwrap()
        .clone();
    assert_eq!(row["total_lag"], 6, "{row}");
    let sorted = c.json("/groups?sort=lag&status=");
    assert_eq!(sorted["groups"][0]["group_id"], "billing", "{sorted}");
    let none = c.json("/groups?status=stopped");
    assert!(
        none["groups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["status"] == "stopped"),
        "{none}"
    );
    assert_eq!(
        c.request("GET", "/groups?status=sleepy", None, true).status,
        400
    );
    assert_eq!(
        c.request("GET", "/groups?sort=size", None, true).status,
        400
    );
    assert_eq!(row["members"], 1);
    let html = c.get("/groups/billing");
    for id in [
        "members-table",
        "lag-table",
        "lag-chart",
        "thresholds-form",
        "reset-offsets-form",
        "delete-group-form",
    ] {
        assert!(
            html.body.contains(&format!("id=\"{id}\"")),
            "group page lacks #{id}"
        );
    }

    // The reset form offers the group's own topic first (not the first alphabetically, and
    // never an internal topic).
    let select = html
        .body
        .split("<select name=\"topic\">")
        .nth(1)
        .unwrap_or("");
    assert!(
        select.trim_start().starts_with("<option value=\"live\""),
        "the group's topic first: {select:.200}"
    );
    assert!(
        !select
            .split("</select>")
            .next()
            .unwrap_or("")
            .contains("__"),
        "{select:.400}"
    );

    // /metrics: kafka_exporter and kafka-lag-exporter names; -1 where nothing is committed.
    let m = c.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(m
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/plain"));
    for name in [
        "kafka_brokers 1",
        "kafka_broker_info{address=",
        "kafka_topic_partitions{topic=\"live\"} 2",
        "kafka_topic_partition_current_offset{partition=\"0\",topic=\"live\"} 10",
        "kafka_topic_partition_oldest_offset{partition=\"0\",topic=\"live\"} 0",
        "kafka_topic_partition_leader{partition=\"0\",topic=\"live\"} 1",
        "kafka_topic_partition_replicas{partition=\"0\",topic=\"live\"} 1",
        "kafka_topic_partition_in_sync_replica{partition=\"0\",topic=\"live\"} 1",
        "kafka_topic_partition_leader_is_preferred{partition=\"0\",topic=\"live\"} 1",
        "kafka_topic_partition_under_replicated_partition{partition=\"0\",topic=\"live\"} 0",
        "kafka_consumergroup_current_offset{consumergroup=\"billing\",partition=\"0\",topic=\"live\"} 4",
        "kafka_consumergroup_current_offset{consumergroup=\"billing\",partition=\"1\",topic=\"live\"} -1",
        "kafka_consumergroup_current_offset_sum{consumergroup=\"billing\",topic=\"live\"} 4",
        "kafka_consumergroup_lag{consumergroup=\"billing\",partition=\"0\",topic=\"live\"} 6",
        "kafka_consumergroup_lag{consumergroup=\"billing\",partition=\"1\",topic=\"live\"} -1",
        "kafka_consumergroup_lag_sum{consumergroup=\"billing\",topic=\"live\"} 6",
        "kafka_consumergroup_members{consumergroup=\"billing\"} 1",
        "kafka_consumergroup_group_max_lag{cluster_name=",
        "kafka_consumergroup_group_sum_lag{cluster_name=",
        "kafka_consumergroup_group_lag{client_id=\"console-test\"",
        "kafka_partition_latest_offset{cluster_name=",
        "kafka_partition_earliest_offset{cluster_name=",
        "\nrill_console_cluster_up 1\n",
    ] {
        assert!(m.body.contains(name), "/metrics lacks {name}:\n{}", m.body);
    }
    // Time lag appears once the end offset has history (two cycles with a produce between).
    let (s, _) = c.post_json(
        "/topics/live/produce",
        json!({"partition": 0, "value": "more"}),
    );
    assert_eq!(s, 200);
    wait_for(20, "kafka_consumergroup_group_lag_seconds", || {
        let _ = consumer.poll(Duration::from_millis(50));
        c.get("/metrics")
            .body
            .contains("kafka_consumergroup_group_lag_seconds{")
            .then_some(())
    });
    // Lag history from the store.
    let h = wait_for(20, "lag history points", || {
        let h = c.json("/groups/billing/lag-history?range=1h");
        (h["points"].as_array().map(Vec::len).unwrap_or(0) >= 2).then_some(h)
    });
    let max = h["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p[1].as_i64())
        .max();
    assert!(max >= Some(6), "{h}");
    for range in ["24h", "7d"] {
        assert!(c.json(&format!("/groups/billing/lag-history?range={range}"))["points"].is_array());
    }
    assert_eq!(
        c.request("GET", "/groups/billing/lag-history?range=1y", None, true)
            .status,
        400
    );

    // Thresholds: validated, stored, shown.
    assert_field_error(
        c.post_json(
            "/groups/billing/thresholds",
            json!({"max_lag": -1, "max_lag_seconds": 5, "stall_seconds": 10}),
        ),
        400,
        "max_lag",
    );
    assert_field_error(
        c.post_json(
            "/groups/billing/thresholds",
            json!({"max_lag": 1, "max_lag_seconds": "x", "stall_seconds": 10}),
        ),
        400,
        "max_lag_seconds",
    );
    assert_field_error(
        c.post_json(
            "/groups/billing/thresholds",
            json!({"max_lag": 1, "max_lag_seconds": 5, "stall_seconds": 0}),
        ),
        400,
        "stall_seconds",
    );
    let (s, v) = c.post_json(
        "/groups/billing/thresholds",
        json!({"max_lag": 2, "max_lag_seconds": 600, "stall_seconds": 3600}),
    );
    assert_eq!(s, 200, "{v}");
    let g = wait_for(10, "status lagging above max_lag 2", || {
        let _ = consumer.poll(Duration::from_millis(50));
        let g = c.json("/groups/billing");
        (g["group"]["status"] == "lagging").then_some(g)
    });
    assert_eq!(g["thresholds"]["own"], true, "{g}");

    // Reset: bad input, a refused apply while the consumer is active, then preview and apply.
    assert_field_error(
        c.post_json(
            "/groups/billing/reset",
            json!({"topic": "nope", "strategy": "earliest"}),
        ),
        400,
        "topic",
    );
    assert_field_error(
        c.post_json(
            "/groups/billing/reset",
            json!({"topic": "live", "strategy": "sideways"}),
        ),
        400,
        "strategy",
    );
    assert_field_error(
        c.post_json(
            "/groups/billing/reset",
            json!({"topic": "live", "strategy": "offset", "value": "-5"}),
        ),
        400,
        "value",
    );
    assert_field_error(
        c.post_json(
            "/groups/billing/reset",
            json!({"topic": "live", "strategy": "timestamp", "value": "tomorrow"}),
        ),
        400,
        "value",
    );
    // Apply without confirming shows the plan and commits nothing.
    let (s, v) = c.post_json(
        "/groups/billing/reset",
        json!({"topic": "live", "strategy": "earliest", "action": "apply"}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (&v["applied"], &v["awaiting_confirmation"]),
        (&json!(false), &json!(true)),
        "{v}"
    );
    let (s, v) = c.post_json(
        "/groups/billing/reset",
        json!({"topic": "live", "strategy": "earliest", "action": "apply", "confirm": "yes"}),
    );
    assert_eq!(s, 400, "active group refused: {v}");
    let (s, plan) = c.post_json(
        "/groups/billing/reset",
        json!({"topic": "live", "strategy": "offset", "value": "2", "action": "preview"}),
    );
    assert_eq!(s, 200, "{plan}");
    assert_eq!(plan["applied"], false);
    assert_eq!(plan["rows"][0]["current"], 4, "{plan}");
    assert_eq!(plan["rows"][0]["target"], 2, "{plan}");
    drop(consumer);
    wait_for(30, "the group to empty", || {
        (c.json("/groups/billing")["group"]["members"]
            .as_array()
            .map(Vec::len)
            == Some(0))
        .then_some(())
    });
    let r = c.post_form(
        "/groups/billing/reset",
        &[
            ("topic", "live"),
            ("strategy", "latest"),
            ("value", ""),
            ("action", "preview"),
        ],
    );
    assert_eq!(r.status, 200);
    assert!(r.body.contains("id=\"reset-preview\""), "{}", r.body);
    // The form keeps the previewed choice, so Apply applies what was previewed.
    assert!(
        r.body.contains("<option value=\"latest\" selected>"),
        "{}",
        r.body
    );
    let r = c.post_form(
        "/groups/billing/reset",
        &[
            ("topic", "live"),
            ("strategy", "offset"),
            ("value", "x"),
            ("action", "preview"),
        ],
    );
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("<option value=\"offset\" selected>"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("id=\"reset-offsets-value-error\""),
        "{}",
        r.body
    );
    let (s, plan) = c.post_json(
        "/groups/billing/reset",
        json!({"topic": "live", "strategy": "offset", "value": "2", "action": "apply", "confirm": "yes"}),
    );
    assert_eq!(s, 200, "{plan}");
    assert_eq!(plan["applied"], true);
    let g = c.json("/groups/billing");
    assert_eq!(g["group"]["partitions"][0]["committed"], 2, "{g}");

    // Delete the group: confirmation required.
    assert_field_error(
        c.post_json("/groups/billing/delete", json!({"confirm": "bill"})),
        400,
        "confirm",
    );
    let (s, v) = c.post_json("/groups/billing/delete", json!({"confirm": "billing"}));
    assert_eq!(s, 200, "{v}");
    assert_eq!(c.request("GET", "/groups/billing", None, true).status, 404);
    // Group ids may hold any character: links and forms encode them.
    let odd: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("group.id", "team a/b")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("live", 0, Offset::Offset(1))
        .expect("tpl");
    odd.assign(&tpl).expect("assign");
    odd.commit(&tpl, CommitMode::Sync).expect("commit");
    wait_for(20, "the oddly named group", || {
        let r = c.request("GET", "/groups/team%20a%2Fb", None, true);
        (r.status == 200).then_some(())
    });
    assert!(c
        .get("/groups")
        .body
        .contains("href=\"/groups/team%20a%2Fb\""));
    assert!(c
        .get("/groups/team%20a%2Fb")
        .body
        .contains("action=\"/groups/team%20a%2Fb/reset\""));

    let actions: Vec<String> = c.json("/audit")["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    for a in ["reset-offsets", "set-thresholds", "delete-group"] {
        assert!(actions.iter().any(|x| x == a), "{a}: {actions:?}");
    }
}

/// `rill groups --reset-offsets` (dry run) and the console's reset preview make the same
/// plan for the same inputs: one planner (`ops::reset`) behind both.
#[test]
fn cli_and_console_plan_the_same_reset() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let b = BrokerProc::start(FAST_GROUPS);
    let c = ConsoleProc::start(&b.bootstrap);
    let (s, v) = c.post_json("/topics", json!({"name": "plan-t", "partitions": 3}));
    assert_eq!(s, 200, "{v}");
    // 10 records a partition, record i written at 2026-01-01T00:00:0i.
    let base = 1_767_225_600_000_i64;
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .create()
        .expect("producer");
    for part in 0..3 {
        for i in 0..10_i64 {
            let value = format!("v{i}");
            p.send(
                BaseRecord::<str, str>::to("plan-t")
                    .partition(part)
                    .payload(&value)
                    .timestamp(base + i * 1000),
            )
            .expect("enqueue");
        }
    }
    p.flush(Duration::from_secs(20)).expect("flush");
    let consumer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("group.id", "planner")
        .create::<BaseConsumer>()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("plan-t", 0, Offset::Offset(4))
        .expect("tpl");
    tpl.add_partition_offset("plan-t", 1, Offset::Offset(7))
        .expect("tpl");
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    wait_for(30, "the group in the console", || {
        (c.json("/groups/planner")["group"]["partitions"]
            .as_array()
            .map(Vec::len)
            == Some(2))
        .then_some(())
    });
    let cli = |scenario: &[&str]| {
        let mut args = vec![
            "groups",
            "--bootstrap-server",
            b.bootstrap.as_str(),
            "--reset-offsets",
            "--group",
            "planner",
            "--topic",
            "plan-t",
            "--output",
            "json",
        ];
        args.extend_from_slice(scenario);
        common::rill(&args)
    };
    let scenarios: [(&[&str], &str, &str); 7] = [
        (&["--to-earliest"], "earliest", ""),
        (&["--to-latest"], "latest", ""),
        (&["--to-offset", "3"], "offset", "3"),
        (&["--to-offset", "99"], "offset", "99"),
        (
            &["--to-datetime", "2026-01-01T00:00:05.500"],
            "timestamp",
            "2026-01-01T00:00:05.500Z",
        ),
        (
            &["--to-datetime", "2030-01-01T00:00:00"],
            "timestamp",
            "1893456000000",
        ),
        (&["--shift-by", "-2"], "shift-by", "-2"),
    ];
    for (flags, strategy, value) in scenarios {
        let out = cli(flags);
        let (s, plan) = c.post_json(
            "/groups/planner/reset",
            json!({"topic": "plan-t", "strategy": strategy, "value": value, "action": "preview"}),
        );
        if strategy == "shift-by" {
            // Partition 2 has no commit: both refuse, naming it.
            assert_ne!(out.code, 0, "{flags:?}");
            assert!(out.stderr.contains("partition plan-t-2"), "{}", out.stderr);
            assert_eq!(s, 400, "{plan}");
            assert!(
                plan["error"]
                    .as_str()
                    .unwrap_or("")
                    .contains("partition plan-t-2"),
                "{plan}"
            );
            continue;
        }
        assert_eq!(s, 200, "{flags:?}: {plan}");
        let from_cli: Vec<(i64, i64, i64)> = out.json()["partitions"]
            .as_array()
            .expect("partitions")
            .iter()
            .map(|p| {
                (
                    p["partition"].as_i64().unwrap_or(-9),
                    p["current_offset"].as_i64().unwrap_or(-1),
                    p["new_offset"].as_i64().unwrap_or(-9),
                )
            })
            .collect();
        let from_console: Vec<(i64, i64, i64)> = plan["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                (
                    r["partition"].as_i64().unwrap_or(-9),
                    r["current"].as_i64().unwrap_or(-9),
                    r["target"].as_i64().unwrap_or(-9),
                )
            })
            .collect();
        assert_eq!(from_cli, from_console, "{flags:?} / {strategy} {value}");
        assert_eq!(from_cli.len(), 3);
    }
    // Spot checks of the rules both follow: clamped to the end, a time after every record is
    // the end, 05.500 is the first record at or after it (offset 6).
    let targets = |v: &str, s: &str| {
        let (_, plan) = c.post_json(
            "/groups/planner/reset",
            json!({"topic": "plan-t", "strategy": s, "value": v, "action": "preview"}),
        );
        plan["rows"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .map(|r| r["target"].as_i64().unwrap_or(-9))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    assert_eq!(targets("99", "offset"), [10, 10, 10]);
    assert_eq!(targets("1893456000000", "timestamp"), [10, 10, 10]);
    assert_eq!(targets("2026-01-01T00:00:05.500Z", "timestamp"), [6, 6, 6]);
}
