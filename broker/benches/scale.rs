//! How one node scales with the partitions it holds (a report, not a timed test): under a
//! file limit of 20,000 it grows in steps (10k, 25k, 50k, 100k partitions, topics of 100
//! partitions created 50 per CreateTopics), and at each step measures the time to create the
//! last 10,000, Metadata for all topics and for one topic (p50/p99), the resident memory, a
//! clean restart to ready and a restart after kill -9 to ready (`/readyz`, then every
//! partition led). With `RILL_BASELINE_BIN` set, an older build runs first in the same run,
//! through its own steps (`RILL_BASELINE_STEPS`, default `1000,2000,4000,6000,10000`: it
//! stopped near 6,000 partitions under this limit), so the tables sit side by side; a binary
//! that cannot grow further (refused or timed out) ends its table with the reason.
//!
//! `cargo bench -p rill-broker --bench scale` writes `target/bench/scale.md`.
//!
//! Then three nodes with RF=3 (`RILL_SCALE_CLUSTER` partitions, default 30,000, 0 skips it):
//! kill -9 of the active controller until every partition is led by a live node, and its
//! restart until it is back in every ISR.
//!
//! Environment: `RILL_SCALE_STEPS` (default `10000,25000,50000,100000`), `RILL_SCALE_NOFILE`
//! (default 20000), `RILL_BROKER_BIN` (default: the release `rill-broker` cargo built for
//! the bench), `RILL_BASELINE_BIN`, `RILL_SCALE_RESTARTS=0` to skip the restarts.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Partitions per topic.
const PER_TOPIC: i32 = 100;
/// Topics per CreateTopics request.
const TOPICS_PER_REQUEST: usize = 50;
/// Partitions whose creation time is reported at each step.
const TIMED_BLOCK: usize = 10_000;
/// Metadata requests per percentile measurement (all topics, one topic).
const METADATA_SAMPLES_ALL: usize = 30;
const METADATA_SAMPLES_ONE: usize = 300;
/// Longest a step's CreateTopics request may take before the binary is declared stuck.
const CREATE_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest a restart may take.
const RESTART_TIMEOUT: Duration = Duration::from_secs(600);

fn progress(msg: &str) {
    eprintln!("[scale] {msg}");
}

fn main() {
    let steps: Vec<usize> = std::env::var("RILL_SCALE_STEPS")
        .unwrap_or_else(|_| "10000,25000,50000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let nofile: u64 = std::env::var("RILL_SCALE_NOFILE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let restarts = std::env::var("RILL_SCALE_RESTARTS").map_or(true, |v| v != "0");
    let new_bin = std::env::var("RILL_BROKER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_BIN_EXE_rill-broker")));
    let mut runs = Vec::new();
    if let Ok(base) = std::env::var("RILL_BASELINE_BIN") {
        // The old node stopped near 6,000 partitions under this file limit: its own steps.
        let base_steps: Vec<usize> = std::env::var("RILL_BASELINE_STEPS")
            .unwrap_or_else(|_| "1000,2000,4000,6000,10000".into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        runs.push(("baseline", PathBuf::from(base), base_steps));
    }
    runs.push(("this build", new_bin, steps));
    let target = target_dir().join("bench");
    std::fs::create_dir_all(&target).expect("target/bench");

    let mut report = String::new();
    let _ = writeln!(report, "# Scale: partitions on one node\n");
    let _ = writeln!(
        report,
        "Revision {}, {} cores, file limit {nofile}, topics of {PER_TOPIC} partitions created {TOPICS_PER_REQUEST} per request, RF=1.\n",
        sh("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "?".into()),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    for (label, bin, steps) in runs {
        if steps.is_empty() {
            continue;
        }
        progress(&format!("{label}: {}", bin.display()));
        let data = target.join(format!("scale-{}", label.replace(' ', "-")));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).expect("data dir");
        let rows = grow(&bin, &data, nofile, &steps, restarts);
        let _ = writeln!(report, "## {label} (`{}`)\n", bin.display());
        let _ = writeln!(
            report,
            "| partitions | create the last {TIMED_BLOCK} (or the step) | Metadata all p50 / p99 | Metadata one topic p50 / p99 | RSS | clean restart to ready | kill -9 restart to ready |"
        );
        let _ = writeln!(report, "|---|---|---|---|---|---|---|");
        for r in &rows {
            let _ = writeln!(report, "{}", r.line());
        }
        let _ = writeln!(report);
        let _ = std::fs::remove_dir_all(&data);
    }
    let cluster: usize = std::env::var("RILL_SCALE_CLUSTER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    if cluster > 0 {
        let _ = writeln!(
            report,
            "## Three nodes, RF=3, {cluster} partitions (this build)\n"
        );
        let _ = writeln!(report, "{}\n", failover(cluster));
    }
    let out = target.join("scale.md");
    std::fs::write(&out, &report).expect("write report");
    println!("{report}");
    progress(&format!("report written to {}", out.display()));
}

