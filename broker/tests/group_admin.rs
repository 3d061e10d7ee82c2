//! Group administration over the wire: ListGroups with the states filter, DescribeGroups,
//! simple (assign-only) commits, OffsetFetch for several groups, OffsetDelete, DeleteGroups.

mod common;

use std::time::Duration;

use common::wire::{call, connect};
use common::{wait_for, BrokerProc};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

fn sb(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn list(s: &mut std::net::TcpStream, states: &[&str]) -> Vec<(String, String)> {
    let r: ListGroupsResponse = call(
        s,
        ApiKey::ListGroups,
        4,
        1,
        &ListGroupsRequest::default().with_states_filter(states.iter().map(|x| sb(x)).collect()),
    );
    r.groups
        .iter()
        .map(|g| (g.group_id.0.to_string(), g.group_state.to_string()))
        .collect()
}

fn commit_simple(s: &mut std::net::TcpStream, group: &str, topic: &str, offset: i64) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(sb(topic)))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset)
                        .with_committed_metadata(Some(sb("by-test"))),
                ]),
        ]);
    let r: OffsetCommitResponse = call(s, ApiKey::OffsetCommit, 8, 2, &req);
    r.topics[0].partitions[0].error_code
}

#[test]
fn list_describe_fetch_delete() {
    let b = BrokerProc::start(&["group.initial.rebalance.delay.ms=0", "num.partitions=2"]);
    let mut s = connect(&b);
    // Auto-create topic t (2 partitions) and the offsets topic.
    let _: MetadataResponse = call(
        &mut s,
        ApiKey::Metadata,
        12,
        3,
        &MetadataRequest::default()
            .with_allow_auto_topic_creation(true)
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(TopicName(sb("t"))))])),
    );
    let _: FindCoordinatorResponse = call(
        &mut s,
        ApiKey::FindCoordinator,
        4,
        4,
        &FindCoordinatorRequest::default().with_coordinator_keys(vec![sb("simple")]),
    );

    // An assign-only consumer commits without joining: the group exists, Empty.
    assert_eq!(commit_simple(&mut s, "simple", "t", 7), 0);
    assert_eq!(
        commit_simple(&mut s, "simple", "nope", 7),
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );

    // A live subscriber makes a second group Stable.
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("group.id", "live")
        .set("client.id", "live-client")
        .create()
        .expect("consumer");
    c.subscribe(&["t"]).expect("subscribe");
    wait_for(30, "group 'live' to be Stable", || {
        let _ = c.poll(Duration::from_millis(50));
        list(&mut s, &["Stable"])
            .iter()
            .any(|(g, _)| g == "live")
            .then_some(())
    });
    let all = list(&mut s, &[]);
    assert!(all.contains(&("simple".into(), "Empty".into())), "{all:?}");
    assert_eq!(
        list(&mut s, &["Empty"]),
        vec![("simple".to_string(), "Empty".to_string())]
    );

    let d: DescribeGroupsResponse = call(
        &mut s,
        ApiKey::DescribeGroups,
        5,
        5,
        &DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(sb("live")), GroupId(sb("unknown"))]),
    );
    let live = &d.groups[0];
    assert_eq!(
        (live.group_state.as_str(), live.protocol_type.as_str()),
        ("Stable", "consumer")
    );
    assert_eq!(live.members.len(), 1);
    assert_eq!(live.members[0].client_id.as_str(), "live-client");
    assert!(live.members[0].client_host.starts_with("/127.0.0.1"));
    assert!(!live.members[0].member_assignment.is_empty());
    assert_eq!(
        d.groups[1].group_state.as_str(),
        "Dead",
        "an unknown group is Dead, as Kafka reports it"
    );

    // OffsetFetch v8: two groups in one request.
    let req = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(sb("simple")))
            .with_topics(None),
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(sb("live")))
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopics::default()
                    .with_name(TopicName(sb("t")))
                    .with_partition_indexes(vec![0, 1]),
            ])),
    ]);
    let r: OffsetFetchResponse = call(&mut s, ApiKey::OffsetFetch, 8, 6, &req);
    let p = &r.groups[0].topics[0].partitions[0];
    assert_eq!(
        (p.committed_offset, p.metadata.as_ref().map(|m| m.as_str())),
        (7, Some("by-test"))
    );
    assert!(
        r.groups[1].topics[0]
            .partitions
            .iter()
            .all(|p| p.committed_offset == -1),
        "nothing committed yet is -1"
    );

    // OffsetDelete is refused for a topic the live group subscribes to, allowed for an empty group.
    let od = |g: &str| {
        OffsetDeleteRequest::default()
            .with_group_id(GroupId(sb(g)))
            .with_topics(vec![
                offset_delete_request::OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(sb("t")))
                    .with_partitions(vec![
                        offset_delete_request::OffsetDeleteRequestPartition::default()
                            .with_partition_index(0),
                    ]),
            ])
    };
    let r: OffsetDeleteResponse = call(&mut s, ApiKey::OffsetDelete, 0, 7, &od("live"));
    assert_eq!(
        r.topics[0].partitions[0].error_code, 86,
        "GROUP_SUBSCRIBED_TO_TOPIC"
    );
    let r: OffsetDeleteResponse = call(&mut s, ApiKey::OffsetDelete, 0, 8, &od("simple"));
    assert_eq!((r.error_code, r.topics[0].partitions[0].error_code), (0, 0));
    let r: OffsetFetchResponse = call(
        &mut s,
        ApiKey::OffsetFetch,
        8,
        9,
        &OffsetFetchRequest::default().with_groups(vec![
            offset_fetch_request::OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(sb("simple")))
                .with_topics(None),
        ]),
    );
    assert!(r.groups[0].topics.is_empty(), "offsets deleted");

    // After the consumer leaves, the group is Empty and can be deleted.
    drop(c);
    wait_for(30, "group 'live' to be Empty", || {
        list(&mut s, &["Empty"])
            .iter()
            .any(|(g, _)| g == "live")
            .then_some(())
    });
    let r: DeleteGroupsResponse = call(
        &mut s,
        ApiKey::DeleteGroups,
        2,
        10,
        &DeleteGroupsRequest::default()
            .with_groups_names(vec![GroupId(sb("live")), GroupId(sb("simple"))]),
    );
    assert_eq!(
        r.results.iter().map(|x| x.error_code).collect::<Vec<_>>(),
        vec![0, 0]
    );
    assert!(list(&mut s, &[]).is_empty());
}
