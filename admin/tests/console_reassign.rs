//! The console's reassignment page and preferred leader elections against a real 3-node
//! `rill-broker` cluster: a generated plan, dry run, bad plans refused field by field, a
//! throttled move with progress seen through the page's JSON before it completes and the
//! throttles removed after; cancel reverting a move; an election moving leadership to the
//! preferred replica.

mod common;

use std::time::Duration;

use common::console::{assert_field_error, hash_password, post_form_as, ConsoleProc};
use common::{cluster, wait_for, BrokerProc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{json, Value};

/// Creates `topic` with an explicit assignment and writes `records` 1 KiB records to each
/// partition.
fn topic_with_data(all: &str, topic: &str, assignment: &[&[i32]], records: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", all)
        .create()
        .expect("admin");
    let new = NewTopic::new(
        topic,
        assignment.len() as i32,
        TopicReplication::Variable(assignment),
    );
    rt.block_on(admin.create_topics([&new], &AdminOptions::new()))
        .expect("rpc")[0]
        .clone()
        .expect("created");
    if records == 0 {
        return;
    }
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", all)
        .set("batch.size", "16384")
        .create()
        .expect("producer");
    let value = vec![b'v'; 1024];
    for part in 0..assignment.len() as i32 {
        for _ in 0..records {
            p.send(
                BaseRecord::<(), _>::to(topic)
                    .partition(part)
                    .payload(&value),
            )
            .expect("enqueue");
        }
    }
    p.flush(Duration::from_secs(30)).expect("flushed");
}

/// The console's view of a topic's partitions: (replicas, leader) by partition.
fn partitions(c: &ConsoleProc, topic: &str) -> Option<Vec<(Vec<i64>, i64)>> {
    let v = c.json(&format!("/topics/{topic}"));
    let parts = v["topic"]["partitions"].as_array()?;
    Some(
        parts
            .iter()
            .map(|p| {
                let r = p["replicas"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_i64).collect())
                    .unwrap_or_default();
                (r, p["leader"].as_i64().unwrap_or(-1))
            })
            .collect(),
    )
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort();
    v
}

/// A broker's dynamic config value as the console's broker page shows it.
fn broker_config(c: &ConsoleProc, id: i32, key: &str) -> Option<String> {
    let v = c.json(&format!("/brokers/{id}"));
    v["configs"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == key)
        .and_then(|r| r["value"].as_str().map(str::to_string))
}

fn console_for(all: &str, topic: &str, extra: &[&str]) -> ConsoleProc {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("console.db").display());
    let c = ConsoleProc::start_full(all, &url, dir, extra);
    wait_for(60, "the console to see the topic", || {
        partitions(&c, topic).filter(|p| !p.is_empty()).map(|_| ())
    });
    c
}

