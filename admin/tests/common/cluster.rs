//! A three-node cluster of combined broker+controller `rill-broker` processes (ids 1..=3)
//! on loopback, for the commands and pages that need several brokers.

use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{launch, ready, ready_field};

/// One node; a restart keeps its data dir and controller port.
pub struct Node {
    child: Child,
    /// `host:port` for Kafka clients.
    pub bootstrap: String,
    /// `http://host:port` of its HTTP API.
    pub http: String,
    args: Vec<String>,
    _data: tempfile::TempDir,
}

impl Node {
    /// SIGTERM (controlled shutdown) and wait for the exit.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..400 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `kill -9`: no controlled shutdown.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts again with the same settings and data.
    pub fn restart(&mut self) {
        let (child, rx) = launch(&self.args);
        self.child = child;
        let line = ready(&rx);
        self.bootstrap = ready_field(&line, "kafka=");
        self.http = ready_field(&line, "http=");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts three nodes sharing a fresh cluster id and voter list, with `extra` overrides.
pub fn start(extra: &[&str]) -> Vec<Node> {
    static CLUSTERS: AtomicU64 = AtomicU64::new(0);
    let ports: Vec<u16> = (0..3).map(|_| super::ports::free_port()).collect();
    let voters = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let cluster_id = format!(
        "rilladm{:015}",
        std::process::id() as u64 * 1000 + CLUSTERS.fetch_add(1, Ordering::Relaxed)
    );
    let launched: Vec<_> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let data = tempfile::tempdir().expect("tempdir");
            let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            args.extend([
                format!("node.id={}", i + 1),
                format!("controller.quorum.voters={voters}"),
                format!("cluster.id={cluster_id}"),
                format!("listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{port}"),
                "http.listener=127.0.0.1:0".into(),
                format!("log.dirs={}", data.path().join("logs").display()),
            ]);
            let (child, rx) = launch(&args);
            (child, rx, args, data)
        })
        .collect();
    launched
        .into_iter()
        .map(|(child, rx, args, data)| {
            let line = ready(&rx);
            Node {
                child,
                bootstrap: ready_field(&line, "kafka="),
                http: ready_field(&line, "http="),
                args,
                _data: data,
            }
        })
        .collect()
}

/// A node started to join the cluster's metadata quorum (KIP-853): its own id among the
/// voters it is told about; ready once the quorum has added it.
#[allow(dead_code)] // not every test crate that includes this module uses it
pub struct Joining {
    child: Child,
    rx: std::sync::mpsc::Receiver<String>,
    args: Vec<String>,
    data: tempfile::TempDir,
    /// Its CONTROLLER listener, `127.0.0.1:port`.
    pub controller: String,
}

#[allow(dead_code)]
impl Joining {
    /// Launches node `id` with `like`'s cluster id and voters plus itself.
    pub fn launch(like: &Node, id: u32) -> Joining {
        let port = super::ports::free_port();
        let setting = |key: &str| {
            like.args
                .iter()
                .find_map(|a| a.strip_prefix(&format!("{key}=")).map(str::to_string))
                .expect("setting")
        };
        let data = tempfile::tempdir().expect("tempdir");
        let args = vec![
            format!("node.id={id}"),
            format!(
                "controller.quorum.voters={},{id}@127.0.0.1:{port}",
                setting("controller.quorum.voters")
            ),
            format!("cluster.id={}", setting("cluster.id")),
            format!("listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{port}"),
            "http.listener=127.0.0.1:0".into(),
            format!("log.dirs={}", data.path().join("logs").display()),
        ];
        let (child, rx) = launch(&args);
        Joining {
            child,
            rx,
            args,
            data,
            controller: format!("127.0.0.1:{port}"),
        }
    }

    /// Waits for its ready line.
    pub fn ready(self) -> Node {
        let line = ready(&self.rx);
        Node {
            child: self.child,
            bootstrap: ready_field(&line, "kafka="),
            http: ready_field(&line, "http="),
            args: self.args,
            _data: self.data,
        }
    }
}

/// The nodes' Kafka addresses, comma-separated.
pub fn bootstrap(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(|n| n.bootstrap.clone())
        .collect::<Vec<_>>()
        .join(",")
}
