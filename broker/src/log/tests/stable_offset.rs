//! The last stable offset (Kafka's rule: open transactions, and decided ones whose marker the
//! high watermark has not passed), the list of decided transactions it keeps and its bound,
//! rebuilding it at open and after truncation, and what a read_committed read collects.

use proptest::prelude::*;

use super::{append, build, must, open, plain, small_config, tempdir, Spec};
use crate::log::{AbortedTxn, LogConfig, PartitionLog};
use crate::types::{CoordinatorEpoch, LeaderEpoch, Offset, ProducerEpoch, ProducerId};

/// A transactional batch of `n` records.
fn txn(pid: i64, seq: i32, n: usize) -> Vec<u8> {
    build(Spec {
        records: n,
        producer_id: pid,
        producer_epoch: 0,
        base_sequence: seq,
        transactional: true,
        ..Spec::default()
    })
}

/// Writes a marker; returns its offset.
fn marker(log: &mut PartitionLog, pid: i64, commit: bool) -> i64 {
    let info = must(log.append_control(
        ProducerId(pid),
        ProducerEpoch(0),
        CoordinatorEpoch(0),
        commit,
        LeaderEpoch(0),
        20_000,
    ));
    info.first_offset.0
}

/// The LSO at high watermark `hw`.
fn lso(log: &PartitionLog, hw: i64) -> i64 {
    log.last_stable_offset(Offset(hw)).0
}

/// The LSO at every high watermark from 0 to the log end.
fn lso_profile(log: &PartitionLog) -> Vec<i64> {
    (0..=log.log_end_offset().0)
        .map(|hw| lso(log, hw))
        .collect()
}

fn aborted(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id: ProducerId(pid),
        first_offset: Offset(first),
        last_offset: Offset(last),
        last_stable_offset: Offset(lso),
    }
}

#[test]
fn without_transactions_the_lso_is_the_high_watermark() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, &plain(5, 1));
    assert_eq!(lso_profile(&log), vec![0, 1, 2, 3, 4, 5]);
}

#[test]
fn an_open_transaction_holds_the_lso_at_its_first_offset() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, &plain(2, 1)); // 0-1
    append(&mut log, &txn(1, 0, 2)); // 2-3
    append(&mut log, &plain(2, 1)); // 4-5
    assert_eq!(lso(&log, 1), 1, "below the transaction: the high watermark");
    assert_eq!(lso(&log, 2), 2);
    assert_eq!(lso(&log, 6), 2, "the open transaction holds it");
    log.on_high_watermark(Offset(6));
    assert_eq!(lso(&log, 6), 2, "whatever the high watermark");
}

#[test]
fn a_decided_transaction_holds_the_lso_until_the_high_watermark_passes_its_marker() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, &txn(1, 0, 2)); // 0-1
    append(&mut log, &plain(1, 1)); // 2
    let commit = marker(&mut log, 1, true); // 3
    assert_eq!(commit, 3);
    assert_eq!(log.first_unstable_offset(), None, "decided");
    assert_eq!(log.unreplicated_txn_count(), 1);
    // The marker is at 3: until the high watermark is past it, the LSO stays at 0.
    assert_eq!(lso_profile(&log), vec![0, 0, 0, 0, 4]);
    log.on_high_watermark(Offset(3));
    assert_eq!(log.unreplicated_txn_count(), 1, "the marker is not below 3");
    assert_eq!(lso(&log, 3), 0);
    log.on_high_watermark(Offset(4));
    assert_eq!(log.unreplicated_txn_count(), 0, "replicated: forgotten");
    assert_eq!(lso(&log, 4), 4);
}

