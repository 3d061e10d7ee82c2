//! `/audit`: every change made through the console or the `rill` CLI (imported from the
//! cluster's `__rill_audit` topic), newest first.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rill_web::views::{AuditPage, AuditRow};

use crate::console::http::{error_page, layout, respond, AppState};

/// Entries shown.
const LIMIT: i64 = 500;

/// GET `/audit`.
pub async fn show(State(c): AppState, headers: HeaderMap) -> Response {
    let entries = match c.store.audit_log(LIMIT).await {
        Ok(e) => e,
        Err(e) => {
            return error_page(
                &c,
                &headers,
                StatusCode::INTERNAL_SERVER_ERROR,
                "",
                &e.to_string(),
            )
        }
    };
    let view = AuditPage {
        layout: layout(&c, "Audit log", "audit", None),
        entries: entries
            .into_iter()
            .map(|e| AuditRow {
                id: e.id,
                ts_ms: e.ts_ms,
                user: e.user,
                action: e.action,
                target: e.target,
                request: e.request,
                result: e.result,
                ok: e.ok,
                via: e.via,
            })
            .collect(),
    };
    respond(&headers, StatusCode::OK, &view)
}
