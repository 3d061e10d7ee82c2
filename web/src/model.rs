//! The data the collector gathers and the pages render: brokers, topics, partitions,
//! groups and their lag. It lives here, beside the views, because the views render it
//! as it is (HTML through askama, JSON through serde); the collector in `rill-admin`
//! fills it.

use serde::Serialize;

/// A broker as the collector saw it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Node id.
    pub id: i32,
    /// `host:port` it advertises.
    pub address: String,
    /// Rack, when configured.
    pub rack: Option<String>,
    /// True for the active controller.
    pub controller: bool,
    /// Replicas it hosts.
    pub partitions: usize,
    /// Partitions it leads.
    pub leaders: usize,
    /// Bytes in its log dirs (sum of partition sizes), when DescribeLogDirs answered.
    pub disk_bytes: Option<i64>,
}

/// One partition.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition index.
    pub partition: i32,
    /// Leader node id, -1 when offline.
    pub leader: i32,
    /// Replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Log start offset (-1 when unknown).
    pub earliest: i64,
    /// High watermark (-1 when unknown).
    pub latest: i64,
    /// Size on the leader in bytes, when known.
    pub size: Option<i64>,
}

impl PartitionInfo {
    /// Fewer in-sync replicas than replicas.
    pub fn under_replicated(&self) -> bool {
        self.isr.len() < self.replicas.len()
    }

    /// No leader.
    pub fn offline(&self) -> bool {
        self.leader < 0
    }

    /// The leader is the first replica.
    pub fn leader_is_preferred(&self) -> bool {
        self.leader >= 0 && self.replicas.first() == Some(&self.leader)
    }
}

/// One topic.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Internal topics (`__consumer_offsets`).
    pub internal: bool,
    /// Partitions by index.
    pub partitions: Vec<PartitionInfo>,
    /// `min.insync.replicas` when DescribeConfigs answered.
    pub min_insync_replicas: Option<i64>,
    /// `cleanup.policy` when DescribeConfigs answered.
    pub cleanup_policy: Option<String>,
}

impl TopicInfo {
    /// Replication factor (replicas of partition 0).
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }

    /// Partitions whose ISR is below `min.insync.replicas`.
    pub fn under_min_isr(&self) -> usize {
        let min = self.min_insync_replicas.unwrap_or(1);
        self.partitions
            .iter()
            .filter(|p| (p.isr.len() as i64) < min)
            .count()
    }

    /// Under-replicated partitions.
    pub fn under_replicated(&self) -> usize {
        self.partitions
            .iter()
            .filter(|p| p.under_replicated())
            .count()
    }

    /// Partitions without a leader.
    pub fn offline(&self) -> usize {
        self.partitions.iter().filter(|p| p.offline()).count()
    }

    /// Sum of partition sizes, when every size is known.
    pub fn size(&self) -> Option<i64> {
        self.partitions.iter().map(|p| p.size).sum()
    }

    /// Records the offsets span (Σ latest − earliest); approximate with compaction.
    pub fn messages(&self) -> i64 {
        self.partitions
            .iter()
            .filter(|p| p.latest >= 0 && p.earliest >= 0)
            .map(|p| p.latest - p.earliest)
            .sum()
    }
}

/// A consumer group member.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MemberInfo {
    /// Member id.
    pub member_id: String,
    /// Static instance id, if any.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub host: String,
    /// Assigned partitions as `topic-partition` pairs.
    pub assignment: Vec<(String, i32)>,
}

/// Lag of one group on one partition.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset, -1 when nothing is committed.
    pub committed: i64,
    /// The partition's high watermark (-1 when unknown).
    pub end: i64,
    /// end − committed (≥ 0), -1 when nothing is committed (kafka_exporter's rule).
    pub lag: i64,
    /// Time lag in seconds from the end-offset history, `None` with too little history.
    pub lag_seconds: Option<f64>,
    /// Member id owning it, if assigned.
    pub owner: Option<String>,
}

/// Burrow-style evaluation of a group.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum GroupStatus {
    /// Caught up or catching up, under the thresholds.
    Ok,
    /// Lag above a threshold, or growing through the whole window.
    Lagging,
    /// Members are there but the committed offsets do not move while there is lag.
    Stalled,
    /// Nobody consumes (no members) and the committed offsets do not move while there is lag.
    Stopped,
}

