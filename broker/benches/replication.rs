//! Replication benchmark (a report, not a timed test): acks=all produce throughput at RF=3
//! against RF=1 on the same 3-node cluster in one run, and failover time from a leader
//! `kill -9` to the next acknowledged acks=all produce, at the default and at fast timeouts.
//!
//! `cargo bench -p rill-broker --bench replication` writes `target/bench/replication.md`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use common::{start_cluster, wait_for, BrokerProc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

const RECORDS: usize = 300_000;
/// Alternating RF=1 / RF=3 rounds on the same cluster; the report gives each and the median.
const ROUNDS: usize = 3;
const SIZE: usize = 1024;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut report = String::new();
    let _ = writeln!(report, "# rill-broker replication benchmark\n");
    let _ = writeln!(
        report,
        "- machine: {} CPUs; 3 nodes and the librdkafka client share them",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let _ = writeln!(report, "- client: librdkafka 2.12 (rdkafka), acks=all, linger.ms=5, batch.size=1000000, {RECORDS} records of {SIZE} B per topic\n");

    let _ = writeln!(report, "## acks=all throughput, RF=3 (min.insync.replicas=2) against RF=1, same cluster, same run\n");
    let _ = writeln!(report, "{ROUNDS} alternating rounds (RF=1 then RF=3), {RECORDS} records each, per setup (a fresh cluster each).\n");
    for (mode, idempotent, partitions) in [
        ("one partition, idempotent producer (enable.idempotence=true: librdkafka 2.12 sends a partition's next Produce only once the previous one is answered, as it compares the messages in flight, not the requests, with its limit of 5; rdkafka_broker.c)", true, 1),
        ("one partition, plain acks=all producer (enable.idempotence=false, max.in.flight=5, as Kafka's Java client allows)", false, 1),
        ("6 partitions (leaders spread over the 3 nodes), idempotent producer", true, 6),
    ] {
        let rounds = rt.block_on(throughput(idempotent, partitions));
        let _ = writeln!(report, "### {mode}\n");
        let _ = writeln!(
            report,
            "| round | RF=1 msgs/s (MB/s) | RF=3 msgs/s (MB/s) | RF=3 / RF=1 |\n| --- | ---: | ---: | ---: |"
        );
        for (i, (rf1, rf3)) in rounds.iter().enumerate() {
            let _ = writeln!(
                report,
                "| {} | {rf1:.0} ({:.1}) | {rf3:.0} ({:.1}) | {:.2} |",
                i + 1,
                rf1 * SIZE as f64 / 1e6,
                rf3 * SIZE as f64 / 1e6,
                rf3 / rf1
            );
        }
        let mut ratios: Vec<f64> = rounds.iter().map(|r| r.1 / r.0).collect();
        ratios.sort_by(f64::total_cmp);
        let ratio = ratios[ratios.len() / 2];
        let _ = writeln!(
            report,
            "\n**RF=3 / RF=1 (median of the rounds): {ratio:.2}x** (target >= 0.5x: {})\n",
            if ratio >= 0.5 { "met" } else { "missed" }
        );
        eprintln!("{mode}: ratio {ratio:.2}");
    }

    let _ = writeln!(
        report,
        "## Failover: leader kill -9 to the next acknowledged acks=all produce (RF=3)\n"
    );
    let _ = writeln!(report, "Three trials each (a fresh cluster per trial); median and worst. *new leader*: a survivor's Metadata names the new leader; *next write*: librdkafka (default retry and metadata backoffs) gets its next acks=all write acknowledged.\n");
    let _ = writeln!(report, "| timings | leader not controller: new leader / next write (median; worst) | leader is controller: new leader / next write (median; worst) |\n| --- | ---: | ---: |");
    for (name, extra) in [
        (
            "Rill defaults: heartbeat 250 ms, session 3000 ms, Raft election 500 ms",
            vec![],
        ),
        (
            "Kafka's: heartbeat 2000 ms, session 9000 ms, election 1000 ms",
            vec![
                "broker.heartbeat.interval.ms=2000",
                "broker.session.timeout.ms=9000",
                "controller.quorum.election.timeout.ms=1000",
            ],
        ),
    ] {
        let mut cells = Vec::new();
        for leader_is_controller in [false, true] {
            let runs: Vec<(f64, f64)> = (0..3)
                .map(|_| rt.block_on(failover(&extra, leader_is_controller)))
                .collect();
            let mut server: Vec<f64> = runs.iter().map(|r| r.0).collect();
            let mut client: Vec<f64> = runs.iter().map(|r| r.1).collect();
            server.sort_by(f64::total_cmp);
            client.sort_by(f64::total_cmp);
            cells.push(format!(
                "{:.2} / **{:.2}** ({:.2} / {:.2})",
                server[1], client[1], server[2], client[2]
            ));
            eprintln!("failover {name} (leader is controller: {leader_is_controller}): {runs:?}");
        }
        let _ = writeln!(report, "| {name} | {} | {} |", cells[0], cells[1]);
    }
    let _ = writeln!(report, "\nTarget: <= 3 s at the default timeouts.");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("replication.md"), &report);
    println!("{report}");
}

