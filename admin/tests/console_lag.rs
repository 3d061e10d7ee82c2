//! Consumer lag the console can be trusted on, against real brokers and rdkafka clients:
//! partitions without a commit count their backlog from the log start, a stopped group
//! reaches "stopped" under the default thresholds, time lag of an offset older than the
//! console's history comes from the record's timestamp (and is stable across reloads), the
//! forecast tells catching up from falling behind, a deleted topic leaves a gap in the
//! history rather than a zero, a killed bootstrap broker is shown as partial, and
//! `rill groups --describe` agrees with the console on every number.

mod common;

use std::time::{Duration, Instant};

use common::console::ConsoleProc;
use common::{cluster, rill, wait_for, BrokerProc};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};

const FAST_GROUPS: &[&str] = &[
    "group.initial.rebalance.delay.ms=0",
    "group.min.session.timeout.ms=500",
    "offsets.topic.num.partitions=3",
];

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A console collecting every `interval_ms`.
fn console_every(bootstrap: &str, interval_ms: &str) -> ConsoleProc {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("console.db").display());
    ConsoleProc::start_full(
        bootstrap,
        &url,
        dir,
        &["--collect-interval-ms", interval_ms],
    )
}

fn create(c: &ConsoleProc, topic: &str, partitions: i32) {
    let (s, v) = c.post_json(
        "/topics",
        json!({"name": topic, "partitions": partitions, "replication_factor": 1}),
    );
    assert_eq!(s, 200, "{v}");
}

/// Produces `n` records to each of `partitions`; record `i` gets timestamp `ts(i)` if set.
fn produce(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    n: usize,
    ts: Option<&dyn Fn(usize) -> i64>,
) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
    for part in 0..partitions {
        for i in 0..n {
            let value = format!("v{part}-{i}");
            let mut rec = BaseRecord::<str, str>::to(topic)
                .partition(part)
                .key("k")
                .payload(value.as_str());
            if let Some(ts) = ts {
                rec = rec.timestamp(ts(i));
            }
            loop {
                match p.send(rec) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        p.poll(Duration::from_millis(50));
                        rec = r;
                    }
                }
            }
        }
    }
    p.flush(Duration::from_secs(20)).expect("flush");
}

/// A consumer in `group` with manual commits (rdkafka, as an application would be).
fn consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("client.id", format!("{group}-client"))
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "300")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer")
}

/// Commits `offsets` (partition, offset) of `topic` for `group` from outside the group.
fn commit(bootstrap: &str, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let c = consumer(bootstrap, group);
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*o))
            .expect("tpl");
    }
    c.commit(&tpl, CommitMode::Sync).expect("commit");
}

fn group(c: &ConsoleProc, id: &str) -> Value {
    c.json(&format!("/groups/{id}"))["group"].clone()
}

fn partition<'a>(g: &'a Value, topic: &str, p: i64) -> &'a Value {
    g["partitions"]
        .as_array()
        .and_then(|ps| {
            ps.iter()
                .find(|x| x["topic"] == topic && x["partition"] == p)
        })
        .unwrap_or_else(|| panic!("no {topic}-{p} in {g}"))
}

fn total_lag(g: &Value) -> i64 {
    g["partitions"].as_array().map_or(0, |ps| {
        ps.iter()
            .filter_map(|p| p["lag"].as_i64())
            .filter(|l| *l >= 0)
            .sum()
    })
}

fn metric(body: &str, series: &str) -> Option<String> {
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .map(|l| l[series.len() + 1..].to_string())
}

