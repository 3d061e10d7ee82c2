//! The console's `/transactions` page against a real broker: a transaction left open by
//! librdkafka listed with its state, age, timeout and partitions; a transaction no
//! coordinator knows shown as hanging; its abort refused to an operator, shown for
//! confirmation first, then done and audited.

mod common;

use std::time::Duration;

use common::console::{hash_password, login, post_form_as, ConsoleProc};
use common::txn::hang;
use common::{rill, BrokerProc};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn rows(v: &Value, key: &str) -> Vec<Value> {
    v[key].as_array().cloned().unwrap_or_default()
}

#[test]
fn transactions_are_listed_and_hanging_ones_aborted_by_an_admin() {
    let b = BrokerProc::start(&["transaction.state.log.num.partitions=3"]);
    for topic in ["console-txn", "console-hang"] {
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
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("transactional.id", "console-txn-id")
        .set("transaction.timeout.ms", "55000")
        .create()
        .expect("producer");
    p.init_transactions(T).expect("init");
    p.begin_transaction().expect("begin");
    p.send(
        BaseRecord::<str, str>::to("console-txn")
            .partition(0)
            .payload("x"),
    )
    .map_err(|(e, _)| e)
    .expect("send");
    p.flush(T).expect("flush");
    let (pid, _) = hang(&b, "console-hang");

    let dir = tempfile::tempdir().expect("tempdir");
    let h = hash_password("pw");
    let users = dir.path().join("users");
    std::fs::write(&users, format!("admin:admin:{h}\noper:operator:{h}\n")).expect("users");
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let users_arg = users.display().to_string();
    let c = ConsoleProc::start_full(&b.bootstrap, &db, dir, &["--users-file", &users_arg]);
    let admin = login(&c, "admin", "/transactions");
    assert!(admin.page.contains("data-page=\"transactions\""));
    assert!(admin.page.contains("id=\"nav-transactions\""));
    let get_json = |path: &str| -> Value {
        let r = c.request_with("GET", path, None, true, &[("Cookie", admin.cookie.clone())]);
        assert_eq!(r.status, 200, "{}", r.body);
        serde_json::from_str(&r.body).expect("json")
    };

    // The open transaction: Ongoing, its partition and timeout, an age (not hanging: it is
    // well within its 55 s).
    let v = get_json("/transactions");
    let txns = rows(&v, "transactions");
    assert_eq!(txns.len(), 1, "{v}");
    let t = &txns[0];
    assert_eq!(t["transactional_id"], "console-txn-id");
    assert_eq!(t["state"], "Ongoing");
    assert_eq!(t["timeout_ms"], 55000);
    assert_eq!(t["partitions"][0], "console-txn-0");
    assert!(
        t["age_ms"]
            .as_i64()
            .is_some_and(|a| (0..55_000).contains(&a)),
        "{t}"
    );
    assert_eq!(t["hanging"], false);
    // The raw producer's transaction: hanging in console-hang-0 from offset 0.
    let hanging = rows(&v, "hanging");
    assert_eq!(hanging.len(), 1, "{v}");
    assert_eq!(hanging[0]["topic"], "console-hang");
    assert_eq!(hanging[0]["producer_id"], pid);
    assert_eq!(hanging[0]["start_offset"], 0);
    assert!(v["hanging_error"].is_null(), "{v}");
    assert!(admin.page.contains("class=\"bad hanging\""));
    assert!(admin.page.contains("abort-transaction-form"));

    let fields = |confirm: &'static str, token: &str| -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("topic", "console-hang".to_string()),
            ("partition", "0".to_string()),
            ("start_offset", "0".to_string()),
            ("csrf_token", token.to_string()),
        ];
        if !confirm.is_empty() {
            f.push(("confirm", confirm.to_string()));
        }
        f
    };
    let post = |cookie: &str, f: &[(&'static str, String)]| {
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        post_form_as(&c, cookie, "/transactions/abort", &f)
    };

    // An operator may not abort (403), even confirmed.
    let oper = login(&c, "oper", "/transactions");
    let r = post(&oper.cookie, &fields("yes", &oper.csrf));
    assert_eq!(r.status, 403, "{}", r.body);

    // First step: the confirmation, nothing changed.
    let r = post(&admin.cookie, &fields("", &admin.csrf));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("id=\"abort-transaction-confirm-form\""),
        "{}",
        r.body
    );
    assert!(r.body.contains(&format!("producer <strong>{pid}</strong>")));
    assert_eq!(rows(&get_json("/transactions"), "hanging").len(), 1);

    // Confirmed: aborted, gone from the list, and in the audit log.
    let r = post(&admin.cookie, &fields("yes", &admin.csrf));
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r
        .header("location")
        .is_some_and(|l| l.starts_with("/transactions?notice=")));
    assert!(rows(&get_json("/transactions"), "hanging").is_empty());
    // Again: nothing to abort any more (404), audited as a failure.
    let r = post(&admin.cookie, &fields("yes", &admin.csrf));
    assert_eq!(r.status, 404, "{}", r.body);
    let audit = get_json("/audit");
    let entries: Vec<Value> = rows(&audit, "entries")
        .into_iter()
        .filter(|e| e["action"] == "abort-transaction")
        .collect();
    assert_eq!(entries.len(), 2, "{audit}");
    assert!(entries
        .iter()
        .all(|e| e["target"] == "console-hang-0" && e["user"] == "admin"));
    assert_eq!(
        entries.iter().filter(|e| e["ok"] == true).count(),
        1,
        "{audit}"
    );

    p.commit_transaction(T).expect("commit");
}