async fn create(bootstrap: &str, name: &str, rf: i32, partitions: i32) {
    // (RF=1 and RF=3 throughput topics; the failover topic has an explicit assignment.)
    let a: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin");
    let t = NewTopic::new(name, partitions, TopicReplication::Fixed(rf))
        .set("min.insync.replicas", if rf > 1 { "2" } else { "1" });
    let r = a
        .create_topics(
            [&t],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("create");
    assert!(r[0].is_ok(), "{:?}", r[0]);
}

fn producer(bootstrap: &str) -> FutureProducer {
    producer_with(bootstrap, true)
}

fn producer_with(bootstrap: &str, idempotent: bool) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set(
            "enable.idempotence",
            if idempotent { "true" } else { "false" },
        )
        .set("max.in.flight", "5")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("producer")
}

async fn rate(p: &FutureProducer, topic: &str) -> f64 {
    let payload = vec![b'x'; SIZE];
    let start = Instant::now();
    let futs: Vec<_> = (0..RECORDS)
        .map(|_| {
            p.send_result(FutureRecord::<(), _>::to(topic).payload(&payload))
                .map_err(|(e, _)| e)
                .expect("enqueued")
        })
        .collect();
    for f in futs {
        f.await.expect("not cancelled").expect("acknowledged");
    }
    RECORDS as f64 / start.elapsed().as_secs_f64()
}

async fn throughput(idempotent: bool, partitions: i32) -> Vec<(f64, f64)> {
    let nodes = start_cluster(3, &[]);
    let all = bootstrap(&nodes);
    create(&all, "rf1", 1, partitions).await;
    create(&all, "rf3", 3, partitions).await;
    let p = producer_with(&all, idempotent);
    // Warm every partition (connections to each leader, metadata) before timing.
    for t in ["rf1", "rf3"] {
        for i in 0..partitions {
            p.send(
                FutureRecord::<(), _>::to(t).partition(i).payload("warm"),
                Duration::from_secs(30),
            )
            .await
            .expect("warm");
        }
    }
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let rf1 = rate(&p, "rf1").await;
        let rf3 = rate(&p, "rf3").await;
        eprintln!("round: rf1 {rf1:.0}/s rf3 {rf3:.0}/s");
        rounds.push((rf1, rf3));
    }
    rounds
}

fn bootstrap(nodes: &[BrokerProc]) -> String {
    nodes
        .iter()
        .map(|n| n.bootstrap.clone())
        .collect::<Vec<_>>()
        .join(",")
}

fn leader_of(nodes: &[BrokerProc], topic: &str) -> Option<i32> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap(nodes))
        .create()
        .ok()?;
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
    let l = md.topics().first()?.partitions().first()?.leader();
    (l > 0).then_some(l)
}

fn controller_of(nodes: &[BrokerProc]) -> Option<i32> {
    nodes
        .iter()
        .enumerate()
        .find(|(_, n)| {
            n.http_get("/api/v1/quorum")
                .1
                .contains("\"role\":\"leader\"")
        })
        .map(|(i, _)| i as i32 + 1)
}

/// Seconds from killing the partition leader to (a survivor's Metadata naming a new leader,
/// the next acknowledged acks=all produce). The replica assignment puts the leader on the
/// active controller or away from it.
async fn failover(extra: &[&str], leader_is_controller: bool) -> (f64, f64) {
    let mut nodes = start_cluster(3, extra);
    let all = bootstrap(&nodes);
    let controller = wait_for(30, "a quorum leader", || controller_of(&nodes));
    let others: Vec<i32> = (1..=3).filter(|n| *n != controller).collect();
    let replicas: Vec<i32> = if leader_is_controller {
        vec![controller, others[0], others[1]]
    } else {
        vec![others[0], controller, others[1]]
    };
    let a: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &all)
        .create()
        .expect("admin");
    let assignment: [&[i32]; 1] = [&replicas];
    let t = NewTopic::new("fo", 1, TopicReplication::Variable(&assignment))
        .set("min.insync.replicas", "2");
    let r = a
        .create_topics(
            [&t],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("create");
    assert!(r[0].is_ok(), "{:?}", r[0]);
    let p = producer(&all);
    p.send(
        FutureRecord::<(), _>::to("fo").payload("first"),
        Duration::from_secs(30),
    )
    .await
    .expect("first");
    let leader = wait_for(30, "a partition leader", || leader_of(&nodes, "fo"));
    assert_eq!(leader, replicas[0], "the preferred replica leads");
    nodes[(leader - 1) as usize].kill9();
    let killed = Instant::now();
    // The cluster's side: when a survivor's Metadata first names a new leader.
    let survivor = nodes[(replicas[1] - 1) as usize].bootstrap.clone();
    let watcher = std::thread::spawn(move || loop {
        if common::checks::partition_info_at(&survivor, "fo")
            .is_some_and(|i| i.leader > 0 && i.leader != leader)
        {
            return killed.elapsed().as_secs_f64();
        }
        if killed.elapsed() > Duration::from_secs(120) {
            return f64::NAN;
        }
        std::thread::sleep(Duration::from_millis(10));
    });
    loop {
        let sent = p
            .send(
                FutureRecord::<(), _>::to("fo").payload("probe"),
                Duration::from_secs(30),
            )
            .await;
        if sent.is_ok() {
            let client = killed.elapsed().as_secs_f64();
            let server = watcher.join().unwrap_or(f64::NAN);
            return (server, client);
        }
        assert!(
            killed.elapsed() < Duration::from_secs(120),
            "no produce succeeded within 120 s of the kill"
        );
    }
}
