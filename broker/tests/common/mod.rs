//! Starts real `rill-broker` processes on ephemeral loopback ports for cross-process tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub mod batches;
pub mod checks;
pub mod fuzz;
pub mod ports;
pub mod proxy;

pub use ports::free_port;

/// A running broker process.
pub struct BrokerProc {
    child: Child,
    /// `host:port` for Kafka clients.
    pub bootstrap: String,
    /// `http://host:port` of the HTTP API.
    pub http: String,
    /// `host:port` of the controller (metadata quorum) listener.
    pub controller: String,
    /// The data dir (kept across restarts).
    pub data: PathBuf,
    extra: Vec<String>,
    launch: Launch,
    _tmp: Option<tempfile::TempDir>,
}

/// How to run the broker binary: under a wrapper command (e.g. `prlimit --nofile=1024`)
/// and with its stderr (the log) in a file instead of the test's own.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Command and arguments put in front of the broker binary.
    pub wrapper: Vec<String>,
    /// Where the broker's stderr goes; inherited when `None`.
    pub log_file: Option<PathBuf>,
    /// `RILL_LOG` for the broker (default: the test's `RILL_LOG`, else `warn`).
    pub log_level: Option<String>,
}

impl BrokerProc {
    /// Starts a broker on a fresh temporary data dir, with extra `key=value` overrides.
    pub fn start(extra: &[&str]) -> BrokerProc {
        Self::start_with(Launch::default(), extra)
    }

    /// Like [`BrokerProc::start`], run as `launch` says.
    pub fn start_with(launch: Launch, extra: &[&str]) -> BrokerProc {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().to_path_buf();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, rx) = launch_with(&data, &extra, &launch);
        let (bootstrap, http, controller) = await_ready(&rx);
        BrokerProc {
            child,
            bootstrap,
            http,
            controller,
            data,
            extra,
            launch,
            _tmp: Some(tmp),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: no clean shutdown, no flush.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
    }

    /// Starts again on the same data dir (new ports).
    pub fn restart(&mut self) {
        let (child, rx) = launch_with(&self.data, &self.extra, &self.launch);
        let (bootstrap, http, controller) = await_ready(&rx);
        self.child = child;
        self.bootstrap = bootstrap;
        self.http = http;
        self.controller = controller;
    }

    /// Starts again on the same data dir and the same ports, so connected clients reconnect.
    pub fn restart_same_ports(&mut self) {
        let mut extra = self.extra.clone();
        extra.push(format!(
            "listeners=PLAINTEXT://{},CONTROLLER://{}",
            self.bootstrap, self.controller
        ));
        extra.push(format!(
            "http.listener={}",
            self.http.trim_start_matches("http://")
        ));
        let (child, (bootstrap, http, controller)) = spawn(&self.data, &extra);
        self.child = child;
        self.bootstrap = bootstrap;
        self.http = http;
        self.controller = controller;
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// GET a path of the HTTP API, returning (status, body).
    pub fn http_get(&self, path: &str) -> (u16, String) {
        http_get(&self.http, path)
    }
}

impl Drop for BrokerProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

type Ready = (String, String, String);

fn spawn(data: &Path, extra: &[String]) -> (Child, Ready) {
    let (child, rx) = launch(data, extra);
    (child, await_ready(&rx))
}

/// Starts the process without waiting for its ready line (a cluster's nodes must all be
/// started before any can form a quorum and say it is ready).
fn launch(data: &Path, extra: &[String]) -> (Child, mpsc::Receiver<String>) {
    launch_with(data, extra, &Launch::default())
}

fn launch_with(data: &Path, extra: &[String], l: &Launch) -> (Child, mpsc::Receiver<String>) {
    let bin = env!("CARGO_BIN_EXE_rill-broker");
    let mut cmd = match l.wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.arg("--override")
        .arg("listeners=PLAINTEXT://127.0.0.1:0");
    cmd.arg("--override").arg("http.listener=127.0.0.1:0");
    cmd.arg("--override")
        .arg(format!("log.dirs={}", data.join("logs").display()));
    for e in extra {
        cmd.arg("--override").arg(e);
    }
    cmd.env(
        "RILL_LOG",
        l.log_level
            .clone()
            .or_else(|| std::env::var("RILL_LOG").ok())
            .unwrap_or_else(|| "warn".into()),
    );
    cmd.stdout(Stdio::piped());
    match &l.log_file {
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("broker log file");
            cmd.stderr(f);
        }
        None => {
            cmd.stderr(Stdio::inherit());
        }
    }
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

fn await_ready(rx: &mpsc::Receiver<String>) -> Ready {
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("broker did not print its ready line within 60 s");
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .map(str::to_string)
            .expect("ready line field")
    };
    (field("kafka="), field("http="), field("controller="))
}

