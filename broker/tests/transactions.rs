//! Transactions with librdkafka (the `rdkafka` crate) against a real `rill-broker` process:
//! commit and abort seen by read_committed and read_uncommitted consumers, fencing of a
//! producer by a newer instance, the abort of a transaction left open past its timeout, and
//! Kafka's error codes for bad transactional requests.

mod common;

use std::time::{Duration, Instant};

use common::checks::try_call;
use common::BrokerProc;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, GroupId};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, EndTxnRequest, EndTxnResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse,
    ProduceRequest, ProduceResponse, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

const T: Duration = Duration::from_secs(30);

/// A single node with a small `__transaction_state` and a fast timeout sweep.
fn broker() -> BrokerProc {
    BrokerProc::start(&[
        "transaction.state.log.num.partitions=3",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=300",
    ])
}

fn create_topic(b: &BrokerProc, name: &str, partitions: i32) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(common::checks::create_topic(
        &b.bootstrap,
        NewTopic::new(name, partitions, TopicReplication::Fixed(1)),
    ));
}

fn txn_producer(b: &BrokerProc, id: &str, extra: &[(&str, &str)]) -> BaseProducer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &b.bootstrap)
        .set("transactional.id", id)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("producer")
}

fn send(p: &BaseProducer, topic: &str, partition: i32, values: &[String]) {
    for v in values {
        let mut r = BaseRecord::<str, str>::to(topic)
            .partition(partition)
            .key(v.as_str())
            .payload(v.as_str());
        loop {
            match p.send(r) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    r = back;
                    p.poll(Duration::from_millis(10));
                }
                Err((e, _)) => panic!("send: {e}"),
            }
        }
    }
    p.flush(T).expect("flush");
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn read_to_end(b: &BrokerProc, topic: &str, partition: i32, isolation: &str) -> Vec<String> {
    common::checks::read_to_end(&b.bootstrap, topic, partition, isolation)
}

#[test]
fn committed_and_aborted_transactions_as_consumers_see_them() {
    let b = broker();
    create_topic(&b, "txn-out", 1);
    let p = txn_producer(&b, "txn-basic", &[]);
    p.init_transactions(T).expect("init_transactions");

    p.begin_transaction().expect("begin");
    send(&p, "txn-out", 0, &values("c1", 10));
    p.commit_transaction(T).expect("commit");

    p.begin_transaction().expect("begin");
    send(&p, "txn-out", 0, &values("a1", 5));
    p.abort_transaction(T).expect("abort");

    p.begin_transaction().expect("begin");
    send(&p, "txn-out", 0, &values("c2", 3));
    p.commit_transaction(T).expect("commit");

    let mut committed = values("c1", 10);
    committed.extend(values("c2", 3));
    // read_committed: only committed records, in order; markers never delivered.
    assert_eq!(read_to_end(&b, "txn-out", 0, "read_committed"), committed);
    // read_uncommitted: aborted records too (as Kafka's consumers see them), still no markers.
    let mut all = values("c1", 10);
    all.extend(values("a1", 5));
    all.extend(values("c2", 3));
    assert_eq!(read_to_end(&b, "txn-out", 0, "read_uncommitted"), all);
}

#[test]
fn a_newer_instance_fences_the_older_one() {
    let b = broker();
    create_topic(&b, "txn-fence", 1);
    let old = txn_producer(&b, "txn-fenced-id", &[]);
    old.init_transactions(T).expect("init old");
    old.begin_transaction().expect("begin old");
    send(&old, "txn-fence", 0, &values("old", 3));

    // The new instance's InitProducerId aborts the old one's open transaction and bumps the
    // epoch.
    let new = txn_producer(&b, "txn-fenced-id", &[]);
    new.init_transactions(T).expect("init new");
    let e = old
        .commit_transaction(T)
        .expect_err("the fenced producer cannot commit");
    assert!(fenced(&e), "fenced: {e:?}");

    new.begin_transaction().expect("begin new");
    send(&new, "txn-fence", 0, &values("new", 2));
    new.commit_transaction(T).expect("commit new");
    assert_eq!(
        read_to_end(&b, "txn-fence", 0, "read_committed"),
        values("new", 2)
    );
}

