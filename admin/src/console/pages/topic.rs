//! `/topics/{name}`: partitions (from the snapshot), configs (read from the cluster when
//! the page is asked for, since they carry defaults and sources), and the changes made
//! from it: alter a config, add partitions, delete the topic.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rill_client::describe::{ConfigDetail, RESOURCE_TOPIC};
use rill_client::{ConfigOp, OffsetSpec, TopicPartition};
use rill_web::views::{parse_paging, ConfigRow, Paging, TopicPage};
use rill_web::FormState;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{audit, refresh};
use crate::console::http::{
    done, encode, error_page, form_state, json_error, layout, lenient, respond, wants_json,
    AppState, ConsoleError, FormOrJson,
};
use crate::console::state::Console;
use crate::console::validate;

pub use super::messages::{messages, produce};

/// A config row for the views.
pub fn config_row(d: ConfigDetail) -> ConfigRow {
    ConfigRow {
        name: d.name,
        value: d.value,
        default_value: d.default_value,
        source: d.source,
        read_only: d.read_only,
        sensitive: d.sensitive,
        config_type: d.config_type,
        documentation: d.documentation,
    }
}

/// The topic's configs, live; an error text when they cannot be read.
async fn read_configs(c: &Console, name: &str) -> Result<Vec<ConfigDetail>, String> {
    if !c.shared.health().reachable {
        return Err("the cluster is unreachable: configs are not available".into());
    }
    let result = async {
        let cluster = c.cluster();
        cluster.describe_config_details(RESOURCE_TOPIC, name).await
    }
    .await;
    result.map_err(|e| format!("cannot read the configs: {e}"))
}

/// Query of GET `/topics/{name}`: a confirmation to show, and the page of partitions.
#[derive(Debug, Deserialize, Default)]
pub struct ShowQuery {
    /// The message of a change that just succeeded.
    pub notice: Option<String>,
    /// Page of the partitions table, from 1.
    #[serde(default)]
    pub page: String,
    /// Partitions per page.
    #[serde(default)]
    pub per_page: String,
}

/// Which page of the partitions table to show.
#[derive(Debug, Clone, Copy)]
pub struct PartitionPage {
    page: usize,
    per_page: usize,
}

impl Default for PartitionPage {
    fn default() -> Self {
        PartitionPage {
            page: 1,
            per_page: rill_web::views::DEFAULT_PER_PAGE,
        }
    }
}

