//! Tests of state.rs: the per-API, per-state table of Kafka 3.x's `TransactionCoordinator`
//! (AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, InitProducerId in each state), the request
//! checks, and the prepare/complete cycle; the helpers shared with `init_tests.rs`.
use super::*;
use kafka_protocol::error::ResponseError;

pub(super) const TIMEOUT: i32 = 60_000;
pub(super) const MAX_TIMEOUT: i32 = 900_000;
pub(super) const PID: ProducerId = ProducerId(7);
pub(super) const EPOCH: ProducerEpoch = ProducerEpoch(3);
pub(super) const START: i64 = 1_000;
pub(super) const NOW: i64 = 5_000;

pub(super) fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

pub(super) fn set(tps: &[(&str, i32)]) -> BTreeSet<TopicPartition> {
    tps.iter().map(|(t, p)| tp(t, *p)).collect()
}

pub(super) fn no_alloc() -> Result<ProducerId, TxnError> {
    panic!("no producer id allocation expected")
}

pub(super) fn alloc(p: i64) -> impl FnOnce() -> Result<ProducerId, TxnError> {
    move || Ok(ProducerId(p))
}

/// An id with producer 7 at epoch 3 sitting in `state` (Ongoing and Prepare* with partition
/// t-0 and a transaction started at START; nothing pending).
pub(super) fn meta_in(state: TxnState) -> TxnMetadata {
    let open = matches!(
        state,
        TxnState::Ongoing | TxnState::PrepareCommit | TxnState::PrepareAbort
    );
    let mut m = TxnMetadata::new("txn", PID, TIMEOUT, START);
    m.last_producer_id = PID;
    m.producer_epoch = EPOCH;
    m.state = state;
    if open {
        m.topic_partitions = set(&[("t", 0)]);
    }
    m.txn_start_ms = match state {
        TxnState::Empty => NO_TIMESTAMP,
        _ => START,
    };
    m
}

/// What a request should do in a state.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Want {
    /// Prepare a record moving to this state.
    Write(TxnState),
    /// Answer NONE without writing.
    NoWrite,
    /// Answer this error.
    Err(TxnError),
    /// An IllegalState (UNKNOWN_SERVER_ERROR): the state cannot be reached.
    Illegal,
}

pub(super) fn got(r: Result<Option<Transit>, TxnError>) -> Want {
    match r {
        Ok(Some(t)) => Want::Write(t.state),
        Ok(None) => Want::NoWrite,
        Err(TxnError::IllegalState(_)) => Want::Illegal,
        Err(e) => Want::Err(e),
    }
}

pub(super) fn got_init(r: Result<InitTransit, TxnError>) -> Want {
    match r {
        Ok(InitTransit::Init(t)) => Want::Write(t.state),
        Ok(InitTransit::AbortOngoing(t)) => Want::Write(t.state),
        Err(TxnError::IllegalState(_)) => Want::Illegal,
        Err(e) => Want::Err(e),
    }
}

#[test]
fn state_ids_names_and_rules_are_kafkas() {
    use TxnState::*;
    let table: [(TxnState, i8, &str, &[TxnState], bool); 8] = [
        (
            Empty,
            0,
            "Empty",
            &[Empty, CompleteCommit, CompleteAbort],
            true,
        ),
        (
            Ongoing,
            1,
            "Ongoing",
            &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            false,
        ),
        (PrepareCommit, 2, "PrepareCommit", &[Ongoing], false),
        (
            PrepareAbort,
            3,
            "PrepareAbort",
            // Kafka 4's list: Empty and Complete* for transactions v2's empty abort.
            &[
                Ongoing,
                PrepareEpochFence,
                Empty,
                CompleteCommit,
                CompleteAbort,
            ],
            false,
        ),
        (CompleteCommit, 4, "CompleteCommit", &[PrepareCommit], true),
        (CompleteAbort, 5, "CompleteAbort", &[PrepareAbort], true),
        (
            Dead,
            6,
            "Dead",
            &[Empty, CompleteAbort, CompleteCommit],
            false,
        ),
        (PrepareEpochFence, 7, "PrepareEpochFence", &[Ongoing], false),
    ];
    for (s, id, name, previous, expires) in table {
        assert_eq!(s.id(), id);
        assert_eq!(TxnState::from_id(id), Some(s));
        assert_eq!(s.name(), name);
        assert_eq!(s.to_string(), name);
        let mut want: Vec<_> = previous.to_vec();
        let mut have: Vec<_> = s.valid_previous_states().to_vec();
        want.sort();
        have.sort();
        assert_eq!(have, want, "{s}");
        assert_eq!(s.is_expiration_allowed(), expires, "{s}");
    }
    assert_eq!(TxnState::from_id(8), None);
    assert_eq!(TxnState::from_id(-1), None);
}