/// One line of the table (or where the binary stopped).
enum Row {
    Step {
        partitions: usize,
        /// How many of the step's partitions were timed, and how long they took.
        create: (usize, Duration),
        all: (Duration, Duration),
        one: (Duration, Duration),
        rss_mib: f64,
        clean: Option<Duration>,
        killed: Option<Duration>,
    },
    Stopped {
        partitions: usize,
        why: String,
    },
}

impl Row {
    fn line(&self) -> String {
        let ms = |d: &Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
        let s =
            |d: &Option<Duration>| d.map_or("-".into(), |d| format!("{:.1} s", d.as_secs_f64()));
        match self {
            Row::Step {
                partitions,
                create,
                all,
                one,
                rss_mib,
                clean,
                killed,
            } => format!(
                "| {partitions} | {:.1} s for {} | {} / {} | {} / {} | {rss_mib:.0} MiB | {} | {} |",
                create.1.as_secs_f64(),
                create.0,
                ms(&all.0),
                ms(&all.1),
                ms(&one.0),
                ms(&one.1),
                s(clean),
                s(killed),
            ),
            Row::Stopped { partitions, why } => {
                format!("| stopped at {partitions} | {why} | | | | | |")
            }
        }
    }
}

/// Grows one node through `steps`, measuring at each.
fn grow(bin: &Path, data: &Path, nofile: u64, steps: &[usize], restarts: bool) -> Vec<Row> {
    let mut broker = Broker::start(bin, data, nofile, None);
    let mut rows = Vec::new();
    let mut created = 0usize;
    let mut topic = 0usize;
    for &step in steps {
        let mut block: Option<(usize, Instant)> = None;
        while created < step {
            if block.is_none() && step - created <= TIMED_BLOCK {
                block = Some((step - created, Instant::now()));
            }
            let n = ((step - created) / PER_TOPIC as usize).clamp(1, TOPICS_PER_REQUEST);
            let names: Vec<String> = (topic..topic + n).map(|t| format!("s-{t:06}")).collect();
            if let Err((ok, why)) = broker.conn.create(&names, 1) {
                rows.push(Row::Stopped {
                    partitions: created + ok * PER_TOPIC as usize,
                    why,
                });
                return rows;
            }
            topic += n;
            created += n * PER_TOPIC as usize;
        }
        let block_time = block.map_or((0, Duration::ZERO), |(n, t)| (n, t.elapsed()));
        progress(&format!(
            "{created} partitions; the last {} in {:?}",
            block_time.0, block_time.1
        ));
        let all = broker.conn.metadata_percentiles(None, METADATA_SAMPLES_ALL);
        let one = broker
            .conn
            .metadata_percentiles(Some("s-000000"), METADATA_SAMPLES_ONE);
        let rss_mib = status_kb(broker.pid(), "VmRSS") as f64 / 1024.0;
        let (clean, killed) = if restarts {
            broker.stop();
            let started = Instant::now();
            broker = Broker::start(bin, data, nofile, Some(created));
            let clean = started.elapsed();
            broker.kill9();
            let started = Instant::now();
            broker = Broker::start(bin, data, nofile, Some(created));
            let killed = started.elapsed();
            progress(&format!(
                "restarts: clean {clean:?}, after kill -9 {killed:?}"
            ));
            (Some(clean), Some(killed))
        } else {
            (None, None)
        };
        rows.push(Row::Step {
            partitions: created,
            create: block_time,
            all,
            one,
            rss_mib,
            clean,
            killed,
        });
    }
    broker.stop();
    rows
}

