//! The data the collector gathers and the pages render: brokers, topics, partitions,
//! groups and their lag. It lives here, beside the views, because the views render it
//! as it is (HTML through askama, JSON through serde); the collector in `rill-admin`
//! fills it.

use serde::Serialize;

/// Whether a broker answered the last collection.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum BrokerState {
    /// Registered, unfenced and it answered.
    #[default]
    Up,
    /// Registered but fenced by the controller (down, or shutting down).
    Fenced,
    /// It did not answer the console (or has left the metadata since it was last seen):
    /// its figures are the last ones measured.
    Unreachable,
}

impl BrokerState {
    /// Lowercase name (as in JSON and CSS classes).
    pub fn as_str(self) -> &'static str {
        match self {
            BrokerState::Up => "up",
            BrokerState::Fenced => "fenced",
            BrokerState::Unreachable => "unreachable",
        }
    }
}

/// A broker as the collector saw it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Node id.
    pub id: i32,
    /// Up, fenced or unreachable.
    pub state: BrokerState,
    /// When it last answered (ms since the epoch; 0 = never seen answering).
    pub last_seen_ms: i64,
    /// Why it is not up, when it is not.
    pub error: Option<String>,
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

    /// A warning when `min.insync.replicas` exceeds the replication factor: every acks=all
    /// produce then fails with NOT_ENOUGH_REPLICAS.
    pub fn min_isr_warning(&self) -> Option<String> {
        let min = self.min_insync_replicas?;
        let rf = self.replication_factor() as i64;
        (rf > 0 && min > rf).then(|| {
            format!(
                "min.insync.replicas is {min} but the replication factor is {rf}: every acks=all produce to {} fails with NOT_ENOUGH_REPLICAS until one of them changes",
                self.name
            )
        })
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
    /// Assigned partitions as `topic-partition` pairs (for a consumer group: what it owns).
    pub assignment: Vec<(String, i32)>,
    /// For a consumer group (KIP-848): what the coordinator wants it to own.
    pub target_assignment: Option<Vec<(String, i32)>>,
    /// For a consumer group: its member epoch.
    pub member_epoch: Option<i32>,
    /// `consumer`, or `classic` for a member speaking the classic protocol.
    pub member_protocol: String,
}

/// What a partition's lag counts from.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LagBasis {
    /// end − committed offset.
    #[default]
    Committed,
    /// Nothing is committed: the backlog the group faces from the log start (end − log
    /// start), which is what a consumer with `auto.offset.reset=earliest` reads.
    LogStart,
    /// Not measured: the end offset (or, without a commit, the log start) is unknown.
    Unknown,
}

impl LagBasis {
    /// Snake-case name (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            LagBasis::Committed => "committed",
            LagBasis::LogStart => "log_start",
            LagBasis::Unknown => "unknown",
        }
    }
}

/// How a time lag was obtained.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TimeLagMethod {
    /// The committed offset is the end offset: 0.
    CaughtUp,
    /// Interpolated in the console's own end-offset history, which covers the offset.
    Interpolated,
    /// now − the timestamp of the record at the offset (a one-record fetch), for offsets
    /// older than the history.
    RecordTimestamp,
}

impl TimeLagMethod {
    /// What people read beside the number.
    pub fn label(self) -> &'static str {
        match self {
            TimeLagMethod::CaughtUp => "caught up",
            TimeLagMethod::Interpolated => "interpolated",
            TimeLagMethod::RecordTimestamp => "record timestamp",
        }
    }
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
    /// The partition's log start offset (-1 when unknown).
    pub log_start: i64,
    /// Messages behind (≥ 0) counted from `basis`; -1 when unknown.
    pub lag: i64,
    /// The partition's last stable offset (the end a read_committed consumer sees: it stops
    /// at the first open transaction); -1 when unknown.
    pub stable_end: i64,
    /// Messages a read_committed consumer is behind (the last stable offset minus the
    /// committed offset, from `basis`); -1 when unknown. Below `lag` while transactions are
    /// open: their records cannot be read yet, so they are not counted against the group.
    pub stable_lag: i64,
    /// What `lag` counts from.
    pub basis: LagBasis,
    /// Time lag in seconds, `None` when it could not be measured.
    pub lag_seconds: Option<f64>,
    /// How `lag_seconds` was obtained.
    pub lag_seconds_method: Option<TimeLagMethod>,
    /// This partition's status.
    pub status: GroupStatus,
    /// Why, for people.
    pub status_reason: String,
    /// When these figures were measured (ms since the epoch). Older than the snapshot when
    /// this cycle could not measure them: they are the last good values.
    pub measured_at_ms: i64,
    /// Why this cycle could not measure the partition, when it could not.
    pub error: Option<String>,
    /// Member id owning it, if assigned.
    pub owner: Option<String>,
}