#[test]
fn plan_dry_run_refusals_execute_progress_complete() {
    let nodes = cluster::start(&[]);
    let all = cluster::bootstrap(&nodes);
    topic_with_data(&all, "mv", &[&[1, 2], &[2, 1]], 400);
    // Progress from the brokers' own HTTP API (the log-dir fallback is the other test's).
    let http: Vec<String> = nodes.iter().map(|n| n.http.clone()).collect();
    let c = console_for(&all, "mv", &["--broker-http", &http.join(",")]);
    assert_eq!(c.json("/reassign")["status"], "none");

    // Plan: balanced over brokers 2 and 3, in Kafka's JSON; the HTML form shows it.
    let (st, gen) = c.post_json("/reassign/plan", json!({"topics": "mv", "brokers": "2,3"}));
    assert_eq!(st, 200, "{gen}");
    assert_eq!(gen["current"]["partitions"][0]["replicas"], json!([1, 2]));
    let proposed = gen["proposed"].clone();
    let parts = proposed["partitions"].as_array().expect("proposed");
    assert_eq!(parts.len(), 2);
    let mut leaders = Vec::new();
    for p in parts {
        let r: Vec<i64> = p["replicas"]
            .as_array()
            .expect("replicas")
            .iter()
            .filter_map(Value::as_i64)
            .collect();
        leaders.push(r[0]);
        assert_eq!(sorted(r), vec![2, 3], "{gen}");
    }
    assert_eq!(sorted(leaders), vec![2, 3], "balanced leaders: {gen}");
    let html = c.post_form("/reassign/plan", &[("topics", "mv"), ("brokers", "2,3")]);
    assert_eq!(html.status, 200);
    assert!(
        html.body.contains("id=\"reassign-plan\"") && html.body.contains("&#34;replicas&#34;"),
        "{}",
        html.body
    );
    assert_field_error(
        c.post_json("/reassign/plan", json!({"topics": "nope", "brokers": "2"})),
        400,
        "topics",
    );
    assert_field_error(
        c.post_json("/reassign/plan", json!({"topics": "mv", "brokers": "x"})),
        400,
        "brokers",
    );

    // Dry run: valid, nothing applied.
    let plan = proposed.to_string();
    let (st, dry) = c.post_json(
        "/reassign/execute",
        json!({"plan": plan, "action": "dry-run"}),
    );
    assert_eq!(
        (st, dry["valid"].clone(), dry["partitions"].clone()),
        (200, json!(true), json!(2)),
        "{dry}"
    );
    assert_eq!(c.json("/reassign")["status"], "none");
    assert!(c.json("/reassign")["progress"]
        .as_array()
        .is_some_and(Vec::is_empty));

    // Bad plans: each refused with the message on the field, nothing applied.
    let one = |replicas: Value, partition: i64| {
        json!({"version": 1, "partitions": [{"topic": "mv", "partition": partition, "replicas": replicas}]}).to_string()
    };
    for (bad, what) in [
        (one(json!([2, 9]), 0), "missing broker"),
        (one(json!([2, 2]), 0), "duplicate replicas"),
        (one(json!([1, 2, 3, 4]), 0), "RF above broker count"),
        (one(json!([2, 3]), 7), "missing partition"),
        ("{not json".to_string(), "not JSON"),
    ] {
        for action in ["dry-run", "execute"] {
            let r = c.post_json("/reassign/execute", json!({"plan": bad, "action": action}));
            assert!(r.0 == 400, "{what}: {}", r.1);
            assert_field_error(r, 400, "plan");
        }
    }
    assert_field_error(
        c.post_json(
            "/reassign/execute",
            json!({"plan": plan, "action": "execute", "throttle": "fast"}),
        ),
        400,
        "throttle",
    );
    let page = c.post_form(
        "/reassign/execute",
        &[("plan", &one(json!([2, 9]), 0)), ("action", "dry-run")],
    );
    assert_eq!(page.status, 400);
    assert!(
        page.body.contains("id=\"reassign-execute-plan-error\""),
        "{}",
        page.body
    );
    assert_eq!(c.json("/reassign")["status"], "none");
    assert_eq!(partitions(&c, "mv").expect("mv")[0].0, vec![1, 2]);

    // Execute with a throttle: Kafka's throttle configs are set, progress shows before the end.
    let (st, ex) = c.post_json(
        "/reassign/execute",
        json!({"plan": plan, "action": "execute", "throttle": 100000}),
    );
    assert_eq!(st, 200, "{ex}");
    assert_eq!(ex["started"], 2);
    let (st, again) = c.post_json(
        "/reassign/execute",
        json!({"plan": plan, "action": "dry-run"}),
    );
    assert_eq!(st, 400, "a plan already in flight is refused: {again}");
    let seen = wait_for(60, "progress of a replica still copying", || {
        let v = c.json("/reassign");
        v["progress"]
            .as_array()?
            .iter()
            .find(|p| {
                let (copied, total) = (
                    p["copied"].as_i64().unwrap_or(0),
                    p["total"].as_i64().unwrap_or(0),
                );
                total > 0 && copied < total && p["remaining"].as_i64() == Some(total - copied)
            })
            .cloned()
            .map(|p| ((v["status"].clone(), v["progress_source"].clone()), p))
    });
    assert_eq!(seen.0 .0, "in-progress", "{seen:?}");
    assert_eq!(seen.0 .1, "http", "{seen:?}");
    assert_eq!(seen.1["replica"], 3, "{seen:?}");
    assert_eq!(
        broker_config(&c, 3, "follower.replication.throttled.rate").as_deref(),
        Some("100000")
    );

    // Completion: every partition complete, replicas are the target, throttles removed.
    let done = wait_for(180, "the reassignment to complete", || {
        let v = c.json("/reassign");
        (v["status"] == "completed").then_some(v)
    });
    for s in done["executed"].as_array().expect("executed") {
        assert_eq!(s["state"], "complete", "{done}");
        assert_eq!(s["percent"], json!(100.0), "{done}");
    }
    assert!(
        done["progress"].as_array().is_some_and(Vec::is_empty),
        "{done}"
    );
    assert!(done["throttle"].is_null(), "no throttle once done: {done}");
    wait_for(30, "the new replicas in the snapshot", || {
        partitions(&c, "mv").filter(|p| p.iter().all(|(r, _)| sorted(r.clone()) == vec![2, 3]))
    });
    for b in 1..=3 {
        let rate = broker_config(&c, b, "follower.replication.throttled.rate");
        assert!(
            rate.as_deref()
                .is_none_or(|r| r.is_empty() || r == "9223372036854775807"),
            "broker {b}: {rate:?}"
        );
    }
    let audit = c.json("/audit").to_string();
    for a in ["reassign-execute", "reassign-completed"] {
        assert!(audit.contains(a), "{a} in {audit}");
    }
}