#[test]
fn error_codes_and_the_version_renaming_of_producer_fenced() {
    assert_eq!(TxnError::InvalidRequest.code(), 42);
    assert_eq!(TxnError::InvalidProducerIdMapping.code(), 49);
    assert_eq!(TxnError::ProducerFenced.code(), 90);
    assert_eq!(TxnError::ConcurrentTransactions.code(), 51);
    assert_eq!(TxnError::InvalidTxnState.code(), 48);
    assert_eq!(TxnError::InvalidTransactionTimeout.code(), 50);
    assert_eq!(TxnError::IllegalState("x".into()).code(), -1);
    assert_eq!(TxnError::Other(ResponseError::NotCoordinator).code(), 16);

    // (api, last version answered INVALID_PRODUCER_EPOCH)
    for (api, last_old) in [
        (TxnApi::InitProducerId, 3),
        (TxnApi::AddPartitionsToTxn, 1),
        (TxnApi::AddOffsetsToTxn, 1),
        (TxnApi::EndTxn, 1),
    ] {
        for v in 0..=last_old {
            assert_eq!(
                TxnError::ProducerFenced.code_for(api, v),
                47,
                "{api:?} v{v}"
            );
        }
        for v in last_old + 1..=5 {
            assert_eq!(
                TxnError::ProducerFenced.code_for(api, v),
                90,
                "{api:?} v{v}"
            );
        }
        // Only PRODUCER_FENCED is renamed.
        assert_eq!(TxnError::ConcurrentTransactions.code_for(api, 0), 51);
        assert_eq!(TxnError::InvalidProducerIdMapping.code_for(api, 0), 49);
    }
}

#[test]
fn common_prechecks_in_order() {
    // 1. empty id, 2. unknown id.
    let mut m = meta_in(TxnState::Ongoing);
    assert_eq!(
        lookup("", Some(&mut m)).err(),
        Some(TxnError::InvalidRequest)
    );
    assert_eq!(lookup("", None).err(), Some(TxnError::InvalidRequest));
    assert_eq!(
        lookup("txn", None).err(),
        Some(TxnError::InvalidProducerIdMapping)
    );
    assert!(lookup("txn", Some(&mut m)).is_ok());

    let parts = set(&[("t", 1)]);
    for state in [TxnState::Ongoing, TxnState::Empty, TxnState::CompleteCommit] {
        // 3. another producer id, even with a wrong epoch and something pending.
        let mut m = meta_in(state);
        m.pending = Some(TxnState::PrepareCommit);
        assert_eq!(
            m.prepare_add_partitions(
                ProducerId(8),
                ProducerEpoch(0),
                &parts,
                TxnVersion::TV0,
                NOW
            ),
            Err(TxnError::InvalidProducerIdMapping)
        );
        assert_eq!(
            m.prepare_end_txn(ProducerId(8), ProducerEpoch(0), TxnResult::Commit, NOW),
            Err(TxnError::InvalidProducerIdMapping)
        );
        // 4. another epoch (older or newer), even with something pending.
        for e in [2, 4] {
            assert_eq!(
                m.prepare_add_partitions(PID, ProducerEpoch(e), &parts, TxnVersion::TV0, NOW),
                Err(TxnError::ProducerFenced)
            );
            assert_eq!(
                m.prepare_end_txn(PID, ProducerEpoch(e), TxnResult::Abort, NOW),
                Err(TxnError::ProducerFenced)
            );
        }
        // 5. a pending transition.
        assert_eq!(
            m.prepare_add_partitions(PID, EPOCH, &parts, TxnVersion::TV0, NOW),
            Err(TxnError::ConcurrentTransactions)
        );
        assert_eq!(
            m.prepare_end_txn(PID, EPOCH, TxnResult::Commit, NOW),
            Err(TxnError::ConcurrentTransactions)
        );
        assert_eq!(
            m.prepare_add_offsets(PID, EPOCH, "g", 50, NOW),
            Err(TxnError::ConcurrentTransactions)
        );
    }
    // EndTxn is not refused for a pending PrepareEpochFence (Kafka's exception; Rill never
    // leaves that pending, but the rule is kept).
    let mut m = meta_in(TxnState::Ongoing);
    m.pending = Some(TxnState::PrepareEpochFence);
    assert_eq!(
        got(m.prepare_end_txn(PID, EPOCH, TxnResult::Commit, NOW)),
        Want::Illegal,
        "the pending fence is not cleared by a client commit"
    );
    let mut m = meta_in(TxnState::Ongoing);
    m.pending = Some(TxnState::PrepareEpochFence);
    assert_eq!(
        m.prepare_add_partitions(PID, EPOCH, &parts, TxnVersion::TV0, NOW),
        Err(TxnError::ConcurrentTransactions)
    );
}

