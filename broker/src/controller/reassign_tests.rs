use super::*;
use crate::controller::raft::command::apply_command;
use crate::metadata::fixtures::{self, ids};

fn image(replicas: &[i32], isr: &[i32], leader: i32) -> MetadataImage {
    let p = PartitionMeta {
        leader_epoch: LeaderEpoch(3),
        partition_epoch: 5,
        ..fixtures::part(replicas, isr, leader)
    };
    fixtures::image(4, &[], vec![p])
}

fn apply(img: &mut MetadataImage, s: Step) {
    apply_command(
        img,
        &MetadataCommand::ReassignPartition {
            topic: s.topic,
            partition: s.partition,
            state: s.state,
            reassignment: s.reassignment,
        },
    )
    .expect("accepted by the state machine");
}

fn code(e: KafkaError) -> i16 {
    e.code()
}

#[test]
fn move_adds_first_then_completes_when_the_isr_has_the_target() {
    let mut img = image(&[1, 2], &[1, 2], 1);
    let s = plan_start(&img, "t", 0, &ids(&[2, 3]), true)
        .expect("valid")
        .expect("a change");
    assert_eq!(s.state.replicas, ids(&[2, 3, 1]), "target, then removing");
    assert_eq!(s.state.isr, ids(&[1, 2]));
    assert_eq!(s.state.leader, BrokerId(1));
    assert_eq!(s.state.partition_epoch, 6);
    let r = s.reassignment.clone().expect("in progress");
    assert_eq!((r.adding, r.removing), (ids(&[3]), ids(&[1])));
    assert_eq!(r.original, ids(&[1, 2]));
    apply(&mut img, s);
    assert!(img.reassignment("t", 0).is_some());
    assert!(plan_completions(&img).is_empty(), "3 is not in the ISR yet");
    // The leader adds 3 to the ISR: the same change completes the reassignment.
    std::sync::Arc::make_mut(img.topics.get_mut("t").unwrap()).partitions[0].isr = ids(&[1, 2, 3]);
    let done = plan_completions(&img);
    assert_eq!(done.len(), 1);
    let d = &done[0].state;
    assert_eq!(d.replicas, ids(&[2, 3]));
    assert_eq!(d.isr, ids(&[2, 3]));
    assert_eq!(
        d.leader,
        BrokerId(2),
        "leader 1 leaves: first target replica in the ISR"
    );
    assert_eq!(d.leader_epoch, LeaderEpoch(4));
    apply(&mut img, done[0].clone());
    assert!(img.reassignments.is_empty());
    assert_eq!(img.topics["t"].partitions[0].replicas, ids(&[2, 3]));
}

#[test]
fn removal_or_reorder_inside_the_isr_completes_at_once() {
    let img = image(&[1, 2, 3], &[1, 2, 3], 1);
    let s = plan_start(&img, "t", 0, &ids(&[3, 2]), true)
        .unwrap()
        .unwrap();
    assert_eq!(s.reassignment, None);
    assert_eq!(s.state.replicas, ids(&[3, 2]));
    assert_eq!(s.state.isr, ids(&[2, 3]));
    assert_eq!(s.state.leader, BrokerId(3));
    let same = image(&[1, 2], &[1, 2], 1);
    assert_eq!(
        plan_start(&same, "t", 0, &ids(&[1, 2]), true).unwrap(),
        None
    );
}

#[test]
fn cancel_reverts_to_the_original_replicas() {
    let mut img = image(&[1, 2], &[1, 2], 1);
    assert_eq!(
        code(plan_cancel(&img, "t", 0, false).unwrap_err()),
        85,
        "NO_REASSIGNMENT_IN_PROGRESS"
    );
    let s = plan_start(&img, "t", 0, &ids(&[3, 4]), true)
        .unwrap()
        .unwrap();
    apply(&mut img, s);
    // A second target while the first is in progress keeps the first original set.
    let s = plan_start(&img, "t", 0, &ids(&[4, 3]), true)
        .unwrap()
        .unwrap();
    assert_eq!(s.reassignment.as_ref().unwrap().original, ids(&[1, 2]));
    apply(&mut img, s);
    std::sync::Arc::make_mut(img.topics.get_mut("t").unwrap()).partitions[0].isr = ids(&[1, 2, 3]);
    let c = plan_cancel(&img, "t", 0, false).unwrap();
    assert_eq!(c.state.replicas, ids(&[1, 2]));
    assert_eq!(c.state.isr, ids(&[1, 2]));
    assert_eq!(c.state.leader, BrokerId(1));
    assert_eq!(c.state.leader_epoch, LeaderEpoch(3));
    apply(&mut img, c);
    assert!(img.reassignments.is_empty());
}

#[test]
fn bad_targets_get_kafka_codes() {
    let img = image(&[1, 2], &[1, 2], 1);
    let err = |t: &[i32]| code(plan_start(&img, "t", 0, &ids(t), true).unwrap_err());
    assert_eq!(err(&[]), 39);
    assert_eq!(err(&[1, 9]), 39);
    assert_eq!(err(&[2, 2]), 39);
    assert_eq!(
        code(plan_start(&img, "nope", 0, &ids(&[1]), true).unwrap_err()),
        3
    );
    assert_eq!(
        code(plan_start(&img, "t", 7, &ids(&[1]), true).unwrap_err()),
        3
    );
    assert_eq!(
        code(plan_start(&img, "t", 0, &ids(&[1, 2, 3]), false).unwrap_err()),
        38,
        "KIP-860: replication factor change refused"
    );
}

#[test]
fn elections_keep_the_reassignment() {
    let mut img = image(&[1, 2], &[1, 2], 1);
    let s = plan_start(&img, "t", 0, &ids(&[2, 3]), true)
        .unwrap()
        .unwrap();
    apply(&mut img, s);
    let mut state = img.topics["t"].partitions[0].clone();
    state.leader = BrokerId(2);
    state.leader_epoch = LeaderEpoch(4);
    state.partition_epoch += 1;
    apply_command(
        &mut img,
        &MetadataCommand::ChangePartition {
            topic: "t".into(),
            partition: 0,
            state,
        },
    )
    .unwrap();
    assert!(img.reassignment("t", 0).is_some());
    apply_command(&mut img, &MetadataCommand::DeleteTopic { name: "t".into() }).unwrap();
    assert!(
        img.reassignments.is_empty(),
        "deleting a topic ends its reassignments"
    );
}
