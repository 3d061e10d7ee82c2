//! Tests of the read side of a partition: read_committed stops at the last stable offset,
//! which waits for the high watermark to pass a transaction's marker; the aborted list; waiting
//! fetches woken when the LSO moves; followers and reopen.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::sync::Notify;
use uuid::Uuid;

use super::{FetchIsolation, Partition};
use crate::log::{AbortedTxn, LogConfig, PartitionLog};
use crate::metadata::PartitionMeta;
use crate::types::{
    BrokerId, CoordinatorEpoch, LeaderEpoch, Offset, ProducerEpoch, ProducerId, TopicPartition,
};

/// Unwraps with the error in the panic message (tests only).
fn must<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("unexpected error: {e:?}"),
    }
}

/// A batch of `n` records as a producer builds it: transactional (`pid` >= 0 with `txn`),
/// idempotent (`pid` >= 0) or plain (`pid` < 0).
fn batch(pid: i64, seq: i32, n: usize, txn: bool) -> Vec<u8> {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: txn,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: if pid >= 0 { 0 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Sequences must advance with offsets or the encoder splits the batch.
            sequence: if pid >= 0 { seq } else { -1 } + i as i32,
            timestamp: 1_000 + i as i64,
            key: None,
            value: Some(Bytes::from(format!("v{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    must(RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &options,
    ));
    buf.to_vec()
}

fn open_log(dir: &std::path::Path) -> PartitionLog {
    must(PartitionLog::open(
        dir,
        "topic-id",
        LogConfig::default(),
        0,
        &crate::log::FileCache::new(crate::log::MIN_OPEN_FILES),
    ))
}

fn partition(dir: &std::path::Path) -> Partition {
    Partition::new(
        TopicPartition::new("t", 0),
        Uuid::nil(),
        open_log(dir),
        LeaderEpoch(0),
    )
}

/// Broker 1 leads with `isr` in sync, broker 2 replicates.
fn meta(isr: &[i32]) -> PartitionMeta {
    PartitionMeta {
        replicas: vec![BrokerId(1), BrokerId(2)],
        isr: isr.iter().map(|&i| BrokerId(i)).collect(),
        leader: BrokerId(1),
        leader_epoch: LeaderEpoch(0),
        partition_epoch: 0,
    }
}

/// A leader whose high watermark moves only when broker 2 fetches.
fn leader(dir: &std::path::Path) -> Partition {
    let p = partition(dir);
    p.apply_meta(BrokerId(1), &meta(&[1, 2]), 1);
    p
}

fn append(p: &Partition, records: &[u8]) -> (i64, i64) {
    let info = must(p.append(records, 0));
    (info.first_offset.0, info.last_offset.0)
}

fn marker(p: &Partition, pid: i64, commit: bool) -> i64 {
    let (info, _) = must(p.append_control(
        ProducerId(pid),
        ProducerEpoch(0),
        CoordinatorEpoch(0),
        commit,
        0,
    ));
    info.first_offset.0
}

/// Broker 2 fetched everything: the high watermark reaches the log end.
fn replicate(p: &Partition) {
    let leo = p.log_end_offset().0;
    p.record_follower_fetch(BrokerId(2), leo, std::time::Instant::now());
    assert_eq!(p.high_watermark().0, leo);
}

/// What a fetch returned: (next offset, hw, lso, aborted as (producer id, first offset)).
type Seen = (i64, i64, i64, Option<Vec<(i64, i64)>>);

/// What a fetch from `offset` returns.
fn fetch(p: &Partition, offset: i64, isolation: FetchIsolation) -> Seen {
    let f = must(p.fetch(Offset(offset), usize::MAX, isolation, true));
    (
        f.read.next_offset.0,
        f.high_watermark.0,
        f.last_stable_offset.0,
        f.aborted.map(|list| {
            list.iter()
                .map(|a: &AbortedTxn| (a.producer_id.0, a.first_offset.0))
                .collect()
        }),
    )
}

const COMMITTED: FetchIsolation = FetchIsolation::TxnCommitted;
const UNCOMMITTED: FetchIsolation = FetchIsolation::HighWatermark;

#[test]
fn read_committed_stops_at_the_lso_until_the_marker_is_replicated() {
    let dir = must(tempfile::tempdir());
    let p = leader(dir.path());
    append(&p, &batch(-1, 0, 2, false)); // 0-1
    append(&p, &batch(7, 0, 2, true)); // 2-3
    append(&p, &batch(-1, 0, 1, false)); // 4
    replicate(&p);
    assert_eq!(must(p.last_stable_offset()), Offset(2));
    assert_eq!(fetch(&p, 0, COMMITTED), (2, 5, 2, Some(vec![])));
    assert_eq!(
        fetch(&p, 0, UNCOMMITTED),
        (5, 5, 2, None),
        "read_uncommitted reads through, and gets no aborted list"
    );
    assert_eq!(fetch(&p, 0, FetchIsolation::LogEnd), (5, 5, 2, None));
    // A read_committed fetch at the LSO returns nothing and waits.
    assert_eq!(fetch(&p, 2, COMMITTED), (2, 5, 2, Some(vec![])));

    // The abort is appended: still unreplicated, so the LSO holds.
    assert_eq!(marker(&p, 7, false), 5);
    assert_eq!(p.high_watermark(), Offset(5));
    assert_eq!(must(p.last_stable_offset()), Offset(2));
    assert_eq!(fetch(&p, 0, COMMITTED), (2, 5, 2, Some(vec![])));
    // Replicated: everything is stable, with the aborted transaction listed.
    replicate(&p);
    assert_eq!(must(p.last_stable_offset()), Offset(6));
    assert_eq!(fetch(&p, 0, COMMITTED), (6, 6, 6, Some(vec![(7, 2)])));
    assert_eq!(fetch(&p, 2, COMMITTED), (6, 6, 6, Some(vec![(7, 2)])));
    assert_eq!(
        fetch(&p, 5, COMMITTED),
        (6, 6, 6, Some(vec![(7, 2)])),
        "the marker itself is in range (Kafka's lastOffset >= fetchOffset)"
    );
    assert_eq!(fetch(&p, 6, COMMITTED), (6, 6, 6, Some(vec![])));
    assert_eq!(
        must(p.with_log(|l| Ok(l.unreplicated_txn_count()))),
        0,
        "the high watermark passed the marker: forgotten"
    );
}

#[test]
fn a_waiting_read_committed_fetch_wakes_when_the_lso_moves() {
    let dir = must(tempfile::tempdir());
    let p = leader(dir.path());
    append(&p, &batch(7, 0, 1, true)); // 0
    replicate(&p);
    let waiter = Arc::new(Notify::new());
    p.watch_for_fetch(&waiter);
    marker(&p, 7, true); // 1
    assert!(
        woken(&waiter),
        "the marker append wakes fetches (followers need it)"
    );
    assert_eq!(fetch(&p, 0, COMMITTED).2, 0, "not replicated yet");
    p.watch_for_fetch(&waiter);
    replicate(&p);
    assert!(woken(&waiter), "the high watermark passed the marker");
    assert_eq!(fetch(&p, 0, COMMITTED), (2, 2, 2, Some(vec![])));
}

/// Whether `n` holds a notification (consumed).
fn woken(n: &Notify) -> bool {
    let rt = must(
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build(),
    );
    rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_millis(50), n.notified())
            .await
            .is_ok()
    })
}

