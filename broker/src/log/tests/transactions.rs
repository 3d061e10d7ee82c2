//! Transactions on the log side: open transactions and the first unstable offset, markers
//! (`append_control`) and their checks, the `.txnindex`, and rebuilding all of it at open and
//! after truncation.

use super::{append, build, idempotent, must, open, plain, read_all, small_config, tempdir, Spec};
use crate::error::KafkaError;
use crate::log::{AbortedTxn, AppendInfo, LogConfig, LogError, PartitionLog};
use crate::types::{CoordinatorEpoch, LeaderEpoch, Offset, ProducerEpoch, ProducerId};

/// A transactional batch of `n` records.
fn txn(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    build(Spec {
        records: n,
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        transactional: true,
        ..Spec::default()
    })
}

/// Writes a marker.
fn marker(
    log: &mut PartitionLog,
    pid: i64,
    epoch: i16,
    coordinator_epoch: i32,
    commit: bool,
) -> Result<AppendInfo, LogError> {
    log.append_control(
        ProducerId(pid),
        ProducerEpoch(epoch),
        CoordinatorEpoch(coordinator_epoch),
        commit,
        LeaderEpoch(0),
        20_000,
    )
}

fn aborted(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id: ProducerId(pid),
        first_offset: Offset(first),
        last_offset: Offset(last),
        last_stable_offset: Offset(lso),
    }
}

fn code(r: Result<AppendInfo, LogError>) -> Option<i16> {
    r.map_err(|e| KafkaError::from(e).code()).err()
}

/// Every `.txnindex` in `dir`, by name, with its bytes.
fn txn_index_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = must(std::fs::read_dir(dir))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txnindex"))
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, must(std::fs::read(&p)))
        })
        .collect();
    files.sort();
    files
}

/// The whole-log view a fetch would get.
fn all_aborted(log: &PartitionLog) -> Vec<AbortedTxn> {
    log.collect_aborted_txns(Offset(0), Offset(i64::MAX))
}

#[test]
fn first_transactional_batch_holds_the_first_unstable_offset_until_its_marker() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, &plain(2, 1));
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(append(&mut log, &txn(1, 0, 0, 2)), (2, 3));
    assert_eq!(log.first_unstable_offset(), Some(Offset(2)));
    append(&mut log, &plain(1, 1));
    append(&mut log, &txn(1, 0, 2, 1));
    assert_eq!(
        log.first_unstable_offset(),
        Some(Offset(2)),
        "later batches continue the transaction"
    );
    let state = log.producer_state(ProducerId(1));
    assert_eq!(
        state.and_then(|s| s.current_txn_start_offset),
        Some(Offset(2))
    );
    let info = must(marker(&mut log, 1, 0, 0, true));
    assert_eq!(
        (info.first_offset, info.last_offset),
        (Offset(6), Offset(6))
    );
    assert_eq!(log.first_unstable_offset(), None);
    assert!(all_aborted(&log).is_empty(), "a commit is not indexed");
    assert!(txn_index_files(dir.path()).is_empty());
    let state = log.producer_state(ProducerId(1));
    assert_eq!(
        state.map(|s| (s.coordinator_epoch, s.current_txn_start_offset)),
        Some((CoordinatorEpoch(0), None))
    );
    // The marker is stored as Kafka's control batch and served like any batch.
    let r = must(log.read(Offset(6), usize::MAX, log.log_end_offset(), true));
    let h = super::headers(&r.records);
    assert_eq!(h.len(), 1);
    assert!(h[0].is_control() && h[0].is_transactional());
    // The next transactional batch opens a new transaction.
    append(&mut log, &txn(1, 0, 3, 1));
    assert_eq!(log.first_unstable_offset(), Some(Offset(7)));
}

#[test]
fn interleaved_producers_and_kafkas_last_stable_offset_rule() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, &txn(1, 0, 0, 2)); // 0-1
    append(&mut log, &txn(2, 0, 0, 1)); // 2
    append(&mut log, &txn(1, 0, 2, 1)); // 3
    assert_eq!(log.first_unstable_offset(), Some(Offset(0)));
    must(marker(&mut log, 1, 0, 0, false)); // 4: abort, producer 2 still open at 2
    assert_eq!(log.first_unstable_offset(), Some(Offset(2)));
    assert_eq!(all_aborted(&log), vec![aborted(1, 0, 4, 2)]);
    append(&mut log, &txn(3, 0, 0, 1)); // 5
    must(marker(&mut log, 2, 0, 0, true)); // 6
    assert_eq!(log.first_unstable_offset(), Some(Offset(5)));
    must(marker(&mut log, 3, 0, 0, false)); // 7: nobody else open: marker + 1
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(
        all_aborted(&log),
        vec![aborted(1, 0, 4, 2), aborted(3, 5, 7, 8)]
    );
    // Kafka's overlap rule for a fetch of [5, 6): only producer 3's transaction.
    assert_eq!(
        log.collect_aborted_txns(Offset(5), Offset(6)),
        vec![aborted(3, 5, 7, 8)]
    );
    // A marker for a producer without an open transaction is written and ends nothing.
    let info = must(marker(&mut log, 9, 0, 0, false));
    assert_eq!(info.first_offset, Offset(8));
    assert_eq!(all_aborted(&log).len(), 2);
}

