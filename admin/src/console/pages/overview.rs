//! `/`: brokers and cluster-wide partition health.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rill_web::views::{OverviewPage, Totals};

use crate::console::http::{layout, respond, AppState, Notice};

/// GET `/`.
pub async fn show(State(c): AppState, headers: HeaderMap, Query(n): Query<Notice>) -> Response {
    let snap = c.shared.snapshot();
    let (partitions, under_replicated, offline, under_min_isr) = snap.partition_totals();
    let view = OverviewPage {
        layout: layout(&c, "Overview", "overview", n.notice),
        cluster_id: snap.cluster_id.clone(),
        controller_id: snap.controller_id,
        brokers: snap.brokers.clone(),
        totals: Totals {
            brokers: snap.brokers.len(),
            topics: snap.topics.len(),
            partitions,
            under_replicated,
            offline,
            under_min_isr,
            groups: snap.groups.len(),
        },
    };
    respond(&headers, StatusCode::OK, &view)
}