/// Starts an `n`-node cluster (combined broker+controller nodes, ids 1..=n) on loopback.
pub fn start_cluster(n: usize, extra: &[&str]) -> Vec<BrokerProc> {
    start_cluster_with(n, extra, |_| Vec::new())
}

/// Like [`start_cluster`], with `per_node(i)` overrides added for node `i + 1` (after the
/// shared ones, so they win).
pub fn start_cluster_with(
    n: usize,
    extra: &[&str],
    per_node: impl Fn(usize) -> Vec<String>,
) -> Vec<BrokerProc> {
    // Controller ports must be known up front to list the voters: reserve them.
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    // Like `kafka-storage.sh format -t <id>` on every node: one cluster id for all.
    let cluster_id = format!(
        "rilltest{:014}",
        std::process::id() as u64 * 1000 + ports[0] as u64 % 1000
    );
    let voters = voters(&ports);
    let mut launched = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut e: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        e.push(format!("node.id={}", i + 1));
        e.push(format!("controller.quorum.voters={voters}"));
        e.push(format!("cluster.id={cluster_id}"));
        e.push(format!(
            "listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{port}"
        ));
        e.extend(per_node(i));
        let (child, rx) = launch(tmp.path(), &e);
        launched.push((tmp, e, child, rx));
    }
    launched
        .into_iter()
        .map(|(tmp, extra, child, rx)| {
            let (bootstrap, http, controller) = await_ready(&rx);
            BrokerProc {
                child,
                bootstrap,
                http,
                controller,
                data: tmp.path().to_path_buf(),
                extra,
                launch: Launch::default(),
                _tmp: Some(tmp),
            }
        })
        .collect()
}

/// A node launched but not yet waited for: one that becomes ready only once the cluster
/// lets it in (a new quorum voter).
#[allow(dead_code)] // not every test crate that includes this module uses it
pub struct Pending {
    child: Child,
    rx: mpsc::Receiver<String>,
    extra: Vec<String>,
    tmp: tempfile::TempDir,
}

#[allow(dead_code)]
impl Pending {
    /// Launches a broker with these overrides on a fresh data dir.
    pub fn launch(extra: &[String]) -> Pending {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (child, rx) = launch(tmp.path(), extra);
        Pending {
            child,
            rx,
            extra: extra.to_vec(),
            tmp,
        }
    }

    /// Waits for its ready line.
    pub fn ready(self) -> BrokerProc {
        let (bootstrap, http, controller) = await_ready(&self.rx);
        BrokerProc {
            child: self.child,
            bootstrap,
            http,
            controller,
            data: self.tmp.path().to_path_buf(),
            extra: self.extra,
            launch: Launch::default(),
            _tmp: Some(self.tmp),
        }
    }
}

#[allow(dead_code)]
impl BrokerProc {
    /// The value of one of the overrides it was started with.
    pub fn setting(&self, key: &str) -> Option<&str> {
        let prefix = format!("{key}=");
        self.extra
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix(prefix.as_str()))
    }
}

/// `controller.quorum.voters` for nodes 1..=n on 127.0.0.1 at these controller ports.
pub fn voters(ports: &[u16]) -> String {
    ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
        .collect::<Vec<_>>()
        .join(",")
}

/// Starts an `n`-node cluster whose nodes reach each other only through [`proxy::Network`],
/// so a test can cut one off. Each [`BrokerProc::bootstrap`] is that node's Kafka proxy (its
/// advertised address): test clients always get through, peers only while not cut off.
pub fn start_proxied_cluster(n: usize, extra: &[&str]) -> (Vec<BrokerProc>, proxy::Network) {
    let kafka_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let raft_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let kafka: Vec<proxy::Proxy> = kafka_ports
        .iter()
        .map(|p| proxy::Proxy::kafka(&format!("127.0.0.1:{p}")))
        .collect();
    let raft: Vec<Vec<Option<proxy::Proxy>>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    (i != j).then(|| {
                        proxy::Proxy::plain(&format!("127.0.0.1:{}", raft_ports[j]), "raft")
                    })
                })
                .collect()
        })
        .collect();
    let cluster_id = format!(
        "rilltest{:014}",
        std::process::id() as u64 * 1000 + raft_ports[0] as u64 % 1000
    );
    let mut launched = Vec::new();
    for i in 0..n {
        let tmp = tempfile::tempdir().expect("tempdir");
        let voters = (0..n)
            .map(|j| match &raft[i][j] {
                Some(p) => format!("{}@{}", j + 1, p.addr),
                None => format!("{}@127.0.0.1:{}", j + 1, raft_ports[j]),
            })
            .collect::<Vec<_>>()
            .join(",");
        let mut e: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        e.push(format!("node.id={}", i + 1));
        e.push(format!("controller.quorum.voters={voters}"));
        e.push(format!("cluster.id={cluster_id}"));
        e.push(format!(
            "listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
            kafka_ports[i], raft_ports[i]
        ));
        e.push(format!(
            "advertised.listeners=PLAINTEXT://{}",
            kafka[i].addr
        ));
        let (child, rx) = launch(tmp.path(), &e);
        launched.push((tmp, e, child, rx));
    }
    let nodes = launched
        .into_iter()
        .enumerate()
        .map(|(i, (tmp, extra, child, rx))| {
            let (_, http, controller) = await_ready(&rx);
            BrokerProc {
                child,
                bootstrap: kafka[i].addr.clone(),
                http,
                controller,
                data: tmp.path().to_path_buf(),
                extra,
                launch: Launch::default(),
                _tmp: Some(tmp),
            }
        })
        .collect();
    (nodes, proxy::Network { kafka, raft })
}

