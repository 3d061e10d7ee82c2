//! Appends and reads: offsets, read bounds, segment rolling, timestamp lookups.

use proptest::prelude::*;

use super::{append, headers, must, open, plain, read_all, small_config, tempdir};
use crate::log::{LogConfig, LogError};
use crate::types::{LeaderEpoch, Offset};

#[test]
fn append_then_read_round_trips_bytes() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    let b = plain(3, 1_000);
    let info = must(log.append_as_leader(&b, LeaderEpoch(4), 2_000));
    assert_eq!(
        (info.first_offset, info.last_offset, info.record_count),
        (Offset(0), Offset(2), 3)
    );
    assert_eq!(
        (info.log_append_time, info.duplicate, info.bytes),
        (-1, false, b.len())
    );
    assert_eq!(log.log_end_offset(), Offset(3));
    let r = must(log.read(Offset(0), 1 << 20, Offset(3), false));
    assert_eq!(r.records.len(), b.len());
    let h = headers(&r.records)[0];
    assert_eq!((h.base_offset, h.partition_leader_epoch), (0, 4));
    // Only the base offset and epoch differ from what the producer sent.
    assert_eq!(&r.records[16..], &b[16..]);
    assert_eq!(log.size_bytes(), b.len() as u64);
    assert_eq!(log.latest_epoch(), Some(LeaderEpoch(4)));
}

#[test]
fn offsets_are_consecutive_across_appends_and_batches() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!(append(&mut log, &plain(2, 1)), (0, 1));
    assert_eq!(
        append(&mut log, &[plain(3, 2), plain(1, 3)].concat()),
        (2, 5)
    );
    assert_eq!(append(&mut log, &plain(1, 4)), (6, 6));
    assert_eq!(read_all(&log, 0), vec![0, 2, 5, 6]);
    let all = must(log.read(Offset(0), usize::MAX, Offset(7), false));
    let spans: Vec<_> = headers(&all.records)
        .iter()
        .map(|h| (h.base_offset, h.last_offset()))
        .collect();
    assert_eq!(spans, vec![(0, 1), (2, 4), (5, 5), (6, 6)]);
}

#[test]
fn read_bounds() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    for i in 0..4 {
        append(&mut log, &plain(3, i));
    }
    let size = plain(3, 0).len();
    // Inside a batch: the whole batch comes back.
    assert_eq!(read_all(&log, 4), vec![3, 6, 9]);
    // upper_bound: only batches ending below it.
    let r = must(log.read(Offset(0), usize::MAX, Offset(8), false));
    assert_eq!(headers(&r.records).len(), 2);
    let r = must(log.read(Offset(0), usize::MAX, Offset(2), true));
    assert!(r.records.is_empty());
    // max_bytes: whole batches only.
    let r = must(log.read(Offset(0), size * 2 + 10, Offset(12), false));
    assert_eq!(r.records.len(), size * 2);
    let r = must(log.read(Offset(0), 5, Offset(12), false));
    assert!(r.records.is_empty());
    let r = must(log.read(Offset(0), 5, Offset(12), true));
    assert_eq!(
        r.records.len(),
        size,
        "min_one_message returns an oversized first batch"
    );
    // At the end: empty. Past it or before the start: out of range.
    let r = must(log.read(Offset(12), 100, Offset(12), true));
    assert!(r.records.is_empty());
    assert_eq!(
        (r.log_start_offset, r.log_end_offset),
        (Offset(0), Offset(12))
    );
    assert!(matches!(
        log.read(Offset(13), 100, Offset(12), true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        log.read(Offset(-1), 100, Offset(12), true)
            .map_err(|e| crate::error::KafkaError::from(e).code())
            .err(),
        Some(1)
    );
}

#[test]
fn rolls_on_segment_bytes_and_reads_across_segments() {
    let dir = tempdir();
    let mut log = open(dir.path(), small_config());
    for i in 0..30 {
        append(&mut log, &plain(2, i));
    }
    assert!(log.segment_count() >= 3, "{} segments", log.segment_count());
    let infos = log.segments_info();
    assert!(infos.iter().all(|s| s.size_bytes <= 1024));
    assert_eq!(
        infos.iter().map(|s| s.size_bytes).sum::<u64>(),
        log.size_bytes()
    );
    assert!(infos
        .windows(2)
        .all(|w| w[0].base_offset < w[1].base_offset));
    assert_eq!(
        read_all(&log, 0),
        (0..30).map(|i| i * 2).collect::<Vec<_>>()
    );
    for s in &infos {
        assert_eq!(
            read_all(&log, s.base_offset.0).first(),
            Some(&s.base_offset.0)
        );
    }
    for file in [
        "00000000000000000000.log",
        "00000000000000000000.index",
        "00000000000000000000.timeindex",
        "partition.metadata",
    ] {
        assert!(dir.path().join(file).exists(), "{file}");
    }
}

#[test]
fn rolls_on_segment_ms() {
    let dir = tempdir();
    let mut log = open(
        dir.path(),
        LogConfig {
            segment_ms: 100,
            ..LogConfig::default()
        },
    );
    must(log.append_as_leader(&plain(1, 0), LeaderEpoch(0), 1_000));
    must(log.append_as_leader(&plain(1, 0), LeaderEpoch(0), 1_050));
    assert_eq!(log.segment_count(), 1);
    must(log.append_as_leader(&plain(1, 0), LeaderEpoch(0), 1_101));
    assert_eq!(log.segment_count(), 2);
    assert_eq!(log.segments_info()[1].base_offset, Offset(2));
}

#[test]
fn timestamp_lookups() {
    let dir = tempdir();
    let mut log = open(
        dir.path(),
        LogConfig {
            segment_bytes: 600,
            index_interval_bytes: 100,
            ..LogConfig::default()
        },
    );
    // Batch i holds records stamped 1000*i + 0..3; timestamps are not monotonic across batch 5.
    for i in 0..10i64 {
        let ts = if i == 5 { 100 } else { 1000 * i };
        append(&mut log, &plain(3, ts));
    }
    assert!(log.segment_count() > 1);
    assert_eq!(must(log.offset_for_timestamp(0)), Some((Offset(0), 0)));
    assert_eq!(
        must(log.offset_for_timestamp(1001)),
        Some((Offset(4), 1001))
    );
    assert_eq!(
        must(log.offset_for_timestamp(1003)),
        Some((Offset(6), 2000))
    );
    assert_eq!(
        must(log.offset_for_timestamp(6000)),
        Some((Offset(18), 6000))
    );
    assert_eq!(
        must(log.offset_for_timestamp(9002)),
        Some((Offset(29), 9002))
    );
    assert_eq!(must(log.offset_for_timestamp(9003)), None);
    assert_eq!(log.max_timestamp(), Some((Offset(29), 9002)));
}

#[test]
fn log_append_time_stamps_batches() {
    let dir = tempdir();
    let mut log = open(
        dir.path(),
        LogConfig {
            timestamp_type_log_append: true,
            ..LogConfig::default()
        },
    );
    let info = must(log.append_as_leader(&plain(2, 5), LeaderEpoch(0), 77_000));
    assert_eq!(info.log_append_time, 77_000);
    let r = must(log.read(Offset(0), 1000, Offset(2), true));
    let h = headers(&r.records)[0];
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, 77_000);
    assert_eq!(log.max_timestamp(), Some((Offset(1), 77_000)));
    assert_eq!(
        must(log.offset_for_timestamp(50_000)),
        Some((Offset(0), 77_000))
    );
}

