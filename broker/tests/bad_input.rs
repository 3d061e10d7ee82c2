//! Hostile and malformed input over a raw socket: the broker answers with Kafka's error codes or
//! closes only the offending connection, and keeps serving everyone else.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::{Bytes, BytesMut};
use common::wire::{batch, connect, frame, response};
use common::BrokerProc;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn assert_closed(s: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 1];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("{what}: expected the broker to close the connection, got {other:?}"),
    }
}

fn api_versions_ok(b: &BrokerProc) {
    let mut s = connect(b);
    s.write_all(&frame(
        ApiKey::ApiVersions,
        3,
        1,
        &ApiVersionsRequest::default(),
    ))
    .expect("write");
    let r: ApiVersionsResponse = response(&mut s, ApiKey::ApiVersions, 3, 1);
    assert_eq!(r.error_code, 0);
}

fn produce(
    s: &mut TcpStream,
    topic: &str,
    partition: i32,
    acks: i16,
    records: Bytes,
    corr: i32,
) -> PartitionProduceResponseView {
    let req = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(records)),
            ])]);
    s.write_all(&frame(ApiKey::Produce, 9, corr, &req))
        .expect("write");
    let r: ProduceResponse = response(s, ApiKey::Produce, 9, corr);
    let p = &r.responses[0].partition_responses[0];
    PartitionProduceResponseView {
        error_code: p.error_code,
        base_offset: p.base_offset,
        message: p.error_message.as_ref().map(|m| m.to_string()),
    }
}

struct PartitionProduceResponseView {
    error_code: i16,
    base_offset: i64,
    message: Option<String>,
}

/// Recomputes the CRC of the first batch (the encoder may emit several).
fn fix_crc(b: &mut BytesMut) {
    let end = 12 + i32::from_be_bytes([b[8], b[9], b[10], b[11]]) as usize;
    let crc = crc32c::crc32c(&b[21..end]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let b = BrokerProc::start(&[]);
    // A bystander connection opened first must keep working throughout.
    let mut bystander = connect(&b);

    let mut s = connect(&b);
    s.write_all(&100i32.to_be_bytes()).expect("w");
    s.write_all(&[1, 2, 3]).expect("w");
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    assert_closed(&mut s, "truncated frame");

    let mut s = connect(&b);
    s.write_all(&[
        0, 0, 0, 16, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0xde,
        0xad, 0xbe, 0xef,
    ])
    .expect("w");
    assert_closed(&mut s, "garbage bytes");

    let mut s = connect(&b);
    s.write_all(&(200 * 1024 * 1024i32).to_be_bytes())
        .expect("w");
    assert_closed(&mut s, "frame above socket.request.max.bytes");

    let mut s = connect(&b);
    s.write_all(&(-5i32).to_be_bytes()).expect("w");
    assert_closed(&mut s, "negative frame size");

    let mut s = connect(&b);
    s.write_all(&[0, 0, 0, 3, 0, 1, 2]).expect("w");
    assert_closed(&mut s, "frame too short for a header");

    let mut s = connect(&b);
    let mut f = frame(ApiKey::ApiVersions, 3, 7, &ApiVersionsRequest::default());
    f[4..6].copy_from_slice(&999i16.to_be_bytes());
    s.write_all(&f).expect("w");
    assert_closed(&mut s, "unknown API key");

    let mut s = connect(&b);
    let mut f = frame(ApiKey::Metadata, 4, 7, &MetadataRequest::default());
    f[6..8].copy_from_slice(&99i16.to_be_bytes());
    s.write_all(&f).expect("w");
    assert_closed(&mut s, "unsupported Metadata version");

    // Produce v0-2 are advertised (for old librdkafka) and answered UNSUPPORTED_VERSION per
    // partition in their own response shape (Kafka 4.0); nothing is stored. With acks=0 no
    // answer is expected, so the connection closes.
    for version in 0..=2 {
        let mut s = connect(&b);
        let req = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(1000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("old-client")))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(1).freeze())),
                ])]);
        s.write_all(&frame(ApiKey::Produce, version, 7, &req))
            .expect("w");
        let r: ProduceResponse = response(&mut s, ApiKey::Produce, version, 7);
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(
            (p.index, p.error_code, p.base_offset),
            (0, 35, -1),
            "v{version}"
        );
    }
    let mut s = connect(&b);
    s.write_all(&frame(
        ApiKey::Produce,
        2,
        7,
        &ProduceRequest::default().with_acks(0),
    ))
    .expect("w");
    assert_closed(&mut s, "acks=0 Produce v2");

    // A valid header with a body cut short.
    let mut s = connect(&b);
    let full = frame(
        ApiKey::Metadata,
        12,
        7,
        &MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(TopicName(StrBytes::from_static_str("abc"))))])),
    );
    let mut cut = full[..full.len() - 3].to_vec();
    let n = (cut.len() - 4) as i32;
    cut[..4].copy_from_slice(&n.to_be_bytes());
    s.write_all(&cut).expect("w");
    assert_closed(&mut s, "truncated body");

    // KIP-511: an ApiVersions newer than ours gets a v0 answer listing what we support.
    let mut s = connect(&b);
    let mut f = frame(ApiKey::ApiVersions, 3, 9, &ApiVersionsRequest::default());
    f[6..8].copy_from_slice(&99i16.to_be_bytes());
    s.write_all(&f).expect("w");
    let r: ApiVersionsResponse = response(&mut s, ApiKey::ApiVersions, 0, 9);
    assert_eq!(r.error_code, 35, "UNSUPPORTED_VERSION");
    let produce = r
        .api_keys
        .iter()
        .find(|k| k.api_key == 0)
        .expect("Produce listed");
    assert_eq!(
        produce.min_version, 0,
        "Produce advertised from v0 (KAFKA-18659)"
    );

    bystander
        .write_all(&frame(
            ApiKey::ApiVersions,
            3,
            2,
            &ApiVersionsRequest::default(),
        ))
        .expect("w");
    let r: ApiVersionsResponse = response(&mut bystander, ApiKey::ApiVersions, 3, 2);
    assert_eq!(r.error_code, 0);
    api_versions_ok(&b);
    let mut b = b;
    assert!(b.alive(), "broker survived");
}

