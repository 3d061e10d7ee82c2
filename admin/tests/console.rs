//! `rill console` against a real broker process, over HTTP: every page as JSON and HTML,
//! the changes made through forms and JSON, bad input on every form and endpoint,
//! and the banner when the cluster goes away (groups, lag and `/metrics` are in
//! `console_groups.rs`). The store is an SQLite file in
//! a temp dir.

mod common;

use common::console::{assert_field_error, ConsoleProc};
use common::{wait_for, BrokerProc};
use serde_json::{json, Value};

fn topic_json(c: &ConsoleProc, name: &str) -> Value {
    c.json(&format!("/topics/{name}"))
}

fn config_value(topic: &Value, key: &str) -> Option<String> {
    topic["configs"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == key)
        .and_then(|c| c["value"].as_str().map(str::to_string))
}

#[test]
fn pages_answer_json_and_html() {
    let b = BrokerProc::start(&[]);
    let c = ConsoleProc::start(&b.bootstrap);

    let o = c.json("/");
    assert_eq!(o["totals"]["brokers"], 1, "{o}");
    assert_eq!(o["brokers"][0]["controller"], true, "{o}");
    assert!(
        o["cluster_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{o}"
    );
    assert_eq!(o["totals"]["preferred_leaders_pct"], 100.0, "{o}");
    assert_eq!(o["totals"]["leader_skew_pct"], 0.0, "{o}");
    assert_eq!(o["totals"]["replica_skew_pct"], 0.0, "{o}");
    for key in ["partitions", "under_replicated", "offline", "under_min_isr"] {
        assert!(o["totals"][key].is_u64(), "{key}: {o}");
    }
    assert!(c.json("/topics")["topics"].is_array());
    assert!(c.json("/groups")["groups"].is_array());
    assert_eq!(c.json("/brokers")["brokers"][0]["id"], 1);
    let broker = c.json("/brokers/1");
    assert!(
        broker["configs"].as_array().is_some_and(|a| !a.is_empty()),
        "{broker}"
    );
    assert!(
        broker["log_dirs"].as_array().is_some_and(|a| !a.is_empty()),
        "{broker}"
    );
    assert!(c.json("/audit")["entries"].is_array());

    for (path, id) in [
        ("/", "id=\"brokers-table\""),
        ("/topics", "id=\"create-topic-form\""),
        ("/groups", "id=\"groups-table\""),
        ("/brokers", "id=\"brokers-table\""),
        ("/brokers/1", "id=\"log-dirs-table\""),
        ("/audit", "id=\"audit-table\""),
    ] {
        let r = c.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(
            r.header("content-type")
                .unwrap_or("")
                .starts_with("text/html"),
            "{path}"
        );
        assert!(r.body.contains(id), "{path} lacks {id}");
        assert!(
            !r.body.contains("cluster-banner"),
            "{path} shows the banner"
        );
    }
    let css = c.get("/assets/console.css");
    assert_eq!(css.status, 200);
    assert!(css
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/css"));
    assert_eq!(c.get("/assets/console.js").status, 200);
    assert_eq!(c.get("/assets/nope.js").status, 404);
    let missing = c.request("GET", "/no/such/page", None, true);
    assert_eq!(missing.status, 404);
    assert_eq!(c.request("GET", "/topics/nope", None, true).status, 404);
    assert_eq!(c.request("GET", "/groups/nope", None, true).status, 404);
    assert_eq!(c.request("GET", "/brokers/99", None, true).status, 404);
    assert_eq!(
        c.request("GET", "/topics?filter=bogus", None, true).status,
        400
    );

    // A topic's partitions table is paged on the server; the summary counts them all.
    let (s, v) = c.post_json(
        "/topics",
        json!({"name": "wide", "partitions": 250, "replication_factor": 1}),
    );
    assert_eq!(s, 200, "{v}");
    let t = c.json("/topics/wide?per_page=100&page=3");
    assert_eq!(t["topic"]["partitions"].as_array().map(Vec::len), Some(250));
    let shown: Vec<i64> = t["partitions"]
        .as_array()
        .expect("a page of partitions")
        .iter()
        .map(|p| p["partition"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(shown, (200..250).collect::<Vec<i64>>());
    assert_eq!(t["paging"]["pages"], 3, "{}", t["paging"]);
    let html = c.get("/topics/wide?per_page=100&page=2").body;
    assert_eq!(html.matches("<tr data-partition=").count(), 100);
    assert!(html.contains("data-partition=\"100\""), "{html:.300}");
    assert!(!html.contains("data-partition=\"99\""), "{html:.300}");
    assert!(html.contains("101–200 of 250"), "{html:.300}");
    assert!(html.contains("id=\"partitions-next\""), "{html:.300}");
    assert!(html.contains("250 partition(s)"), "{html:.300}");
    let bad = c.request("GET", "/topics/wide?per_page=5000", None, true);
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("per_page"), "{}", bad.body);
}

#[test]
fn topics_are_created_altered_grown_browsed_and_deleted() {
    let b = BrokerProc::start(&[]);
    let c = ConsoleProc::start(&b.bootstrap);

    // Create through JSON, and through the HTML form (303 to the topic page).
    let (s, v) = c.post_json(
        "/topics",
        json!({"name": "orders", "partitions": 2, "replication_factor": 1, "configs": "retention.ms=3600000"}),
    );
    assert_eq!(s, 200, "{v}");
    let r = c.post_form(
        "/topics",
        &[
            ("name", "audit-me"),
            ("partitions", "1"),
            ("replication_factor", "1"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        r.header("location")
            .unwrap_or("")
            .starts_with("/topics/audit-me"),
        "{:?}",
        r.headers
    );
    let t = topic_json(&c, "orders");
    assert_eq!(
        t["topic"]["partitions"].as_array().map(Vec::len),
        Some(2),
        "{t}"
    );
    assert_eq!(
        config_value(&t, "retention.ms").as_deref(),
        Some("3600000"),
        "{t}"
    );
    let row = t["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .unwrap()
        .clone();
    assert_eq!(row["source"], "DYNAMIC_TOPIC_CONFIG", "{row}");
    assert!(!row["default_value"].is_null(), "default shown: {row}");
    // A config not set on the topic: its value is its default.
    let inherited = t["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "cleanup.policy")
        .unwrap()
        .clone();
    assert_ne!(inherited["source"], "DYNAMIC_TOPIC_CONFIG", "{inherited}");
    assert_eq!(
        inherited["default_value"], inherited["value"],
        "{inherited}"
    );
    let html = c.get("/topics/orders");
    for id in [
        "partitions-table",
        "configs-table",
        "alter-config-form",
        "add-partitions-form",
        "produce-form",
        "delete-topic-form",
    ] {
        assert!(
            html.body.contains(&format!("id=\"{id}\"")),
            "topic page lacks #{id}"
        );
    }
    // Search, filter, sort.
    let l = c.json("/topics?q=ord&filter=user&sort=partitions");
    assert_eq!(l["topics"].as_array().map(Vec::len), Some(1), "{l}");
    assert_eq!(l["topics"][0]["name"], "orders");

    // Bad creations: each names its field, and nothing is created.
    assert_field_error(
        c.post_json("/topics", json!({"name": "bad name!", "partitions": 1})),
        400,
        "name",
    );
    assert_field_error(
        c.post_json("/topics", json!({"name": "", "partitions": 1})),
        400,
        "name",
    );
    assert_field_error(
        c.post_json("/topics", json!({"name": "orders", "partitions": 1})),
        400,
        "name",
    );
    assert_field_error(
        c.post_json("/topics", json!({"name": "x1", "partitions": "many"})),
        400,
        "partitions",
    );
    assert_field_error(
        c.post_json("/topics", json!({"name": "x2", "partitions": 0})),
        400,
        "partitions",
    );
    assert_field_error(
        c.post_json("/topics", json!({"name": "x3", "replication_factor": 5})),
        400,
        "replication_factor",
    );
    assert_field_error(
        c.post_json("/topics", json!({"name": "x4", "configs": "no.such.key=1"})),
        400,
        "configs",
    );
    assert_field_error(
        c.post_json(
            "/topics",
            json!({"name": "x5", "configs": "retention.ms=soon"}),
        ),
        400,
        "configs",
    );
    assert_field_error(
        c.post_json("/topics", json!({"name": "x6", "configs": "not a pair"})),
        400,
        "configs",
    );
    let r = c.request(
        "POST",
        "/topics",
        Some(("application/json", "{not json".into())),
        true,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let names: Vec<String> = c.json("/topics")["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('x')), "{names:?}");
    // The HTML form shows the error beside the field, with the typed value kept.
    let r = c.post_form("/topics", &[("name", "bad name!"), ("partitions", "1")]);
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("id=\"create-topic-name-error\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("value=\"bad name!\""));

    // Alter a config; bad key or value leave it as it was.
    let (s, v) = c.post_json(
        "/topics/orders/configs",
        json!({"key": "retention.ms", "value": "7200000"}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        config_value(&topic_json(&c, "orders"), "retention.ms").as_deref(),
        Some("7200000")
    );
    assert_field_error(
        c.post_json(
            "/topics/orders/configs",
            json!({"key": "no.such.key", "value": "1"}),
        ),
        400,
        "key",
    );
    assert_field_error(
        c.post_json(
            "/topics/orders/configs",
            json!({"key": "retention.ms", "value": "soon"}),
        ),
        400,
        "value",
    );
    assert_field_error(
        c.post_json("/topics/orders/configs", json!({"key": "", "value": "1"})),
        400,
        "key",
    );
    assert_field_error(
        c.post_json(
            "/topics/orders/configs",
            json!({"key": "retention.ms", "value": "1", "op": "explode"}),
        ),
        400,
        "op",
    );
    assert_eq!(
        config_value(&topic_json(&c, "orders"), "retention.ms").as_deref(),
        Some("7200000")
    );
    let r = c.post_form(
        "/topics/orders/configs",
        &[("key", "retention.ms"), ("value", "soon"), ("op", "set")],
    );
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("id=\"alter-config-value-error\""),
        "{}",
        r.body
    );
    let (s, _) = c.post_json(
        "/topics/orders/configs",
        json!({"key": "retention.ms", "op": "delete"}),
    );
    assert_eq!(s, 200);
    let t = topic_json(&c, "orders");
    let row = t["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .unwrap()
        .clone();
    assert_ne!(row["source"], "DYNAMIC_TOPIC_CONFIG", "{row}");

    // Add partitions; not fewer or as many.
    assert_field_error(
        c.post_json("/topics/orders/partitions", json!({"partitions": 2})),
        400,
        "partitions",
    );
    assert_field_error(
        c.post_json("/topics/orders/partitions", json!({"partitions": 1})),
        400,
        "partitions",
    );
    assert_field_error(
        c.post_json("/topics/orders/partitions", json!({"partitions": "x"})),
        400,
        "partitions",
    );
    let (s, v) = c.post_json("/topics/orders/partitions", json!({"partitions": 4}));
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        topic_json(&c, "orders")["topic"]["partitions"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );
    assert_eq!(
        c.post_json("/topics/nope/partitions", json!({"partitions": 4}))
            .0,
        404
    );

    // Produce test messages and browse them in each format.
    for (i, value) in ["{\"n\":1}", "plain"].iter().enumerate() {
        let (s, v) = c.post_json(
            "/topics/orders/produce",
            json!({"partition": 1, "key": format!("k{i}"), "value": value, "headers": "source=console"}),
        );
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["offset"], i as i64, "{v}");
    }
    assert_field_error(
        c.post_json(
            "/topics/orders/produce",
            json!({"partition": 9, "value": "x"}),
        ),
        400,
        "partition",
    );
    assert_field_error(
        c.post_json(
            "/topics/orders/produce",
            json!({"partition": "one", "value": "x"}),
        ),
        400,
        "partition",
    );
    assert_field_error(
        c.post_json(
            "/topics/orders/produce",
            json!({"partition": 0, "headers": "novalue"}),
        ),
        400,
        "headers",
    );
    // A tombstone with an empty partition goes to the key's partition, as Kafka's default
    // partitioner puts it: murmur2("foobar") & 0x7fffffff = 1357151166.
    let count = topic_json(&c, "orders")["topic"]["partitions"]
        .as_array()
        .map_or(0, Vec::len) as i64;
    assert!(count > 0);
    let (s, v) = c.post_json(
        "/topics/orders/produce",
        json!({"key": "foobar", "value": "", "tombstone": "on"}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["partition"], 1_357_151_166_i64 % count, "{v}");
    let tp = v["partition"].as_i64().unwrap_or(-1);
    let off = v["offset"].as_i64().unwrap_or(-1);
    let m = c.json(&format!(
        "/topics/orders/messages?partition={tp}&offset={off}&limit=1"
    ));
    assert_eq!(m["records"][0]["key"], "foobar", "{m}");
    assert!(
        m["records"][0]["value"].is_null(),
        "a tombstone has no value: {m}"
    );
    assert_field_error(
        c.post_json(
            "/topics/orders/produce",
            json!({"key": "k", "value": "x", "tombstone": "on"}),
        ),
        400,
        "value",
    );
    assert_field_error(
        c.post_json("/topics/orders/produce", json!({"tombstone": "on"})),
        400,
        "key",
    );
    // Adding partitions to a topic whose records are keyed asks for a confirmation first.
    let grown = count + 1;
    let (s, v) = c.post_json("/topics/orders/partitions", json!({"partitions": grown}));
    assert_eq!(
        (s, v["field"].as_str()),
        (400, Some("confirm_keyed")),
        "{v}"
    );
    assert!(
        v["error"].as_str().unwrap_or("").contains("keyed"),
        "the refusal says why: {v}"
    );
    assert_eq!(
        topic_json(&c, "orders")["topic"]["partitions"]
            .as_array()
            .map_or(0, Vec::len) as i64,
        count,
        "nothing added before the confirmation"
    );
    let (s, v) = c.post_json(
        "/topics/orders/partitions",
        json!({"partitions": grown, "confirm_keyed": "yes"}),
    );
    assert_eq!(s, 200, "{v}");
    // min.insync.replicas above the replication factor: accepted (as Kafka does) with a
    // warning, and the topic page says what it breaks until it is put back.
    let (s, v) = c.post_json(
        "/topics/orders/configs",
        json!({"key": "min.insync.replicas", "value": "2"}),
    );
    assert_eq!(s, 200, "{v}");
    wait_for(
        20,
        "the min.insync.replicas warning on the topic page",
        || {
            let page = c.get("/topics/orders");
            (page.body.contains("id=\"topic-min-isr-warning\"")
                && page.body.contains("NOT_ENOUGH_REPLICAS"))
            .then_some(())
        },
    );
    let (s, v) = c.post_json(
        "/topics/orders/configs",
        json!({"key": "min.insync.replicas", "op": "delete"}),
    );
    assert_eq!(s, 200, "{v}");
    let m = c.json("/topics/orders/messages?partition=1&offset=0&limit=10&format=json");
    let recs = m["records"].as_array().expect("records");
    assert_eq!(recs.len(), 2, "{m}");
    assert_eq!(recs[0]["key"], "k0");
    assert_eq!(recs[0]["value"], "{\n  \"n\": 1\n}");
    assert_eq!(recs[0]["headers"][0][0], "source");
    assert_eq!(recs[1]["value"], "plain");
    let m = c.json("/topics/orders/messages?partition=1&offset=1&limit=1&format=hex");
    assert_eq!(m["records"][0]["value"], "70 6c 61 69 6e", "{m}");
    let m = c.json("/topics/orders/messages?partition=1&timestamp=2000-01-01T00:00:00Z");
    assert_eq!(m["records"].as_array().map(Vec::len), Some(2), "{m}");
    let m = c.json("/topics/orders/messages?partition=1&timestamp=2999-01-01T00:00:00Z");
    assert_eq!(m["records"].as_array().map(Vec::len), Some(0), "{m}");
    for (q, field) in [
        ("partition=7", "partition"),
        ("partition=x", "partition"),
        ("partition=1&offset=-3", "offset"),
        ("partition=1&offset=abc", "offset"),
        ("partition=1&timestamp=yesterday", "timestamp"),
        ("partition=1&limit=0", "limit"),
        ("partition=1&format=xml", "format"),
    ] {
        let r = c.request("GET", &format!("/topics/orders/messages?{q}"), None, true);
        assert_eq!(r.status, 400, "{q}: {}", r.body);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["field"], field, "{q}: {v}");
    }
    let html = c.get("/topics/orders/messages?partition=1&offset=abc");
    assert_eq!(html.status, 400);
    assert!(
        html.body.contains("id=\"browse-offset-error\""),
        "{}",
        html.body
    );
    let html = c.get("/topics/orders/messages?partition=1");
    assert!(html.body.contains("id=\"messages-table\"") && html.body.contains("plain"));

    // Delete: the typed name must match.
    assert_field_error(
        c.post_json("/topics/orders/delete", json!({"confirm": "order"})),
        400,
        "confirm",
    );
    assert!(c.json("/topics/orders")["topic"].is_object(), "still there");
    let (s, v) = c.post_json("/topics/orders/delete", json!({"confirm": "orders"}));
    assert_eq!(s, 200, "{v}");
    assert_eq!(c.request("GET", "/topics/orders", None, true).status, 404);
    assert_eq!(
        c.post_json("/topics/orders/delete", json!({"confirm": "orders"}))
            .0,
        404
    );

    // Every change is in the audit log, failures included.
    let a = c.json("/audit");
    let actions: Vec<(String, bool)> = a["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    for action in [
        "create-topic",
        "alter-config",
        "add-partitions",
        "produce",
        "delete-topic",
    ] {
        assert!(
            actions.contains(&(action.to_string(), true)),
            "{action} ok: {actions:?}"
        );
    }
    assert!(
        actions.contains(&("create-topic".to_string(), false)),
        "{actions:?}"
    );
    assert_eq!(a["entries"][0]["user"], "anonymous");
}

#[test]
fn a_stopped_cluster_shows_a_banner_on_every_page() {
    let mut b = BrokerProc::start(&[]);
    let c = ConsoleProc::start(&b.bootstrap);
    let (s, _) = c.post_json("/topics", json!({"name": "kept", "partitions": 1}));
    assert_eq!(s, 200);
    b.kill9();
    wait_for(30, "the banner", || {
        c.json("/")["layout"]["banner"].as_str().map(str::to_string)
    });
    for path in [
        "/",
        "/topics",
        "/topics/kept",
        "/groups",
        "/brokers",
        "/audit",
    ] {
        let r = c.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(
            r.body.contains("id=\"cluster-banner\""),
            "{path} lacks the banner"
        );
    }
    // The last snapshot is still served.
    assert!(c.json("/topics")["topics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "kept"));
    assert!(c
        .get("/metrics")
        .body
        .contains("\nrill_console_cluster_up 0\n"));
    // Changes fail cleanly (no 500).
    let (s, v) = c.post_json("/topics", json!({"name": "later", "partitions": 1}));
    assert!((500..600).contains(&s) && s != 500, "{s} {v}");
    assert!(v["error"].is_string());
}
