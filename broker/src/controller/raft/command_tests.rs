//! The state machine's commands, applied to images: registration and fencing, topics and
//! partitions, batched partition changes, producer ids.

use super::*;
use crate::types::LeaderEpoch;

fn broker(id: i32) -> BrokerInfo {
    BrokerInfo {
        endpoints: Vec::new(),
        id: BrokerId(id),
        host: "127.0.0.1".into(),
        port: 9092,
        rack: None,
        max_partitions: None,
    }
}

fn part(replicas: &[i32], leader: i32, le: i32, pe: i32) -> PartitionMeta {
    PartitionMeta {
        replicas: replicas.iter().map(|&r| BrokerId(r)).collect(),
        isr: replicas.iter().map(|&r| BrokerId(r)).collect(),
        leader: BrokerId(leader),
        leader_epoch: LeaderEpoch(le),
        partition_epoch: pe,
    }
}

fn topic(name: &str, n: usize) -> TopicMeta {
    TopicMeta {
        name: name.into(),
        id: Uuid::from_u128(name.len() as u128 + 7),
        partitions: (0..n).map(|_| part(&[1, 2], 1, 0, 0)).collect(),
        configs: BTreeMap::new(),
    }
}

fn json(img: &MetadataImage) -> serde_json::Value {
    serde_json::to_value(img).expect("image serializes")
}

#[test]
fn brokers_register_fence_unfence() {
    let mut img = MetadataImage::default();
    let reg = |epoch| MetadataCommand::RegisterBroker {
        info: broker(1),
        epoch,
    };
    assert_eq!(apply_command(&mut img, &reg(5)), Ok(CommandResult::Done));
    assert!(
        img.fenced_brokers.contains(&BrokerId(1)),
        "registration fences"
    );
    apply_command(
        &mut img,
        &MetadataCommand::UnfenceBroker { id: BrokerId(1) },
    )
    .expect("unfence");
    assert!(img.fenced_brokers.is_empty());
    assert!(matches!(
        apply_command(&mut img, &reg(4)),
        Err(CommandError::StaleBrokerEpoch { .. })
    ));
    assert!(
        img.fenced_brokers.is_empty(),
        "a refused command changes nothing"
    );
    assert_eq!(
        apply_command(&mut img, &MetadataCommand::FenceBroker { id: BrokerId(9) }),
        Err(CommandError::UnknownBroker(BrokerId(9)))
    );
    apply_command(&mut img, &MetadataCommand::FenceBroker { id: BrokerId(1) }).expect("fence");
    assert_eq!(img.broker_epochs[&BrokerId(1)], 5);
}

#[test]
fn a_batch_of_partition_changes_applies_each_on_its_own() {
    let mut img = MetadataImage::default();
    apply_command(
        &mut img,
        &MetadataCommand::CreateTopic {
            topic: topic("t", 3),
        },
    )
    .expect("create");
    let change = |partition, pe, le, leader| PartitionChange {
        topic: "t".into(),
        partition,
        state: part(&[1, 2], leader, le, pe),
    };
    let batch = MetadataCommand::ChangePartitions {
        changes: vec![
            change(0, 1, 1, 2),
            // Stale: a leader change without a new leader epoch.
            change(1, 1, 0, 2),
            change(2, 1, 1, 2),
            PartitionChange {
                topic: "gone".into(),
                partition: 0,
                state: part(&[1, 2], 2, 1, 1),
            },
        ],
    };
    assert_eq!(
        apply_command(&mut img, &batch),
        Ok(CommandResult::Changes {
            refused: vec![1, 3]
        })
    );
    let leaders: Vec<i32> = img.topics["t"]
        .partitions
        .iter()
        .map(|p| p.leader.0)
        .collect();
    assert_eq!(leaders[0], 2);
    assert_eq!(leaders[2], 2);
    assert_eq!(
        img.topics["t"].partitions[1].partition_epoch, 0,
        "the refused one is untouched"
    );
    let too_many = MetadataCommand::ChangePartitions {
        changes: vec![change(0, 9, 9, 1); MAX_CHANGES_PER_ENTRY + 1],
    };
    let before = json(&img);
    assert!(matches!(
        apply_command(&mut img, &too_many),
        Err(CommandError::Invalid(_))
    ));
    assert_eq!(before, json(&img));
}

