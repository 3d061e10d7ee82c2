//! `/groups` and `/groups/{id}`: lag from the snapshot, history from the store, and the
//! changes: status thresholds, offset resets (preview, then apply), deletion.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rill_client::TopicPartition;
use rill_web::views::{GroupPage, GroupRow, GroupsPage, ResetPlan, ResetRow, ThresholdsView};
use rill_web::FormState;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{audit, refresh};
use crate::clock::now_ms;
use crate::console::http::{
    done, encode, error_page, form_state, json_error, layout, lenient, respond, wants_json,
    AppState, ConsoleError, FormOrJson,
};
use crate::console::lag::Thresholds;
use crate::console::snapshot::Snapshot;
use crate::console::state::Console;
use crate::console::store::DEFAULT_THRESHOLDS;
use crate::console::validate;
use crate::ops::reset::{self, ResetError, Scenario};

/// Query of GET `/groups`.
#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    /// `ok`, `lagging`, `stalled`, `stopped` or empty for all.
    #[serde(default)]
    status: String,
    /// `name` (default), `lag` or `lag-seconds` (largest first).
    #[serde(default)]
    sort: String,
    /// The page, from 1 (default 1).
    #[serde(default)]
    page: String,
    /// Rows per page (default 100, at most 1,000).
    #[serde(default)]
    per_page: String,
    notice: Option<String>,
}

/// GET `/groups`.
pub async fn list(State(c): AppState, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    if !matches!(
        q.status.as_str(),
        "" | "ok" | "lagging" | "stalled" | "stopped" | "errored"
    ) {
        let msg = format!(
            "unknown status '{}': use ok, lagging, stalled, stopped or errored",
            q.status
        );
        return error_page(&c, &headers, StatusCode::BAD_REQUEST, "status", &msg);
    }
    if !matches!(q.sort.as_str(), "" | "name" | "lag" | "lag-seconds") {
        let msg = format!("unknown sort '{}': use name, lag or lag-seconds", q.sort);
        return error_page(&c, &headers, StatusCode::BAD_REQUEST, "sort", &msg);
    }
    let (page_no, per_page) = match rill_web::views::parse_paging(&q.page, &q.per_page) {
        Ok(p) => p,
        Err((field, msg)) => {
            return error_page(&c, &headers, StatusCode::BAD_REQUEST, &field, &msg)
        }
    };
    let snap = c.shared.snapshot();
    let needle = q.q.to_lowercase();
    let mut groups: Vec<GroupRow> = snap
        .groups
        .iter()
        .filter(|g| needle.is_empty() || g.group_id.to_lowercase().contains(&needle))
        .filter(|g| q.status.is_empty() || g.status.as_str() == q.status)
        .map(|g| GroupRow {
            group_id: g.group_id.clone(),
            state: g.state.clone(),
            group_type: g.group_type.clone(),
            members: g.members.len(),
            topics: g.topics(),
            total_lag: g.total_lag(),
            total_lag_text: g.total_lag_text(),
            unknown_partitions: g.unknown_partitions(),
            max_lag_seconds: g.max_lag_seconds(),
            status: g.status,
            status_reason: g.status_reason.clone(),
            forecast: g.forecast,
        })
        .collect();
    match q.sort.as_str() {
        "lag" => groups.sort_by_key(|g| std::cmp::Reverse(g.total_lag)),
        "lag-seconds" => groups.sort_by(|a, b| {
            b.max_lag_seconds
                .unwrap_or(-1.0)
                .total_cmp(&a.max_lag_seconds.unwrap_or(-1.0))
        }),
        _ => {}
    }
    let href = |n: usize| {
        format!(
            "/groups?q={}&status={}&sort={}&page={n}&per_page={per_page}",
            encode(&q.q),
            q.status,
            q.sort
        )
    };
    let (groups, paging) = rill_web::views::Paging::cut("groups", groups, page_no, per_page, href);
    let view = GroupsPage {
        layout: layout(&c, "Consumer groups", "groups", q.notice),
        q: q.q,
        status: q.status,
        sort: q.sort,
        groups,
        paging,
    };
    respond(&headers, StatusCode::OK, &view)
}

