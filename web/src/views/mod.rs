//! One view model per page. Each is an askama template (HTML) and serialisable (the same
//! page as JSON for `Accept: application/json`).

use askama::Template;
use serde::Serialize;

use crate::format::BytesFormat;
use crate::model::{BrokerInfo, Forecast, GroupInfo, GroupStatus, TopicInfo};
use crate::{FormState, Layout};

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

/// One row of the topic list.
#[derive(Debug, Clone, Serialize)]
pub struct TopicRow {
    /// Name.
    pub name: String,
    /// Internal topic.
    pub internal: bool,
    /// Partition count.
    pub partitions: usize,
    /// Replication factor.
    pub replication_factor: usize,
    /// Under-replicated partitions.
    pub under_replicated: usize,
    /// Offline partitions.
    pub offline: usize,
    /// Σ (latest − earliest).
    pub messages: i64,
    /// Bytes, when known.
    pub size: Option<i64>,
    /// `cleanup.policy`.
    pub cleanup_policy: Option<String>,
}

impl TopicRow {
    /// Size for people.
    pub fn size_text(&self) -> String {
        crate::format::bytes(self.size)
    }

    /// Cleanup policy or `-`.
    pub fn policy_text(&self) -> &str {
        self.cleanup_policy.as_deref().unwrap_or("-")
    }
}

/// The topic list's search, filter and sort.
#[derive(Debug, Clone, Serialize, Default)]
pub struct TopicQuery {
    /// Substring of the name.
    pub q: String,
    /// `all`, `user`, `internal`, `under-replicated`, `offline`.
    pub filter: String,
    /// `name`, `partitions`, `messages`, `size`, `under-replicated`.
    pub sort: String,
}

impl TopicQuery {
    /// The filters offered.
    pub const FILTERS: [&'static str; 5] =
        ["all", "user", "internal", "under-replicated", "offline"];
    /// The sort keys offered.
    pub const SORTS: [&'static str; 5] =
        ["name", "partitions", "messages", "size", "under-replicated"];

    /// True when `f` is the filter in use.
    pub fn filter_is(&self, f: &str) -> bool {
        self.filter == f
    }

    /// True when `s` is the sort in use.
    pub fn sort_is(&self, s: &str) -> bool {
        self.sort == s
    }
}

/// `/topics`.
#[derive(Debug, Template, Serialize)]
#[template(path = "topics.html")]
pub struct TopicsPage {
    /// Frame.
    pub layout: Layout,
    /// Search, filter, sort.
    pub query: TopicQuery,
    /// Matching topics.
    pub topics: Vec<TopicRow>,
    /// Topics before filtering.
    pub total: usize,
    /// The create form after an error.
    pub form: FormState,
}

impl TopicPage {
    /// The link to a consuming group's page.
    pub fn group_href(&self, group: &str) -> String {
        format!("/groups/{}", crate::format::path_segment(group))
    }
}

/// One config of a topic or broker.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigRow {
    /// Name.
    pub name: String,
    /// Effective value.
    pub value: Option<String>,
    /// What it falls back to.
    pub default_value: Option<String>,
    /// Kafka's source name.
    pub source: String,
    /// Cannot be altered.
    pub read_only: bool,
    /// Hidden value.
    pub sensitive: bool,
    /// Kafka's type name.
    pub config_type: String,
    /// Documentation.
    pub documentation: Option<String>,
}

impl ConfigRow {
    /// Value or `-`.
    pub fn value_text(&self) -> &str {
        if self.sensitive {
            "(sensitive)"
        } else {
            self.value.as_deref().unwrap_or("-")
        }
    }

    /// Default or `-`.
    pub fn default_text(&self) -> &str {
        self.default_value.as_deref().unwrap_or("-")
    }

    /// Set on the resource itself (not inherited).
    pub fn is_override(&self) -> bool {
        self.source == "DYNAMIC_TOPIC_CONFIG" || self.source == "DYNAMIC_BROKER_CONFIG"
    }
}

/// `/topics/{name}`.
#[derive(Debug, Template, Serialize)]
#[template(path = "topic.html")]
pub struct TopicPage {
    /// Frame.
    pub layout: Layout,
    /// The topic as collected.
    pub topic: TopicInfo,
    /// Its configs, read when the page was asked for.
    pub configs: Vec<ConfigRow>,
    /// Why the configs are missing, if they are.
    pub configs_error: Option<String>,
    /// Groups with offsets on it.
    pub groups: Vec<String>,
    /// The form that failed, if any.
    pub form: FormState,
}

/// One record in the browser.
#[derive(Debug, Clone, Serialize)]
pub struct RecordView {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp, ms.
    pub timestamp_ms: i64,
    /// Key in the chosen format (`None` = null).
    pub key: Option<String>,
    /// Value in the chosen format (`None` = tombstone).
    pub value: Option<String>,
    /// Headers in the chosen format.
    pub headers: Vec<(String, Option<String>)>,
}

impl RecordView {
    /// Timestamp for people.
    pub fn time(&self) -> String {
        crate::format::time(self.timestamp_ms)
    }

