//! Tests of state.rs, InitProducerId and the clock: every branch of Kafka 3.x's
//! InitProducerId (`prepareInitProducerIdTransit`, `prepareIncrementProducerEpoch`), the
//! timeout abort (`abortTimedOutTransactions`) and the expiry of idle ids
//! (`removeExpiredTransactionalIds`). The helpers are `state_tests.rs`'.
use super::tests::*;
use super::*;
use kafka_protocol::error::ResponseError;

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
        m.prepare_add_partitions(PID, EPOCH, &set(&[("t", 0)]), TxnVersion::TV0, NOW),
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
            .prepare_add_partitions(
                ProducerId(1),
                e,
                &set(&[("a", 0), ("b", 1)]),
                TxnVersion::TV0,
                now,
            )
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
