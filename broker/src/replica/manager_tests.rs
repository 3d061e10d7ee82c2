//! The replica manager applies only what changed between images: whatever images it is
//! given (some skipped, as the applier coalesces them; some twice; some late, after newer
//! ones), the partitions it hosts end up exactly those a fresh manager hosts from the newest
//! image alone, with the same topic ids, leader epochs and leadership, and only their
//! directories on disk.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proptest::prelude::*;

use super::ReplicaManager;
use crate::config::BrokerConfig;
use crate::metadata::{BrokerInfo, MetadataImage, PartitionMeta, TopicMeta};
use crate::types::{BrokerId, LeaderEpoch};

const ME: BrokerId = BrokerId(1);

fn manager(dir: &std::path::Path) -> ReplicaManager {
    let overrides = [format!("log.dirs={}", dir.display()), "node.id=1".into()];
    let cfg = match BrokerConfig::load(None, &overrides) {
        Ok(c) => Arc::new(c),
        Err(e) => panic!("{e}"),
    };
    let metrics = match crate::metrics::Metrics::new() {
        Ok(m) => Arc::new(m),
        Err(e) => panic!("{e}"),
    };
    let topic_configs = Arc::new(crate::metadata::TopicConfigs::new(cfg.raw.clone()));
    ReplicaManager::new(
        cfg,
        metrics,
        topic_configs,
        Default::default(),
        crate::log::FileCache::new(crate::log::MIN_OPEN_FILES),
    )
}

/// One metadata change.
#[derive(Debug, Clone)]
enum Change {
    /// Creates topic `t{0}` (if absent) with `1` partitions; on this node when `2`.
    Create(u8, usize, bool),
    /// Deletes topic `t{0}`.
    Delete(u8),
    /// Deletes and re-creates `t{0}` under a new id in one step.
    Recreate(u8),
    /// Adds a partition to `t{0}`.
    Grow(u8),
    /// Moves leadership of partition 0 of `t{0}` between brokers 1 and 2 (a new epoch).
    Elect(u8),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (0u8..5, 1usize..4, any::<bool>()).prop_map(|(t, n, here)| Change::Create(t, n, here)),
        1 => (0u8..5).prop_map(Change::Delete),
        1 => (0u8..5).prop_map(Change::Recreate),
        2 => (0u8..5).prop_map(Change::Grow),
        3 => (0u8..5).prop_map(Change::Elect),
    ]
}

fn partition(here: bool) -> PartitionMeta {
    let replicas = if here {
        vec![ME, BrokerId(2)]
    } else {
        vec![BrokerId(2), BrokerId(3)]
    };
    PartitionMeta {
        leader: replicas[0],
        isr: replicas.clone(),
        replicas,
        leader_epoch: LeaderEpoch(0),
        partition_epoch: 0,
    }
}

/// The images a sequence of changes produces, built as the state machine builds them: each
/// shares every topic it did not change with the one before (`Arc::make_mut`).
fn images(changes: &[Change]) -> Vec<Arc<MetadataImage>> {
    let mut img = MetadataImage::default();
    for id in 1..=3 {
        img.brokers.insert(
            BrokerId(id),
            BrokerInfo {
                endpoints: Vec::new(),
                id: BrokerId(id),
                host: "127.0.0.1".into(),
                port: 1,
                rack: None,
                max_partitions: None,
            },
        );
    }
    let mut next_id = 1u128;
    let mut out = Vec::new();
    for c in changes {
        img.version += 1;
        let name = |t: &u8| format!("t{t}");
        match c {
            Change::Create(t, n, here) => {
                if let std::collections::btree_map::Entry::Vacant(e) = img.topics.entry(name(t)) {
                    next_id += 1;
                    e.insert(Arc::new(TopicMeta {
                        name: name(t),
                        id: uuid::Uuid::from_u128(next_id),
                        partitions: (0..*n).map(|_| partition(*here)).collect(),
                        configs: BTreeMap::new(),
                    }));
                }
            }
            Change::Delete(t) => {
                img.topics.remove(&name(t));
            }
            Change::Recreate(t) => {
                if let Some(old) = img.topics.get(&name(t)) {
                    next_id += 1;
                    let fresh = TopicMeta {
                        id: uuid::Uuid::from_u128(next_id),
                        ..(**old).clone()
                    };
                    img.topics.insert(name(t), Arc::new(fresh));
                }
            }
            Change::Grow(t) => {
                if let Some(topic) = img.topics.get_mut(&name(t)) {
                    let here = topic.partitions[0].replicas.contains(&ME);
                    Arc::make_mut(topic).partitions.push(partition(here));
                }
            }
            Change::Elect(t) => {
                if let Some(topic) = img.topics.get_mut(&name(t)) {
                    let p = &mut Arc::make_mut(topic).partitions[0];
                    let other = p.replicas.iter().copied().find(|r| *r != p.leader);
                    if let Some(other) = other {
                        p.leader = other;
                        p.leader_epoch = LeaderEpoch(p.leader_epoch.0 + 1);
                        p.partition_epoch += 1;
                    }
                }
            }
        }
        out.push(Arc::new(img.clone()));
    }
    out
}

/// What a manager hosts: each partition's topic id, leader epoch and leadership.
fn hosted(m: &ReplicaManager) -> BTreeMap<String, (uuid::Uuid, i32, bool)> {
    m.all()
        .iter()
        .map(|p| {
            (
                p.tp.to_string(),
                (p.topic_id, p.leader_epoch().0, p.is_leader()),
            )
        })
        .collect()
}

/// The partition directories in a log dir.
fn dirs(dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_delivery_of_the_images_ends_where_the_newest_image_alone_does(
        changes in prop::collection::vec(change(), 1..30),
        // Per image: 0 skipped, 1 applied, 2 applied twice, 3 applied and again after the next.
        delivery in prop::collection::vec(0u8..4, 30),
        // An older image delivered after the newest.
        stale in 0usize..30,
    ) {
        let imgs = images(&changes);
        let newest = imgs.last().cloned().expect("at least one change");
        let a_dir = tempfile::tempdir().expect("tmp");
        let a = manager(a_dir.path());
        let mut late: Option<Arc<MetadataImage>> = None;
        for (img, how) in imgs.iter().zip(delivery.iter().copied()) {
            if how > 0 {
                a.apply(img);
            }
            if let Some(old) = late.take() {
                a.apply(&old);
            }
            match how {
                2 => a.apply(img),
                3 => late = Some(img.clone()),
                _ => {}
            }
        }
        // The applier always delivers the newest image in the end.
        a.apply(&newest);
        if let Some(old) = late {
            a.apply(&old);
        }
        a.apply(&imgs[stale % imgs.len()]);
        let b_dir = tempfile::tempdir().expect("tmp");
        let b = manager(b_dir.path());
        b.apply(&newest);
        prop_assert_eq!(hosted(&a), hosted(&b));
        prop_assert_eq!(dirs(a_dir.path()), dirs(b_dir.path()));
        let expected: usize = newest
            .topics
            .values()
            .map(|t| t.partitions.iter().filter(|p| p.replicas.contains(&ME)).count())
            .sum();
        prop_assert_eq!(hosted(&a).len(), expected);
    }
}