#[test]
fn a_single_replica_leader_is_stable_after_each_marker() {
    let dir = must(tempfile::tempdir());
    let p = partition(dir.path());
    p.apply_meta(BrokerId(1), &meta(&[1]), 1);
    append(&p, &batch(7, 0, 2, true)); // 0-1
    assert_eq!(must(p.last_stable_offset()), Offset(0));
    marker(&p, 7, true); // 2
    assert_eq!(p.high_watermark(), Offset(3));
    assert_eq!(must(p.last_stable_offset()), Offset(3));
    assert_eq!(
        must(p.with_log(|l| Ok(l.unreplicated_txn_count()))),
        0,
        "pruned when the append moved the high watermark"
    );
}

#[test]
fn followers_keep_the_lso_of_their_own_high_watermark_and_reopen_keeps_it() {
    let (ld, fd) = (must(tempfile::tempdir()), must(tempfile::tempdir()));
    let leader = leader(ld.path());
    append(&leader, &batch(7, 0, 2, true)); // 0-1
    append(&leader, &batch(-1, 0, 1, false)); // 2
    marker(&leader, 7, false); // 3
    let follower = partition(fd.path());
    follower.apply_meta(BrokerId(2), &meta(&[1, 2]), 1);
    let all = must(leader.read(Offset(0), usize::MAX, false, true));
    assert!(must(follower.append_as_follower(&all.records, LeaderEpoch(0))).is_some());
    follower.set_follower_high_watermark(3);
    assert_eq!(must(follower.last_stable_offset()), Offset(0));
    follower.set_follower_high_watermark(4);
    assert_eq!(must(follower.last_stable_offset()), Offset(4));
    assert_eq!(
        must(follower.with_log(|l| Ok(l.unreplicated_txn_count()))),
        0
    );

    // The leader restarts with hw 3 checkpointed: the rebuilt abort still holds the LSO.
    assert!(leader.close().is_ok());
    drop(leader);
    let reopened = partition(ld.path());
    reopened.restore_high_watermark(3);
    reopened.apply_meta(BrokerId(1), &meta(&[1, 2]), 1);
    assert_eq!(must(reopened.last_stable_offset()), Offset(0));
    assert_eq!(fetch(&reopened, 0, COMMITTED), (0, 3, 0, Some(vec![])));
    replicate(&reopened);
    assert_eq!(
        fetch(&reopened, 0, COMMITTED),
        (4, 4, 4, Some(vec![(7, 0)]))
    );
}

