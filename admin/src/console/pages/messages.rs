//! The message browser (`/topics/{name}/messages`) and test messages
//! (`/topics/{name}/produce`): both talk to the partition's leader directly.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use rill_client::browse::NewRecord;
use rill_client::{OffsetSpec, TopicPartition};
use rill_web::format::{record_bytes, BytesFormat};
use rill_web::views::{BrowseQuery, MessagesPage, RecordView};
use rill_web::FormState;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit;
use super::topic::render;
use crate::console::http::{
    done, encode, error_page, form_state, json_error, layout, lenient, respond, wants_json,
    AppState, ConsoleError, FormOrJson,
};
use crate::console::state::Console;
use crate::console::validate;

/// Most records one browse shows.
const MAX_RECORDS: i64 = 500;

/// Query of GET `/topics/{name}/messages`.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct BrowseInput {
    #[serde(default)]
    partition: String,
    #[serde(default)]
    offset: String,
    #[serde(default)]
    timestamp: String,
    #[serde(default)]
    limit: String,
    #[serde(default)]
    format: String,
}

/// GET `/topics/{name}/messages`.
pub async fn messages(
    State(c): AppState,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(input): Query<BrowseInput>,
) -> Response {
    let snap = c.shared.snapshot();
    let Some(topic) = snap.topic(&name) else {
        return error_page(
            &c,
            &headers,
            StatusCode::NOT_FOUND,
            "name",
            &format!("no topic '{name}'"),
        );
    };
    let partitions: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
    let mut view = MessagesPage {
        layout: layout(&c, &format!("Messages of {name}"), "topics", None),
        topic: name.clone(),
        partitions: partitions.clone(),
        query: BrowseQuery {
            partition: 0,
            offset: input.offset.clone(),
            timestamp: input.timestamp.clone(),
            limit: 20,
            format: BytesFormat::Text,
        },
        start_offset: -1,
        records: Vec::new(),
        high_watermark: -1,
        log_start_offset: -1,
        form: FormState::default(),
    };
    match browse(&c, &name, &partitions, &input, &mut view).await {
        Ok(()) => respond(&headers, StatusCode::OK, &view),
        Err(e) => {
            let (status, field) =
                e.status_and_field(&|code, _| if code == 1 { "offset" } else { "" }.to_string());
            if wants_json(&headers) {
                return json_error(status, &field, &e.to_string());
            }
            view.form = form_state("browse", field, e.to_string(), BTreeMap::new());
            respond(&headers, status, &view)
        }
    }
}

async fn browse(
    c: &Console,
    name: &str,
    partitions: &[i32],
    input: &BrowseInput,
    view: &mut MessagesPage,
) -> Result<(), ConsoleError> {
    let partition = if input.partition.trim().is_empty() {
        partitions.first().copied().unwrap_or(0)
    } else {
        validate::int_in("partition", &input.partition, 0, i64::from(i32::MAX))? as i32
    };
    if !partitions.contains(&partition) {
        return Err(ConsoleError::invalid(
            "partition",
            format!("{name} has no partition {partition}"),
        ));
    }
    view.query.partition = partition;
    let limit = if input.limit.trim().is_empty() {
        20
    } else {
        validate::int_in("limit", &input.limit, 1, MAX_RECORDS)?
    };
    view.query.limit = usize::try_from(limit).unwrap_or(20);
    let format = BytesFormat::parse(input.format.trim()).ok_or_else(|| {
        ConsoleError::invalid(
            "format",
            format!("unknown format '{}': use text, json or hex", input.format),
        )
    })?;
    view.query.format = format;
    let from_offset = if input.offset.trim().is_empty() {
        None
    } else {
        Some(validate::offset("offset", &input.offset)?)
    };
    let from_time = if input.timestamp.trim().is_empty() {
        None
    } else {
        Some(validate::timestamp("timestamp", &input.timestamp)?)
    };
    let tp = TopicPartition::new(name, partition);
    let result = async {
        let cluster = c.cluster();
        let start = match (from_time, from_offset) {
            (Some(ts), _) => {
                let o = cluster
                    .list_offsets(std::slice::from_ref(&tp), OffsetSpec::Timestamp(ts))
                    .await?;
                match o.get(&tp).map(|o| o.offset) {
                    Some(off) if off >= 0 => off,
                    // After every record: start at the end (nothing to show).
                    _ => cluster
                        .list_offsets(std::slice::from_ref(&tp), OffsetSpec::Latest)
                        .await?
                        .get(&tp)
                        .map_or(0, |o| o.offset),
                }
            }
            (None, Some(off)) => off,
            (None, None) => cluster
                .list_offsets(std::slice::from_ref(&tp), OffsetSpec::Earliest)
                .await?
                .get(&tp)
                .map_or(0, |o| o.offset),
        };
        let fetched = cluster.fetch_records(&tp, start, view.query.limit).await?;
        Ok::<_, rill_client::ClientError>((start, fetched))
    }
    .await;
    let (start, fetched) = result?;
    view.start_offset = start;
    view.high_watermark = fetched.high_watermark;
    view.log_start_offset = fetched.log_start_offset;
    view.records = fetched
        .records
        .into_iter()
        .map(|r| RecordView {
            partition,
            offset: r.offset,
            timestamp_ms: r.timestamp,
            key: record_bytes(r.key.as_deref(), format),
            value: record_bytes(r.value.as_deref(), format),
            headers: r
                .headers
                .into_iter()
                .map(|(k, v)| (k, record_bytes(v.as_deref(), format)))
                .collect(),
        })
        .collect();
    Ok(())
}

