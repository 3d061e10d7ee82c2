//! The collector's picture of the cluster at one instant. Pages and `/metrics` read only
//! this (never the cluster), so a page view or a scrape costs the same with 10 brokers or
//! 10,000 partitions. The per-object types are `rill_web::model`'s, which the views render.

use std::collections::BTreeMap;

use serde::Serialize;

pub use rill_web::model::{
    BrokerInfo, GroupInfo, GroupStatus, MemberInfo, PartitionInfo, PartitionLag, TopicInfo,
};

/// What the collector saw in one cycle.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Snapshot {
    /// When it was taken, ms since the epoch (0: nothing collected yet).
    pub taken_at_ms: i64,
    /// How long the cycle took.
    pub cycle_ms: u64,
    /// Cluster id.
    pub cluster_id: Option<String>,
    /// Active controller.
    pub controller_id: Option<i32>,
    /// Brokers by id (those Metadata lists: registered and not fenced).
    pub brokers: Vec<BrokerInfo>,
    /// Registered brokers that are fenced (down, or shutting down), from DescribeCluster v2
    /// (KIP-1073); empty for clusters that cannot say.
    pub fenced_brokers: Vec<BrokerInfo>,
    /// Topics by name.
    pub topics: Vec<TopicInfo>,
    /// Consumer groups by id.
    pub groups: Vec<GroupInfo>,
    /// Parts of the cycle that failed without failing it (a group that could not be
    /// described, log dirs of one broker, ...).
    pub warnings: Vec<String>,
}

impl Snapshot {
    /// The topic named `name`.
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.topics.get(i))
    }

    /// The group named `id`.
    pub fn group(&self, id: &str) -> Option<&GroupInfo> {
        self.groups.iter().find(|g| g.group_id == id)
    }

    /// Cluster-wide partition counts: (total, under-replicated, offline, under-min-ISR).
    pub fn partition_totals(&self) -> (usize, usize, usize, usize) {
        self.topics.iter().fold((0, 0, 0, 0), |(n, u, o, m), t| {
            (
                n + t.partitions.len(),
                u + t.under_replicated(),
                o + t.offline(),
                m + t.under_min_isr(),
            )
        })
    }

    /// High watermark of each partition, for lag computations.
    pub fn end_offsets(&self) -> BTreeMap<(String, i32), i64> {
        self.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| ((t.name.clone(), p.partition), p.latest))
            })
            .collect()
    }
}

/// Whether the last collection worked.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Health {
    /// The last cycle reached the cluster.
    pub reachable: bool,
    /// The last cycle's error, when it failed.
    pub error: Option<String>,
    /// When the last cycle ended, ms since the epoch.
    pub checked_at_ms: i64,
}