#[test]
fn a_transaction_open_past_its_timeout_is_aborted() {
    let b = broker();
    create_topic(&b, "txn-timeout", 1);
    let p = txn_producer(
        &b,
        "txn-slow",
        &[
            ("transaction.timeout.ms", "1500"),
            ("message.timeout.ms", "1500"),
        ],
    );
    p.init_transactions(T).expect("init");
    p.begin_transaction().expect("begin");
    send(&p, "txn-timeout", 0, &values("late", 4));
    // The coordinator aborts it after 1.5 s (the sweep runs every 300 ms): a read_committed
    // consumer then reaches the end without them (before, the open transaction holds the
    // last stable offset at its first record, so the end is 0 with nothing delivered either
    // way; the marker moves it past the records).
    let deadline = Instant::now() + T;
    loop {
        assert!(
            Instant::now() < deadline,
            "the transaction was never aborted"
        );
        let end = committed_end(&b, "txn-timeout");
        if end > 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(read_to_end(&b, "txn-timeout", 0, "read_committed").is_empty());
    let e = p
        .commit_transaction(T)
        .expect_err("the timed-out producer was fenced");
    assert!(fenced(&e), "fenced: {e:?}");
}

/// Whether a transactional call failed because the producer was fenced (librdkafka makes
/// that a fatal error).
fn fenced(e: &KafkaError) -> bool {
    match e {
        KafkaError::Transaction(r) => {
            r.is_fatal()
                || matches!(
                    r.code(),
                    RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch
                )
        }
        _ => false,
    }
}

/// The end offset a read_committed consumer sees (the last stable offset).
fn committed_end(b: &BrokerProc, topic: &str) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    c.fetch_watermarks(topic, 0, T).expect("watermarks").1
}

/// Sends a request to the broker, retrying while its transaction coordinator loads.
fn call<Q: kafka_protocol::protocol::Encodable, R: kafka_protocol::protocol::Decodable>(
    b: &BrokerProc,
    key: ApiKey,
    version: i16,
    req: &Q,
    code: impl Fn(&R) -> i16,
) -> R {
    common::checks::call_retrying(&b.bootstrap, key, version, req, code)
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

#[test]
fn bad_transactional_requests_get_kafkas_codes() {
    let b = broker();
    create_topic(&b, "txn-bad", 1);
    // FindCoordinator for a transactional id: this node.
    let f: FindCoordinatorResponse = call(
        &b,
        ApiKey::FindCoordinator,
        3,
        &FindCoordinatorRequest::default()
            .with_key(sb("txn-raw"))
            .with_key_type(1),
        |r: &FindCoordinatorResponse| r.error_code,
    );
    assert_eq!(f.error_code, 0, "{f:?}");
    // An empty transactional id is INVALID_REQUEST (42).
    let f: FindCoordinatorResponse = call(
        &b,
        ApiKey::FindCoordinator,
        3,
        &FindCoordinatorRequest::default()
            .with_key(sb(""))
            .with_key_type(1),
        |r: &FindCoordinatorResponse| r.error_code,
    );
    assert_eq!(f.error_code, 42);

    // EndTxn for an id the coordinator never saw: INVALID_PRODUCER_ID_MAPPING (49).
    let end = |id: &str, pid: i64, epoch: i16| -> EndTxnResponse {
        call(
            &b,
            ApiKey::EndTxn,
            3,
            &EndTxnRequest::default()
                .with_transactional_id(TransactionalId(sb(id)))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_committed(true),
            |r: &EndTxnResponse| r.error_code,
        )
    };
    assert_eq!(end("txn-never-seen", 1000, 0).error_code, 49);

    // A transaction timeout above transaction.max.timeout.ms: INVALID_TRANSACTION_TIMEOUT (50).
    let init = |timeout: i32| -> InitProducerIdResponse {
        call(
            &b,
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(sb("txn-raw"))))
                .with_transaction_timeout_ms(timeout)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
            |r: &InitProducerIdResponse| r.error_code,
        )
    };
    assert_eq!(init(900_001).error_code, 50);
    let first = init(60_000);
    assert_eq!(first.error_code, 0, "{first:?}");
    let (pid, epoch) = (first.producer_id.0, first.producer_epoch);

    let add = |topic: &str, epoch: i16| -> AddPartitionsToTxnResponse {
        call(
            &b,
            ApiKey::AddPartitionsToTxn,
            3,
            &AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(sb("txn-raw")))
                .with_v3_and_below_producer_id(ProducerId(pid))
                .with_v3_and_below_producer_epoch(epoch)
                .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(sb(topic)))
                    .with_partitions(vec![0])]),
            |r: &AddPartitionsToTxnResponse| {
                r.results_by_topic_v3_and_below
                    .first()
                    .and_then(|t| t.results_by_partition.first())
                    .map_or(-1, |p| p.partition_error_code)
            },
        )
    };
    let code = |r: &AddPartitionsToTxnResponse| {
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
    };
    // A missing topic: UNKNOWN_TOPIC_OR_PARTITION (3), and no transaction starts.
    assert_eq!(code(&add("txn-no-such-topic", epoch)), 3);
    // EndTxn with nothing open: INVALID_TXN_STATE (48).
    assert_eq!(end("txn-raw", pid, epoch).error_code, 48);
    // A stale epoch: PRODUCER_FENCED (90) at v2+.
    assert_eq!(code(&add("txn-bad", epoch - 1)), 90);
    // A real partition starts the transaction; a stale epoch cannot end it.
    assert_eq!(code(&add("txn-bad", epoch)), 0);
    assert_eq!(end("txn-raw", pid, epoch + 1).error_code, 90);
    // Another producer id for the same transactional id: INVALID_PRODUCER_ID_MAPPING (49).
    assert_eq!(end("txn-raw", pid + 1, epoch).error_code, 49);
    // The right producer commits.
    assert_eq!(end("txn-raw", pid, epoch).error_code, 0);
    // And a retry of that commit is answered NONE again.
    assert_eq!(end("txn-raw", pid, epoch).error_code, 0);
}

