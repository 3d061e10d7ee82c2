//! `rill quotas` (the real binary) against a real `rill-broker` process: quotas set with
//! kafka-configs.sh's entity pairing and shorthands, described as a table and as JSON (all,
//! and exactly one entity or one entity type as kafka-configs.sh filters), a key and an
//! entity's last key deleted, bad values refused before the cluster is asked, the cluster's
//! refusals shown in its words, and every alteration in the audit trail.

mod common;

use common::console::ConsoleProc;
use common::{rill, wait_for, BrokerProc, RillOut};
use serde_json::{json, Value};

fn quotas(b: &BrokerProc, args: &[&str]) -> RillOut {
    let mut all = vec!["quotas", "--bootstrap-server", b.bootstrap.as_str()];
    all.extend_from_slice(args);
    rill(&all)
}

/// `--describe --output json` with extra filter flags: the `quotas` array.
fn described(b: &BrokerProc, filter: &[&str]) -> Vec<Value> {
    let mut args = vec!["--describe", "--output", "json"];
    args.extend_from_slice(filter);
    let v = quotas(b, &args).json();
    v["quotas"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("a quotas array: {v}"))
}

#[test]
fn quotas_are_set_described_and_deleted() {
    let b = BrokerProc::start(&[]);

    // A user+client-id entity, named as kafka-configs.sh names it.
    let out = quotas(
        &b,
        &[
            "--alter",
            "--entity-type",
            "users",
            "--entity-name",
            "alice",
            "--entity-type",
            "clients",
            "--entity-name",
            "ingest",
            "--add-config",
            "producer_byte_rate=1048576,consumer_byte_rate=2097152",
        ],
    );
    assert_eq!(
        out.ok().trim(),
        "Completed updating quotas for user=alice,client-id=ingest."
    );
    // The default client id, the pairing's other form.
    quotas(
        &b,
        &[
            "--alter",
            "--entity-type",
            "clients",
            "--entity-default",
            "--add-config",
            "request_percentage=50",
        ],
    )
    .ok();
    // A user alone, with the shorthand.
    quotas(
        &b,
        &[
            "--alter",
            "--user",
            "bob",
            "--add-config",
            "consumer_byte_rate=4096",
        ],
    )
    .ok();

    // Shape errors are usage errors: nothing reaches the cluster.
    for (bad, why) in [
        ("producer_byte_rate=fast", "not a number"),
        ("producer_byte_rate=-1", "positive"),
        ("bogus_rate=1", "the quota keys are"),
    ] {
        let out = quotas(&b, &["--alter", "--user", "carol", "--add-config", bad]);
        assert_eq!(out.code, 2, "{bad}: {out:?}");
        assert!(out.stderr.contains(why), "{bad}: {}", out.stderr);
    }
    let out = quotas(
        &b,
        &[
            "--alter",
            "--entity-type",
            "users",
            "--entity-type",
            "clients",
            "--entity-name",
            "x",
            "--add-config",
            "producer_byte_rate=1",
        ],
    );
    assert_eq!(out.code, 2, "an --entity-type without its name: {out:?}");
    // The cluster's refusals, in its words.
    let out = quotas(
        &b,
        &[
            "--alter",
            "--user",
            "carol",
            "--add-config",
            "producer_byte_rate=1.5",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("producer_byte_rate cannot be a fractional value."),
        "{}",
        out.stderr
    );
    let out = quotas(
        &b,
        &[
            "--alter",
            "--user",
            "carol",
            "--add-config",
            "consumer_byte_rate=1e19",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("quotas of user=carol")
            && out
                .stderr
                .contains("Proposed value for consumer_byte_rate is too large for a LONG."),
        "{}",
        out.stderr
    );

    // Every entity, as a table.
    let table = quotas(&b, &["--describe"]);
    let lines: Vec<Vec<&str>> = table
        .ok()
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        vec!["ENTITY", "QUOTA", "VALUE"],
        "{}",
        table.stdout
    );
    for want in [
        vec![
            "user=alice,client-id=ingest",
            "producer_byte_rate",
            "1048576",
        ],
        vec![
            "user=alice,client-id=ingest",
            "consumer_byte_rate",
            "2097152",
        ],
        vec!["client-id=<default>", "request_percentage", "50"],
        vec!["user=bob", "consumer_byte_rate", "4096"],
    ] {
        assert!(lines.contains(&want), "{want:?} in\n{}", table.stdout);
    }
    assert_eq!(lines.len(), 5, "{}", table.stdout);
    assert!(!table.stdout.contains("carol"), "refused: {}", table.stdout);

    // Every entity, as JSON.
    let mut all = described(&b, &[]);
    all.sort_by_key(|q| q.to_string());
    assert_eq!(all, {
        let mut want = vec![
            json!({"user": null, "client_id": "<default>",
                       "values": {"request_percentage": 50.0}}),
            json!({"user": "alice", "client_id": "ingest",
                       "values": {"producer_byte_rate": 1048576.0, "consumer_byte_rate": 2097152.0}}),
            json!({"user": "bob", "client_id": null,
                       "values": {"consumer_byte_rate": 4096.0}}),
        ];
        want.sort_by_key(|q| q.to_string());
        want
    });

    // Named entities are matched exactly, as kafka-configs.sh's containsOnly filter.
    assert_eq!(
        described(&b, &["--entity-type", "users", "--entity-name", "alice"]),
        Vec::<Value>::new(),
        "alice has quotas only with a client id"
    );
    let one = described(&b, &["--user", "alice", "--client", "ingest"]);
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one[0]["values"]["producer_byte_rate"], 1048576.0);
    // A type without a name: every entity of that type alone, the default included.
    let clients = described(&b, &["--entity-type", "clients"]);
    assert_eq!(clients.len(), 1, "{clients:?}");
    assert_eq!(clients[0]["client_id"], "<default>");
    let users = described(&b, &["--entity-type", "users"]);
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["user"], "bob");

    // Deleting one key keeps the others; deleting the last removes the entity.
    quotas(
        &b,
        &[
            "--alter",
            "--user",
            "alice",
            "--client",
            "ingest",
            "--delete-config",
            "producer_byte_rate",
        ],
    )
    .ok();
    let one = described(&b, &["--user", "alice", "--client", "ingest"]);
    assert_eq!(
        one,
        vec![json!({"user": "alice", "client_id": "ingest",
                    "values": {"consumer_byte_rate": 2097152.0}})]
    );
    quotas(
        &b,
        &[
            "--alter",
            "--client-defaults",
            "--delete-config",
            "request_percentage",
            "--output",
            "json",
        ],
    )
    .json();
    assert_eq!(
        described(&b, &["--entity-type", "clients", "--entity-default"]),
        Vec::<Value>::new()
    );

    // Each alteration attempted (refusals too, not usage errors) is in the audit trail,
    // the entity as its target and the values in its argv.
    let c = ConsoleProc::start(&b.bootstrap);
    let entries = wait_for(30, "the quota changes in the audit log", || {
        let rows: Vec<Value> = c.json("/audit")["entries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["via"] == "cli" && e["action"] == "alter-client-quotas")
            .collect();
        (rows.len() >= 7).then_some(rows)
    });
    assert_eq!(entries.len(), 7, "{entries:#?}");
    let argv_of = |e: &Value| -> Vec<String> {
        let req: Value =
            serde_json::from_str(e["request"].as_str().unwrap_or("null")).expect("request JSON");
        req["argv"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let alice: Vec<Vec<String>> = entries
        .iter()
        .filter(|e| e["target"] == "user=alice,client-id=ingest" && e["ok"] == true)
        .map(argv_of)
        .collect();
    assert_eq!(alice.len(), 2, "set and delete: {entries:#?}");
    assert!(
        alice
            .iter()
            .any(|a| a
                .contains(&"producer_byte_rate=1048576,consumer_byte_rate=2097152".to_string())),
        "{alice:?}"
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["target"] == "user=carol" && e["ok"] == false)
            .count(),
        2,
        "the two refusals: {entries:#?}"
    );
}