#[test]
fn invalid_produce_requests_get_kafka_error_codes() {
    let b = BrokerProc::start(&[]);
    let mut s = connect(&b);
    // Auto-create the topic through Metadata.
    let md = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(TopicName(StrBytes::from_static_str("t"))))]));
    s.write_all(&frame(ApiKey::Metadata, 12, 1, &md))
        .expect("w");
    let r: MetadataResponse = response(&mut s, ApiKey::Metadata, 12, 1);
    assert_eq!(r.topics[0].error_code, 0);
    assert_eq!(r.topics[0].partitions.len(), 1);

    let ok = produce(&mut s, "t", 0, 1, batch(3).freeze(), 2);
    assert_eq!((ok.error_code, ok.base_offset), (0, 0));

    let r = produce(&mut s, "t", 7, 1, batch(1).freeze(), 3);
    assert_eq!(
        r.error_code, 3,
        "UNKNOWN_TOPIC_OR_PARTITION for a missing partition"
    );
    let r = produce(&mut s, "nope", 0, 1, batch(1).freeze(), 4);
    assert_eq!(
        r.error_code, 3,
        "UNKNOWN_TOPIC_OR_PARTITION for a missing topic"
    );

    let mut bad = batch(2);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let r = produce(&mut s, "t", 0, 1, bad.freeze(), 5);
    assert_eq!(
        r.error_code, 2,
        "CORRUPT_MESSAGE for a bad CRC: {:?}",
        r.message
    );

    let mut bad = batch(2);
    bad[16] = 1;
    let r = produce(&mut s, "t", 0, 1, bad.freeze(), 6);
    assert!(
        r.error_code == 87 || r.error_code == 2,
        "wrong magic refused, got {}",
        r.error_code
    );

    let mut bad = batch(2);
    bad[57..61].copy_from_slice(&5i32.to_be_bytes());
    fix_crc(&mut bad);
    let r = produce(&mut s, "t", 0, 1, bad.freeze(), 7);
    assert_eq!(
        r.error_code, 87,
        "INVALID_RECORD for a record count mismatch: {:?}",
        r.message
    );

    let half = batch(2);
    let r = produce(&mut s, "t", 0, 1, half.freeze().slice(..30), 8);
    assert!(
        r.error_code == 2 || r.error_code == 87,
        "truncated batch refused, got {}",
        r.error_code
    );

    let r = produce(&mut s, "t", 0, 5, batch(1).freeze(), 9);
    assert_eq!(r.error_code, 21, "INVALID_REQUIRED_ACKS");

    // Nothing of the above was appended.
    let ok = produce(&mut s, "t", 0, 1, batch(1).freeze(), 10);
    assert_eq!((ok.error_code, ok.base_offset), (0, 3));
}