#[test]
fn topics_and_partitions() {
    let mut img = MetadataImage::default();
    let create = MetadataCommand::CreateTopic {
        topic: topic("t", 2),
    };
    apply_command(&mut img, &create).expect("create");
    assert_eq!(
        apply_command(&mut img, &create),
        Err(CommandError::TopicExists("t".into()))
    );
    let mut bad = topic("uu", 1);
    bad.partitions[0].isr.push(BrokerId(7));
    assert!(matches!(
        apply_command(&mut img, &MetadataCommand::CreateTopic { topic: bad }),
        Err(CommandError::Invalid(_))
    ));
    let mut bad_name = topic("a b", 1);
    bad_name.id = Uuid::from_u128(99);
    assert!(matches!(
        apply_command(&mut img, &MetadataCommand::CreateTopic { topic: bad_name }),
        Err(CommandError::Invalid(_))
    ));
    let add = MetadataCommand::AddPartitions {
        name: "t".into(),
        partitions: vec![part(&[2, 1], 2, 0, 0)],
    };
    apply_command(&mut img, &add).expect("add");
    assert_eq!(img.topics["t"].partitions.len(), 3);

    let change = |pe, le, leader| MetadataCommand::ChangePartition {
        topic: "t".into(),
        partition: 0,
        state: part(&[1, 2], leader, le, pe),
    };
    apply_command(&mut img, &change(1, 1, 2)).expect("leader change with new epochs");
    let before = json(&img);
    for stale in [change(1, 1, 2), change(2, 0, 2), change(2, 1, 1)] {
        assert!(matches!(
            apply_command(&mut img, &stale),
            Err(CommandError::StalePartitionState { .. })
        ));
    }
    assert_eq!(before, json(&img));
    let mut shrink = part(&[1, 2], 2, 1, 2);
    shrink.isr = vec![BrokerId(2)];
    apply_command(
        &mut img,
        &MetadataCommand::ChangePartition {
            topic: "t".into(),
            partition: 0,
            state: shrink,
        },
    )
    .expect("isr shrink");
    assert!(matches!(
        apply_command(
            &mut img,
            &MetadataCommand::ChangePartition {
                topic: "t".into(),
                partition: 5,
                state: part(&[1], 1, 9, 9)
            }
        ),
        Err(CommandError::UnknownPartition { .. })
    ));
    let mut cfg = BTreeMap::new();
    cfg.insert("retention.ms".to_string(), "1000".to_string());
    apply_command(
        &mut img,
        &MetadataCommand::SetTopicConfigs {
            name: "t".into(),
            configs: cfg.clone(),
        },
    )
    .expect("configs");
    assert_eq!(img.topics["t"].configs, cfg);
    apply_command(&mut img, &MetadataCommand::DeleteTopic { name: "t".into() }).expect("delete");
    assert_eq!(
        apply_command(&mut img, &MetadataCommand::DeleteTopic { name: "t".into() }),
        Err(CommandError::UnknownTopic("t".into()))
    );
}

#[test]
fn producer_ids_and_cluster_id() {
    let mut img = MetadataImage {
        next_producer_id: 1000,
        ..Default::default()
    };
    let alloc = |count| MetadataCommand::AllocateProducerIds { count };
    assert_eq!(
        apply_command(&mut img, &alloc(10)),
        Ok(CommandResult::ProducerIds { first: 1000 })
    );
    assert_eq!(
        apply_command(&mut img, &alloc(1)),
        Ok(CommandResult::ProducerIds { first: 1010 })
    );
    assert!(apply_command(&mut img, &alloc(0)).is_err());
    img.next_producer_id = i64::MAX - 1;
    assert!(apply_command(&mut img, &alloc(5)).is_err());
    assert_eq!(img.next_producer_id, i64::MAX - 1);

    let set = |id: &str| MetadataCommand::SetClusterId(id.into());
    apply_command(&mut img, &set("abc")).expect("set");
    apply_command(&mut img, &set("abc")).expect("same id again");
    assert!(matches!(
        apply_command(&mut img, &set("xyz")),
        Err(CommandError::ClusterIdMismatch { .. })
    ));
    assert!(apply_command(&mut img, &set("")).is_err());
}

#[test]
fn apply_is_deterministic() {
    let cmds = vec![
        MetadataCommand::SetClusterId("c".into()),
        MetadataCommand::RegisterBroker {
            info: broker(1),
            epoch: 1,
        },
        MetadataCommand::RegisterBroker {
            info: broker(2),
            epoch: 1,
        },
        MetadataCommand::UnfenceBroker { id: BrokerId(2) },
        MetadataCommand::CreateTopic {
            topic: topic("x", 3),
        },
        MetadataCommand::DeleteTopic {
            name: "nope".into(),
        },
        MetadataCommand::AllocateProducerIds { count: 3 },
    ];
    let run = || {
        let mut img = MetadataImage::default();
        let results: Vec<_> = cmds.iter().map(|c| apply_command(&mut img, c)).collect();
        (json(&img), results)
    };
    assert_eq!(run(), run());
    let wire = serde_json::to_string(&cmds).expect("serialize");
    let back: Vec<MetadataCommand> = serde_json::from_str(&wire).expect("deserialize");
    assert_eq!(back, cmds);
}
