//! Partition reassignment (KIP-455) across real `rill-broker` processes: a topic with data on
//! brokers {1,2} moves to {2,3} under a replication throttle, reporting progress on the
//! leader's HTTP API while it copies at no more than the throttle, and ends with every record
//! on the new replicas; a cancel reverts to the original replicas; bad requests get Kafka's
//! error codes.

mod common;

use std::time::{Duration, Instant};

use common::{start_cluster, wait_for, BrokerProc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rill_client::{ClientError, Cluster, ConfigOp, ConnectionConfig, TopicPartition};
use serde_json::Value;

const FAST: &[&str] = &[
    "broker.session.timeout.ms=4000",
    "broker.heartbeat.interval.ms=200",
    "replica.lag.time.max.ms=10000",
];

/// Value size of the records written: 1 KiB, so a few thousand make megabytes to copy.
const VALUE: usize = 1024;

fn bootstrap(nodes: &[BrokerProc]) -> String {
    nodes
        .iter()
        .map(|n| n.bootstrap.clone())
        .collect::<Vec<_>>()
        .join(",")
}

async fn cluster(nodes: &[BrokerProc]) -> Cluster {
    let config = ConnectionConfig {
        client_id: "reassign-test".into(),
        request_timeout: Duration::from_secs(15),
        ..ConnectionConfig::default()
    };
    Cluster::connect(&bootstrap(nodes), config)
        .await
        .expect("connect")
}

async fn create_topic(bootstrap: &str, name: &str, assignment: &[&[i32]]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin");
    let topic = NewTopic::new(name, 1, TopicReplication::Variable(assignment));
    let r = admin
        .create_topics(
            [&topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("rpc");
    r[0].clone().expect("topic created");
}

/// Writes `n` numbered records of [`VALUE`] bytes with acks=all.
async fn produce(bootstrap: &str, topic: &str, n: usize) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "5")
        // Small batches, so the copy advances in small steps the rate can be measured on.
        .set("batch.size", "16384")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("producer");
    let futs: Vec<_> = (0..n)
        .map(|i| {
            let mut v = format!("{i:08}").into_bytes();
            v.resize(VALUE, b'x');
            p.send_result(FutureRecord::<(), _>::to(topic).partition(0).payload(&v))
                .map_err(|(e, _)| e)
                .expect("enqueued")
        })
        .collect();
    for (i, f) in futs.into_iter().enumerate() {
        f.await
            .expect("not cancelled")
            .unwrap_or_else(|(e, _)| panic!("record {i} not acknowledged: {e}"));
    }
}

/// Reads `topic`-0 from the start through `bootstrap` and returns the record numbers.
fn consume_all(bootstrap: &str, topic: &str, expect: usize) -> Vec<usize> {
    let c = common::checks::reader_from_start(bootstrap, topic);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < expect && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let v = m.payload().expect("payload");
            let n: usize = std::str::from_utf8(&v[..8])
                .expect("utf8")
                .parse()
                .expect("number");
            seen.push(n);
        }
    }
    seen
}

/// (replicas, isr, leader) of `topic`-0 from fresh metadata.
async fn placement(c: &mut Cluster, topic: &str) -> (Vec<i32>, Vec<i32>, i32) {
    let md = c
        .describe_topics(&[topic.to_string()])
        .await
        .expect("metadata");
    let t = md.into_iter().next().expect("topic");
    let p = t.partitions.into_iter().next().expect("partition");
    (p.replicas, p.isr, p.leader)
}

