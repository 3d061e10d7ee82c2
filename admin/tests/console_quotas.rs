//! The console's `/quotas` page against a real broker: quotas set through the form (HTML
//! and JSON), bad input refused beside its field before the cluster is asked, the cluster's
//! refusal shown beside the key it names, default entities told apart from names, removal
//! only with the entity typed again, every change in the audit log with its values, and
//! the roles: operators set quotas, only admins remove them.

mod common;

use common::console::{assert_field_error, ConsoleProc};
use common::{rill, BrokerProc};
use serde_json::{json, Value};

fn rows(v: &Value) -> Vec<Value> {
    v["quotas"].as_array().cloned().unwrap_or_default()
}

fn find(v: &Value, entity: &str) -> Option<Value> {
    rows(v).into_iter().find(|q| q["entity"] == entity)
}

#[test]
fn quotas_are_set_listed_and_removed() {
    let b = BrokerProc::start(&[]);
    let c = ConsoleProc::start(&b.bootstrap);

    let empty = c.get("/quotas");
    assert_eq!(empty.status, 200);
    assert!(
        empty.body.contains("data-page=\"quotas\""),
        "{}",
        empty.body
    );
    assert!(empty.body.contains("id=\"quotas-none\""), "{}", empty.body);
    assert!(empty.body.contains("id=\"nav-quotas\""));

    // Through the HTML form: a user with the default client id.
    let r = c.post_form(
        "/quotas",
        &[
            ("user_kind", "name"),
            ("user", "alice"),
            ("client_kind", "default"),
            ("client_id", ""),
            ("producer_byte_rate", "1048576"),
            ("consumer_byte_rate", ""),
            ("request_percentage", "25"),
            ("controller_mutation_rate", ""),
        ],
    );
    assert_eq!(r.status, 303, "{r:?}");
    assert!(
        r.header("location")
            .is_some_and(|l| l.starts_with("/quotas?notice=")),
        "{r:?}"
    );
    // Through JSON, kinds left out: a client id alone.
    let (s, v) = c.post_json(
        "/quotas",
        json!({"client_id": "ingest", "consumer_byte_rate": 2097152, "controller_mutation_rate": "10"}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["saved"], "client-id=ingest", "{v}");

    let listed = c.json("/quotas");
    let alice = find(&listed, "user=alice,client-id=<default>")
        .unwrap_or_else(|| panic!("alice in {listed}"));
    assert_eq!(alice["user"], json!({"default": false, "name": "alice"}));
    assert_eq!(alice["client_id"], json!({"default": true, "name": null}));
    assert_eq!(alice["values"], json!([1048576.0, null, 25.0, null]));
    let ingest = find(&listed, "client-id=ingest").unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(ingest["user"], Value::Null);
    assert_eq!(ingest["values"], json!([null, 2097152.0, null, 10.0]));
    // The same as the CLI sees it.
    let cli = rill(&[
        "quotas",
        "--bootstrap-server",
        &b.bootstrap,
        "--describe",
        "--output",
        "json",
    ])
    .json();
    assert_eq!(cli["quotas"].as_array().map(Vec::len), Some(2), "{cli}");

    // The page: defaults shown as such, unset values blank.
    let page = c.get("/quotas").body;
    let tr = page
        .split("data-user=\"alice\"")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_else(|| panic!("alice's row in {page}"));
    assert!(tr.contains("data-client-kind=\"default\""), "{tr}");
    assert!(tr.contains("(default)</span>"), "{tr}");
    assert!(
        tr.contains("data-key=\"producer_byte_rate\">1048576</td>"),
        "{tr}"
    );
    assert!(tr.contains("data-key=\"consumer_byte_rate\"></td>"), "{tr}");

    // Bad input: 400 beside the field, nothing sent.
    assert_field_error(
        c.post_json(
            "/quotas",
            json!({"user_kind": "none", "client_kind": "none", "producer_byte_rate": "1"}),
        ),
        400,
        "",
    );
    assert_field_error(
        c.post_json(
            "/quotas",
            json!({"user": "bob", "producer_byte_rate": "fast"}),
        ),
        400,
        "producer_byte_rate",
    );
    assert_field_error(
        c.post_json("/quotas", json!({"user": "bob", "request_percentage": -3})),
        400,
        "request_percentage",
    );
    assert_field_error(c.post_json("/quotas", json!({"user": "bob"})), 400, "");
    assert_field_error(
        c.post_json(
            "/quotas",
            json!({"user_kind": "default", "user": "bob", "producer_byte_rate": 1}),
        ),
        400,
        "user",
    );
    assert_field_error(
        c.post_json(
            "/quotas",
            json!({"user": "x".repeat(2000), "producer_byte_rate": 1}),
        ),
        400,
        "user",
    );
    // The cluster's refusals, beside the key they name, in its words.
    let (s, v) = c.post_json(
        "/quotas",
        json!({"user": "bob", "producer_byte_rate": "1.5"}),
    );
    assert_eq!(
        (s, v["field"].clone()),
        (400, json!("producer_byte_rate")),
        "{v}"
    );
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("producer_byte_rate cannot be a fractional value.")),
        "{v}"
    );
    let r = c.post_form(
        "/quotas",
        &[
            ("user_kind", "name"),
            ("user", "bob"),
            ("client_kind", "none"),
            ("consumer_byte_rate", "2.5"),
        ],
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.body
            .contains("id=\"set-quotas-consumer_byte_rate-error\""),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("consumer_byte_rate cannot be a fractional value."),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("value=\"bob\""),
        "the form keeps what was typed"
    );
    assert!(find(&c.json("/quotas"), "user=bob").is_none());

    // Removal needs the entity typed again.
    let entity =
        json!({"user_kind": "name", "user": "alice", "client_kind": "default", "client_id": ""});
    let mut wrong = entity.clone();
    wrong["confirm"] = json!("user=alice");
    assert_field_error(c.post_json("/quotas/delete", wrong), 400, "confirm");
    assert!(find(&c.json("/quotas"), "user=alice,client-id=<default>").is_some());
    let r = c.post_form(
        "/quotas/delete",
        &[
            ("user_kind", "name"),
            ("user", "alice"),
            ("client_kind", "default"),
            ("client_id", ""),
            ("confirm", "user=alice,client-id=<default>"),
        ],
    );
    assert_eq!(r.status, 303, "{r:?}");
    let listed = c.json("/quotas");
    assert!(
        find(&listed, "user=alice,client-id=<default>").is_none(),
        "{listed}"
    );
    assert!(find(&listed, "client-id=ingest").is_some(), "{listed}");
    let mut again = entity.clone();
    again["confirm"] = json!("user=alice,client-id=<default>");
    assert_eq!(c.post_json("/quotas/delete", again).0, 404);

    // The audit log: each change with its entity and values.
    let audit = c.json("/audit");
    let entries: Vec<Value> = audit["entries"].as_array().cloned().unwrap_or_default();
    let set = entries
        .iter()
        .find(|e| {
            e["action"] == "alter-client-quotas"
                && e["target"] == "user=alice,client-id=<default>"
                && e["ok"] == true
        })
        .unwrap_or_else(|| panic!("alice's set in {audit}"));
    assert!(
        set["request"]
            .as_str()
            .is_some_and(|r| r.contains("\"producer_byte_rate\":\"1048576\"")),
        "{set}"
    );
    let removed = entries
        .iter()
        .find(|e| e["action"] == "delete-client-quotas" && e["ok"] == true)
        .unwrap_or_else(|| panic!("the removal in {audit}"));
    assert_eq!(removed["target"], "user=alice,client-id=<default>");
    let req: Value =
        serde_json::from_str(removed["request"].as_str().unwrap_or("null")).expect("JSON");
    assert_eq!(
        req["removed"],
        json!({"producer_byte_rate": 1048576.0, "request_percentage": 25.0}),
        "{req}"
    );
    assert!(
        entries.iter().any(|e| e["action"] == "alter-client-quotas"
            && e["target"] == "user=bob"
            && e["ok"] == false),
        "the refusal is audited: {audit}"
    );
}

