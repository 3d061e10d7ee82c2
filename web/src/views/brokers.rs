//! `/brokers`: the broker list.

use askama::Template;
use serde::Serialize;

use crate::model::BrokerInfo;
use crate::Layout;

/// `/brokers`.
#[derive(Debug, Template, Serialize)]
#[template(path = "brokers.html")]
pub struct BrokersPage {
    /// Frame.
    pub layout: Layout,
    /// Brokers.
    pub brokers: Vec<BrokerInfo>,
    /// The metadata quorum as its leader describes it (DescribeQuorum), when it answered.
    pub quorum: Option<QuorumView>,
    /// Why the quorum could not be described.
    pub quorum_error: Option<String>,
}

/// The metadata quorum (KIP-595): leader, epoch, high watermark, each member's progress.
#[derive(Debug, Clone, Serialize)]
pub struct QuorumView {
    /// The active controller.
    pub leader_id: i32,
    /// The leader's epoch.
    pub leader_epoch: i32,
    /// The quorum's high watermark.
    pub high_watermark: i64,
    /// Voters (the leader first), then observers.
    pub members: Vec<QuorumMemberView>,
}

/// One quorum member; `None` where the leader does not know (shown as "unknown").
#[derive(Debug, Clone, Serialize)]
pub struct QuorumMemberView {
    /// Node id.
    pub node_id: i32,
    /// `leader`, `follower` or `observer`.
    pub role: &'static str,
    /// Its log end offset.
    pub log_end_offset: Option<i64>,
    /// Entries behind the leader.
    pub lag: Option<i64>,
    /// Milliseconds since it last fetched (accepted the leader's appends).
    pub last_fetch_age_ms: Option<i64>,
}

impl QuorumMemberView {
    /// A figure, or "unknown".
    pub fn shown(v: &Option<i64>) -> String {
        v.map_or_else(|| "unknown".to_string(), |v| v.to_string())
    }
}
