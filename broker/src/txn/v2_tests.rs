//! Tests of transactions v2 (KIP-890 part 2) in state.rs: EndTxn v5's table per state (epoch
//! bump, retries answered with the bumped producer, empty aborts), the hand-over to a new
//! producer id when the epochs run out, the partition leader's add, and a v2 Prepare record
//! that survives a reload.
use super::tests::*;
use super::*;
use crate::txn::store;

const BUMPED: ProducerEpoch = ProducerEpoch(EPOCH.0 + 1);
const BEFORE: ProducerEpoch = ProducerEpoch(EPOCH.0 - 1);

fn end(
    m: &mut TxnMetadata,
    pid: ProducerId,
    epoch: ProducerEpoch,
    result: TxnResult,
) -> Result<Option<Transit>, TxnError> {
    m.prepare_end_txn_v2(pid, epoch, result, no_alloc, NOW)
}

/// Kafka 4.1's `endTransaction` table for TV_2 (SPEC-TV2.md §4.2): per state, what a commit and
/// an abort do with the current epoch and with the epoch before the last bump (a retry).
#[test]
fn end_txn_v2_per_state_table() {
    use TxnResult::*;
    use TxnState::*;
    let fenced = || Want::Err(TxnError::ProducerFenced);
    let concurrent = || Want::Err(TxnError::ConcurrentTransactions);
    let invalid = || Want::Err(TxnError::InvalidTxnState);
    // (state, result, with the current epoch, with the epoch before it)
    let table: Vec<(TxnState, TxnResult, Want, Want)> = vec![
        (Ongoing, Commit, Want::Write(PrepareCommit), fenced()),
        (Ongoing, Abort, Want::Write(PrepareAbort), fenced()),
        (PrepareCommit, Commit, fenced(), concurrent()),
        (PrepareCommit, Abort, fenced(), invalid()),
        (PrepareAbort, Commit, fenced(), invalid()),
        (PrepareAbort, Abort, fenced(), concurrent()),
        (CompleteCommit, Commit, invalid(), Want::NoWrite),
        (CompleteCommit, Abort, Want::Write(PrepareAbort), invalid()),
        (CompleteAbort, Commit, invalid(), invalid()),
        (
            CompleteAbort,
            Abort,
            Want::Write(PrepareAbort),
            Want::NoWrite,
        ),
        (Empty, Commit, invalid(), fenced()),
        (Empty, Abort, Want::Write(PrepareAbort), fenced()),
    ];
    for (state, result, current, retry) in table {
        let mut m = meta_in(state);
        assert_eq!(
            got(end(&mut m, PID, EPOCH, result)),
            current,
            "{state} {result:?} e"
        );
        let mut m = meta_in(state);
        assert_eq!(
            got(end(&mut m, PID, BEFORE, result)),
            retry,
            "{state} {result:?} e-1"
        );
        // Another producer id, or an epoch neither current nor the one before, never passes.
        let mut m = meta_in(state);
        assert_eq!(
            end(&mut m, ProducerId(99), EPOCH, result),
            Err(TxnError::InvalidProducerIdMapping),
            "{state}"
        );
        let mut m = meta_in(state);
        assert_eq!(
            end(&mut m, PID, ProducerEpoch(EPOCH.0 - 2), result),
            Err(TxnError::ProducerFenced),
            "{state}"
        );
    }
    // A pending transition comes first, whatever the producer.
    let mut m = meta_in(Ongoing);
    let t = end(&mut m, PID, EPOCH, Commit).unwrap().unwrap();
    assert_eq!(t.producer_epoch, BUMPED);
    assert_eq!(
        end(&mut m, ProducerId(99), EPOCH, Commit),
        Err(TxnError::ConcurrentTransactions)
    );
}

