//! The console's ACL and SCRAM user pages against a real broker with the standard
//! authorizer: listing and filtering, adding with validation (the field to blame), the
//! two-step delete, "what may P do on R" with its reasons (super user, DENY from a host,
//! prefixed ALLOW, no ACL), users created, rotated and deleted with a typed confirmation,
//! the audit log (never a password), and a cluster without an authorizer.

mod common;

use common::console::{assert_field_error, enc, ConsoleProc};
use common::BrokerProc;
use serde_json::{json, Value};

const AUTHORIZER: &str =
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer";

fn rows(v: &Value, key: &str) -> Vec<Value> {
    v[key].as_array().cloned().unwrap_or_default()
}

#[test]
fn acls_are_listed_added_checked_and_deleted() {
    // The console connects as User:ANONYMOUS over PLAINTEXT: the super user here.
    let b = BrokerProc::start(&[AUTHORIZER, "super.users=User:ANONYMOUS;User:root"]);
    let c = ConsoleProc::start(&b.bootstrap);

    let empty = c.json("/acls");
    assert_eq!(empty["total"], 0, "{empty}");
    assert!(empty["error"].is_null(), "{empty}");

    // Bad input names its field; nothing is created.
    let bad = |body: Value, field: &str| {
        assert_field_error(c.post_json("/acls", body), 400, field);
    };
    let alice_read = json!({"principal": "User:alice", "permission": "allow", "operation": "read",
        "resource_type": "topic", "resource_name": "orders", "pattern_type": "literal", "host": ""});
    let with = |k: &str, v: &str| {
        let mut b = alice_read.clone();
        b[k] = json!(v);
        b
    };
    bad(with("principal", "alice"), "principal");
    bad(with("operation", "idempotent_write"), "operation");
    bad(with("resource_name", "bad name"), "resource_name");
    bad(with("host", "example.com"), "host");
    bad(with("permission", "maybe"), "permission");
    assert_eq!(c.json("/acls")["total"], 0);

    // Adding: READ for alice on `orders`, a prefixed WRITE on `ord`, a DENY from one host.
    let (s, v) = c.post_json("/acls", alice_read.clone());
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["created"]["operation"], "READ", "{v}");
    let mut prefixed = with("operation", "write");
    prefixed["resource_name"] = json!("ord");
    prefixed["pattern_type"] = json!("prefixed");
    assert_eq!(c.post_json("/acls", prefixed).0, 200);
    let mut deny = with("permission", "deny");
    deny["host"] = json!("::1");
    assert_eq!(c.post_json("/acls", deny).0, 200);

    let all = c.json("/acls");
    assert_eq!(all["total"], 3, "{all}");
    let denied = c.json("/acls?permission=deny");
    let d = rows(&denied, "acls");
    assert_eq!(d.len(), 1, "{denied}");
    // IPv6 hosts are stored as Kafka's brokers compare them (Java's long form).
    assert_eq!(d[0]["host"], "0:0:0:0:0:0:0:1", "{denied}");
    assert_eq!(
        rows(&c.json("/acls?resource=ORD&operation=write"), "acls").len(),
        1
    );
    assert_eq!(rows(&c.json("/acls?principal=bob"), "acls").len(), 0);
    assert_field_error((400, c.json("/acls?operation=fly")), 400, "operation");

    // The permission check, with reasons.
    let check = |q: &str| -> Vec<(String, String, String)> {
        let v = c.json(&format!("/acls?{q}"));
        rows(&v["check"], "rows")
            .iter()
            .map(|r| {
                (
                    r["operation"].as_str().unwrap_or("").to_string(),
                    match r["allowed"].as_bool() {
                        Some(true) => "allowed",
                        Some(false) => "denied",
                        None => "unknown",
                    }
                    .to_string(),
                    r["reason"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let verdict = |rows: &[(String, String, String)], op: &str| {
        rows.iter()
            .find(|r| r.0 == op)
            .unwrap_or_else(|| panic!("{op} in {rows:?}"))
            .clone()
    };
    let alice = check("check_principal=User:alice&check_resource_type=topic&check_resource=orders");
    assert_eq!(verdict(&alice, "READ").1, "allowed", "{alice:?}");
    assert!(
        verdict(&alice, "READ").2.contains("ALLOW User:alice READ"),
        "{alice:?}"
    );
    assert_eq!(
        verdict(&alice, "WRITE").1,
        "allowed",
        "prefixed `ord`: {alice:?}"
    );
    assert_eq!(verdict(&alice, "DESCRIBE").1, "allowed", "implied by READ");
    assert_eq!(verdict(&alice, "DELETE").1, "denied", "{alice:?}");
    let from_v6 = check(&format!(
        "check_principal=User:alice&check_resource_type=topic&check_resource=orders&check_host={}",
        enc("::1")
    ));
    assert_eq!(
        verdict(&from_v6, "READ").1,
        "denied",
        "the DENY from ::1 wins"
    );
    assert!(
        verdict(&from_v6, "READ").2.starts_with("denied by DENY"),
        "{from_v6:?}"
    );
    let root = check("check_principal=User:root&check_resource_type=group&check_resource=g");
    assert!(
        root.iter()
            .all(|r| r.1 == "allowed" && r.2.contains("super")),
        "{root:?}"
    );
    let nobody = check("check_principal=User:eve&check_resource_type=group&check_resource=g");
    assert!(
        nobody
            .iter()
            .all(|r| r.1 == "denied" && r.2.contains("allow.everyone.if.no.acl.found=false")),
        "{nobody:?}"
    );

    // Deleting takes a confirmation; then the ACL is gone, and a second delete is a 404.
    let target = json!({"principal": "User:alice", "permission": "ALLOW", "operation": "READ",
        "resource_type": "TOPIC", "resource_name": "orders", "pattern_type": "LITERAL", "host": "*"});
    let (s, v) = c.post_json("/acls/delete", target.clone());
    assert_eq!(
        (s, v["awaiting_confirmation"].clone()),
        (200, json!(true)),
        "{v}"
    );
    assert_eq!(
        c.json("/acls")["total"],
        3,
        "nothing deleted before confirming"
    );
    let page = c.post_form(
        "/acls/delete",
        &[
            ("principal", "User:alice"),
            ("permission", "ALLOW"),
            ("operation", "READ"),
            ("resource_type", "TOPIC"),
            ("resource_name", "orders"),
            ("pattern_type", "LITERAL"),
            ("host", "*"),
        ],
    );
    assert!(
        page.body.contains("id=\"delete-acl-confirm-form\""),
        "{}",
        page.body
    );
    let mut confirmed = target.clone();
    confirmed["confirm"] = json!("yes");
    let (s, v) = c.post_json("/acls/delete", confirmed.clone());
    assert_eq!(s, 200, "{v}");
    assert_eq!(c.json("/acls")["total"], 2);
    assert_eq!(c.post_json("/acls/delete", confirmed).0, 404);
    let after = check("check_principal=User:alice&check_resource_type=topic&check_resource=orders");
    assert_eq!(verdict(&after, "READ").1, "denied", "{after:?}");

    // Every change is audited.
    let audit = c.json("/audit");
    let actions: Vec<String> = rows(&audit, "entries")
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_string))
        .collect();
    assert!(
        actions.iter().filter(|a| *a == "create-acl").count() >= 3,
        "{audit}"
    );
    assert!(actions.iter().any(|a| a == "delete-acl"), "{audit}");
}

#[test]
fn scram_users_are_created_rotated_and_deleted() {
    let b = BrokerProc::start(&[AUTHORIZER, "super.users=User:ANONYMOUS"]);
    let c = ConsoleProc::start(&b.bootstrap);
    let user = |name: &str, mechanism: &str, pw: &str, again: &str| {
        json!({"user": name, "mechanism": mechanism, "iterations": "8192",
               "password": pw, "password_confirm": again})
    };
    assert_field_error(
        c.post_json(
            "/users",
            user("bob", "SCRAM-SHA-256", "bob-secret-a", "bob-secret-b"),
        ),
        400,
        "password_confirm",
    );
    assert_field_error(
        c.post_json(
            "/users",
            user("bob", "PLAIN", "bob-secret-c", "bob-secret-c"),
        ),
        400,
        "mechanism",
    );
    assert_field_error(
        c.post_json("/users", user("", "SCRAM-SHA-256", "p", "p")),
        400,
        "user",
    );
    let mut few = user("bob", "SCRAM-SHA-256", "bob-secret-e", "bob-secret-e");
    few["iterations"] = json!("100");
    assert_field_error(c.post_json("/users", few), 400, "iterations");

    let (s, v) = c.post_json(
        "/users",
        user("bob", "SCRAM-SHA-256", "bob-secret-1", "bob-secret-1"),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["existed"], false, "{v}");
    let listed = c.json("/users");
    let bob = rows(&listed, "users")
        .into_iter()
        .find(|u| u["user"] == "bob")
        .unwrap_or_else(|| panic!("bob in {listed}"));
    assert_eq!(
        bob["credentials"],
        json!([{"mechanism": "SCRAM-SHA-256", "iterations": 8192}]),
        "{listed}"
    );
    // Rotation: same user and mechanism, a new password.
    let (s, v) = c.post_json(
        "/users",
        user("bob", "SCRAM-SHA-256", "bob-secret-2", "bob-secret-2"),
    );
    assert_eq!((s, v["existed"].clone()), (200, json!(true)), "{v}");

    // Deleting needs the name typed again.
    assert_field_error(
        c.post_json("/users/bob/delete", json!({"confirm": "bo"})),
        400,
        "confirm",
    );
    let (s, v) = c.post_json("/users/bob/delete", json!({"confirm": "bob"}));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["mechanisms"], json!(["SCRAM-SHA-256"]), "{v}");
    assert!(rows(&c.json("/users"), "users")
        .iter()
        .all(|u| u["user"] != "bob"));
    assert_eq!(
        c.post_json("/users/bob/delete", json!({"confirm": "bob"}))
            .0,
        404
    );

    // The audit log has the changes and no password.
    let audit = c.get("/audit");
    for action in [
        "create-scram-user",
        "rotate-scram-user",
        "delete-scram-user",
    ] {
        assert!(audit.body.contains(action), "{action} in the audit log");
    }
    assert!(
        !audit.body.contains("bob-secret"),
        "no password in the audit log"
    );
}

#[test]
fn without_an_authorizer_the_acl_page_says_so() {
    let b = BrokerProc::start(&[]);
    let c = ConsoleProc::start(&b.bootstrap);
    let v = c.json("/acls");
    let error = v["error"].as_str().unwrap_or("");
    assert!(error.contains("no authorizer"), "{v}");
    let page = c.get("/acls");
    assert!(page.body.contains("id=\"acls-error\""), "{}", page.body);
}

/// ACLs stored by other tools — a host name (kafka-acls.sh takes one), Rust's short IPv6
/// form, an operation kafka-acls.sh would not offer for the type — are listed and deleted
/// exactly as stored.
#[test]
fn acls_stored_by_other_tools_are_deleted_as_listed() {
    let b = BrokerProc::start(&[AUTHORIZER, "super.users=User:ANONYMOUS"]);
    let c = ConsoleProc::start(&b.bootstrap);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let cluster =
            rill_client::Cluster::connect(&b.bootstrap, rill_client::ConnectionConfig::default())
                .await
                .expect("connect");
        // WRITE on a group, from "localhost" and from "::1".
        let acl = |host: &str| rill_client::Acl {
            resource_type: 3,
            resource_name: "g".into(),
            pattern_type: 3,
            principal: "User:x".into(),
            host: host.into(),
            operation: 4,
            permission: 3,
        };
        for r in cluster
            .create_acls(&[acl("localhost"), acl("::1")])
            .await
            .expect("CreateAcls")
        {
            r.expect("created");
        }
    });
    let listed = rows(&c.json("/acls?principal=User:x"), "acls");
    let hosts: Vec<&str> = listed.iter().filter_map(|r| r["host"].as_str()).collect();
    assert_eq!(hosts.len(), 2, "{listed:?}");
    assert!(
        hosts.contains(&"localhost") && hosts.contains(&"::1"),
        "{hosts:?}"
    );
    for row in &listed {
        let mut body = row.clone();
        body["confirm"] = json!("yes");
        let (s, v) = c.post_json("/acls/delete", body);
        assert_eq!(s, 200, "{v}");
    }
    assert_eq!(c.json("/acls")["total"], 0);
}