/// `rill groups --describe` agrees with the console on every partition's numbers.
fn assert_cli_agrees(bootstrap: &str, c: &ConsoleProc, id: &str) {
    let d = rill(&[
        "groups",
        "--bootstrap-server",
        bootstrap,
        "--describe",
        "--group",
        id,
        "--output",
        "json",
    ])
    .json();
    let g = group(c, id);
    let rows = d["offsets"].as_array().expect("offsets");
    assert_eq!(
        rows.len(),
        g["partitions"].as_array().map_or(0, Vec::len),
        "{d}\n{g}"
    );
    for r in rows {
        let p = partition(
            &g,
            r["topic"].as_str().unwrap_or(""),
            r["partition"].as_i64().unwrap_or(-1),
        );
        assert_eq!(
            r["current_offset"].as_i64().unwrap_or(-1),
            p["committed"],
            "{r} vs {p}"
        );
        assert_eq!(r["log_end_offset"], p["end"], "{r} vs {p}");
        assert_eq!(r["lag"], p["lag"], "{r} vs {p}");
        assert_eq!(r["lag_basis"], p["basis"], "{r} vs {p}");
    }
}

/// Three groups with known backlogs (caught up, slow and never committing, stopped) and a
/// group committing on some partitions only; the stopped one reaches "stopped" under the
/// default thresholds. Prints the console's figures next to the true ones.
#[test]
fn lag_counts_every_partition_and_a_stopped_group_is_stopped() {
    let b = BrokerProc::start(FAST_GROUPS);
    // Topics and records exist before the console starts: the stopped group's offset is
    // older than anything the console has seen.
    for (t, n) in [
        ("fresh-t", "3"),
        ("part-t", "4"),
        ("stop-t", "1"),
        ("done-t", "1"),
    ] {
        rill(&[
            "topics",
            "--bootstrap-server",
            &b.bootstrap,
            "--create",
            "--topic",
            t,
            "--partitions",
            n,
        ])
        .ok();
    }
    produce(&b.bootstrap, "fresh-t", 3, 500, None);
    produce(&b.bootstrap, "part-t", 4, 200, None);
    // stop-t's records carry timestamps an hour old, one second apart: the time lag of an
    // offset older than the console's history is read from the record.
    let base = now_ms() - 3_600_000;
    produce(
        &b.bootstrap,
        "stop-t",
        1,
        300,
        Some(&|i| base + i as i64 * 1000),
    );
    produce(&b.bootstrap, "done-t", 1, 50, None);
    let c = console_every(&b.bootstrap, "1000");

    // A live member assigned every partition of fresh-t that never commits.
    let fresh = consumer(&b.bootstrap, "fresh");
    fresh.subscribe(&["fresh-t"]).expect("subscribe");
    // A live member of part-t committing on partitions 0 and 1 only.
    let part = consumer(&b.bootstrap, "partial");
    part.subscribe(&["part-t"]).expect("subscribe");
    wait_for(30, "both members assigned", || {
        let _ = fresh.poll(Duration::from_millis(50));
        let _ = part.poll(Duration::from_millis(50));
        (fresh.assignment().map(|a| a.count()).unwrap_or(0) == 3
            && part.assignment().map(|a| a.count()).unwrap_or(0) == 4)
            .then_some(())
    });
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("part-t", 0, Offset::Offset(150))
        .expect("tpl");
    tpl.add_partition_offset("part-t", 1, Offset::Offset(50))
        .expect("tpl");
    part.commit(&tpl, CommitMode::Sync).expect("commit");
    // Stopped: committed at 100 of 300, no members. Caught up: committed at the end.
    commit(&b.bootstrap, "stopped", "stop-t", &[(0, 100)]);
    commit(&b.bootstrap, "caught-up", "done-t", &[(0, 50)]);

    let poll = || {
        let _ = fresh.poll(Duration::from_millis(20));
        let _ = part.poll(Duration::from_millis(20));
    };
    let fresh_g = wait_for(60, "the fresh group with its member", || {
        poll();
        let g = group(&c, "fresh");
        (g["members"].as_array().map(Vec::len) == Some(1)
            && g["partitions"].as_array().map(Vec::len) == Some(3))
        .then_some(g)
    });
    // Never committed: each partition's backlog from the log start, not "caught up".
    for p in 0..3 {
        let x = partition(&fresh_g, "fresh-t", p);
        assert_eq!(
            (x["committed"].as_i64(), x["lag"].as_i64()),
            (Some(-1), Some(500)),
            "{x}"
        );
        assert_eq!(x["basis"], "log_start", "{x}");
    }
    assert_eq!(total_lag(&fresh_g), 1500);
    assert_ne!(fresh_g["status"], "ok", "{fresh_g}");
    assert!(
        !fresh_g["status_reason"]
            .as_str()
            .unwrap_or("")
            .contains("caught up"),
        "{fresh_g}"
    );

    let part_g = wait_for(30, "the partial group's commits", || {
        poll();
        let g = group(&c, "partial");
        (g["partitions"].as_array().map(Vec::len) == Some(4)
            && partition(&g, "part-t", 0)["committed"] == 150)
            .then_some(g)
    });
    // 50 + 150 behind where committed, 200 + 200 where not: 600, not 200.
    assert_eq!(total_lag(&part_g), 600, "{part_g}");
    assert_eq!(partition(&part_g, "part-t", 2)["basis"], "log_start");

    let list = c.json("/groups");
    let row = |id: &str| {
        list["groups"]
            .as_array()
            .and_then(|gs| gs.iter().find(|g| g["group_id"] == id))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(row("fresh")["total_lag"], 1500, "{list}");
    assert_eq!(row("partial")["total_lag"], 600, "{list}");

    // /metrics: kafka_exporter's -1 for no commit, Rill's backlog counting it.
    let m = c.get("/metrics").body;
    for (series, value) in [
        (
            "kafka_consumergroup_lag{consumergroup=\"fresh\",partition=\"0\",topic=\"fresh-t\"}",
            "-1",
        ),
        (
            "rill_consumergroup_backlog{consumergroup=\"fresh\",partition=\"0\",topic=\"fresh-t\"}",
            "500",
        ),
        (
            "rill_consumergroup_backlog_sum{consumergroup=\"fresh\"}",
            "1500",
        ),
        (
            "rill_consumergroup_uncommitted_partitions{consumergroup=\"fresh\"}",
            "3",
        ),
        (
            "rill_consumergroup_backlog_sum{consumergroup=\"partial\"}",
            "600",
        ),
        (
            "kafka_consumergroup_lag_sum{consumergroup=\"partial\",topic=\"part-t\"}",
            "200",
        ),
    ] {
        assert_eq!(
            metric(&m, series).as_deref(),
            Some(value),
            "{series} in:\n{m}"
        );
    }
    for id in ["fresh", "partial", "stopped", "caught-up"] {
        assert_cli_agrees(&b.bootstrap, &c, id);
    }

    // Time lag of the stopped group's offset 100: older than the console's history, so
    // read from the record (written at base + 100 s). Stable: two reads a cycle apart
    // differ by the time between them, not by a re-estimate.
    let g1 = group(&c, "stopped");
    let p1 = partition(&g1, "stop-t", 0).clone();
    assert_eq!(p1["lag_seconds_method"], "record_timestamp", "{p1}");
    let t1 = c.json("/groups/stopped")["layout"]["collected_at_ms"]
        .as_i64()
        .unwrap_or(0);
    let truth = (t1 - (base + 100_000)) as f64 / 1000.0;
    let got = p1["lag_seconds"].as_f64().unwrap_or(-1.0);
    assert!(
        (got - truth).abs() < 2.0,
        "time lag {got} s, true {truth} s"
    );
    let (g2, t2) = wait_for(10, "a later cycle", || {
        let v = c.json("/groups/stopped");
        let t = v["layout"]["collected_at_ms"].as_i64().unwrap_or(0);
        (t > t1).then(|| (v["group"].clone(), t))
    });
    let got2 = partition(&g2, "stop-t", 0)["lag_seconds"]
        .as_f64()
        .unwrap_or(-1.0);
    let drift = (got2 - got) - (t2 - t1) as f64 / 1000.0;
    assert!(
        drift.abs() < 1.5,
        "time lag jumped: {got} then {got2}, {} ms apart",
        t2 - t1
    );

    // Under the default thresholds (stall 120 s) the stopped group becomes "stopped", with
    // a reason that says why; producers keep writing meanwhile.
    let started = Instant::now();
    let stopped = wait_for(200, "the stopped group to be stopped", || {
        poll();
        if started.elapsed().as_secs().is_multiple_of(20) {
            produce(&b.bootstrap, "stop-t", 1, 1, None);
        }
        let g = group(&c, "stopped");
        (g["status"] == "stopped").then_some(g)
    });
    let reason = stopped["status_reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("stop-t-0") && reason.contains("unchanged for"),
        "{reason}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(100),
        "not before the threshold"
    );
    let caught = group(&c, "caught-up");
    assert_eq!(
        (caught["status"].as_str(), total_lag(&caught)),
        (Some("ok"), 0),
        "{caught}"
    );
    let m = c.get("/metrics").body;
    assert_eq!(
        metric(
            &m,
            "rill_console_consumergroup_status{consumergroup=\"stopped\"}"
        )
        .as_deref(),
        Some("4"),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "rill_consumergroup_catchup_seconds{consumergroup=\"stopped\"}"
        )
        .as_deref(),
        Some("+Inf"),
        "{m}"
    );

    // The figures for the record: the console next to the truth.
    let end = partition(&stopped, "stop-t", 0)["end"]
        .as_i64()
        .unwrap_or(-1);
    for (id, truth_lag) in [("caught-up", 0), ("partial", 600), ("stopped", end - 100)] {
        let g = group(&c, id);
        eprintln!(
            "FIGURE group={id} console_lag={} true_lag={truth_lag} status={} time_lag={:?} method={:?} reason={:?}",
            total_lag(&g),
            g["status"],
            g["partitions"][0]["lag_seconds"],
            g["partitions"][0]["lag_seconds_method"],
            g["status_reason"]
        );
        assert_eq!(total_lag(&g), truth_lag, "{g}");
    }
}

