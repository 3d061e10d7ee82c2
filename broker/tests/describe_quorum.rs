//! DescribeQuorum (KIP-595) against a real 3-node cluster: the leader describes every voter
//! with its log end and when it last accepted the leader's appends; the other nodes answer
//! NOT_LEADER_OR_FOLLOWER naming the leader; a killed follower's last fetch stops advancing
//! and it falls behind while the others keep taking metadata changes.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::checks::try_call;
use common::{start_cluster, BrokerProc};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};

fn describe(b: &BrokerProc) -> Option<describe_quorum_response::PartitionData> {
    let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let r: DescribeQuorumResponse = try_call(&b.bootstrap, ApiKey::DescribeQuorum, 2, &req)?;
    assert_eq!(r.error_code, 0, "{r:?}");
    r.topics.into_iter().next()?.partitions.into_iter().next()
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms")
}

#[test]
fn the_leader_describes_every_voters_progress() {
    let mut nodes = start_cluster(3, &[]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // The leader is the node whose answer has no error.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (leader, d) = loop {
        let found = nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| describe(n).map(|d| (i, d)))
            .find(|(_, d)| d.error_code == 0);
        if let Some(f) = found {
            break f;
        }
        assert!(Instant::now() < deadline, "no node leads the quorum");
        std::thread::sleep(Duration::from_millis(100));
    };
    let leader_id = d.leader_id.0;
    assert_eq!(leader_id as usize, leader + 1);
    let mut ids: Vec<i32> = d.current_voters.iter().map(|v| v.replica_id.0).collect();
    assert_eq!(ids[0], leader_id, "the leader first");
    ids.sort();
    assert_eq!(ids, [1, 2, 3]);
    assert!(d.observers.is_empty());
    assert!(d.high_watermark > 0 && d.leader_epoch > 0, "{d:?}");
    for v in &d.current_voters {
        assert!(
            v.log_end_offset >= d.high_watermark - 5,
            "{v:?} vs {}",
            d.high_watermark
        );
        assert!(now_ms() - v.last_fetch_timestamp < 5_000, "{v:?}");
    }
    for (i, n) in nodes.iter().enumerate() {
        if i != leader {
            let p = describe(n).expect("answer");
            assert_eq!(p.error_code, 6, "{p:?}");
            assert_eq!(p.leader_id.0, leader_id);
        }
    }

    // Kill a follower; the others keep changing metadata and it falls behind.
    let victim = (leader + 1) % 3;
    let victim_id = victim as i32 + 1;
    nodes[victim].kill9();
    let killed_at = now_ms();
    for t in ["dq-a", "dq-b", "dq-c"] {
        rt.block_on(common::checks::create_topic(
            &nodes[leader].bootstrap,
            NewTopic::new(t, 1, TopicReplication::Fixed(1)),
        ));
    }
    let after = describe(&nodes[leader]).expect("answer");
    assert_eq!(after.error_code, 0);
    let leader_end = after.current_voters[0].log_end_offset;
    let dead = after
        .current_voters
        .iter()
        .find(|v| v.replica_id.0 == victim_id)
        .expect("still a voter");
    assert!(dead.log_end_offset < leader_end, "{dead:?} vs {leader_end}");
    assert!(
        dead.last_fetch_timestamp <= killed_at,
        "{dead:?} after {killed_at}"
    );
    assert_eq!(
        dead.last_caught_up_timestamp, -1,
        "not caught up: unknown since when"
    );
    let live = after
        .current_voters
        .iter()
        .find(|v| v.replica_id.0 != victim_id && v.replica_id.0 != leader_id)
        .expect("the other follower");
    assert!(live.last_fetch_timestamp > killed_at, "{live:?}");
}
