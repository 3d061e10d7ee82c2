//! Records the fuzz corpus (`broker/tests/fuzz-corpus/`): real request frames, and the
//! broker's responses to them, from clients nobody here wrote (librdkafka through the
//! `rdkafka` crate, kafka-python) and from Rill's own client, each doing its ordinary work
//! (admin calls, producing with every codec, consuming in a group, committing).
//!
//! ```sh
//! cargo run -p rill-broker --example record_fuzz_corpus   # needs python3 with kafka-python
//! ```
//!
//! A broker runs in-process, advertising a tapping proxy in front of it, so every connection a
//! client opens goes through the tap. Frames above 32 KiB are left out (a corpus of mutation
//! seeds, not a capture), and at most a few frames per client, API and version are kept.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Frames larger than this are not kept.
const MAX_FRAME: usize = 32 << 10;
/// At most this many frames per client, API and version.
const PER_KIND: usize = 3;

/// Which client sent which kind of request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Kind {
    client: String,
    api: i16,
    version: i16,
}

/// A request frame and the response to it, if it was small enough to keep.
struct Recorded {
    request: Vec<u8>,
    response: Option<Vec<u8>>,
}

/// What the tap saw, shared by its connection threads.
#[derive(Default)]
struct Tape {
    client: String,
    kept: BTreeMap<Kind, Vec<Recorded>>,
}

/// Requests in flight on one connection, by correlation id.
type Pending = Arc<Mutex<HashMap<i32, (Kind, Vec<u8>)>>>;

fn main() {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus");
    let tape = Arc::new(Mutex::new(Tape::default()));
    let tap = TcpListener::bind("127.0.0.1:0").expect("bind tap");
    let tap_addr = tap.local_addr().expect("addr");
    let data = tempfile::tempdir().expect("tmp");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let config = rill_broker::config::BrokerConfig::load(
        None,
        &[
            "listeners=PLAINTEXT://127.0.0.1:0".into(),
            format!("advertised.listeners=PLAINTEXT://{tap_addr}"),
            "http.listener=127.0.0.1:0".into(),
            format!("log.dirs={}", data.path().display()),
            "offsets.topic.num.partitions=3".into(),
            "group.initial.rebalance.delay.ms=0".into(),
        ],
    )
    .expect("config");
    let running = rt
        .block_on(rill_broker::server::start(config))
        .expect("broker starts");
    let upstream = running.kafka_addr.to_string();
    {
        let tape = tape.clone();
        std::thread::spawn(move || {
            for c in tap.incoming().flatten() {
                let (tape, upstream) = (tape.clone(), upstream.clone());
                std::thread::spawn(move || proxy(c, &upstream, &tape));
            }
        });
    }
    let bootstrap = tap_addr.to_string();

    set_client(&tape, "librdkafka");
    rt.block_on(librdkafka(&bootstrap));
    set_client(&tape, "rill-client");
    rt.block_on(rill_client(&bootstrap));
    set_client(&tape, "kafka-python");
    kafka_python(&bootstrap);

    std::fs::create_dir_all(&out).expect("corpus dir");
    for e in std::fs::read_dir(&out).expect("read corpus dir").flatten() {
        let _ = std::fs::remove_file(e.path());
    }
    let t = tape.lock().expect("tape");
    let mut n = 0;
    for (k, frames) in &t.kept {
        for (i, r) in frames.iter().enumerate() {
            let base: PathBuf =
                out.join(format!("{}-{:02}-v{:02}-{i}", k.client, k.api, k.version));
            std::fs::write(base.with_extension("req"), &r.request).expect("write");
            if let Some(resp) = &r.response {
                std::fs::write(base.with_extension("resp"), resp).expect("write");
            }
            n += 1;
        }
    }
    eprintln!("{n} exchanges recorded in {}", out.display());
    rt.block_on(running.shutdown());
}

fn set_client(tape: &Mutex<Tape>, name: &str) {
    tape.lock().expect("tape").client = name.to_string();
}

/// Forwards one connection both ways, keeping request frames and the responses that match
/// them by correlation id.
fn proxy(client: TcpStream, upstream: &str, tape: &Arc<Mutex<Tape>>) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let pending: Pending = Default::default();
    let (mut c_read, mut s_write) = (
        client.try_clone().expect("clone"),
        server.try_clone().expect("clone"),
    );
    let (mut s_read, mut c_write) = (server, client);
    let up = {
        let (tape, pending) = (tape.clone(), pending.clone());
        std::thread::spawn(move || {
            while let Some(frame) = read_frame(&mut c_read) {
                if frame.len() >= 8 {
                    let key = i16::from_be_bytes([frame[0], frame[1]]);
                    let version = i16::from_be_bytes([frame[2], frame[3]]);
                    let corr = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                    let client = tape.lock().expect("tape").client.clone();
                    let kind = Kind {
                        client,
                        api: key,
                        version,
                    };
                    pending
                        .lock()
                        .expect("pending")
                        .insert(corr, (kind, frame.clone()));
                }
                if write_frame(&mut s_write, &frame).is_err() {
                    break;
                }
            }
            let _ = s_write.shutdown(std::net::Shutdown::Write);
        })
    };
    while let Some(frame) = read_frame(&mut s_read) {
        if frame.len() >= 4 {
            let corr = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
            let done = pending.lock().expect("pending").remove(&corr);
            if let Some((kind, request)) = done {
                if request.len() <= MAX_FRAME {
                    let mut t = tape.lock().expect("tape");
                    let kept = t.kept.entry(kind).or_default();
                    if kept.len() < PER_KIND {
                        let response = (frame.len() <= MAX_FRAME).then(|| frame.clone());
                        kept.push(Recorded { request, response });
                    }
                }
            }
        }
        if write_frame(&mut c_write, &frame).is_err() {
            break;
        }
    }
    let _ = up.join();
}

fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let n = i32::from_be_bytes(len);
    let mut buf = vec![0u8; usize::try_from(n).ok()?];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

fn write_frame(s: &mut TcpStream, frame: &[u8]) -> std::io::Result<()> {
    s.write_all(&(frame.len() as i32).to_be_bytes())?;
    s.write_all(frame)
}

async fn librdkafka(bootstrap: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let topics = [
        NewTopic::new("fuzz-a", 2, TopicReplication::Fixed(1)).set("retention.ms", "3600000"),
        NewTopic::new("fuzz-c", 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact"),
    ];
    let _ = admin.create_topics(&topics, &opts).await;
    let _ = admin
        .describe_configs(
            &[
                ResourceSpecifier::Topic("fuzz-a"),
                ResourceSpecifier::Broker(1),
            ],
            &opts,
        )
        .await;
    let _ = admin
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic("fuzz-a")).set("retention.ms", "7200000")],
            &opts,
        )
        .await;
    let _ = admin
        .create_partitions(&[NewPartitions::new("fuzz-a", 3)], &opts)
        .await;
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let p: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("compression.codec", codec)
            .set(
                "enable.idempotence",
                if codec == "zstd" { "true" } else { "false" },
            )
            .set("linger.ms", "5")
            .create()
            .expect("producer");
        for i in 0..20 {
            let key = format!("k{i}");
            let value = format!("{codec}-value-{i}-{}", "x".repeat(i * 7));
            let _ = p
                .send(
                    FutureRecord::to(if i % 2 == 0 { "fuzz-a" } else { "fuzz-c" })
                        .key(&key)
                        .payload(&value),
                    Duration::from_secs(10),
                )
                .await;
        }
    }
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "fuzz-group")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    c.subscribe(&["fuzz-a", "fuzz-c"]).expect("subscribe");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut got = 0;
    while got < 20 && std::time::Instant::now() < deadline {
        if let Some(Ok(_)) = c.poll(Duration::from_millis(200)) {
            got += 1;
        }
    }
    let _ = c.commit_consumer_state(CommitMode::Sync);
    let _ = c.committed(Duration::from_secs(5));
    let _ = c.fetch_watermarks("fuzz-a", 0, Duration::from_secs(5));
    let _ = c.offsets_for_timestamp(1_000, Duration::from_secs(5));
    c.unsubscribe();
    drop(c);
    let _ = admin.delete_groups(&["fuzz-group"], &opts).await;
    let _ = admin
        .delete_records(
            &{
                let mut l = rdkafka::TopicPartitionList::new();
                let _ = l.add_partition_offset("fuzz-a", 0, rdkafka::Offset::Offset(1));
                l
            },
            &opts,
        )
        .await;
}

async fn rill_client(bootstrap: &str) {
    use rill_client::{Cluster, ConnectionConfig};
    let Ok(c) = Cluster::connect(bootstrap, ConnectionConfig::default()).await else {
        return;
    };
    let _ = c.list_topics().await;
    let _ = c.list_groups().await;
    let _ = c.describe_group("fuzz-group").await;
    let _ = c.describe_cluster(true).await;
    let _ = c.describe_log_dirs(1).await;
    let _ = c.list_partition_reassignments(None).await;
    let _ = c.describe_broker_configs(1).await;
    let _ = c
        .elect_leaders(rill_client::ElectionKind::Preferred, None)
        .await;
    let _ = c.describe_topic_configs("fuzz-a").await;
    let _ = c
        .alter_topic_configs(
            "fuzz-a",
            &[rill_client::ConfigOp::Set(
                "retention.ms".into(),
                "5000000".into(),
            )],
            true,
        )
        .await;
    let tp = rill_client::TopicPartition::new("fuzz-a", 0);
    let _ = c
        .alter_partition_reassignments(&[(tp, Some(vec![1]))])
        .await;
    let _ = c.delete_topics(&["fuzz-py".to_string()]).await;
}

fn kafka_python(bootstrap: &str) {
    let script = r#"
import sys
from kafka import KafkaProducer, KafkaConsumer, KafkaAdminClient
from kafka.admin import NewTopic
b = sys.argv[1]
a = KafkaAdminClient(bootstrap_servers=b)
try:
    a.create_topics([NewTopic("fuzz-py", 1, 1)])
except Exception:
    pass
a.describe_consumer_groups(["fuzz-group"])
a.list_consumer_groups()
p = KafkaProducer(bootstrap_servers=b, compression_type="gzip")
for i in range(10):
    p.send("fuzz-py", key=b"k%d" % i, value=b"v%d" % i)
p.flush()
c = KafkaConsumer("fuzz-py", bootstrap_servers=b, group_id="fuzz-py-group", auto_offset_reset="earliest", consumer_timeout_ms=5000)
for _ in c:
    pass
c.commit()
c.close()
"#;
    match std::process::Command::new("python3")
        .args(["-c", script, bootstrap])
        .status()
    {
        Ok(s) if s.success() => {}
        other => eprintln!(
            "kafka-python client did not finish cleanly ({other:?}); its frames so far are kept"
        ),
    }
}
