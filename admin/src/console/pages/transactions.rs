//! `/transactions`: every transactional id of the cluster, read from the cluster on each
//! visit (ListTransactions on every broker, DescribeTransactions at each coordinator: the
//! collector does not keep them), with the open ones past their timeout highlighted; the
//! partitions' hanging transactions (kafka-transactions.sh's find-hanging over every
//! partition); and their abort (a second, confirming POST; admin only; audited).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rill_client::{
    HangingScope, HangingTransaction, TopicPartition, TransactionFilter,
    DEFAULT_MAX_TRANSACTION_TIMEOUT_MS,
};
use rill_web::views::{HangingRow, TransactionRow, TransactionsPage};
use rill_web::FormState;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{audit, refresh};
use crate::console::http::{
    done, form_state, json_error, layout, lenient, respond, wants_json, AppState, ConsoleError,
    FormOrJson,
};
use crate::console::state::Console;

/// Query of GET `/transactions`.
#[derive(Debug, Deserialize, Default)]
pub struct ShowQuery {
    notice: Option<String>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// GET `/transactions`.
pub async fn show(State(c): AppState, headers: HeaderMap, Query(q): Query<ShowQuery>) -> Response {
    let view = page(&c, FormState::default(), None, q.notice).await;
    respond(&headers, StatusCode::OK, &view)
}

async fn page(
    c: &Console,
    form: FormState,
    pending_abort: Option<HangingRow>,
    notice: Option<String>,
) -> TransactionsPage {
    let now = now_ms();
    let (transactions, total, error) = match transactions(c, now).await {
        Ok((rows, total)) => (rows, total, None),
        Err(e) => (
            Vec::new(),
            0,
            Some(format!("The transactions could not be listed: {e}")),
        ),
    };
    let (hanging, hanging_error) = match c
        .cluster()
        .find_hanging_transactions(
            &HangingScope::Cluster,
            DEFAULT_MAX_TRANSACTION_TIMEOUT_MS,
            now,
        )
        .await
    {
        Ok(h) => (h.iter().map(|h| hanging_row(h, now)).collect(), None),
        Err(e) => (
            Vec::new(),
            Some(format!("The partitions could not be searched: {e}")),
        ),
    };
    TransactionsPage {
        layout: layout(c, "Transactions", "transactions", notice),
        transactions,
        total,
        hanging,
        max_transaction_timeout_ms: DEFAULT_MAX_TRANSACTION_TIMEOUT_MS,
        error,
        hanging_error,
        pending_abort,
        form,
    }
}

/// Every listed id (at most [`TransactionsPage::MAX_ROWS`] described) and how many exist.
async fn transactions(
    c: &Console,
    now: i64,
) -> Result<(Vec<TransactionRow>, usize), rill_client::ClientError> {
    let cluster = c.cluster();
    let listed = cluster
        .list_transactions(&TransactionFilter::default())
        .await?;
    let total = listed.len();
    let mut rows = Vec::with_capacity(total.min(TransactionsPage::MAX_ROWS));
    for l in listed.into_iter().take(TransactionsPage::MAX_ROWS) {
        rows.push(
            match cluster.describe_transaction(&l.transactional_id).await {
                Ok(d) => {
                    // Only an open transaction has an age; a start time of -1 is unknown, not 0.
                    let age_ms = d
                        .start_time_ms
                        .filter(|_| d.is_open())
                        .map(|s| now.saturating_sub(s).max(0));
                    TransactionRow {
                        hanging: age_ms.is_some_and(|a| a > i64::from(d.timeout_ms)),
                        transactional_id: d.transactional_id,
                        state: d.state,
                        producer_id: Some(d.producer_id),
                        producer_epoch: Some(d.producer_epoch),
                        age_ms,
                        timeout_ms: Some(d.timeout_ms),
                        partitions: d.partitions.iter().map(TopicPartition::to_string).collect(),
                        coordinator: d.coordinator,
                        error: None,
                    }
                }
                Err(e) => TransactionRow {
                    transactional_id: l.transactional_id,
                    state: l.state,
                    producer_id: Some(l.producer_id),
                    producer_epoch: None,
                    age_ms: None,
                    timeout_ms: None,
                    partitions: Vec::new(),
                    coordinator: l.coordinator,
                    hanging: false,
                    error: Some(e.to_string()),
                },
            },
        );
    }
    Ok((rows, total))
}

fn hanging_row(h: &HangingTransaction, now: i64) -> HangingRow {
    HangingRow {
        topic: h.partition.topic.clone(),
        partition: h.partition.partition,
        producer_id: h.producer.producer_id,
        producer_epoch: h.producer.producer_epoch,
        coordinator_epoch: h.producer.coordinator_epoch,
        start_offset: h.producer.current_txn_start_offset.unwrap_or(-1),
        last_timestamp: h.producer.last_timestamp,
        age_ms: now.saturating_sub(h.producer.last_timestamp).max(0),
    }
}

/// Body of POST `/transactions/abort`.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct AbortInput {
    #[serde(default, deserialize_with = "lenient")]
    topic: String,
    #[serde(default, deserialize_with = "lenient")]
    partition: String,
    #[serde(default, deserialize_with = "lenient")]
    start_offset: String,
    /// `yes` once confirmed.
    #[serde(default, deserialize_with = "lenient")]
    confirm: String,
}

