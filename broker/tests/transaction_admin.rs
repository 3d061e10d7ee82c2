//! The transaction admin APIs (KIP-664) against a real `rill-broker` process:
//! ListTransactions, DescribeTransactions and DescribeProducers on a transaction left open by
//! librdkafka's transactional producer and after its commit, Kafka's error codes for unknown
//! ids and partitions, and a hanging transaction (records of a producer the coordinator knows
//! nothing about) seen by DescribeProducers and ended by WriteTxnMarkers as
//! `kafka-transactions.sh abort` ends it, Kafka's permission checks, and the coordinator's
//! and last stable offset's gauges.

mod common;

use std::time::{Duration, Instant};

use common::checks::try_call;
use common::BrokerProc;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::describe_producers_response::ProducerState;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeProducersResponse, DescribeTransactionsRequest,
    DescribeTransactionsResponse, InitProducerIdRequest, InitProducerIdResponse,
    ListTransactionsRequest, ListTransactionsResponse, ProduceRequest, ProduceResponse, ProducerId,
    TopicName, TransactionalId, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const T: Duration = Duration::from_secs(30);

fn broker() -> BrokerProc {
    BrokerProc::start(&["transaction.state.log.num.partitions=3"])
}

fn create_topic(b: &BrokerProc, name: &str) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(common::checks::create_topic(
        &b.bootstrap,
        NewTopic::new(name, 1, TopicReplication::Fixed(1)),
    ));
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Sends a request, retrying while the transaction coordinator loads (14) or is not
/// available yet (15).
fn call<Q: kafka_protocol::protocol::Encodable, R: kafka_protocol::protocol::Decodable>(
    b: &BrokerProc,
    key: ApiKey,
    version: i16,
    req: &Q,
    code: impl Fn(&R) -> i16,
) -> R {
    common::checks::call_retrying(&b.bootstrap, key, version, req, code)
}

fn list(b: &BrokerProc, version: i16, req: ListTransactionsRequest) -> ListTransactionsResponse {
    call(
        b,
        ApiKey::ListTransactions,
        version,
        &req,
        |r: &ListTransactionsResponse| r.error_code,
    )
}

fn describe(b: &BrokerProc, id: &str) -> DescribeTransactionsResponse {
    call(
        b,
        ApiKey::DescribeTransactions,
        0,
        &DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(sb(id))]),
        |r: &DescribeTransactionsResponse| r.transaction_states.first().map_or(0, |s| s.error_code),
    )
}

/// The error code and producers of one partition.
fn producers(b: &BrokerProc, topic: &str, partition: i32) -> (i16, Vec<ProducerState>) {
    let r: DescribeProducersResponse = try_call(
        &b.bootstrap,
        ApiKey::DescribeProducers,
        0,
        &DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
            .with_name(TopicName(sb(topic)))
            .with_partition_indexes(vec![partition])]),
    )
    .expect("answer");
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.partition_index, partition);
    (p.error_code, p.active_producers.clone())
}

fn ids(r: &ListTransactionsResponse) -> Vec<(String, i64, String)> {
    r.transaction_states
        .iter()
        .map(|s| {
            (
                s.transactional_id.0.to_string(),
                s.producer_id.0,
                s.transaction_state.to_string(),
            )
        })
        .collect()
}

