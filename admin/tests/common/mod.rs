//! Starts real `rill-broker` processes on ephemeral loopback ports and runs the real `rill`
//! binary against them (the approach of broker/tests/common/mod.rs).
#![allow(dead_code)]

#[path = "../../../broker/tests/common/batches.rs"]
pub mod batches;
pub mod cluster;
pub mod console;
#[path = "../../../broker/tests/common/ports.rs"]
pub mod ports;
pub mod txn;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running broker process.
pub struct BrokerProc {
    child: Child,
    /// `host:port` for Kafka clients.
    pub bootstrap: String,
    /// The data dir.
    pub data: PathBuf,
    extra: Vec<String>,
    _tmp: tempfile::TempDir,
}

impl BrokerProc {
    /// Starts a broker on a fresh temporary data dir, with extra `key=value` overrides.
    pub fn start(extra: &[&str]) -> BrokerProc {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().to_path_buf();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, bootstrap) = spawn(&data, &extra);
        BrokerProc {
            child,
            bootstrap,
            data,
            extra,
            _tmp: tmp,
        }
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts again on the same data dir and Kafka port, so clients can reconnect.
    pub fn restart_same_port(&mut self) {
        let mut extra = self.extra.clone();
        extra.push(format!("listeners=PLAINTEXT://{}", self.bootstrap));
        let (child, bootstrap) = spawn(&self.data, &extra);
        self.child = child;
        self.bootstrap = bootstrap;
    }
}

impl Drop for BrokerProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `rill-broker` sits beside `rill` in the target dir (a workspace build makes both).
fn broker_bin() -> PathBuf {
    let rill = Path::new(env!("CARGO_BIN_EXE_rill"));
    let bin = rill
        .parent()
        .expect("rill has a parent dir")
        .join(format!("rill-broker{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p rill-broker, or a workspace build)",
        bin.display()
    );
    bin
}

fn spawn(data: &Path, extra: &[String]) -> (Child, String) {
    let mut args = vec![
        "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
        "http.listener=127.0.0.1:0".to_string(),
        format!("log.dirs={}", data.join("logs").display()),
    ];
    args.extend(extra.iter().cloned());
    let (child, rx) = launch(&args);
    let kafka = ready_field(&ready(&rx), "kafka=");
    (child, kafka)
}

/// Starts `rill-broker` with `--override` for each of `args` (later ones win) without
/// waiting; the receiver gets its ready line.
fn launch(args: &[String]) -> (Child, mpsc::Receiver<String>) {
    let mut cmd = Command::new(broker_bin());
    for a in args {
        cmd.arg("--override").arg(a);
    }
    cmd.env(
        "RILL_LOG",
        std::env::var("RILL_LOG").unwrap_or_else(|_| "warn".into()),
    );
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("spawn rill-broker");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("rill-broker ready:") {
                let _ = tx.send(line);
            }
        }
    });
    (child, rx)
}

/// The broker's ready line, within 60 s.
fn ready(rx: &mpsc::Receiver<String>) -> String {
    rx.recv_timeout(Duration::from_secs(60))
        .expect("broker did not print its ready line within 60 s")
}

/// One `key=value` field of a ready line (`kafka=`, `http=`).
fn ready_field(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("ready line has no {key}: {line}"))
}

/// What one `rill` run produced.
#[derive(Debug)]
pub struct RillOut {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl RillOut {
    /// Asserts exit code 0 and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "rill failed: {self:#?}");
        &self.stdout
    }

    /// Asserts a successful run and parses stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// Runs `rill args...`, killing it after 60 s.
pub fn rill(args: &[&str]) -> RillOut {
    rill_env(args, &[])
}

/// Runs `rill args...` with extra environment variables, killing it after 60 s.
pub fn rill_env(args: &[&str], env: &[(&str, &str)]) -> RillOut {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rill"))
        .args(args)
        .envs(env.iter().copied())
        .env("RILL_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rill");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait rill") {
            break st;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            break child.wait().expect("wait rill");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    RillOut {
        code: status.code().unwrap_or(-1),
        stdout: out_t.join().expect("stdout thread"),
        stderr: err_t.join().expect("stderr thread"),
        elapsed: started.elapsed(),
    }
}

/// Polls `f` until it returns `Some`, or panics after `secs` seconds.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