/// Renders the group page.
async fn render(
    c: &Console,
    headers: &HeaderMap,
    id: &str,
    status: StatusCode,
    form: FormState,
    reset: Option<ResetPlan>,
    notice: Option<String>,
) -> Response {
    let snap = c.shared.snapshot();
    let Some(group) = snap.group(id) else {
        return error_page(
            c,
            headers,
            StatusCode::NOT_FOUND,
            "id",
            &format!("no group '{id}'"),
        );
    };
    let all = c.store.thresholds().await.unwrap_or_default();
    let own = all.get(id).copied();
    let t = own
        .or_else(|| all.get(DEFAULT_THRESHOLDS).copied())
        .unwrap_or_default();
    let view = GroupPage {
        layout: layout(c, &format!("Group {id}"), "groups", notice),
        group: group.clone(),
        thresholds: ThresholdsView {
            max_lag: t.max_lag,
            max_lag_seconds: t.max_lag_seconds,
            stall_seconds: t.stall_seconds,
            own: own.is_some(),
        },
        topics: reset_topics(group, &snap),
        reset,
        form,
    };
    respond(headers, status, &view)
}

/// Topics the reset form offers: the group's own first (those it has offsets for or is
/// assigned), then the others; internal topics never.
fn reset_topics(group: &rill_web::model::GroupInfo, snap: &Snapshot) -> Vec<String> {
    let own = group.topics();
    let others = snap
        .topics
        .iter()
        .filter(|t| !t.internal && !t.name.starts_with("__") && !own.contains(&t.name))
        .map(|t| t.name.clone());
    own.iter()
        .filter(|t| snap.topic(t).is_some_and(|t| !t.internal))
        .cloned()
        .chain(others)
        .collect()
}

/// Inserts a `null` point where consecutive points are much further apart than usual
/// (cycles that did not measure the group), and after the last one when it is that much
/// older than `now_ms`, so a chart shows a gap, not a line across it.
fn with_gaps(points: Vec<(i64, i64)>, now_ms: i64) -> Vec<(i64, Option<i64>)> {
    let mut steps: Vec<i64> = points.windows(2).map(|w| w[1].0 - w[0].0).collect();
    steps.sort_unstable();
    let usual = steps.get(steps.len() / 2).copied().unwrap_or(0);
    let gap = usual.saturating_mul(5) / 2;
    let mut out = Vec::with_capacity(points.len() + 1);
    let mut prev: Option<i64> = None;
    for (ts, lag) in points {
        if let Some(p) = prev {
            if usual > 0 && ts - p > gap {
                out.push((p + usual, None));
            }
        }
        out.push((ts, Some(lag)));
        prev = Some(ts);
    }
    if let Some(p) = prev {
        if usual > 0 && now_ms - p > gap {
            out.push((p + usual, None));
        }
    }
    out
}

/// Query with an optional notice.
#[derive(Debug, Deserialize, Default)]
pub struct ShowQuery {
    notice: Option<String>,
}

/// GET `/groups/{id}`.
pub async fn show(
    State(c): AppState,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<ShowQuery>,
) -> Response {
    render(
        &c,
        &headers,
        &id,
        StatusCode::OK,
        FormState::default(),
        None,
        q.notice,
    )
    .await
}

/// Query of GET `/groups/{id}/lag-history`.
#[derive(Debug, Deserialize, Default)]
pub struct HistoryQuery {
    #[serde(default)]
    range: String,
}

/// GET `/groups/{id}/lag-history?range=1h|24h|7d`: `{"points": [[ts_ms, total_lag], ...]}`,
/// with `[ts_ms, null]` where cycles did not measure the group.
pub async fn lag_history(
    State(c): AppState,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let (span_ms, tier) = match q.range.as_str() {
        "" | "1h" => (3_600_000, 0),
        "24h" => (86_400_000, 1),
        "7d" => (7 * 86_400_000, 2),
        other => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "range",
                &format!("unknown range '{other}': use 1h, 24h or 7d"),
            )
        }
    };
    match c.store.lag_history(&id, now_ms() - span_ms, tier).await {
        Ok(points) => Json(json!({ "group": id, "range": if q.range.is_empty() { "1h" } else { q.range.as_str() }, "points": with_gaps(points, now_ms()) })).into_response(),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, "", &e.to_string()),
    }
}

/// Body of POST `/groups/{id}/thresholds`.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct ThresholdsInput {
    #[serde(default, deserialize_with = "lenient")]
    max_lag: String,
    #[serde(default, deserialize_with = "lenient")]
    max_lag_seconds: String,
    #[serde(default, deserialize_with = "lenient")]
    stall_seconds: String,
}