#[test]
fn the_oldest_of_open_and_unreplicated_transactions_wins() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, &txn(1, 0, 1)); // 0
    append(&mut log, &txn(2, 0, 1)); // 1
    marker(&mut log, 1, false); // 2: producer 1 aborted, 2 still open
    append(&mut log, &txn(3, 0, 1)); // 3
    marker(&mut log, 3, true); // 4
    assert_eq!(log.first_unstable_offset(), Some(Offset(1)));
    assert_eq!(lso(&log, 5), 1, "producer 2 is open from 1");
    marker(&mut log, 2, true); // 5
                               // Decided: 0..=2 (marker 2), 3..=4 (marker 4), 1..=5 (marker 5).
    assert_eq!(lso_profile(&log), vec![0, 0, 0, 1, 1, 1, 6]);
    // 0..=2 starts before 1..=5, so both are kept: 0..=2 until the hw passes 2.
    log.on_high_watermark(Offset(3));
    assert_eq!(lso(&log, 3), 1);
    log.on_high_watermark(Offset(6));
    assert_eq!((lso(&log, 6), log.unreplicated_txn_count()), (6, 0));
}

#[test]
fn overlapping_transactions_cost_one_entry() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, &txn(1, 0, 1)); // 0
    append(&mut log, &txn(2, 0, 1)); // 1
    append(&mut log, &txn(3, 0, 1)); // 2
    marker(&mut log, 3, true); // 3: 2..=3
    marker(&mut log, 2, true); // 4: 1..=4 makes 2..=3 redundant
    marker(&mut log, 1, true); // 5: 0..=5 makes 1..=4 redundant
    assert_eq!(log.unreplicated_txn_count(), 1);
    assert_eq!(lso_profile(&log), vec![0, 0, 0, 0, 0, 0, 6]);
}

#[test]
fn the_list_stays_within_the_unreplicated_tail() {
    let dir = tempdir();
    let mut log = open(dir.path(), small_config());
    let mut hw = 0;
    for i in 0..40i64 {
        let pid = i % 3 + 1;
        append(&mut log, &txn(pid, (i / 3) as i32, 1));
        marker(&mut log, pid, i % 2 == 0);
        // The high watermark lags the log end by a few offsets.
        hw = (log.log_end_offset().0 - 5).max(hw);
        log.on_high_watermark(Offset(hw));
        let tail = (log.log_end_offset().0 - hw) as usize;
        assert!(log.unreplicated_txn_count() <= tail);
        assert!(
            log.unreplicated_txn_count() <= 3,
            "one per marker above the hw"
        );
    }
    assert!(log.segment_count() > 1);
    log.on_high_watermark(log.log_end_offset());
    assert_eq!(log.unreplicated_txn_count(), 0);
}

/// A log whose LSO profile covers open, decided-unreplicated and aborted transactions.
fn mixed_log(dir: &std::path::Path) -> PartitionLog {
    let mut log = open(dir, small_config());
    append(&mut log, &plain(2, 1)); // 0-1
    append(&mut log, &txn(1, 0, 2)); // 2-3
    append(&mut log, &txn(2, 0, 1)); // 4
    for i in 0..10 {
        append(&mut log, &plain(1, i)); // 5-14
    }
    marker(&mut log, 1, false); // 15: abort 2..=15
    marker(&mut log, 2, true); // 16: commit 4..=16
    append(&mut log, &plain(1, 1)); // 17
    append(&mut log, &txn(3, 0, 1)); // 18: open
    assert!(log.segment_count() > 1);
    log
}

#[test]
fn reopen_rebuilds_the_same_lso_until_the_high_watermark_passes() {
    let dir = tempdir();
    let log = mixed_log(dir.path());
    let profile = lso_profile(&log);
    assert_eq!(profile[15], 2, "abort at 15 not replicated at hw 15");
    assert_eq!(profile[16], 4, "commit at 16 not replicated at hw 16");
    assert_eq!(profile[17], 17);
    assert_eq!(profile[19], 18, "producer 3 is open");
    must(log.close());
    let mut log = open(dir.path(), small_config());
    assert_eq!(lso_profile(&log), profile, "clean reopen");
    // The partition restores hw 16 from its checkpoint: the commit at 16 still holds.
    log.on_high_watermark(Offset(16));
    assert_eq!(lso(&log, 16), 4);
    assert_eq!(log.unreplicated_txn_count(), 1);
    log.on_high_watermark(Offset(17));
    assert_eq!((lso(&log, 17), log.unreplicated_txn_count()), (17, 0));
    drop(log); // a crash
    let log = open(dir.path(), small_config());
    assert_eq!(lso_profile(&log), profile, "reopen after a crash");
}

