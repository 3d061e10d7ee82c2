//! `/reassign`: partition reassignment and preferred leader elections, with the logic of
//! `rill reassign` (`crate::ops::reassign`): a balanced rack-aware plan for chosen topics and
//! brokers, a dry run that checks the plan against the cluster, execution with Kafka's
//! throttle configs, per-replica copy progress (DescribeLogDirs sizes), cancellation, and
//! throttle removal once everything is complete (as `--verify` does).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rill_client::TopicPartition;
use rill_web::reassign::{PlanState, ProgressRow, ReassignPage};
use rill_web::FormState;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit;
use crate::cli::CliError;
use crate::console::broker_http;
use crate::console::http::{
    done, form_state, json_error, layout, lenient, respond, wants_json, AppState, ConsoleError,
    FormOrJson, Notice,
};
use crate::console::state::{Console, Executed};
use crate::ops::reassign::plan::{self, Plan};
use crate::ops::reassign::{clear_throttles, progress, set_throttles, states};

fn cli(field: &str, e: CliError) -> ConsoleError {
    ConsoleError::invalid(field, e.to_string())
}

/// GET `/reassign`.
pub async fn show(State(c): AppState, headers: HeaderMap, Query(n): Query<Notice>) -> Response {
    render(
        &c,
        &headers,
        StatusCode::OK,
        Inputs::default(),
        FormState::default(),
        n.notice,
    )
    .await
}

/// What the editor shows.
#[derive(Default)]
pub(super) struct Inputs {
    plan: String,
    current: String,
    /// Set when a cancel waits for its confirmation: the partitions it would revert.
    cancel_confirm: Option<Vec<String>>,
}

async fn render(
    c: &Console,
    headers: &HeaderMap,
    status: StatusCode,
    inputs: Inputs,
    form: FormState,
    notice: Option<String>,
) -> Response {
    let snap = c.shared.snapshot();
    let (progress, progress_error, source) = match poll(c).await {
        Ok((p, source)) => (p, None, source),
        Err(e) => (Vec::new(), Some(e.to_string()), "log-dirs"),
    };
    let guard = c.reassign.lock().await;
    let (executed, run_status, throttle) = match guard.as_ref() {
        // The throttles are removed once the plan ends: show them only while in flight.
        Some(x) => (
            x_states(x, &progress),
            x.status.clone(),
            x.throttle.filter(|_| x.status == "in-progress"),
        ),
        None => (Vec::new(), "none".to_string(), None),
    };
    drop(guard);
    let view = ReassignPage {
        layout: layout(c, "Reassignment", "reassign", notice),
        topics: snap.topics.iter().map(|t| t.name.clone()).collect(),
        brokers: snap.brokers.iter().map(|b| b.id).collect(),
        plan: inputs.plan,
        current: inputs.current,
        executed,
        status: run_status,
        throttle,
        progress,
        progress_error,
        progress_source: source.into(),
        form,
        cancel_confirm: inputs.cancel_confirm,
    };
    respond(headers, status, &view)
}

fn x_states(x: &Executed, rows: &[ProgressRow]) -> Vec<PlanState> {
    x.plan
        .iter()
        .map(|m| PlanState {
            percent: match x.status.as_str() {
                "completed" => Some(100.0),
                "in-progress" => rows
                    .iter()
                    .filter(|r| r.topic == m.tp.topic && r.partition == m.tp.partition)
                    .map(|r| r.percent)
                    .reduce(f64::min),
                _ => None,
            },
            topic: m.tp.topic.clone(),
            partition: m.tp.partition,
            replicas: m.replicas.clone(),
            state: match x.status.as_str() {
                "completed" => "complete".into(),
                "cancelled" => "cancelled".into(),
                other => other.replace('-', " "),
            },
        })
        .collect()
}