#[test]
fn a_v2_commit_bumps_the_epoch_and_its_retry_gets_the_bumped_producer() {
    let mut m = meta_in(TxnState::Ongoing);
    m.client_txn_version = TxnVersion::TV2;
    let prepare = end(&mut m, PID, EPOCH, TxnResult::Commit).unwrap().unwrap();
    assert_eq!(
        (prepare.state, prepare.producer_id, prepare.producer_epoch),
        (TxnState::PrepareCommit, PID, BUMPED)
    );
    assert_eq!(prepare.last_producer_epoch, EPOCH);
    assert_eq!(prepare.next_producer_id, NO_PRODUCER_ID);
    assert_eq!(prepare.client_txn_version, TxnVersion::TV2);
    assert_eq!(
        prepare.txn_start_ms, START,
        "the open transaction's start is kept"
    );
    m.complete(&prepare).unwrap();
    // Markers go out at the bumped epoch.
    assert_eq!(
        (m.state, m.producer_epoch),
        (TxnState::PrepareCommit, BUMPED)
    );
    let complete = m
        .prepare_complete(PID, BUMPED, TxnResult::Commit, NOW)
        .unwrap();
    assert_eq!(
        (complete.producer_id, complete.producer_epoch),
        (PID, BUMPED)
    );
    m.remove_partition(&tp("t", 0)).unwrap();
    m.complete(&complete).unwrap();
    assert_eq!(m.state, TxnState::CompleteCommit);

    // The retry (old epoch) is answered without a write; the id holds the bumped producer.
    assert_eq!(end(&mut m, PID, EPOCH, TxnResult::Commit), Ok(None));
    assert_eq!((m.producer_id, m.producer_epoch), (PID, BUMPED));
    // The next transaction at the bumped epoch starts with the leader's add.
    let add = m
        .prepare_add_partitions(PID, BUMPED, &set(&[("u", 2)]), TxnVersion::TV2, NOW + 5)
        .unwrap()
        .unwrap();
    assert_eq!((add.state, add.txn_start_ms), (TxnState::Ongoing, NOW + 5));
    m.complete(&add).unwrap();
    assert_eq!(m.topic_partitions, set(&[("u", 2)]));
    // The old epoch is fenced now.
    assert_eq!(
        m.prepare_add_partitions(PID, EPOCH, &set(&[("u", 3)]), TxnVersion::TV2, NOW),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn an_empty_abort_only_bumps_the_epoch() {
    let mut m = meta_in(TxnState::CompleteCommit);
    let t = end(&mut m, PID, EPOCH, TxnResult::Abort).unwrap().unwrap();
    assert_eq!(
        (t.state, t.producer_epoch, t.txn_start_ms),
        (TxnState::PrepareAbort, BUMPED, NOW)
    );
    assert!(t.topic_partitions.is_empty());
    m.complete(&t).unwrap();
    let c = m
        .prepare_complete(PID, BUMPED, TxnResult::Abort, NOW)
        .unwrap();
    m.complete(&c).unwrap();
    assert_eq!(
        (m.state, m.producer_epoch),
        (TxnState::CompleteAbort, BUMPED)
    );
    // A transactions-v1 Prepare cannot leave Empty or Complete*.
    let mut m = meta_in(TxnState::Empty);
    let mut t = end(&mut m, PID, EPOCH, TxnResult::Abort).unwrap().unwrap();
    t.client_txn_version = TxnVersion::TV0;
    assert!(matches!(m.complete(&t), Err(TxnError::IllegalState(_))));
}

#[test]
fn exhausted_epochs_hand_over_to_a_new_producer_id() {
    let exhausted = ProducerEpoch(EXHAUSTED_EPOCH);
    let mut m = meta_in(TxnState::Ongoing);
    m.producer_epoch = exhausted;
    let prepare = m
        .prepare_end_txn_v2(PID, exhausted, TxnResult::Commit, alloc(70), NOW)
        .unwrap()
        .unwrap();
    assert_eq!(prepare.producer_epoch, ProducerEpoch(i16::MAX));
    assert_eq!(prepare.next_producer_id, ProducerId(70));
    m.complete(&prepare).unwrap();
    // Markers at (7, 32767); the Complete record moves to (70, 0).
    assert_eq!(
        (m.producer_id, m.producer_epoch),
        (PID, ProducerEpoch(i16::MAX))
    );
    let complete = m
        .prepare_complete(PID, ProducerEpoch(i16::MAX), TxnResult::Commit, NOW)
        .unwrap();
    assert_eq!(
        (
            complete.producer_id,
            complete.producer_epoch,
            complete.last_producer_id
        ),
        (ProducerId(70), ProducerEpoch(0), PID)
    );
    m.remove_partition(&tp("t", 0)).unwrap();
    m.complete(&complete).unwrap();
    assert_eq!(
        (
            m.producer_id,
            m.producer_epoch,
            m.last_producer_id,
            m.next_producer_id
        ),
        (ProducerId(70), ProducerEpoch(0), PID, NO_PRODUCER_ID)
    );
    // The retry with the old producer is recognised; a commit from the old id at another
    // epoch is not.
    assert_eq!(end(&mut m, PID, exhausted, TxnResult::Commit), Ok(None));
    assert_eq!(
        end(&mut m, PID, ProducerEpoch(3), TxnResult::Commit),
        Err(TxnError::InvalidProducerIdMapping)
    );
    // The new producer goes on at epoch 0.
    assert!(m
        .prepare_add_partitions(
            ProducerId(70),
            ProducerEpoch(0),
            &set(&[("t", 0)]),
            TxnVersion::TV2,
            NOW
        )
        .unwrap()
        .is_some());
}

#[test]
fn a_v2_add_waits_for_a_pending_transition_before_checking_the_producer() {
    let mut m = meta_in(TxnState::Ongoing);
    m.producer_epoch = ProducerEpoch(EXHAUSTED_EPOCH);
    let _prepare = m
        .prepare_end_txn_v2(PID, m.producer_epoch, TxnResult::Commit, alloc(70), NOW)
        .unwrap();
    // The producer already holds the next id: told to retry, not that it is unknown.
    assert_eq!(
        m.prepare_add_partitions(
            ProducerId(70),
            ProducerEpoch(0),
            &set(&[("t", 0)]),
            TxnVersion::TV2,
            NOW
        ),
        Err(TxnError::ConcurrentTransactions)
    );
    // A v1 add checks the producer first, as Kafka 3.x.
    assert_eq!(
        m.prepare_add_partitions(
            ProducerId(70),
            ProducerEpoch(0),
            &set(&[("t", 0)]),
            TxnVersion::TV0,
            NOW
        ),
        Err(TxnError::InvalidProducerIdMapping)
    );
}

#[test]
fn a_v2_prepare_record_reloads_with_its_next_producer_id() {
    let mut m = meta_in(TxnState::Ongoing);
    m.producer_epoch = ProducerEpoch(EXHAUSTED_EPOCH);
    m.client_txn_version = TxnVersion::TV2;
    let prepare = m
        .prepare_end_txn_v2(PID, m.producer_epoch, TxnResult::Abort, alloc(70), NOW)
        .unwrap()
        .unwrap();
    let (key, value) = store::encode_transit("txn", &prepare, store::VALUE_V1).unwrap();
    let rec = store::decode_record(&key, value.as_deref())
        .unwrap()
        .unwrap();
    let v = rec.value.unwrap();
    assert_eq!(v.next_producer_id, ProducerId(70));
    assert_eq!(v.client_transaction_version, 2);
    let mut loaded = v.into_metadata("txn").unwrap();
    assert_eq!(loaded.state, TxnState::PrepareAbort);
    let complete = loaded
        .prepare_complete(PID, ProducerEpoch(i16::MAX), TxnResult::Abort, NOW)
        .unwrap();
    assert_eq!(
        (complete.producer_id, complete.producer_epoch),
        (ProducerId(70), ProducerEpoch(0))
    );
    // The Complete record names the id it came from; reloaded, a retry is still recognised.
    let (key, value) = store::encode_transit("txn", &complete, store::VALUE_V1).unwrap();
    let v = store::decode_record(&key, value.as_deref())
        .unwrap()
        .unwrap()
        .value
        .unwrap();
    assert_eq!(v.previous_producer_id, PID);
    let mut reloaded = v.into_metadata("txn").unwrap();
    assert_eq!(reloaded.last_producer_id, PID);
    assert_eq!(
        end(
            &mut reloaded,
            PID,
            ProducerEpoch(EXHAUSTED_EPOCH),
            TxnResult::Abort
        ),
        Ok(None)
    );
    // v0 has no place for it: the tags are dropped, as in Kafka at level 0.
    let (key, value) = store::encode_transit("txn", &prepare, store::VALUE_V0).unwrap();
    let v = store::decode_record(&key, value.as_deref())
        .unwrap()
        .unwrap()
        .value
        .unwrap();
    assert_eq!(v.next_producer_id, NO_PRODUCER_ID);
}

#[test]
fn a_timeout_abort_of_a_v2_transaction_bumps_once_and_the_old_producer_can_retry() {
    let mut m = meta_in(TxnState::Ongoing);
    m.client_txn_version = TxnVersion::TV2;
    let t = m.prepare_timeout_abort(PID, NOW).unwrap();
    assert_eq!(
        (t.state, t.producer_epoch),
        (TxnState::PrepareAbort, BUMPED)
    );
    m.complete(&t).unwrap();
    let c = m
        .prepare_complete(PID, BUMPED, TxnResult::Abort, NOW)
        .unwrap();
    m.remove_partition(&tp("t", 0)).unwrap();
    m.complete(&c).unwrap();
    // The producer's own abort at its old epoch reads as a retry and learns the new epoch;
    // its commit is refused.
    assert_eq!(end(&mut m, PID, EPOCH, TxnResult::Abort), Ok(None));
    assert_eq!(
        end(&mut m, PID, EPOCH, TxnResult::Commit),
        Err(TxnError::InvalidTxnState)
    );
}

#[test]
fn a_failed_v2_fence_leaves_the_producer_able_to_end_its_transaction() {
    let mut m = meta_in(TxnState::Ongoing);
    m.client_txn_version = TxnVersion::TV2;
    let t = m.prepare_timeout_abort(PID, NOW).unwrap();
    assert_eq!((t.producer_epoch, t.last_producer_epoch), (BUMPED, EPOCH));
    assert!(!t.epoch_fence, "nothing to remember when its append fails");
    // The PrepareAbort could not be written: nothing changed.
    m.abort_pending(&t);
    assert_eq!(
        (m.state, m.producer_epoch, m.pending()),
        (TxnState::Ongoing, EPOCH, None)
    );
    assert!(!m.has_failed_epoch_fence());
    // The producer is not fenced by a bump nobody wrote: it aborts itself.
    let own = end(&mut m, PID, EPOCH, TxnResult::Abort).unwrap().unwrap();
    assert_eq!(
        (own.state, own.producer_epoch),
        (TxnState::PrepareAbort, BUMPED)
    );
}

#[test]
fn a_v2_transition_is_written_flexible_even_at_level_0() {
    let mut m = meta_in(TxnState::Ongoing);
    m.producer_epoch = ProducerEpoch(EXHAUSTED_EPOCH);
    m.client_txn_version = TxnVersion::TV2;
    let prepare = m
        .prepare_end_txn_v2(PID, m.producer_epoch, TxnResult::Commit, alloc(70), NOW)
        .unwrap()
        .unwrap();
    assert_eq!(
        store::value_version(TxnVersion::TV0, &prepare),
        store::VALUE_V1
    );
    assert_eq!(
        store::value_version(TxnVersion::TV2, &prepare),
        store::VALUE_V1
    );
    // A v1 client's transition at level 0 stays v0, as Kafka 3.x writes it.
    let mut v1 = meta_in(TxnState::Ongoing);
    let t = v1
        .prepare_end_txn(PID, EPOCH, TxnResult::Commit, NOW)
        .unwrap()
        .unwrap();
    assert_eq!(store::value_version(TxnVersion::TV0, &t), store::VALUE_V0);
    assert_eq!(store::value_version(TxnVersion::TV1, &t), store::VALUE_V1);
}
