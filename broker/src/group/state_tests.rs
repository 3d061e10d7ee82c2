//! Tests of state.rs.
use super::*;

fn req(member: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        member_id: member.into(),
        instance_id: instance.map(str::to_string),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(5),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"m"))],
        require_known_member_id: true,
    }
}

const NO_DELAY: GroupTimings = GroupTimings {
    initial_delay: Duration::ZERO,
};

fn now_result(mut rx: oneshot::Receiver<JoinResult>) -> Option<JoinResult> {
    rx.try_recv().ok()
}

/// Joins a new dynamic member through the KIP-394 two-step; returns its id and receiver.
fn join_new(g: &mut Group, now: Instant) -> (String, oneshot::Receiver<JoinResult>) {
    let first = now_result(g.join(req("", None), NO_DELAY, now)).expect("immediate answer");
    assert_eq!(first.error, ResponseError::MemberIdRequired.code());
    let id = first.member_id;
    (id.clone(), g.join(req(&id, None), NO_DELAY, now))
}

#[test]
fn join_sync_heartbeat_and_errors() {
    let now = Instant::now();
    let mut g = Group::new("g");
    let (a, rx) = join_new(&mut g, now);
    let r = now_result(rx).expect("single member completes at once");
    assert_eq!(
        (r.error, r.generation, r.leader.as_str()),
        (0, 1, a.as_str())
    );
    assert_eq!(r.members.len(), 1, "the leader gets the member list");
    assert_eq!(g.state, GroupState::CompletingRebalance);

    assert_eq!(
        g.heartbeat("nobody", None, 1, now),
        ResponseError::UnknownMemberId.code()
    );
    let (mut rx, done) = g.sync(&a, None, 7, vec![], now);
    assert!(!done);
    assert_eq!(
        rx.try_recv().expect("answer").error,
        ResponseError::IllegalGeneration.code()
    );
    let (mut rx, done) = g.sync(
        &a,
        None,
        1,
        vec![(a.clone(), Bytes::from_static(b"p0"))],
        now,
    );
    assert!(done, "the leader's sync completes the rebalance");
    g.deliver_sync(0);
    assert_eq!(
        rx.try_recv().expect("answer").assignment,
        Bytes::from_static(b"p0")
    );
    assert_eq!(g.state, GroupState::Stable);
    assert_eq!(g.heartbeat(&a, None, 1, now), 0);
    assert_eq!(
        g.heartbeat(&a, None, 0, now),
        ResponseError::IllegalGeneration.code()
    );

    // A second member triggers a rebalance; the first learns it from its heartbeat.
    let (b, mut rx_b) = join_new(&mut g, now);
    assert!(rx_b.try_recv().is_err(), "waits for the others to rejoin");
    assert_eq!(
        g.heartbeat(&a, None, 1, now),
        ResponseError::RebalanceInProgress.code()
    );
    let rx_a = g.join(req(&a, None), NO_DELAY, now);
    let ra = now_result(rx_a).expect("complete");
    let rb = rx_b.try_recv().expect("complete");
    assert_eq!((ra.generation, rb.generation), (2, 2));
    assert_eq!(ra.leader, a, "the leader is kept");
    assert!(rb.members.is_empty(), "followers get no member list");
    assert_eq!(g.members.len(), 2);
    let _ = b;
}

#[test]
fn session_expiry_removes_members_and_empties_the_group() {
    let now = Instant::now();
    let mut g = Group::new("g");
    let (a, rx) = join_new(&mut g, now);
    now_result(rx).expect("joined");
    let (_, done) = g.sync(&a, None, 1, vec![], now);
    assert!(done);
    g.deliver_sync(0);
    assert!(
        !g.tick(NO_DELAY, now + Duration::from_secs(5)),
        "still alive"
    );
    assert!(
        g.tick(NO_DELAY, now + Duration::from_secs(11)),
        "expired: the group became empty"
    );
    assert_eq!(g.state, GroupState::Empty);
    assert!(g.members.is_empty());
}