/// AddPartitions/AddOffsets, EndTxn(COMMIT), EndTxn(ABORT), InitProducerId for
/// each state, after the common checks passed.
#[test]
fn per_api_per_state_table() {
    use TxnState::*;
    use Want::*;
    let cc = || Err(TxnError::ConcurrentTransactions);
    let bad = || Err(TxnError::InvalidTxnState);
    // state, AddPartitions/AddOffsets, EndTxn(COMMIT), EndTxn(ABORT), InitProducerId
    #[rustfmt::skip]
    let rows: Vec<(TxnState, Want, Want, Want, Want)> = vec![
        (Empty,             Write(Ongoing), bad(),                bad(),               Write(Empty)),
        (Ongoing,           Write(Ongoing), Write(PrepareCommit), Write(PrepareAbort), Write(PrepareAbort)),
        (PrepareCommit,     cc(),           cc(),                 bad(),               cc()),
        (PrepareAbort,      cc(),           bad(),                cc(),                cc()),
        (CompleteCommit,    Write(Ongoing), NoWrite,              bad(),               Write(Empty)),
        (CompleteAbort,     Write(Ongoing), bad(),                NoWrite,             Write(Empty)),
        (Dead,              Illegal,        Illegal,              Illegal,             Illegal),
        (PrepareEpochFence, Illegal,        Illegal,              Illegal,             Illegal),
    ];
    let new_parts = set(&[("t", 0), ("u", 3)]);
    for (state, add, commit, abort, init) in rows {
        let mut m = meta_in(state);
        assert_eq!(
            got(m.prepare_add_partitions(PID, EPOCH, &new_parts, TxnVersion::TV0, NOW)),
            add,
            "add in {state}"
        );
        let mut m = meta_in(state);
        assert_eq!(
            got(m.prepare_add_offsets(PID, EPOCH, "g", 50, NOW)),
            add,
            "add offsets in {state}"
        );
        let mut m = meta_in(state);
        assert_eq!(
            got(m.prepare_end_txn(PID, EPOCH, TxnResult::Commit, NOW)),
            commit,
            "commit in {state}"
        );
        let mut m = meta_in(state);
        assert_eq!(
            got(m.prepare_end_txn(PID, EPOCH, TxnResult::Abort, NOW)),
            abort,
            "abort in {state}"
        );
        let mut m = meta_in(state);
        assert_eq!(
            got_init(m.prepare_init_producer_id(TIMEOUT, None, no_alloc, NOW)),
            init,
            "init in {state}"
        );
        // An answer without a write leaves nothing pending; a write leaves exactly its state.
        let mut m = meta_in(state);
        let r = m.prepare_end_txn(PID, EPOCH, TxnResult::Commit, NOW);
        assert_eq!(m.pending(), r.ok().flatten().map(|t| t.state), "{state}");
    }
}

