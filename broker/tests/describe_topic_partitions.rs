//! DescribeTopicPartitions (KIP-966) against a real `rill-broker`: a client paging through
//! every topic two partitions at a time, as the Java admin client's `describeTopics` does,
//! sees each partition exactly once, in name order, with its leader.

mod common;

use common::checks::try_call;
use common::BrokerProc;
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

#[test]
fn paging_by_cursor_visits_every_partition_once() {
    let b = BrokerProc::start(&[]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for (name, n) in [("dtp-b", 2), ("dtp-a", 3), ("dtp-c", 1)] {
        rt.block_on(common::checks::create_topic(
            &b.bootstrap,
            NewTopic::new(name, n, TopicReplication::Fixed(1)),
        ));
    }
    let named = ["dtp-c", "dtp-a", "dtp-b"];
    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    for page in 0.. {
        assert!(page < 10, "paging does not end: {seen:?}");
        let req = DescribeTopicPartitionsRequest::default()
            .with_topics(
                named
                    .iter()
                    .map(|t| TopicRequest::default().with_name(TopicName(sb(t))))
                    .collect(),
            )
            .with_response_partition_limit(2)
            .with_cursor(cursor.take());
        let r: DescribeTopicPartitionsResponse =
            try_call(&b.bootstrap, ApiKey::DescribeTopicPartitions, 0, &req).expect("answer");
        let in_page: usize = r.topics.iter().map(|t| t.partitions.len()).sum();
        assert!(in_page <= 2, "{r:?}");
        for t in &r.topics {
            assert_eq!(t.error_code, 0, "{t:?}");
            for p in &t.partitions {
                assert_eq!(p.leader_id, BrokerId(1));
                seen.push(format!(
                    "{}-{}",
                    t.name.as_ref().map(|n| n.0.as_str()).unwrap_or(""),
                    p.partition_index
                ));
            }
        }
        match r.next_cursor {
            Some(c) => {
                cursor = Some(
                    Cursor::default()
                        .with_topic_name(c.topic_name)
                        .with_partition_index(c.partition_index),
                )
            }
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["dtp-a-0", "dtp-a-1", "dtp-a-2", "dtp-b-0", "dtp-b-1", "dtp-c-0"]
    );
}