/// POST `/groups/{id}/thresholds` (`*` sets the defaults for every group).
pub async fn set_thresholds(
    State(c): AppState,
    Path(id): Path<String>,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<ThresholdsInput>,
) -> Response {
    let result = async {
        if id != DEFAULT_THRESHOLDS && c.shared.snapshot().group(&id).is_none() {
            return Err(ConsoleError::NotFound(format!("no group '{id}'")));
        }
        let t = Thresholds {
            max_lag: validate::int_in("max_lag", &input.max_lag, 0, i64::MAX)?,
            max_lag_seconds: validate::non_negative_f64("max_lag_seconds", &input.max_lag_seconds)?,
            stall_seconds: validate::int_in(
                "stall_seconds",
                &input.stall_seconds,
                1,
                365 * 86_400,
            )?,
        };
        c.store.set_thresholds(&id, &t).await?;
        Ok(t)
    }
    .await;
    audit(&c, "set-thresholds", &id, &input, &result).await;
    match result {
        Ok(t) => done(
            &headers,
            &format!("/groups/{}", encode(&id)),
            "Thresholds saved; the status follows from the next collection",
            json!({ "group": id, "thresholds": t }),
        ),
        Err(e) => {
            let values = BTreeMap::new();
            failed(&c, &headers, &id, "thresholds", e, values).await
        }
    }
}

async fn failed(
    c: &Console,
    headers: &HeaderMap,
    id: &str,
    form: &str,
    e: ConsoleError,
    values: BTreeMap<String, String>,
) -> Response {
    let (status, field) =
        e.status_and_field(&|code, _| if code == 3 { "topic" } else { "" }.to_string());
    if wants_json(headers) {
        return json_error(status, &field, &e.to_string());
    }
    render(
        c,
        headers,
        id,
        status,
        form_state(form, field, e.to_string(), values),
        None,
        None,
    )
    .await
}

/// Body of POST `/groups/{id}/reset`.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct ResetInput {
    #[serde(default, deserialize_with = "lenient")]
    topic: String,
    /// `earliest`, `latest`, `timestamp` or `offset`.
    #[serde(default, deserialize_with = "lenient")]
    strategy: String,
    /// The timestamp (ISO 8601 or ms) or the offset.
    #[serde(default, deserialize_with = "lenient")]
    value: String,
    /// `preview` (default) or `apply`.
    #[serde(default, deserialize_with = "lenient")]
    action: String,
    /// `yes` once the operator has seen the plan: `apply` without it only shows the plan
    /// with a confirmation button.
    #[serde(default, deserialize_with = "lenient")]
    confirm: String,
}

/// POST `/groups/{id}/reset`: previews or applies an offset reset for one topic. Applying
/// needs the group to have no members (Kafka refuses commits from outside otherwise).
pub async fn reset(
    State(c): AppState,
    Path(id): Path<String>,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<ResetInput>,
) -> Response {
    let confirmed = matches!(input.confirm.as_str(), "yes" | "true" | "on");
    let apply = input.action == "apply" && confirmed;
    let result = plan_reset(&c, &id, &input).await;
    let result = match result {
        Ok(mut plan) if input.action == "apply" && !confirmed => {
            plan.awaiting_confirmation = true;
            Ok(plan)
        }
        Ok(plan) if apply => {
            let r = apply_reset(&c, &id, plan).await;
            audit(&c, "reset-offsets", &id, &input, &r).await;
            r
        }
        other => other,
    };
    match result {
        Ok(plan) => {
            if apply {
                refresh(&c).await;
            }
            if wants_json(&headers) {
                return (StatusCode::OK, Json(&plan)).into_response();
            }
            let notice = if apply {
                Some(format!("Offsets of {} reset", plan.topic))
            } else if plan.awaiting_confirmation {
                Some("Check the new offsets below, then confirm the reset".to_string())
            } else {
                None
            };
            render(
                &c,
                &headers,
                &id,
                StatusCode::OK,
                FormState::default(),
                Some(plan),
                notice,
            )
            .await
        }
        Err(e) => {
            let values = BTreeMap::from([
                ("topic".to_string(), input.topic.clone()),
                ("strategy".to_string(), input.strategy.clone()),
                ("value".to_string(), input.value.clone()),
            ]);
            failed(&c, &headers, &id, "reset-offsets", e, values).await
        }
    }
}