#[test]
fn non_transactional_batch_during_a_transaction_is_refused() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, &txn(1, 0, 0, 2));
    let size = log.size_bytes();
    assert_eq!(
        code(log.append_as_leader(&idempotent(1, 0, 2, 1), LeaderEpoch(0), 0)),
        Some(48)
    );
    let blob = [plain(1, 1), idempotent(1, 0, 2, 1)].concat();
    assert_eq!(
        code(log.append_as_leader(&blob, LeaderEpoch(0), 0)),
        Some(48),
        "one bad batch fails the request"
    );
    assert_eq!((log.log_end_offset(), log.size_bytes()), (Offset(2), size));
    assert_eq!(log.first_unstable_offset(), Some(Offset(0)));
    // A retry of the transactional batch is still a duplicate; after the marker the
    // producer may write outside a transaction again.
    let retry = must(log.append_as_leader(&txn(1, 0, 0, 2), LeaderEpoch(0), 0));
    assert!(retry.duplicate);
    must(marker(&mut log, 1, 0, 0, true));
    assert_eq!(append(&mut log, &idempotent(1, 0, 2, 1)), (3, 3));
    // Another producer is not affected by producer 1's transaction.
    append(&mut log, &txn(1, 0, 3, 1));
    assert_eq!(append(&mut log, &idempotent(2, 0, 0, 1)), (5, 5));
}

#[test]
fn stale_producer_or_coordinator_epoch_on_a_marker_is_refused() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, &txn(1, 2, 0, 1));
    must(marker(&mut log, 1, 2, 5, true));
    append(&mut log, &txn(1, 2, 1, 1));
    let (end, size) = (log.log_end_offset(), log.size_bytes());
    let stale_producer = marker(&mut log, 1, 1, 5, false);
    assert!(
        matches!(
            stale_producer,
            Err(LogError::InvalidProducerEpoch {
                current: ProducerEpoch(2),
                received: ProducerEpoch(1),
                ..
            })
        ),
        "{stale_producer:?}"
    );
    assert_eq!(code(marker(&mut log, 1, 1, 5, false)), Some(47));
    let stale_coordinator = marker(&mut log, 1, 2, 4, false);
    assert!(
        matches!(
            stale_coordinator,
            Err(LogError::TransactionCoordinatorFenced {
                current: CoordinatorEpoch(5),
                received: CoordinatorEpoch(4),
                ..
            })
        ),
        "{stale_coordinator:?}"
    );
    assert_eq!(code(marker(&mut log, 1, 2, 4, false)), Some(52));
    assert_eq!((log.log_end_offset(), log.size_bytes()), (end, size));
    assert_eq!(log.first_unstable_offset(), Some(Offset(2)));
    assert!(all_aborted(&log).is_empty());
    // A newer coordinator and a bumped producer epoch (the abort of a fenced producer) pass.
    must(marker(&mut log, 1, 3, 6, false));
    assert_eq!(all_aborted(&log), vec![aborted(1, 2, 3, 4)]);
    assert_eq!(
        log.producer_state(ProducerId(1))
            .map(|s| (s.producer_epoch, s.coordinator_epoch)),
        Some((ProducerEpoch(3), CoordinatorEpoch(6)))
    );
}

/// A log with an aborted, a committed and an open transaction over several segments.
fn busy_log(dir: &std::path::Path) -> PartitionLog {
    let mut log = open(dir, small_config());
    append(&mut log, &txn(1, 0, 0, 2));
    append(&mut log, &txn(2, 0, 0, 1));
    for i in 0..12 {
        append(&mut log, &plain(1, i));
    }
    must(marker(&mut log, 1, 0, 3, false));
    append(&mut log, &txn(3, 0, 0, 1));
    must(marker(&mut log, 2, 0, 3, true));
    for i in 0..12 {
        append(&mut log, &plain(1, i));
    }
    append(&mut log, &txn(4, 0, 0, 1));
    must(marker(&mut log, 3, 0, 3, false));
    assert!(log.segment_count() > 2, "spans segments");
    log
}

