//! Consumer groups through librdkafka: assignment, rebalances on leave and on session expiry,
//! the three assignors, static membership, and committed offsets surviving `kill -9`.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{wait_for, BrokerProc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

const T: Duration = Duration::from_secs(20);

/// Broker settings that keep group tests quick: no initial delay, short sessions allowed.
const FAST_GROUPS: &[&str] = &[
    "group.initial.rebalance.delay.ms=0",
    "group.min.session.timeout.ms=500",
    "offsets.topic.num.partitions=5",
];

struct Counting(Arc<AtomicUsize>);
impl ClientContext for Counting {}
impl ConsumerContext for Counting {
    fn post_rebalance(&self, _base: &rdkafka::consumer::BaseConsumer<Self>, r: &Rebalance<'_>) {
        if matches!(r, Rebalance::Assign(_)) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A group member polled on its own thread, publishing its current assignment.
struct Member {
    assignment: Arc<Mutex<BTreeSet<i32>>>,
    assigns: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Member {
    fn start(bootstrap: &str, group: &str, topic: &str, extra: &[(&str, &str)]) -> Member {
        let assignment = Arc::new(Mutex::new(BTreeSet::new()));
        let assigns = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "300")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest");
        for (k, v) in extra {
            cfg.set(*k, *v);
        }
        let c: BaseConsumer<Counting> = cfg
            .create_with_context(Counting(assigns.clone()))
            .expect("consumer");
        c.subscribe(&[topic]).expect("subscribe");
        let (a, s) = (assignment.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let _ = c.poll(Duration::from_millis(50));
                if let Ok(tpl) = c.assignment() {
                    *a.lock().expect("lock") =
                        tpl.elements().iter().map(|e| e.partition()).collect();
                }
            }
            // Dropping the consumer closes it: LeaveGroup.
        });
        Member {
            assignment,
            assigns,
            stop,
            thread: Some(thread),
        }
    }