#[test]
fn invalid_topics_and_configs_are_refused() {
    let b = BrokerProc::start(&[]);
    let mut s = connect(&b);
    let topic = |name: &str, cfg: Option<(&str, &str)>| {
        let mut t = create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.into())))
            .with_num_partitions(1)
            .with_replication_factor(1);
        if let Some((k, v)) = cfg {
            t = t.with_configs(vec![create_topics_request::CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.into()))
                .with_value(Some(StrBytes::from_string(v.into())))]);
        }
        t
    };
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            topic("has space", None),
            topic(&"x".repeat(250), None),
            topic("ok1", Some(("segment.bytes", "1"))),
            topic("ok2", Some(("no.such.config", "1"))),
            topic("ok3", Some(("cleanup.policy", "shred"))),
            create_topics_request::CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("ok4")))
                .with_num_partitions(0)
                .with_replication_factor(1),
            create_topics_request::CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("ok5")))
                .with_num_partitions(1)
                .with_replication_factor(3),
        ]);
    s.write_all(&frame(ApiKey::CreateTopics, 7, 1, &req))
        .expect("w");
    let r: CreateTopicsResponse = response(&mut s, ApiKey::CreateTopics, 7, 1);
    let codes: Vec<i16> = r.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, vec![17, 17, 40, 40, 40, 37, 38]);
    for t in &r.topics {
        assert!(
            t.error_message.as_ref().is_some_and(|m| !m.is_empty()),
            "a message for {}",
            t.name.0
        );
    }

    // Incremental alter: a bad value, an unknown key, APPEND on a non-list key; none applied.
    let good = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![topic("cfg", Some(("retention.ms", "5000")))]);
    s.write_all(&frame(ApiKey::CreateTopics, 7, 3, &good))
        .expect("w");
    let r: CreateTopicsResponse = response(&mut s, ApiKey::CreateTopics, 7, 3);
    assert_eq!(r.topics[0].error_code, 0);
    let alter = |ops: Vec<(&str, i8, &str)>| {
        IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("cfg"))
                .with_configs(
                    ops.into_iter()
                        .map(|(k, op, v)| {
                            incremental_alter_configs_request::AlterableConfig::default()
                                .with_name(StrBytes::from_string(k.into()))
                                .with_config_operation(op)
                                .with_value(Some(StrBytes::from_string(v.into())))
                        })
                        .collect(),
                ),
        ])
    };
    for (i, ops) in [
        vec![("retention.ms", 0, "-7")],
        vec![("segment.ms", 0, "1"), ("no.such", 0, "1")],
        vec![("retention.ms", 2, "1")],
    ]
    .into_iter()
    .enumerate()
    {
        let corr = 10 + i as i32;
        s.write_all(&frame(
            ApiKey::IncrementalAlterConfigs,
            1,
            corr,
            &alter(ops),
        ))
        .expect("w");
        let r: IncrementalAlterConfigsResponse =
            response(&mut s, ApiKey::IncrementalAlterConfigs, 1, corr);
        assert_eq!(r.responses[0].error_code, 40, "INVALID_CONFIG");
        assert!(r.responses[0]
            .error_message
            .as_ref()
            .is_some_and(|m| !m.is_empty()));
    }
    let describe = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("cfg"))
            .with_configuration_keys(Some(vec![
                StrBytes::from_static_str("retention.ms"),
                StrBytes::from_static_str("segment.ms"),
            ])),
    ]);
    s.write_all(&frame(ApiKey::DescribeConfigs, 4, 20, &describe))
        .expect("w");
    let r: DescribeConfigsResponse = response(&mut s, ApiKey::DescribeConfigs, 4, 20);
    let vals: Vec<(String, String)> = r.results[0]
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        vals,
        vec![
            ("retention.ms".to_string(), "5000".to_string()),
            ("segment.ms".to_string(), "604800000".to_string())
        ],
        "nothing half-applied"
    );

    let md = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(TopicName(StrBytes::from_static_str("bad/name"))))]));
    s.write_all(&frame(ApiKey::Metadata, 12, 2, &md))
        .expect("w");
    let r: MetadataResponse = response(&mut s, ApiKey::Metadata, 12, 2);
    assert_eq!(r.topics[0].error_code, 17);
    assert!(r
        .topics
        .iter()
        .all(|t| t.name.as_ref().map(|n| n.0.as_str()) != Some("ok1")));
}