/// What a reopen must reproduce.
fn txn_view(log: &PartitionLog) -> (Option<Offset>, Vec<AbortedTxn>, Offset) {
    (
        log.first_unstable_offset(),
        all_aborted(log),
        log.log_end_offset(),
    )
}

#[test]
fn reopen_rebuilds_the_same_transactions_clean_or_after_a_crash() {
    let dir = tempdir();
    let log = busy_log(dir.path());
    let view = txn_view(&log);
    assert_eq!(view.0, Some(Offset(30)), "producer 4 is still open");
    assert_eq!(
        view.1,
        vec![aborted(1, 0, 15, 2), aborted(3, 16, 31, 30)],
        "{view:?}"
    );
    let files = txn_index_files(dir.path());
    assert_eq!(files.len(), 2, "one file per segment holding an ABORT");
    must(log.close());
    let log = open(dir.path(), small_config());
    assert_eq!(txn_view(&log), view, "clean reopen");
    assert_eq!(txn_index_files(dir.path()), files);
    drop(log); // a crash: no clean-shutdown marker
    let mut log = open(dir.path(), small_config());
    assert_eq!(txn_view(&log), view, "reopen after a crash");
    assert_eq!(txn_index_files(dir.path()), files);
    // Producer state came back too: the coordinator epoch still fences.
    assert_eq!(code(marker(&mut log, 3, 0, 2, true)), Some(52));
    must(marker(&mut log, 4, 0, 3, true));
    assert_eq!(log.first_unstable_offset(), None);
}

#[test]
fn missing_short_or_corrupt_txn_index_files_are_rebuilt() {
    let dir = tempdir();
    let log = busy_log(dir.path());
    let view = txn_view(&log);
    let files = txn_index_files(dir.path());
    must(log.close());
    let paths: Vec<_> = files.iter().map(|(n, _)| dir.path().join(n)).collect();
    let damage: [&dyn Fn(&std::path::Path); 4] = [
        &|p| must(std::fs::remove_file(p)),
        &|p| must(std::fs::write(p, [0u8; 33])),
        &|p| must(std::fs::write(p, [0xffu8; 34 * 3])),
        &|p| must(std::fs::write(p, [])),
    ];
    for d in damage {
        for p in &paths {
            d(p);
        }
        // A stray index of a segment that holds no ABORT is dropped too.
        let first_log = dir.path().join(format!("{:020}.txnindex", 0));
        let _ = std::fs::remove_file(&first_log);
        let log = open(dir.path(), small_config());
        assert_eq!(txn_view(&log), view);
        assert_eq!(txn_index_files(dir.path()), files);
        must(log.close());
    }
}

#[test]
fn golden_txn_index_file() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, &plain(3, 1));
    append(&mut log, &txn(0x0102_0304_0506, 0, 0, 2)); // 3-4
    must(marker(&mut log, 0x0102_0304_0506, 0, 0, false)); // 5
    let files = txn_index_files(dir.path());
    let expected: Vec<u8> = [
        &[0x00, 0x00][..],                                 // version 0
        &[0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06], // producer id
        &[0, 0, 0, 0, 0, 0, 0, 3],                         // first offset
        &[0, 0, 0, 0, 0, 0, 0, 5],                         // last offset (the marker)
        &[0, 0, 0, 0, 0, 0, 0, 6],                         // last stable offset
    ]
    .concat();
    assert_eq!(
        files,
        vec![(format!("{:020}.txnindex", 0), expected)],
        "Kafka's 34-byte big-endian entry"
    );
}

#[test]
fn truncation_below_a_marker_reopens_its_transaction() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, &txn(1, 0, 0, 2)); // 0-1
    append(&mut log, &txn(2, 0, 0, 1)); // 2
    must(marker(&mut log, 2, 0, 0, true)); // 3
    must(marker(&mut log, 1, 0, 0, false)); // 4
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(all_aborted(&log), vec![aborted(1, 0, 4, 5)]);
    must(log.truncate_to(Offset(4)));
    assert_eq!(log.first_unstable_offset(), Some(Offset(0)));
    assert!(all_aborted(&log).is_empty());
    assert!(txn_index_files(dir.path())
        .iter()
        .all(|(_, bytes)| bytes.is_empty()));
    // The producer is still in its transaction: a plain batch is refused.
    assert_eq!(
        code(log.append_as_leader(&idempotent(1, 0, 2, 1), LeaderEpoch(0), 0)),
        Some(48)
    );
    must(log.truncate_to(Offset(3)));
    assert_eq!(log.first_unstable_offset(), Some(Offset(0)));
    must(marker(&mut log, 2, 0, 0, true));
    must(marker(&mut log, 1, 0, 0, false));
    assert_eq!(all_aborted(&log), vec![aborted(1, 0, 4, 5)]);
    // Reopen agrees with the live state.
    let view = txn_view(&log);
    drop(log);
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(txn_view(&log), view);
    assert_eq!(read_all(&log, 0), vec![0, 2, 3, 4]);
}

