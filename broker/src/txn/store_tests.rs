//! Tests of store.rs: golden bytes written out by hand from Kafka's `TransactionLogKey.json`
//! and `TransactionLogValue.json`, round trips, and refusal of damaged records.
use super::*;
use crate::txn::state::{TxnResult, NO_TIMESTAMP};
use proptest::prelude::*;

/// 1700000000000 ms (2023-11-14T22:13:20Z).
const LAST_UPDATE: i64 = 1_700_000_000_000;
/// One second earlier.
const STARTED: i64 = 1_699_999_999_000;

fn ongoing() -> TxnLogValue {
    TxnLogValue {
        producer_id: ProducerId(1000),
        producer_epoch: ProducerEpoch(5),
        txn_timeout_ms: 60_000,
        state: TxnState::Ongoing,
        partitions: Some(vec![
            TopicPartitions {
                topic: "t".into(),
                partitions: vec![0, 2],
            },
            TopicPartitions {
                topic: "u".into(),
                partitions: vec![1],
            },
        ]),
        last_update_ms: LAST_UPDATE,
        txn_start_ms: STARTED,
        previous_producer_id: NO_PRODUCER_ID,
        next_producer_id: NO_PRODUCER_ID,
        client_transaction_version: 0,
    }
}

fn empty() -> TxnLogValue {
    TxnLogValue {
        state: TxnState::Empty,
        partitions: None,
        txn_start_ms: NO_TIMESTAMP,
        ..ongoing()
    }
}

#[rustfmt::skip]
const KEY_MY_TXN: &[u8] = &[
    0x00, 0x00,                                     // version 0
    0x00, 0x06, b'm', b'y', b'-', b't', b'x', b'n', // TransactionalId "my-txn"
];

#[rustfmt::skip]
const ONGOING_V0: &[u8] = &[
    0x00, 0x00,                                     // version 0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, // ProducerId 1000
    0x00, 0x05,                                     // ProducerEpoch 5
    0x00, 0x00, 0xea, 0x60,                         // TransactionTimeoutMs 60000
    0x01,                                           // TransactionStatus Ongoing
    0x00, 0x00, 0x00, 0x02,                         // TransactionPartitions: 2 topics
    0x00, 0x01, b't',                               //   Topic "t"
    0x00, 0x00, 0x00, 0x02,                         //   PartitionIds: 2
    0x00, 0x00, 0x00, 0x00,                         //     0
    0x00, 0x00, 0x00, 0x02,                         //     2
    0x00, 0x01, b'u',                               //   Topic "u"
    0x00, 0x00, 0x00, 0x01,                         //   PartitionIds: 1
    0x00, 0x00, 0x00, 0x01,                         //     1
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // TransactionLastUpdateTimestampMs
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x64, 0x18, // TransactionStartTimestampMs
];

#[rustfmt::skip]
const EMPTY_V0: &[u8] = &[
    0x00, 0x00,                                     // version 0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, // ProducerId 1000
    0x00, 0x05,                                     // ProducerEpoch 5
    0x00, 0x00, 0xea, 0x60,                         // TransactionTimeoutMs 60000
    0x00,                                           // TransactionStatus Empty
    0xff, 0xff, 0xff, 0xff,                         // TransactionPartitions: null
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // TransactionLastUpdateTimestampMs
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // TransactionStartTimestampMs -1
];