#[test]
fn truncation_rebuilds_the_lso() {
    let dir = tempdir();
    let mut log = mixed_log(dir.path());
    log.on_high_watermark(Offset(17));
    assert_eq!(log.unreplicated_txn_count(), 0);
    // Cut the open transaction and the plain record: both markers stay, and the rebuild
    // holds the LSO for them again until the (follower's) high watermark is reported.
    must(log.truncate_to(Offset(17)));
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(lso(&log, 16), 4);
    assert_eq!(lso(&log, 17), 17);
    log.on_high_watermark(Offset(17));
    assert_eq!(log.unreplicated_txn_count(), 0);
    // Cut the commit: producer 2 is open again, the abort still decided.
    must(log.truncate_to(Offset(16)));
    assert_eq!(log.first_unstable_offset(), Some(Offset(4)));
    assert_eq!(lso(&log, 15), 2, "the abort at 15 is above hw 15");
    assert_eq!(lso(&log, 16), 4, "the open transaction of producer 2");
    let view = lso_profile(&log);
    drop(log);
    let log = open(dir.path(), small_config());
    assert_eq!(lso_profile(&log), view, "truncation agrees with a reopen");
}

#[test]
fn reads_end_where_they_say_and_collect_the_aborted_transactions_of_what_they_return() {
    let dir = tempdir();
    let mut log = mixed_log(dir.path());
    let end = log.log_end_offset();
    // read_committed at hw = LEO: bounded by the open transaction at 18.
    let bound = log.last_stable_offset(end);
    assert_eq!(bound, Offset(18));
    let r = must(log.read(Offset(0), usize::MAX, bound, true));
    assert_eq!(r.next_offset, Offset(18), "across segments, up to the LSO");
    assert_eq!(
        log.collect_aborted_txns(Offset(0), r.next_offset),
        vec![aborted(1, 2, 15, 4)]
    );
    // A read that returns only the plain records before the transaction sees none of it.
    let r = must(log.read(Offset(0), usize::MAX, Offset(2), true));
    assert_eq!(r.next_offset, Offset(2));
    assert!(log
        .collect_aborted_txns(Offset(0), r.next_offset)
        .is_empty());
    // A read from past the abort's marker does not need it.
    let r = must(log.read(Offset(16), usize::MAX, bound, true));
    assert_eq!(r.next_offset, Offset(18));
    assert!(log
        .collect_aborted_txns(Offset(16), r.next_offset)
        .is_empty());
    // A read from inside the aborted transaction does.
    let r = must(log.read(Offset(5), 1, bound, true));
    assert_eq!(r.next_offset, Offset(6), "one batch: min_one");
    assert_eq!(
        log.collect_aborted_txns(Offset(5), r.next_offset),
        vec![aborted(1, 2, 15, 4)]
    );
    // Nothing returned: the requested offset.
    let r = must(log.read(Offset(18), usize::MAX, bound, true));
    assert!(r.records.is_empty());
    assert_eq!(r.next_offset, Offset(18));
    let r = must(log.read(end, usize::MAX, end, true));
    assert_eq!((r.records.len(), r.next_offset), (0, end));
    // An abort that ends after the LSO is reported once a read reaches its first batch.
    marker(&mut log, 3, false); // 19
    let end = log.log_end_offset();
    let r = must(log.read(Offset(17), usize::MAX, log.last_stable_offset(end), true));
    assert_eq!(r.next_offset, end);
    assert_eq!(
        log.collect_aborted_txns(Offset(17), r.next_offset),
        vec![aborted(3, 18, 19, 20)]
    );
}

#[test]
fn the_lso_never_drops_below_the_log_start() {
    let dir = tempdir();
    let mut log = open(dir.path(), small_config());
    append(&mut log, &txn(1, 0, 1)); // 0: open
    for i in 0..3 {
        append(&mut log, &plain(1, i)); // 1-3
    }
    must(log.delete_records_before(Offset(2), Offset(4)));
    assert_eq!(log.log_start_offset(), Offset(2));
    assert_eq!(
        lso(&log, 4),
        2,
        "the open transaction began before the log start"
    );
}

