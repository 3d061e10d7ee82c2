//! Client quotas over the wire against a real `rill-broker` (KIP-546's APIs, Kafka's
//! throttling): AlterClientQuotas validates each entry on its own and honours validate_only,
//! DescribeClientQuotas filters as Kafka's image does; a produce beyond `producer_byte_rate`
//! is answered at once with `throttle_time_ms` and the connection is then muted (KIP-219),
//! while an older Produce version gets its answer late instead; the request quota's throttle
//! is bounded by one window.

mod common;

use std::time::{Duration, Instant};

use common::wire::{call, connect, frame, response};
use common::BrokerProc;
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};
use std::io::Write;

/// The client id of every request `common::wire` frames.
const CLIENT: &str = "bad-input-test";

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn entry(entity: &[(&str, Option<&str>)], ops: &[(&str, f64, bool)]) -> EntryData {
    EntryData::default()
        .with_entity(
            entity
                .iter()
                .map(|(t, n)| {
                    EntityData::default()
                        .with_entity_type(sb(t))
                        .with_entity_name(n.map(sb))
                })
                .collect(),
        )
        .with_ops(
            ops.iter()
                .map(|(k, v, remove)| {
                    OpData::default()
                        .with_key(sb(k))
                        .with_value(*v)
                        .with_remove(*remove)
                })
                .collect(),
        )
}

fn alter(b: &BrokerProc, entries: Vec<EntryData>, validate_only: bool) -> Vec<(i16, String)> {
    let mut s = connect(b);
    let r: AlterClientQuotasResponse = call(
        &mut s,
        ApiKey::AlterClientQuotas,
        1,
        1,
        &AlterClientQuotasRequest::default()
            .with_entries(entries)
            .with_validate_only(validate_only),
    );
    r.entries
        .iter()
        .map(|e| {
            (
                e.error_code,
                e.error_message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// (entity as "type=name,...", key=value sorted) of every matching entry.
fn describe(b: &BrokerProc, components: Vec<ComponentData>, strict: bool) -> Vec<String> {
    let mut s = connect(b);
    let r: DescribeClientQuotasResponse = call(
        &mut s,
        ApiKey::DescribeClientQuotas,
        0,
        2,
        &DescribeClientQuotasRequest::default()
            .with_components(components)
            .with_strict(strict),
    );
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    let mut out: Vec<String> = r
        .entries
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let entity: Vec<String> = e
                .entity
                .iter()
                .map(|p| {
                    format!(
                        "{}={}",
                        p.entity_type.as_str(),
                        p.entity_name.as_ref().map_or("<default>", |n| n.as_str())
                    )
                })
                .collect();
            let values: Vec<String> = e
                .values
                .iter()
                .map(|v| format!("{}={}", v.key.as_str(), v.value))
                .collect();
            format!("{} {}", entity.join(","), values.join(","))
        })
        .collect();
    out.sort();
    out
}

fn component(kind: &str, match_type: i8, name: Option<&str>) -> ComponentData {
    ComponentData::default()
        .with_entity_type(sb(kind))
        .with_match_type(match_type)
        .with_match(name.map(sb))
}

#[test]
fn alter_validates_each_entry_and_describe_filters() {
    let b = BrokerProc::start(&[]);
    let results = alter(
        &b,
        vec![
            entry(
                &[("user", Some("alice"))],
                &[("producer_byte_rate", 1024.0, false)],
            ),
            entry(
                &[("user", Some("bob"))],
                &[("producer_byte_rate", 10.5, false)],
            ),
            entry(&[("client-id", Some("app"))], &[("bogus_rate", 1.0, false)]),
            entry(&[], &[("request_percentage", 5.0, false)]),
            entry(
                &[("group", Some("g"))],
                &[("request_percentage", 5.0, false)],
            ),
            entry(
                &[("user", None), ("client-id", None)],
                &[
                    ("consumer_byte_rate", 2048.0, false),
                    ("request_percentage", 12.5, false),
                ],
            ),
            entry(
                &[("client-id", Some("zero"))],
                &[("consumer_byte_rate", 0.0, false)],
            ),
            entry(
                &[("user", Some("m"))],
                &[("controller_mutation_rate", 5.0, false)],
            ),
            // Removing a key that is not there, even an unknown one, is a no-op.
            entry(&[("user", Some("n"))], &[("whatever", 0.0, true)]),
        ],
        false,
    );
    let codes: Vec<i16> = results.iter().map(|r| r.0).collect();
    assert_eq!(codes, [0, 42, 42, 42, 42, 0, 42, 0, 0], "{results:?}");
    assert!(
        results[1].1.contains("cannot be a fractional value"),
        "{results:?}"
    );
    assert!(
        results[6].1.contains("must be greater than 0"),
        "{results:?}"
    );
    assert!(results[2].1.contains("bogus_rate"), "{results:?}");
    assert_eq!(
        describe(&b, vec![], false),
        [
            "user=<default>,client-id=<default> consumer_byte_rate=2048,request_percentage=12.5",
            "user=alice producer_byte_rate=1024",
            "user=m controller_mutation_rate=5",
        ]
    );
    // validate_only checks and answers, and changes nothing.
    let dry = alter(
        &b,
        vec![entry(
            &[("client-id", Some("dry"))],
            &[("producer_byte_rate", 1.0, false)],
        )],
        true,
    );
    assert_eq!(dry, [(0, String::new())]);
    assert_eq!(describe(&b, vec![], false).len(), 3);

    // EXACT, DEFAULT, SPECIFIED; strict.
    assert_eq!(
        describe(&b, vec![component("user", 0, Some("alice"))], false),
        ["user=alice producer_byte_rate=1024"]
    );
    assert_eq!(
        describe(&b, vec![component("user", 1, None)], false),
        ["user=<default>,client-id=<default> consumer_byte_rate=2048,request_percentage=12.5"]
    );
    assert_eq!(
        describe(&b, vec![component("user", 1, None)], true),
        Vec::<String>::new()
    );
    assert_eq!(
        describe(&b, vec![component("user", 2, None)], false).len(),
        3
    );
    // A bad filter is the whole answer's INVALID_REQUEST.
    let mut s = connect(&b);
    let r: DescribeClientQuotasResponse = call(
        &mut s,
        ApiKey::DescribeClientQuotas,
        1,
        3,
        &DescribeClientQuotasRequest::default().with_components(vec![component("user", 0, None)]),
    );
    assert_eq!(r.error_code, 42);
    assert!(r.entries.is_none());

    // Removing every key removes the entity.
    let removed = alter(
        &b,
        vec![entry(
            &[("user", Some("alice"))],
            &[("producer_byte_rate", 0.0, true)],
        )],
        false,
    );
    assert_eq!(removed, [(0, String::new())]);
    assert_eq!(
        describe(&b, vec![component("user", 0, Some("alice"))], false).len(),
        0
    );
}

fn produce(version: i16, topic: &str) -> (ProduceRequest, i16) {
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(sb(topic)))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(common::wire::batch(400).freeze())),
            ])]);
    (req, version)
}