/// Two groups on one topic, one consuming faster than the producers write and one slower:
/// the forecast says "catching up in ~…" for the first and "falling behind" for the second,
/// on the page, in the JSON and on `/metrics`.
#[test]
fn forecast_tells_catching_up_from_falling_behind() {
    let b = BrokerProc::start(FAST_GROUPS);
    let c = console_every(&b.bootstrap, "500");
    create(&c, "flow", 1);
    produce(&b.bootstrap, "flow", 1, 2000, None);
    let (mut fast, mut slow) = (0_i64, 0_i64);
    commit(&b.bootstrap, "fast", "flow", &[(0, fast)]);
    commit(&b.bootstrap, "slow", "flow", &[(0, slow)]);
    // For 8 s: producers write 40/s, "fast" consumes 160/s, "slow" 10/s.
    let fast_c = consumer(&b.bootstrap, "fast");
    let slow_c = consumer(&b.bootstrap, "slow");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(8) {
        produce(&b.bootstrap, "flow", 1, 10, None);
        fast += 40;
        slow += 2;
        for (cons, off) in [(&fast_c, fast), (&slow_c, slow)] {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset("flow", 0, Offset::Offset(off))
                .expect("tpl");
            cons.commit(&tpl, CommitMode::Sync).expect("commit");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    c.get("/groups"); // any page; the collector runs on its own
    let f = wait_for(10, "a catching-up forecast", || {
        let g = group(&c, "fast");
        (g["forecast"]["state"] == "catching_up").then_some(g)
    });
    let secs = f["forecast"]["seconds"].as_f64().unwrap_or(-1.0);
    assert!(secs > 0.0 && secs.is_finite(), "{f}");
    let s = wait_for(10, "a falling-behind forecast", || {
        let g = group(&c, "slow");
        (g["forecast"]["state"] == "falling_behind").then_some(g)
    });
    let behind = s["forecast"]["produce_rate"].as_f64().unwrap_or(0.0)
        - s["forecast"]["consume_rate"].as_f64().unwrap_or(0.0);
    assert!(behind > 5.0, "{s}");
    let page = c.get("/groups/fast").body;
    assert!(
        page.contains("data-state=\"catching_up\"") && page.contains("catching up in ~"),
        "{page}"
    );
    let page = c.get("/groups/slow").body;
    assert!(page.contains("falling behind by"), "{page}");
    let list = c.get("/groups").body;
    assert!(
        list.contains("catching up in ~") && list.contains("falling behind by"),
        "{list}"
    );
    let m = c.get("/metrics").body;
    let fast_s: f64 = metric(
        &m,
        "rill_consumergroup_catchup_seconds{consumergroup=\"fast\"}",
    )
    .and_then(|v| v.parse().ok())
    .unwrap_or(-1.0);
    assert!(fast_s > 0.0 && fast_s.is_finite(), "{m}");
    assert_eq!(
        metric(
            &m,
            "rill_consumergroup_catchup_seconds{consumergroup=\"slow\"}"
        )
        .as_deref(),
        Some("+Inf"),
        "{m}"
    );
}

/// A group with commits on a topic that is then deleted: that partition becomes "not
/// measured" (last good values, marked, status errored), the history gets no sample (a gap,
/// never a zero) and `/metrics` no series for it.
#[test]
fn a_deleted_topic_leaves_a_gap_not_a_zero() {
    let b = BrokerProc::start(FAST_GROUPS);
    let c = ConsoleProc::start(&b.bootstrap);
    create(&c, "ephemeral", 1);
    create(&c, "kept", 1);
    produce(&b.bootstrap, "ephemeral", 1, 30, None);
    produce(&b.bootstrap, "kept", 1, 30, None);
    commit(&b.bootstrap, "gone", "ephemeral", &[(0, 10)]);
    commit(&b.bootstrap, "gone", "kept", &[(0, 25)]);
    let history = || c.json("/groups/gone/lag-history?range=1h")["points"].clone();
    wait_for(30, "history points with both partitions measured", || {
        let g = group(&c, "gone");
        let h = history();
        let pts = h.as_array().cloned().unwrap_or_default();
        (g["partitions"].as_array().map(Vec::len) == Some(2)
            && pts.iter().filter(|p| p[1] == 25).count() >= 3)
            .then_some(())
    });
    let (s, v) = c.post_json("/topics/ephemeral/delete", json!({"confirm": "ephemeral"}));
    assert_eq!(s, 200, "{v}");
    let g = wait_for(
        30,
        "the deleted topic's partition marked not measured",
        || {
            let g = group(&c, "gone");
            (!partition(&g, "ephemeral", 0)["error"].is_null()).then_some(g)
        },
    );
    let p = partition(&g, "ephemeral", 0);
    assert_eq!(p["status"], "errored", "{p}");
    assert_eq!(p["lag"], 20, "the last good value stays visible: {p}");
    assert_eq!(g["status"], "errored", "{g}");
    let kept = partition(&g, "kept", 0);
    assert_eq!(
        (kept["lag"].as_i64(), kept["error"].is_null()),
        (Some(5), true),
        "{kept}"
    );
    let html = c.get("/groups/gone").body;
    assert!(
        html.contains("class=\"stale\"") && html.contains("last measured"),
        "{html}"
    );
    // Several more cycles: no sample was stored for them.
    let measured_before = history()
        .as_array()
        .map_or(0, |ps| ps.iter().filter(|p| !p[1].is_null()).count());
    let t0 = c.json("/groups/gone")["layout"]["collected_at_ms"]
        .as_i64()
        .unwrap_or(0);
    wait_for(30, "five more cycles", || {
        let t = c.json("/groups/gone")["layout"]["collected_at_ms"]
            .as_i64()
            .unwrap_or(0);
        (t > t0 + 1500).then_some(())
    });
    let h = history();
    let points = h.as_array().cloned().unwrap_or_default();
    let measured: Vec<_> = points.iter().filter(|p| !p[1].is_null()).collect();
    assert_eq!(measured.len(), measured_before, "{h}");
    // (The first cycles may have seen only the first commit: 20, then 25.)
    assert!(
        measured.iter().all(|p| p[1].as_i64().unwrap_or(0) > 0),
        "no zero: {h}"
    );
    assert_eq!(
        measured.last().map(|p| p[1].clone()),
        Some(json!(25)),
        "{h}"
    );
    assert!(
        measured.iter().all(|p| p[0].as_i64().unwrap_or(0) < t0),
        "no sample after the deletion: {h}"
    );
    let m = c.get("/metrics").body;
    assert!(
        !m.contains("topic=\"ephemeral\""),
        "no series for what was not measured:\n{m}"
    );
    assert_eq!(
        metric(
            &m,
            "rill_consumergroup_unknown_partitions{consumergroup=\"gone\"}"
        )
        .as_deref(),
        Some("1"),
        "{m}"
    );
    assert!(
        metric(&m, "rill_consumergroup_backlog_sum{consumergroup=\"gone\"}").is_none(),
        "{m}"
    );
}

/// A 3-node cluster whose first bootstrap broker is killed: the banner names it, pages
/// keep serving from the other two, `/brokers` lists it (down) and `/brokers/1` answers,
/// and the partition only it held is "not measured" rather than 0.
#[test]
fn a_killed_bootstrap_broker_is_shown_as_partial() {
    let mut nodes = cluster::start(&FAST_GROUPS[..2]);
    let all = cluster::bootstrap(&nodes);
    assert!(
        all.starts_with(&nodes[0].bootstrap),
        "node 1 is first in the list"
    );
    let c = ConsoleProc::start(&all);
    // One partition per broker (RF 1), so one of them lives only on node 1.
    create(&c, "spread", 3);
    produce(&all, "spread", 3, 20, None);
    commit(&all, "watcher", "spread", &[(0, 5), (1, 5), (2, 5)]);
    let t = wait_for(30, "the group and the topic", || {
        let g = group(&c, "watcher");
        (g["partitions"].as_array().map(Vec::len) == Some(3) && total_lag(&g) == 45)
            .then(|| c.json("/topics/spread")["topic"].clone())
    });
    let on_1 = t["partitions"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["leader"] == 1))
        .and_then(|p| p["partition"].as_i64())
        .expect("a partition led by node 1");
    nodes[0].kill9();

    let banner = wait_for(60, "a banner naming broker 1", || {
        let page = c.get("/topics").body;
        page.contains("Not answering: broker 1").then_some(page)
    });
    assert!(!banner.contains("Cluster unreachable"), "{banner}");
    assert!(
        banner.contains("id=\"topics-table\""),
        "the page still serves"
    );
    let brokers = c.json("/brokers");
    let b1 = brokers["brokers"]
        .as_array()
        .and_then(|bs| bs.iter().find(|b| b["id"] == 1))
        .cloned()
        .expect("broker 1 still listed");
    assert_ne!(b1["state"], "up", "{b1}");
    assert_eq!(c.get("/brokers/1").status, 200);
    let html = c.get("/brokers").body;
    assert!(html.contains("data-broker=\"1\" data-state=\""), "{html}");
    let g = wait_for(
        60,
        "node 1's partition not measured, the others measured",
        || {
            let g = group(&c, "watcher");
            let p = partition(&g, "spread", on_1);
            let others_ok = (0..3)
                .filter(|p| *p != on_1)
                .all(|x| partition(&g, "spread", x)["error"].is_null());
            (!p["error"].is_null() && others_ok).then_some(g)
        },
    );
    let p = partition(&g, "spread", on_1);
    assert_eq!(p["status"], "errored", "{p}");
    assert_eq!(p["lag"], 15, "the last good value, marked: {p}");
    let m = c.get("/metrics").body;
    assert!(
        !m.contains(&format!(
            "kafka_consumergroup_lag{{consumergroup=\"watcher\",partition=\"{on_1}\""
        )),
        "{m}"
    );
    assert!(
        m.contains("rill_console_collection_failures_total{request="),
        "{m}"
    );
}

/// A group caught up with everything committed, while a transaction is open on its partition:
/// the plain lag counts the open transaction's records (the high watermark is past them),
/// the read_committed lag does not (a read_committed consumer cannot read them yet). After
/// the commit both count them.
#[test]
fn read_committed_lag_stops_at_the_last_stable_offset() {
    let b = BrokerProc::start(&[
        "transaction.state.log.num.partitions=3",
        "offsets.topic.num.partitions=3",
    ]);
    let c = console_every(&b.bootstrap, "300");
    create(&c, "txn-lag", 1);
    produce(&b.bootstrap, "txn-lag", 1, 10, None);
    commit(&b.bootstrap, "txn-lag-g", "txn-lag", &[(0, 10)]);

    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("transactional.id", "txn-lag-producer")
        .create()
        .expect("producer");
    let t = Duration::from_secs(30);
    p.init_transactions(t).expect("init");
    p.begin_transaction().expect("begin");
    for i in 0..5 {
        p.send(
            BaseRecord::<str, str>::to("txn-lag")
                .partition(0)
                .payload(&format!("t{i}")),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    }
    p.flush(t).expect("flush");

    let open = wait_for(30, "the open transaction in the console", || {
        let g = group(&c, "txn-lag-g");
        let pl = partition(&g, "txn-lag", 0).clone();
        (pl["end"] == 15 && pl["stable_end"] == 10).then_some(pl)
    });
    assert_eq!(open["lag"], 5, "{open}");
    assert_eq!(open["stable_lag"], 0, "{open}");
    let page = c.get("/groups/txn-lag-g").body;
    assert!(
        page.contains("class=\"stable-lag\" data-stable-end=\"10\">0<"),
        "{page}"
    );

    p.commit_transaction(t).expect("commit");
    let done = wait_for(30, "the committed transaction in the console", || {
        let g = group(&c, "txn-lag-g");
        let pl = partition(&g, "txn-lag", 0).clone();
        // The marker takes an offset: the end and the last stable offset are both 16.
        (pl["stable_end"] == 16).then_some(pl)
    });
    assert_eq!(done["end"], 16, "{done}");
    assert_eq!(done["lag"], 6, "{done}");
    assert_eq!(done["stable_lag"], 6, "{done}");
}

/// `/metrics` within its scrape budget: kafka_exporter's topic and group filters choose what
/// is covered, and the per-partition cap leaves whole topics out and counts them.
#[test]
fn metrics_filters_and_the_partition_cap() {
    let b = BrokerProc::start(FAST_GROUPS);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("console.db").display());
    let c = ConsoleProc::start_full(
        &b.bootstrap,
        &url,
        dir,
        &[
            "--metrics-topic-exclude",
            "^(hidden|__.*)$",
            "--metrics-group-filter",
            "^shown",
            "--metrics-max-partitions",
            "3",
        ],
    );
    create(&c, "hidden", 1);
    create(&c, "big", 4);
    create(&c, "small", 2);
    commit(&b.bootstrap, "shown-group", "small", &[(0, 0)]);
    commit(&b.bootstrap, "other-group", "small", &[(0, 0)]);
    let m = wait_for(30, "both groups and the three topics collected", || {
        let m = c.get("/metrics").body;
        let ids = c.json("/groups").to_string();
        (ids.contains("shown-group")
            && ids.contains("other-group")
            && m.contains("consumergroup=\"shown-group\"")
            && m.contains("kafka_topic_partitions{topic=\"small\"}"))
        .then_some(m)
    });
    // Name order: big (4) does not fit in 3, small (2) does.
    assert_eq!(
        metric(&m, "kafka_topic_partitions{topic=\"big\"}").as_deref(),
        Some("4")
    );
    assert!(
        !m.contains("kafka_topic_partition_leader{partition=\"0\",topic=\"big\"}"),
        "{m}"
    );
    assert!(
        m.contains("kafka_topic_partition_leader{partition=\"1\",topic=\"small\"}"),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "rill_console_metrics_omitted_partitions{family=\"topic\"}"
        )
        .as_deref(),
        Some("4")
    );
    assert!(!m.contains("topic=\"hidden\""), "{m}");
    assert!(!m.contains("topic=\"__consumer_offsets\""), "{m}");
    assert!(m.contains("consumergroup=\"shown-group\""), "{m}");
    assert!(!m.contains("other-group"), "{m}");
    // A filter that is not a regex is refused at start, naming the flag.
    let out = rill(&[
        "console",
        "--bootstrap",
        &b.bootstrap,
        "--metrics-topic-filter",
        "(",
    ]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("--metrics-topic-filter"),
        "{}",
        out.stderr
    );
}
