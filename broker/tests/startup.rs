//! Misconfiguration is refused at start: the broker exits non-zero with one line that names
//! the key and says how to fix it, instead of starting half-broken (nodes that never form a
//! cluster, a log dir that fails every partition later).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the broker with `args` (wrapped in `wrapper` if given), which must exit non-zero
/// within 30 s; returns its stderr.
fn refused(wrapper: &[&str], overrides: &[String]) -> String {
    let dir = tempfile::tempdir().expect("tmp");
    let bin = env!("CARGO_BIN_EXE_rill-broker");
    let mut cmd = match wrapper.split_first() {
        Some((w, rest)) => {
            let mut c = Command::new(w);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(["--override", "listeners=PLAINTEXT://127.0.0.1:0"])
        .args(["--override", "http.listener=127.0.0.1:0"])
        .args([
            "--override",
            &format!("log.dirs={}", dir.path().join("logs").display()),
        ]);
    for o in overrides {
        cmd.args(["--override", o]);
    }
    let mut child = cmd
        .env("RILL_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the broker kept running with {overrides:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    assert!(
        !status.success(),
        "exit status {status:?} for {overrides:?}"
    );
    err
}

/// The refusal is one line (besides any log lines), naming `key`, with `fix` in it.
fn assert_one_line(err: &str, key: &str, fix: &str) {
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("rill-broker:"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{err}");
    let line = lines[0];
    assert!(
        line.contains(key) && line.contains(fix),
        "expected {key:?} and {fix:?} in: {line}"
    );
}

#[test]
fn voters_without_a_cluster_id() {
    let ports = [common::free_port(), common::free_port()];
    let err = refused(
        &[],
        &[format!(
            "controller.quorum.voters={}",
            common::voters(&ports)
        )],
    );
    assert_one_line(&err, "cluster.id", "--override cluster.id=");
}

#[test]
fn a_voter_id_listed_twice() {
    let err = refused(
        &[],
        &["controller.quorum.voters=1@127.0.0.1:1,1@127.0.0.1:2".into()],
    );
    assert_one_line(&err, "controller.quorum.voters", "its own node.id");
}

#[test]
fn a_listener_port_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let err = refused(&[], &[format!("listeners=PLAINTEXT://127.0.0.1:{port}")]);
    assert_one_line(&err, "listeners", "choose another port");
    let err = refused(&[], &[format!("http.listener=127.0.0.1:{port}")]);
    assert_one_line(&err, "http.listener", "choose another port");
}

#[test]
fn a_log_dir_that_cannot_be_written() {
    // Root may write anywhere, but not under /proc.
    let err = refused(&[], &["log.dirs=/proc/rill-cannot-write-here".into()]);
    assert_one_line(&err, "log.dirs", "can create and write");
    let err = refused(
        &[],
        &["metadata.log.dir=/proc/rill-cannot-write-here".into()],
    );
    assert_one_line(&err, "metadata.log.dir", "can create and write");
}

#[test]
fn limits_beyond_the_file_limit() {
    let err = refused(
        &["prlimit", "--nofile=1024", "--"],
        &["log.max.open.files=100000".into()],
    );
    assert_one_line(
        &err,
        "log.max.open.files=100000",
        "raise the process's file limit",
    );
    let err = refused(&[], &["queued.max.request.bytes=1000".into()]);
    assert_one_line(&err, "queued.max.request.bytes", "socket.request.max.bytes");
}

#[test]
fn an_open_http_api_beyond_loopback() {
    let err = refused(&[], &["http.listener=0.0.0.0:0".into()]);
    assert_one_line(
        &err,
        "http.listener",
        "http.auth.allow.unauthenticated=true",
    );
    // Said explicitly, it starts (with a warning), and so it does with credentials.
    let open = common::BrokerProc::start(&[
        "http.listener=0.0.0.0:0",
        "http.auth.allow.unauthenticated=true",
    ]);
    let local = |b: &common::BrokerProc| b.http.replace("0.0.0.0", "127.0.0.1");
    assert_eq!(common::http_get(&local(&open), "/api/v1/node").0, 200);
    let guarded = common::BrokerProc::start(&["http.listener=0.0.0.0:0", "http.auth.token=t0k"]);
    assert_eq!(common::http_get(&local(&guarded), "/api/v1/node").0, 401);
    let (status, _) = common::http_get_with(
        &local(&guarded),
        "/api/v1/node",
        &[("Authorization", "Bearer t0k")],
    );
    assert_eq!(status, 200);
}

#[test]
fn a_bad_http_users_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let users = dir.path().join("users");
    std::fs::write(
        &users,
        "# name:argon2-hash\nalice:$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\nbob\n",
    )
    .expect("write");
    let key = format!("http.auth.basic.users.file={}", users.display());
    let err = refused(&[], &[key]);
    assert_one_line(&err, "http.auth.basic.users.file", "line 3");
    let err = refused(
        &[],
        &[format!(
            "http.auth.basic.users.file={}",
            dir.path().join("missing").display()
        )],
    );
    assert_one_line(&err, "http.auth.basic.users.file", "cannot open");
}

#[test]
fn an_http_api_over_tls_without_a_usable_keystore() {
    let err = refused(&[], &["http.ssl.enabled=true".into()]);
    assert_one_line(
        &err,
        "http.ssl.keystore.location",
        "set http.ssl.keystore.location",
    );
    let err = refused(
        &[],
        &[
            "http.ssl.enabled=true".into(),
            "http.ssl.keystore.location=/nonexistent/http.pem".into(),
        ],
    );
    assert_one_line(&err, "http.ssl.keystore.location", "cannot open");
    let err = refused(
        &[],
        &[
            "http.ssl.enabled=true".into(),
            "http.ssl.keystore.location=/nonexistent/http.pem".into(),
            "http.ssl.client.auth=required".into(),
        ],
    );
    assert_one_line(&err, "http.ssl.client.auth", "only none");
}
