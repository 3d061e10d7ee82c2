//! `/topics/{name}/messages`: the message browser.

use askama::Template;
use serde::Serialize;

use crate::format::BytesFormat;
use crate::{FormState, Layout};

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