#[test]
fn add_partitions_in_ongoing_writes_only_what_is_new() {
    let mut m = meta_in(TxnState::Ongoing);
    // A subset (or nothing) answers NONE at once, nothing pending.
    assert_eq!(
        m.prepare_add_partitions(PID, EPOCH, &set(&[("t", 0)]), TxnVersion::TV0, NOW),
        Ok(None)
    );
    assert_eq!(
        m.prepare_add_partitions(PID, EPOCH, &BTreeSet::new(), TxnVersion::TV0, NOW),
        Ok(None)
    );
    assert_eq!(m.pending(), None);
    // New partitions: the union, the start kept, the update time now.
    let t = m
        .prepare_add_partitions(
            PID,
            EPOCH,
            &set(&[("u", 1), ("t", 0)]),
            TxnVersion::TV0,
            NOW,
        )
        .unwrap()
        .unwrap();
    assert_eq!(t.topic_partitions, set(&[("t", 0), ("u", 1)]));
    assert_eq!((t.txn_start_ms, t.last_update_ms), (START, NOW));
    assert_eq!(
        (t.producer_id, t.producer_epoch, t.txn_timeout_ms),
        (PID, EPOCH, TIMEOUT)
    );
    m.complete(&t).unwrap();
    assert_eq!(m.state, TxnState::Ongoing);
    assert_eq!(m.topic_partitions, set(&[("t", 0), ("u", 1)]));
    assert_eq!(m.last_update_ms, NOW);
}

#[test]
fn add_partitions_starts_a_transaction_from_empty_or_complete() {
    for state in [
        TxnState::Empty,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
    ] {
        let mut m = meta_in(state);
        // Even already "known" partitions start a new transaction here.
        let t = m
            .prepare_add_partitions(PID, EPOCH, &set(&[("t", 0)]), TxnVersion::TV0, NOW)
            .unwrap()
            .expect("a write");
        assert_eq!(t.state, TxnState::Ongoing);
        assert_eq!(t.txn_start_ms, NOW, "{state}: the transaction starts now");
        assert_eq!(t.topic_partitions, set(&[("t", 0)]));
        m.complete(&t).unwrap();
        assert_eq!((m.state, m.txn_start_ms), (TxnState::Ongoing, NOW));
    }
}

#[test]
fn add_offsets_adds_the_groups_offsets_partition() {
    // "ab".hashCode() == 3105: partition 5 of 50.
    assert_eq!(offsets_partition("ab", 50), tp("__consumer_offsets", 5));
    let mut m = meta_in(TxnState::Empty);
    let t = m
        .prepare_add_offsets(PID, EPOCH, "ab", 50, NOW)
        .unwrap()
        .unwrap();
    assert_eq!(t.topic_partitions, set(&[("__consumer_offsets", 5)]));
    m.complete(&t).unwrap();
    // Again: already in the transaction.
    assert_eq!(m.prepare_add_offsets(PID, EPOCH, "ab", 50, NOW), Ok(None));
}

