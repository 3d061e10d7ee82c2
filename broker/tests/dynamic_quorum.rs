//! KIP-853 against real processes: a 3-voter cluster loses a voter's disk (kill -9, data dir
//! gone); a new node is started and added as a voter (AddRaftVoter, caught up as a learner
//! first), the dead one is removed (RemoveRaftVoter), and metadata changes commit at every
//! step. The new voter then counts: with another original voter killed, the leader and the
//! new node still commit.

mod common;

use std::time::Duration;

use common::checks::try_call;
use common::ports::free_port;
use common::{start_cluster, BrokerProc, Pending};
use kafka_protocol::messages::add_raft_voter_request::Listener;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// (leader id, voter ids) from whichever node answers as leader.
fn quorum(nodes: &[&BrokerProc]) -> Option<(i32, Vec<i32>)> {
    let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(sb("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    nodes.iter().find_map(|n| {
        let r: DescribeQuorumResponse = try_call(&n.bootstrap, ApiKey::DescribeQuorum, 2, &req)?;
        let p = r.topics.first()?.partitions.first()?.clone();
        (p.error_code == 0).then(|| {
            let mut v: Vec<i32> = p.current_voters.iter().map(|v| v.replica_id.0).collect();
            v.sort();
            (p.leader_id.0, v)
        })
    })
}

fn create(rt: &tokio::runtime::Runtime, via: &BrokerProc, topic: &str) {
    rt.block_on(common::checks::create_topic(
        &via.bootstrap,
        NewTopic::new(topic, 1, TopicReplication::Fixed(1)),
    ));
}

#[test]
fn a_lost_voter_is_replaced_while_metadata_changes_go_on() {
    let mut nodes = start_cluster(3, &[]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (leader, voters) = common::wait_for(30, "a quorum leader", || {
        quorum(&nodes.iter().collect::<Vec<_>>())
    });
    assert_eq!(voters, [1, 2, 3]);
    let li = usize::try_from(leader - 1).expect("index");
    create(&rt, &nodes[li], "dq-before");

    // A follower's machine dies with its disk.
    let vi = (li + 1) % 3;
    let victim = i32::try_from(vi).expect("id") + 1;
    nodes[vi].kill9();
    std::fs::remove_dir_all(&nodes[vi].data).expect("the victim's disk is gone");
    create(&rt, &nodes[li], "dq-degraded");

    // A new machine: node 4, its own id among the voters it is told about.
    let cport = free_port();
    let voters_setting = nodes[li]
        .setting("controller.quorum.voters")
        .expect("voters");
    let cluster_id = nodes[li].setting("cluster.id").expect("cluster id");
    let newcomer = Pending::launch(&[
        "node.id=4".to_string(),
        format!("controller.quorum.voters={voters_setting},4@127.0.0.1:{cport}"),
        format!("cluster.id={cluster_id}"),
        format!("listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{cport}"),
    ]);
    let add = AddRaftVoterRequest::default()
        .with_cluster_id(Some(sb(cluster_id)))
        .with_timeout_ms(60_000)
        .with_voter_id(4)
        .with_listeners(vec![Listener::default()
            .with_name(sb("CONTROLLER"))
            .with_host(sb("127.0.0.1"))
            .with_port(cport)]);
    let r: AddRaftVoterResponse =
        try_call(&nodes[li].bootstrap, ApiKey::AddRaftVoter, 0, &add).expect("answer");
    assert_eq!(r.error_code, 0, "{r:?}");
    let n4 = newcomer.ready();
    create(&rt, &nodes[li], "dq-added");
    // Adding it again is DUPLICATE_VOTER.
    let again: AddRaftVoterResponse =
        try_call(&nodes[li].bootstrap, ApiKey::AddRaftVoter, 0, &add).expect("answer");
    assert_eq!(again.error_code, 126, "{again:?}");

    // The dead voter removed.
    let remove = RemoveRaftVoterRequest::default()
        .with_cluster_id(Some(sb(cluster_id)))
        .with_voter_id(victim);
    let r: RemoveRaftVoterResponse =
        try_call(&nodes[li].bootstrap, ApiKey::RemoveRaftVoter, 0, &remove).expect("answer");
    assert_eq!(r.error_code, 0, "{r:?}");
    let gone: RemoveRaftVoterResponse =
        try_call(&nodes[li].bootstrap, ApiKey::RemoveRaftVoter, 0, &remove).expect("answer");
    assert_eq!(gone.error_code, 127, "VOTER_NOT_FOUND: {gone:?}");
    let oi = 3 - li - vi; // the other original node
    let other = i32::try_from(oi).expect("id") + 1;
    let mut want = vec![leader, other, 4];
    want.sort();
    let live = [&nodes[li], &nodes[oi], &n4];
    let (_, voters) = common::wait_for(30, "the new voter set", || {
        quorum(&live).filter(|(_, v)| *v == want)
    });
    assert_eq!(voters, want);
    create(&rt, &n4, "dq-replaced");

    // The new voter counts: lose the other original voter, the two left still commit.
    nodes[oi].kill9();
    create(&rt, &nodes[li], "dq-after");
    let names: Vec<String> = {
        use rdkafka::producer::Producer;
        let c = common::checks::producer(&n4.bootstrap);
        let md = c
            .client()
            .fetch_metadata(None, Duration::from_secs(20))
            .expect("metadata");
        md.topics().iter().map(|t| t.name().to_string()).collect()
    };
    for t in [
        "dq-before",
        "dq-degraded",
        "dq-added",
        "dq-replaced",
        "dq-after",
    ] {
        assert!(names.iter().any(|n| n == t), "{t} missing from {names:?}");
    }
}
