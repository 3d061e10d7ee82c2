//! The reassignment page's view model (`/reassign`): plan form, progress of the
//! reassignments in flight, preferred leader elections.

use askama::Template;
use serde::Serialize;

use crate::{FormState, Layout};

/// Copy progress of one adding replica.
#[derive(Debug, Clone, Serialize)]
pub struct ProgressRow {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The replica being added.
    pub replica: i32,
    /// Replicas the partition has now (target followed by those being removed).
    pub replicas: Vec<i32>,
    /// Bytes the adding replica holds.
    pub copied: i64,
    /// Bytes the leader holds.
    pub total: i64,
    /// `total - copied`, at least 0.
    pub remaining: i64,
    /// Copy rate since the console first saw this replica, bytes/s (none yet).
    pub rate: Option<f64>,
    /// Seconds left at that rate.
    pub eta_seconds: Option<f64>,
    /// `copied / total` in percent (0 when the leader holds nothing).
    pub percent: f64,
}

/// One partition of the plan last executed from the console.
#[derive(Debug, Clone, Serialize)]
pub struct PlanState {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The target replicas.
    pub replicas: Vec<i32>,
    /// `complete`, `in progress`, `cancelled` or `incomplete`.
    pub state: String,
    /// Copied so far, percent: 100 once complete, else the least of its adding replicas
    /// (none while unknown).
    pub percent: Option<f64>,
}

/// `/reassign`.
#[derive(Debug, Template, Serialize)]
#[template(path = "reassign.html")]
pub struct ReassignPage {
    /// Frame.
    pub layout: Layout,
    /// Topic names to choose from.
    pub topics: Vec<String>,
    /// Broker ids to choose from.
    pub brokers: Vec<i32>,
    /// The plan in the editor (Kafka's JSON), generated or as submitted.
    pub plan: String,
    /// The current assignment of the plan's partitions (for a rollback), when generated.
    pub current: String,
    /// The last executed plan's partitions and their states.
    pub executed: Vec<PlanState>,
    /// `none`, `in-progress`, `completed` or `cancelled`.
    pub status: String,
    /// Throttle of the running plan, bytes/s.
    pub throttle: Option<u64>,
    /// Reassignments in progress in the cluster, one row per adding replica.
    pub progress: Vec<ProgressRow>,
    /// Why the progress is missing, if it is.
    pub progress_error: Option<String>,
    /// Where the progress came from: `http` (brokers' `/api/v1/reassignments`) or
    /// `log-dirs` (DescribeLogDirs sizes).
    pub progress_source: String,
    /// The form that failed, if any.
    pub form: FormState,
    /// Set while a cancel waits for its confirmation: the partitions it would revert.
    pub cancel_confirm: Option<Vec<String>>,
}