/// Reads the progress of every reassignment in flight and, when the executed plan has no
/// partition left in flight, finishes it: throttles removed if every partition reached
/// its target (an audit entry records it).
async fn poll(c: &Console) -> Result<(Vec<ProgressRow>, &'static str), ConsoleError> {
    let mut guard = c.reassign.lock().await;
    let result = async {
        let cluster = c.cluster();
        let ongoing = cluster.list_partition_reassignments(None).await?;
        let mut rows = Vec::new();
        let mut source = "log-dirs";
        let http = match c.broker_http.is_empty() || ongoing.is_empty() {
            true => None,
            false => {
                broker_http::progress(&c.broker_http, c.cluster().config().request_timeout).await
            }
        };
        // The leaders' own view when every adding replica is covered by it.
        let covered = http.as_ref().filter(|h| {
            ongoing.iter().all(|o| {
                o.adding.iter().all(|a| {
                    h.iter().any(|r| {
                        r.topic == o.partition.topic
                            && r.partition == o.partition.partition
                            && r.replica == *a
                    })
                })
            })
        });
        let samples = match covered {
            Some(h) => {
                rows = h.clone();
                source = "http";
                Vec::new()
            }
            None => progress::sizes(cluster, &ongoing)
                .await
                .map_err(|e| cli("", e))?,
        };
        for (tp, replica, s) in samples {
            let (t0, c0) = match guard.as_mut() {
                Some(x) => *x
                    .first
                    .entry((tp.clone(), replica))
                    .or_insert((Instant::now(), s.copied)),
                None => (Instant::now(), s.copied),
            };
            let secs = t0.elapsed().as_secs_f64();
            let rate = (secs >= 0.5).then(|| (s.copied - c0).max(0) as f64 / secs);
            let remaining = (s.total - s.copied).max(0);
            let replicas = ongoing
                .iter()
                .find(|o| o.partition == tp)
                .map(|o| o.replicas.clone())
                .unwrap_or_default();
            rows.push(ProgressRow {
                topic: tp.topic.clone(),
                partition: tp.partition,
                replica,
                replicas,
                copied: s.copied,
                total: s.total,
                remaining,
                rate,
                eta_seconds: rate.filter(|r| *r > 0.0).map(|r| remaining as f64 / r),
                percent: if s.total > 0 {
                    (s.copied as f64 * 100.0 / s.total as f64).clamp(0.0, 100.0)
                } else {
                    0.0
                },
            });
        }
        if let Some(x) = guard.as_mut().filter(|x| x.status == "in-progress") {
            let in_flight = ongoing
                .iter()
                .any(|o| x.plan.iter().any(|m| m.tp == o.partition));
            if !in_flight {
                let st = states(cluster, &x.plan).await.map_err(|e| cli("", e))?;
                if st.iter().all(|(_, s)| s == "complete") {
                    clear_throttles(cluster, &x.plan)
                        .await
                        .map_err(|e| cli("", e))?;
                    x.status = "completed".into();
                } else {
                    x.status = "incomplete".into();
                }
                tracing::info!(status = %x.status, "console reassignment finished");
            }
        }
        Ok::<_, ConsoleError>((rows, source))
    }
    .await;
    let end = guard
        .as_mut()
        .filter(|x| !x.audited && matches!(x.status.as_str(), "completed" | "incomplete"))
        .map(|x| {
            x.audited = true;
            (format!("reassign-{}", x.status), plan::to_json(&x.plan))
        });
    drop(guard);
    if let Some((action, plan_json)) = end {
        let ok: Result<(), ConsoleError> = Ok(());
        audit(c, &action, "cluster", &plan_json, &ok).await;
    }
    result
}

/// A failed POST: JSON error, or the page with the message beside the field.
pub(super) async fn failed(
    c: &Console,
    headers: &HeaderMap,
    form: &str,
    e: ConsoleError,
    inputs: Inputs,
    values: BTreeMap<String, String>,
) -> Response {
    let (status, field) = e.status_and_field(&|code, _| match code {
        39 | 38 => "plan".to_string(),
        _ => String::new(),
    });
    if wants_json(headers) {
        return json_error(status, &field, &e.to_string());
    }
    let state = form_state(form, field, e.to_string(), values);
    render(c, headers, status, inputs, state, None).await
}