/// Three nodes, RF=3, `partitions` partitions: the time to create them and to get every
/// replica in sync, then kill -9 of the active controller until every partition is led by a
/// live node, then its restart until it is back in every ISR.
fn failover(partitions: usize) -> String {
    let mut nodes = common::start_cluster(3, &[]);
    let mut conn = Conn::connect(&nodes[0].bootstrap);
    let started = Instant::now();
    let mut topic = 0usize;
    while topic * (PER_TOPIC as usize) < partitions {
        let n = (partitions / PER_TOPIC as usize - topic).clamp(1, TOPICS_PER_REQUEST);
        let names: Vec<String> = (topic..topic + n).map(|t| format!("f-{t:06}")).collect();
        if let Err((_, why)) = conn.create(&names, 3) {
            return format!("stopped after {} topics: {why}", topic);
        }
        topic += n;
    }
    let created = started.elapsed();
    let partitions = topic * PER_TOPIC as usize;
    let in_sync = |conn: &mut Conn, id: i32| -> usize {
        conn.metadata(None).map_or(0, |m| {
            m.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .filter(|p| p.isr_nodes.iter().any(|b| b.0 == id))
                .count()
        })
    };
    let until = |what: &str, f: &mut dyn FnMut() -> bool| -> Duration {
        let t = Instant::now();
        while !f() {
            assert!(
                t.elapsed() < RESTART_TIMEOUT,
                "{what} not within {RESTART_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        t.elapsed()
    };
    let synced = until("every replica in sync", &mut || {
        (1..=3).all(|id| in_sync(&mut conn, id) >= partitions)
    });
    progress(&format!(
        "{partitions} partitions RF=3 created in {created:?}, in sync {synced:?} later"
    ));
    let controller = conn.metadata(None).map_or(1, |m| m.controller_id.0);
    let victim = (controller - 1) as usize;
    let survivor = (victim + 1) % 3;
    nodes[victim].kill9();
    let mut conn = Conn::connect(&nodes[survivor].bootstrap);
    let failover = until("every partition led by a live node", &mut || {
        conn.metadata(None).is_ok_and(|m| {
            m.controller_id.0 != controller
                && m.topics.iter().flat_map(|t| &t.partitions).count() >= partitions
                && m.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .all(|p| p.leader_id.0 >= 0 && p.leader_id.0 != controller)
        })
    });
    progress(&format!(
        "kill -9 of the active controller (node {controller}): every partition led in {failover:?}"
    ));
    nodes[victim].restart_same_ports();
    let back = until("the restarted node in every ISR", &mut || {
        in_sync(&mut conn, controller) >= partitions
    });
    progress(&format!("node {controller} back in every ISR in {back:?}"));
    format!(
        "| what | time |\n|---|---|\n| create {partitions} partitions RF=3 ({} topics, {TOPICS_PER_REQUEST} per request) | {:.1} s |\n| then every replica in sync | {:.1} s |\n| kill -9 of the active controller → every partition led by a live node | {:.2} s |\n| its restart → back in every ISR | {:.1} s |",
        topic,
        created.as_secs_f64(),
        synced.as_secs_f64(),
        failover.as_secs_f64(),
        back.as_secs_f64()
    )
}

/// A broker process and a connection to it.
struct Broker {
    child: Child,
    http: String,
    conn: Conn,
}

impl Broker {
    /// Starts the broker under `prlimit --nofile`, waits for its ready line and, when
    /// `partitions` is given, until `/readyz` answers 200 and Metadata shows that many
    /// partitions all led.
    fn start(bin: &Path, data: &Path, nofile: u64, partitions: Option<usize>) -> Broker {
        let started = Instant::now();
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={nofile}")).arg("--").arg(bin);
        for o in [
            "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
            "http.listener=127.0.0.1:0".to_string(),
            format!("log.dirs={}", data.join("logs").display()),
            format!("metadata.log.dir={}", data.join("meta").display()),
        ] {
            cmd.arg("--override").arg(o);
        }
        cmd.env(
            "RILL_LOG",
            std::env::var("RILL_LOG").unwrap_or_else(|_| "warn".into()),
        );
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("rill-broker ready:") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx
            .recv_timeout(RESTART_TIMEOUT)
            .unwrap_or_else(|_| panic!("no ready line within {RESTART_TIMEOUT:?}"));
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .map(str::to_string)
                .unwrap_or_else(|| panic!("ready line without {k}: {line}"))
        };
        let conn = Conn::connect(&field("kafka="));
        let mut b = Broker {
            child,
            http: field("http="),
            conn,
        };
        if let Some(want) = partitions {
            loop {
                assert!(
                    started.elapsed() < RESTART_TIMEOUT,
                    "not ready within {RESTART_TIMEOUT:?}"
                );
                if http_status(&b.http, "/readyz") == Some(200) && b.conn.led_partitions() >= want {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        b
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + RESTART_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Kafka connection to one node, answering one request at a time.
struct Conn {
    stream: TcpStream,
    corr: i32,
}

impl Conn {
    fn connect(addr: &str) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(CREATE_TIMEOUT))
            .expect("timeout");
        Conn { stream, corr: 0 }
    }

    fn call<Q: Encodable, R: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Q,
    ) -> Result<R, String> {
        self.corr += 1;
        let mut body = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.corr)
            .with_client_id(Some(StrBytes::from_static_str("scale-bench")))
            .encode(&mut body, key.request_header_version(version))
            .map_err(|e| e.to_string())?;
        req.encode(&mut body, version).map_err(|e| e.to_string())?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        self.stream.write_all(&frame).map_err(|e| e.to_string())?;
        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream
            .read_exact(&mut buf)
            .map_err(|e| e.to_string())?;
        let mut b = Bytes::from(buf);
        ResponseHeader::decode(&mut b, key.response_header_version(version))
            .map_err(|e| e.to_string())?;
        R::decode(&mut b, version).map_err(|e| e.to_string())
    }

    /// CreateTopics for `names`, `PER_TOPIC` partitions each, replication factor `rf`. On a
    /// refusal, how many of the topics were created and why the first other one was not.
    fn create(&mut self, names: &[String], rf: i16) -> Result<(), (usize, String)> {
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(CREATE_TIMEOUT.as_millis() as i32)
            .with_topics(
                names
                    .iter()
                    .map(|n| {
                        create_topics_request::CreatableTopic::default()
                            .with_name(TopicName(StrBytes::from_string(n.clone())))
                            .with_num_partitions(PER_TOPIC)
                            .with_replication_factor(rf)
                    })
                    .collect(),
            );
        let r: CreateTopicsResponse = self
            .call(ApiKey::CreateTopics, 7, &req)
            .map_err(|e| (0, e))?;
        let ok = r.topics.iter().filter(|t| t.error_code == 0).count();
        match r.topics.iter().find(|t| t.error_code != 0) {
            Some(t) => Err((
                ok,
                format!(
                    "CreateTopics error {}: {}",
                    t.error_code,
                    t.error_message.as_deref().unwrap_or("")
                ),
            )),
            None => Ok(()),
        }
    }

    fn metadata(&mut self, topic: Option<&str>) -> Result<MetadataResponse, String> {
        let req = MetadataRequest::default().with_topics(topic.map(|t| {
            vec![metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))]
        }));
        self.call(ApiKey::Metadata, 12, &req)
    }

    /// Partitions with a leader in a Metadata for every topic.
    fn led_partitions(&mut self) -> usize {
        self.metadata(None).map_or(0, |m| {
            m.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .filter(|p| p.error_code == 0 && p.leader_id.0 >= 0)
                .count()
        })
    }

    fn metadata_percentiles(&mut self, topic: Option<&str>, n: usize) -> (Duration, Duration) {
        let mut times: Vec<Duration> = (0..n)
            .map(|_| {
                let t = Instant::now();
                let r = self.metadata(topic).expect("metadata");
                let elapsed = t.elapsed();
                std::hint::black_box(r.topics.len());
                elapsed
            })
            .collect();
        times.sort();
        let at =
            |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
        (at(0.50), at(0.99))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

/// Status of a GET on the HTTP API.
fn http_status(base: &str, path: &str) -> Option<u16> {
    let host = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A field of `/proc/<pid>/status`, in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn sh(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `target/` (or `$CARGO_TARGET_DIR`): the bench executable lives in `<target>/release/deps/`.
fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("bench executable");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .expect("bench executable under <target>/<profile>/deps/")
}