    /// Headers as `k=v` lines.
    pub fn headers_text(&self) -> String {
        self.headers
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("(null)")))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The browser's query.
#[derive(Debug, Clone, Serialize, Default)]
pub struct BrowseQuery {
    /// Partition.
    pub partition: i32,
    /// Start offset as typed (empty = from the earliest).
    pub offset: String,
    /// Start time as typed (ISO 8601 or ms), used when set.
    pub timestamp: String,
    /// Records to show.
    pub limit: usize,
    /// Key/value format.
    pub format: BytesFormat,
}

/// `/topics/{name}/messages`.
#[derive(Debug, Template, Serialize)]
#[template(path = "messages.html")]
pub struct MessagesPage {
    /// Frame.
    pub layout: Layout,
    /// Topic name.
    pub topic: String,
    /// Partition indexes.
    pub partitions: Vec<i32>,
    /// What was asked.
    pub query: BrowseQuery,
    /// Where reading started.
    pub start_offset: i64,
    /// Records read.
    pub records: Vec<RecordView>,
    /// The partition's high watermark.
    pub high_watermark: i64,
    /// The partition's log start offset.
    pub log_start_offset: i64,
    /// The query's error, if any.
    pub form: FormState,
}

/// One row of the group list.
#[derive(Debug, Clone, Serialize)]
pub struct GroupRow {
    /// Group id.
    pub group_id: String,
    /// State.
    pub state: String,
    /// Members.
    pub members: usize,
    /// Topics with offsets.
    pub topics: Vec<String>,
    /// Σ lag over the partitions whose lag is known (from the log start where nothing is
    /// committed).
    pub total_lag: i64,
    /// The total for people (marks unknown partitions and log-start counts).
    pub total_lag_text: String,
    /// Partitions whose lag is unknown.
    pub unknown_partitions: usize,
    /// Largest time lag.
    pub max_lag_seconds: Option<f64>,
    /// Status.
    pub status: GroupStatus,
    /// Why.
    pub status_reason: String,
    /// Where it is heading.
    pub forecast: Forecast,
}

impl GroupRow {
    /// The group id as a URL path segment.
    pub fn url_id(&self) -> String {
        crate::format::path_segment(&self.group_id)
    }

    /// Topics as `a, b`.
    pub fn topics_text(&self) -> String {
        self.topics.join(", ")
    }

