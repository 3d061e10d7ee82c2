//! Transactions v2 (KIP-890 part 2) over the wire, against real `rill-broker` processes. No
//! client available to these tests speaks it (librdkafka 2.12, kafka-python and aiokafka all
//! stay on v1; the Java client 4.x does, from `transaction.version` 2), so each request is
//! built as the Java producer sends it: no AddPartitionsToTxn or AddOffsetsToTxn, Produce v12,
//! TxnOffsetCommit v5, EndTxn v5 with the epoch it answers used for the next transaction.
//! What consumers see is checked with librdkafka at read_committed.

mod common;

use common::checks::{call_retrying, read_to_end, try_call};
use common::BrokerProc;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, DescribeTransactionsRequest,
    DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, ProduceRequest, ProduceResponse, ProducerId, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(common::checks::create_topic(
        bootstrap,
        NewTopic::new(name, partitions, TopicReplication::Fixed(1)),
    ));
}

/// The producer as the coordinator hands it out or moves it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Producer {
    id: i64,
    epoch: i16,
}

/// The node (its Kafka address) coordinating `key` (`key_type` 0 group, 1 transaction).
fn coordinator(any: &str, key: &str, key_type: i8) -> String {
    let r: FindCoordinatorResponse = call_retrying(
        any,
        ApiKey::FindCoordinator,
        3,
        &FindCoordinatorRequest::default()
            .with_key(sb(key))
            .with_key_type(key_type),
        |r: &FindCoordinatorResponse| r.error_code,
    );
    assert_eq!(r.error_code, 0, "{r:?}");
    format!("{}:{}", r.host, r.port)
}

fn init(addr: &str, id: &str) -> Producer {
    let (id, epoch) = common::checks::init_transactional(addr, id);
    Producer { id, epoch }
}

/// A transactional Produce at `version` of `n` records from sequence `seq` to
/// `topic`-`partition` on `addr`: the partition's error code.
#[allow(clippy::too_many_arguments)]
fn produce(
    addr: &str,
    version: i16,
    id: &str,
    p: Producer,
    topic: &str,
    partition: i32,
    seq: i32,
    values: &str,
) -> i16 {
    let batch = common::batches::txn_batch_from(p.id, p.epoch, seq, 2, 1_700_000_000_000, values);
    let req = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(sb(id))))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(sb(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))])]);
    let r: ProduceResponse = try_call(addr, ApiKey::Produce, version, &req).expect("answer");
    r.responses[0].partition_responses[0].error_code
}

/// EndTxn at `version`: the error code and the producer to go on with.
fn end(addr: &str, version: i16, id: &str, p: Producer, commit: bool) -> (i16, Producer) {
    let r: EndTxnResponse = call_retrying(
        addr,
        ApiKey::EndTxn,
        version,
        &EndTxnRequest::default()
            .with_transactional_id(TransactionalId(sb(id)))
            .with_producer_id(ProducerId(p.id))
            .with_producer_epoch(p.epoch)
            .with_committed(commit),
        |r: &EndTxnResponse| r.error_code,
    );
    (
        r.error_code,
        Producer {
            id: r.producer_id.0,
            epoch: r.producer_epoch,
        },
    )
}

/// TxnOffsetCommit v5 of `offset` for `group` on `topic`-0: the partition's error code.
fn commit_offset(addr: &str, id: &str, p: Producer, group: &str, topic: &str, offset: i64) -> i16 {
    common::checks::txn_offset_commit(
        addr,
        5,
        &common::checks::TxnCommit {
            id,
            producer_id: p.id,
            epoch: p.epoch,
            group,
            topic,
            offset,
        },
    )
}

/// The group's committed offset of `topic`-0, as librdkafka reads it (read_committed, so
/// only offsets of committed transactions count).
fn committed(bootstrap: &str, group: &str, topic: &str) -> Option<i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let got = c.committed_offsets(tpl, T).expect("committed offsets");
    match got.find_partition(topic, 0).map(|e| e.offset()) {
        Some(Offset::Offset(o)) => Some(o),
        _ => None,
    }
}

