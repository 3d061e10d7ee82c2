//! `POST /reassign/elect`: preferred leader elections (ElectLeaders) for one topic (the
//! topic page's button) or the whole cluster (the reassignment page).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use rill_client::{ClientError, ElectionKind, TopicPartition};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit;
use super::reassign::{failed, Inputs};
use crate::console::http::{done, lenient, AppState, ConsoleError, FormOrJson};
use crate::console::state::Console;

/// ELECTION_NOT_NEEDED: the preferred replica already leads.
const ELECTION_NOT_NEEDED: i16 = 84;

/// Body of POST `/reassign/elect`.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct ElectInput {
    /// A topic, or empty for every partition of the cluster.
    #[serde(default, deserialize_with = "lenient")]
    topic: String,
}

/// POST `/reassign/elect`: preferred leader election (ElectLeaders) for one topic or the
/// whole cluster. Partitions whose preferred replica already leads count as not needed.
pub async fn elect(
    State(c): AppState,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<ElectInput>,
) -> Response {
    let result = run_election(&c, input.topic.trim()).await;
    let target = if input.topic.trim().is_empty() {
        "cluster"
    } else {
        input.topic.trim()
    };
    audit(&c, "elect-leaders", target, &input, &result).await;
    match result {
        Ok((elected, failed)) => {
            super::refresh(&c).await;
            let back = if input.topic.trim().is_empty() {
                "/reassign".to_string()
            } else {
                format!(
                    "/topics/{}",
                    crate::console::http::encode(input.topic.trim())
                )
            };
            let msg = if failed.is_empty() {
                format!("Preferred leader elected for {elected} partition(s)")
            } else {
                format!(
                    "Preferred leader elected for {elected} partition(s); not for {}",
                    failed.join("; ")
                )
            };
            done(
                &headers,
                &back,
                &msg,
                json!({"elected": elected, "failed": failed}),
            )
        }
        Err(e) => {
            let values = BTreeMap::from([("topic".to_string(), input.topic.clone())]);
            failed(&c, &headers, "elect-leaders", e, Inputs::default(), values).await
        }
    }
}

async fn run_election(c: &Console, topic: &str) -> Result<(usize, Vec<String>), ConsoleError> {
    let tps: Option<Vec<TopicPartition>> = if topic.is_empty() {
        None
    } else {
        let snap = c.shared.snapshot();
        let t = snap
            .topic(topic)
            .ok_or_else(|| ConsoleError::NotFound(format!("no topic '{topic}'")))?;
        Some(
            t.partitions
                .iter()
                .map(|p| TopicPartition::new(topic, p.partition))
                .collect(),
        )
    };
    let result = async {
        let cluster = c.cluster();
        cluster
            .elect_leaders(ElectionKind::Preferred, tps.as_deref())
            .await
    }
    .await;
    let results = result?;
    let mut elected = 0;
    let mut failed = Vec::new();
    for (tp, r) in results {
        match r {
            Ok(()) => elected += 1,
            Err(ClientError::Kafka { code, .. }) if code == ELECTION_NOT_NEEDED => {}
            Err(e) => failed.push(format!("{tp}: {e}")),
        }
    }
    Ok((elected, failed))
}
