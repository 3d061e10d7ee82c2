//! The collector's picture of the cluster at one instant. Pages and `/metrics` read only
//! this (never the cluster), so a page view or a scrape costs the same with 10 brokers or
//! 10,000 partitions. The per-object types are `rill_web::model`'s, which the views render.

use std::collections::BTreeMap;

use serde::Serialize;

pub use rill_web::model::{
    BrokerInfo, BrokerState, Forecast, GroupInfo, GroupStatus, LagBasis, MemberInfo, PartitionInfo,
    PartitionLag, TimeLagMethod, TopicInfo,
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
    /// Brokers by id (those Metadata lists: registered and not fenced); one that did not
    /// answer this cycle is here with state `unreachable`.
    pub brokers: Vec<BrokerInfo>,
    /// Brokers that are down: fenced (DescribeCluster v2, KIP-1073), or seen in an earlier
    /// cycle and now in neither list (state `unreachable`), with their last known figures.
    pub fenced_brokers: Vec<BrokerInfo>,
    /// Topics by name.
    pub topics: Vec<TopicInfo>,
    /// Consumer groups by id.
    pub groups: Vec<GroupInfo>,
    /// Parts of the cycle that failed without failing it (a group that could not be
    /// described, log dirs of one broker, ...).
    pub warnings: Vec<String>,
    /// Failed collection requests by kind (`ListOffsets`, `DescribeGroups`, ...) since the
    /// console started.
    pub failures: BTreeMap<String, u64>,
}

impl Snapshot {
    /// The topic named `name`.
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.topics.get(i))
    }

    /// Every broker, up or down, by id.
    pub fn all_brokers(&self) -> impl Iterator<Item = &BrokerInfo> {
        self.brokers.iter().chain(&self.fenced_brokers)
    }

    /// Brokers that did not answer (fenced or unreachable).
    pub fn down_brokers(&self) -> Vec<&BrokerInfo> {
        self.all_brokers()
            .filter(|b| b.state != BrokerState::Up)
            .collect()
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