#[test]
fn group_requests_from_strangers_get_kafka_errors() {
    let b = BrokerProc::start(&["group.initial.rebalance.delay.ms=0"]);
    let mut s = connect(&b);
    let sb = |v: &str| StrBytes::from_string(v.to_string());
    s.write_all(&frame(
        ApiKey::FindCoordinator,
        4,
        1,
        &FindCoordinatorRequest::default().with_coordinator_keys(vec![sb("g")]),
    ))
    .expect("w");
    let r: FindCoordinatorResponse = response(&mut s, ApiKey::FindCoordinator, 4, 1);
    assert_eq!(r.coordinators[0].error_code, 0);
    assert_eq!(r.coordinators[0].node_id.0, 1);

    let join = |member: &str, session: i32| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(sb("g")))
            .with_session_timeout_ms(session)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(sb(member))
            .with_protocol_type(sb("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(sb("range"))
            .with_metadata(Bytes::from_static(b"\0\0"))])
    };
    s.write_all(&frame(ApiKey::JoinGroup, 5, 2, &join("", 1)))
        .expect("w");
    let r: JoinGroupResponse = response(&mut s, ApiKey::JoinGroup, 5, 2);
    assert_eq!(
        r.error_code, 26,
        "INVALID_SESSION_TIMEOUT below group.min.session.timeout.ms"
    );

    s.write_all(&frame(
        ApiKey::Heartbeat,
        4,
        3,
        &HeartbeatRequest::default()
            .with_group_id(GroupId(sb("g")))
            .with_generation_id(1)
            .with_member_id(sb("ghost")),
    ))
    .expect("w");
    let r: HeartbeatResponse = response(&mut s, ApiKey::Heartbeat, 4, 3);
    assert_eq!(r.error_code, 25, "UNKNOWN_MEMBER_ID");

    s.write_all(&frame(ApiKey::JoinGroup, 5, 4, &join("", 10_000)))
        .expect("w");
    let r: JoinGroupResponse = response(&mut s, ApiKey::JoinGroup, 5, 4);
    assert_eq!(r.error_code, 79, "MEMBER_ID_REQUIRED (KIP-394)");
    let id = r.member_id.to_string();
    s.write_all(&frame(ApiKey::JoinGroup, 5, 5, &join(&id, 10_000)))
        .expect("w");
    let r: JoinGroupResponse = response(&mut s, ApiKey::JoinGroup, 5, 5);
    assert_eq!((r.error_code, r.generation_id), (0, 1));

    let commit = |member: &str, generation: i32| {
        OffsetCommitRequest::default()
            .with_group_id(GroupId(sb("g")))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(sb(member))
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(TopicName(sb("__consumer_offsets")))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(1),
                    ]),
            ])
    };
    for (corr, member, generation, want) in [
        (6, "ghost", 1, 25),
        (7, id.as_str(), 0, 22),
        (8, "", -1, 25),
    ] {
        s.write_all(&frame(
            ApiKey::OffsetCommit,
            8,
            corr,
            &commit(member, generation),
        ))
        .expect("w");
        let r: OffsetCommitResponse = response(&mut s, ApiKey::OffsetCommit, 8, corr);
        assert_eq!(
            r.topics[0].partitions[0].error_code, want,
            "commit as {member:?} gen {generation}"
        );
    }
    s.write_all(&frame(
        ApiKey::DeleteGroups,
        2,
        9,
        &DeleteGroupsRequest::default()
            .with_groups_names(vec![GroupId(sb("g")), GroupId(sb("nope"))]),
    ))
    .expect("w");
    let r: DeleteGroupsResponse = response(&mut s, ApiKey::DeleteGroups, 2, 9);
    assert_eq!(r.results[0].error_code, 68, "NON_EMPTY_GROUP");
    assert_eq!(r.results[1].error_code, 69, "GROUP_ID_NOT_FOUND");
}