/// DescribeTransactions of one id: (state, producer epoch, partitions as `topic-p`).
fn describe(addr: &str, id: &str) -> (String, i16, Vec<String>) {
    let r: DescribeTransactionsResponse = call_retrying(
        addr,
        ApiKey::DescribeTransactions,
        0,
        &DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(sb(id))]),
        |r: &DescribeTransactionsResponse| r.transaction_states[0].error_code,
    );
    let s = &r.transaction_states[0];
    assert_eq!(s.error_code, 0, "{s:?}");
    let mut parts: Vec<String> = s
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| format!("{}-{p}", t.topic.0))
        })
        .collect();
    parts.sort();
    (s.transaction_state.to_string(), s.producer_epoch, parts)
}

#[test]
fn a_v2_producer_runs_transactions_without_adding_partitions() {
    let b = BrokerProc::start(&[
        "transaction.state.log.num.partitions=3",
        "offsets.topic.num.partitions=3",
    ]);
    let addr = b.bootstrap.as_str();
    create_topic(addr, "tv2", 2);
    create_topic(addr, "tv2-in", 1);

    // The feature the Java client looks for: transaction.version finalized at 2, with an
    // epoch a client accepts (above -1).
    let v: ApiVersionsResponse = try_call(
        addr,
        ApiKey::ApiVersions,
        4,
        &ApiVersionsRequest::default()
            .with_client_software_name(sb("rill-test"))
            .with_client_software_version(sb("1")),
    )
    .expect("answer");
    let finalized = v
        .finalized_features
        .iter()
        .find(|f| f.name.as_str() == "transaction.version")
        .expect("transaction.version finalized");
    assert_eq!(finalized.max_version_level, 2);
    assert!(v.finalized_features_epoch >= 0, "{v:?}");
    let max = |key: ApiKey| {
        v.api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| k.max_version)
    };
    assert!(max(ApiKey::Produce) >= Some(12));
    assert_eq!(max(ApiKey::EndTxn), Some(5));
    assert_eq!(max(ApiKey::TxnOffsetCommit), Some(5));

    let id = "tv2-producer";
    let p0 = init(addr, id);
    coordinator(addr, "tv2-group", 0);

    // Transaction 1: records to both partitions and an offset commit, nothing added first.
    assert_eq!(produce(addr, 12, id, p0, "tv2", 0, 0, "one-a"), 0);
    assert_eq!(produce(addr, 12, id, p0, "tv2", 1, 0, "one-b"), 0);
    assert_eq!(produce(addr, 12, id, p0, "tv2", 0, 2, "one-c"), 0);
    assert_eq!(commit_offset(addr, id, p0, "tv2-group", "tv2-in", 7), 0);
    let (state, epoch, parts) = describe(addr, id);
    assert_eq!((state.as_str(), epoch), ("Ongoing", p0.epoch));
    assert_eq!(
        parts.len(),
        3,
        "both partitions and the offsets partition: {parts:?}"
    );
    assert!(parts.contains(&"tv2-0".to_string()) && parts.contains(&"tv2-1".to_string()));
    assert_eq!(read_to_end(addr, "tv2", 0, "read_committed").len(), 0);

    // EndTxn v5: committed, and the epoch moves on by one.
    let (code, p1) = end(addr, 5, id, p0, true);
    assert_eq!(code, 0);
    assert_eq!(
        p1,
        Producer {
            id: p0.id,
            epoch: p0.epoch + 1
        }
    );
    assert_eq!(
        read_to_end(addr, "tv2", 0, "read_committed"),
        ["one-a-0", "one-a-1", "one-c-0", "one-c-1"]
    );
    assert_eq!(read_to_end(addr, "tv2", 1, "read_committed").len(), 2);
    assert_eq!(committed(addr, "tv2-group", "tv2-in"), Some(7));
    // The retry of that commit (its answer lost) gets the same producer back.
    assert_eq!(end(addr, 5, id, p0, true), (0, p1));
    // The old epoch is fenced: INVALID_PRODUCER_EPOCH, nothing appended.
    assert_eq!(produce(addr, 12, id, p0, "tv2", 0, 4, "stale"), 47);

    // Transaction 2 at the new epoch restarts its sequences at 0 (the marker was written at
    // this epoch), and is aborted.
    assert_eq!(produce(addr, 12, id, p1, "tv2", 0, 4, "gap"), 45);
    assert_eq!(produce(addr, 12, id, p1, "tv2", 0, 0, "two"), 0);
    assert_eq!(commit_offset(addr, id, p1, "tv2-group", "tv2-in", 9), 0);
    let (code, p2) = end(addr, 5, id, p1, false);
    assert_eq!(
        (code, p2),
        (
            0,
            Producer {
                id: p0.id,
                epoch: p1.epoch + 1
            }
        )
    );
    assert_eq!(read_to_end(addr, "tv2", 0, "read_committed").len(), 4);
    assert_eq!(read_to_end(addr, "tv2", 0, "read_uncommitted").len(), 6);
    assert_eq!(committed(addr, "tv2-group", "tv2-in"), Some(7));

    // Nothing open: a commit is INVALID_TXN_STATE, an abort only bumps the epoch.
    assert_eq!(end(addr, 5, id, p2, true).0, 48);
    let (code, p3) = end(addr, 5, id, p2, false);
    assert_eq!((code, p3.epoch), (0, p2.epoch + 1));
    assert_eq!(describe(addr, id).1, p3.epoch);

    // A v1 EndTxn (v4) of a transaction a v2 leader add opened: no bump, no producer in the
    // answer, and the producer carries on at the same epoch.
    assert_eq!(produce(addr, 12, id, p3, "tv2", 1, 0, "three"), 0);
    assert_eq!(
        end(addr, 4, id, p3, true),
        (0, Producer { id: -1, epoch: -1 })
    );
    assert_eq!(describe(addr, id).1, p3.epoch);
    assert_eq!(read_to_end(addr, "tv2", 1, "read_committed").len(), 4);
}

