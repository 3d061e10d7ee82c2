//! Metadata images for unit tests (election, liveness, reassignment, request handlers).

use std::collections::BTreeMap;

use super::{BrokerInfo, MetadataImage, PartitionMeta, TopicMeta};
use crate::types::{BrokerId, LeaderEpoch};

/// Broker ids.
pub fn ids(v: &[i32]) -> Vec<BrokerId> {
    v.iter().map(|&i| BrokerId(i)).collect()
}

/// Brokers 1..=`brokers` registered, `fenced` of them fenced, and topic `t` with `partitions`.
pub fn image(brokers: i32, fenced: &[i32], partitions: Vec<PartitionMeta>) -> MetadataImage {
    let mut img = MetadataImage::default();
    for id in 1..=brokers {
        let info = BrokerInfo {
            endpoints: Vec::new(),
            id: BrokerId(id),
            host: "h".into(),
            port: 1,
            rack: None,
            max_partitions: None,
        };
        img.brokers.insert(BrokerId(id), info);
    }
    img.fenced_brokers = ids(fenced).into_iter().collect();
    let topic = TopicMeta {
        name: "t".into(),
        id: uuid::Uuid::nil(),
        partitions,
        configs: BTreeMap::new(),
    };
    img.topics.insert("t".into(), std::sync::Arc::new(topic));
    img
}

/// A partition with these replicas, ISR and leader (leader epoch 4, partition epoch 7).
pub fn part(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionMeta {
    PartitionMeta {
        replicas: ids(replicas),
        isr: ids(isr),
        leader: BrokerId(leader),
        leader_epoch: LeaderEpoch(4),
        partition_epoch: 7,
    }
}