/// The console's side of `ops::reset`: the form's strategy and value become a
/// [`Scenario`], planned for every partition of the topic exactly as `rill groups
/// --reset-offsets` plans it.
async fn plan_reset(c: &Console, id: &str, input: &ResetInput) -> Result<ResetPlan, ConsoleError> {
    let snap = c.shared.snapshot();
    if snap.group(id).is_none() {
        return Err(ConsoleError::NotFound(format!("no group '{id}'")));
    }
    if !matches!(input.action.as_str(), "" | "preview" | "apply") {
        return Err(ConsoleError::invalid(
            "action",
            format!("unknown action '{}': use preview or apply", input.action),
        ));
    }
    let topic_name = input.topic.trim();
    let topic = snap
        .topic(topic_name)
        .ok_or_else(|| ConsoleError::invalid("topic", format!("no topic '{topic_name}'")))?;
    let scenario = match input.strategy.as_str() {
        "earliest" => Scenario::Earliest,
        "latest" => Scenario::Latest,
        "timestamp" => Scenario::Timestamp(validate::timestamp("value", &input.value)?),
        "offset" => Scenario::Offset(validate::offset("value", &input.value)?),
        "shift-by" => Scenario::ShiftBy(validate::int_in(
            "value",
            &input.value,
            -i64::from(i32::MAX),
            i64::from(i32::MAX),
        )?),
        other => {
            return Err(ConsoleError::invalid(
                "strategy",
                format!(
                "unknown strategy '{other}': use earliest, latest, timestamp, offset or shift-by"
            ),
            ))
        }
    };
    let tps: Vec<TopicPartition> = topic
        .partitions
        .iter()
        .map(|p| TopicPartition::new(topic_name, p.partition))
        .collect();
    let result = async {
        let cluster = c.cluster();
        Ok::<_, rill_client::ClientError>(
            reset::plan_from_cluster(cluster, id, &tps, scenario).await,
        )
    }
    .await;
    let planned = result?.map_err(|e| match e {
        ResetError::Client { source, .. } => ConsoleError::from(source),
        e @ ResetError::NoCurrentOffset(_) => ConsoleError::invalid("value", e.to_string()),
        e => ConsoleError::invalid("", e.to_string()),
    })?;
    Ok(ResetPlan {
        topic: topic_name.to_string(),
        strategy: input.strategy.clone(),
        value: input.value.clone(),
        rows: planned
            .into_iter()
            .map(|p| ResetRow {
                topic: p.tp.topic,
                partition: p.tp.partition,
                current: p.current.unwrap_or(-1),
                target: p.target,
            })
            .collect(),
        applied: false,
        awaiting_confirmation: false,
    })
}

async fn apply_reset(
    c: &Console,
    id: &str,
    mut plan: ResetPlan,
) -> Result<ResetPlan, ConsoleError> {
    let offsets: BTreeMap<TopicPartition, i64> = plan
        .rows
        .iter()
        .map(|r| (TopicPartition::new(r.topic.clone(), r.partition), r.target))
        .collect();
    let result = async {
        let cluster = c.cluster();
        let desc = cluster.describe_group(id).await?;
        if !desc.is_inactive() {
            return Ok(Err(ConsoleError::invalid(
                "",
                format!(
                    "group '{id}' has {} active member(s): stop its consumers first",
                    desc.members.len()
                ),
            )));
        }
        cluster.commit_offsets(id, &offsets).await?;
        Ok::<_, rill_client::ClientError>(Ok(()))
    }
    .await;
    result??;
    plan.applied = true;
    Ok(plan)
}

/// Body of POST `/groups/{id}/delete`.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct DeleteInput {
    /// Must repeat the group id.
    #[serde(default, deserialize_with = "lenient")]
    confirm: String,
}

/// POST `/groups/{id}/delete`: deletes an inactive group once its id is typed.
pub async fn delete(
    State(c): AppState,
    Path(id): Path<String>,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<DeleteInput>,
) -> Response {
    let result = async {
        if c.shared.snapshot().group(&id).is_none() {
            return Err(ConsoleError::NotFound(format!("no group '{id}'")));
        }
        if input.confirm != id {
            return Err(ConsoleError::invalid(
                "confirm",
                "type the group id exactly to confirm the deletion",
            ));
        }
        let r = async {
            let cluster = c.cluster();
            cluster.delete_groups(std::slice::from_ref(&id)).await
        }
        .await;
        let results = r?;
        for (_, r) in results {
            r?;
        }
        Ok(())
    }
    .await;
    audit(&c, "delete-group", &id, &input, &result).await;
    match result {
        Ok(()) => {
            refresh(&c).await;
            done(
                &headers,
                "/groups",
                &format!("Group {id} deleted"),
                json!({ "deleted": id }),
            )
        }
        Err(e) => failed(&c, &headers, &id, "delete-group", e, BTreeMap::new()).await,
    }
}

#[cfg(test)]
mod tests {
    use super::with_gaps;

    #[test]
    fn gaps_break_the_line() {
        let pts = vec![(0, 5), (10, 5), (20, 6), (60, 7), (70, 7)];
        let g = with_gaps(pts.clone(), 75);
        assert_eq!(g[3], (30, None), "a gap between 20 and 60: {g:?}");
        assert_eq!(g.len(), 6);
        // Measured up to now: nothing after; silent since: a trailing gap.
        assert_eq!(with_gaps(pts.clone(), 75).last(), Some(&(70, Some(7))));
        assert_eq!(with_gaps(pts, 200).last(), Some(&(80, None)));
    }
}
