//! Leader elections on a real 3-node cluster: ElectLeaders (preferred and unclean, KIP-460)
//! through the shared client, and the controller's automatic preferred-leader rebalance.

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use common::{start_cluster, wait_for, BrokerProc};
use rill_client::{
    ClientError, Cluster, ConnectionConfig, ElectionKind, NewTopic, PartitionMetadata,
    TopicPartition,
};

const ELECTION_NOT_NEEDED: i16 = 84;
const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;

/// Polls `f` until it returns `Some`, or panics after `secs` seconds.
async fn until<T, Fut: Future<Output = Option<T>>>(
    secs: u64,
    what: &str,
    mut f: impl FnMut() -> Fut,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connect(bootstrap: &str) -> Option<Cluster> {
    let cfg = ConnectionConfig {
        request_timeout: Duration::from_secs(20),
        ..ConnectionConfig::default()
    };
    Cluster::connect(bootstrap, cfg).await.ok()
}

/// The topic's partitions as `bootstrap` sees them.
async fn partitions(bootstrap: &str, topic: &str) -> Option<Vec<PartitionMetadata>> {
    let c = connect(bootstrap).await?;
    let t = c.describe_topics(&[topic.to_string()]).await.ok()?;
    let t = t.into_iter().next()?;
    (t.error_code == 0).then_some(t.partitions)
}

async fn create(bootstrap: &str, name: &str, partitions: i32, rf: i16) {
    let c = connect(bootstrap).await.expect("connect");
    let r = c
        .create_topics(&[NewTopic {
            name: name.into(),
            partitions: Some(partitions),
            replication_factor: Some(rf),
            configs: Vec::new(),
        }])
        .await
        .expect("create topics");
    r[0].1.as_ref().expect("topic created");
}

fn code(r: &Result<(), ClientError>) -> i16 {
    match r {
        Ok(()) => 0,
        Err(ClientError::Kafka { code, .. }) => *code,
        Err(e) => panic!("not a Kafka error: {e}"),
    }
}

async fn elect(
    bootstrap: &str,
    kind: ElectionKind,
    tps: Option<&[TopicPartition]>,
) -> Vec<(TopicPartition, i16)> {
    let c = connect(bootstrap).await.expect("connect");
    c.elect_leaders(kind, tps)
        .await
        .expect("ElectLeaders")
        .into_iter()
        .map(|(tp, r)| (tp, code(&r)))
        .collect()
}

/// Waits until every partition of `topic` is led by its preferred replica.
async fn all_preferred(bootstrap: &str, topic: &str) {
    until(
        60,
        "every partition led by its preferred replica",
        || async {
            let ps = partitions(bootstrap, topic).await?;
            ps.iter()
                .all(|p| p.replicas.first() == Some(&p.leader))
                .then_some(())
        },
    )
    .await;
}

/// Stops node 1 (SIGTERM: controlled shutdown), checks that its preferred partitions moved
/// away, restarts it and waits until it is back in the ISR of partition 0.
async fn bounce_node_1(nodes: &mut [BrokerProc], topic: &str) {
    nodes[0].stop();
    let other = nodes[1].bootstrap.clone();
    until(60, "partition 0 to move away from node 1", || async {
        let ps = partitions(&other, topic).await?;
        (ps[0].leader != 1 && ps[0].leader >= 0).then_some(())
    })
    .await;
    nodes[0].restart();
    until(60, "node 1 back in the ISR of partition 0", || async {
        let ps = partitions(&other, topic).await?;
        ps[0].isr.contains(&1).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_and_unclean_elections_on_request() {
    // A session long enough that a node slowed down by a busy machine is not fenced: that
    // would move a leadership this test expects to stay (no automatic rebalance here).
    let mut nodes = start_cluster(
        3,
        &[
            "auto.leader.rebalance.enable=false",
            "broker.session.timeout.ms=5000",
        ],
    );
    let b2 = nodes[1].bootstrap.clone();
    create(&b2, "pref", 3, 3).await;
    all_preferred(&b2, "pref").await;
    let p0 = [TopicPartition::new("pref", 0)];
    assert_eq!(
        elect(&b2, ElectionKind::Preferred, Some(&p0)).await,
        vec![(p0[0].clone(), ELECTION_NOT_NEEDED)]
    );
    assert!(
        elect(&b2, ElectionKind::Preferred, None).await.is_empty(),
        "all partitions: those that need no election are left out"
    );
    assert_eq!(
        elect(&b2, ElectionKind::Unclean, Some(&p0)).await,
        vec![(p0[0].clone(), ELECTION_NOT_NEEDED)],
        "a partition with a leader needs no unclean election"
    );
    let unknown = [TopicPartition::new("nope", 0)];
    assert_eq!(
        elect(&b2, ElectionKind::Preferred, Some(&unknown)).await,
        vec![(unknown[0].clone(), 3)],
        "UNKNOWN_TOPIC_OR_PARTITION"
    );

    // Node 1 (preferred leader of partition 0) goes away: it cannot be elected.
    nodes[0].stop();
    until(60, "partition 0 to move away from node 1", || async {
        let ps = partitions(&b2, "pref").await?;
        (ps[0].leader != 1 && ps[0].leader >= 0).then_some(())
    })
    .await;
    assert_eq!(
        elect(&b2, ElectionKind::Preferred, Some(&p0)).await,
        vec![(p0[0].clone(), PREFERRED_LEADER_NOT_AVAILABLE)]
    );
    // Back and in sync: with auto rebalance off it stays a follower until asked.
    nodes[0].restart();
    until(60, "node 1 back in the ISR of partition 0", || async {
        let ps = partitions(&b2, "pref").await?;
        ps[0].isr.contains(&1).then_some(())
    })
    .await;
    assert_ne!(
        partitions(&b2, "pref").await.expect("metadata")[0].leader,
        1
    );
    let results = elect(&b2, ElectionKind::Preferred, None).await;
    assert!(
        results.contains(&(p0[0].clone(), 0)),
        "partition 0 elected: {results:?}"
    );
    assert!(results.iter().all(|(_, c)| *c == 0), "{results:?}");
    all_preferred(&b2, "pref").await;
    // Every node's metadata names the preferred replica again (once its image has the change).
    all_preferred(&nodes[2].bootstrap, "pref").await;

    // Unclean: a partition whose only ISR member is gone, with another replica live.
    // Topic on nodes 2 and 3; node 3 dies (ISR shrinks to {2}), then node 2 dies while node 3
    // restarts: the partition is offline and only an unclean election brings it back.
    create(&b2, "dirty", 1, 2).await;
    let replicas = until(30, "the new topic in metadata", || async {
        Some(partitions(&b2, "dirty").await?[0].replicas.clone())
    })
    .await;
    let (keep, lose) = (replicas[0], replicas[1]);
    let idx = |id: i32| (id - 1) as usize;
    let survivor = (1..=3)
        .find(|id| !replicas.contains(id))
        .expect("third node");
    let sb = nodes[idx(survivor)].bootstrap.clone();
    nodes[idx(lose)].kill9();
    until(60, "the ISR to shrink to the first replica", || async {
        let ps = partitions(&sb, "dirty").await?;
        (ps[0].isr == vec![keep]).then_some(())
    })
    .await;
    nodes[idx(keep)].kill9();
    nodes[idx(lose)].restart();
    let sb = nodes[idx(survivor)].bootstrap.clone();
    until(60, "the partition to go offline", || async {
        let ps = partitions(&sb, "dirty").await?;
        (ps[0].leader < 0).then_some(())
    })
    .await;
    let d0 = [TopicPartition::new("dirty", 0)];
    let r = elect(&sb, ElectionKind::Preferred, Some(&d0)).await;
    assert_eq!(r, vec![(d0[0].clone(), PREFERRED_LEADER_NOT_AVAILABLE)]);
    let r = elect(&sb, ElectionKind::Unclean, Some(&d0)).await;
    assert_eq!(r, vec![(d0[0].clone(), 0)]);
    until(30, "the live replica to lead alone", || async {
        let ps = partitions(&sb, "dirty").await?;
        (ps[0].leader == lose && ps[0].isr == vec![lose]).then_some(())
    })
    .await;
    // Counted where it happened (Strimzi's "Unclean Leader Election Rate"), once that node
    // has applied the election.
    let counted = "kafka_controller_controllerstats_uncleanleaderelections_total 1";
    wait_for(30, "the unclean election counted on the new leader", || {
        let (_, page) = nodes[idx(lose)].http_get("/metrics");
        page.lines().any(|l| l == counted).then_some(())
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_moves_leadership_back_to_preferred_replicas() {
    let mut nodes = start_cluster(3, &["leader.imbalance.check.interval.seconds=1"]);
    let b2 = nodes[1].bootstrap.clone();
    create(&b2, "auto", 3, 3).await;
    all_preferred(&b2, "auto").await;
    bounce_node_1(&mut nodes, "auto").await;
    // Node 1 prefers 1 of 3 partitions and leads none: 100% > 10%, so the controller elects
    // it again within a check interval or two, without any request.
    all_preferred(&b2, "auto").await;
}

/// A 3-node cluster whose nodes have the given `broker.rack`s (`start_cluster` gives every
/// node the same overrides).
fn start_racked_cluster(racks: &[&str]) -> Vec<BrokerProc> {
    let n = racks.len();
    let ports: Vec<u16> = (0..n).map(|_| common::free_port()).collect();
    let voters = common::voters(&ports);
    let cluster_id = format!("rillrack{:014}", std::process::id() as u64 * 1000 + 42);
    // Each node waits for a quorum before it is ready: start them all on threads.
    let handles: Vec<_> = racks
        .iter()
        .zip(&ports)
        .enumerate()
        .map(|(i, (rack, port))| {
            let extra = [
                format!("node.id={}", i + 1),
                format!("controller.quorum.voters={voters}"),
                format!("cluster.id={cluster_id}"),
                format!("listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{port}"),
                format!("broker.rack={rack}"),
            ];
            std::thread::spawn(move || {
                let refs: Vec<&str> = extra.iter().map(String::as_str).collect();
                BrokerProc::start(&refs)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("node started"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_are_placed_across_racks_and_fenced_brokers_stay_visible() {
    let mut nodes = start_racked_cluster(&["east", "east", "west"]);
    let b = nodes[0].bootstrap.clone();
    // Every node's registration reaches node 1's image (each node is ready once its own is in).
    let racks: std::collections::BTreeMap<i32, String> =
        until(30, "three registered brokers", || async {
            let md = connect(&b).await?.metadata(Some(&[])).await.ok()?;
            let racks: std::collections::BTreeMap<i32, String> = md
                .brokers
                .into_iter()
                .map(|n| (n.node_id, n.rack.unwrap_or_default()))
                .collect();
            (racks.len() == 3).then_some(racks)
        })
        .await;
    assert_eq!(
        racks.values().filter(|r| *r == "east").count(),
        2,
        "{racks:?}"
    );
    create(&b, "racked", 6, 2).await;
    let ps = until(30, "the new topic in metadata", || async {
        partitions(&b, "racked").await
    })
    .await;
    for p in &ps {
        let on: std::collections::BTreeSet<&String> =
            p.replicas.iter().map(|r| &racks[r]).collect();
        assert_eq!(
            on.len(),
            2,
            "partition {} on one rack: {:?}",
            p.partition,
            p.replicas
        );
    }
    // Leaders round-robin over the rack-alternating list: each node leads 2 of 6.
    for id in 1..=3 {
        assert_eq!(ps.iter().filter(|p| p.leader == id).count(), 2, "{ps:?}");
    }

    // Node 3 dies: it is fenced, a plain DescribeCluster leaves it out and Metadata does
    // after a grace (so clients move partitions off it before dropping it), while
    // DescribeCluster v2 with include_fenced_brokers and /api/v1/brokers still show it.
    nodes[2].kill9();
    let d = until(60, "node 3 fenced", || async {
        let d = connect(&b).await?.describe_cluster(true).await.ok()?;
        d.brokers
            .iter()
            .any(|x| x.node_id == 3 && x.fenced)
            .then_some(d)
    })
    .await;
    assert_eq!(d.brokers.len(), 3, "{d:?}");
    let west = d.brokers.iter().find(|x| x.node_id == 3).expect("node 3");
    assert_eq!(west.rack.as_deref(), Some("west"));
    assert!(d
        .brokers
        .iter()
        .filter(|x| x.node_id != 3)
        .all(|x| !x.fenced));
    let live = connect(&b).await.expect("connect");
    let plain = live.describe_cluster(false).await.expect("describe");
    assert_eq!(
        plain.brokers.iter().map(|x| x.node_id).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let md = live.metadata(Some(&[])).await.expect("metadata");
    assert!(
        md.brokers.iter().any(|x| x.node_id == 3),
        "just fenced: still listed: {md:?}"
    );
    until(
        30,
        "Metadata to leave node 3 out after the grace",
        || async {
            let md = connect(&b).await?.metadata(Some(&[])).await.ok()?;
            md.brokers.iter().all(|x| x.node_id != 3).then_some(())
        },
    )
    .await;
    // Fenced first, then its leaderships move (the controller's next pass).
    let v = wait_for(
        30,
        "node 3 fenced and leading nothing in /api/v1/brokers",
        || {
            let (status, body) = nodes[0].http_get("/api/v1/brokers");
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            let three = v.as_array()?.iter().find(|x| x["node_id"] == 3)?.clone();
            (status == 200 && three["fenced"] == true && three["leaders"] == 0).then_some(v)
        },
    );
    let v = v.as_array().expect("array");
    assert_eq!(v.len(), 3, "{v:?}");
    let three = v.iter().find(|x| x["node_id"] == 3).expect("node 3");
    assert_eq!(three["rack"], "west");
    assert_eq!(three["replicas"], 6, "{three}");

    // Over the wire at every version: v0 and v1 list the live brokers, v2 on request all of
    // them with is_fenced; asking a broker for controller endpoints is a mismatch (114).
    use common::wire;
    use kafka_protocol::messages::{ApiKey, DescribeClusterRequest, DescribeClusterResponse};
    let mut s = wire::connect(&nodes[0]);
    for (v, include, expect) in [(0, false, 2), (1, false, 2), (2, false, 2), (2, true, 3)] {
        let req = DescribeClusterRequest::default().with_include_fenced_brokers(include);
        let r: DescribeClusterResponse =
            wire::call(&mut s, ApiKey::DescribeCluster, v, v.into(), &req);
        assert_eq!(r.error_code, 0);
        assert_eq!(r.brokers.len(), expect, "v{v} include_fenced={include}");
        assert_eq!(r.brokers.iter().filter(|x| x.is_fenced).count(), expect - 2);
    }
    let req = DescribeClusterRequest::default().with_endpoint_type(2);
    let r: DescribeClusterResponse = wire::call(&mut s, ApiKey::DescribeCluster, 1, 9, &req);
    assert_eq!(r.error_code, 114, "MISMATCHED_ENDPOINT_TYPE");
}