#[rustfmt::skip]
const ONGOING_V1: &[u8] = &[
    0x00, 0x01,                                     // version 1 (flexible)
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, // ProducerId 1000
    0x00, 0x05,                                     // ProducerEpoch 5
    0x00, 0x00, 0xea, 0x60,                         // TransactionTimeoutMs 60000
    0x01,                                           // TransactionStatus Ongoing
    0x03,                                           // TransactionPartitions: 2 + 1
    0x02, b't',                                     //   Topic "t" (1 + 1)
    0x03,                                           //   PartitionIds: 2 + 1
    0x00, 0x00, 0x00, 0x00,                         //     0
    0x00, 0x00, 0x00, 0x02,                         //     2
    0x00,                                           //   no tagged fields
    0x02, b'u',                                     //   Topic "u"
    0x02,                                           //   PartitionIds: 1 + 1
    0x00, 0x00, 0x00, 0x01,                         //     1
    0x00,                                           //   no tagged fields
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // TransactionLastUpdateTimestampMs
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x64, 0x18, // TransactionStartTimestampMs
    0x02,                                           // 2 tagged fields
    0x00, 0x08,                                     //   tag 0 PreviousProducerId, 8 bytes
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe7, //     999
    0x02, 0x02,                                     //   tag 2 ClientTransactionVersion, 2 bytes
    0x00, 0x02,                                     //     2
];

#[rustfmt::skip]
const EMPTY_V1: &[u8] = &[
    0x00, 0x01,                                     // version 1
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, // ProducerId 1000
    0x00, 0x05,                                     // ProducerEpoch 5
    0x00, 0x00, 0xea, 0x60,                         // TransactionTimeoutMs 60000
    0x00,                                           // TransactionStatus Empty
    0x00,                                           // TransactionPartitions: null
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // TransactionLastUpdateTimestampMs
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // TransactionStartTimestampMs -1
    0x00,                                           // no tagged fields
];

fn ongoing_v1_value() -> TxnLogValue {
    TxnLogValue {
        previous_producer_id: ProducerId(999),
        client_transaction_version: 2,
        ..ongoing()
    }
}

#[test]
fn topic_name_and_partitioning() {
    assert_eq!(TRANSACTION_STATE_TOPIC, "__transaction_state");
    // The same hash as the groups': "ab".hashCode() == 3105, and Integer.MIN_VALUE maps to 0.
    assert_eq!(partition_for("ab", 50), 5);
    assert_eq!(partition_for("polygenelubricants", 50), 0);
    for id in ["", "txn-1", "a-much-longer-transactional-id", "ünïcödé"] {
        assert_eq!(
            partition_for(id, 50),
            crate::group::store::partition_for(id, 50)
        );
        assert!((0..50).contains(&partition_for(id, 50)));
    }
}

#[test]
fn key_golden_bytes() {
    assert_eq!(encode_key("my-txn").unwrap(), KEY_MY_TXN);
    assert_eq!(decode_key(KEY_MY_TXN), Ok(Some("my-txn".to_string())));
    assert_eq!(encode_key("").unwrap(), [0, 0, 0, 0]);
    assert_eq!(decode_key(&[0, 0, 0, 0]), Ok(Some(String::new())));
    // Another key version is skipped, not an error (Kafka logs and ignores it).
    assert_eq!(decode_key(&[0, 1, 0, 1, b'x']), Ok(None));
    assert_eq!(decode_record(&[0, 1, 0, 1, b'x'], Some(EMPTY_V0)), Ok(None));
}

#[test]
fn value_v0_golden_bytes() {
    assert_eq!(encode_value(&ongoing(), VALUE_V0).unwrap(), ONGOING_V0);
    assert_eq!(decode_value(ONGOING_V0), Ok(ongoing()));
    assert_eq!(encode_value(&empty(), VALUE_V0).unwrap(), EMPTY_V0);
    assert_eq!(decode_value(EMPTY_V0), Ok(empty()));
}

#[test]
fn value_v1_golden_bytes() {
    assert_eq!(
        encode_value(&ongoing_v1_value(), VALUE_V1).unwrap(),
        ONGOING_V1
    );
    assert_eq!(decode_value(ONGOING_V1), Ok(ongoing_v1_value()));
    assert_eq!(encode_value(&empty(), VALUE_V1).unwrap(), EMPTY_V1);
    assert_eq!(decode_value(EMPTY_V1), Ok(empty()));
    // v0 has no tagged fields: the v1-only values are not written.
    assert_eq!(
        encode_value(&ongoing_v1_value(), VALUE_V0).unwrap(),
        ONGOING_V0
    );
    assert_eq!(
        encode_value(&ongoing(), 2),
        Err(StoreError::UnknownValueVersion(2))
    );
}