    fn assigned(&self) -> BTreeSet<i32> {
        self.assignment.lock().expect("lock").clone()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn topic(b: &BrokerProc, name: &str, partitions: i32) {
    let a: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .create()
        .expect("admin");
    let r = a
        .create_topics(
            [&NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create");
    assert!(r[0].is_ok());
}

/// Waits until the members' assignments are disjoint, non-empty and cover every partition.
fn wait_balanced(members: &[&Member], partitions: i32, what: &str) -> Vec<BTreeSet<i32>> {
    wait_for(60, what, || {
        let sets: Vec<BTreeSet<i32>> = members.iter().map(|m| m.assigned()).collect();
        let total: usize = sets.iter().map(BTreeSet::len).sum();
        let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
        (sets.iter().all(|s| !s.is_empty())
            && total == partitions as usize
            && union == (0..partitions).collect())
        .then_some(sets)
    })
}

async fn balanced_group_with(strategy: &str) {
    let b = BrokerProc::start(FAST_GROUPS);
    topic(&b, "six", 6).await;
    let cfg = [("partition.assignment.strategy", strategy)];
    let m1 = Member::start(&b.bootstrap, "g", "six", &cfg);
    let m2 = Member::start(&b.bootstrap, "g", "six", &cfg);
    let m3 = Member::start(&b.bootstrap, "g", "six", &cfg);
    let sets = wait_balanced(&[&m1, &m2, &m3], 6, "three members to share six partitions");
    assert!(
        sets.iter().all(|s| s.len() == 2),
        "{strategy}: 2 partitions each, got {sets:?}"
    );
    // One member leaves (LeaveGroup): the other two take its partitions.
    drop(m3);
    wait_balanced(&[&m1, &m2], 6, "two members to take over after a leave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_assignor_balances_and_rebalances_on_leave() {
    balanced_group_with("range").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundrobin_assignor_balances_and_rebalances_on_leave() {
    balanced_group_with("roundrobin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_assignor_balances_and_rebalances_on_leave() {
    balanced_group_with("cooperative-sticky").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_member_partitions_move_after_session_timeout() {
    let b = BrokerProc::start(FAST_GROUPS);
    topic(&b, "six", 6).await;
    let m1 = Member::start(&b.bootstrap, "g", "six", &[("session.timeout.ms", "2000")]);
    let m2 = Member::start(&b.bootstrap, "g", "six", &[("session.timeout.ms", "2000")]);
    // A third member in another process, killed with SIGKILL: no LeaveGroup is ever sent.
    let mut victim = std::process::Command::new("kcat")
        .args([
            "-b",
            &b.bootstrap,
            "-G",
            "g",
            "-X",
            "session.timeout.ms=2000",
            "-X",
            "heartbeat.interval.ms=300",
            "-q",
            "six",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kcat is installed by scripts/test.sh");
    wait_for(60, "the kcat member to own two partitions", || {
        (m1.assigned().len() == 2 && m2.assigned().len() == 2).then_some(())
    });
    victim.kill().expect("kill -9 kcat");
    let _ = victim.wait();
    let started = std::time::Instant::now();
    wait_balanced(
        &[&m1, &m2],
        6,
        "the survivors to take the dead member's partitions",
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "partitions moved only once the session expired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_member_restart_keeps_partitions_without_rebalance() {
    let b = BrokerProc::start(FAST_GROUPS);
    topic(&b, "six", 6).await;
    let cfg1 = [
        ("group.instance.id", "static-1"),
        ("session.timeout.ms", "30000"),
    ];
    let cfg2 = [
        ("group.instance.id", "static-2"),
        ("session.timeout.ms", "30000"),
    ];
    let m1 = Member::start(&b.bootstrap, "sg", "six", &cfg1);
    let m2 = Member::start(&b.bootstrap, "sg", "six", &cfg2);
    let sets = wait_balanced(&[&m1, &m2], 6, "two static members to share six partitions");
    let assigns_before = m2.assigns.load(Ordering::SeqCst);
    // A static member's close sends no LeaveGroup (KIP-345); restart it within the session.
    drop(m1);
    let m1 = Member::start(&b.bootstrap, "sg", "six", &cfg1);
    wait_for(
        30,
        "the restarted static member to get its partitions back",
        || (m1.assigned() == sets[0]).then_some(()),
    );
    assert_eq!(
        m2.assigned(),
        sets[1],
        "the other member kept its partitions"
    );
    assert_eq!(
        m2.assigns.load(Ordering::SeqCst),
        assigns_before,
        "no rebalance reached the other member"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_and_metadata_survive_kill_9() {
    let mut b = BrokerProc::start(FAST_GROUPS);
    topic(&b, "commits", 1).await;
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .create()
        .expect("producer");
    for i in 0..100 {
        p.send(
            FutureRecord::<(), _>::to("commits").payload(&format!("{i}")),
            T,
        )
        .await
        .expect("sent");
    }
    {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &b.bootstrap)
            .set("group.id", "cg")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        c.subscribe(&["commits"]).expect("subscribe");
        let mut seen = 0;
        while seen < 40 {
            if let Some(m) = c.poll(Duration::from_millis(100)) {
                let _ = m.expect("message");
                seen += 1;
            }
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("commits", 0, Offset::Offset(40))
            .expect("tpl");
        tpl.find_partition("commits", 0)
            .expect("p")
            .set_metadata("checkpoint-A");
        c.commit(&tpl, CommitMode::Sync).expect("commit");
        let got = c.committed(T).expect("committed");
        assert_eq!(
            got.find_partition("commits", 0).expect("p").offset(),
            Offset::Offset(40)
        );
    }
    b.kill9();
    b.restart();
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("group.id", "cg")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("commits", 0);
    let got = c
        .committed_offsets(tpl, T)
        .expect("committed after restart");
    let e = got.find_partition("commits", 0).expect("p");
    assert_eq!(e.offset(), Offset::Offset(40));
    assert_eq!(e.metadata(), "checkpoint-A", "commit metadata round-trips");
    c.subscribe(&["commits"]).expect("subscribe");
    let first = wait_for(30, "the first message after resuming", || {
        c.poll(Duration::from_millis(100))
            .map(|m| m.expect("message").offset())
    });
    assert_eq!(first, 40, "the consumer resumes from the committed offset");
}