#[test]
fn leaders_add_partitions_at_a_coordinator_on_another_node() {
    let nodes = common::start_cluster(
        3,
        &[
            "transaction.state.log.num.partitions=3",
            "transaction.state.log.replication.factor=3",
            "transaction.state.log.min.isr=2",
            "offsets.topic.num.partitions=3",
        ],
    );
    let any = nodes[0].bootstrap.as_str();
    create_topic(any, "tv2-spread", 3);
    let id = "tv2-remote";
    let txn_coordinator = coordinator(any, id, 1);
    let p = init(&txn_coordinator, id);

    // Every partition whose leader is not the transaction coordinator: its leader adds it
    // with AddPartitionsToTxn v5 sent to the coordinator.
    let md: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", any)
        .create()
        .expect("client");
    let meta = md.fetch_metadata(Some("tv2-spread"), T).expect("metadata");
    let leader_of = |partition: i32| -> String {
        let leader = meta.topics()[0].partitions()[partition as usize].leader();
        let b = meta
            .brokers()
            .iter()
            .find(|b| b.id() == leader)
            .expect("leader broker");
        format!("{}:{}", b.host(), b.port())
    };
    let remote: Vec<i32> = (0..3)
        .filter(|&i| leader_of(i) != txn_coordinator)
        .collect();
    assert!(
        !remote.is_empty(),
        "3 partitions on 3 nodes, one leader elsewhere"
    );
    for &partition in &remote {
        assert_eq!(
            produce(
                &leader_of(partition),
                12,
                id,
                p,
                "tv2-spread",
                partition,
                0,
                "r"
            ),
            0,
            "partition {partition}"
        );
    }
    let group = "tv2-remote-group";
    let group_coordinator = coordinator(any, group, 0);
    create_topic(any, "tv2-remote-in", 1);
    assert_eq!(
        commit_offset(&group_coordinator, id, p, group, "tv2-remote-in", 3),
        0
    );
    let (_, _, parts) = describe(&txn_coordinator, id);
    assert_eq!(parts.len(), remote.len() + 1, "{parts:?}");
    let (code, next) = end(&txn_coordinator, 5, id, p, true);
    assert_eq!((code, next.epoch), (0, p.epoch + 1));
    for &partition in &remote {
        assert_eq!(
            read_to_end(any, "tv2-spread", partition, "read_committed"),
            ["r-0", "r-1"],
            "partition {partition}"
        );
    }
    assert_eq!(committed(any, group, "tv2-remote-in"), Some(3));
    // A stale epoch at a remote leader: the coordinator's PRODUCER_FENCED reaches the
    // producer as INVALID_PRODUCER_EPOCH.
    assert_eq!(
        produce(
            &leader_of(remote[0]),
            12,
            id,
            p,
            "tv2-spread",
            remote[0],
            2,
            "s"
        ),
        47
    );
}