#[test]
fn v1_tagged_fields_next_producer_id_and_unknown_tags() {
    let v = TxnLogValue {
        next_producer_id: ProducerId(0x0102),
        ..empty()
    };
    let bytes = encode_value(&v, VALUE_V1).unwrap();
    assert_eq!(
        &bytes[bytes.len() - 11..],
        &[0x01, 0x01, 0x08, 0, 0, 0, 0, 0, 0, 0x01, 0x02],
        "one tagged field: tag 1, 8 bytes"
    );
    assert_eq!(decode_value(&bytes), Ok(v));

    // An unknown tag (9, 3 bytes) is skipped; one in a topic entry too.
    let mut with_unknown = EMPTY_V1[..EMPTY_V1.len() - 1].to_vec();
    with_unknown.extend_from_slice(&[0x01, 0x09, 0x03, 0xaa, 0xbb, 0xcc]);
    assert_eq!(decode_value(&with_unknown), Ok(empty()));

    // A known tag of the wrong size is corrupt.
    let mut bad = EMPTY_V1[..EMPTY_V1.len() - 1].to_vec();
    bad.extend_from_slice(&[0x01, 0x00, 0x02, 0x00, 0x01]);
    assert!(matches!(decode_value(&bad), Err(StoreError::Corrupt(_))));
}

#[test]
fn completed_transactions_store_an_empty_partition_list() {
    let v = TxnLogValue {
        state: TxnState::CompleteCommit,
        partitions: Some(vec![]),
        ..ongoing()
    };
    let bytes = encode_value(&v, VALUE_V0).unwrap();
    assert_eq!(&bytes[17..21], &[0, 0, 0, 0], "an empty array, not null");
    assert_eq!(decode_value(&bytes), Ok(v));
}

fn transit(state: TxnState, partitions: &[(&str, i32)]) -> Transit {
    Transit {
        producer_id: ProducerId(1000),
        last_producer_id: ProducerId(1000),
        producer_epoch: ProducerEpoch(5),
        last_producer_epoch: ProducerEpoch(4),
        txn_timeout_ms: 60_000,
        state,
        topic_partitions: partitions
            .iter()
            .map(|(t, p)| TopicPartition::new(*t, *p))
            .collect(),
        txn_start_ms: if state == TxnState::Empty {
            NO_TIMESTAMP
        } else {
            STARTED
        },
        last_update_ms: LAST_UPDATE,
        epoch_fence: false,
        next_producer_id: NO_PRODUCER_ID,
        client_txn_version: TxnVersion::TV0,
    }
}

#[test]
fn transits_are_written_as_kafka_3_writes_them() {
    // Partitions grouped by topic, in order, whatever order they were added in.
    let t = transit(TxnState::Ongoing, &[("u", 1), ("t", 2), ("t", 0)]);
    let (key, value) = encode_transit("my-txn", &t, VALUE_V0).unwrap();
    assert_eq!(key, KEY_MY_TXN);
    assert_eq!(value.as_deref(), Some(ONGOING_V0));

    let (_, value) = encode_transit("my-txn", &transit(TxnState::Empty, &[]), VALUE_V0).unwrap();
    assert_eq!(value.as_deref(), Some(EMPTY_V0));

    // Expiry writes a tombstone, read back as one.
    let (key, value) = encode_transit("my-txn", &transit(TxnState::Dead, &[]), VALUE_V0).unwrap();
    assert_eq!((key.as_slice(), value), (KEY_MY_TXN, None));
    assert_eq!(
        decode_record(KEY_MY_TXN, None),
        Ok(Some(TxnRecord {
            transactional_id: "my-txn".into(),
            value: None
        }))
    );

    // Never written.
    assert!(matches!(
        encode_transit(
            "x",
            &transit(TxnState::PrepareEpochFence, &[("t", 0)]),
            VALUE_V0
        ),
        Err(StoreError::Unencodable(_))
    ));
    assert!(matches!(
        encode_transit("x", &transit(TxnState::Empty, &[("t", 0)]), VALUE_V0),
        Err(StoreError::Unencodable(_))
    ));
    assert!(matches!(
        encode_key(&"x".repeat(MAX_STRING_BYTES + 1)),
        Err(StoreError::Unencodable(_))
    ));
    assert!(encode_key(&"x".repeat(MAX_STRING_BYTES)).is_ok());
}

