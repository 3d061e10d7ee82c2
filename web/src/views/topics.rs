//! `/topics`: the topic list, its filters and sorts.

use askama::Template;
use serde::Serialize;

use crate::{FormState, Layout};

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
    /// The page of matching topics shown.
    pub topics: Vec<TopicRow>,
    /// Topics before filtering.
    pub total: usize,
    /// Which page of the matching topics this is.
    pub paging: super::Paging,
    /// The create form after an error.
    pub form: FormState,
}