/// Minimal HTTP/1.1 GET over a TcpStream (keeps an HTTP client out of the dev-dependencies).
pub fn http_get(base: &str, path: &str) -> (u16, String) {
    http_get_with(base, path, &[])
}

/// `GET` with extra request headers.
pub fn http_get_with(base: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let (status, _, body) = http_exchange(base, path, headers);
    (status, body)
}

/// `GET` with extra request headers, returning (status, response head, body).
pub fn http_exchange(base: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let addr = base.trim_start_matches("http://");
    let s = std::net::TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    http_over(s, addr, path, headers)
}

/// One `GET` over an open stream (plain or TLS): (status, response head, body).
pub fn http_over(
    mut s: impl std::io::Read + std::io::Write,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let mut raw = Vec::new();
    // A peer that closes early (a TLS port sent plain HTTP) answers nothing: status 0. A TLS
    // peer may close without close_notify; what was read is the answer.
    if write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"
    )
    .is_ok()
    {
        let _ = s.read_to_end(&mut raw);
    }
    let resp = String::from_utf8_lossy(&raw).into_owned();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_string(), b.to_string()))
        .unwrap_or_default();
    // Chunked bodies: good enough to search in; tests use `contains`/JSON via dechunk.
    (status, head, dechunk(&body))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size_line, after)) = rest.split_once("\r\n") else {
            return body.to_string();
        };
        let Ok(size) = usize::from_str_radix(size_line.trim(), 16) else {
            return body.to_string();
        };
        if size == 0 {
            return out;
        }
        if after.len() < size {
            return body.to_string();
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
}

/// Polls `f` until it returns `Some`, or panics after `secs` seconds.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Raw Kafka frames over a TcpStream, encoded and decoded with `kafka-protocol`.
pub mod wire {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    use super::BrokerProc;

    pub fn connect(b: &BrokerProc) -> TcpStream {
        let s = TcpStream::connect(&b.bootstrap).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    }

    pub fn frame<R: Encodable>(key: ApiKey, version: i16, corr: i32, req: &R) -> Vec<u8> {
        let mut buf = BytesMut::new();
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(corr)
            .with_client_id(Some(StrBytes::from_static_str("bad-input-test")));
        header
            .encode(&mut buf, key.request_header_version(version))
            .expect("header");
        req.encode(&mut buf, version).expect("body");
        let mut out = (buf.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&buf);
        out
    }

    /// Reads one response frame; `None` when the broker closed the connection.
    pub fn read_frame(s: &mut TcpStream) -> Option<Bytes> {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).ok()?;
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        s.read_exact(&mut body).ok()?;
        Some(Bytes::from(body))
    }

    pub fn response<R: Decodable>(s: &mut TcpStream, key: ApiKey, version: i16, corr: i32) -> R {
        let mut b = read_frame(s).expect("a response, not a closed connection");
        let h = ResponseHeader::decode(&mut b, key.response_header_version(version))
            .expect("response header");
        assert_eq!(h.correlation_id, corr);
        R::decode(&mut b, version).expect("response body")
    }

    /// One magic-v2 batch of `n` small keyed records, encoded by `kafka-protocol`.
    pub fn batch(n: usize) -> BytesMut {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: -1,
                timestamp: 1_700_000_000_000,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("v{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encode");
        buf
    }

    /// Sends `req` and decodes its response.
    pub fn call<Q: Encodable, R: Decodable>(
        s: &mut TcpStream,
        key: ApiKey,
        version: i16,
        corr: i32,
        req: &Q,
    ) -> R {
        s.write_all(&frame(key, version, corr, req)).expect("write");
        response(s, key, version, corr)
    }
}
