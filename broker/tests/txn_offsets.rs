//! TxnOffsetCommit over the wire against a broker process: Kafka's member checks
//! (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION), UNKNOWN_TOPIC_OR_PARTITION for a missing topic, a
//! stale producer epoch, and a valid commit staying invisible to OffsetFetch
//! (UNSTABLE_OFFSET_COMMIT with `require_stable`). Nothing can end the transaction over the
//! wire without a transaction coordinator, so completion is covered by `group::txn_offsets`'s
//! unit tests.

mod common;

use std::net::TcpStream;

use bytes::Bytes;
use common::wire::{call, connect};
use common::{wait_for, BrokerProc};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn sb(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A TxnOffsetCommit of `offsets` ((topic, partition, offset)) at `version`.
fn txn_commit(
    s: &mut TcpStream,
    version: i16,
    group: &str,
    (pid, epoch): (i64, i16),
    (member, generation): (&str, i32),
    offsets: &[(&str, i32, i64)],
) -> Vec<i16> {
    let topics = offsets
        .iter()
        .map(|(t, p, o)| {
            txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(sb(t)))
                .with_partitions(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(*p)
                        .with_committed_offset(*o)
                        .with_committed_metadata(Some(sb("txn"))),
                ])
        })
        .collect();
    let mut req = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(sb("tx-1")))
        .with_group_id(GroupId(sb(group)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_topics(topics);
    if version >= 3 {
        req = req
            .with_member_id(sb(member))
            .with_generation_id(generation);
    }
    let r: TxnOffsetCommitResponse = call(s, ApiKey::TxnOffsetCommit, version, 7, &req);
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// OffsetFetch v7 of `group`'s `t-p`: (offset, partition error).
fn fetch(s: &mut TcpStream, group: &str, p: i32, require_stable: bool) -> (i64, i16) {
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_require_stable(require_stable)
        .with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(TopicName(sb("t")))
                .with_partition_indexes(vec![p]),
        ]));
    let r: OffsetFetchResponse = call(s, ApiKey::OffsetFetch, 7, 8, &req);
    assert_eq!(r.error_code, 0);
    let part = &r.topics[0].partitions[0];
    (part.committed_offset, part.error_code)
}