    /// Time lag for people.
    pub fn max_lag_seconds_text(&self) -> String {
        self.max_lag_seconds
            .map_or_else(|| "unknown".into(), |s| format!("{s:.1}"))
    }
}

/// `/groups`.
#[derive(Debug, Template, Serialize)]
#[template(path = "groups.html")]
pub struct GroupsPage {
    /// Frame.
    pub layout: Layout,
    /// Name filter.
    pub q: String,
    /// Status filter (empty = all).
    pub status: String,
    /// Sort key (empty = name).
    pub sort: String,
    /// Groups.
    pub groups: Vec<GroupRow>,
}

impl GroupsPage {
    /// The status filters offered (empty = all).
    pub const STATUSES: [&'static str; 6] = ["", "ok", "lagging", "stalled", "stopped", "errored"];
    /// The sort keys offered.
    pub const SORTS: [&'static str; 3] = ["name", "lag", "lag-seconds"];

    /// True when `s` is the status filter in use.
    pub fn status_is(&self, s: &str) -> bool {
        self.status == s
    }

    /// True when `s` is the sort in use.
    pub fn sort_is(&self, s: &str) -> bool {
        self.sort == s || (self.sort.is_empty() && s == "name")
    }
}

/// Status thresholds as shown and edited.
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdsView {
    /// Lag in offsets.
    pub max_lag: i64,
    /// Time lag in seconds.
    pub max_lag_seconds: f64,
    /// Seconds without progress.
    pub stall_seconds: i64,
    /// True when this group has its own (not the defaults).
    pub own: bool,
}

/// One partition of an offset reset plan.
#[derive(Debug, Clone, Serialize)]
pub struct ResetRow {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed now (-1 = none).
    pub current: i64,
    /// After the reset.
    pub target: i64,
}

/// An offset reset plan (preview) or its result (applied).
#[derive(Debug, Clone, Serialize)]
pub struct ResetPlan {
    /// Topic.
    pub topic: String,
    /// `earliest`, `latest`, `timestamp`, `offset`.
    pub strategy: String,
    /// The strategy's value (timestamp or offset), as typed.
    pub value: String,
    /// Per partition.
    pub rows: Vec<ResetRow>,
    /// True once committed.
    pub applied: bool,
    /// True when Apply was asked without confirming: the plan is shown with a button that
    /// applies exactly it.
    pub awaiting_confirmation: bool,
}

/// `/groups/{id}`.
#[derive(Debug, Template, Serialize)]
#[template(path = "group.html")]
pub struct GroupPage {
    /// Frame.
    pub layout: Layout,
    /// The group as collected.
    pub group: GroupInfo,
    /// Status thresholds.
    pub thresholds: ThresholdsView,
    /// Topics that exist (for the reset form).
    pub topics: Vec<String>,
    /// A reset preview or result.
    pub reset: Option<ResetPlan>,
    /// The form that failed, if any.
    pub form: FormState,
}

impl GroupPage {
    /// The forecast's state name (`catching_up`, `falling_behind`, ...), for tests and CSS.
    pub fn forecast_state(&self) -> &'static str {
        match self.group.forecast {
            Forecast::Unknown => "unknown",
            Forecast::CaughtUp => "caught_up",
            Forecast::CatchingUp { .. } => "catching_up",
            Forecast::FallingBehind { .. } => "falling_behind",
            Forecast::NotConsuming { .. } => "not_consuming",
        }
    }

    /// Partitions with a committed offset (what a deletion removes).
    pub fn committed_partitions(&self) -> usize {
        self.group
            .partitions
            .iter()
            .filter(|p| p.committed >= 0)
            .count()
    }

    /// How long ago `ms` was, relative to the data shown.
    pub fn age(&self, ms: &i64) -> String {
        let ms = *ms;
        if ms <= 0 {
            return "never".into();
        }
        let secs = (self.layout.collected_at_ms - ms).max(0) as f64 / 1000.0;
        format!("{} ago", crate::format::duration_secs(secs))
    }

    /// What the reset form shows in `field` (`topic`, `strategy`, `value`): the values just
    /// submitted after an error, else the previewed plan's, so Apply after a preview applies
    /// exactly what was previewed.
    pub fn reset_value(&self, field: &str) -> String {
        if self
            .form
            .error
            .as_ref()
            .is_some_and(|e| e.form == "reset-offsets")
        {
            return self.form.value("reset-offsets", field).to_string();
        }
        match (&self.reset, field) {
            (Some(r), "topic") => r.topic.clone(),
            (Some(r), "strategy") => r.strategy.clone(),
            (Some(r), "value") => r.value.clone(),
            _ => String::new(),
        }
    }
}

/// `/brokers`.
#[derive(Debug, Template, Serialize)]
#[template(path = "brokers.html")]
pub struct BrokersPage {
    /// Frame.
    pub layout: Layout,
    /// Brokers.
    pub brokers: Vec<BrokerInfo>,
}

/// One log dir of a broker.
#[derive(Debug, Clone, Serialize)]
pub struct LogDirView {
    /// Path.
    pub path: String,
    /// Error name when the dir is offline.
    pub error: Option<String>,
    /// Volume size (-1 = unknown).
    pub total_bytes: i64,
    /// Volume free space (-1 = unknown).
    pub usable_bytes: i64,
    /// Σ partition sizes.
    pub size: i64,
    /// Partitions in it.
    pub partitions: usize,
}

impl LogDirView {
    /// Σ sizes for people.
    pub fn size_text(&self) -> String {
        crate::format::bytes(Some(self.size))
    }

    /// Volume size for people.
    pub fn total_text(&self) -> String {
        crate::format::bytes(Some(self.total_bytes).filter(|b| *b >= 0))
    }

    /// Free space for people.
    pub fn usable_text(&self) -> String {
        crate::format::bytes(Some(self.usable_bytes).filter(|b| *b >= 0))
    }
}

/// `/brokers/{id}`.
#[derive(Debug, Template, Serialize)]
#[template(path = "broker.html")]
pub struct BrokerPage {
    /// Frame.
    pub layout: Layout,
    /// The broker as collected.
    pub broker: BrokerInfo,
    /// Its configs.
    pub configs: Vec<ConfigRow>,
    /// Its log dirs.
    pub log_dirs: Vec<LogDirView>,
    /// Why configs or log dirs are missing.
    pub error: Option<String>,
}

/// One audit entry.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    /// Id.
    pub id: i64,
    /// When, ms.
    pub ts_ms: i64,
    /// Who.
    pub user: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// Request JSON.
    pub request: String,
    /// `ok` or the error.
    pub result: String,
    /// Succeeded.
    pub ok: bool,
    /// Where it was made: `console` or `cli`.
    pub via: String,
}

impl AuditRow {
    /// Time for people.
    pub fn time(&self) -> String {
        crate::format::time(self.ts_ms)
    }
}

/// `/audit`.
#[derive(Debug, Template, Serialize)]
#[template(path = "audit.html")]
pub struct AuditPage {
    /// Frame.
    pub layout: Layout,
    /// Newest first.
    pub entries: Vec<AuditRow>,
}

/// Any error page (404, 400 without a form, 500).
#[derive(Debug, Template, Serialize)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// Frame.
    pub layout: Layout,
    /// HTTP status.
    pub status: u16,
    /// The field, when one is to blame.
    pub field: Option<String>,
    /// What went wrong.
    pub error: String,
}

/// `/login`.
#[derive(Debug, Template, Serialize)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// Frame.
    pub layout: Layout,
    /// Where to go after logging in.
    pub next: String,
    /// Why the last attempt failed.
    pub error: Option<String>,
}
