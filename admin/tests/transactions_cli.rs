//! `rill transactions` against a real `rill-broker` process: list, describe and
//! describe-producers on a transaction librdkafka left open; find-hanging and abort on a
//! transaction no coordinator knows (a raw transactional batch of an idempotent producer),
//! with kafka-transactions.sh's columns, JSON output and exit codes.

mod common;

use std::time::Duration;

use common::txn::hang;
use common::{rill, BrokerProc};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const T: Duration = Duration::from_secs(30);

fn run(b: &BrokerProc, args: &[&str]) -> common::RillOut {
    let mut all = vec!["transactions", "--bootstrap-server", b.bootstrap.as_str()];
    all.extend_from_slice(args);
    rill(&all)
}

fn run_json(b: &BrokerProc, args: &[&str]) -> serde_json::Value {
    let mut all = vec![
        "transactions",
        "--bootstrap-server",
        b.bootstrap.as_str(),
        "--output",
        "json",
    ];
    all.extend_from_slice(args);
    rill(&all).json()
}

fn broker() -> BrokerProc {
    BrokerProc::start(&["transaction.state.log.num.partitions=3"])
}

fn create_topic(b: &BrokerProc, topic: &str) {
    rill(&[
        "topics",
        "--bootstrap-server",
        &b.bootstrap,
        "--create",
        "--topic",
        topic,
        "--partitions",
        "1",
    ])
    .ok();
}

#[test]
fn list_describe_and_describe_producers_show_an_open_transaction() {
    let b = broker();
    create_topic(&b, "cli-txn");
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("transactional.id", "cli-txn-id")
        .set("transaction.timeout.ms", "50000")
        .create()
        .expect("producer");
    p.init_transactions(T).expect("init");
    p.begin_transaction().expect("begin");
    for i in 0..2 {
        p.send(
            BaseRecord::<str, str>::to("cli-txn")
                .partition(0)
                .payload(&format!("v{i}")),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    }
    p.flush(T).expect("flush");

    let out = run(&b, &["list"]);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "TransactionalId",
            "Coordinator",
            "ProducerId",
            "TransactionState"
        ]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        (row[0], row[1], row[3]),
        ("cli-txn-id", "1", "Ongoing"),
        "{text}"
    );
    let pid: i64 = row[2].parse().expect("producer id");
    let none = run_json(&b, &["list", "--state", "CompleteAbort"]);
    assert_eq!(none["transactions"].as_array().map(Vec::len), Some(0));

    let d = run_json(&b, &["describe", "--transactional-id", "cli-txn-id"]);
    assert_eq!(d["state"], "Ongoing");
    assert_eq!(d["producer_id"], pid);
    assert_eq!(d["timeout_ms"], 50000);
    assert_eq!(d["partitions"][0]["topic"], "cli-txn");
    assert!(
        d["duration_ms"]
            .as_i64()
            .is_some_and(|ms| (0..60_000).contains(&ms)),
        "{d}"
    );
    let table = run(&b, &["describe", "--transactional-id", "cli-txn-id"]);
    assert!(table.ok().contains("cli-txn-0"), "{}", table.stdout);
    assert!(
        table.stdout.starts_with("CoordinatorId"),
        "{}",
        table.stdout
    );

    let ps = run_json(
        &b,
        &[
            "describe-producers",
            "--topic",
            "cli-txn",
            "--partition",
            "0",
        ],
    );
    let me = ps["producers"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["producer_id"] == pid))
        .expect("producer listed")
        .clone();
    assert_eq!(me["current_txn_start_offset"], 0);
    assert_eq!(me["last_sequence"], 1);

    // An open transaction with its coordinator: not hanging, even with no minimum age.
    let h = run_json(
        &b,
        &[
            "find-hanging",
            "--topic",
            "cli-txn",
            "--max-transaction-timeout",
            "0",
        ],
    );
    assert_eq!(h["hanging"].as_array().map(Vec::len), Some(0), "{h}");

    p.commit_transaction(T).expect("commit");
    let d = run_json(&b, &["describe", "--transactional-id", "cli-txn-id"]);
    assert_eq!(d["state"], "CompleteCommit");

    // Errors: an unknown id exits 1 with Kafka's error name; bad usage exits 2.
    let missing = run(&b, &["describe", "--transactional-id", "nobody"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("TRANSACTIONAL_ID_NOT_FOUND"),
        "{}",
        missing.stderr
    );
    let gone = run(
        &b,
        &[
            "describe-producers",
            "--topic",
            "no-such",
            "--partition",
            "0",
        ],
    );
    assert_eq!(gone.code, 1);
    assert!(
        gone.stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"),
        "{}",
        gone.stderr
    );
    assert_eq!(run(&b, &["find-hanging"]).code, 2);
    assert_eq!(
        run(
            &b,
            &["find-hanging", "--broker-id", "1", "--partition", "0"]
        )
        .code,
        2
    );
}

