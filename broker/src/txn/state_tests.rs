//! Tests of state.rs: the per-API, per-state table of Kafka 3.x's `TransactionCoordinator`
//! (AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, InitProducerId in each state), every branch of
//! its InitProducerId (`prepareInitProducerIdTransit`, `prepareIncrementProducerEpoch`), the
//! timeout abort (`abortTimedOutTransactions`) and the expiry of idle ids
//! (`removeExpiredTransactionalIds`).
use super::*;

const TIMEOUT: i32 = 60_000;
const MAX_TIMEOUT: i32 = 900_000;
const PID: ProducerId = ProducerId(7);
const EPOCH: ProducerEpoch = ProducerEpoch(3);
const START: i64 = 1_000;
const NOW: i64 = 5_000;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn set(tps: &[(&str, i32)]) -> BTreeSet<TopicPartition> {
    tps.iter().map(|(t, p)| tp(t, *p)).collect()
}

fn no_alloc() -> Result<ProducerId, TxnError> {
    panic!("no producer id allocation expected")
}

fn alloc(p: i64) -> impl FnOnce() -> Result<ProducerId, TxnError> {
    move || Ok(ProducerId(p))
}

/// An id with producer 7 at epoch 3 sitting in `state` (Ongoing and Prepare* with partition
/// t-0 and a transaction started at START; nothing pending).
fn meta_in(state: TxnState) -> TxnMetadata {
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
enum Want {
    /// Prepare a record moving to this state.
    Write(TxnState),
    /// Answer NONE without writing.
    NoWrite,
    /// Answer this error.
    Err(TxnError),
    /// An IllegalState (UNKNOWN_SERVER_ERROR): the state cannot be reached.
    Illegal,
}

fn got(r: Result<Option<Transit>, TxnError>) -> Want {
    match r {
        Ok(Some(t)) => Want::Write(t.state),
        Ok(None) => Want::NoWrite,
        Err(TxnError::IllegalState(_)) => Want::Illegal,
        Err(e) => Want::Err(e),
    }
}

fn got_init(r: Result<InitTransit, TxnError>) -> Want {
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
            &[Ongoing, PrepareEpochFence],
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
            m.prepare_add_partitions(ProducerId(8), ProducerEpoch(0), &parts, NOW),
            Err(TxnError::InvalidProducerIdMapping)
        );
        assert_eq!(
            m.prepare_end_txn(ProducerId(8), ProducerEpoch(0), TxnResult::Commit, NOW),
            Err(TxnError::InvalidProducerIdMapping)
        );
        // 4. another epoch (older or newer), even with something pending.
        for e in [2, 4] {
            assert_eq!(
                m.prepare_add_partitions(PID, ProducerEpoch(e), &parts, NOW),
                Err(TxnError::ProducerFenced)
            );
            assert_eq!(
                m.prepare_end_txn(PID, ProducerEpoch(e), TxnResult::Abort, NOW),
                Err(TxnError::ProducerFenced)
            );
        }
        // 5. a pending transition.
        assert_eq!(
            m.prepare_add_partitions(PID, EPOCH, &parts, NOW),
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
        m.prepare_add_partitions(PID, EPOCH, &parts, NOW),
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
            got(m.prepare_add_partitions(PID, EPOCH, &new_parts, NOW)),
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
        m.prepare_add_partitions(PID, EPOCH, &set(&[("t", 0)]), NOW),
        Ok(None)
    );
    assert_eq!(
        m.prepare_add_partitions(PID, EPOCH, &BTreeSet::new(), NOW),
        Ok(None)
    );
    assert_eq!(m.pending(), None);
    // New partitions: the union, the start kept, the update time now.
    let t = m
        .prepare_add_partitions(PID, EPOCH, &set(&[("u", 1), ("t", 0)]), NOW)
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
            .prepare_add_partitions(PID, EPOCH, &set(&[("t", 0)]), NOW)
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
        m.prepare_add_partitions(PID, EPOCH, &set(&[("v", 0)]), NOW),
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

// ---- InitProducerId ----

#[test]
fn expected_producer_of_a_v3_request() {
    assert_eq!(expected_producer(-1, -1), Ok(None));
    assert_eq!(
        expected_producer(5, 2),
        Ok(Some((ProducerId(5), ProducerEpoch(2))))
    );
    assert_eq!(expected_producer(5, -1), Err(TxnError::InvalidRequest));
    assert_eq!(expected_producer(-1, 2), Err(TxnError::InvalidRequest));
}

#[test]
fn init_request_checks() {
    assert_eq!(
        validate_init("", TIMEOUT, MAX_TIMEOUT),
        Err(TxnError::InvalidRequest)
    );
    for bad in [0, -1, i32::MIN, MAX_TIMEOUT + 1, i32::MAX] {
        assert_eq!(
            validate_init("t", bad, MAX_TIMEOUT),
            Err(TxnError::InvalidTransactionTimeout),
            "{bad}"
        );
    }
    for ok in [1, TIMEOUT, MAX_TIMEOUT] {
        assert_eq!(validate_init("t", ok, MAX_TIMEOUT), Ok(()));
    }
}

fn init(
    m: &mut TxnMetadata,
    expected: Option<(i64, i16)>,
    allocate: impl FnOnce() -> Result<ProducerId, TxnError>,
) -> Result<Transit, TxnError> {
    match m.prepare_init_producer_id(
        TIMEOUT,
        expected.map(|(p, e)| (ProducerId(p), ProducerEpoch(e))),
        allocate,
        NOW,
    )? {
        InitTransit::Init(t) => Ok(t),
        other => panic!("expected an init, got {other:?}"),
    }
}

/// (producer id, epoch, last epoch) of a transit.
fn ids(t: &Transit) -> (i64, i16, i16) {
    (t.producer_id.0, t.producer_epoch.0, t.last_producer_epoch.0)
}

#[test]
fn init_of_a_new_id_hands_out_epoch_0() {
    let mut m = TxnMetadata::new("txn", ProducerId(42), TIMEOUT, START);
    let t = init(&mut m, None, no_alloc).unwrap();
    assert_eq!(ids(&t), (42, 0, -1));
    assert_eq!(t.state, TxnState::Empty);
    assert!(t.topic_partitions.is_empty());
    assert_eq!(
        (t.txn_start_ms, t.last_update_ms, t.txn_timeout_ms),
        (NO_TIMESTAMP, NOW, TIMEOUT)
    );
    assert_eq!(m.pending(), Some(TxnState::Empty));
    // Another request meanwhile waits.
    assert_eq!(
        m.prepare_init_producer_id(TIMEOUT, None, no_alloc, NOW),
        Err(TxnError::ConcurrentTransactions)
    );
    m.complete(&t).unwrap();
    assert_eq!(
        (m.producer_id, m.producer_epoch, m.state),
        (ProducerId(42), ProducerEpoch(0), TxnState::Empty)
    );
    assert_eq!(m.last_producer_id, ProducerId(42));
}

#[test]
fn init_bumps_the_epoch_and_takes_the_new_timeout() {
    for state in [
        TxnState::Empty,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
    ] {
        let mut m = meta_in(state);
        let t = match m
            .prepare_init_producer_id(30_000, None, no_alloc, NOW)
            .unwrap()
        {
            InitTransit::Init(t) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(ids(&t), (7, 4, -1), "{state}");
        assert_eq!(t.txn_timeout_ms, 30_000);
        m.complete(&t).unwrap();
        assert_eq!(
            (m.state, m.producer_epoch, m.txn_timeout_ms),
            (TxnState::Empty, ProducerEpoch(4), 30_000)
        );
        assert_eq!(m.txn_start_ms, NO_TIMESTAMP);
    }
}

#[test]
fn init_kip360_recovery_and_its_retry() {
    // The current owner recovers: bump, remember the epoch it had.
    let mut m = meta_in(TxnState::Empty);
    let t = init(&mut m, Some((7, 3)), no_alloc).unwrap();
    assert_eq!(ids(&t), (7, 4, 3));
    m.complete(&t).unwrap();
    assert_eq!(m.last_producer_epoch, ProducerEpoch(3));
    // Its answer was lost: the retry with the old epoch gets the same answer, no second bump.
    let t = init(&mut m, Some((7, 3)), no_alloc).unwrap();
    assert_eq!(ids(&t), (7, 4, 3));
    m.complete(&t).unwrap();
    assert_eq!(m.producer_epoch, ProducerEpoch(4));
    // With the new epoch it recovers again.
    let t = init(&mut m, Some((7, 4)), no_alloc).unwrap();
    assert_eq!(ids(&t), (7, 5, 4));
    m.abort_pending(&t);
    // An epoch that is neither the current nor the last one was fenced.
    assert_eq!(
        init(&mut m, Some((7, 1)), no_alloc),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        init(&mut m, Some((7, 5)), no_alloc),
        Err(TxnError::ProducerFenced)
    );
    // A new instance (no expected epoch) forgets the last epoch: the old retry is fenced.
    let t = init(&mut m, None, no_alloc).unwrap();
    assert_eq!(ids(&t), (7, 5, -1));
    m.complete(&t).unwrap();
    assert_eq!(
        init(&mut m, Some((7, 4)), no_alloc),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn init_with_another_producer_id_is_fenced_unless_the_id_is_new() {
    let mut m = meta_in(TxnState::Empty);
    assert_eq!(
        init(&mut m, Some((99, 3)), no_alloc),
        Err(TxnError::ProducerFenced)
    );
    // Checked before the state: an open transaction is not fenced by a stranger.
    let mut m = meta_in(TxnState::Ongoing);
    assert_eq!(
        m.prepare_init_producer_id(
            TIMEOUT,
            Some((ProducerId(99), ProducerEpoch(0))),
            no_alloc,
            NOW
        ),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!((m.pending(), m.producer_epoch), (None, EPOCH));
    // A pending transition comes first of all.
    m.pending = Some(TxnState::Ongoing);
    assert_eq!(
        m.prepare_init_producer_id(
            TIMEOUT,
            Some((ProducerId(99), ProducerEpoch(0))),
            no_alloc,
            NOW
        ),
        Err(TxnError::ConcurrentTransactions)
    );
    // The id expired and was created again: the recovering producer gets the new id at 0.
    let mut m = TxnMetadata::new("txn", ProducerId(42), TIMEOUT, START);
    let t = init(&mut m, Some((7, 12)), no_alloc).unwrap();
    assert_eq!(ids(&t), (42, 0, -1));
}

#[test]
fn init_rotates_the_producer_id_when_the_epochs_run_out() {
    assert!(!is_epoch_exhausted(ProducerEpoch(32765)));
    assert!(is_epoch_exhausted(ProducerEpoch(32766)));
    assert!(is_epoch_exhausted(ProducerEpoch(i16::MAX)));

    // 32765 still bumps, to 32766, which is handed out.
    let mut m = meta_in(TxnState::CompleteCommit);
    m.producer_epoch = ProducerEpoch(32765);
    let t = init(&mut m, None, no_alloc).unwrap();
    assert_eq!(ids(&t), (7, 32766, -1));
    m.complete(&t).unwrap();

    // A new instance at 32766: a new producer id at epoch 0, no last epoch.
    let mut n = m.clone();
    let t = init(&mut n, None, alloc(100)).unwrap();
    assert_eq!(ids(&t), (100, 0, -1));
    assert_eq!(t.last_producer_id, ProducerId(7));
    n.complete(&t).unwrap();
    assert_eq!(
        (n.producer_id, n.last_producer_id),
        (ProducerId(100), ProducerId(7))
    );

    // KIP-360 recovery at 32766: the same, remembering the old epoch...
    let t = init(&mut m, Some((7, 32766)), alloc(100)).unwrap();
    assert_eq!(ids(&t), (100, 0, 32766));
    m.complete(&t).unwrap();
    // ...so the retry with the old producer id gets the same new id, without allocating.
    let t = init(&mut m, Some((7, 32766)), no_alloc).unwrap();
    assert_eq!(ids(&t), (100, 0, 32766));
    m.complete(&t).unwrap();
    // The old producer id with an epoch that is not exhausted is fenced.
    assert_eq!(
        init(&mut m, Some((7, 5)), no_alloc),
        Err(TxnError::ProducerFenced)
    );

    // Exhausted, and the producer presents an older epoch of the current id: fenced (Kafka
    // 3.9 throws an IllegalStateException here, see `next_epoch`).
    let mut m = meta_in(TxnState::Empty);
    m.producer_epoch = ProducerEpoch(32766);
    assert_eq!(
        init(&mut m, Some((7, 5)), no_alloc),
        Err(TxnError::ProducerFenced)
    );
    // ...unless it is the retry of the bump to 32766.
    m.last_producer_epoch = ProducerEpoch(32765);
    let t = init(&mut m, Some((7, 32765)), no_alloc).unwrap();
    assert_eq!(ids(&t), (7, 32766, 32765));
}

#[test]
fn init_passes_allocation_errors_through() {
    let mut m = meta_in(TxnState::Empty);
    m.producer_epoch = ProducerEpoch(32766);
    let r = init(&mut m, None, || {
        Err(TxnError::Other(ResponseError::CoordinatorNotAvailable))
    });
    assert_eq!(
        r,
        Err(TxnError::Other(ResponseError::CoordinatorNotAvailable))
    );
    assert_eq!(m.pending(), None, "nothing prepared");
}

#[test]
fn init_over_an_open_transaction_fences_and_aborts_it() {
    let mut m = meta_in(TxnState::Ongoing);
    m.last_producer_epoch = ProducerEpoch(2);
    let t = match m
        .prepare_init_producer_id(TIMEOUT, None, no_alloc, NOW)
        .unwrap()
    {
        InitTransit::AbortOngoing(t) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(t.state, TxnState::PrepareAbort);
    assert_eq!(ids(&t), (7, 4, -1), "bumped, last epoch forgotten");
    assert!(t.epoch_fence);
    assert_eq!(t.topic_partitions, set(&[("t", 0)]));
    assert_eq!((t.txn_start_ms, t.last_update_ms), (START, NOW));
    // The bump is in memory at once: the old producer is fenced even before the append.
    assert_eq!(m.producer_epoch, ProducerEpoch(4));
    assert_eq!(m.pending(), Some(TxnState::PrepareAbort));
    assert_eq!(
        m.prepare_end_txn(PID, EPOCH, TxnResult::Commit, NOW),
        Err(TxnError::ProducerFenced)
    );
    m.complete(&t).unwrap();
    assert_eq!(m.state, TxnState::PrepareAbort);
    assert_eq!(
        m.prepare_add_partitions(PID, EPOCH, &set(&[("t", 0)]), NOW),
        Err(TxnError::ProducerFenced)
    );
    // The client's retry waits for the abort's markers.
    assert_eq!(
        m.prepare_init_producer_id(TIMEOUT, None, no_alloc, NOW),
        Err(TxnError::ConcurrentTransactions)
    );
    let c = m
        .prepare_complete(PID, ProducerEpoch(4), TxnResult::Abort, NOW)
        .unwrap();
    m.remove_partition(&tp("t", 0)).unwrap();
    m.complete(&c).unwrap();
    assert_eq!(m.state, TxnState::CompleteAbort);
    // Then gets a second bump: the fencing epoch 4 was never handed out.
    let t = init(&mut m, None, no_alloc).unwrap();
    assert_eq!(ids(&t), (7, 5, -1));
}

#[test]
fn a_fence_that_exhausts_the_epochs_leads_to_a_new_producer_id() {
    let mut m = meta_in(TxnState::Ongoing);
    m.producer_epoch = ProducerEpoch(32765);
    let t = match m
        .prepare_init_producer_id(TIMEOUT, None, no_alloc, NOW)
        .unwrap()
    {
        InitTransit::AbortOngoing(t) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(ids(&t), (7, 32766, -1));
    m.complete(&t).unwrap();
    let c = m
        .prepare_complete(PID, ProducerEpoch(32766), TxnResult::Abort, NOW)
        .unwrap();
    m.remove_partition(&tp("t", 0)).unwrap();
    m.complete(&c).unwrap();
    let t = init(&mut m, None, alloc(500)).unwrap();
    assert_eq!(ids(&t), (500, 0, -1));
}

#[test]
fn a_failed_fence_does_not_bump_twice() {
    let mut m = meta_in(TxnState::Ongoing);
    let t = match m
        .prepare_init_producer_id(TIMEOUT, None, no_alloc, NOW)
        .unwrap()
    {
        InitTransit::AbortOngoing(t) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(t.producer_epoch, ProducerEpoch(4));
    m.abort_pending(&t);
    assert!(m.has_failed_epoch_fence());
    assert_eq!(
        (m.state, m.pending(), m.producer_epoch),
        (TxnState::Ongoing, None, ProducerEpoch(4))
    );
    // The next fence (the client's retry, or the timeout) reuses epoch 4.
    let t = match m
        .prepare_init_producer_id(TIMEOUT, None, no_alloc, NOW)
        .unwrap()
    {
        InitTransit::AbortOngoing(t) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(t.producer_epoch, ProducerEpoch(4));
    m.complete(&t).unwrap();
    assert!(
        m.has_failed_epoch_fence(),
        "cleared once the abort is written, at completion"
    );
    let c = m
        .prepare_complete(PID, ProducerEpoch(4), TxnResult::Abort, NOW)
        .unwrap();
    assert!(!m.has_failed_epoch_fence());
    m.abort_pending(&c);
    assert!(
        !m.has_failed_epoch_fence(),
        "only a fence's failure sets it"
    );
}

#[test]
fn a_fence_at_the_largest_epoch_is_refused() {
    let mut m = meta_in(TxnState::Ongoing);
    m.producer_epoch = ProducerEpoch(i16::MAX);
    assert!(matches!(
        m.prepare_init_producer_id(TIMEOUT, None, no_alloc, NOW),
        Err(TxnError::IllegalState(_))
    ));
    assert_eq!(m.pending(), None);
}

// ---- Timeouts and expiry ----

#[test]
fn timed_out_transactions_are_found_and_fenced() {
    let m = meta_in(TxnState::Ongoing); // start 1000, timeout 60000
    let deadline = START + i64::from(TIMEOUT);
    assert!(!m.is_timed_out(deadline));
    assert!(m.is_timed_out(deadline + 1));
    for state in TxnState::ALL {
        if state != TxnState::Ongoing {
            assert!(!meta_in(state).is_timed_out(i64::MAX), "{state}");
        }
    }
    let mut pending = meta_in(TxnState::Ongoing);
    pending.pending = Some(TxnState::PrepareCommit);
    assert!(!pending.is_timed_out(i64::MAX));

    let mut other = meta_in(TxnState::Ongoing);
    other.transactional_id = "other".into();
    other.txn_start_ms = deadline; // not yet
    let all = [m.clone(), other, pending, meta_in(TxnState::Empty)];
    assert_eq!(
        timed_out(&all, deadline + 1),
        vec![TimedOut {
            transactional_id: "txn".into(),
            producer_id: PID,
            producer_epoch: EPOCH
        }]
    );

    let mut m = m;
    assert_eq!(
        m.prepare_timeout_abort(ProducerId(8), NOW),
        Err(TxnError::InvalidProducerIdMapping)
    );
    let t = m.prepare_timeout_abort(PID, deadline + 1).unwrap();
    assert_eq!(
        (t.state, t.producer_epoch, t.epoch_fence),
        (TxnState::PrepareAbort, ProducerEpoch(4), true)
    );
    assert_eq!(
        m.prepare_timeout_abort(PID, NOW),
        Err(TxnError::ConcurrentTransactions)
    );
    // Moot once the transaction is no longer open.
    let mut e = meta_in(TxnState::CompleteCommit);
    assert_eq!(
        e.prepare_timeout_abort(PID, NOW),
        Err(TxnError::InvalidTxnState)
    );
}

#[test]
fn idle_ids_expire_with_a_tombstone() {
    const EXPIRY: i64 = 100;
    for state in TxnState::ALL {
        let m = meta_in(state); // last update START
        let want = matches!(
            state,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        );
        assert_eq!(m.is_expired(START + EXPIRY, EXPIRY), want, "{state}");
        assert!(!m.is_expired(START + EXPIRY - 1, EXPIRY), "{state}");
    }
    let mut m = meta_in(TxnState::CompleteAbort);
    let mut busy = meta_in(TxnState::Empty);
    busy.transactional_id = "busy".into();
    busy.pending = Some(TxnState::Empty);
    assert!(!busy.is_expired(i64::MAX, EXPIRY));
    assert_eq!(expired([&m, &busy], START + EXPIRY, EXPIRY), vec!["txn"]);

    let t = m.prepare_dead().unwrap();
    assert_eq!(t.state, TxnState::Dead);
    assert_eq!(t.last_update_ms, START, "expiry is not an update");
    assert_eq!(m.pending(), Some(TxnState::Dead));
    // While the tombstone is written the id is busy.
    assert_eq!(
        m.prepare_init_producer_id(TIMEOUT, None, no_alloc, NOW),
        Err(TxnError::ConcurrentTransactions)
    );
    assert!(m.tombstone_written(&t), "remove it from the cache");
    // A Dead transit is never completed into the cache.
    assert!(matches!(m.complete(&t), Err(TxnError::IllegalState(_))));

    // An id whose epoch moved meanwhile stays, its pending state cleared.
    let mut m = meta_in(TxnState::Empty);
    let mut t = m.prepare_dead().unwrap();
    t.producer_epoch = ProducerEpoch(0);
    assert!(!m.tombstone_written(&t));
    assert_eq!(m.pending(), None);

    // An open transaction never expires.
    let mut m = meta_in(TxnState::Ongoing);
    assert!(matches!(m.prepare_dead(), Err(TxnError::IllegalState(_))));
    // A created id whose first InitProducerId was never written (epoch -1) may expire too.
    let mut m = TxnMetadata::new("txn", ProducerId(42), TIMEOUT, START);
    assert!(m.prepare_dead().is_ok());
}

/// A whole life: init, two transactions (commit, abort), a new instance.
#[test]
fn a_producer_lifetime() {
    let mut m = TxnMetadata::new("txn", ProducerId(1), TIMEOUT, 0);
    let t = init(&mut m, None, no_alloc).unwrap();
    m.complete(&t).unwrap();
    let e = m.producer_epoch;
    for (n, result) in [(1, TxnResult::Commit), (2, TxnResult::Abort)] {
        let now = n * 100;
        let t = m
            .prepare_add_partitions(ProducerId(1), e, &set(&[("a", 0), ("b", 1)]), now)
            .unwrap()
            .unwrap();
        m.complete(&t).unwrap();
        let t = m
            .prepare_add_offsets(ProducerId(1), e, "g", 50, now + 1)
            .unwrap()
            .unwrap();
        m.complete(&t).unwrap();
        assert_eq!(m.topic_partitions.len(), 3);
        assert_eq!(m.txn_start_ms, now);
        let t = m
            .prepare_end_txn(ProducerId(1), e, result, now + 2)
            .unwrap()
            .unwrap();
        m.complete(&t).unwrap();
        let c = m
            .prepare_complete(ProducerId(1), e, result, now + 3)
            .unwrap();
        for tp in m.topic_partitions.clone() {
            m.remove_partition(&tp).unwrap();
        }
        m.complete(&c).unwrap();
        assert_eq!(
            m.prepare_end_txn(ProducerId(1), e, result, now + 4),
            Ok(None)
        );
    }
    assert_eq!(m.state, TxnState::CompleteAbort);
    let t = init(&mut m, None, no_alloc).unwrap();
    m.complete(&t).unwrap();
    assert_eq!(m.producer_epoch, ProducerEpoch(e.0 + 1));
    assert_eq!(
        m.prepare_end_txn(ProducerId(1), e, TxnResult::Commit, 999),
        Err(TxnError::ProducerFenced)
    );
}
