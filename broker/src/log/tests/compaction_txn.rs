//! Compaction of transactional data (Kafka's cleaner rules): aborted records go, committed
//! ones compete by key, markers stay while their transaction has data and go after
//! `delete.retention.ms`, nothing at or past an open transaction is cleaned, and the
//! read_committed view, the `.txnindex` and the producer state are what they were (and what a
//! reopen rebuilds).

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use proptest::prelude::*;

use super::compaction::{compact_config, keyed_batch};
use super::{headers, must, open, tempdir};
use crate::log::{LogConfig, PartitionLog};
use crate::types::{CoordinatorEpoch, LeaderEpoch, Offset, ProducerEpoch, ProducerId};

/// Well past every marker's timestamp (20,000) plus `delete.retention.ms` of `config()`.
const LATE: i64 = 10_000_000;
/// Before the markers' `delete.retention.ms` has passed.
const EARLY: i64 = 20_500;

/// Compaction with markers and tombstones kept for one second, and a pass whenever anything
/// is dirty.
fn config() -> LogConfig {
    LogConfig {
        delete_retention_ms: 1_000,
        min_cleanable_dirty_ratio: 0.0,
        ..compact_config()
    }
}

/// A pass at `now_ms` after one more record, so there is something dirty and the pass runs.
fn compact_again(log: &mut PartitionLog, now_ms: i64) {
    let mut seqs = HashMap::new();
    put(log, &mut seqs, -1, false, &[("dirty", "x")]);
    roll(log);
    must(log.compact(now_ms));
}

/// Appends one batch of `recs` (`(key, value)`) for `pid` (transactional when `txn`), with
/// the producer's next sequence taken from and stored in `seqs`.
fn put(
    log: &mut PartitionLog,
    seqs: &mut HashMap<i64, i32>,
    pid: i64,
    txn: bool,
    recs: &[(&str, &str)],
) {
    let seq = seqs.entry(pid).or_insert(0);
    let recs: Vec<(Option<&str>, Option<&str>)> =
        recs.iter().map(|(k, v)| (Some(*k), Some(*v))).collect();
    let bytes = keyed_batch(&recs, 1_000, Compression::None, Some((pid, 0, *seq)), txn);
    *seq += recs.len() as i32;
    must(log.append_as_leader(&bytes, LeaderEpoch(0), 10_000));
}