#[test]
fn an_open_transaction_as_the_admin_apis_show_it() {
    let b = broker();
    create_topic(&b, "txn-admin");
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("transactional.id", "txn-admin-id")
        .set("transaction.timeout.ms", "45000")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    p.init_transactions(T).expect("init");
    p.begin_transaction().expect("begin");
    let started = common_now_ms();
    for i in 0..3 {
        p.send(
            BaseRecord::<str, str>::to("txn-admin")
                .partition(0)
                .payload(&format!("v{i}")),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    }
    p.flush(T).expect("flush");

    // ListTransactions: the id, Ongoing; the state and producer filters select it or not.
    let all = list(&b, 0, ListTransactionsRequest::default());
    assert_eq!(all.error_code, 0);
    let listed = ids(&all);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let (id, pid, state) = listed[0].clone();
    assert_eq!((id.as_str(), state.as_str()), ("txn-admin-id", "Ongoing"));
    let ongoing = list(
        &b,
        0,
        ListTransactionsRequest::default().with_state_filters(vec![sb("Ongoing")]),
    );
    assert_eq!(ids(&ongoing).len(), 1);
    let empty = list(
        &b,
        0,
        ListTransactionsRequest::default().with_state_filters(vec![sb("CompleteCommit")]),
    );
    assert!(ids(&empty).is_empty());
    // Kafka's names exactly: an unknown one is echoed back and matches nothing.
    let unknown = list(
        &b,
        0,
        ListTransactionsRequest::default().with_state_filters(vec![sb("ongoing")]),
    );
    assert!(ids(&unknown).is_empty());
    assert_eq!(unknown.unknown_state_filters, vec![sb("ongoing")]);
    let by_pid = list(
        &b,
        0,
        ListTransactionsRequest::default().with_producer_id_filters(vec![ProducerId(pid)]),
    );
    assert_eq!(ids(&by_pid).len(), 1);
    let other_pid = list(
        &b,
        0,
        ListTransactionsRequest::default().with_producer_id_filters(vec![ProducerId(pid + 1)]),
    );
    assert!(ids(&other_pid).is_empty());
    // v1 (KIP-994): running longer than an hour, no; longer than 0 ms, yes.
    let long = list(
        &b,
        1,
        ListTransactionsRequest::default().with_duration_filter(3_600_000),
    );
    assert!(ids(&long).is_empty());
    let short = list(
        &b,
        1,
        ListTransactionsRequest::default().with_duration_filter(0),
    );
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(ids(&short).len(), 1);

    // DescribeTransactions: Ongoing, the partition, the client's timeout, a start time.
    let d = describe(&b, "txn-admin-id");
    let s = &d.transaction_states[0];
    assert_eq!(s.error_code, 0, "{s:?}");
    assert_eq!(s.transaction_state.as_str(), "Ongoing");
    assert_eq!(s.producer_id.0, pid);
    assert_eq!(s.transaction_timeout_ms, 45_000);
    assert!(
        s.transaction_start_time_ms >= started - 5_000
            && s.transaction_start_time_ms <= common_now_ms(),
        "start {} vs {started}",
        s.transaction_start_time_ms
    );
    assert_eq!(s.topics.len(), 1);
    assert_eq!(s.topics[0].topic.0.as_str(), "txn-admin");
    assert_eq!(s.topics[0].partitions, vec![0]);

    // DescribeProducers: the producer, its open transaction starting at offset 0.
    let (code, ps) = producers(&b, "txn-admin", 0);
    assert_eq!(code, 0);
    let me: Vec<_> = ps.iter().filter(|s| s.producer_id.0 == pid).collect();
    assert_eq!(me.len(), 1, "{ps:?}");
    assert_eq!(me[0].current_txn_start_offset, 0);
    assert_eq!(me[0].last_sequence, 2);
    assert_eq!(i64::from(me[0].producer_epoch), i64::from(s.producer_epoch));

    // The coordinator's gauges: one Ongoing id, none past its timeout, every state listed.
    let (status, metrics) = b.http_get("/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("rill_transaction_coordinator_transactional_ids{state=\"Ongoing\"} 1"),
        "{metrics}"
    );
    assert!(metrics
        .contains("rill_transaction_coordinator_transactional_ids{state=\"CompleteAbort\"} 0"));
    assert!(metrics.contains("rill_transaction_coordinator_open_past_timeout 0"));
    // The open transaction holds the last stable offset at its first record: 3 behind.
    assert!(
        metrics.contains("rill_log_last_stable_offset_lag{partition=\"0\",topic=\"txn-admin\"} 3"),
        "{metrics}"
    );

    p.commit_transaction(T).expect("commit");
    let (_, metrics) = b.http_get("/metrics");
    assert!(
        metrics
            .contains("rill_transaction_coordinator_transactional_ids{state=\"CompleteCommit\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rill_log_last_stable_offset_lag{partition=\"0\",topic=\"txn-admin\"} 0"),
        "{metrics}"
    );
    let d = describe(&b, "txn-admin-id");
    let s = &d.transaction_states[0];
    assert_eq!(s.transaction_state.as_str(), "CompleteCommit");
    assert!(s.topics.is_empty(), "{s:?}");
    let (_, ps) = producers(&b, "txn-admin", 0);
    let me = ps
        .iter()
        .find(|s| s.producer_id.0 == pid)
        .expect("producer");
    assert_eq!(me.current_txn_start_offset, -1);
    assert!(
        me.coordinator_epoch >= 0,
        "the marker's coordinator epoch: {me:?}"
    );
    let done = list(
        &b,
        0,
        ListTransactionsRequest::default().with_state_filters(vec![sb("CompleteCommit")]),
    );
    assert_eq!(ids(&done).len(), 1);

    // Unknown id: TRANSACTIONAL_ID_NOT_FOUND (105). Missing partition:
    // UNKNOWN_TOPIC_OR_PARTITION (3).
    assert_eq!(
        describe(&b, "txn-never-seen").transaction_states[0].error_code,
        105
    );
    assert_eq!(producers(&b, "txn-admin", 7).0, 3);
    assert_eq!(producers(&b, "txn-no-such-topic", 0).0, 3);
}

fn common_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One transactional batch of `n` records from `pid`/`epoch`, sequences from 0.
fn txn_batch(pid: i64, epoch: i16, n: usize, timestamp: i64) -> bytes::Bytes {
    common::batches::txn_batch(pid, epoch, n, timestamp, "hanging")
}

#[test]
fn a_hanging_transaction_is_seen_and_aborted_with_markers() {
    let b = broker();
    create_topic(&b, "txn-hang");
    // An idempotent producer id (no transactional id): the coordinator knows nothing of it.
    let init: InitProducerIdResponse = call(
        &b,
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
        |r: &InitProducerIdResponse| r.error_code,
    );
    assert_eq!(init.error_code, 0, "{init:?}");
    let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
    // A transactional batch sent without a transactional id: no KIP-890 check applies, so it
    // opens a transaction no coordinator will ever end (what old clients and brokers left).
    let old = common_now_ms() - 30 * 60 * 1000;
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(sb("txn-hang")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(txn_batch(pid, epoch, 2, old)))])]);
    let r: ProduceResponse = try_call(&b.bootstrap, ApiKey::Produce, 9, &req).expect("answer");
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);

    let (code, ps) = producers(&b, "txn-hang", 0);
    assert_eq!(code, 0);
    let open = ps
        .iter()
        .find(|s| s.producer_id.0 == pid)
        .expect("producer");
    assert_eq!(open.current_txn_start_offset, 0);
    assert_eq!(open.coordinator_epoch, -1);
    assert_eq!(open.last_timestamp, old);
    // No coordinator lists that producer: the transaction hangs.
    let l = list(
        &b,
        0,
        ListTransactionsRequest::default().with_producer_id_filters(vec![ProducerId(pid)]),
    );
    assert!(ids(&l).is_empty());

    // Abort as kafka-transactions.sh does: WriteTxnMarkers(ABORT) to the leader with the
    // producer's id and epoch, coordinator epoch 0 (it never had one).
    let w: WriteTxnMarkersResponse = try_call(
        &b.bootstrap,
        ApiKey::WriteTxnMarkers,
        1,
        &WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_transaction_result(false)
            .with_coordinator_epoch(0)
            .with_topics(vec![WritableTxnMarkerTopic::default()
                .with_name(TopicName(sb("txn-hang")))
                .with_partition_indexes(vec![0])])]),
    )
    .expect("answer");
    assert_eq!(w.markers[0].topics[0].partitions[0].error_code, 0, "{w:?}");
    let (_, ps) = producers(&b, "txn-hang", 0);
    let closed = ps
        .iter()
        .find(|s| s.producer_id.0 == pid)
        .expect("producer");
    assert_eq!(closed.current_txn_start_offset, -1);
    assert_eq!(closed.coordinator_epoch, 0);
}