/// Renders the topic page with `status` (200, or the error status with `form`).
pub async fn render(
    c: &Console,
    headers: &HeaderMap,
    name: &str,
    status: StatusCode,
    form: FormState,
    notice: Option<String>,
    shown: PartitionPage,
) -> Response {
    let snap = c.shared.snapshot();
    let Some(topic) = snap.topic(name) else {
        return error_page(
            c,
            headers,
            StatusCode::NOT_FOUND,
            "name",
            &format!("no topic '{name}'"),
        );
    };
    let (configs, configs_error) = match read_configs(c, name).await {
        Ok(cfg) => (cfg.into_iter().map(config_row).collect(), None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let groups = snap
        .groups
        .iter()
        .filter(|g| g.partitions.iter().any(|p| p.topic == name))
        .map(|g| g.group_id.clone())
        .collect();
    let href = |n: usize| {
        format!(
            "/topics/{}?page={n}&per_page={}",
            encode(name),
            shown.per_page
        )
    };
    let (partitions, paging) = Paging::cut(
        "partitions",
        topic.partitions.clone(),
        shown.page,
        shown.per_page,
        href,
    );
    let view = TopicPage {
        layout: layout(c, &format!("Topic {name}"), "topics", notice),
        topic: topic.clone(),
        partitions,
        paging,
        configs,
        configs_error,
        groups,
        form,
    };
    respond(headers, status, &view)
}

/// GET `/topics/{name}`.
pub async fn show(
    State(c): AppState,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(q): Query<ShowQuery>,
) -> Response {
    let (page, per_page) = match parse_paging(&q.page, &q.per_page) {
        Ok(p) => p,
        Err((field, msg)) => {
            return error_page(&c, &headers, StatusCode::BAD_REQUEST, &field, &msg)
        }
    };
    render(
        &c,
        &headers,
        &name,
        StatusCode::OK,
        FormState::default(),
        q.notice,
        PartitionPage { page, per_page },
    )
    .await
}

/// A failed change: JSON error, or the topic page with the form's error.
async fn failed(
    c: &Console,
    headers: &HeaderMap,
    name: &str,
    form: &str,
    e: ConsoleError,
    kafka_field: fn(i16, &str) -> String,
    values: BTreeMap<String, String>,
) -> Response {
    let (status, field) = e.status_and_field(&kafka_field);
    if wants_json(headers) {
        return json_error(status, &field, &e.to_string());
    }
    if c.shared.snapshot().topic(name).is_none() {
        return error_page(c, headers, status, &field, &e.to_string());
    }
    render(
        c,
        headers,
        name,
        status,
        form_state(form, field, e.to_string(), values),
        None,
        PartitionPage::default(),
    )
    .await
}

/// Body of POST `/topics/{name}/configs`.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct AlterInput {
    #[serde(default, deserialize_with = "lenient")]
    key: String,
    #[serde(default, deserialize_with = "lenient")]
    value: String,
    /// `set` (default) or `delete` (back to the default).
    #[serde(default, deserialize_with = "lenient")]
    op: String,
}

fn alter_field(code: i16, message: &str) -> String {
    match code {
        40 if message.contains("Unknown") || message.contains("unknown") => "key",
        40 | 42 | 44 => "value",
        _ => "",
    }
    .to_string()
}

/// POST `/topics/{name}/configs`: sets or removes one topic config.
pub async fn alter_config(
    State(c): AppState,
    Path(name): Path<String>,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<AlterInput>,
) -> Response {
    let result = alter(&c, &name, &input).await;
    audit(&c, "alter-config", &name, &input, &result).await;
    match result {
        Ok(msg) => done(
            &headers,
            &format!("/topics/{}", encode(&name)),
            &msg,
            json!({ "topic": name, "key": input.key.trim(), "op": if input.op.is_empty() { "set" } else { input.op.as_str() } }),
        ),
        Err(e) => {
            let values = BTreeMap::from([
                ("key".to_string(), input.key.clone()),
                ("value".to_string(), input.value.clone()),
            ]);
            failed(&c, &headers, &name, "alter-config", e, alter_field, values).await
        }
    }
}

async fn alter(c: &Console, name: &str, input: &AlterInput) -> Result<String, ConsoleError> {
    if c.shared.snapshot().topic(name).is_none() {
        return Err(ConsoleError::NotFound(format!("no topic '{name}'")));
    }
    let key = input.key.trim();
    if key.is_empty() {
        return Err(ConsoleError::invalid("key", "a config key is required"));
    }
    let op = match input.op.as_str() {
        "" | "set" => {
            if input.value.trim().is_empty() {
                return Err(ConsoleError::invalid(
                    "value",
                    "a value is required (use 'Reset to default' to remove the setting)",
                ));
            }
            ConfigOp::Set(key.to_string(), input.value.trim().to_string())
        }
        "delete" => ConfigOp::Delete(key.to_string()),
        other => {
            return Err(ConsoleError::invalid(
                "op",
                format!("unknown operation '{other}': use set or delete"),
            ))
        }
    };
    let known = read_configs(c, name)
        .await
        .map_err(|e| ConsoleError::invalid("", e))?;
    match known.iter().find(|d| d.name == key) {
        None => {
            return Err(ConsoleError::invalid(
                "key",
                format!("'{key}' is not a topic config"),
            ));
        }
        Some(d) if d.read_only => {
            return Err(ConsoleError::invalid(
                "key",
                format!("'{key}' is read-only"),
            ));
        }
        Some(_) => {}
    }
    let result = async {
        let cluster = c.cluster();
        // Validate first so nothing is half-applied when the value is bad.
        cluster
            .alter_topic_configs(name, std::slice::from_ref(&op), true)
            .await?;
        cluster
            .alter_topic_configs(name, std::slice::from_ref(&op), false)
            .await
    }
    .await;
    result?;
    let mut notice = match &op {
        ConfigOp::Delete(k) => format!("{k} reset to its default"),
        _ => format!("{key} set to {}", input.value.trim()),
    };
    // Kafka accepts a min.insync.replicas above the replication factor; say what it does.
    if key == "min.insync.replicas" {
        let rf = c
            .shared
            .snapshot()
            .topic(name)
            .map_or(0, |t| t.replication_factor() as i64);
        if let Ok(v) = input.value.trim().parse::<i64>() {
            if rf > 0 && v > rf {
                notice.push_str(&format!(
                    ". Warning: the replication factor is {rf}, so every acks=all produce will fail with NOT_ENOUGH_REPLICAS"
                ));
            }
        }
    }
    Ok(notice)
}

/// Body of POST `/topics/{name}/partitions`.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct PartitionsInput {
    /// The new total.
    #[serde(default, deserialize_with = "lenient")]
    partitions: String,
    /// `yes`: add partitions although the topic's records are keyed.
    #[serde(default, deserialize_with = "lenient")]
    confirm_keyed: String,
}

/// Partitions whose newest record is read to tell whether a topic's records are keyed.
const KEY_SAMPLE_PARTITIONS: usize = 8;

fn partitions_field(code: i16, _message: &str) -> String {
    if code == 37 { "partitions" } else { "" }.to_string()
}