#[test]
fn txn_offset_commits_are_checked_and_stay_pending() {
    // The group coordinator's own checks, without a transaction coordinator in the way:
    // KIP-890's verification would refuse these producers first (tests/transactions.rs).
    let mut b = BrokerProc::start(&[
        "group.initial.rebalance.delay.ms=0",
        "offsets.topic.num.partitions=3",
        "transaction.partition.verification.enable=false",
    ]);
    let mut s = connect(&b);

    let api: ApiVersionsResponse = call(
        &mut s,
        ApiKey::ApiVersions,
        3,
        1,
        &ApiVersionsRequest::default(),
    );
    let k = api
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::TxnOffsetCommit as i16)
        .map(|k| (k.min_version, k.max_version));
    assert_eq!(
        k,
        Some((0, 5)),
        "TxnOffsetCommit v0-5 advertised (v5: transactions v2)"
    );

    let create = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(TopicName(sb("t")))
            .with_num_partitions(2)
            .with_replication_factor(1)]);
    let r: CreateTopicsResponse = call(&mut s, ApiKey::CreateTopics, 7, 2, &create);
    assert_eq!(r.topics[0].error_code, 0);

    // FindCoordinator creates __consumer_offsets; its partitions then load.
    wait_for(30, "the group coordinator", || {
        let r: FindCoordinatorResponse = call(
            &mut s,
            ApiKey::FindCoordinator,
            4,
            3,
            &FindCoordinatorRequest::default().with_coordinator_keys(vec![sb("g")]),
        );
        (r.coordinators[0].error_code == 0).then_some(())
    });

    // A member of generation 1.
    let join = |member: &str| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(sb("g")))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(sb(member))
            .with_protocol_type(sb("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(sb("range"))
            .with_metadata(Bytes::from_static(b"\0\0"))])
    };
    let member = wait_for(30, "the group's partition to load", || {
        let r: JoinGroupResponse = call(&mut s, ApiKey::JoinGroup, 5, 4, &join(""));
        (r.error_code == 79).then(|| r.member_id.to_string())
    });
    let r: JoinGroupResponse = call(&mut s, ApiKey::JoinGroup, 5, 5, &join(&member));
    assert_eq!((r.error_code, r.generation_id), (0, 1));

    let producer = (4_000, 0);
    assert_eq!(
        txn_commit(&mut s, 3, "g", producer, ("ghost", 1), &[("t", 0, 5)]),
        vec![25],
        "UNKNOWN_MEMBER_ID"
    );
    assert_eq!(
        txn_commit(&mut s, 3, "g", producer, (&member, 7), &[("t", 0, 5)]),
        vec![22],
        "ILLEGAL_GENERATION"
    );
    assert_eq!(
        txn_commit(
            &mut s,
            3,
            "g",
            producer,
            (&member, 1),
            &[("t", 0, 5), ("missing", 0, 5), ("t", 9, 5)]
        ),
        vec![0, 3, 3],
        "committed, then UNKNOWN_TOPIC_OR_PARTITION twice"
    );

    // Pending: not returned, and unstable for a fetch that requires stable offsets.
    assert_eq!(fetch(&mut s, "g", 0, false), (-1, 0));
    assert_eq!(
        fetch(&mut s, "g", 0, true),
        (-1, 88),
        "UNSTABLE_OFFSET_COMMIT"
    );
    assert_eq!(
        fetch(&mut s, "g", 1, true),
        (-1, 0),
        "nothing pending there"
    );
    let multi = OffsetFetchRequest::default()
        .with_require_stable(true)
        .with_groups(vec![
            offset_fetch_request::OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(sb("g")))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopics::default()
                        .with_name(TopicName(sb("t")))
                        .with_partition_indexes(vec![0, 1]),
                ])),
        ]);
    let r: OffsetFetchResponse = call(&mut s, ApiKey::OffsetFetch, 8, 9, &multi);
    let codes: Vec<i16> = r.groups[0].topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, vec![88, 0], "v8 per partition too");

    // v0 carries no member fields: accepted whatever the group's state (unlike OffsetCommit).
    assert_eq!(
        txn_commit(&mut s, 0, "g", producer, ("", -1), &[("t", 1, 9)]),
        vec![0]
    );
    assert_eq!(fetch(&mut s, "g", 1, true), (-1, 88));

    // A newer epoch of the producer is taken; the older one is then stale.
    assert_eq!(
        txn_commit(&mut s, 2, "g", (4_000, 1), ("", -1), &[("t", 1, 10)]),
        vec![0]
    );
    assert_eq!(
        txn_commit(&mut s, 2, "g", (4_000, 0), ("", -1), &[("t", 1, 11)]),
        vec![47],
        "INVALID_PRODUCER_EPOCH"
    );

    // A group nobody created yet is created Empty (simple commits too).
    assert_eq!(
        txn_commit(&mut s, 3, "fresh", (4_001, 0), ("", -1), &[("t", 0, 1)]),
        vec![0]
    );
    assert_eq!(fetch(&mut s, "fresh", 0, true), (-1, 88));
    assert_eq!(
        txn_commit(&mut s, 3, "", (4_001, 0), ("", -1), &[("t", 0, 1)]),
        vec![24],
        "INVALID_GROUP_ID"
    );

    // Transactions still open survive a restart: the replay keeps their offsets pending.
    drop(s);
    b.stop();
    b.restart();
    let mut s = connect(&b);
    let g0 = wait_for(30, "the offsets partitions to load again", || {
        let req = OffsetFetchRequest::default()
            .with_group_id(GroupId(sb("g")))
            .with_require_stable(true)
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(TopicName(sb("t")))
                    .with_partition_indexes(vec![0]),
            ]));
        let r: OffsetFetchResponse = call(&mut s, ApiKey::OffsetFetch, 7, 10, &req);
        let p = &r.topics.first()?.partitions.first()?;
        (r.error_code == 0).then_some((p.committed_offset, p.error_code))
    });
    assert_eq!(g0, (-1, 88));
    assert_eq!(fetch(&mut s, "g", 0, false), (-1, 0));
    assert_eq!(fetch(&mut s, "g", 1, true), (-1, 88));
    assert_eq!(fetch(&mut s, "fresh", 0, true), (-1, 88));
    assert_eq!(
        txn_commit(&mut s, 2, "g", (4_000, 0), ("", -1), &[("t", 1, 12)]),
        vec![47],
        "the producer's epoch is rebuilt with the log"
    );
}
