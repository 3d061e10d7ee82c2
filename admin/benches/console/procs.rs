//! The cluster and console processes the bench starts (killed on drop).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

// ---------------------------------------------------------------- processes

/// A child process killed (SIGKILL) on drop.
pub struct Proc {
    pub child: Child,
    pub _dir: Option<tempfile::TempDir>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn rill() -> &'static str {
    env!("CARGO_BIN_EXE_rill")
}

/// Starts `rill` with `args`; stdout lines starting with `prefix` are sent back.
pub fn launch(args: &[String], prefix: &'static str) -> (Child, mpsc::Receiver<String>) {
    launch_bin(rill(), args, prefix)
}

/// Starts the `rill` binary at `bin` with `args` (a baseline build, say).
pub fn launch_bin(
    bin: &str,
    args: &[String],
    prefix: &'static str,
) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(bin)
        .args(args)
        .env(
            "RILL_LOG",
            std::env::var("RILL_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn rill");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with(prefix) {
                let _ = tx.send(line);
            }
        }
    });
    (child, rx)
}

/// An n-node cluster (combined broker+controller nodes) on loopback; returns the nodes
/// and the bootstrap list.
pub fn start_cluster(n: usize, extra: &[&str]) -> (Vec<Proc>, String) {
    let ports: Vec<u16> = (0..n)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("free port")
        })
        .collect();
    let cluster_id = format!("rillbench{:013}", std::process::id());
    let voters = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let mut launched = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut overrides = vec![
            format!("node.id={}", i + 1),
            format!("controller.quorum.voters={voters}"),
            format!("cluster.id={cluster_id}"),
            format!("listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{port}"),
            "http.listener=127.0.0.1:0".to_string(),
            format!("log.dirs={}", dir.path().join("logs").display()),
        ];
        overrides.extend(extra.iter().map(|s| s.to_string()));
        let mut args = vec!["broker".to_string()];
        for o in overrides {
            args.push("--override".into());
            args.push(o);
        }
        let (child, rx) = launch(&args, "rill-broker ready:");
        launched.push((dir, child, rx));
    }
    let mut nodes = Vec::new();
    let mut bootstrap = Vec::new();
    for (dir, child, rx) in launched {
        let node = Proc {
            child,
            _dir: Some(dir),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(90))
            .expect("a node printed its ready line within 90 s");
        bootstrap.push(
            line.split_whitespace()
                .find_map(|w| w.strip_prefix("kafka="))
                .expect("ready line has kafka=")
                .to_string(),
        );
        nodes.push(node);
    }
    (nodes, bootstrap.join(","))
}

// ---------------------------------------------------------------- HTTP