fn http_json(node: &BrokerProc, path: &str) -> Option<Value> {
    let (status, body) = node.http_get(path);
    (status == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

/// Whether a node hosts `topic`-0 (its HTTP partitions view), and its log end offset.
fn hosted_leo(node: &BrokerProc, topic: &str) -> Option<i64> {
    let v = http_json(node, "/api/v1/partitions")?;
    v.as_array()?
        .iter()
        .find(|p| p["topic"] == topic && p["partition"] == 0)
        .and_then(|p| p["log_end_offset"].as_i64())
}

/// Sets the follower and leader throttles the way `kafka-reassign-partitions.sh --throttle`
/// does: rates on every broker, the moving replicas listed on the topic.
async fn throttle(c: &mut Cluster, topic: &str, rate: u64, leaders: &str, followers: &str) {
    for b in 1..=3 {
        c.alter_broker_configs(
            Some(b),
            &[
                ConfigOp::Set("leader.replication.throttled.rate".into(), rate.to_string()),
                ConfigOp::Set(
                    "follower.replication.throttled.rate".into(),
                    rate.to_string(),
                ),
            ],
        )
        .await
        .expect("broker throttle rates");
    }
    // Each broker applies the committed change on its own; the copy must not start before
    // every one of them throttles it.
    for b in 1..=3 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let cfg = c.describe_broker_configs(b).await.expect("broker configs");
            let set = |name: &str| {
                cfg.iter()
                    .any(|e| e.name == name && e.value.as_deref() == Some(&*rate.to_string()))
            };
            if set("leader.replication.throttled.rate")
                && set("follower.replication.throttled.rate")
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "broker {b} never saw the throttle rates"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    c.alter_topic_configs(
        topic,
        &[
            ConfigOp::Set(
                "leader.replication.throttled.replicas".into(),
                leaders.into(),
            ),
            ConfigOp::Set(
                "follower.replication.throttled.replicas".into(),
                followers.into(),
            ),
        ],
        false,
    )
    .await
    .expect("topic throttled replicas");
}

fn code(r: &Result<(), ClientError>) -> i16 {
    match r {
        Ok(()) => 0,
        Err(ClientError::Kafka { code, .. }) => *code,
        Err(e) => panic!("not a Kafka error: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_move_reports_progress_and_keeps_every_record() {
    const N: usize = 1500;
    const RATE: u64 = 300_000;
    let nodes = start_cluster(3, FAST);
    let all = bootstrap(&nodes);
    create_topic(&all, "moving", &[&[1, 2]]).await;
    produce(&all, "moving", N).await;
    let mut c = cluster(&nodes).await;
    wait_for(30, "both replicas in sync", || {
        (hosted_leo(&nodes[1], "moving") == Some(N as i64)).then_some(())
    });
    throttle(&mut c, "moving", RATE, "0:1,0:2", "0:3").await;
    // The rate is readable where it was set (DescribeConfigs on the broker).
    let cfg = c.describe_broker_configs(3).await.expect("broker configs");
    let rate = cfg
        .iter()
        .find(|e| e.name == "follower.replication.throttled.rate")
        .expect("throttle rate described");
    assert_eq!(rate.value.as_deref(), Some("300000"));
    assert_eq!(rate.source.name(), "DYNAMIC_BROKER_CONFIG");

    let tp = TopicPartition::new("moving", 0);
    let started = Instant::now();
    let r = c
        .alter_partition_reassignments(&[(tp.clone(), Some(vec![2, 3]))])
        .await
        .expect("rpc");
    assert_eq!(code(&r[0].1), 0, "{:?}", r[0].1);
    let listed = c.list_partition_reassignments(None).await.expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].replicas, vec![2, 3, 1]);
    assert_eq!(
        (listed[0].adding.clone(), listed[0].removing.clone()),
        (vec![3], vec![1])
    );

    // Poll the leader's progress until the reassignment is gone from the image.
    let mut samples: Vec<(Duration, u64, u64)> = Vec::new();
    let (mut rated, mut lag_seen) = (false, false);
    let done = wait_for(120, "the reassignment to complete", || {
        let v = http_json(&nodes[0], "/api/v1/reassignments")?;
        let list = v["reassignments"].as_array()?;
        let Some(r) = list.first() else {
            return Some(started.elapsed());
        };
        if let Some(p) = r["progress"].as_array().and_then(|p| p.first()) {
            let copied = p["bytes_copied"].as_u64().unwrap_or(0);
            let total = p["bytes_total"].as_u64().unwrap_or(0);
            assert_eq!(p["replica"], 3);
            samples.push((started.elapsed(), copied, total));
            rated |= p["rate_bytes_per_sec"].as_f64().is_some_and(|r| r > 0.0)
                && p["eta_seconds"].as_f64().is_some();
            if !lag_seen && copied > 0 && copied < total {
                // The partitions view shows the same follower behind, outside the ISR.
                let parts = http_json(&nodes[0], "/api/v1/partitions")?;
                let part = parts.as_array()?.iter().find(|p| p["topic"] == "moving")?;
                lag_seen = part["followers"].as_array()?.iter().any(|f| {
                    f["replica"] == 3
                        && f["in_isr"] == false
                        && f["lag_messages"].as_i64().is_some_and(|l| l > 0)
                });
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        None
    });
    let partial: Vec<_> = samples.iter().filter(|(_, c, t)| *c > 0 && c < t).collect();
    assert!(rated, "a copy rate and an ETA while copying");
    assert!(lag_seen, "the new follower's lag on /api/v1/partitions");
    assert!(
        partial.len() >= 3,
        "progress seen while copying: {samples:?}"
    );
    // The copy rate between partial samples from 1 s in (past the buckets' initial burst)
    // to the last one stays within the throttle.
    let from = partial[0].0 + Duration::from_secs(1);
    let window: Vec<_> = partial.iter().filter(|(t, _, _)| *t >= from).collect();
    assert!(window.len() >= 2, "samples a second apart: {samples:?}");
    let (t0, c0, total) = **window[0];
    let (t1, c1, _) = **window[window.len() - 1];
    let measured = (c1 - c0) as f64 / (t1 - t0).as_secs_f64();
    let overall = total as f64 / done.as_secs_f64();
    println!(
        "reassignment of {total} bytes under a {RATE} B/s throttle: copy rate {measured:.0} B/s \
         between progress samples, {overall:.0} B/s overall, done in {done:?}"
    );
    assert!(
        measured <= RATE as f64 * 1.15,
        "measured {measured:.0} B/s above the {RATE} B/s throttle"
    );
    assert!(
        measured >= RATE as f64 * 0.3,
        "the copy made progress: {measured:.0} B/s"
    );
    assert!(
        done >= Duration::from_secs_f64(total as f64 / RATE as f64 * 0.8),
        "{total} bytes at {RATE} B/s cannot take only {done:?}"
    );

    let (replicas, isr, leader) = placement(&mut c, "moving").await;
    assert_eq!(replicas, vec![2, 3]);
    assert_eq!(
        leader, 2,
        "leader 1 left the replicas: the first target replica leads"
    );
    let mut isr = isr;
    isr.sort();
    assert_eq!(isr, vec![2, 3]);
    assert!(c
        .list_partition_reassignments(None)
        .await
        .expect("list")
        .is_empty());
    wait_for(30, "broker 1 to delete its copy", || {
        hosted_leo(&nodes[0], "moving").is_none().then_some(())
    });
    assert_eq!(hosted_leo(&nodes[2], "moving"), Some(N as i64));
    // Every record, in order, read through the new leader alone.
    let seen = consume_all(&nodes[1].bootstrap, "moving", N);
    assert_eq!(seen, (0..N).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_reverts_and_bad_requests_get_kafka_errors() {
    let nodes = start_cluster(3, FAST);
    let all = bootstrap(&nodes);
    create_topic(&all, "stay", &[&[1, 2]]).await;
    produce(&all, "stay", 1000).await;
    let mut c = cluster(&nodes).await;
    let tp = TopicPartition::new("stay", 0);

    // Bad requests, each with its Kafka error code (one request each: results are matched
    // by partition).
    let cases = [
        (tp.clone(), Some(vec![1, 9]), 39),
        (tp.clone(), Some(vec![2, 2]), 39),
        (tp.clone(), Some(vec![]), 39),
        (tp.clone(), Some(vec![1, 2, 3, 4]), 39),
        (TopicPartition::new("stay", 5), Some(vec![1, 2]), 3),
        (TopicPartition::new("nope", 0), Some(vec![1, 2]), 3),
        (tp.clone(), None, 85),
    ];
    let mut r = Vec::new();
    for (p, replicas, want) in cases {
        let got = c
            .alter_partition_reassignments(&[(p.clone(), replicas.clone())])
            .await
            .expect("rpc")
            .remove(0);
        assert_eq!(code(&got.1), want, "{p} -> {replicas:?}: {:?}", got.1);
        r.push(got);
    }
    let msg = r[0].1.as_ref().expect_err("refused").to_string();
    assert!(
        msg.contains("broker 9") && msg.contains("registered"),
        "{msg}"
    );
    assert!(c
        .list_partition_reassignments(None)
        .await
        .expect("list")
        .is_empty());

    // Throttle configs are checked: unknown dynamic broker keys, bad rates and bad replica
    // lists get INVALID_CONFIG.
    for ops in [
        vec![ConfigOp::Set("log.retention.ms".into(), "1".into())],
        vec![ConfigOp::Set(
            "leader.replication.throttled.rate".into(),
            "-5".into(),
        )],
    ] {
        let e = c.alter_broker_configs(Some(1), &ops).await;
        assert_eq!(code(&e), 40, "{ops:?}: {e:?}");
    }
    let e = c
        .alter_topic_configs(
            "stay",
            &[ConfigOp::Set(
                "leader.replication.throttled.replicas".into(),
                "0-1".into(),
            )],
            false,
        )
        .await;
    assert_eq!(code(&e), 40, "{e:?}");

    // A slow move (a 20 kB/s throttle for ~1 MB), then a cancel while it copies.
    throttle(&mut c, "stay", 20_000, "0:1,0:2", "0:3").await;
    let r = c
        .alter_partition_reassignments(&[(tp.clone(), Some(vec![2, 3]))])
        .await
        .expect("rpc");
    assert_eq!(code(&r[0].1), 0);
    wait_for(30, "broker 3 to start copying", || {
        hosted_leo(&nodes[2], "stay")
            .filter(|leo| *leo > 0)
            .map(|_| ())
    });
    let listed = c
        .list_partition_reassignments(Some(std::slice::from_ref(&tp)))
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].target(), vec![2, 3]);
    let r = c
        .alter_partition_reassignments(&[(tp.clone(), None)])
        .await
        .expect("rpc");
    assert_eq!(code(&r[0].1), 0, "{:?}", r[0].1);
    let (replicas, isr, leader) = placement(&mut c, "stay").await;
    assert_eq!(replicas, vec![1, 2], "back to the original replicas");
    assert_eq!(leader, 1);
    assert!(!isr.contains(&3));
    assert!(c
        .list_partition_reassignments(None)
        .await
        .expect("list")
        .is_empty());
    wait_for(30, "broker 3 to delete its partial copy", || {
        hosted_leo(&nodes[2], "stay").is_none().then_some(())
    });
    // Nothing more to cancel.
    let r = c
        .alter_partition_reassignments(&[(tp.clone(), None)])
        .await
        .expect("rpc");
    assert_eq!(code(&r[0].1), 85);
    assert_eq!(consume_all(&all, "stay", 1000).len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_under_continuous_writes_loses_nothing() {
    let nodes = start_cluster(3, FAST);
    let all = bootstrap(&nodes);
    create_topic(&all, "busy", &[&[1]]).await;
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &all)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("producer");
    let send = |i: usize| {
        let mut v = format!("{i:08}").into_bytes();
        v.resize(64, b'x');
        p.send_result(FutureRecord::<(), _>::to("busy").partition(0).payload(&v))
            .map_err(|(e, _)| e)
            .expect("enqueued")
    };
    let mut c = cluster(&nodes).await;
    let tp = TopicPartition::new("busy", 0);
    let mut pending = Vec::new();
    let mut next = 0usize;
    // Writes before, during and after the move of the only replica (and leader) from 1 to
    // {2,3}: the replication factor grows and leadership moves.
    for _ in 0..500 {
        pending.push(send(next));
        next += 1;
    }
    let r = c
        .alter_partition_reassignments(&[(tp.clone(), Some(vec![2, 3]))])
        .await
        .expect("rpc");
    assert_eq!(code(&r[0].1), 0, "{:?}", r[0].1);
    let mut done = false;
    for _ in 0..400 {
        for _ in 0..20 {
            pending.push(send(next));
            next += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        if !done {
            done = c
                .list_partition_reassignments(None)
                .await
                .expect("list")
                .is_empty();
        } else if next > 6000 {
            break;
        }
    }
    assert!(done, "the move completed under writes");
    let mut acked = 0;
    for f in pending {
        if f.await.expect("not cancelled").is_ok() {
            acked += 1;
        }
    }
    assert_eq!(
        acked, next,
        "every write acknowledged across the leader move"
    );
    let (replicas, _, leader) = placement(&mut c, "busy").await;
    assert_eq!(replicas, vec![2, 3]);
    assert_eq!(leader, 2);
    let seen = consume_all(&nodes[1].bootstrap, "busy", next);
    assert_eq!(
        seen,
        (0..next).collect::<Vec<_>>(),
        "each record once, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_completes_after_its_leader_and_source_is_killed() {
    const N: usize = 600;
    let mut nodes = start_cluster(3, FAST);
    let all = bootstrap(&nodes);
    create_topic(&all, "survivor", &[&[1, 2]]).await;
    produce(&all, "survivor", N).await;
    let mut c = cluster(&nodes).await;
    wait_for(30, "both replicas in sync", || {
        (hosted_leo(&nodes[1], "survivor") == Some(N as i64)).then_some(())
    });
    throttle(&mut c, "survivor", 100_000, "0:1,0:2", "0:3").await;
    let tp = TopicPartition::new("survivor", 0);
    let r = c
        .alter_partition_reassignments(&[(tp.clone(), Some(vec![2, 3]))])
        .await
        .expect("rpc");
    assert_eq!(code(&r[0].1), 0, "{:?}", r[0].1);
    wait_for(30, "broker 3 to start copying", || {
        hosted_leo(&nodes[2], "survivor")
            .filter(|leo| *leo > 0 && *leo < N as i64)
            .map(|_| ())
    });
    // Broker 1 leads and is being removed: kill it mid-copy. Broker 2 takes over from the
    // ISR, broker 3 follows it, and the reassignment still completes.
    nodes[0].kill9();
    let mut c = cluster(&nodes[1..]).await;
    wait_for(90, "the reassignment to complete without broker 1", || {
        let v = http_json(&nodes[1], "/api/v1/reassignments")?;
        v["reassignments"]
            .as_array()
            .is_some_and(|l| l.is_empty())
            .then_some(())
    });
    let (replicas, isr, leader) = placement(&mut c, "survivor").await;
    assert_eq!(replicas, vec![2, 3]);
    assert_eq!(leader, 2);
    let mut isr = isr;
    isr.sort();
    assert_eq!(isr, vec![2, 3]);
    assert_eq!(hosted_leo(&nodes[2], "survivor"), Some(N as i64));
    let seen = consume_all(&nodes[2].bootstrap, "survivor", N);
    assert_eq!(seen, (0..N).collect::<Vec<_>>());
}