#[test]
fn follower_appends_replay_markers_into_the_same_state() {
    let dir = tempdir();
    let leader = busy_log(dir.path());
    let copy = tempdir();
    let mut follower = open(copy.path(), small_config());
    for base in read_all(&leader, 0) {
        let r = must(leader.read(Offset(base), 1, leader.log_end_offset(), true));
        let one = super::headers(&r.records);
        let size = one.first().map_or(0, |h| h.total_size());
        must(follower.append_as_follower(&r.records[..size]));
    }
    assert_eq!(txn_view(&follower), txn_view(&leader));
}

#[test]
fn retention_deletes_a_segments_txn_index() {
    let dir = tempdir();
    let mut log = open(dir.path(), small_config());
    append(&mut log, &txn(1, 0, 0, 1));
    must(marker(&mut log, 1, 0, 0, false));
    must(log.roll());
    append(&mut log, &txn(2, 0, 0, 1)); // 2
    must(marker(&mut log, 2, 0, 0, false)); // 3
    must(log.roll());
    append(&mut log, &plain(1, 1));
    let name = |base: i64| format!("{base:020}.txnindex");
    let names = |files: Vec<(String, Vec<u8>)>| files.into_iter().map(|f| f.0).collect::<Vec<_>>();
    assert_eq!(names(txn_index_files(dir.path())), vec![name(0), name(2)]);
    must(log.delete_records_before(Offset(2), Offset(5)));
    assert_eq!(names(txn_index_files(dir.path())), vec![name(2)]);
    assert_eq!(all_aborted(&log), vec![aborted(2, 2, 3, 4)]);
    log.set_config(LogConfig {
        retention_ms: 0,
        ..small_config()
    });
    must(log.enforce_retention(i64::MAX / 2));
    assert!(txn_index_files(dir.path()).is_empty());
    assert!(all_aborted(&log).is_empty());
}

#[test]
fn a_marker_at_a_bumped_epoch_restarts_the_producers_sequences() {
    // Transactions v2: the commit marker of epoch 2's transaction is written at epoch 3, and
    // the producer's next transaction starts at sequence 0 of epoch 3.
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, &txn(1, 2, 0, 3));
    must(marker(&mut log, 1, 3, 0, true));
    let end = log.log_end_offset();
    let gap = log.append_as_leader(&txn(1, 3, 3, 1), LeaderEpoch(0), 20_000);
    assert!(
        matches!(
            gap,
            Err(LogError::OutOfOrderSequence {
                expected: 0,
                received: 3,
                ..
            })
        ),
        "{gap:?}"
    );
    assert_eq!(log.log_end_offset(), end, "nothing appended");
    append(&mut log, &txn(1, 3, 0, 2));
    append(&mut log, &txn(1, 3, 2, 1));
    // A marker at the same epoch (transactions v1) keeps the sequences going.
    must(marker(&mut log, 1, 3, 0, false));
    append(&mut log, &txn(1, 3, 3, 1));
    // Rebuilt at open, the rule holds the same way.
    must(marker(&mut log, 1, 4, 0, true));
    drop(log);
    let mut log = open(dir.path(), LogConfig::default());
    let gap = log.append_as_leader(&txn(1, 4, 4, 1), LeaderEpoch(0), 20_000);
    assert!(
        matches!(
            gap,
            Err(LogError::OutOfOrderSequence {
                expected: 0,
                received: 4,
                ..
            })
        ),
        "{gap:?}"
    );
    append(&mut log, &txn(1, 4, 0, 1));
}

#[test]
fn a_producer_first_seen_through_its_marker_may_go_on_at_any_sequence() {
    // A v1 producer whose data batches are gone (retention kept only its marker) is rebuilt
    // from the marker alone: its next batch continues at its own sequence, as Kafka accepts.
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    must(marker(&mut log, 7, 3, 0, true));
    append(&mut log, &txn(7, 3, 250, 1));
    // And a marker at another epoch for a producer with no batches restarts nothing either.
    must(marker(&mut log, 8, 2, 0, false));
    must(marker(&mut log, 8, 3, 0, false));
    append(&mut log, &txn(8, 3, 40, 1));
}
