//! The heartbeat protocol of one group, driven as clients drive it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::*;

struct Topics {
    by_name: BTreeMap<String, SubscribedTopic>,
    version: u64,
}

impl Topics {
    fn new(list: &[(&str, i32)]) -> Topics {
        Topics {
            by_name: list
                .iter()
                .map(|(n, p)| {
                    (
                        n.to_string(),
                        SubscribedTopic {
                            id: Uuid::new_v4(),
                            partitions: *p,
                        },
                    )
                })
                .collect(),
            version: 1,
        }
    }
    fn id(&self, n: &str) -> Uuid {
        self.by_name[n].id
    }
}

impl TopicSource for Topics {
    fn topic(&self, name: &str) -> Option<SubscribedTopic> {
        self.by_name.get(name).copied()
    }
    fn for_each_name(&self, f: &mut dyn FnMut(&str)) {
        self.by_name.keys().for_each(|n| f(n));
    }
    fn version(&self) -> u64 {
        self.version
    }
    fn name_of(&self, id: Uuid) -> Option<String> {
        self.by_name
            .iter()
            .find(|(_, t)| t.id == id)
            .map(|(n, _)| n.clone())
    }
}

fn settings() -> Settings {
    Settings {
        session_timeout: Duration::from_secs(45),
        heartbeat_interval: Duration::from_secs(5),
        assignors: vec![assignor::Assignor::Uniform, assignor::Assignor::Range],
        max_size: 10,
    }
}

fn join(member: &str, topics: &[&str]) -> Heartbeat {
    Heartbeat {
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(topics.iter().map(|s| s.to_string()).collect()),
        owned: Some(Assignment::new()),
        ..Default::default()
    }
}

