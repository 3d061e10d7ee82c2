//! `/`: the cluster at a glance.

use askama::Template;
use serde::Serialize;

use crate::model::BrokerInfo;
use crate::Layout;

/// Cluster-wide counts on the overview.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Totals {
    /// Brokers in the metadata.
    pub brokers: usize,
    /// Topics (internal ones included).
    pub topics: usize,
    /// Partitions.
    pub partitions: usize,
    /// Partitions whose ISR is smaller than their replica set.
    pub under_replicated: usize,
    /// Partitions without a leader.
    pub offline: usize,
    /// Partitions whose ISR is below `min.insync.replicas`.
    pub under_min_isr: usize,
    /// Consumer groups.
    pub groups: usize,
    /// Share of partitions led by their preferred (first) replica, in percent.
    pub preferred_leaders_pct: f64,
    /// How far the busiest broker's leader count is above the mean, in percent (CMAK's
    /// leader skew; 0 = perfectly even).
    pub leader_skew_pct: f64,
    /// The same for replica counts.
    pub replica_skew_pct: f64,
}

impl Totals {
    /// Percent with one decimal.
    pub fn pct(v: &f64) -> String {
        format!("{v:.1}%")
    }
}

/// `/`: the cluster at a glance.
#[derive(Debug, Template, Serialize)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    /// Frame.
    pub layout: Layout,
    /// Cluster id.
    pub cluster_id: Option<String>,
    /// Active controller.
    pub controller_id: Option<i32>,
    /// Brokers.
    pub brokers: Vec<BrokerInfo>,
    /// Registered brokers that are fenced (down, or shutting down).
    pub fenced_brokers: Vec<BrokerInfo>,
    /// Counts.
    pub totals: Totals,
}