/// One ACL for User:ANONYMOUS (the PLAINTEXT principal) from any host, literal.
fn acl(
    resource_type: i8,
    name: &str,
    operation: i8,
    permission: i8,
) -> kafka_protocol::messages::create_acls_request::AclCreation {
    kafka_protocol::messages::create_acls_request::AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(sb(name))
        .with_resource_pattern_type(3)
        .with_principal(sb("User:ANONYMOUS"))
        .with_host(sb("*"))
        .with_operation(operation)
        .with_permission_type(permission)
}

#[test]
fn the_admin_apis_check_kafkas_permissions() {
    let b = BrokerProc::start(&[
        "transaction.state.log.num.partitions=3",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=true",
    ]);
    create_topic(&b, "txn-auth-open");
    create_topic(&b, "txn-auth-secret");
    // Both ids get a producer while nothing is denied.
    let producer = |id: &str| -> BaseProducer {
        let p: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &b.bootstrap)
            .set("transactional.id", id)
            .create()
            .expect("producer");
        p.init_transactions(T).expect("init");
        p
    };
    let _open = producer("txn-auth-open-id");
    let _secret = producer("txn-auth-secret-id");

    // Then the secret id may not be described (FindCoordinator needs DESCRIBE too, so its
    // producer started first) and the secret topic not read. Resource types: TOPIC 2,
    // TRANSACTIONAL_ID 5; operations: READ 3, DESCRIBE 8; permission DENY 2.
    let (topic, txn_id) = (2, 5);
    let (read, describe_op, deny) = (3, 8, 2);
    let r: kafka_protocol::messages::CreateAclsResponse = try_call(
        &b.bootstrap,
        ApiKey::CreateAcls,
        3,
        &kafka_protocol::messages::CreateAclsRequest::default().with_creations(vec![
            acl(txn_id, "txn-auth-secret-id", describe_op, deny),
            acl(topic, "txn-auth-secret", read, deny),
        ]),
    )
    .expect("answer");
    assert!(r.results.iter().all(|c| c.error_code == 0), "{r:?}");

    // DescribeTransactions: TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53) for the secret id.
    let deadline = Instant::now() + T;
    loop {
        let code = describe(&b, "txn-auth-secret-id").transaction_states[0].error_code;
        if code == 53 {
            break;
        }
        assert!(Instant::now() < deadline, "never refused: {code}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        describe(&b, "txn-auth-open-id").transaction_states[0].error_code,
        0
    );
    // ListTransactions lists only the ids the principal may describe.
    let listed: Vec<String> = ids(&list(&b, 0, ListTransactionsRequest::default()))
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    assert_eq!(listed, vec!["txn-auth-open-id".to_string()]);
    // DescribeProducers needs READ on the topic: TOPIC_AUTHORIZATION_FAILED (29).
    assert_eq!(producers(&b, "txn-auth-secret", 0).0, 29);
    assert_eq!(producers(&b, "txn-auth-open", 0).0, 0);
}
