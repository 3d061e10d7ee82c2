//! Console logins: redirects and 401s without a session, wrong passwords, roles (viewer
//! read-only, operator without deletions or security changes, admin), CSRF tokens on forms, HTTP Basic auth
//! for JSON clients, logout, and the audit log naming the user.

mod common;

use common::console::{hash_password, post_form_as, ConsoleProc};
use common::BrokerProc;
use serde_json::{json, Value};

fn base64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Logs in through the form; returns the cookie header value and the page's CSRF token.
fn login(c: &ConsoleProc, user: &str) -> (String, String) {
    let s = common::console::login(c, user, "/topics");
    assert!(s.set_cookie.contains("HttpOnly"), "{}", s.set_cookie);
    assert!(
        s.page.contains(&format!("id=\"current-user\">{user}")),
        "{}",
        s.page
    );
    assert!(!s.csrf.is_empty());
    (s.cookie, s.csrf)
}

#[test]
fn logins_roles_and_csrf() {
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

    // Without a session: browsers go to the login page, JSON clients get 401.
    let r = c.get("/groups");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login?next=%2Fgroups"));
    let r = c.request("GET", "/", None, true);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.header("www-authenticate").is_some());
    assert_eq!(c.post_json("/topics", json!({"name": "t"})).0, 401);
    assert!(c.get("/login").body.contains("id=\"login-form\""));
    assert_eq!(c.get("/healthz").status, 200);
    assert_eq!(c.get("/metrics").status, 200);
    let r = c.post_form("/login", &[("username", "admin"), ("password", "nope")]);
    assert_eq!(r.status, 401);
    assert!(r.body.contains("id=\"login-error\""));
    assert!(r.header("set-cookie").is_none());
    let r = c.post_form(
        "/login",
        &[
            ("username", "admin"),
            ("password", "pw"),
            ("next", "//evil.example/"),
        ],
    );
    assert_eq!(r.header("location"), Some("/"), "no open redirect");

    // Viewer: reads, never changes.
    let (view, view_token) = login(&c, "view");
    let r = post_form_as(
        &c,
        &view,
        "/topics",
        &[
            ("name", "v"),
            ("partitions", "1"),
            ("csrf_token", &view_token),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.body);

    // Admin: a form without the token (or with another session's) is refused.
    let (admin, admin_token) = login(&c, "admin");
    let r = post_form_as(&c, &admin, "/topics", &[("name", "a"), ("partitions", "1")]);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = post_form_as(
        &c,
        &admin,
        "/topics",
        &[
            ("name", "a"),
            ("partitions", "1"),
            ("csrf_token", &view_token),
        ],
    );
    assert_eq!(r.status, 403);
    let r = post_form_as(
        &c,
        &admin,
        "/topics",
        &[
            ("name", "a"),
            ("partitions", "1"),
            ("csrf_token", &admin_token),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    // JSON with the cookie needs the token as a header.
    let json_post = |token: Option<&str>| {
        let mut h = vec![("Cookie", admin.clone())];
        if let Some(t) = token {
            h.push(("X-CSRF-Token", t.to_string()));
        }
        c.request_with(
            "POST",
            "/topics",
            Some((
                "application/json",
                json!({"name": "b", "partitions": 1}).to_string(),
            )),
            true,
            &h,
        )
    };
    assert_eq!(json_post(None).status, 403);
    assert_eq!(json_post(Some(&admin_token)).status, 200);

    // Operator: changes, but no deletions.
    let (oper, oper_token) = login(&c, "oper");
    let r = post_form_as(
        &c,
        &oper,
        "/topics/a/configs",
        &[
            ("key", "retention.ms"),
            ("value", "60000"),
            ("op", "set"),
            ("csrf_token", &oper_token),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let r = post_form_as(
        &c,
        &oper,
        "/topics/a/delete",
        &[("confirm", "a"), ("csrf_token", &oper_token)],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    // Nor security: ACLs and SCRAM users are the admin's (refused before the cluster is asked).
    for path in ["/acls", "/users"] {
        let r = post_form_as(&c, &oper, path, &[("csrf_token", &oper_token)]);
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }

    // HTTP Basic for scripts: no cookie, no token.
    let basic = format!("Basic {}", base64("admin:pw"));
    let r = c.request_with(
        "POST",
        "/topics/a/delete",
        Some(("application/json", json!({"confirm": "a"}).to_string())),
        true,
        &[("Authorization", basic.clone())],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let bad = format!("Basic {}", base64("admin:wrong"));
    assert_eq!(
        c.request_with("GET", "/", None, true, &[("Authorization", bad)])
            .status,
        401
    );

    // The audit log names who did what.
    let r = c.request_with("GET", "/audit", None, true, &[("Authorization", basic)]);
    let a: Value = serde_json::from_str(&r.body).expect("json");
    let who: Vec<(String, String)> = a["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["user"].as_str().unwrap().into(),
                e["action"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        who.contains(&("admin".into(), "create-topic".into())),
        "{who:?}"
    );
    assert!(
        who.contains(&("oper".into(), "alter-config".into())),
        "{who:?}"
    );
    assert!(
        who.contains(&("admin".into(), "delete-topic".into())),
        "{who:?}"
    );

    // Logout clears the cookie.
    let r = post_form_as(&c, &oper, "/logout", &[("csrf_token", &oper_token)]);
    assert_eq!(r.status, 303);
    assert!(r
        .header("set-cookie")
        .is_some_and(|s| s.contains("Max-Age=0")));
}