#[test]
fn records_load_into_metadata() {
    let m = decode_value(ONGOING_V0)
        .unwrap()
        .into_metadata("my-txn")
        .unwrap();
    assert_eq!(m.transactional_id, "my-txn");
    assert_eq!(
        (m.producer_id, m.producer_epoch),
        (ProducerId(1000), ProducerEpoch(5))
    );
    assert_eq!(
        (m.last_producer_id, m.last_producer_epoch),
        (NO_PRODUCER_ID, crate::txn::state::NO_PRODUCER_EPOCH),
        "not stored in v0"
    );
    assert_eq!((m.state, m.txn_timeout_ms), (TxnState::Ongoing, 60_000));
    assert_eq!(
        m.topic_partitions,
        [("t", 0), ("t", 2), ("u", 1)]
            .iter()
            .map(|(t, p)| TopicPartition::new(*t, *p))
            .collect()
    );
    assert_eq!((m.txn_start_ms, m.last_update_ms), (STARTED, LAST_UPDATE));
    assert_eq!(m.pending(), None);

    // Partitions of an Empty record are ignored; a non-Empty one without partitions is corrupt.
    let v = TxnLogValue {
        partitions: ongoing().partitions,
        ..empty()
    };
    assert!(v.into_metadata("x").unwrap().topic_partitions.is_empty());
    let v = TxnLogValue {
        partitions: None,
        ..ongoing()
    };
    assert!(matches!(v.into_metadata("x"), Err(StoreError::Corrupt(_))));
}

/// Every transition's record, read back, is the metadata it completed into (but for what v0
/// does not store).
#[test]
fn a_transaction_survives_a_reload_at_every_step() {
    let mut m = TxnMetadata::new("id", ProducerId(3), 60_000, 10);
    let mut steps: Vec<Transit> = Vec::new();
    let t = match m
        .prepare_init_producer_id(60_000, None, || unreachable!(), 20)
        .unwrap()
    {
        crate::txn::state::InitTransit::Init(t) => t,
        other => panic!("{other:?}"),
    };
    m.complete(&t).unwrap();
    steps.push(t);
    let e = m.producer_epoch;
    let parts = [TopicPartition::new("a", 1), TopicPartition::new("b", 0)].into();
    let t = m
        .prepare_add_partitions(ProducerId(3), e, &parts, TxnVersion::TV0, 30)
        .unwrap()
        .unwrap();
    m.complete(&t).unwrap();
    steps.push(t);
    let t = m
        .prepare_end_txn(ProducerId(3), e, TxnResult::Commit, 40)
        .unwrap()
        .unwrap();
    m.complete(&t).unwrap();
    let reloaded = reload("id", &t);
    assert_eq!(reloaded.topic_partitions, m.topic_partitions);
    steps.push(t);
    let t = m
        .prepare_complete(ProducerId(3), e, TxnResult::Commit, 50)
        .unwrap();
    for tp in parts.iter() {
        m.remove_partition(tp).unwrap();
    }
    m.complete(&t).unwrap();
    steps.push(t.clone());
    let mut reloaded = reload("id", &t);
    reloaded.last_producer_id = m.last_producer_id;
    reloaded.last_producer_epoch = m.last_producer_epoch;
    assert_eq!(reloaded, m);
    for t in &steps {
        let r = reload("id", t);
        assert_eq!(
            (r.state, r.producer_epoch, r.txn_start_ms, r.last_update_ms),
            (t.state, t.producer_epoch, t.txn_start_ms, t.last_update_ms)
        );
    }
}