#[test]
fn a_produce_over_the_byte_rate_is_throttled_then_muted() {
    let b = BrokerProc::start(&[]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(common::checks::create_topic(
        &b.bootstrap,
        NewTopic::new("q", 1, TopicReplication::Fixed(1)),
    ));
    let (req, v) = produce(9, "q");
    let size = frame(ApiKey::Produce, v, 1, &req).len() - 4;
    // A bound of a tenth of one request per second: the first request is the whole
    // ten-second window's allowance, so it passes; the second one doubles it.
    let bound = (size / 10 + 2) as f64;
    let set = alter(
        &b,
        vec![entry(
            &[("client-id", Some(CLIENT))],
            &[("producer_byte_rate", bound, false)],
        )],
        false,
    );
    assert_eq!(set, [(0, String::new())]);

    let mut s = connect(&b);
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let first: ProduceResponse = call(&mut s, ApiKey::Produce, v, 1, &req);
    assert_eq!(first.throttle_time_ms, 0);
    let sent = Instant::now();
    let second: ProduceResponse = call(&mut s, ApiKey::Produce, v, 2, &req);
    let answered = sent.elapsed();
    let code = second.responses[0].partition_responses[0].error_code;
    assert_eq!(code, 0, "a throttled produce is still appended");
    // About ten seconds: twice the bound over the ten-second window.
    let t = second.throttle_time_ms;
    assert!((9_000..=11_000).contains(&t), "throttle_time_ms {t}");
    assert!(
        answered < Duration::from_secs(5),
        "KIP-219: answered at once, not after {answered:?}"
    );
    // Muted: the next request on this connection waits out the throttle.
    let asked = Instant::now();
    let _: ApiVersionsResponse = call(
        &mut s,
        ApiKey::ApiVersions,
        3,
        3,
        &ApiVersionsRequest::default(),
    );
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_millis(u64::try_from(t).expect("positive") - 1_000),
        "the connection was not muted: answered after {waited:?} of a {t} ms throttle"
    );

    // Produce v5 (before KIP-219's client side): answered at once too, as Kafka 3.7+ do, with
    // the throttle to wait out.
    let (old, ov) = produce(5, "q");
    let mut s2 = connect(&b);
    s2.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let asked = Instant::now();
    s2.write_all(&frame(ApiKey::Produce, ov, 4, &old))
        .expect("write");
    let v5: ProduceResponse = response(&mut s2, ApiKey::Produce, ov, 4);
    assert!(v5.throttle_time_ms > 0);
    assert!(asked.elapsed() < Duration::from_secs(5), "v5 answered late");

    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = reqwest_metrics(&b);
        if metrics.contains("kafka_server_produce_throttle_time{") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("kafka_server_produce_throttle_time{")
                && l.contains(&format!("client_id=\"{CLIENT}\""))),
        "{metrics}"
    );
}