#[test]
fn compressed_batches_are_found_by_timestamp() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    let spec = super::Spec {
        records: 5,
        timestamp: 100,
        compression: kafka_protocol::records::Compression::Gzip,
        ..super::Spec::default()
    };
    append(&mut log, &super::build(spec));
    assert_eq!(must(log.offset_for_timestamp(103)), Some((Offset(3), 103)));
}

#[test]
fn size_limits() {
    let dir = tempdir();
    let mut log = open(
        dir.path(),
        LogConfig {
            max_message_bytes: 200,
            segment_bytes: 1000,
            ..LogConfig::default()
        },
    );
    let big = super::build(super::Spec {
        value_len: 300,
        ..super::Spec::default()
    });
    let e = log.append_as_leader(&big, LeaderEpoch(0), 0).err();
    assert!(
        matches!(e, Some(LogError::MessageTooLarge { max: 200, .. })),
        "{e:?}"
    );
    let many: Vec<u8> = (0..20).flat_map(|_| plain(1, 0)).collect();
    let e = log.append_as_leader(&many, LeaderEpoch(0), 0).err();
    assert_eq!(
        e.map(|e| crate::error::KafkaError::from(e).code()),
        Some(18)
    );
    assert_eq!(log.log_end_offset(), Offset(0));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the batch sizes and index density, every offset reads back the batch holding it.
    #[test]
    fn every_offset_reads_its_batch(sizes in prop::collection::vec((1usize..6, 0usize..120), 1..40), interval in 0u32..600, segment in 800u64..3000) {
        let dir = tempdir();
        let mut log = open(dir.path(), LogConfig { segment_bytes: segment, index_interval_bytes: interval, ..LogConfig::default() });
        let mut spans = Vec::new();
        for (n, value_len) in &sizes {
            let b = super::build(super::Spec { records: *n, value_len: *value_len, ..super::Spec::default() });
            spans.push(append(&mut log, &b));
        }
        let check = |log: &crate::log::PartitionLog| -> Result<(), TestCaseError> {
            for &(first, last) in &spans {
                for o in first..=last {
                    let r = must(log.read(Offset(o), 1, log.log_end_offset(), true));
                    let h = headers(&r.records);
                    prop_assert_eq!(h.len(), 1);
                    prop_assert_eq!((h[0].base_offset, h[0].last_offset()), (first, last));
                }
            }
            Ok(())
        };
        check(&log)?;
        // The same after a clean reopen, with indexes loaded from disk.
        must(log.close());
        let log = open(dir.path(), LogConfig { segment_bytes: segment, index_interval_bytes: interval, ..LogConfig::default() });
        check(&log)?;
    }
}
