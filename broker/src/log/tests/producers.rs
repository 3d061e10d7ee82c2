//! Idempotent producers on the leader, and follower appends.

use super::{append, headers, idempotent, must, open, plain, tempdir};
use crate::log::{LogConfig, LogError};
use crate::types::{LeaderEpoch, Offset, ProducerId};

#[test]
fn duplicate_returns_original_offsets_without_appending() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, &plain(4, 1));
    let first = must(log.append_as_leader(&idempotent(7, 0, 0, 3), LeaderEpoch(0), 0));
    assert_eq!(
        (first.first_offset, first.last_offset),
        (Offset(4), Offset(6))
    );
    append(&mut log, &idempotent(7, 0, 3, 2));
    let size = log.size_bytes();
    let retry = must(log.append_as_leader(&idempotent(7, 0, 0, 3), LeaderEpoch(0), 0));
    assert!(retry.duplicate);
    assert_eq!(
        (retry.first_offset, retry.last_offset, retry.bytes),
        (Offset(4), Offset(6), 0)
    );
    assert_eq!((log.size_bytes(), log.log_end_offset()), (size, Offset(9)));
}

#[test]
fn sequence_gap_and_old_epoch_are_rejected() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, &idempotent(7, 1, 0, 2));
    let gap = log.append_as_leader(&idempotent(7, 1, 5, 1), LeaderEpoch(0), 0);
    assert!(
        matches!(
            gap,
            Err(LogError::OutOfOrderSequence {
                producer_id: ProducerId(7),
                expected: 2,
                received: 5
            })
        ),
        "{gap:?}"
    );
    let old = log.append_as_leader(&idempotent(7, 0, 2, 1), LeaderEpoch(0), 0);
    assert_eq!(
        old.map_err(|e| crate::error::KafkaError::from(e).code())
            .err(),
        Some(47)
    );
    let bumped_not_zero = log.append_as_leader(&idempotent(7, 2, 2, 1), LeaderEpoch(0), 0);
    assert_eq!(
        bumped_not_zero
            .map_err(|e| crate::error::KafkaError::from(e).code())
            .err(),
        Some(45)
    );
    assert_eq!(
        log.log_end_offset(),
        Offset(2),
        "rejected batches leave no trace"
    );
    assert_eq!(append(&mut log, &idempotent(7, 2, 0, 1)), (2, 2));
    assert_eq!(
        log.producer_state(ProducerId(7))
            .map(|p| p.producer_epoch.0),
        Some(2)
    );
    // A new producer may start anywhere (its earlier batches may have been deleted).
    assert_eq!(append(&mut log, &idempotent(8, 0, 40, 1)), (3, 3));
}

#[test]
fn several_batches_of_one_producer_in_one_request() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    let blob = [idempotent(3, 0, 0, 2), idempotent(3, 0, 2, 2)].concat();
    assert_eq!(append(&mut log, &blob), (0, 3));
    let retry = must(log.append_as_leader(&blob, LeaderEpoch(0), 0));
    assert!(retry.duplicate);
    assert_eq!(
        (retry.first_offset, retry.last_offset),
        (Offset(0), Offset(3))
    );
    let gap = [idempotent(3, 0, 4, 1), idempotent(3, 0, 6, 1)].concat();
    assert!(log.append_as_leader(&gap, LeaderEpoch(0), 0).is_err());
    assert_eq!(
        log.producer_state(ProducerId(3)).map(|p| p.last_sequence),
        Some(3),
        "nothing of a rejected request is kept"
    );
}

#[test]
fn follower_append_copies_batches_as_they_are() {
    let leader_dir = tempdir();
    let mut leader = open(leader_dir.path(), LogConfig::default());
    must(leader.append_as_leader(&plain(2, 1), LeaderEpoch(3), 0));
    must(leader.append_as_leader(&idempotent(9, 0, 0, 2), LeaderEpoch(5), 0));
    let fetched = must(leader.read(Offset(0), usize::MAX, Offset(4), true)).records;

    let dir = tempdir();
    let mut follower = open(dir.path(), LogConfig::default());
    let info = must(follower.append_as_follower(&fetched));
    assert_eq!(
        (info.first_offset, info.last_offset, info.record_count),
        (Offset(0), Offset(3), 4)
    );
    let copy = must(follower.read(Offset(0), usize::MAX, Offset(4), true)).records;
    assert_eq!(copy, fetched);
    assert_eq!(
        follower.end_offset_for_epoch(LeaderEpoch(3)),
        Some((LeaderEpoch(3), Offset(2)))
    );
    assert_eq!(follower.latest_epoch(), Some(LeaderEpoch(5)));
    assert_eq!(
        follower
            .producer_state(ProducerId(9))
            .map(|p| p.last_offset),
        Some(Offset(3))
    );
    // Not at the log end: refused.
    let again = follower.append_as_follower(&fetched);
    assert!(
        matches!(
            again,
            Err(LogError::UnexpectedAppendOffset {
                expected: Offset(4),
                received: Offset(0)
            })
        ),
        "{again:?}"
    );
    // Damaged bytes: refused.
    let mut bad = fetched.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    must(follower.truncate_to(Offset(0)));
    assert_eq!(
        follower
            .append_as_follower(&bad)
            .map_err(|e| crate::error::KafkaError::from(e).code())
            .err(),
        Some(2)
    );
    assert_eq!(headers(&fetched).len(), 2);
}

#[test]
fn flush_policy_and_close() {
    let dir = tempdir();
    let mut log = open(
        dir.path(),
        LogConfig {
            flush_messages: 1,
            ..LogConfig::default()
        },
    );
    append(&mut log, &plain(1, 1));
    must(log.flush());
    must(log.close());
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), Offset(1));
}

#[test]
fn follower_accepts_gaps_from_a_compacted_leader() {
    let leader_dir = tempdir();
    let mut leader = open(leader_dir.path(), LogConfig::default());
    must(leader.append_as_leader(&plain(2, 1), LeaderEpoch(1), 0));
    must(leader.append_as_leader(&plain(3, 1), LeaderEpoch(1), 0));
    // Only the second batch (offsets 2..4), as if compaction removed offsets 0..1.
    let tail = must(leader.read(Offset(2), usize::MAX, Offset(5), true)).records;
    let dir = tempdir();
    let mut follower = open(dir.path(), LogConfig::default());
    let info = must(follower.append_as_follower(&tail));
    assert_eq!(
        (info.first_offset, info.last_offset),
        (Offset(2), Offset(4))
    );
    assert_eq!(follower.log_end_offset(), Offset(5));
    let read = must(follower.read(Offset(0), usize::MAX, Offset(5), true)).records;
    assert_eq!(read, tail, "a read inside the gap starts at the next batch");
}