/// One transactional batch of `n` records from `pid`/`epoch`, sequences from 0.
fn txn_batch(pid: i64, epoch: i16, n: usize) -> bytes::Bytes {
    common::batches::txn_batch(pid, epoch, n, 1_700_000_000_000, "raw")
}

/// A transactional produce; the partition's error code.
fn produce_txn(b: &BrokerProc, id: &str, topic: &str, batch: bytes::Bytes) -> i16 {
    produce_txn_at(b, 9, id, topic, batch)
}

/// [`produce_txn`] at Produce `version`.
fn produce_txn_at(b: &BrokerProc, version: i16, id: &str, topic: &str, batch: bytes::Bytes) -> i16 {
    let req = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(sb(id))))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(sb(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])]);
    let r: ProduceResponse =
        try_call(&b.bootstrap, ApiKey::Produce, version, &req).expect("answer");
    r.responses[0].partition_responses[0].error_code
}

#[test]
fn a_partition_not_added_to_the_transaction_refuses_its_records() {
    let b = broker();
    create_topic(&b, "txn-verify", 1);
    create_topic(&b, "txn-verify-other", 1);
    let (pid, epoch) = common::checks::init_transactional(&b.bootstrap, "txn-verify-id");
    // KIP-890: without AddPartitionsToTxn the leader's check with the coordinator fails:
    // INVALID_TXN_STATE (48), and nothing is appended; a Produce v11 client, which knows
    // TRANSACTION_ABORTABLE (120), is told that instead, so it aborts rather than dies.
    assert_eq!(
        produce_txn(&b, "txn-verify-id", "txn-verify", txn_batch(pid, epoch, 3)),
        48
    );
    assert_eq!(
        produce_txn_at(
            &b,
            11,
            "txn-verify-id",
            "txn-verify",
            txn_batch(pid, epoch, 3)
        ),
        120
    );
    assert_eq!(
        read_to_end(&b, "txn-verify", 0, "read_uncommitted").len(),
        0
    );
    // A stale epoch is refused as INVALID_PRODUCER_EPOCH (47), the fenced code producers
    // know from Produce.
    let add: AddPartitionsToTxnResponse = call(
        &b,
        ApiKey::AddPartitionsToTxn,
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(sb("txn-verify-id")))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(sb("txn-verify")))
                .with_partitions(vec![0])]),
        |r: &AddPartitionsToTxnResponse| r.error_code,
    );
    assert_eq!(
        add.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    if epoch > 0 {
        assert_eq!(
            produce_txn(
                &b,
                "txn-verify-id",
                "txn-verify",
                txn_batch(pid, epoch - 1, 1)
            ),
            47
        );
    }
    // Added partition: accepted. The other topic was never added: refused.
    assert_eq!(
        produce_txn(&b, "txn-verify-id", "txn-verify", txn_batch(pid, epoch, 3)),
        0
    );
    assert_eq!(
        produce_txn(
            &b,
            "txn-verify-id",
            "txn-verify-other",
            txn_batch(pid, epoch, 3)
        ),
        48
    );
    assert_eq!(
        read_to_end(&b, "txn-verify-other", 0, "read_uncommitted").len(),
        0
    );
    // The broker-to-broker verification says the same: INVALID_TXN_STATE at v4,
    // TRANSACTION_ABORTABLE at v5; the added partition is fine either way.
    let verify = |version: i16, topic: &str| -> i16 {
        use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTransaction;
        let r: AddPartitionsToTxnResponse = call(
            &b,
            ApiKey::AddPartitionsToTxn,
            version,
            &AddPartitionsToTxnRequest::default().with_transactions(vec![
                AddPartitionsToTxnTransaction::default()
                    .with_transactional_id(TransactionalId(sb("txn-verify-id")))
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch)
                    .with_verify_only(true)
                    .with_topics(vec![AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(sb(topic)))
                        .with_partitions(vec![0])]),
            ]),
            |r: &AddPartitionsToTxnResponse| r.error_code,
        );
        r.results_by_transaction[0].topic_results[0].results_by_partition[0].partition_error_code
    };
    assert_eq!(verify(4, "txn-verify-other"), 48);
    assert_eq!(verify(5, "txn-verify-other"), 120);
    assert_eq!(verify(5, "txn-verify"), 0);
}

