//! The batch format: validation of what producers send and the broker's in-place patches.

use kafka_protocol::records::Compression;
use proptest::prelude::*;

use super::{build, must, plain, Spec};
use crate::log::batch::{self, BatchHeader, RecordIter, HEADER_SIZE};
use crate::log::LogError;

/// Recomputes the CRC after a test edited covered bytes on purpose.
fn fix_crc(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn parses_header_fields() {
    let b = build(Spec {
        records: 3,
        timestamp: 500,
        producer_id: 7,
        producer_epoch: 2,
        base_sequence: 10,
        ..Spec::default()
    });
    let h = must(BatchHeader::parse(&b));
    assert_eq!((h.magic, h.record_count, h.last_offset_delta), (2, 3, 2));
    assert_eq!((h.base_timestamp, h.max_timestamp), (500, 502));
    assert_eq!(
        (
            h.producer_id,
            h.producer_epoch,
            h.base_sequence,
            h.last_sequence()
        ),
        (7, 2, 10, 12)
    );
    assert_eq!(h.total_size(), b.len());
    let walked: Vec<_> = RecordIter::new(&b[HEADER_SIZE..]).map(must).collect();
    assert_eq!(
        walked
            .iter()
            .map(|r| (r.offset_delta, r.timestamp_delta))
            .collect::<Vec<_>>(),
        vec![(0, 0), (1, 1), (2, 2)]
    );
}

#[test]
fn several_batches_in_one_blob() {
    let blob = [plain(2, 1), plain(3, 2), plain(1, 3)].concat();
    let refs = must(batch::validate(&blob));
    assert_eq!(
        refs.iter()
            .map(|r| r.header.record_count)
            .collect::<Vec<_>>(),
        vec![2, 3, 1]
    );
    assert_eq!(refs[1].position, refs[0].header.total_size());
}

#[test]
fn rejects_bad_batches_with_kafka_errors() {
    assert!(matches!(
        batch::validate(&[]),
        Err(LogError::InvalidRecord(_))
    ));
    let good = plain(2, 1);

    let mut old_magic = good.clone();
    old_magic[16] = 1;
    assert!(matches!(
        batch::validate(&old_magic),
        Err(LogError::CorruptMessage(_))
    ));

    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    assert_eq!(
        batch::validate(&bad_crc)
            .map_err(|e| crate::error::KafkaError::from(e).code())
            .err(),
        Some(2)
    );

    let mut control = good.clone();
    control[22] |= 0x20;
    fix_crc(&mut control);
    assert_eq!(
        batch::validate(&control)
            .map_err(|e| crate::error::KafkaError::from(e).code())
            .err(),
        Some(87)
    );

    let mut wrong_delta = good.clone();
    wrong_delta[23..27].copy_from_slice(&5i32.to_be_bytes());
    fix_crc(&mut wrong_delta);
    assert!(matches!(
        batch::validate(&wrong_delta),
        Err(LogError::InvalidRecord(_))
    ));

    let mut wrong_count = good.clone();
    wrong_count[57..61].copy_from_slice(&3i32.to_be_bytes());
    wrong_count[23..27].copy_from_slice(&2i32.to_be_bytes());
    fix_crc(&mut wrong_count);
    assert!(matches!(
        batch::validate(&wrong_count),
        Err(LogError::InvalidRecord(_))
    ));

    let mut short_length = good.clone();
    short_length[8..12].copy_from_slice(&10i32.to_be_bytes());
    assert!(matches!(
        batch::validate(&short_length),
        Err(LogError::CorruptMessage(_))
    ));

    let mut no_sequence = super::idempotent(5, 0, 0, 1);
    no_sequence[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    fix_crc(&mut no_sequence);
    assert!(matches!(
        batch::validate(&no_sequence),
        Err(LogError::InvalidRecord(_))
    ));
}

#[test]
fn patches_keep_the_crc_valid() {
    let mut b = plain(2, 100);
    must(batch::set_base_offset(&mut b, 42));
    must(batch::set_partition_leader_epoch(&mut b, 7));
    let h = must(BatchHeader::parse(&b));
    assert_eq!(
        (h.base_offset, h.partition_leader_epoch, h.last_offset()),
        (42, 7, 43)
    );
    must(batch::validate(&b));

    must(batch::set_log_append_time(&mut b, 9_999));
    let h = must(BatchHeader::parse(&b));
    assert!(h.is_log_append_time());
    assert_eq!((h.base_timestamp, h.max_timestamp), (100, 9_999));
    must(batch::validate(&b));
    assert!(
        batch::set_base_offset(&mut [0u8; 4], 1).is_err(),
        "short buffers are errors, not panics"
    );
}

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Gzip),
        Just(Compression::Snappy),
        Just(Compression::Lz4),
        Just(Compression::Zstd)
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        1usize..20,
        0i64..1 << 40,
        -1i64..3,
        0i32..1000,
        compression(),
        0usize..200,
    )
        .prop_map(
            |(records, timestamp, pid, seq, compression, value_len)| Spec {
                records,
                timestamp,
                producer_id: pid,
                producer_epoch: if pid < 0 { -1 } else { 0 },
                base_sequence: if pid < 0 { -1 } else { seq },
                compression,
                value_len,
                transactional: false,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn valid_batches_validate(s in spec()) {
        let b = build(s);
        let refs = batch::validate(&b);
        prop_assert!(refs.is_ok(), "{:?}", refs);
        let refs = refs.unwrap_or_default();
        prop_assert_eq!(refs.len(), 1);
        prop_assert_eq!(refs[0].header.record_count as usize, s.records);
    }

    #[test]
    fn any_byte_flip_under_the_crc_is_rejected(s in spec(), at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut b = build(s);
        let i = 21 + at.index(b.len() - 21);
        b[i] ^= flip;
        prop_assert!(batch::validate(&b).is_err());
    }

    #[test]
    fn any_truncation_is_rejected(s in spec(), at in any::<prop::sample::Index>()) {
        let b = build(s);
        let cut = at.index(b.len());
        prop_assert!(batch::validate(&b[..cut]).is_err());
        let two = [b.clone(), b[..cut].to_vec()].concat();
        prop_assert!(batch::validate(&two).is_err() || cut == 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = batch::validate(&bytes);
        let _ = BatchHeader::parse(&bytes);
        let _ = RecordIter::new(&bytes).take(1000).count();
    }

    #[test]
    fn arbitrary_headers_with_valid_crc_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 61..300)) {
        bytes[16] = 2;
        let len = (bytes.len() - 12) as i32;
        bytes[8..12].copy_from_slice(&len.to_be_bytes());
        fix_crc(&mut bytes);
        let _ = batch::validate(&bytes);
    }
}