#[test]
fn fetchable_offset_follows_the_isolation() {
    let dir = must(tempfile::tempdir());
    let p = leader(dir.path());
    append(&p, &batch(-1, 0, 2, false)); // 0-1
    replicate(&p);
    append(&p, &batch(7, 0, 1, true)); // 2
    replicate(&p);
    append(&p, &batch(-1, 0, 1, false)); // 3, not replicated
    let at = |i| must(p.fetchable_offset(i)).0;
    assert_eq!(
        (at(FetchIsolation::LogEnd), at(UNCOMMITTED), at(COMMITTED)),
        (4, 3, 2)
    );
    assert_eq!(FetchIsolation::for_consumer(0), Some(UNCOMMITTED));
    assert_eq!(FetchIsolation::for_consumer(1), Some(COMMITTED));
    assert_eq!(FetchIsolation::for_consumer(2), None);
}

/// KIP-890's guard: a verification taken before a marker of the producer no longer allows
/// the append (INVALID_TXN_STATE, nothing written); a fresh one does; a dropped guard leaves
/// nothing behind.
#[test]
fn a_marker_between_verification_and_append_voids_the_verification() {
    let dir = must(tempfile::tempdir());
    let p = Arc::new(leader(dir.path()));
    // The producer's transaction: data, then verification of its next (first) write here
    // races with the marker that ends it.
    append(&p, &batch(7, 0, 2, true));
    let guard = must(p.start_verification(ProducerId(7)));
    marker(&p, 7, true);
    let end = p.log_end_offset();
    let err = p
        .append_verified(&batch(7, 2, 1, true), 0, &guard)
        .expect_err("the transaction ended since the verification");
    assert_eq!(
        err.code(),
        kafka_protocol::error::ResponseError::InvalidTxnState.code()
    );
    assert_eq!(p.log_end_offset(), end, "nothing appended");
    drop(guard);
    // A verification after the marker holds, once.
    let guard = must(p.start_verification(ProducerId(7)));
    must(p.append_verified(&batch(7, 2, 1, true), 0, &guard));
    assert!(p.append_verified(&batch(7, 3, 1, true), 0, &guard).is_err());
    drop(guard);
    assert!(p.verifications().by_producer.is_empty());
}

/// Guards are bounded per partition and dropped ones free their place.
#[test]
fn verifications_are_bounded() {
    let dir = must(tempfile::tempdir());
    let p = Arc::new(leader(dir.path()));
    let guards: Vec<_> = (0..super::MAX_VERIFICATIONS as i64)
        .map(|pid| must(p.start_verification(ProducerId(pid))))
        .collect();
    assert!(p.start_verification(ProducerId(-5)).is_err());
    // The same producer may verify again (it replaces its own entry).
    let again = must(p.start_verification(ProducerId(3)));
    drop(guards);
    assert_eq!(p.verifications().by_producer.len(), 1);
    drop(again);
    assert!(p.verifications().by_producer.is_empty());
}