fn reqwest_metrics(b: &BrokerProc) -> String {
    b.http_get("/metrics").1
}

#[test]
fn the_request_quota_throttles_at_most_one_window() {
    let b = BrokerProc::start(&[]);
    // A bound no request can stay under.
    let set = alter(
        &b,
        vec![entry(
            &[("user", Some("ANONYMOUS"))],
            &[("request_percentage", 1e-9, false)],
        )],
        false,
    );
    assert_eq!(set, [(0, String::new())]);
    let mut s = connect(&b);
    let m: MetadataResponse = call(
        &mut s,
        ApiKey::Metadata,
        12,
        1,
        &MetadataRequest::default().with_topics(None),
    );
    assert_eq!(
        m.throttle_time_ms, 1000,
        "bounded by quota.window.size.seconds"
    );
}

fn create_topics(
    b: &BrokerProc,
    version: i16,
    names: &[&str],
    partitions: i32,
) -> CreateTopicsResponse {
    let mut s = connect(b);
    call(
        &mut s,
        ApiKey::CreateTopics,
        version,
        9,
        &CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(
                names
                    .iter()
                    .map(|n| {
                        create_topics_request::CreatableTopic::default()
                            .with_name(TopicName(sb(n)))
                            .with_num_partitions(partitions)
                            .with_replication_factor(1)
                    })
                    .collect(),
            ),
    )
}

#[test]
fn partition_mutations_beyond_the_quota_are_refused_or_throttled() {
    let b = BrokerProc::start(&[]);
    // One partition a second: a bucket of 11.
    let set = alter(
        &b,
        vec![entry(
            &[("client-id", Some(CLIENT))],
            &[("controller_mutation_rate", 1.0, false)],
        )],
        false,
    );
    assert_eq!(set, [(0, String::new())]);
    // v7 is strict: the first topic fits (11 - 10), the second is admitted whole though it
    // takes the bucket below zero (1 - 10), the third is refused.
    let r = create_topics(&b, 7, &["m1", "m2", "m3"], 10);
    let codes: Vec<i16> = r.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, [0, 0, 89], "{r:?}");
    assert!(
        (8_000..=9_000).contains(&r.throttle_time_ms),
        "throttle {}",
        r.throttle_time_ms
    );
    // DeleteTopics v5 is strict too: refused while the bucket is below zero.
    let mut s = connect(&b);
    let d: DeleteTopicsResponse = call(
        &mut s,
        ApiKey::DeleteTopics,
        5,
        10,
        &DeleteTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topic_names(vec![TopicName(sb("m1"))]),
    );
    assert_eq!(d.responses[0].error_code, 89, "{d:?}");
    // v5 is permissive: created, and throttled.
    let old = create_topics(&b, 5, &["m4"], 2);
    assert_eq!(old.topics[0].error_code, 0, "{old:?}");
    assert!(
        old.throttle_time_ms >= 8_000,
        "throttle {}",
        old.throttle_time_ms
    );
}