fn beat(member: &str, epoch: i32, owned: &Assignment) -> Heartbeat {
    Heartbeat {
        member_id: member.into(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        owned: Some(owned.clone()),
        ..Default::default()
    }
}

fn count(a: &Assignment) -> usize {
    a.values().map(|p| p.len()).sum()
}

/// Heartbeats every member until nothing changes, as clients that apply each answer at once
/// would; returns each member's (epoch, owned).
fn settle(
    g: &mut ConsumerGroup,
    t: &Topics,
    owned: &mut BTreeMap<String, (i32, Assignment)>,
    now: Instant,
) {
    for _ in 0..10 {
        let ids: Vec<String> = owned.keys().cloned().collect();
        for id in ids {
            let (epoch, mine) = owned[&id].clone();
            let r = g
                .heartbeat(beat(&id, epoch, &mine), t, &settings(), now)
                .unwrap();
            let next = r.assignment.unwrap_or(mine);
            owned.insert(id, (r.member_epoch, next));
        }
        // Never two owners.
        let mut seen = std::collections::BTreeSet::new();
        for (_, a) in owned.values() {
            for (tp, ps) in a {
                for p in ps {
                    assert!(seen.insert((*tp, *p)), "partition {p} owned twice");
                }
            }
        }
    }
}

#[test]
fn scale_out_revokes_before_assigning_and_only_what_moves() {
    let t = Topics::new(&[("orders", 12)]);
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let r = g
        .heartbeat(join("a", &["orders"]), &t, &settings(), now)
        .unwrap();
    assert_eq!(r.member_epoch, 1);
    assert_eq!(count(r.assignment.as_ref().unwrap()), 12);
    assert_eq!(g.state(), ConsumerGroupState::Stable);
    let mut owned: BTreeMap<String, (i32, Assignment)> =
        [("a".to_string(), (1, r.assignment.unwrap()))].into();

    // b joins: it gets nothing a still owns.
    let r = g
        .heartbeat(join("b", &["orders"]), &t, &settings(), now)
        .unwrap();
    assert_eq!(r.member_epoch, 2);
    assert_eq!(count(r.assignment.as_ref().unwrap()), 0);
    owned.insert("b".into(), (2, r.assignment.unwrap()));
    assert_eq!(g.state(), ConsumerGroupState::Reconciling);
    // a is told to give up six: its epoch stays until it does.
    let r = g
        .heartbeat(beat("a", 1, &owned["a"].1), &t, &settings(), now)
        .unwrap();
    assert_eq!(r.member_epoch, 1);
    let kept = r.assignment.unwrap();
    assert_eq!(count(&kept), 6);
    assert!(is_subset(&kept, &owned["a"].1));
    owned.insert("a".into(), (1, kept.clone()));
    settle(&mut g, &t, &mut owned, now);
    assert_eq!(g.state(), ConsumerGroupState::Stable);
    assert_eq!(owned["a"].1, kept, "a kept its six");
    assert_eq!(count(&owned["b"].1), 6);
    assert!(owned.values().all(|(e, _)| *e == 2));
    // Once stable, a heartbeat only renews the session: nothing to persist.
    g.take_dirty();
    let r = g
        .heartbeat(beat("a", 2, &kept), &t, &settings(), now)
        .unwrap();
    assert_eq!((r.member_epoch, r.assignment), (2, None));
    assert!(!g.take_dirty(), "a plain heartbeat rewrote the group");
}

#[test]
fn a_stale_epoch_is_fenced_unless_only_the_answer_was_lost() {
    let t = Topics::new(&[("x", 2)]);
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let r = g
        .heartbeat(join("a", &["x"]), &t, &settings(), now)
        .unwrap();
    let a = r.assignment.unwrap();
    let err = g
        .heartbeat(beat("a", 7, &a), &t, &settings(), now)
        .unwrap_err();
    assert_eq!(err.error, ResponseError::FencedMemberEpoch);
    // A second member bumps a to epoch 2 while a's answer is lost: epoch 1 still works.
    g.heartbeat(join("b", &["x"]), &t, &settings(), now)
        .unwrap();
    let r = g.heartbeat(beat("a", 1, &a), &t, &settings(), now).unwrap();
    assert_eq!(r.member_epoch, 1, "must revoke one first");
    let kept = r.assignment.unwrap();
    let r = g
        .heartbeat(beat("a", 1, &kept), &t, &settings(), now)
        .unwrap();
    assert_eq!(r.member_epoch, 2);
    // The answer with epoch 2 lost: a heartbeat at 1 owning what it has is accepted.
    let r = g
        .heartbeat(beat("a", 1, &kept), &t, &settings(), now)
        .unwrap();
    assert_eq!(r.member_epoch, 2);
    let err = g
        .heartbeat(beat("zz", 2, &kept), &t, &settings(), now)
        .unwrap_err();
    assert_eq!(err.error, ResponseError::UnknownMemberId);
}

#[test]
fn static_member_takes_its_partitions_back_and_an_active_one_is_not_replaced() {
    let t = Topics::new(&[("x", 4)]);
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let mut hb = join("a1", &["x"]);
    hb.instance_id = Some("i-a".into());
    let r = g.heartbeat(hb, &t, &settings(), now).unwrap();
    let a = r.assignment.unwrap();
    let mut other = join("a2", &["x"]);
    other.instance_id = Some("i-a".into());
    let err = g
        .heartbeat(other.clone(), &t, &settings(), now)
        .unwrap_err();
    assert_eq!(err.error, ResponseError::UnreleasedInstanceId);
    let leave = Heartbeat {
        member_id: "a1".into(),
        member_epoch: STATIC_LEAVE_EPOCH,
        instance_id: Some("i-a".into()),
        ..Default::default()
    };
    assert_eq!(
        g.heartbeat(leave, &t, &settings(), now)
            .unwrap()
            .member_epoch,
        -2
    );
    let epoch = g.group_epoch;
    let r = g.heartbeat(other, &t, &settings(), now).unwrap();
    assert_eq!(r.member_epoch, 1);
    assert_eq!(r.assignment.unwrap(), a);
    assert_eq!(
        g.group_epoch, epoch,
        "no rebalance for a returning static member"
    );
    assert!(!g.members.contains_key("a1"));
}

#[test]
fn sessions_expire_and_free_partitions() {
    let t = Topics::new(&[("x", 4)]);
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    g.heartbeat(join("a", &["x"]), &t, &settings(), now)
        .unwrap();
    g.heartbeat(
        join("b", &["x"]),
        &t,
        &settings(),
        now + Duration::from_secs(30),
    )
    .unwrap();
    assert!(g.tick(&settings(), now + Duration::from_secs(46)));
    assert_eq!(g.members.keys().collect::<Vec<_>>(), vec!["b"]);
    let r = g
        .heartbeat(
            beat("b", 2, &Assignment::new()),
            &t,
            &settings(),
            now + Duration::from_secs(47),
        )
        .unwrap();
    assert_eq!(count(&r.assignment.unwrap()), 4);
}

#[test]
fn regex_subscriptions_follow_new_topics() {
    let mut t = Topics::new(&[("rx-a", 1), ("other", 1)]);
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let hb = Heartbeat {
        subscribed_topic_names: None,
        subscribed_topic_regex: Some("(^rx-.*)".into()),
        ..join("a", &[])
    };
    // Matched off the heartbeat path: nothing yet, then rx-a after the coordinator's tick.
    let r = g.heartbeat(hb, &t, &settings(), now).unwrap();
    assert_eq!(count(r.assignment.as_ref().unwrap()), 0);
    assert!(g.refresh_regexes(&t, now), "a new regex is matched at once");
    let r = g
        .heartbeat(beat("a", 1, &Assignment::new()), &t, &settings(), now)
        .unwrap();
    let a = r.assignment.unwrap();
    assert_eq!(a.keys().copied().collect::<Vec<_>>(), vec![t.id("rx-a")]);
    t.by_name.insert(
        "rx-b".into(),
        SubscribedTopic {
            id: Uuid::new_v4(),
            partitions: 2,
        },
    );
    t.version += 1;
    assert!(
        !g.refresh_regexes(&t, now),
        "not again within the refresh interval"
    );
    let later = now + REGEX_REFRESH_INTERVAL;
    assert!(g.refresh_regexes(&t, later));
    assert!(
        !g.refresh_regexes(&t, later + REGEX_REFRESH_INTERVAL),
        "nothing changed"
    );
    let r = g
        .heartbeat(beat("a", 2, &a), &t, &settings(), later)
        .unwrap();
    assert_eq!(r.member_epoch, 3);
    assert_eq!(count(&r.assignment.unwrap()), 3);
}

#[test]
fn bad_requests_get_kafkas_errors() {
    let t = Topics::new(&[("x", 1)]);
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let bad_re = Heartbeat {
        subscribed_topic_regex: Some("(".into()),
        ..join("a", &["x"])
    };
    let e = g.heartbeat(bad_re, &t, &settings(), now).unwrap_err();
    assert_eq!(e.error, ResponseError::InvalidRegularExpression);
    let bad_assignor = Heartbeat {
        server_assignor: Some("sticky".into()),
        ..join("a", &["x"])
    };
    let e = g.heartbeat(bad_assignor, &t, &settings(), now).unwrap_err();
    assert_eq!(e.error, ResponseError::UnsupportedAssignor);
    let no_id = join("", &["x"]);
    assert_eq!(
        g.heartbeat(no_id, &t, &settings(), now).unwrap_err().error,
        ResponseError::InvalidRequest
    );
    let mut s = settings();
    s.max_size = 1;
    g.heartbeat(join("a", &["x"]), &t, &s, now).unwrap();
    assert_eq!(
        g.heartbeat(join("b", &["x"]), &t, &s, now)
            .unwrap_err()
            .error,
        ResponseError::GroupMaxSizeReached
    );
}

mod classic_members {
    use super::*;
    use crate::group::consumer::classic::{decode_assignment, encode_assignment};
    use crate::group::state::{Group, GroupState, JoinRequest, StoredMember};
    use bytes::{BufMut, Bytes, BytesMut};
    use kafka_protocol::messages::{consumer_protocol_subscription, ConsumerProtocolSubscription};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn subscription(topics: &[&str], owned: &[(&str, &[i32])]) -> Bytes {
        let s = ConsumerProtocolSubscription::default()
            .with_topics(
                topics
                    .iter()
                    .map(|t| StrBytes::from_string(t.to_string()))
                    .collect(),
            )
            .with_owned_partitions(
                owned
                    .iter()
                    .map(|(t, ps)| {
                        consumer_protocol_subscription::TopicPartition::default()
                            .with_topic(kafka_protocol::messages::TopicName(StrBytes::from_string(
                                t.to_string(),
                            )))
                            .with_partitions(ps.to_vec())
                    })
                    .collect(),
            );
        let mut b = BytesMut::new();
        b.put_i16(1);
        s.encode(&mut b, 1).unwrap();
        b.freeze()
    }

    fn join_req(member: &str, owned: &[(&str, &[i32])]) -> JoinRequest {
        JoinRequest {
            member_id: member.into(),
            instance_id: None,
            client_id: member.into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            protocol_type: "consumer".into(),
            protocols: vec![("cooperative-sticky".into(), subscription(&["t"], owned))],
            require_known_member_id: true,
        }
    }

    /// A stable classic group of two members owning 0-2 and 3-5 of `t`, at generation 7.
    fn classic_group(t: &Topics) -> Group {
        let id = t.id("t");
        let member = |name: &str, ps: &[i32]| StoredMember {
            id: name.into(),
            instance_id: None,
            client_id: name.into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            subscription: subscription(&["t"], &[("t", ps)]),
            assignment: encode_assignment(&[(id, ps.iter().copied().collect())].into(), t),
        };
        Group::restore(
            "g",
            7,
            Some("consumer".into()),
            Some("cooperative-sticky".into()),
            Some("c1".into()),
            vec![member("c1", &[0, 1, 2]), member("c2", &[3, 4, 5])],
            Instant::now(),
        )
    }

    #[test]
    fn upgrade_keeps_partitions_and_classic_members_follow_the_new_target() {
        let t = Topics::new(&[("t", 6)]);
        let now = Instant::now();
        let mut g = ConsumerGroup::from_classic(&classic_group(&t), &t);
        assert_eq!(g.members.len(), 2);
        assert!(g
            .members
            .values()
            .all(|m| m.member_epoch == 7 && m.classic.is_some()));
        assert_eq!(count(&g.members["c1"].assigned), 3);
        // Classic members are at their target: heartbeats pass.
        assert_eq!(g.classic_heartbeat("c1", 7, &t, &settings(), now), Ok(()));
        assert_eq!(
            g.classic_heartbeat("c1", 6, &t, &settings(), now),
            Err(ResponseError::IllegalGeneration)
        );
        // A member of the new protocol joins: two of the classic members' six must move.
        let r = g
            .heartbeat(join("n1", &["t"]), &t, &settings(), now)
            .unwrap();
        assert_eq!(
            count(r.assignment.as_ref().unwrap()),
            0,
            "nothing is free yet"
        );
        let hb1 = g.classic_heartbeat("c1", 7, &t, &settings(), now);
        assert_eq!(hb1, Err(ResponseError::RebalanceInProgress));
        // c1 joins again (cooperative: reporting what it owns) and is told what to keep.
        let j = g
            .classic_join(&join_req("c1", &[("t", &[0, 1, 2])]), &t, &settings(), now)
            .unwrap();
        assert_eq!(j.error, None);
        assert_eq!(j.protocol_name, "cooperative-sticky");
        let (proto, bytes) = g.classic_sync("c1", j.generation, &t).unwrap();
        assert_eq!(proto, "cooperative-sticky");
        let kept: Vec<i32> = decode_assignment(&bytes)
            .into_iter()
            .flat_map(|(_, p)| p)
            .collect();
        assert_eq!(kept.len(), 2, "gives one up: {kept:?}");
        // It revoked: joins again owning what it kept, and reaches the target epoch.
        let owned: Vec<(&str, &[i32])> = vec![("t", &kept)];
        let j2 = g
            .classic_join(&join_req("c1", &owned), &t, &settings(), now)
            .unwrap();
        assert_eq!(j2.generation, g.assignment_epoch);
        let m = &g.members["c1"];
        assert_eq!(
            m.state,
            MemberState::Stable,
            "{m:?} target {:?}",
            g.target.get("c1")
        );
        assert_eq!(
            g.classic_heartbeat("c1", j2.generation, &t, &settings(), now),
            Ok(())
        );
        // The new member gets what c1 released.
        let r = g
            .heartbeat(
                beat("n1", r.member_epoch, &Assignment::new()),
                &t,
                &settings(),
                now,
            )
            .unwrap();
        assert_eq!(count(r.assignment.as_ref().unwrap()), 1);
    }

    #[test]
    fn downgrade_when_only_classic_members_remain_keeps_their_generation() {
        let t = Topics::new(&[("t", 6)]);
        let now = Instant::now();
        let mut g = ConsumerGroup::from_classic(&classic_group(&t), &t);
        let r = g
            .heartbeat(join("n1", &["t"]), &t, &settings(), now)
            .unwrap();
        assert!(!g.only_classic_members());
        let leave = Heartbeat {
            member_id: "n1".into(),
            member_epoch: LEAVE_EPOCH,
            ..Default::default()
        };
        g.heartbeat(leave, &t, &settings(), now).unwrap();
        assert!(r.member_epoch > 7);
        assert!(g.only_classic_members());
        let classic = g.to_classic(&t).expect("a common protocol");
        assert_eq!(classic.state, GroupState::Stable);
        assert_eq!(
            classic.generation, 7,
            "the generation the members commit with"
        );
        assert_eq!(classic.protocol.as_deref(), Some("cooperative-sticky"));
        assert_eq!(classic.members.len(), 2);
    }

    #[test]
    fn commits_and_fetches_check_the_epoch_by_the_members_protocol() {
        let t = Topics::new(&[("t", 6)]);
        let now = Instant::now();
        let mut g = ConsumerGroup::from_classic(&classic_group(&t), &t);
        let r = g
            .heartbeat(join("n1", &["t"]), &t, &settings(), now)
            .unwrap();
        // A classic member commits with its generation: ILLEGAL_GENERATION when stale.
        assert_eq!(g.validate_commit("c1", 7), Ok(()));
        assert_eq!(
            g.validate_commit("c1", 6),
            Err(ResponseError::IllegalGeneration)
        );
        assert_eq!(
            g.validate_fetch("c1", 6),
            Err(ResponseError::IllegalGeneration)
        );
        // A member of the new protocol: STALE_MEMBER_EPOCH.
        assert_eq!(g.validate_commit("n1", r.member_epoch), Ok(()));
        let stale = r.member_epoch - 1;
        assert_eq!(
            g.validate_commit("n1", stale),
            Err(ResponseError::StaleMemberEpoch)
        );
        assert_eq!(
            g.validate_fetch("n1", stale),
            Err(ResponseError::StaleMemberEpoch)
        );
        // Admin commits only while nobody is a member; unknown members are unknown.
        assert_eq!(
            g.validate_commit("", -1),
            Err(ResponseError::UnknownMemberId)
        );
        assert_eq!(
            g.validate_commit("zz", 1),
            Err(ResponseError::UnknownMemberId)
        );
        assert_eq!(g.validate_fetch("", -1), Ok(()));
    }

    #[test]
    fn a_new_classic_member_is_asked_for_its_member_id_first() {
        let t = Topics::new(&[("t", 6)]);
        let now = Instant::now();
        let mut g = ConsumerGroup::from_classic(&classic_group(&t), &t);
        let j = g
            .classic_join(&join_req("", &[]), &t, &settings(), now)
            .unwrap();
        assert_eq!(j.error, Some(ResponseError::MemberIdRequired));
        assert!(!g.members.contains_key(&j.member_id));
        let j2 = g
            .classic_join(&join_req(&j.member_id, &[]), &t, &settings(), now)
            .unwrap();
        assert_eq!(j2.error, None);
        assert!(g.members[&j.member_id].classic.is_some());
        assert_eq!(
            g.classic_sync("nobody", 1, &t),
            Err(ResponseError::UnknownMemberId)
        );
    }
}