fn split(s: &str) -> impl Iterator<Item = &str> {
    s.split(|ch: char| ch == ',' || ch.is_whitespace())
        .filter(|x| !x.is_empty())
}

/// Body of POST `/reassign/plan`.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct PlanInput {
    /// Topic names, comma- or space-separated.
    #[serde(default, deserialize_with = "lenient")]
    topics: String,
    /// Target broker ids, comma- or space-separated.
    #[serde(default, deserialize_with = "lenient")]
    brokers: String,
}

/// POST `/reassign/plan`: a balanced, rack-aware plan of the topics over the brokers, shown
/// in the editor (JSON: `{"current", "proposed"}` in Kafka's format). Changes nothing.
pub async fn generate(
    State(c): AppState,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<PlanInput>,
) -> Response {
    match propose(&c, &input).await {
        Ok((current, proposed)) => {
            if wants_json(&headers) {
                return done(
                    &headers,
                    "",
                    "",
                    json!({"current": current, "proposed": proposed}),
                );
            }
            let inputs = Inputs {
                plan: pretty(&proposed),
                current: pretty(&current),
                cancel_confirm: None,
            };
            let mut form = FormState::default();
            form.values.insert("topics".into(), input.topics.clone());
            form.values.insert("brokers".into(), input.brokers.clone());
            render(&c, &headers, StatusCode::OK, inputs, form, None).await
        }
        Err(e) => {
            let values = BTreeMap::from([
                ("topics".to_string(), input.topics.clone()),
                ("brokers".to_string(), input.brokers.clone()),
            ]);
            failed(
                &c,
                &headers,
                "reassign-generate",
                e,
                Inputs::default(),
                values,
            )
            .await
        }
    }
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

async fn propose(
    c: &Console,
    input: &PlanInput,
) -> Result<(serde_json::Value, serde_json::Value), ConsoleError> {
    let topics: Vec<String> = split(&input.topics).map(str::to_string).collect();
    if topics.is_empty() {
        return Err(ConsoleError::invalid("topics", "choose at least one topic"));
    }
    let snap = c.shared.snapshot();
    if let Some(t) = topics.iter().find(|t| snap.topic(t).is_none()) {
        return Err(ConsoleError::invalid("topics", format!("no topic '{t}'")));
    }
    let mut brokers = Vec::new();
    for b in split(&input.brokers) {
        let id = b
            .parse::<i32>()
            .map_err(|_| ConsoleError::invalid("brokers", format!("'{b}' is not a broker id")))?;
        brokers.push(id);
    }
    if brokers.is_empty() {
        return Err(ConsoleError::invalid(
            "brokers",
            "choose at least one broker",
        ));
    }
    let cluster = c.cluster();
    let md = cluster.metadata(Some(&topics)).await?;
    let nodes: Vec<_> = cluster.brokers();
    let proposed =
        plan::generate(&md.topics, &nodes, &brokers, true).map_err(|e| cli("brokers", e))?;
    Ok((
        plan::to_json(&plan::current_plan(&md.topics)),
        plan::to_json(&proposed),
    ))
}

/// Body of POST `/reassign/execute`.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct ExecuteInput {
    /// The plan, Kafka's JSON (`{"version":1,"partitions":[...]}`).
    #[serde(default, deserialize_with = "lenient")]
    plan: String,
    /// Replication throttle, bytes/s (empty = none).
    #[serde(default, deserialize_with = "lenient")]
    throttle: String,
    /// `dry-run` (check only) or `execute`.
    #[serde(default, deserialize_with = "lenient")]
    action: String,
}