/// One step of the model test.
#[derive(Debug, Clone)]
enum Op {
    /// A one-record plain batch.
    Plain,
    /// A one-record transactional batch of producer `0`.
    Txn(i64),
    /// A marker for producer `0` (commit when `1`).
    Marker(i64, bool),
    /// The high watermark moves this share (in percent) of the way to the log end.
    Hw(u8),
    /// A follower truncates this share (in percent) of the way from the high watermark to the end.
    Truncate(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Plain),
        4 => (1i64..4).prop_map(Op::Txn),
        3 => (1i64..4, any::<bool>()).prop_map(|(p, c)| Op::Marker(p, c)),
        3 => (0u8..=100).prop_map(Op::Hw),
        1 => (0u8..=100).prop_map(Op::Truncate),
    ]
}

/// The transactions a log holds, as plain data: first offset and marker offset (if decided).
#[derive(Debug, Default)]
struct Model {
    txns: Vec<(i64, i64, Option<i64>)>, // (producer, first offset, marker offset)
    /// Per producer, the (offset, sequence) of its batches, for the next sequence.
    batches: std::collections::HashMap<i64, Vec<(i64, i32)>>,
}

impl Model {
    fn open(&self, pid: i64) -> Option<usize> {
        self.txns
            .iter()
            .position(|&(p, _, marker)| p == pid && marker.is_none())
    }

    /// Kafka's LSO at high watermark `hw`.
    fn lso(&self, hw: i64) -> i64 {
        let first = self
            .txns
            .iter()
            .filter(|&&(_, _, marker)| marker.is_none_or(|m| m >= hw))
            .map(|&(_, first, _)| first)
            .min();
        match first {
            Some(f) if f < hw => f,
            _ => hw,
        }
    }

    /// Everything at or after `at` is gone; markers there reopen their transactions.
    fn truncate(&mut self, at: i64) {
        self.txns.retain(|&(_, first, _)| first < at);
        for t in &mut self.txns {
            if t.2.is_some_and(|m| m >= at) {
                t.2 = None;
            }
        }
        for b in self.batches.values_mut() {
            b.retain(|&(o, _)| o < at);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the interleaving of transactional and plain batches, markers, high-watermark
    /// moves and truncations, the LSO is the model's at every high watermark from the current
    /// one up, the list stays within the un-replicated tail, and a reopen agrees.
    #[test]
    fn the_lso_matches_a_model(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempdir();
        let mut log = open(dir.path(), small_config());
        let mut model = Model::default();
        let mut hw = 0i64;
        for op in ops {
            let end = log.log_end_offset().0;
            match op {
                Op::Plain => {
                    append(&mut log, &plain(1, 1));
                }
                Op::Txn(pid) => {
                    let seq = model.batches.get(&pid).and_then(|b| b.last()).map_or(0, |&(_, s)| s + 1);
                    let (first, _) = append(&mut log, &txn(pid, seq, 1));
                    model.batches.entry(pid).or_default().push((first, seq));
                    if model.open(pid).is_none() {
                        model.txns.push((pid, first, None));
                    }
                }
                Op::Marker(pid, commit) => {
                    let at = marker(&mut log, pid, commit);
                    if let Some(i) = model.open(pid) {
                        model.txns[i].2 = Some(at);
                    }
                }
                Op::Hw(share) => {
                    hw += (end - hw) * i64::from(share) / 100;
                    log.on_high_watermark(Offset(hw));
                }
                Op::Truncate(share) => {
                    let at = hw + (end - hw) * i64::from(share) / 100;
                    must(log.truncate_to(Offset(at)));
                    model.truncate(at);
                    log.on_high_watermark(Offset(hw));
                }
            }
            let end = log.log_end_offset().0;
            for h in hw..=end {
                prop_assert_eq!(lso(&log, h), model.lso(h), "hw {}", h);
            }
            prop_assert!(log.unreplicated_txn_count() <= (end - hw) as usize);
        }
        let end = log.log_end_offset().0;
        must(log.close());
        let mut log = open(dir.path(), small_config());
        log.on_high_watermark(Offset(hw));
        for h in hw..=end {
            prop_assert_eq!(lso(&log, h), model.lso(h), "reopened, hw {}", h);
        }
    }
}
