//! Changes made with the `rill` CLI reach the console's audit log: the CLI appends one
//! record per attempted change (failures included, reads and dry runs not) to the cluster's
//! `__rill_audit` topic, and `rill console` imports them, once, next to its own entries —
//! across a console restart too.

mod common;

use common::console::ConsoleProc;
use common::{rill, rill_env, wait_for, BrokerProc};
use serde_json::Value;

const ENV: &[(&str, &str)] = &[("USER", "auditor"), ("HOSTNAME", "ops-host")];

fn cli_entries(c: &ConsoleProc) -> Vec<Value> {
    let mut rows: Vec<Value> = c.json("/audit")["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["via"] == "cli")
        .collect();
    rows.sort_by_key(|e| e["ts_ms"].as_i64());
    rows
}

#[test]
fn cli_changes_are_in_the_console_audit_log() {
    let b = BrokerProc::start(&[]);
    let bs = b.bootstrap.as_str();
    let mut c = ConsoleProc::start(bs);

    // A console change, for the mix.
    let r = c.post_form(
        "/topics",
        &[
            ("name", "from-console"),
            ("partitions", "1"),
            ("replication_factor", "1"),
        ],
    );
    assert_eq!(r.status, 303, "{r:?}");

    let run = |args: &[&str]| rill_env(args, ENV);
    run(&[
        "topics",
        "--bootstrap-server",
        bs,
        "--create",
        "--topic",
        "audited",
    ])
    .ok();
    run(&[
        "topics",
        "--bootstrap-server",
        bs,
        "--alter",
        "--topic",
        "audited",
        "--partitions",
        "3",
    ])
    .ok();
    let failed = run(&[
        "topics",
        "--bootstrap-server",
        bs,
        "--delete",
        "--topic",
        "no-such",
    ]);
    assert_eq!(failed.code, 1, "{failed:?}");
    // Reads, dry runs and bad usage are not changes.
    run(&["topics", "--bootstrap-server", bs, "--list"]).ok();
    run(&[
        "groups",
        "--bootstrap-server",
        bs,
        "--reset-offsets",
        "--group",
        "g",
        "--topic",
        "audited",
        "--to-earliest",
    ]);
    assert_eq!(
        run(&["topics", "--bootstrap-server", bs, "--create"]).code,
        2
    );

    let entries = wait_for(30, "three CLI entries in the audit log", || {
        let e = cli_entries(&c);
        (e.len() >= 3).then_some(e)
    });
    let summary: Vec<(String, String, bool)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_string(),
                e["target"].as_str().unwrap_or_default().to_string(),
                e["ok"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("create-topic".into(), "audited".into(), true),
            ("add-partitions".into(), "audited".into(), true),
            ("delete-topic".into(), "no-such".into(), false),
        ],
        "{entries:#?}"
    );
    for e in &entries {
        assert_eq!(e["user"], "auditor@ops-host", "{e}");
        let req: Value = serde_json::from_str(e["request"].as_str().unwrap_or("null")).unwrap();
        assert_eq!(req["via"], "rill CLI", "{e}");
        assert_eq!(req["argv"][0], "topics", "{e}");
    }
    assert!(
        entries[2]["result"]
            .as_str()
            .is_some_and(|r| r.contains("does not exist")),
        "{:#?}",
        entries[2]
    );
    // Console and CLI entries side by side, in the page too.
    let all = c.json("/audit")["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(all
        .iter()
        .any(|e| e["via"] == "console" && e["action"] == "create-topic"));
    let html = c.get("/audit").body;
    assert!(
        html.contains("data-via=\"cli\"") && html.contains("auditor@ops-host"),
        "{html}"
    );

    // The topic itself is readable by any Kafka tool: three JSON records.
    let topic = rill(&[
        "topics",
        "--bootstrap-server",
        bs,
        "--describe",
        "--topic",
        "__rill_audit",
        "--output",
        "json",
    ])
    .json();
    assert!(topic.to_string().contains("__rill_audit"), "{topic}");

    // A restarted console on the same store imports nothing twice, and picks up new ones.
    c.kill();
    let dir = std::mem::replace(&mut c.dir, tempfile::tempdir().expect("tempdir"));
    let url = format!("sqlite://{}", dir.path().join("console.db").display());
    let c = ConsoleProc::start_with(bs, &url, dir);
    run(&[
        "topics",
        "--bootstrap-server",
        bs,
        "--delete",
        "--topic",
        "audited",
    ])
    .ok();
    let entries = wait_for(30, "the fourth CLI entry", || {
        let e = cli_entries(&c);
        (e.len() >= 4).then_some(e)
    });
    assert_eq!(entries.len(), 4, "{entries:#?}");
    assert_eq!(entries[3]["action"], "delete-topic");
    assert_eq!(entries[3]["ok"], true);
}