#[test]
fn internal_topics_and_policies_are_protected() {
    let b = BrokerProc::start(&[
        "group.initial.rebalance.delay.ms=0",
        "offsets.topic.num.partitions=7",
    ]);
    let mut s = connect(&b);
    let sb = |v: &str| StrBytes::from_string(v.to_string());
    // Asking for __consumer_offsets by name creates it with its own settings.
    let md = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(TopicName(sb("__consumer_offsets"))))]));
    s.write_all(&frame(ApiKey::Metadata, 12, 1, &md))
        .expect("w");
    let r: MetadataResponse = response(&mut s, ApiKey::Metadata, 12, 1);
    assert_eq!(
        r.topics[0].partitions.len(),
        7,
        "offsets.topic.num.partitions, not num.partitions"
    );
    assert!(r.topics[0].is_internal);
    // Clients cannot write coordinator state.
    let p = produce(&mut s, "__consumer_offsets", 0, 1, batch(1).freeze(), 2);
    assert_eq!(
        p.error_code, 17,
        "INVALID_TOPIC_EXCEPTION: cannot append to an internal topic"
    );
    // Nor delete records of a compacted topic.
    let dr = DeleteRecordsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
            .with_name(TopicName(sb("__consumer_offsets")))
            .with_partitions(vec![
                delete_records_request::DeleteRecordsPartition::default()
                    .with_partition_index(0)
                    .with_offset(-1),
            ])]);
    s.write_all(&frame(ApiKey::DeleteRecords, 2, 3, &dr))
        .expect("w");
    let r: DeleteRecordsResponse = response(&mut s, ApiKey::DeleteRecords, 2, 3);
    assert_eq!(r.topics[0].partitions[0].error_code, 44, "POLICY_VIOLATION");

    // A name given twice creates neither copy and is answered once.
    let t = || {
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(sb("twice")))
            .with_num_partitions(1)
            .with_replication_factor(1)
    };
    s.write_all(&frame(
        ApiKey::CreateTopics,
        7,
        4,
        &CreateTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![t(), t()]),
    ))
    .expect("w");
    let r: CreateTopicsResponse = response(&mut s, ApiKey::CreateTopics, 7, 4);
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].error_code, 42, "INVALID_REQUEST");
    let md = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(TopicName(sb("twice"))))]));
    s.write_all(&frame(ApiKey::Metadata, 12, 5, &md))
        .expect("w");
    let r: MetadataResponse = response(&mut s, ApiKey::Metadata, 12, 5);
    assert_eq!(r.topics[0].error_code, 3, "not created");

    // InitProducerId: half an identity is malformed; a full one never bumps someone's epoch.
    s.write_all(&frame(
        ApiKey::InitProducerId,
        4,
        6,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60000)
            .with_producer_id(ProducerId(5))
            .with_producer_epoch(-1),
    ))
    .expect("w");
    let r: InitProducerIdResponse = response(&mut s, ApiKey::InitProducerId, 4, 6);
    assert_eq!(r.error_code, 42);
    s.write_all(&frame(
        ApiKey::InitProducerId,
        4,
        7,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    ))
    .expect("w");
    let first: InitProducerIdResponse = response(&mut s, ApiKey::InitProducerId, 4, 7);
    s.write_all(&frame(
        ApiKey::InitProducerId,
        4,
        8,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60000)
            .with_producer_id(first.producer_id)
            .with_producer_epoch(first.producer_epoch),
    ))
    .expect("w");
    let again: InitProducerIdResponse = response(&mut s, ApiKey::InitProducerId, 4, 8);
    assert_eq!(again.error_code, 0);
    assert_ne!(
        again.producer_id, first.producer_id,
        "a fresh id, not an epoch bump of the given one"
    );
    assert_eq!(again.producer_epoch, 0);

    // JoinGroup before v7: protocol_name is "" (not null) on errors.
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(sb("g")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(sb("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(sb("range"))
        .with_metadata(Bytes::from_static(b"\0\0"))]);
    s.write_all(&frame(ApiKey::JoinGroup, 4, 9, &join))
        .expect("w");
    let r: JoinGroupResponse = response(&mut s, ApiKey::JoinGroup, 4, 9);
    assert_eq!(r.error_code, 79);
    assert_eq!(r.protocol_name.as_ref().map(|p| p.as_str()), Some(""));
}

#[test]
fn acks_zero_produce_errors_close_the_connection() {
    let b = BrokerProc::start(&[]);
    let mut s = connect(&b);
    let req = ProduceRequest::default()
        .with_acks(0)
        .with_timeout_ms(5000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("missing")))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(3)
                    .with_records(Some(batch(1).freeze())),
            ])]);
    s.write_all(&frame(ApiKey::Produce, 9, 1, &req)).expect("w");
    assert_closed(&mut s, "acks=0 produce that failed");
}

