//! Retention, DeleteRecords and truncation.

use super::{append, must, open, plain, read_all, small_config, tempdir};
use crate::log::{LogConfig, LogError};
use crate::types::{LeaderEpoch, Offset};

/// 30 two-record batches stamped 1000 + i, in 1 KiB segments.
fn filled(dir: &std::path::Path, config: LogConfig) -> crate::log::PartitionLog {
    let mut log = open(dir, config);
    for i in 0..30 {
        append(&mut log, &plain(2, 1_000 + i));
    }
    log
}

#[test]
fn retention_by_time_keeps_the_active_segment() {
    let dir = tempdir();
    let mut log = filled(
        dir.path(),
        LogConfig {
            retention_ms: 100,
            segment_ms: i64::MAX,
            ..small_config()
        },
    );
    let infos = log.segments_info();
    assert!(infos.len() >= 3);
    // Only the first segment's newest record is older than 100 ms at this time.
    let now = infos[0].max_timestamp + 101;
    assert_eq!(must(log.enforce_retention(now)), 1);
    assert_eq!(log.log_start_offset(), infos[1].base_offset);
    assert!(matches!(
        log.read(Offset(0), 100, Offset(60), true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(!dir.path().join("00000000000000000000.log").exists());
    // Far in the future everything but the active segment goes.
    let deleted = must(log.enforce_retention(1_000_000));
    assert_eq!(deleted, infos.len() - 2);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset(), infos[infos.len() - 1].base_offset);
    assert_eq!(log.log_end_offset(), Offset(60));
    // The log start survives a reopen.
    must(log.close());
    let log = open(dir.path(), small_config());
    assert_eq!(log.log_start_offset(), infos[infos.len() - 1].base_offset);
}

#[test]
fn retention_by_size() {
    let dir = tempdir();
    let mut log = filled(
        dir.path(),
        LogConfig {
            retention_ms: -1,
            ..small_config()
        },
    );
    let infos = log.segments_info();
    let total = log.size_bytes() as i64;
    let first = infos[0].size_bytes as i64;
    // Exactly one segment's worth too big: the first goes.
    log.set_config(LogConfig {
        retention_ms: -1,
        retention_bytes: total - first,
        ..small_config()
    });
    assert_eq!(must(log.enforce_retention(0)), 1);
    assert_eq!(log.log_start_offset(), infos[1].base_offset);
    assert_eq!(must(log.enforce_retention(0)), 0);
    log.set_config(LogConfig {
        retention_ms: -1,
        retention_bytes: 0,
        ..small_config()
    });
    must(log.enforce_retention(0));
    assert_eq!(log.segment_count(), 1, "never the active segment");
    assert_eq!(read_all(&log, log.log_start_offset().0).last(), Some(&58));
}

#[test]
fn retention_rolls_an_old_active_segment() {
    let dir = tempdir();
    let mut log = open(
        dir.path(),
        LogConfig {
            segment_ms: 1_000,
            retention_ms: 5_000,
            ..LogConfig::default()
        },
    );
    must(log.append_as_leader(&plain(1, 100), LeaderEpoch(0), 100));
    assert_eq!(must(log.enforce_retention(500)), 0);
    assert_eq!(log.segment_count(), 1);
    // segment.ms passed: rolled, and the old segment is past retention too.
    assert_eq!(must(log.enforce_retention(10_000)), 1);
    assert_eq!(
        (
            log.segment_count(),
            log.log_start_offset(),
            log.log_end_offset()
        ),
        (1, Offset(1), Offset(1))
    );
}

#[test]
fn delete_records_moves_the_log_start() {
    let dir = tempdir();
    let mut log = filled(dir.path(), small_config());
    let infos = log.segments_info();
    let hw = Offset(50);
    assert!(matches!(
        log.delete_records_before(Offset(51), hw),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(must(log.delete_records_before(Offset(5), hw)), Offset(5));
    assert_eq!(
        log.segment_count(),
        infos.len(),
        "segment 0 still holds offsets >= 5"
    );
    assert_eq!(
        read_all(&log, 5).first(),
        Some(&4),
        "the batch holding offset 5 is served whole"
    );
    assert!(log.read(Offset(4), 100, hw, true).is_err());
    // Going back is a no-op.
    assert_eq!(must(log.delete_records_before(Offset(2), hw)), Offset(5));
    let past_first = infos[1].base_offset.0 + 1;
    assert_eq!(
        must(log.delete_records_before(Offset(past_first), hw)),
        Offset(past_first)
    );
    assert_eq!(log.segments_info()[0].base_offset, infos[1].base_offset);
    must(log.close());
    let log = open(dir.path(), small_config());
    assert_eq!(log.log_start_offset(), Offset(past_first));
}

#[test]
fn truncate_to_drops_the_tail() {
    let dir = tempdir();
    let mut log = open(dir.path(), small_config());
    for i in 0..30 {
        must(log.append_as_leader(
            &plain(2, 1_000 + i),
            LeaderEpoch(if i < 20 { 1 } else { 2 }),
            0,
        ));
    }
    let segments = log.segment_count();
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(1)),
        Some((LeaderEpoch(1), Offset(40)))
    );
    must(log.truncate_to(Offset(30)));
    assert_eq!(log.log_end_offset(), Offset(30));
    assert!(log.segment_count() < segments);
    assert_eq!(read_all(&log, 20), vec![20, 22, 24, 26, 28]);
    assert_eq!(log.latest_epoch(), Some(LeaderEpoch(1)));
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(2)),
        Some((LeaderEpoch(1), Offset(30)))
    );
    assert_eq!(log.max_timestamp(), Some((Offset(29), 1_015)));
    // A batch straddling the target goes whole.
    must(log.truncate_to(Offset(25)));
    assert_eq!(log.log_end_offset(), Offset(24));
    // Appends continue; the rebuilt indexes work after a reopen.
    assert_eq!(super::append(&mut log, &plain(2, 5)), (24, 25));
    must(log.close());
    let mut log = open(dir.path(), small_config());
    assert_eq!(read_all(&log, 0).len(), 13);
    // Below the log start: the log restarts empty at the target.
    must(log.delete_records_before(Offset(10), Offset(26)));
    must(log.truncate_to(Offset(3)));
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count()
        ),
        (Offset(3), Offset(3), 1)
    );
    assert_eq!(super::append(&mut log, &plain(1, 5)), (3, 3));
}

#[test]
fn delete_removes_the_directory() {
    let dir = tempdir();
    let path = dir.path().join("topic-0");
    let log = open(&path, LogConfig::default());
    assert!(path.exists());
    must(log.delete());
    assert!(!path.exists());
}