#[test]
fn offsets_of_a_group_not_added_to_the_transaction_are_refused() {
    let b = BrokerProc::start(&[
        "transaction.state.log.num.partitions=3",
        "offsets.topic.num.partitions=3",
    ]);
    create_topic(&b, "txn-offsets-in", 1);
    let (pid, epoch) = common::checks::init_transactional(&b.bootstrap, "txn-offsets-id");
    let commit_at = |version: i16, group: &str| -> i16 {
        common::checks::txn_offset_commit(
            &b.bootstrap,
            version,
            &common::checks::TxnCommit {
                id: "txn-offsets-id",
                producer_id: pid,
                epoch,
                group,
                topic: "txn-offsets-in",
                offset: 5,
            },
        )
    };
    let commit = |group: &str| commit_at(3, group);
    // As a client does first: find the group's coordinator (which creates the offsets topic).
    for group in ["txn-offsets-group", "txn-offsets-other"] {
        let f: FindCoordinatorResponse = call(
            &b,
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default().with_key(sb(group)),
            |r: &FindCoordinatorResponse| r.error_code,
        );
        assert_eq!(f.error_code, 0, "{f:?}");
    }
    // No AddOffsetsToTxn: INVALID_TXN_STATE (48), as KIP-890's verification answers, and
    // nothing pending for the group; TRANSACTION_ABORTABLE (120) from v4, which knows it.
    assert_eq!(commit("txn-offsets-group"), 48);
    assert_eq!(commit_at(4, "txn-offsets-group"), 120);
    // After AddOffsetsToTxn the same commit is taken.
    let add: AddOffsetsToTxnResponse = call(
        &b,
        ApiKey::AddOffsetsToTxn,
        3,
        &AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(sb("txn-offsets-id")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_group_id(GroupId(sb("txn-offsets-group"))),
        |r: &AddOffsetsToTxnResponse| r.error_code,
    );
    assert_eq!(add.error_code, 0, "{add:?}");
    assert_eq!(commit("txn-offsets-group"), 0);
    // Another group, never added, is still refused (unless it shares the offsets partition,
    // which the 3 partitions make unlikely for this pair of names; checked here).
    let other = "txn-offsets-other";
    let same_partition =
        java_hash(other).rem_euclid(3) == java_hash("txn-offsets-group").rem_euclid(3);
    if !same_partition {
        assert_eq!(commit(other), 48);
    }
}

/// Java's `String.hashCode`, as Kafka maps a group to its offsets partition (abs % n below).
fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
        .wrapping_abs()
}