impl GroupStatus {
    /// Lowercase name (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Ok => "ok",
            GroupStatus::Lagging => "lagging",
            GroupStatus::Stalled => "stalled",
            GroupStatus::Stopped => "stopped",
        }
    }

    /// Numeric code for Prometheus (Burrow's order: higher is worse).
    pub fn code(self) -> i64 {
        match self {
            GroupStatus::Ok => 1,
            GroupStatus::Lagging => 2,
            GroupStatus::Stalled => 3,
            GroupStatus::Stopped => 4,
        }
    }
}

/// One consumer group.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupInfo {
    /// Group id.
    pub group_id: String,
    /// State (`Stable`, `Empty`, ...).
    pub state: String,
    /// Protocol type (`consumer`, or empty for offsets-only groups).
    pub protocol_type: String,
    /// Assignor.
    pub protocol: String,
    /// Coordinator node id.
    pub coordinator: i32,
    /// Members.
    pub members: Vec<MemberInfo>,
    /// Per-partition lag, sorted by topic and partition.
    pub partitions: Vec<PartitionLag>,
    /// Evaluated status.
    pub status: GroupStatus,
    /// Why the status is what it is.
    pub status_reason: String,
}

impl GroupInfo {
    /// Topics the group has offsets for or is assigned.
    pub fn topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self.partitions.iter().map(|p| p.topic.clone()).collect();
        t.dedup();
        t
    }

    /// Σ lag over partitions with a commit.
    pub fn total_lag(&self) -> i64 {
        self.partitions
            .iter()
            .filter(|p| p.lag >= 0)
            .map(|p| p.lag)
            .sum()
    }

    /// Largest lag.
    pub fn max_lag(&self) -> i64 {
        self.partitions
            .iter()
            .map(|p| p.lag)
            .max()
            .unwrap_or(0)
            .max(0)
    }

    /// Largest time lag in seconds.
    pub fn max_lag_seconds(&self) -> Option<f64> {
        self.partitions
            .iter()
            .filter_map(|p| p.lag_seconds)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
    }
}

/// Display helpers the templates call.
impl PartitionInfo {
    /// Replicas as `1,2,3`.
    pub fn replicas_text(&self) -> String {
        join(&self.replicas)
    }

    /// ISR as `1,2,3`.
    pub fn isr_text(&self) -> String {
        join(&self.isr)
    }

    /// Size for people.
    pub fn size_text(&self) -> String {
        crate::format::bytes(self.size)
    }
}

impl TopicInfo {
    /// Size for people.
    pub fn size_text(&self) -> String {
        crate::format::bytes(self.size())
    }
}

impl BrokerInfo {
    /// Disk use for people.
    pub fn disk_text(&self) -> String {
        crate::format::bytes(self.disk_bytes)
    }

    /// Rack or `-`.
    pub fn rack_text(&self) -> &str {
        self.rack.as_deref().unwrap_or("-")
    }
}

impl PartitionLag {
    /// Committed offset or `-`.
    pub fn committed_text(&self) -> String {
        if self.committed < 0 {
            "-".into()
        } else {
            self.committed.to_string()
        }
    }

    /// Lag or `-` (nothing committed).
    pub fn lag_text(&self) -> String {
        if self.lag < 0 {
            "-".into()
        } else {
            self.lag.to_string()
        }
    }

    /// Time lag in seconds or `-`.
    pub fn lag_seconds_text(&self) -> String {
        self.lag_seconds
            .map_or_else(|| "-".into(), |s| format!("{s:.1}"))
    }

    /// Owning member or `-`.
    pub fn owner_text(&self) -> &str {
        self.owner.as_deref().unwrap_or("-")
    }
}

impl MemberInfo {
    /// Assignment as `topic-0, topic-1`.
    pub fn assignment_text(&self) -> String {
        self.assignment
            .iter()
            .map(|(t, p)| format!("{t}-{p}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl GroupInfo {
    /// The group id as a URL path segment.
    pub fn url_id(&self) -> String {
        crate::format::path_segment(&self.group_id)
    }

    /// Max time lag for people.
    pub fn max_lag_seconds_text(&self) -> String {
        self.max_lag_seconds()
            .map_or_else(|| "-".into(), |s| format!("{s:.1}"))
    }

    /// Topics as `a, b`.
    pub fn topics_text(&self) -> String {
        self.topics().join(", ")
    }
}

fn join(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}