/// Ends `pid`'s transaction; returns the marker's offset.
fn end(log: &mut PartitionLog, pid: i64, commit: bool) -> i64 {
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

/// What a read_committed consumer reading from the log start to the last stable offset ends
/// up with: the latest value of every key, each with the offset it was read at.
fn committed_view(log: &PartitionLog) -> BTreeMap<String, (i64, String)> {
    let upper = log.last_stable_offset(log.log_end_offset());
    let aborted = log.collect_aborted_txns(log.log_start_offset(), upper);
    let r = must(log.read(log.log_start_offset(), usize::MAX, upper, true));
    let mut bytes = r.records;
    let mut view = BTreeMap::new();
    for batch in must(RecordBatchDecoder::decode_all(&mut bytes)) {
        for rec in batch.records {
            if rec.control || rec.offset >= upper.0 {
                continue;
            }
            let in_aborted = rec.transactional
                && aborted.iter().any(|a| {
                    a.producer_id.0 == rec.producer_id
                        && a.first_offset.0 <= rec.offset
                        && rec.offset <= a.last_offset.0
                });
            if in_aborted {
                continue;
            }
            let text = |b: &Option<Bytes>| {
                b.as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default()
            };
            view.insert(text(&rec.key), (rec.offset, text(&rec.value)));
        }
    }
    view
}

/// Base offsets of the control batches left in the log.
fn markers(log: &PartitionLog) -> Vec<i64> {
    let r = must(log.read(
        log.log_start_offset(),
        usize::MAX,
        log.log_end_offset(),
        true,
    ));
    headers(&r.records)
        .iter()
        .filter(|h| h.is_control())
        .map(|h| h.base_offset)
        .collect()
}

/// Offsets of every data record left in the log, aborted or not.
fn data_offsets(log: &PartitionLog) -> Vec<i64> {
    let r = must(log.read(
        log.log_start_offset(),
        usize::MAX,
        log.log_end_offset(),
        true,
    ));
    let mut bytes = r.records;
    must(RecordBatchDecoder::decode_all(&mut bytes))
        .into_iter()
        .flat_map(|b| b.records)
        .filter(|r| !r.control)
        .map(|r| r.offset)
        .collect()
}

fn roll(log: &mut PartitionLog) {
    must(log.roll());
}

#[test]
fn aborted_records_go_committed_ones_compete_and_markers_follow_their_data() {
    let dir = tempdir();
    let mut log = open(dir.path(), config());
    let mut seqs = HashMap::new();
    put(&mut log, &mut seqs, -1, false, &[("k0", "a")]); // 0
    roll(&mut log);
    // Producer 1 commits k0=b, k1=b.
    put(&mut log, &mut seqs, 1, true, &[("k0", "b"), ("k1", "b")]); // 1, 2
    let commit_1 = end(&mut log, 1, true); // 3
    roll(&mut log);
    // Producer 2 aborts k0=c, k2=c, then commits six batches of other keys.
    put(&mut log, &mut seqs, 2, true, &[("k0", "c"), ("k2", "c")]); // 4, 5
    let abort_2 = end(&mut log, 2, false); // 6
    roll(&mut log);
    for i in 0..6 {
        put(&mut log, &mut seqs, 2, true, &[(&format!("p2-{i}"), "x")]); // 7..=12
    }
    let commit_2 = end(&mut log, 2, true); // 13
    roll(&mut log);
    put(&mut log, &mut seqs, -1, false, &[("k1", "d")]); // 14
    roll(&mut log);
    assert_eq!(
        (commit_1, abort_2, commit_2),
        (3, 6, 13),
        "offsets as planned"
    );
    let view = committed_view(&log);
    assert_eq!(view.get("k0"), Some(&(1, "b".to_string())));
    assert!(!view.contains_key("k2"), "aborted");
    let producers = log.producer_states();
    assert_eq!(log.collect_aborted_txns(Offset(0), Offset(100)).len(), 1);

    // Too early for markers: data goes, every marker stays.
    let stats = must(log.compact(EARLY));
    assert_eq!(committed_view(&log), view, "read_committed sees the same");
    assert_eq!(
        data_offsets(&log),
        vec![1, 2, 7, 8, 9, 10, 11, 12, 14],
        "k0=a superseded by a committed record and the aborted batch gone; producer 1's \
         only batch (its state) stays whole"
    );
    assert_eq!(stats.records_removed, 3, "{stats:?}");
    assert_eq!(markers(&log), vec![3, 6, 13]);
    assert!(
        log.collect_aborted_txns(Offset(0), Offset(100)).is_empty(),
        "the abort's data is gone: its index entry too"
    );
    assert_eq!(log.producer_states(), producers);

    // Later: the abort marker, whose data is gone, goes; producer 1's marker still ends
    // data (offset 1) and each producer's last marker stays anyway.
    compact_again(&mut log, LATE);
    assert_eq!(markers(&log), vec![3, 13]);
    let mut after = committed_view(&log);
    assert_eq!(after.remove("dirty"), Some((15, "x".to_string())));
    assert_eq!(after, view);
    assert_eq!(log.producer_states(), producers);

    // A reopen rebuilds the same producers, index and view.
    let view = committed_view(&log);
    must(log.close());
    let log = open(dir.path(), config());
    assert_eq!(log.producer_states(), producers);
    assert!(log.collect_aborted_txns(Offset(0), Offset(100)).is_empty());
    assert_eq!(committed_view(&log), view);
    assert_eq!(markers(&log), vec![3, 13]);
}

#[test]
fn nothing_at_or_past_an_open_transaction_is_cleaned() {
    let dir = tempdir();
    let mut log = open(dir.path(), config());
    let mut seqs = HashMap::new();
    put(&mut log, &mut seqs, -1, false, &[("k0", "a")]); // 0
    roll(&mut log);
    put(&mut log, &mut seqs, 1, true, &[("k0", "open")]); // 1: stays open
    roll(&mut log);
    put(&mut log, &mut seqs, -1, false, &[("k0", "b")]); // 2
    put(&mut log, &mut seqs, -1, false, &[("k3", "z")]); // 3
    roll(&mut log);
    put(&mut log, &mut seqs, -1, false, &[("k0", "c")]); // 4
    roll(&mut log);
    let before = data_offsets(&log);
    // The range ends before the open transaction's segment: only segment 0 could be cleaned,
    // and nothing there is superseded within it.
    must(log.compact(EARLY));
    assert_eq!(data_offsets(&log), before);
    // Once it aborts, every superseded record goes (the aborted batch is its producer's
    // only one, kept whole for the producer state and filtered by read_committed).
    end(&mut log, 1, false); // 5
    roll(&mut log);
    must(log.compact(EARLY));
    assert_eq!(data_offsets(&log), vec![1, 3, 4]);
    assert_eq!(log.collect_aborted_txns(Offset(0), Offset(10)).len(), 1);
    let view = committed_view(&log);
    assert_eq!(view.get("k0"), Some(&(4, "c".to_string())));
}

#[test]
fn protected_batches_keep_their_abort_marker_and_index_entry() {
    // A producer's last five data batches stay whole even when aborted: its marker and its
    // `.txnindex` entry must stay with them, or read_committed would return aborted data.
    let dir = tempdir();
    let mut log = open(dir.path(), config());
    let mut seqs = HashMap::new();
    put(&mut log, &mut seqs, 1, true, &[("k0", "aborted")]); // 0
    end(&mut log, 1, false); // 1
    roll(&mut log);
    put(&mut log, &mut seqs, 1, true, &[("k1", "kept")]); // 2
    end(&mut log, 1, true); // 3
    roll(&mut log);
    let view = committed_view(&log);
    assert!(!view.contains_key("k0"));
    must(log.compact(LATE));
    assert_eq!(data_offsets(&log), vec![0, 2]);
    assert_eq!(markers(&log), vec![1, 3]);
    assert_eq!(log.collect_aborted_txns(Offset(0), Offset(10)).len(), 1);
    assert_eq!(committed_view(&log), view);
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Op {
    /// A non-transactional record for key `k`.
    Plain(u8),
    /// A transactional record of producer `p` for key `k`.
    Txn(u8, u8),
    /// Producer `p` commits (true) or aborts its transaction, if open.
    End(u8, bool),
    /// Roll the segment.
    Roll,
    /// A compaction pass at a time when markers may or may not go.
    Compact(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6).prop_map(Op::Plain),
        5 => (0u8..3, 0u8..6).prop_map(|(p, k)| Op::Txn(p, k)),
        3 => (0u8..3, any::<bool>()).prop_map(|(p, c)| Op::End(p, c)),
        3 => Just(Op::Roll),
        1 => any::<bool>().prop_map(Op::Compact),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the history, compaction never changes what a read_committed consumer
    /// materialises, the aborted transactions it is told of stay consistent with the data,
    /// and a reopen rebuilds the same producers, index and view.
    #[test]
    fn compaction_keeps_the_read_committed_view(ops in prop::collection::vec(op(), 1..80)) {
        let dir = tempdir();
        let mut log = open(dir.path(), config());
        let mut seqs = HashMap::new();
        let mut open_txns: HashSet<u8> = HashSet::new();
        for (n, op) in ops.into_iter().enumerate() {
            match op {
                Op::Plain(k) => put(&mut log, &mut seqs, -1, false, &[(&format!("k{k}"), &format!("v{n}"))]),
                Op::Txn(p, k) => {
                    put(&mut log, &mut seqs, 100 + i64::from(p), true, &[(&format!("k{k}"), &format!("v{n}"))]);
                    open_txns.insert(p);
                }
                Op::End(p, commit) => {
                    if open_txns.remove(&p) {
                        end(&mut log, 100 + i64::from(p), commit);
                    }
                }
                Op::Roll => roll(&mut log),
                Op::Compact(late) => {
                    let view = committed_view(&log);
                    let producers = log.producer_states();
                    let lso = log.last_stable_offset(log.log_end_offset());
                    must(log.compact(if late { LATE } else { EARLY }));
                    prop_assert_eq!(committed_view(&log), view);
                    prop_assert_eq!(log.producer_states(), producers);
                    prop_assert_eq!(log.last_stable_offset(log.log_end_offset()), lso);
                }
            }
        }
        for p in open_txns {
            end(&mut log, 100 + i64::from(p), p % 2 == 0);
        }
        roll(&mut log);
        let view = committed_view(&log);
        must(log.compact(EARLY));
        prop_assert_eq!(committed_view(&log), view.clone());
        put(&mut log, &mut seqs, -1, false, &[("dirty", "x")]);
        roll(&mut log);
        let view = committed_view(&log);
        must(log.compact(LATE));
        prop_assert_eq!(committed_view(&log), view.clone());
        let producers = log.producer_states();
        let aborted = log.collect_aborted_txns(Offset(0), Offset(i64::MAX));
        must(log.close());
        let log = open(dir.path(), config());
        prop_assert_eq!(log.producer_states(), producers);
        prop_assert_eq!(log.collect_aborted_txns(Offset(0), Offset(i64::MAX)), aborted);
        prop_assert_eq!(committed_view(&log), view);
    }
}