/// POST `/topics/{name}/partitions`: raises the partition count.
pub async fn add_partitions(
    State(c): AppState,
    Path(name): Path<String>,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<PartitionsInput>,
) -> Response {
    let result = grow(&c, &name, &input).await;
    audit(&c, "add-partitions", &name, &input, &result).await;
    match result {
        Ok(total) => {
            refresh(&c).await;
            done(
                &headers,
                &format!("/topics/{}", encode(&name)),
                &format!("{name} now has {total} partitions"),
                json!({ "topic": name, "partitions": total }),
            )
        }
        Err(e) => {
            let values = BTreeMap::from([("partitions".to_string(), input.partitions.clone())]);
            failed(
                &c,
                &headers,
                &name,
                "add-partitions",
                e,
                partitions_field,
                values,
            )
            .await
        }
    }
}

async fn grow(c: &Console, name: &str, input: &PartitionsInput) -> Result<i32, ConsoleError> {
    let snap = c.shared.snapshot();
    let topic = snap
        .topic(name)
        .ok_or_else(|| ConsoleError::NotFound(format!("no topic '{name}'")))?;
    let current = topic.partitions.len() as i64;
    let total = validate::int_in("partitions", &input.partitions, 1, 100_000)?;
    if total <= current {
        return Err(ConsoleError::invalid(
            "partitions",
            format!("the topic has {current} partitions: the new total must be more"),
        ));
    }
    let total = total as i32;
    if !matches!(input.confirm_keyed.as_str(), "yes" | "on" | "true") {
        if let Some(why) = keyed(c, topic).await {
            return Err(ConsoleError::invalid(
                "confirm_keyed",
                format!(
                    "{name} holds keyed records ({why}): with more partitions the default partitioner (murmur2(key) % partitions) sends most keys to another partition, so per-key order breaks across the change and consumers may see a key's new records before its old ones; confirm to add them anyway"
                ),
            ));
        }
    }
    let result = async {
        let cluster = c.cluster();
        cluster.create_partitions(name, total, false).await
    }
    .await;
    result?;
    Ok(total)
}

/// Why the topic's records count as keyed (compacted, or a sampled newest record has a
/// key), or `None`. A sample that cannot be read counts as not keyed: the warning is advice.
async fn keyed(c: &Console, topic: &rill_web::model::TopicInfo) -> Option<String> {
    if topic
        .cleanup_policy
        .as_deref()
        .is_some_and(|p| p.contains("compact"))
    {
        return Some("cleanup.policy=compact".into());
    }
    let cluster = c.cluster();
    let tps: Vec<TopicPartition> = topic
        .partitions
        .iter()
        .map(|p| TopicPartition::new(topic.name.clone(), p.partition))
        .collect();
    // Fresh ends: the snapshot may predate the records just written.
    let ends = cluster.list_offsets(&tps, OffsetSpec::Latest).await.ok()?;
    for (tp, end) in ends
        .iter()
        .filter(|(_, o)| o.offset > 0)
        .take(KEY_SAMPLE_PARTITIONS)
    {
        if let Ok(r) = cluster.fetch_records(tp, end.offset - 1, 1).await {
            if r.records.iter().any(|r| r.key.is_some()) {
                return Some(format!(
                    "the newest record of partition {} has a key",
                    tp.partition
                ));
            }
        }
    }
    None
}

/// Body of POST `/topics/{name}/delete`.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct DeleteInput {
    /// Must repeat the topic name.
    #[serde(default, deserialize_with = "lenient")]
    confirm: String,
}

/// POST `/topics/{name}/delete`: deletes the topic once its name is typed.
pub async fn delete(
    State(c): AppState,
    Path(name): Path<String>,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<DeleteInput>,
) -> Response {
    let result = remove(&c, &name, &input).await;
    audit(&c, "delete-topic", &name, &input, &result).await;
    match result {
        Ok(()) => {
            refresh(&c).await;
            done(
                &headers,
                "/topics",
                &format!("Topic {name} deleted"),
                json!({ "deleted": name }),
            )
        }
        Err(e) => {
            failed(
                &c,
                &headers,
                &name,
                "delete-topic",
                e,
                |_, _| String::new(),
                BTreeMap::new(),
            )
            .await
        }
    }
}

async fn remove(c: &Console, name: &str, input: &DeleteInput) -> Result<(), ConsoleError> {
    if c.shared.snapshot().topic(name).is_none() {
        return Err(ConsoleError::NotFound(format!("no topic '{name}'")));
    }
    if input.confirm != name {
        return Err(ConsoleError::invalid(
            "confirm",
            "type the topic's name exactly to confirm the deletion",
        ));
    }
    let result = async {
        let cluster = c.cluster();
        cluster.delete_topics(&[name.to_string()]).await
    }
    .await;
    let results = result?;
    for (_, r) in results {
        r?;
    }
    Ok(())
}