#[test]
fn find_hanging_and_abort_end_a_transaction_no_coordinator_knows() {
    let b = broker();
    create_topic(&b, "cli-hang");
    let (pid, epoch) = hang(&b, "cli-hang");

    // Younger than the limit (60 min > 30 min ago): not reported.
    let young = run_json(
        &b,
        &[
            "find-hanging",
            "--topic",
            "cli-hang",
            "--max-transaction-timeout",
            "60",
        ],
    );
    assert_eq!(
        young["hanging"].as_array().map(Vec::len),
        Some(0),
        "{young}"
    );
    // The default (15 min), scoped by broker: reported with kafka-transactions.sh's columns.
    let out = run(&b, &["find-hanging", "--broker-id", "1"]);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "Topic",
            "Partition",
            "ProducerId",
            "ProducerEpoch",
            "CoordinatorEpoch",
            "StartOffset",
            "LastTimestamp",
            "Duration(min)"
        ]
    );
    assert_eq!(lines.len(), 2, "{text}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        row[..6],
        [
            "cli-hang",
            "0",
            &pid.to_string(),
            &epoch.to_string(),
            "-1",
            "0"
        ]
    );
    let minutes: i64 = row[7].parse().expect("minutes");
    assert!((30..=31).contains(&minutes), "{text}");

    // abort without --force changes nothing (exit 2); a wrong start offset fails (exit 1).
    let unconfirmed = run(
        &b,
        &[
            "abort",
            "--topic",
            "cli-hang",
            "--partition",
            "0",
            "--start-offset",
            "0",
        ],
    );
    assert_eq!(unconfirmed.code, 2, "{}", unconfirmed.stderr);
    assert!(unconfirmed.stderr.contains("--force"));
    let wrong = run(
        &b,
        &[
            "abort",
            "--topic",
            "cli-hang",
            "--partition",
            "0",
            "--start-offset",
            "1",
            "--force",
        ],
    );
    assert_eq!(wrong.code, 1);
    assert!(
        wrong
            .stderr
            .contains("no open transaction starts at offset 1"),
        "{}",
        wrong.stderr
    );
    let still = run_json(
        &b,
        &["find-hanging", "--topic", "cli-hang", "--partition", "0"],
    );
    assert_eq!(still["hanging"].as_array().map(Vec::len), Some(1));

    let done = run(
        &b,
        &[
            "abort",
            "--topic",
            "cli-hang",
            "--partition",
            "0",
            "--start-offset",
            "0",
            "--force",
        ],
    );
    assert!(
        done.ok().contains(&format!("producer {pid}")),
        "{}",
        done.stdout
    );
    let after = run_json(&b, &["find-hanging", "--topic", "cli-hang"]);
    assert_eq!(
        after["hanging"].as_array().map(Vec::len),
        Some(0),
        "{after}"
    );
    let ps = run_json(
        &b,
        &[
            "describe-producers",
            "--topic",
            "cli-hang",
            "--partition",
            "0",
        ],
    );
    let me = ps["producers"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["producer_id"] == pid))
        .expect("producer listed")
        .clone();
    assert!(me["current_txn_start_offset"].is_null(), "{me}");
    assert_eq!(me["coordinator_epoch"], 0);
}