#[test]
fn commit_from_prepare_to_complete_and_its_retries() {
    let mut m = meta_in(TxnState::Ongoing);
    m.topic_partitions = set(&[("t", 0), ("u", 1)]);
    let prepare = m
        .prepare_end_txn(PID, EPOCH, TxnResult::Commit, NOW)
        .unwrap()
        .unwrap();
    assert_eq!(prepare.state, TxnState::PrepareCommit);
    assert_eq!(prepare.topic_partitions, set(&[("t", 0), ("u", 1)]));
    assert_eq!((prepare.txn_start_ms, prepare.last_update_ms), (START, NOW));
    // While the Prepare record is written, everything waits.
    assert_eq!(
        m.prepare_end_txn(PID, EPOCH, TxnResult::Commit, NOW),
        Err(TxnError::ConcurrentTransactions)
    );
    m.complete(&prepare).unwrap();
    assert_eq!(m.state, TxnState::PrepareCommit);

    // The append callback: re-checks, then the Complete record pends while markers go out.
    assert_eq!(
        m.prepare_complete(ProducerId(8), EPOCH, TxnResult::Commit, NOW),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        m.prepare_complete(PID, ProducerEpoch(4), TxnResult::Commit, NOW),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        m.prepare_complete(PID, EPOCH, TxnResult::Abort, NOW),
        Err(TxnError::InvalidTxnState)
    );
    let complete = m
        .prepare_complete(PID, EPOCH, TxnResult::Commit, NOW + 1)
        .unwrap();
    assert_eq!(complete.state, TxnState::CompleteCommit);
    assert!(complete.topic_partitions.is_empty());
    assert_eq!(complete.txn_start_ms, START, "the start is kept");
    assert_eq!(
        m.prepare_complete(PID, EPOCH, TxnResult::Commit, NOW),
        Err(TxnError::ConcurrentTransactions)
    );
    // A retried EndTxn, a new transaction, a new producer: all wait for the markers.
    assert_eq!(
        m.prepare_end_txn(PID, EPOCH, TxnResult::Commit, NOW),
        Err(TxnError::ConcurrentTransactions)
    );
    assert_eq!(
        m.prepare_add_partitions(PID, EPOCH, &set(&[("v", 0)]), TxnVersion::TV0, NOW),
        Err(TxnError::ConcurrentTransactions)
    );
    assert_eq!(
        m.prepare_init_producer_id(TIMEOUT, None, no_alloc, NOW),
        Err(TxnError::ConcurrentTransactions)
    );
    // Markers written one partition at a time.
    m.remove_partition(&tp("t", 0)).unwrap();
    assert_eq!(m.topic_partitions, set(&[("u", 1)]));
    m.remove_partition(&tp("u", 1)).unwrap();
    assert!(m.topic_partitions.is_empty());
    m.complete(&complete).unwrap();
    assert_eq!(m.state, TxnState::CompleteCommit);
    assert_eq!((m.txn_start_ms, m.last_update_ms), (START, NOW + 1));
    assert!(matches!(
        m.remove_partition(&tp("t", 0)),
        Err(TxnError::IllegalState(_))
    ));

    // The client's retry of the finished commit (its answer was lost) is NONE; an abort is not.
    assert_eq!(
        m.prepare_end_txn(PID, EPOCH, TxnResult::Commit, NOW),
        Ok(None)
    );
    assert_eq!(
        m.prepare_end_txn(PID, EPOCH, TxnResult::Abort, NOW),
        Err(TxnError::InvalidTxnState)
    );
    assert_eq!(m.pending(), None);
}

#[test]
fn prepare_complete_outside_prepare_is_invalid_state() {
    for state in [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
    ] {
        let mut m = meta_in(state);
        for r in [TxnResult::Commit, TxnResult::Abort] {
            assert_eq!(
                m.prepare_complete(PID, EPOCH, r, NOW),
                Err(TxnError::InvalidTxnState),
                "{state}"
            );
        }
    }
    let mut m = meta_in(TxnState::PrepareAbort);
    let t = m
        .prepare_complete(PID, EPOCH, TxnResult::Abort, NOW)
        .unwrap();
    assert_eq!(t.state, TxnState::CompleteAbort);
}

#[test]
fn complete_refuses_what_was_not_prepared() {
    let mut m = meta_in(TxnState::Ongoing);
    let t = m
        .prepare_end_txn(PID, EPOCH, TxnResult::Abort, NOW)
        .unwrap()
        .unwrap();
    // A transit of another epoch, or other partitions, is a bug: refused, nothing changed.
    let mut wrong = t.clone();
    wrong.producer_epoch = ProducerEpoch(9);
    let before = m.clone();
    assert!(matches!(m.complete(&wrong), Err(TxnError::IllegalState(_))));
    assert_eq!(m, before);
    let mut wrong = t.clone();
    wrong.topic_partitions.insert(tp("x", 0));
    assert!(matches!(m.complete(&wrong), Err(TxnError::IllegalState(_))));
    // Another state than the pending one.
    let mut wrong = t.clone();
    wrong.state = TxnState::PrepareCommit;
    assert!(matches!(m.complete(&wrong), Err(TxnError::IllegalState(_))));
    m.complete(&t).unwrap();
    // Nothing pending any more.
    assert!(matches!(m.complete(&t), Err(TxnError::IllegalState(_))));
}

#[test]
fn a_failed_append_clears_the_pending_state() {
    let mut m = meta_in(TxnState::Ongoing);
    let t = m
        .prepare_end_txn(PID, EPOCH, TxnResult::Commit, NOW)
        .unwrap()
        .unwrap();
    m.abort_pending(&t);
    assert_eq!((m.pending(), m.state), (None, TxnState::Ongoing));
    assert!(!m.has_failed_epoch_fence());
    assert!(m
        .prepare_end_txn(PID, EPOCH, TxnResult::Commit, NOW)
        .unwrap()
        .is_some());
}