/// POST `/reassign/execute`: checks the plan (syntax, then against the cluster: partitions
/// exist, brokers are registered, replication factors fit); with `action=execute` also
/// sets the throttles and starts the reassignments.
pub async fn execute(
    State(c): AppState,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<ExecuteInput>,
) -> Response {
    let dry = input.action != "execute";
    let result = run(&c, &input, dry).await;
    if !dry {
        audit(&c, "reassign-execute", "cluster", &input, &result).await;
    }
    let inputs = Inputs {
        plan: input.plan.clone(),
        current: String::new(),
        cancel_confirm: None,
    };
    match result {
        Ok(n) if dry => {
            let msg = format!("The plan is valid: {n} partition(s); nothing was changed");
            if wants_json(&headers) {
                return done(&headers, "", "", json!({"valid": true, "partitions": n}));
            }
            let mut form = FormState::default();
            form.values
                .insert("throttle".into(), input.throttle.clone());
            render(&c, &headers, StatusCode::OK, inputs, form, Some(msg)).await
        }
        Ok(n) => done(
            &headers,
            "/reassign",
            &format!("Started the reassignment of {n} partition(s)"),
            json!({"started": n}),
        ),
        Err(e) => {
            let values = BTreeMap::from([("throttle".to_string(), input.throttle.clone())]);
            failed(&c, &headers, "reassign-execute", e, inputs, values).await
        }
    }
}

async fn run(c: &Console, input: &ExecuteInput, dry: bool) -> Result<usize, ConsoleError> {
    if !matches!(input.action.as_str(), "" | "dry-run" | "execute") {
        return Err(ConsoleError::invalid("action", "use dry-run or execute"));
    }
    let plan = plan::parse(&input.plan, "plan").map_err(|e| cli("plan", e))?;
    let throttle =
        match input.throttle.trim() {
            "" => None,
            t => Some(t.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                ConsoleError::invalid("throttle", "a rate in bytes/s (1 or more)")
            })?),
        };
    let topics: Vec<String> = plan
        .iter()
        .map(|m| m.tp.topic.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut active = c.reassign.lock().await;
    let cluster = c.cluster();
    let md = cluster.metadata(Some(&topics)).await?;
    let nodes: Vec<_> = cluster.brokers();
    plan::check(&plan, &md.topics, &nodes).map_err(|e| cli("plan", e))?;
    let tps: Vec<TopicPartition> = plan.iter().map(|m| m.tp.clone()).collect();
    let ongoing = cluster.list_partition_reassignments(Some(&tps)).await?;
    if let Some(o) = ongoing.first() {
        return Err(ConsoleError::invalid(
            "plan",
            format!("partition {} is already being reassigned", o.partition),
        ));
    }
    if dry {
        return Ok(plan.len());
    }
    if let Some(rate) = throttle {
        let current: Plan = plan
            .iter()
            .filter_map(|m| {
                plan::current(&md.topics, &m.tp).map(|replicas| plan::Move {
                    tp: m.tp.clone(),
                    replicas,
                })
            })
            .collect();
        set_throttles(cluster, &plan, &current, rate)
            .await
            .map_err(|e| cli("throttle", e))?;
    }
    let changes: Vec<(TopicPartition, Option<Vec<i32>>)> = plan
        .iter()
        .map(|m| (m.tp.clone(), Some(m.replicas.clone())))
        .collect();
    let results = cluster.alter_partition_reassignments(&changes).await?;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(tp, r)| r.as_ref().err().map(|e| format!("{tp}: {e}")))
        .collect();
    let n = plan.len();
    *active = Some(Executed {
        plan,
        throttle,
        status: "in-progress".into(),
        audited: false,
        first: BTreeMap::new(),
    });
    if !failed.is_empty() {
        return Err(ConsoleError::invalid(
            "plan",
            format!("could not start: {}", failed.join("; ")),
        ));
    }
    Ok(n)
}

/// Body of POST `/reassign/cancel`.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct CancelInput {
    /// `yes` once the operator has seen what the cancel reverts.
    #[serde(default, deserialize_with = "lenient")]
    confirm: String,
}

