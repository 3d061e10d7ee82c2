//! CreateTime timestamps at append: KIP-937's bounds around the broker's clock, and headers
//! whose maxTimestamp a client left unset (sarama 1.22) rewritten from the records.

use kafka_protocol::records::Compression;

use super::{build, headers, must, open, plain, small_config, tempdir, Spec};
use crate::error::KafkaError;
use crate::log::batch::{self, BatchHeader};
use crate::log::{LogConfig, LogError, TimestampBounds};
use crate::types::{LeaderEpoch, Offset};

/// The broker's clock in these tests.
const NOW: i64 = 10_000_000;

/// `bytes` with its header's maxTimestamp set to -1, as sarama 1.22 sends it.
fn unset_max(mut bytes: Vec<u8>) -> Vec<u8> {
    must(batch::set_max_timestamp(&mut bytes, -1));
    bytes
}

fn code(r: Result<crate::log::AppendInfo, LogError>) -> Option<i16> {
    r.map_err(|e| KafkaError::from(e).code()).err()
}

fn stored_header(log: &crate::log::PartitionLog, offset: i64) -> BatchHeader {
    let r = must(log.read(Offset(offset), usize::MAX, log.log_end_offset(), true));
    headers(&r.records)[0]
}

#[test]
fn an_unset_max_timestamp_is_recomputed_from_the_records() {
    for compression in [Compression::None, Compression::Lz4, Compression::Zstd] {
        let dir = tempdir();
        let mut log = open(dir.path(), small_config());
        let bytes = unset_max(build(Spec {
            records: 5,
            timestamp: 5_000,
            compression,
            ..Spec::default()
        }));
        assert_eq!(must(BatchHeader::parse(&bytes)).max_timestamp, -1);
        must(log.append_as_leader(&bytes, LeaderEpoch(0), NOW));
        let h = stored_header(&log, 0);
        assert_eq!(h.max_timestamp, 5_004, "{compression:?}");
        assert!(
            batch::validate_stored(
                &must(log.read(Offset(0), usize::MAX, log.log_end_offset(), true)).records
            )
            .is_ok(),
            "CRC rewritten"
        );
        // Time lookups now find the records.
        assert_eq!(
            must(log.offset_for_timestamp(5_003)).map(|(o, _)| o),
            Some(Offset(3)),
            "{compression:?}"
        );
        assert_eq!(log.max_timestamp(), Some((Offset(4), 5_004)));
    }
}

#[test]
fn a_correct_header_is_stored_as_sent() {
    let dir = tempdir();
    let mut log = open(dir.path(), small_config());
    let bytes = plain(3, 7_000);
    must(log.append_as_leader(&bytes, LeaderEpoch(0), NOW));
    let r = must(log.read(Offset(0), usize::MAX, log.log_end_offset(), true));
    // Only the base offset and leader epoch (outside the CRC) differ.
    assert_eq!(r.records.get(17..), bytes.get(17..));
}

#[test]
fn timestamps_beyond_the_bounds_are_refused_and_nothing_is_appended() {
    let dir = tempdir();
    let config = LogConfig {
        timestamp_bounds: TimestampBounds {
            before_max_ms: 60_000,
            after_max_ms: 1_000,
        },
        ..small_config()
    };
    let mut log = open(dir.path(), config);
    // One hour ahead (past after.max.ms), uncompressed and compressed alike.
    for compression in [Compression::None, Compression::Gzip] {
        let ahead = build(Spec {
            records: 2,
            timestamp: NOW + 3_600_000,
            compression,
            ..Spec::default()
        });
        assert_eq!(
            code(log.append_as_leader(&ahead, LeaderEpoch(0), NOW)),
            Some(32),
            "INVALID_TIMESTAMP ({compression:?})"
        );
    }
    // Too old (before.max.ms), even hidden behind an unset header in a compressed batch.
    let old = unset_max(build(Spec {
        records: 2,
        timestamp: NOW - 120_000,
        compression: Compression::Snappy,
        ..Spec::default()
    }));
    assert_eq!(
        code(log.append_as_leader(&old, LeaderEpoch(0), NOW)),
        Some(32)
    );
    match log.append_as_leader(&old, LeaderEpoch(0), NOW) {
        Err(LogError::RecordsRejected(r)) => {
            let indices: Vec<i32> = r.errors.iter().map(|e| e.batch_index).collect();
            assert_eq!(indices, [0, 1]);
            assert!(r.errors[0]
                .message
                .as_deref()
                .is_some_and(|m| m.contains("message.timestamp.before.max.ms")));
        }
        other => panic!("{other:?}"),
    }
    // Only the records out of range are named: here the last of three (stamped 1 ms apart,
    // the last 1 ms past after.max.ms), in a compressed batch whose header is set (walked
    // because its max says a record is out).
    let mixed = build(Spec {
        records: 3,
        timestamp: NOW + 999,
        compression: Compression::Lz4,
        ..Spec::default()
    });
    match log.append_as_leader(&mixed, LeaderEpoch(0), NOW) {
        Err(LogError::RecordsRejected(r)) => {
            let indices: Vec<i32> = r.errors.iter().map(|e| e.batch_index).collect();
            assert_eq!(indices, [2]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(log.log_end_offset(), Offset(0), "nothing appended");
    // Within the bounds: appended.
    must(log.append_as_leader(&plain(1, NOW - 30_000), LeaderEpoch(0), NOW));
    must(log.append_as_leader(&plain(1, NOW + 500), LeaderEpoch(0), NOW));
    assert_eq!(log.log_end_offset(), Offset(2));
}

#[test]
fn log_append_time_topics_ignore_the_bounds() {
    let dir = tempdir();
    let config = LogConfig {
        timestamp_type_log_append: true,
        timestamp_bounds: TimestampBounds {
            before_max_ms: 0,
            after_max_ms: 0,
        },
        ..small_config()
    };
    let mut log = open(dir.path(), config);
    let info = must(log.append_as_leader(&plain(2, 1), LeaderEpoch(0), NOW));
    assert_eq!(info.log_append_time, NOW);
}
