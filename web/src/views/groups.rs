//! `/groups`: the group list.

use askama::Template;
use serde::Serialize;

use crate::model::{Forecast, GroupStatus};
use crate::Layout;

/// One row of the group list.
#[derive(Debug, Clone, Serialize)]
pub struct GroupRow {
    /// Group id.
    pub group_id: String,
    /// State.
    pub state: String,
    /// `classic` or `consumer` (KIP-848).
    pub group_type: String,
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
    /// The page of matching groups shown.
    pub groups: Vec<GroupRow>,
    /// Which page of the matching groups this is.
    pub paging: super::Paging,
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