/// Body of POST `/topics/{name}/produce`.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct ProduceInput {
    /// Empty = the key's partition (Kafka's default partitioner), or 0 for a null key.
    #[serde(default, deserialize_with = "lenient")]
    partition: String,
    /// Empty = null key.
    #[serde(default, deserialize_with = "lenient")]
    key: String,
    #[serde(default, deserialize_with = "lenient")]
    value: String,
    /// `on`/`true`: a tombstone (null value; on a compacted topic it deletes the key).
    #[serde(default, deserialize_with = "lenient")]
    tombstone: String,
    /// `key=value` lines.
    #[serde(default, deserialize_with = "lenient")]
    headers: String,
}

/// POST `/topics/{name}/produce`: writes one record (acks=all).
pub async fn produce(
    State(c): AppState,
    Path(name): Path<String>,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<ProduceInput>,
) -> Response {
    let result = produce_one(&c, &name, &input).await;
    audit(&c, "produce", &name, &input, &result).await;
    match result {
        Ok((partition, offset)) => done(
            &headers,
            &format!(
                "/topics/{}/messages?partition={partition}&offset={offset}",
                encode(&name)
            ),
            &format!("Produced to {name}-{partition} at offset {offset}"),
            json!({ "topic": name, "partition": partition, "offset": offset }),
        ),
        Err(e) => {
            let (status, field) = e.status_and_field(&|_, _| String::new());
            if wants_json(&headers) {
                return json_error(status, &field, &e.to_string());
            }
            if c.shared.snapshot().topic(&name).is_none() {
                return error_page(&c, &headers, status, &field, &e.to_string());
            }
            let values = BTreeMap::from([
                ("partition".to_string(), input.partition.clone()),
                ("key".to_string(), input.key.clone()),
                ("value".to_string(), input.value.clone()),
                ("headers".to_string(), input.headers.clone()),
            ]);
            render(
                &c,
                &headers,
                &name,
                status,
                form_state("produce", field, e.to_string(), values),
                None,
                Default::default(),
            )
            .await
        }
    }
}

async fn produce_one(
    c: &Console,
    name: &str,
    input: &ProduceInput,
) -> Result<(i32, i64), ConsoleError> {
    let snap = c.shared.snapshot();
    let topic = snap
        .topic(name)
        .ok_or_else(|| ConsoleError::NotFound(format!("no topic '{name}'")))?;
    let tombstone = matches!(input.tombstone.as_str(), "on" | "true" | "1" | "yes");
    if tombstone && !input.value.is_empty() {
        return Err(ConsoleError::invalid(
            "value",
            "a tombstone has no value: clear the value or untick tombstone",
        ));
    }
    if tombstone && input.key.is_empty() {
        return Err(ConsoleError::invalid(
            "key",
            "a tombstone needs the key it deletes",
        ));
    }
    let partition = if input.partition.trim().is_empty() {
        if input.key.is_empty() {
            0
        } else {
            let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
            crate::ops::partitioner::partition_for_key(input.key.as_bytes(), count)
        }
    } else {
        validate::int_in("partition", &input.partition, 0, i64::from(i32::MAX))? as i32
    };
    if !topic.partitions.iter().any(|p| p.partition == partition) {
        return Err(ConsoleError::invalid(
            "partition",
            format!("{name} has no partition {partition}"),
        ));
    }
    let headers = validate::key_values("headers", &input.headers)?
        .into_iter()
        .map(|(k, v)| (k, Some(Bytes::from(v))))
        .collect();
    let record = NewRecord {
        key: (!input.key.is_empty()).then(|| Bytes::from(input.key.clone())),
        value: (!tombstone).then(|| Bytes::from(input.value.clone())),
        headers,
    };
    let tp = TopicPartition::new(name, partition);
    let result = async {
        let cluster = c.cluster();
        cluster.produce_record(&tp, record).await
    }
    .await;
    let offset = result?;
    Ok((partition, offset))
}