impl AbortInput {
    fn target(&self) -> String {
        format!("{}-{}", self.topic.trim(), self.partition.trim())
    }

    fn parsed(&self) -> Result<(TopicPartition, i64), ConsoleError> {
        let topic = self.topic.trim();
        if topic.is_empty() {
            return Err(ConsoleError::invalid("topic", "name the topic"));
        }
        let partition: i32 = self
            .partition
            .trim()
            .parse()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(|| ConsoleError::invalid("partition", "a partition number"))?;
        let offset: i64 = self
            .start_offset
            .trim()
            .parse()
            .ok()
            .filter(|o| *o >= 0)
            .ok_or_else(|| ConsoleError::invalid("start_offset", "an offset"))?;
        Ok((TopicPartition::new(topic, partition), offset))
    }
}

/// Re-renders the page with `e` above the hanging list (or as JSON).
async fn failed(c: &Console, headers: &HeaderMap, e: ConsoleError) -> Response {
    let (status, field) = e.status_and_field(&|_, _| String::new());
    if wants_json(headers) {
        return json_error(status, &field, &e.to_string());
    }
    // The abort forms are hidden fields only: the message goes above the list.
    let state = form_state(
        "abort-transaction",
        String::new(),
        e.to_string(),
        BTreeMap::new(),
    );
    respond(headers, status, &page(c, state, None, None).await)
}

/// POST `/transactions/abort`: without `confirm=yes`, the page asking to confirm (the
/// transaction as DescribeProducers shows it now); with it, the ABORT marker.
pub async fn abort(
    State(c): AppState,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<AbortInput>,
) -> Response {
    let (tp, offset) = match input.parsed() {
        Ok(x) => x,
        Err(e) => return failed(&c, &headers, e).await,
    };
    // Looked up again on each step: the transaction may have ended since the page was shown.
    if input.confirm != "yes" {
        let pending = match pending(&c, &tp, offset).await {
            Ok(p) => p,
            Err(e) => return failed(&c, &headers, e).await,
        };
        if wants_json(&headers) {
            return (
                StatusCode::OK,
                axum::Json(json!({ "awaiting_confirmation": true, "abort": pending })),
            )
                .into_response();
        }
        let view = page(&c, FormState::default(), Some(pending), None).await;
        return respond(&headers, StatusCode::OK, &view);
    }
    let result = match c.cluster().abort_spec(&tp, offset).await {
        Ok(spec) => c
            .cluster()
            .abort_transaction(&spec)
            .await
            .map(|()| spec)
            .map_err(ConsoleError::from),
        Err(e) => Err(gone(e)),
    };
    audit(&c, "abort-transaction", &input.target(), &input, &result).await;
    match result {
        Ok(spec) => {
            refresh(&c).await;
            done(
                &headers,
                "/transactions",
                &format!(
                    "Transaction of producer {} aborted in {tp} (from offset {offset})",
                    spec.producer_id
                ),
                json!({ "aborted": spec }),
            )
        }
        Err(e) => failed(&c, &headers, e).await,
    }
}

/// No open transaction starts there (any more): 404.
fn gone(e: rill_client::ClientError) -> ConsoleError {
    ConsoleError::NotFound(format!("{e} (was it aborted already?)"))
}

/// The open transaction starting at `offset` in `tp`, as DescribeProducers shows it now.
async fn pending(
    c: &Console,
    tp: &TopicPartition,
    offset: i64,
) -> Result<HangingRow, ConsoleError> {
    let answers = c
        .cluster()
        .describe_producers(std::slice::from_ref(tp))
        .await?;
    let producers = match answers.into_iter().next() {
        Some((_, r)) => r?,
        None => Vec::new(),
    };
    let producer = producers
        .into_iter()
        .find(|p| p.current_txn_start_offset == Some(offset))
        .ok_or_else(|| {
            ConsoleError::NotFound(format!(
                "no open transaction starts at offset {offset} in {tp} (was it aborted already?)"
            ))
        })?;
    Ok(hanging_row(
        &HangingTransaction {
            partition: tp.clone(),
            producer,
        },
        now_ms(),
    ))
}
