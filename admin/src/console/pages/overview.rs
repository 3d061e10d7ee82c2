//! `/`: brokers, cluster-wide partition health and imbalance indicators (CMAK's skews,
//! the preferred-leader share), all from the snapshot.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rill_web::views::{OverviewPage, Totals};

use crate::console::http::{layout, respond, AppState, Notice};

/// GET `/`.
pub async fn show(State(c): AppState, headers: HeaderMap, Query(n): Query<Notice>) -> Response {
    let snap = c.shared.snapshot();
    let (partitions, under_replicated, offline, under_min_isr) = snap.partition_totals();
    let preferred = snap
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .filter(|p| p.leader_is_preferred())
        .count();
    let skew = |counts: Vec<usize>| -> f64 {
        let total: usize = counts.iter().sum();
        if counts.is_empty() || total == 0 {
            return 0.0;
        }
        let mean = total as f64 / counts.len() as f64;
        let max = counts.iter().copied().max().unwrap_or(0) as f64;
        (max / mean - 1.0) * 100.0
    };
    let view = OverviewPage {
        layout: layout(&c, "Overview", "overview", n.notice),
        cluster_id: snap.cluster_id.clone(),
        controller_id: snap.controller_id,
        brokers: snap.brokers.clone(),
        fenced_brokers: snap.fenced_brokers.clone(),
        totals: Totals {
            brokers: snap.brokers.len(),
            topics: snap.topics.len(),
            partitions,
            under_replicated,
            offline,
            under_min_isr,
            groups: snap.groups.len(),
            preferred_leaders_pct: if partitions == 0 {
                100.0
            } else {
                preferred as f64 * 100.0 / partitions as f64
            },
            leader_skew_pct: skew(snap.brokers.iter().map(|b| b.leaders).collect()),
            replica_skew_pct: skew(snap.brokers.iter().map(|b| b.partitions).collect()),
        },
    };
    respond(&headers, StatusCode::OK, &view)
}
