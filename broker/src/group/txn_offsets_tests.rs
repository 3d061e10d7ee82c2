//! Pending transactional offsets: completion on COMMIT/ABORT, the log-position rule against
//! plain commits, OffsetFetch with `require_stable`, and the replay of a real partition log
//! written through the coordinator append path with markers from `append_control`.

use std::collections::HashMap;

use super::*;
use crate::group::store::{Entry, OffsetValue};
use crate::log::{LogConfig, PartitionLog};
use crate::types::{CoordinatorEpoch, LeaderEpoch, ProducerEpoch, ProducerId};

const UNSTABLE: i16 = 88;

fn must<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("unexpected error: {e:?}"),
    }
}

fn value(offset: i64) -> OffsetValue {
    OffsetValue {
        offset,
        leader_epoch: 3,
        metadata: format!("m{offset}"),
        commit_timestamp: 1_000,
    }
}

fn logged(offset: i64, log_offset: i64) -> LoggedOffset {
    LoggedOffset {
        value: value(offset),
        log_offset,
    }
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

/// What OffsetFetch answers for `group`/`t-p`: (offset, error).
fn fetch(
    groups: &HashMap<String, GroupEntry>,
    txn: &PartitionTxnOffsets,
    group: &str,
    p: i32,
    require_stable: bool,
) -> (i64, i16) {
    let c = lookup(groups.get(group), Some(txn), group, &tp(p), require_stable);
    (c.offset, c.error)
}

/// Commits `offset` for `group`/`t-p` as a plain OffsetCommit appended at `log_offset`.
fn plain_commit(
    groups: &mut HashMap<String, GroupEntry>,
    group: &str,
    p: i32,
    offset: i64,
    log_offset: i64,
) {
    groups
        .entry(group.to_string())
        .or_insert_with(|| GroupEntry::new(group))
        .offsets
        .insert(tp(p), logged(offset, log_offset));
}

#[test]
fn pending_offsets_become_committed_on_commit_and_go_on_abort() {
    let mut groups = HashMap::new();
    let mut txn = PartitionTxnOffsets::default();
    txn.add(1, "g", tp(0), logged(10, 5));
    txn.add(2, "g", tp(1), logged(11, 6));
    txn.add(2, "g", tp(1), logged(12, 7));
    assert_eq!((txn.len(), txn.producers()), (2, 2), "a re-commit replaces");
    // Pending offsets are never returned; require_stable makes them visible as unstable.
    assert_eq!(fetch(&groups, &txn, "g", 0, false), (-1, 0));
    assert_eq!(fetch(&groups, &txn, "g", 0, true), (-1, UNSTABLE));
    assert_eq!(fetch(&groups, &txn, "g", 1, true), (-1, UNSTABLE));
    assert_eq!(fetch(&groups, &txn, "g", 2, true), (-1, 0));
    assert_eq!(fetch(&groups, &txn, "other", 0, true), (-1, 0));

    assert_eq!(complete(&mut groups, &mut txn, 1, true), 1);
    assert_eq!(fetch(&groups, &txn, "g", 0, true), (10, 0));
    let c = lookup(groups.get("g"), Some(&txn), "g", &tp(0), true);
    assert_eq!((c.leader_epoch, c.metadata.as_str()), (3, "m10"));
    assert_eq!(fetch(&groups, &txn, "g", 1, true), (-1, UNSTABLE));

    assert_eq!(complete(&mut groups, &mut txn, 2, false), 0);
    assert_eq!(
        fetch(&groups, &txn, "g", 1, true),
        (-1, 0),
        "aborted: dropped"
    );
    assert_eq!(fetch(&groups, &txn, "g", 1, false), (-1, 0));
    assert!(txn.is_empty());
    // A completion for a producer with nothing pending changes nothing.
    assert_eq!(complete(&mut groups, &mut txn, 1, true), 0);
    assert_eq!(fetch(&groups, &txn, "g", 0, false), (10, 0));
}

#[test]
fn the_log_position_decides_against_plain_commits() {
    let mut groups = HashMap::new();
    let mut txn = PartitionTxnOffsets::default();
    // Plain commit before the transactional one: the transaction's offset wins.
    plain_commit(&mut groups, "g", 0, 1, 3);
    txn.add(7, "g", tp(0), logged(50, 5));
    // A plain commit appended after the transactional one, before the marker: it stays.
    txn.add(7, "g", tp(1), logged(51, 5));
    plain_commit(&mut groups, "g", 1, 80, 8);
    assert_eq!(
        fetch(&groups, &txn, "g", 1, true),
        (-1, UNSTABLE),
        "still unstable while the transaction is open"
    );
    assert_eq!(fetch(&groups, &txn, "g", 1, false), (80, 0));
    assert_eq!(complete(&mut groups, &mut txn, 7, true), 1);
    assert_eq!(fetch(&groups, &txn, "g", 0, false), (50, 0));
    assert_eq!(
        fetch(&groups, &txn, "g", 1, false),
        (80, 0),
        "appended later wins"
    );
    // A group known only through its transaction is created by the commit.
    txn.add(8, "new", tp(0), logged(5, 9));
    complete(&mut groups, &mut txn, 8, true);
    assert!(groups
        .get("new")
        .is_some_and(|e| e.group.state == crate::group::state::GroupState::Empty));
    assert_eq!(fetch(&groups, &txn, "new", 0, false), (5, 0));
}

#[test]
fn tombstones_and_group_removal_drop_pending_offsets() {
    let mut txn = PartitionTxnOffsets::default();
    txn.add(1, "g", tp(0), logged(1, 1));
    txn.add(2, "g", tp(0), logged(2, 2));
    txn.add(2, "g", tp(1), logged(3, 2));
    txn.add(2, "h", tp(0), logged(4, 2));
    assert!(txn.is_pending("g", &tp(0)) && txn.group_has_pending("h"));
    assert_eq!(txn.pending_partitions("g").len(), 2);
    txn.remove_offset("g", &tp(0));
    assert!(!txn.is_pending("g", &tp(0)));
    assert_eq!(
        (txn.len(), txn.producers()),
        (2, 1),
        "producer 1 had nothing else"
    );
    txn.remove_for_producer(2, "h", &tp(0));
    assert!(!txn.group_has_pending("h"));
    txn.remove_group("g");
    assert!(txn.is_empty() && txn.producers() == 0);
}

/// A partition log written as the coordinator writes `__consumer_offsets`.
struct OffsetsLog {
    _dir: tempfile::TempDir,
    log: PartitionLog,
}

impl OffsetsLog {
    fn new() -> OffsetsLog {
        let dir = must(tempfile::tempdir());
        let log = must(PartitionLog::open(
            dir.path(),
            "tid-offsets",
            LogConfig::default(),
            10_000,
            &crate::log::FileCache::new(crate::log::MIN_OPEN_FILES),
        ));
        OffsetsLog { _dir: dir, log }
    }

    /// A plain OffsetCommit (or a tombstone with `None`); returns the batch's base offset.
    fn plain(&mut self, group: &str, p: i32, offset: Option<i64>) -> i64 {
        let entry = match offset {
            Some(o) => Entry::offset(group, "t", p, &value(o)),
            None => Entry::offset_tombstone(group, "t", p),
        };
        let bytes = must(store::encode(&[entry], 1_000));
        must(self.log.append_as_leader(&bytes, LeaderEpoch(0), 1_000))
            .first_offset
            .0
    }

    /// A TxnOffsetCommit of `producer` for `group`: one transactional batch.
    fn txn(&mut self, producer: i64, group: &str, offsets: &[(i32, i64)]) -> i64 {
        let entries: Vec<Entry> = offsets
            .iter()
            .map(|(p, o)| Entry::offset(group, "t", *p, &value(*o)))
            .collect();
        let bytes = must(store::encode_txn(&entries, 1_000, producer, 0));
        let info = must(
            self.log
                .append_as_coordinator(&bytes, LeaderEpoch(0), 1_000),
        );
        assert_eq!(
            info.last_offset.0 - info.first_offset.0 + 1,
            offsets.len() as i64,
            "one record per offset"
        );
        info.first_offset.0
    }

    fn marker(&mut self, producer: i64, commit: bool) {
        must(self.log.append_control(
            ProducerId(producer),
            ProducerEpoch(0),
            CoordinatorEpoch(0),
            commit,
            LeaderEpoch(0),
            2_000,
        ));
    }

    fn replay(&self) -> Loaded {
        let end = self.log.log_end_offset();
        let (loaded, read) = replay(self.log.log_start_offset(), |offset, max| {
            self.log.read(offset, max, end, true)
        });
        must(read);
        loaded
    }
}

#[test]
fn encode_txn_writes_one_transactional_batch_without_sequence() {
    let entries = [
        Entry::offset("g", "t", 0, &value(1)),
        Entry::offset("g", "t", 1, &value(2)),
        Entry::offset("g", "t", 2, &value(3)),
    ];
    let bytes = must(store::encode_txn(&entries, 1_000, 42, 3));
    let batches = must(crate::log::batch::validate_as_coordinator(&bytes));
    assert_eq!(batches.len(), 1);
    let h = batches[0].header;
    assert!(h.is_transactional() && !h.is_control());
    assert_eq!(
        (
            h.producer_id,
            h.producer_epoch,
            h.base_sequence,
            h.record_count
        ),
        (42, 3, -1, 3)
    );
    assert!(
        crate::log::batch::validate(&bytes).is_err(),
        "not a client's batch"
    );
    let decoded = store::decode_batches(bytes);
    assert_eq!(decoded.len(), 1);
    assert!(decoded[0].transactional && decoded[0].producer_id == 42);
}

#[test]
fn replay_applies_commits_drops_aborts_and_keeps_open_transactions() {
    let mut l = OffsetsLog::new();
    l.plain("g", 0, Some(1));
    l.txn(7, "g", &[(0, 10), (1, 11)]);
    l.txn(8, "g", &[(2, 20)]);
    let open_at = l.txn(9, "h", &[(0, 30)]);
    l.txn(7, "g", &[(1, 12)]);
    l.marker(7, true);
    l.marker(8, false);
    l.plain("g", 3, Some(5));
    assert_eq!(
        l.log.first_unstable_offset(),
        Some(Offset(open_at)),
        "producer 9's transaction is still open in the log"
    );

    let mut loaded = l.replay();
    let (groups, txn) = (&loaded.groups, &loaded.txn);
    assert_eq!(
        fetch(groups, txn, "g", 0, true),
        (10, 0),
        "committed over the older plain one"
    );
    assert_eq!(
        fetch(groups, txn, "g", 1, true),
        (12, 0),
        "the transaction's last commit"
    );
    assert_eq!(fetch(groups, txn, "g", 2, true), (-1, 0), "aborted");
    assert_eq!(fetch(groups, txn, "g", 3, true), (5, 0));
    assert_eq!(fetch(groups, txn, "h", 0, false), (-1, 0), "still pending");
    assert_eq!(fetch(groups, txn, "h", 0, true), (-1, UNSTABLE));
    assert_eq!((txn.producers(), txn.len()), (1, 1));
    assert_eq!(loaded.records, 9, "7 offset records and 2 markers");

    // The open transaction's marker arrives after the load.
    assert_eq!(complete(&mut loaded.groups, &mut loaded.txn, 9, true), 1);
    assert_eq!(fetch(&loaded.groups, &loaded.txn, "h", 0, true), (30, 0));
    // And the same marker in the log replays to the same state.
    l.marker(9, true);
    let again = l.replay();
    assert_eq!(fetch(&again.groups, &again.txn, "h", 0, true), (30, 0));
    assert!(again.txn.is_empty());
    assert_eq!(l.log.first_unstable_offset(), None);
}

#[test]
fn replay_keeps_the_log_order_against_plain_commits_and_tombstones() {
    let mut l = OffsetsLog::new();
    // A plain commit after the transactional one wins at COMMIT.
    l.txn(10, "g", &[(0, 100)]);
    l.plain("g", 0, Some(200));
    // A plain tombstone drops the pending offset (OffsetDelete / DeleteGroups / expiry).
    l.txn(10, "g", &[(1, 7)]);
    l.plain("g", 1, None);
    // A later transaction of another producer wins over the earlier plain commit.
    l.plain("g", 2, Some(1));
    l.txn(11, "g", &[(2, 2)]);
    l.marker(11, true);
    l.marker(10, true);
    let loaded = l.replay();
    let (groups, txn) = (&loaded.groups, &loaded.txn);
    assert_eq!(fetch(groups, txn, "g", 0, true), (200, 0));
    assert_eq!(fetch(groups, txn, "g", 1, true), (-1, 0));
    assert_eq!(fetch(groups, txn, "g", 2, true), (2, 0));
    assert!(txn.is_empty());

    // The live path agrees: the same sequence through `complete` on the replayed state of
    // the log before the markers.
    let mut live = OffsetsLog::new();
    live.txn(10, "g", &[(0, 100)]);
    live.plain("g", 0, Some(200));
    let mut state = live.replay();
    assert_eq!(
        fetch(&state.groups, &state.txn, "g", 0, true),
        (-1, UNSTABLE)
    );
    complete(&mut state.groups, &mut state.txn, 10, true);
    assert_eq!(fetch(&state.groups, &state.txn, "g", 0, true), (200, 0));
}