#[test]
fn cancel_reverts_and_preferred_election_moves_leadership() {
    let nodes = cluster::start(&[]);
    let all = cluster::bootstrap(&nodes);
    topic_with_data(&all, "slow", &[&[1, 2]], 400);
    topic_with_data(&all, "lead", &[&[1, 2]], 0);
    let c = console_for(&all, "lead", &[]);
    wait_for(30, "slow in the snapshot", || partitions(&c, "slow"));

    // Cancel: a slow move is reverted, the throttles go.
    let plan = json!({"version": 1, "partitions": [{"topic": "slow", "partition": 0, "replicas": [3, 2]}]}).to_string();
    let (st, ex) = c.post_json(
        "/reassign/execute",
        json!({"plan": plan, "action": "execute", "throttle": "5000"}),
    );
    assert_eq!(st, 200, "{ex}");
    let source = wait_for(30, "the move in flight", || {
        let v = c.json("/reassign");
        (v["status"] == "in-progress" && v["progress"].as_array().is_some_and(|p| !p.is_empty()))
            .then_some(v["progress_source"].clone())
    });
    assert_eq!(source, "log-dirs");
    // Without confirm=yes nothing changes: the answer lists what would be reverted.
    let (st, asked) = c.post_json("/reassign/cancel", json!({}));
    assert_eq!(st, 200, "{asked}");
    assert_eq!(asked["awaiting_confirmation"], true, "{asked}");
    assert_eq!(
        asked["would_cancel"].as_array().map(Vec::len),
        Some(1),
        "{asked}"
    );
    assert_eq!(c.json("/reassign")["status"], "in-progress");
    let (st, cancelled) = c.post_json("/reassign/cancel", json!({"confirm": "yes"}));
    assert_eq!(
        (st, cancelled["cancelled"].clone()),
        (200, json!(1)),
        "{cancelled}"
    );
    let v = c.json("/reassign");
    assert_eq!(v["status"], "cancelled", "{v}");
    wait_for(30, "the original replicas back", || {
        partitions(&c, "slow").filter(|p| p[0].0 == vec![1, 2])
    });
    wait_for(30, "no reassignment in flight", || {
        c.json("/reassign")["progress"]
            .as_array()
            .filter(|p| p.is_empty())
            .map(|_| ())
    });
    assert_field_error(c.post_json("/reassign/cancel", json!({})), 400, "");

    // Preferred election: reorder lead-0 to [2, 1] (leader stays 1), then elect.
    let plan = json!({"version": 1, "partitions": [{"topic": "lead", "partition": 0, "replicas": [2, 1]}]}).to_string();
    let (st, ex) = c.post_json(
        "/reassign/execute",
        json!({"plan": plan, "action": "execute"}),
    );
    assert_eq!(st, 200, "{ex}");
    wait_for(60, "the reorder to complete", || {
        (c.json("/reassign")["status"] == "completed").then_some(())
    });
    // A move started elsewhere (the CLI) and cancelled from the page: the console's own
    // finished plan keeps its ending.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("plan.json");
    std::fs::write(
        &file,
        r#"{"version": 1, "partitions": [{"topic": "slow", "partition": 0, "replicas": [3, 2]}]}"#,
    )
    .expect("write plan");
    let f = file.to_str().expect("utf-8 path");
    common::rill(&[
        "reassign",
        "--bootstrap-server",
        &all,
        "--execute",
        "--reassignment-json-file",
        f,
        "--throttle",
        "5000",
    ])
    .ok();
    let (st, cancelled) = c.post_json("/reassign/cancel", json!({"confirm": "yes"}));
    assert_eq!(
        (st, cancelled["cancelled"].clone()),
        (200, json!(1)),
        "{cancelled}"
    );
    assert_eq!(c.json("/reassign")["status"], "completed");
    let before = wait_for(30, "the reorder in the snapshot", || {
        partitions(&c, "lead").filter(|p| p[0].0 == vec![2, 1])
    });
    assert_eq!(before[0].1, 1, "reordering keeps the leader");
    let (st, el) = c.post_json("/reassign/elect", json!({"topic": "lead"}));
    assert_eq!((st, el["elected"].clone()), (200, json!(1)), "{el}");
    wait_for(30, "broker 2 leading lead-0", || {
        partitions(&c, "lead").filter(|p| p[0].1 == 2)
    });
    let (st, el) = c.post_json("/reassign/elect", json!({"topic": ""}));
    assert_eq!(st, 200, "cluster-wide: {el}");
    assert_eq!(el["failed"], json!([]), "{el}");
    assert_field_error(
        c.post_json("/reassign/elect", json!({"topic": "nope"})),
        404,
        "",
    );
    let html = c.post_form("/reassign/elect", &[("topic", "lead")]);
    assert_eq!(html.status, 303);
    assert!(c.json("/audit").to_string().contains("elect-leaders"));
}

