//! `/topics`: the list (search, filter, sort, from the snapshot) and topic creation.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rill_client::NewTopic;
use rill_web::views::{parse_paging, Paging, TopicQuery, TopicRow, TopicsPage};
use rill_web::FormState;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{audit, refresh};
use crate::console::http::{
    done, encode, form_state, json_error, layout, lenient, respond, wants_json, AppState,
    ConsoleError, FormOrJson,
};
use crate::console::state::Console;
use crate::console::validate;

/// Query of GET `/topics`.
#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    filter: String,
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

/// GET `/topics`.
pub async fn list(State(c): AppState, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    let notice = q.notice.clone();
    match page(&c, q, FormState::default(), notice) {
        Ok(view) => respond(&headers, StatusCode::OK, &view),
        Err((field, msg)) => json_or_page_error(&c, &headers, &field, &msg),
    }
}

fn json_or_page_error(c: &Console, headers: &HeaderMap, field: &str, msg: &str) -> Response {
    crate::console::http::error_page(c, headers, StatusCode::BAD_REQUEST, field, msg)
}

fn page(
    c: &Console,
    q: ListQuery,
    form: FormState,
    notice: Option<String>,
) -> Result<TopicsPage, (String, String)> {
    let filter = if q.filter.is_empty() {
        "all".to_string()
    } else {
        q.filter
    };
    let sort = if q.sort.is_empty() {
        "name".to_string()
    } else {
        q.sort
    };
    if !TopicQuery::FILTERS.contains(&filter.as_str()) {
        return Err(("filter".into(), format!("unknown filter '{filter}'")));
    }
    if !TopicQuery::SORTS.contains(&sort.as_str()) {
        return Err(("sort".into(), format!("unknown sort '{sort}'")));
    }
    let (page_no, per_page) = parse_paging(&q.page, &q.per_page)?;
    let snap = c.shared.snapshot();
    let needle = q.q.to_lowercase();
    let mut topics: Vec<TopicRow> = snap
        .topics
        .iter()
        .filter(|t| needle.is_empty() || t.name.to_lowercase().contains(&needle))
        .filter(|t| match filter.as_str() {
            "user" => !t.internal,
            "internal" => t.internal,
            "under-replicated" => t.under_replicated() > 0,
            "offline" => t.offline() > 0,
            _ => true,
        })
        .map(|t| TopicRow {
            name: t.name.clone(),
            internal: t.internal,
            partitions: t.partitions.len(),
            replication_factor: t.replication_factor(),
            under_replicated: t.under_replicated(),
            offline: t.offline(),
            messages: t.messages(),
            size: t.size(),
            cleanup_policy: t.cleanup_policy.clone(),
        })
        .collect();
    match sort.as_str() {
        "partitions" => topics.sort_by_key(|t| std::cmp::Reverse(t.partitions)),
        "messages" => topics.sort_by_key(|t| std::cmp::Reverse(t.messages)),
        "size" => topics.sort_by_key(|t| std::cmp::Reverse(t.size)),
        "under-replicated" => topics.sort_by_key(|t| std::cmp::Reverse(t.under_replicated)),
        _ => {}
    }
    let href = |n: usize| {
        format!(
            "/topics?q={}&filter={filter}&sort={sort}&page={n}&per_page={per_page}",
            encode(&q.q)
        )
    };
    let (topics, paging) = Paging::cut("topics", topics, page_no, per_page, href);
    Ok(TopicsPage {
        layout: layout(c, "Topics", "topics", notice),
        query: TopicQuery {
            q: q.q,
            filter,
            sort,
        },
        topics,
        total: snap.topics.len(),
        paging,
        form,
    })
}

/// Body of POST `/topics`.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct CreateInput {
    #[serde(default, deserialize_with = "lenient")]
    name: String,
    #[serde(default, deserialize_with = "lenient")]
    partitions: String,
    #[serde(default, deserialize_with = "lenient")]
    replication_factor: String,
    /// `key=value` lines.
    #[serde(default, deserialize_with = "lenient")]
    configs: String,
}

impl CreateInput {
    fn values(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("name".into(), self.name.clone()),
            ("partitions".into(), self.partitions.clone()),
            ("replication_factor".into(), self.replication_factor.clone()),
            ("configs".into(), self.configs.clone()),
        ])
    }
}

/// Which field a Kafka error on CreateTopics concerns.
fn kafka_field(code: i16, _message: &str) -> String {
    match code {
        17 | 36 => "name",
        37 => "partitions",
        38 | 39 => "replication_factor",
        40 => "configs",
        _ => "",
    }
    .to_string()
}

/// POST `/topics`: creates a topic.
pub async fn create(
    State(c): AppState,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<CreateInput>,
) -> Response {
    let result = create_topic(&c, &input).await;
    audit(&c, "create-topic", input.name.trim(), &input, &result).await;
    match result {
        Ok(name) => {
            refresh(&c).await;
            done(
                &headers,
                &format!("/topics/{}", encode(&name)),
                &format!("Topic {name} created"),
                json!({ "created": name }),
            )
        }
        Err(e) => {
            let (status, field) = e.status_and_field(&kafka_field);
            if wants_json(&headers) {
                return json_error(status, &field, &e.to_string());
            }
            let form = form_state("create-topic", field, e.to_string(), input.values());
            match page(&c, ListQuery::default(), form, None) {
                Ok(view) => respond(&headers, status, &view),
                Err((f, m)) => json_or_page_error(&c, &headers, &f, &m),
            }
        }
    }
}

async fn create_topic(c: &Console, input: &CreateInput) -> Result<String, ConsoleError> {
    let name = validate::topic_name("name", &input.name)?;
    let partitions = if input.partitions.trim().is_empty() {
        None
    } else {
        Some(validate::int_in("partitions", &input.partitions, 1, 100_000)? as i32)
    };
    let rf = if input.replication_factor.trim().is_empty() {
        None
    } else {
        Some(validate::int_in(
            "replication_factor",
            &input.replication_factor,
            1,
            i64::from(i16::MAX),
        )? as i16)
    };
    let configs = validate::key_values("configs", &input.configs)?;
    let snap = c.shared.snapshot();
    if snap.topic(&name).is_some() {
        return Err(ConsoleError::invalid(
            "name",
            format!("topic '{name}' already exists"),
        ));
    }
    if let Some(rf) = rf {
        if !snap.brokers.is_empty() && usize::try_from(rf).unwrap_or(0) > snap.brokers.len() {
            return Err(ConsoleError::invalid(
                "replication_factor",
                format!(
                    "replication factor {rf} is larger than the {} broker(s)",
                    snap.brokers.len()
                ),
            ));
        }
    }
    let topic = NewTopic {
        name: name.clone(),
        partitions,
        replication_factor: rf,
        configs,
    };
    let cluster = c.cluster();
    let result = cluster.create_topics(std::slice::from_ref(&topic)).await;
    let results = result?;
    for (_, r) in results {
        r?;
    }
    Ok(name)
}