fn reload(id: &str, t: &Transit) -> TxnMetadata {
    let (key, value) = encode_transit(id, t, VALUE_V0).unwrap();
    let rec = decode_record(&key, value.as_deref()).unwrap().unwrap();
    assert_eq!(rec.transactional_id, id);
    rec.value.unwrap().into_metadata(id).unwrap()
}

#[test]
fn every_truncation_is_refused() {
    for (name, bytes, is_key) in [
        ("key", KEY_MY_TXN, true),
        ("ongoing v0", ONGOING_V0, false),
        ("empty v0", EMPTY_V0, false),
        ("ongoing v1", ONGOING_V1, false),
        ("empty v1", EMPTY_V1, false),
    ] {
        for n in 0..bytes.len() {
            let prefix = &bytes[..n];
            let r = if is_key {
                decode_key(prefix).map(|_| ())
            } else {
                decode_value(prefix).map(|_| ())
            };
            assert!(r.is_err(), "{name}: a prefix of {n} bytes was accepted");
        }
        // And a byte too many.
        let mut longer = bytes.to_vec();
        longer.push(0);
        let r = if is_key {
            decode_key(&longer).map(|_| ())
        } else {
            decode_value(&longer).map(|_| ())
        };
        assert!(matches!(r, Err(StoreError::Corrupt(_))), "{name} + 1 byte");
    }
}

#[test]
fn corrupt_records_are_refused() {
    let corrupt = |b: &[u8]| matches!(decode_value(b), Err(StoreError::Corrupt(_)));
    let truncated = |b: &[u8]| matches!(decode_value(b), Err(StoreError::Truncated { .. }));

    // Unknown value version, unknown status.
    assert_eq!(
        decode_value(&[0, 2]),
        Err(StoreError::UnknownValueVersion(2))
    );
    assert_eq!(
        decode_value(&[0xff, 0xff]),
        Err(StoreError::UnknownValueVersion(-1))
    );
    let mut b = ONGOING_V0.to_vec();
    b[16] = 8;
    assert!(corrupt(&b), "status 8");
    b[16] = 0xff;
    assert!(corrupt(&b), "status -1");

    // A topic count far beyond the bytes left: refused before allocating anything.
    let mut b = ONGOING_V0.to_vec();
    b[17..21].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(truncated(&b));
    let mut b = ONGOING_V0.to_vec();
    b[17..21].copy_from_slice(&(-2i32).to_be_bytes());
    assert!(corrupt(&b), "negative count");
    // A partition count beyond the bytes left.
    let mut b = ONGOING_V0.to_vec();
    b[24..28].copy_from_slice(&0x4000_0000i32.to_be_bytes());
    assert!(truncated(&b));
    // A null partition list inside a topic.
    let mut b = ONGOING_V0.to_vec();
    b[24..28].copy_from_slice(&(-1i32).to_be_bytes());
    assert!(corrupt(&b));
    // A string length past the end, a negative (null) string.
    let mut b = ONGOING_V0.to_vec();
    b[21..23].copy_from_slice(&0x7fffi16.to_be_bytes());
    assert!(truncated(&b));
    let mut b = ONGOING_V0.to_vec();
    b[21..23].copy_from_slice(&(-1i16).to_be_bytes());
    assert!(corrupt(&b));
    // Invalid UTF-8 in a topic.
    let mut b = ONGOING_V0.to_vec();
    b[23] = 0xff;
    assert!(corrupt(&b));
    // Keys: null id, bad UTF-8, past the end.
    assert!(matches!(
        decode_key(&[0, 0, 0xff, 0xff]),
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        decode_key(&[0, 0, 0, 1, 0xc3]),
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        decode_key(&[0, 0, 0x7f, 0xff]),
        Err(StoreError::Truncated { .. })
    ));
    // v1: a varint longer than 5 bytes or beyond 32 bits, a null topic name, a huge count.
    let mut b = EMPTY_V1[..17].to_vec();
    b.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
    assert!(corrupt(&b));
    let mut b = EMPTY_V1[..17].to_vec();
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x1f]);
    assert!(corrupt(&b));
    let mut b = EMPTY_V1[..17].to_vec();
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(truncated(&b));
    let mut b = ONGOING_V1.to_vec();
    b[18] = 0x00;
    assert!(corrupt(&b), "null topic");
    // A tagged-field count or size beyond the bytes left.
    let mut b = EMPTY_V1.to_vec();
    *b.last_mut().unwrap() = 0x7f;
    assert!(truncated(&b));
    let mut b = EMPTY_V1[..EMPTY_V1.len() - 1].to_vec();
    b.extend_from_slice(&[0x01, 0x05, 0x7f, 0x00]);
    assert!(truncated(&b));
}

