//! `/audit`: the audit log.

use askama::Template;
use serde::Serialize;

use crate::Layout;

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