/// With logins on, an operator may set quotas (as topic configs) but not remove them (every
/// `/delete` is the admin's); a viewer may do neither.
#[test]
fn operators_set_quotas_and_only_admins_remove_them() {
    use common::console::{hash_password, login, post_form_as};

    let b = BrokerProc::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let h = hash_password("pw");
    let users = dir.path().join("users");
    std::fs::write(
        &users,
        format!("admin:admin:{h}\noper:operator:{h}\nview:viewer:{h}\n"),
    )
    .expect("users");
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let users_arg = users.display().to_string();
    let c = ConsoleProc::start_full(&b.bootstrap, &db, dir, &["--users-file", &users_arg]);

    let set = |who: &str| {
        let s = login(&c, who, "/quotas");
        post_form_as(
            &c,
            &s.cookie,
            "/quotas",
            &[
                ("csrf_token", &s.csrf),
                ("client_kind", "name"),
                ("client_id", who),
                ("producer_byte_rate", "4096"),
            ],
        )
        .status
    };
    let remove = |who: &str, client: &str| {
        let s = login(&c, who, "/quotas");
        let entity = format!("client-id={client}");
        post_form_as(
            &c,
            &s.cookie,
            "/quotas/delete",
            &[
                ("csrf_token", &s.csrf),
                ("client_kind", "name"),
                ("client_id", client),
                ("confirm", &entity),
            ],
        )
        .status
    };
    assert_eq!(set("view"), 403);
    assert_eq!(set("oper"), 303);
    assert_eq!(remove("oper", "oper"), 403);
    assert_eq!(remove("view", "oper"), 403);
    let s = login(&c, "admin", "/quotas");
    assert!(s.page.contains("data-client-id=\"oper\""), "{}", s.page);
    assert!(!s.page.contains("data-client-id=\"view\""), "{}", s.page);
    assert_eq!(remove("admin", "oper"), 303);
    let s = login(&c, "admin", "/quotas");
    assert!(!s.page.contains("data-client-id=\"oper\""), "{}", s.page);
}