impl PartitionLag {
    /// True when the figures are not from this cycle.
    pub fn is_stale(&self) -> bool {
        self.error.is_some()
    }
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
    /// No data: this cycle could not measure it (Burrow's ERR).
    Errored,
}

impl GroupStatus {
    /// Lowercase name (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Ok => "ok",
            GroupStatus::Lagging => "lagging",
            GroupStatus::Stalled => "stalled",
            GroupStatus::Stopped => "stopped",
            GroupStatus::Errored => "errored",
        }
    }

    /// Numeric code for Prometheus: 1 ok, 2 lagging, 3 stalled, 4 stopped, 5 errored (no
    /// data).
    pub fn code(self) -> i64 {
        match self {
            GroupStatus::Ok => 1,
            GroupStatus::Lagging => 2,
            GroupStatus::Stalled => 3,
            GroupStatus::Stopped => 4,
            GroupStatus::Errored => 5,
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
    /// `classic`, or `consumer` for a group of the KIP-848 protocol.
    pub group_type: String,
    /// For a consumer group: the group epoch and the target assignment's epoch.
    pub epochs: Option<(i32, i32)>,
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
    /// Whether and when it catches up, from the consume and produce rates.
    pub forecast: Forecast,
    /// Why this cycle could not describe the group or fetch its offsets, when it could not
    /// (the rest is then the last good data).
    pub error: Option<String>,
}

/// Where a group is heading, from the consume and produce rates over the status window.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Default)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Forecast {
    /// Too little history (or unknown lag) to say.
    #[default]
    Unknown,
    /// No lag.
    CaughtUp,
    /// Consuming faster than producers write: the lag reaches 0 in about `seconds`.
    CatchingUp {
        /// Seconds to lag 0 at the current rates.
        seconds: f64,
        /// Messages/s consumed.
        consume_rate: f64,
        /// Messages/s produced.
        produce_rate: f64,
    },
    /// Consuming, but slower than producers write.
    FallingBehind {
        /// Messages/s consumed.
        consume_rate: f64,
        /// Messages/s produced.
        produce_rate: f64,
    },
    /// Lag and no consumption over the window.
    NotConsuming {
        /// Messages/s produced.
        produce_rate: f64,
    },
}

impl Forecast {
    /// Seconds until caught up: 0 when caught up, +∞ when not catching up, `None` unknown.
    pub fn catchup_seconds(&self) -> Option<f64> {
        match self {
            Forecast::Unknown => None,
            Forecast::CaughtUp => Some(0.0),
            Forecast::CatchingUp { seconds, .. } => Some(*seconds),
            Forecast::FallingBehind { .. } | Forecast::NotConsuming { .. } => Some(f64::INFINITY),
        }
    }

    /// "catching up in ~14 min", "falling behind by 40 msg/s", "not consuming", ...
    pub fn text(&self) -> String {
        match self {
            Forecast::Unknown => "forecast unknown (too little history)".into(),
            Forecast::CaughtUp => "caught up".into(),
            Forecast::CatchingUp { seconds, .. } => {
                format!("catching up in ~{}", crate::format::duration_secs(*seconds))
            }
            Forecast::FallingBehind {
                consume_rate,
                produce_rate,
            } => format!(
                "falling behind by {} msg/s",
                crate::format::rate(produce_rate - consume_rate)
            ),
            Forecast::NotConsuming { .. } => "not consuming".into(),
        }
    }
}