fn value_strategy() -> impl Strategy<Value = TxnLogValue> {
    let topics = prop::collection::vec(
        ("[a-z._-]{0,12}", prop::collection::vec(any::<i32>(), 0..4)),
        0..4,
    );
    (
        any::<i64>(),
        any::<i16>(),
        any::<i32>(),
        0usize..8,
        prop::option::of(topics),
        any::<i64>(),
        any::<i64>(),
        (any::<i64>(), any::<i64>(), any::<i16>()),
    )
        .prop_map(
            |(pid, epoch, timeout, state, partitions, last, start, (prev, next, ctv))| {
                TxnLogValue {
                    producer_id: ProducerId(pid),
                    producer_epoch: ProducerEpoch(epoch),
                    txn_timeout_ms: timeout,
                    state: TxnState::ALL[state],
                    partitions: partitions.map(|ts| {
                        ts.into_iter()
                            .map(|(topic, partitions)| TopicPartitions { topic, partitions })
                            .collect()
                    }),
                    last_update_ms: last,
                    txn_start_ms: start,
                    previous_producer_id: ProducerId(prev),
                    next_producer_id: ProducerId(next),
                    client_transaction_version: ctv,
                }
            },
        )
}

proptest! {
    #[test]
    fn values_round_trip(v in value_strategy()) {
        let v1 = encode_value(&v, VALUE_V1).unwrap();
        prop_assert_eq!(decode_value(&v1), Ok(v.clone()));
        let v0 = encode_value(&v, VALUE_V0).unwrap();
        let back = decode_value(&v0).unwrap();
        prop_assert_eq!(back, TxnLogValue {
            previous_producer_id: NO_PRODUCER_ID,
            next_producer_id: NO_PRODUCER_ID,
            client_transaction_version: 0,
            ..v
        });
    }

    #[test]
    fn keys_round_trip(id in "\\PC{0,40}") {
        prop_assert_eq!(decode_key(&encode_key(&id).unwrap()), Ok(Some(id)));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_key(&bytes);
        let _ = decode_value(&bytes);
        let _ = decode_record(&bytes, Some(&bytes));
    }

    #[test]
    fn damaged_records_never_panic(pos in any::<usize>(), byte in any::<u8>(), v1 in any::<bool>()) {
        let mut b = if v1 { ONGOING_V1.to_vec() } else { ONGOING_V0.to_vec() };
        let pos = pos % b.len();
        b[pos] = byte;
        let decoded = decode_value(&b);
        if let (Ok(v), false) = (decoded, v1) {
            // v0 has one encoding per value: whatever still parses encodes back to its bytes.
            prop_assert_eq!(encode_value(&v, VALUE_V0).unwrap(), b);
        }
    }
}