/// POST `/reassign/cancel`: cancels the executed plan's reassignments (or, with none, every
/// reassignment in flight) and removes the throttles. Without `confirm=yes` it changes
/// nothing and shows (JSON: lists under `would_cancel`) the partitions it would revert.
pub async fn cancel(
    State(c): AppState,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<CancelInput>,
) -> Response {
    if !matches!(input.confirm.as_str(), "yes" | "true" | "on") {
        let pending = match to_cancel(&c).await {
            Ok(plan) => plan,
            Err(e) => {
                return failed(
                    &c,
                    &headers,
                    "reassign-cancel",
                    e,
                    Inputs::default(),
                    BTreeMap::new(),
                )
                .await
            }
        };
        let rows: Vec<String> = pending
            .iter()
            .map(|m| {
                let r: Vec<String> = m.replicas.iter().map(i32::to_string).collect();
                format!("{} (moving to {})", m.tp, r.join(","))
            })
            .collect();
        if wants_json(&headers) {
            return (
                StatusCode::OK,
                Json(json!({"cancelled": 0, "awaiting_confirmation": true, "would_cancel": rows})),
            )
                .into_response();
        }
        let inputs = Inputs {
            cancel_confirm: Some(rows),
            ..Inputs::default()
        };
        let notice = Some("Check what the cancel reverts, then confirm it".to_string());
        return render(
            &c,
            &headers,
            StatusCode::OK,
            inputs,
            FormState::default(),
            notice,
        )
        .await;
    }
    let result = revert(&c).await;
    audit(&c, "reassign-cancel", "cluster", &json!({}), &result).await;
    match result {
        Ok(n) => done(
            &headers,
            "/reassign",
            &format!("Cancelled {n} reassignment(s)"),
            json!({"cancelled": n}),
        ),
        Err(e) => {
            failed(
                &c,
                &headers,
                "reassign-cancel",
                e,
                Inputs::default(),
                BTreeMap::new(),
            )
            .await
        }
    }
}

/// What a cancel would revert: the console's plan in flight, or every reassignment in
/// flight in the cluster; an error when there is none.
async fn to_cancel(c: &Console) -> Result<Plan, ConsoleError> {
    let active = c.reassign.lock().await;
    if let Some(x) = active.as_ref().filter(|x| x.status == "in-progress") {
        return Ok(x.plan.clone());
    }
    drop(active);
    let cluster = c.cluster();
    let plan: Plan = cluster
        .list_partition_reassignments(None)
        .await?
        .into_iter()
        .map(|o| plan::Move {
            replicas: o.target(),
            tp: o.partition,
        })
        .collect();
    if plan.is_empty() {
        return Err(ConsoleError::invalid("", "no reassignment is in progress"));
    }
    Ok(plan)
}

async fn revert(c: &Console) -> Result<usize, ConsoleError> {
    let mut active = c.reassign.lock().await;
    let cluster = c.cluster();
    let plan: Plan = match active.as_ref() {
        Some(x) if x.status == "in-progress" => x.plan.clone(),
        _ => cluster
            .list_partition_reassignments(None)
            .await?
            .into_iter()
            .map(|o| plan::Move {
                replicas: o.target(),
                tp: o.partition,
            })
            .collect(),
    };
    if plan.is_empty() {
        return Err(ConsoleError::invalid("", "no reassignment is in progress"));
    }
    let changes: Vec<(TopicPartition, Option<Vec<i32>>)> =
        plan.iter().map(|m| (m.tp.clone(), None)).collect();
    let results = cluster.alter_partition_reassignments(&changes).await?;
    clear_throttles(cluster, &plan)
        .await
        .map_err(|e| cli("", e))?;
    // Only the console's own plan in flight was cancelled; a finished one keeps its ending.
    if let Some(x) = active.as_mut().filter(|x| x.status == "in-progress") {
        x.status = "cancelled".into();
    }
    let cancelled = results.iter().filter(|(_, r)| r.is_ok()).count();
    Ok(cancelled)
}