#[test]
fn static_members_are_fenced_and_replaced() {
    let now = Instant::now();
    let mut g = Group::new("g");
    let r = now_result(g.join(req("", Some("i1")), NO_DELAY, now))
        .expect("static members need no second join");
    let old = r.member_id.clone();
    let (_, done) = g.sync(
        &old,
        Some("i1"),
        1,
        vec![(old.clone(), Bytes::from_static(b"x"))],
        now,
    );
    assert!(done);
    g.deliver_sync(0);
    // Restart: same instance id, no member id; no rebalance, old assignment kept.
    let r = now_result(g.join(req("", Some("i1")), NO_DELAY, now)).expect("immediate");
    assert_eq!((r.error, r.generation), (0, 1));
    assert_ne!(r.member_id, old);
    assert_eq!(g.state, GroupState::Stable);
    assert_eq!(
        g.heartbeat(&old, Some("i1"), 1, now),
        ResponseError::FencedInstanceId.code()
    );
    let r2 = now_result(g.join(req(&old, Some("i1")), NO_DELAY, now)).expect("immediate");
    assert_eq!(r2.error, ResponseError::FencedInstanceId.code());
    let (mut rx, _) = g.sync(&r.member_id, Some("i1"), 1, vec![], now);
    assert_eq!(
        rx.try_recv().expect("answer").assignment,
        Bytes::from_static(b"x")
    );
}

#[test]
fn inconsistent_protocols_are_refused() {
    let now = Instant::now();
    let mut g = Group::new("g");
    let (_, rx) = join_new(&mut g, now);
    now_result(rx).expect("joined");
    let mut other = req("", None);
    other.protocols = vec![("roundrobin".into(), Bytes::new())];
    let r = now_result(g.join(other, NO_DELAY, now)).expect("immediate");
    assert_eq!(r.error, ResponseError::InconsistentGroupProtocol.code());
}

#[test]
fn initial_delay_holds_the_first_rebalance() {
    let now = Instant::now();
    let mut g = Group::new("g");
    let t = GroupTimings {
        initial_delay: Duration::from_secs(3),
    };
    let first = now_result(g.join(req("", None), t, now)).expect("member id");
    let mut rx = g.join(req(&first.member_id, None), t, now);
    assert!(rx.try_recv().is_err());
    g.tick(t, now + Duration::from_secs(1));
    assert!(rx.try_recv().is_err(), "still inside the delay");
    g.tick(t, now + Duration::from_millis(3100));
    assert_eq!(rx.try_recv().expect("completed").generation, 1);
}

#[test]
fn a_long_rebalance_does_not_expire_members_that_waited() {
    let now = Instant::now();
    let mut g = Group::new("g");
    let (a, rx) = join_new(&mut g, now);
    now_result(rx).expect("joined");
    let (_, done) = g.sync(&a, None, 1, vec![], now);
    assert!(done);
    g.deliver_sync(0);
    // B joins; A only rejoins after more than its 10 s session (heartbeats kept it alive).
    let (b, mut rx_b) = join_new(&mut g, now);
    assert_eq!(
        g.heartbeat(&a, None, 1, now + Duration::from_secs(9)),
        ResponseError::RebalanceInProgress.code()
    );
    let later = now + Duration::from_secs(12);
    let rx_a = g.join(req(&a, None), NO_DELAY, later);
    now_result(rx_a).expect("completed");
    rx_b.try_recv().expect("completed");
    g.tick(NO_DELAY, later + Duration::from_millis(200));
    assert!(
        g.members.contains_key(&a) && g.members.contains_key(&b),
        "both members survive the tick after the join"
    );
}

#[test]
fn static_members_stay_through_a_rebalance_they_miss() {
    let now = Instant::now();
    let mut g = Group::new("g");
    let r = now_result(g.join(req("", Some("s1")), NO_DELAY, now)).expect("joined");
    let s1 = r.member_id;
    let (_, done) = g.sync(&s1, Some("s1"), 1, vec![], now);
    assert!(done);
    g.deliver_sync(0);
    let (d, _rx) = join_new(&mut g, now);
    // s1 never rejoins; the join phase ends at the rebalance timeout (5 s).
    g.tick(NO_DELAY, now + Duration::from_secs(6));
    assert!(
        g.members.contains_key(&s1),
        "a static member is kept until its session expires"
    );
    assert_eq!(
        g.leader.as_deref(),
        Some(d.as_str()),
        "the leader is a member that rejoined"
    );
}

#[test]
fn a_superseded_join_is_answered_not_dropped() {
    let now = Instant::now();
    let mut g = Group::new("g");
    let (a, rx) = join_new(&mut g, now);
    now_result(rx).expect("joined");
    let (_, done) = g.sync(&a, None, 1, vec![], now);
    assert!(done);
    g.deliver_sync(0);
    // b joins and waits for a; b then sends JoinGroup again (another connection).
    let (b, mut first) = join_new(&mut g, now);
    assert!(first.try_recv().is_err(), "waiting for a");
    let _second = g.join(req(&b, None), NO_DELAY, now);
    let r = first
        .try_recv()
        .expect("the superseded request is answered");
    assert_eq!(r.error, ResponseError::RebalanceInProgress.code());
}
