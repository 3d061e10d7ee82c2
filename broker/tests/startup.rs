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
        &["max.broker.partitions=100000".into()],
    );
    assert_one_line(
        &err,
        "max.broker.partitions=100000",
        "raise the process's file limit",
    );
    let err = refused(&[], &["queued.max.request.bytes=1000".into()]);
    assert_one_line(&err, "queued.max.request.bytes", "socket.request.max.bytes");
}