/// Logs in through the form: the cookie and the page's CSRF token.
fn login(c: &ConsoleProc, user: &str) -> (String, String) {
    let s = common::console::login(c, user, "/reassign");
    (s.cookie, s.csrf)
}

fn post_as(c: &ConsoleProc, cookie: &str, path: &str, fields: &[(&str, &str)]) -> u16 {
    post_form_as(c, cookie, path, fields).status
}

#[test]
fn reassign_forms_go_through_roles_csrf_and_audit() {
    let b = BrokerProc::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let h = hash_password("pw");
    let users = dir.path().join("users");
    std::fs::write(&users, format!("oper:operator:{h}\nview:viewer:{h}\n")).expect("users");
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let users_arg = users.display().to_string();
    let c = ConsoleProc::start_full(&b.bootstrap, &db, dir, &["--users-file", &users_arg]);
    let bad = [("plan", "{}"), ("action", "dry-run")];
    let routes: [(&str, &[(&str, &str)]); 4] = [
        ("/reassign/plan", &[("topics", "t"), ("brokers", "1")]),
        ("/reassign/execute", &bad),
        ("/reassign/cancel", &[]),
        ("/reassign/elect", &[("topic", "")]),
    ];
    // A viewer may look but not change; without the CSRF token nobody may change.
    let (view, view_token) = login(&c, "view");
    let (oper, oper_token) = login(&c, "oper");
    for (path, fields) in routes {
        let mut with = fields.to_vec();
        with.push(("csrf_token", &view_token));
        assert_eq!(post_as(&c, &view, path, &with), 403, "viewer {path}");
        assert_eq!(
            post_as(&c, &oper, path, fields),
            403,
            "no CSRF token {path}"
        );
    }
    // An operator with the token gets through to the checks, and the attempt is audited.
    // (A dry run changes nothing and is not audited; a refused execute is, as failed.)
    let mut with = vec![("plan", "{}"), ("action", "execute")];
    with.push(("csrf_token", &oper_token));
    assert_eq!(post_as(&c, &oper, "/reassign/execute", &with), 400);
    let mut with = vec![("topic", "")];
    with.push(("csrf_token", &oper_token));
    assert_eq!(post_as(&c, &oper, "/reassign/elect", &with), 303);
    let audit = c.request_with("GET", "/audit", None, true, &[("Cookie", oper.clone())]);
    assert!(
        audit.body.contains("reassign-execute") && audit.body.contains("elect-leaders"),
        "{}",
        audit.body
    );
    assert!(
        audit.body.contains("\"oper\"") && audit.body.contains("\"ok\":false"),
        "{}",
        audit.body
    );
    // The overview's imbalance indicators lead to the page.
    let o = c.request_with("GET", "/", None, false, &[("Cookie", oper)]);
    assert!(
        o.body
            .contains("href=\"/reassign\" id=\"leader-skew-link\""),
        "{}",
        o.body
    );
}