impl GroupInfo {
    /// Topics the group has offsets for or is assigned.
    pub fn topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self.partitions.iter().map(|p| p.topic.clone()).collect();
        t.dedup();
        t
    }

    /// Σ lag over every partition measured in the last collection (counted from the log
    /// start where nothing is committed).
    pub fn total_lag(&self) -> i64 {
        self.partitions
            .iter()
            .filter(|p| p.lag >= 0 && !p.is_stale())
            .map(|p| p.lag)
            .sum()
    }

    /// Partitions the last collection could not measure: the total is then a lower bound.
    pub fn unknown_partitions(&self) -> usize {
        self.partitions
            .iter()
            .filter(|p| p.lag < 0 || p.is_stale())
            .count()
    }

    /// Partitions the group consumes without a committed offset.
    pub fn uncommitted_partitions(&self) -> usize {
        self.partitions
            .iter()
            .filter(|p| p.basis == LagBasis::LogStart)
            .count()
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

    /// Total lag for people: "≥ 1,200 (2 partitions unknown)" when part is unknown, with a
    /// note when part of it counts from the log start.
    pub fn total_lag_text(&self) -> String {
        let mut s = self.total_lag().to_string();
        let unknown = self.unknown_partitions();
        if unknown > 0 {
            s = format!("≥ {s} ({unknown} partition(s) unknown)");
        }
        let uncommitted = self.uncommitted_partitions();
        if uncommitted > 0 {
            s.push_str(&format!(
                " incl. {uncommitted} partition(s) with no commit, counted from the log start"
            ));
        }
        s
    }

    /// The forecast for people.
    pub fn forecast_text(&self) -> String {
        self.forecast.text()
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

    /// When it last answered, for people.
    pub fn last_seen_text(&self) -> String {
        if self.last_seen_ms <= 0 {
            "never".into()
        } else {
            crate::format::time(self.last_seen_ms)
        }
    }
}

impl PartitionLag {
    /// Committed offset or `none`.
    pub fn committed_text(&self) -> String {
        if self.committed < 0 {
            "none".into()
        } else {
            self.committed.to_string()
        }
    }

    /// End offset or `unknown`.
    pub fn end_text(&self) -> String {
        if self.end < 0 {
            "unknown".into()
        } else {
            self.end.to_string()
        }
    }

    /// Lag, labelled when it counts from the log start; `unknown` when not measured.
    pub fn lag_text(&self) -> String {
        match self.basis {
            _ if self.lag < 0 => "unknown".into(),
            LagBasis::LogStart => format!("{} (no commit: from log start)", self.lag),
            LagBasis::Committed | LagBasis::Unknown => self.lag.to_string(),
        }
    }

    /// The read_committed lag, or `unknown`.
    pub fn stable_lag_text(&self) -> String {
        if self.stable_lag < 0 {
            "unknown".into()
        } else {
            self.stable_lag.to_string()
        }
    }

    /// Time lag in seconds with how it was obtained, or `unknown`.
    pub fn lag_seconds_text(&self) -> String {
        match (self.lag_seconds, self.lag_seconds_method) {
            (Some(s), Some(m)) => format!("{s:.1} ({})", m.label()),
            (Some(s), None) => format!("{s:.1}"),
            (None, _) => "unknown".into(),
        }
    }

    /// Owning member or `-`.
    pub fn owner_text(&self) -> &str {
        self.owner.as_deref().unwrap_or("-")
    }
}

impl MemberInfo {
    /// Assignment as `topic-0, topic-1`.
    pub fn assignment_text(&self) -> String {
        tps_text(&self.assignment)
    }

    /// Target assignment as `topic-0, topic-1`, or `-` for a classic group.
    pub fn target_text(&self) -> String {
        self.target_assignment
            .as_deref()
            .map_or_else(|| "-".into(), tps_text)
    }

    /// True when a consumer-group member does not own its target yet.
    pub fn reconciling(&self) -> bool {
        self.target_assignment.as_ref().is_some_and(|t| {
            let mut a = self.assignment.clone();
            let mut t = t.clone();
            a.sort();
            t.sort();
            a != t
        })
    }

    /// The member epoch, or `-`.
    pub fn epoch_text(&self) -> String {
        self.member_epoch
            .map_or_else(|| "-".into(), |e| e.to_string())
    }
}

fn tps_text(tps: &[(String, i32)]) -> String {
    tps.iter()
        .map(|(t, p)| format!("{t}-{p}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl GroupInfo {
    /// True for a group of the KIP-848 consumer protocol.
    pub fn is_consumer_protocol(&self) -> bool {
        self.group_type == "consumer"
    }

    /// `group epoch N · assignment epoch M` for a consumer group, else "".
    pub fn epochs_text(&self) -> String {
        self.epochs.map_or_else(String::new, |(g, a)| {
            format!(" · group epoch {g} · assignment epoch {a}")
        })
    }

    /// The group id as a URL path segment.
    pub fn url_id(&self) -> String {
        crate::format::path_segment(&self.group_id)
    }

    /// Max time lag for people.
    pub fn max_lag_seconds_text(&self) -> String {
        self.max_lag_seconds()
            .map_or_else(|| "unknown".into(), |s| format!("{s:.1}"))
    }

    /// Topics as `a, b`.
    pub fn topics_text(&self) -> String {
        self.topics().join(", ")
    }
}

fn join(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}
