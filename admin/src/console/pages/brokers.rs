//! `/brokers` and `/brokers/{id}`: the list from the snapshot with the metadata quorum;
//! one broker's configs and log dirs read from it when the page is asked for.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rill_client::describe::RESOURCE_BROKER;
use rill_client::error_name;
use rill_web::views::{
    BrokerPage, BrokersPage, ConfigRow, LogDirView, QuorumMemberView, QuorumView,
};

use crate::console::http::{error_page, layout, respond, AppState};

/// GET `/brokers`: the snapshot's brokers, and the metadata quorum read from its leader on
/// each visit (a cluster that does not answer DescribeQuorum, an older Kafka, gets a note).
pub async fn list(State(c): AppState, headers: HeaderMap) -> Response {
    let snap = c.shared.snapshot();
    let (quorum, quorum_error) = match c.cluster().describe_quorum().await {
        Ok(q) => (Some(quorum_view(&q, now_ms())), None),
        Err(e) => (
            None,
            Some(format!("The metadata quorum could not be described: {e}")),
        ),
    };
    let view = BrokersPage {
        layout: layout(&c, "Brokers", "brokers", None),
        brokers: snap.all_brokers().cloned().collect(),
        quorum,
        quorum_error,
    };
    respond(&headers, StatusCode::OK, &view)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The page's figures: lag against the leader's log end, fetch ages against `now_ms`; what
/// the leader does not know stays unknown.
fn quorum_view(q: &rill_client::quorum::QuorumInfo, now_ms: i64) -> QuorumView {
    let leader_end = q
        .voters
        .iter()
        .find(|v| v.node_id == q.leader_id)
        .and_then(|v| v.log_end_offset);
    let member = |r: &rill_client::quorum::QuorumReplica, role| QuorumMemberView {
        node_id: r.node_id,
        role,
        log_end_offset: r.log_end_offset,
        lag: leader_end
            .zip(r.log_end_offset)
            .map(|(l, e)| (l - e).max(0)),
        last_fetch_age_ms: r.last_fetch_timestamp.map(|t| (now_ms - t).max(0)),
    };
    QuorumView {
        leader_id: q.leader_id,
        leader_epoch: q.leader_epoch,
        high_watermark: q.high_watermark,
        members: q
            .voters
            .iter()
            .map(|v| {
                member(
                    v,
                    if v.node_id == q.leader_id {
                        "leader"
                    } else {
                        "follower"
                    },
                )
            })
            .chain(q.observers.iter().map(|o| member(o, "observer")))
            .collect(),
    }
}

/// GET `/brokers/{id}`.
pub async fn show(State(c): AppState, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let snap = c.shared.snapshot();
    let Some(broker) = id
        .parse::<i32>()
        .ok()
        .and_then(|id| snap.all_brokers().find(|b| b.id == id))
    else {
        return error_page(
            &c,
            &headers,
            StatusCode::NOT_FOUND,
            "id",
            &format!("no broker '{id}'"),
        );
    };
    let mut configs = Vec::new();
    let mut log_dirs = Vec::new();
    let mut error = None;
    if broker.state != rill_web::model::BrokerState::Up {
        error = Some(format!(
            "broker {} is {} ({}): configs and log dirs cannot be read; figures are the last measured ({})",
            broker.id,
            broker.state.as_str(),
            broker.error.as_deref().unwrap_or("no answer"),
            broker.last_seen_text()
        ));
    } else if c.shared.health().reachable {
        let result = async {
            let cluster = c.cluster();
            let cfg = cluster
                .describe_config_details(RESOURCE_BROKER, &broker.id.to_string())
                .await?;
            let dirs = cluster.describe_log_dirs(broker.id).await?;
            Ok::<_, rill_client::ClientError>((cfg, dirs))
        }
        .await;
        match result {
            Ok((cfg, dirs)) => {
                configs = cfg
                    .into_iter()
                    .map(|d| ConfigRow {
                        name: d.name,
                        value: d.value,
                        default_value: d.default_value,
                        source: d.source,
                        read_only: d.read_only,
                        sensitive: d.sensitive,
                        config_type: d.config_type,
                        documentation: d.documentation,
                    })
                    .collect();
                log_dirs = dirs
                    .into_iter()
                    .map(|d| LogDirView {
                        path: d.path,
                        error: (d.error_code != 0).then(|| error_name(d.error_code).to_string()),
                        total_bytes: d.total_bytes,
                        usable_bytes: d.usable_bytes,
                        size: d.partitions.values().sum(),
                        partitions: d.partitions.len(),
                    })
                    .collect();
            }
            Err(e) => {
                error = Some(format!(
                    "cannot read the broker's configs and log dirs: {e}"
                ));
            }
        }
    } else {
        error = Some("the cluster is unreachable: configs and log dirs are not available".into());
    }
    let view = BrokerPage {
        layout: layout(&c, &format!("Broker {}", broker.id), "brokers", None),
        broker: broker.clone(),
        configs,
        log_dirs,
        error,
    };
    respond(&headers, StatusCode::OK, &view)
}