/// Creates `topic` with one partition (correlation id 1) and checks it was created.
fn create_one_partition(s: &mut TcpStream, topic: &'static str) {
    let create = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(topic)))
            .with_num_partitions(1)
            .with_replication_factor(1)]);
    s.write_all(&frame(ApiKey::CreateTopics, 7, 1, &create))
        .expect("w");
    let r: CreateTopicsResponse = response(s, ApiKey::CreateTopics, 7, 1);
    assert_eq!(r.topics[0].error_code, 0);
}

/// CreateTime timestamps over the wire: a batch whose header maxTimestamp is unset (-1, as
/// sarama 1.22 sends it) is stored with the max its records carry, so ListOffsets by
/// timestamp finds it; a record two hours ahead of the broker's clock is refused with
/// INVALID_TIMESTAMP (message.timestamp.after.max.ms, one hour by default) and nothing of it
/// is stored.
#[test]
fn produce_timestamps_are_bounded_and_unset_max_timestamps_recomputed() {
    let b = BrokerProc::start(&[]);
    let mut s = connect(&b);
    create_one_partition(&mut s, "times");

    // batch(3) stamps every record 1_700_000_000_000; its header max is then unset.
    let mut unset = batch(3);
    unset[35..43].copy_from_slice(&(-1i64).to_be_bytes());
    fix_crc(&mut unset);
    let p = common::wait_for(10, "the new topic's leader", || {
        let p = produce(&mut s, "times", 0, 1, unset.clone().freeze(), 2);
        (p.error_code != 6).then_some(p)
    });
    assert_eq!((p.error_code, p.base_offset), (0, 0), "{:?}", p.message);
    let list = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("times")))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(1_700_000_000_000),
            ])]);
    s.write_all(&frame(ApiKey::ListOffsets, 4, 3, &list))
        .expect("w");
    let r: ListOffsetsResponse = response(&mut s, ApiKey::ListOffsets, 4, 3);
    let found = &r.topics[0].partitions[0];
    assert_eq!(
        (found.error_code, found.offset, found.timestamp),
        (0, 0, 1_700_000_000_000),
        "the records are found by their time"
    );

    let ahead_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
        + 2 * 3_600_000;
    let mut ahead = batch(2);
    for at in [27usize, 35] {
        ahead[at..at + 8].copy_from_slice(&ahead_ms.to_be_bytes());
    }
    fix_crc(&mut ahead);
    let p = produce(&mut s, "times", 0, 1, ahead.freeze(), 4);
    assert_eq!(p.error_code, 32, "INVALID_TIMESTAMP");
    assert!(
        p.message
            .as_deref()
            .is_some_and(|m| m.contains("message.timestamp.after.max.ms")),
        "{:?}",
        p.message
    );
    // Nothing of it was stored: the next append lands right after the first batch.
    let p = produce(&mut s, "times", 0, 1, batch(1).freeze(), 5);
    assert_eq!((p.error_code, p.base_offset), (0, 3));
}

/// zstd needs Produce v7 (KIP-110): an older request carrying a zstd batch gets
/// UNSUPPORTED_COMPRESSION_TYPE and nothing is stored; the same batch at v7 is accepted.
#[test]
fn zstd_below_produce_v7_is_unsupported() {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let b = BrokerProc::start(&[]);
    let mut s = connect(&b);
    create_one_partition(&mut s, "zstd");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"zstd value")),
        headers: Default::default(),
    };
    let mut zstd = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut zstd,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::Zstd,
        },
    )
    .expect("encode");
    let zstd = zstd.freeze();
    // A plain batch first, then the zstd one in the same record set.
    let mut mixed = BytesMut::from(&batch(1)[..]);
    mixed.extend_from_slice(&zstd);
    let produce_at = |s: &mut TcpStream, version: i16, records: Bytes, corr: i32| {
        let req = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("zstd")))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ])]);
        s.write_all(&frame(ApiKey::Produce, version, corr, &req))
            .expect("write");
        let r: ProduceResponse = response(s, ApiKey::Produce, version, corr);
        let p = &r.responses[0].partition_responses[0];
        (p.error_code, p.base_offset)
    };
    let first = common::wait_for(10, "the new topic's leader", || {
        let r = produce_at(&mut s, 5, mixed.clone().freeze(), 2);
        (r.0 != 6).then_some(r)
    });
    assert_eq!(first, (76, -1), "UNSUPPORTED_COMPRESSION_TYPE at v5");
    assert_eq!(produce_at(&mut s, 6, zstd.clone(), 3), (76, -1));
    assert_eq!(
        produce_at(&mut s, 7, zstd, 4),
        (0, 0),
        "nothing stored before"
    );
}
