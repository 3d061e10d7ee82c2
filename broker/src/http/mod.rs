//! The broker's HTTP API (axum): `/metrics` (Prometheus, gauges refreshed at scrape time),
//! `/healthz`, `/readyz` (503 while partitions load or a log dir is offline, with the reasons),
//! and read-only JSON: `/api/v1/node`, `/api/v1/brokers` (every registered broker with rack,
//! fenced flag, replica and leader counts), `/api/v1/partitions` (replicas, ISR and, on the
//! leader, each follower's log end and lag), `/api/v1/configs`, `/api/v1/quorum`, and
//! `/api/v1/reassignments` (`reassign.rs`).
//!
//! Access: on loopback the API is open, as it always was. Beyond loopback the node refuses to start
//! unless credentials are configured (`auth.rs`: a bearer token, HTTP Basic users, or both)
//! or `http.auth.allow.unauthenticated=true` says an open API is intended
//! (`crate::config::http`). With `http.ssl.enabled=true` it is served over TLS (`https.rs`)
//! with certificates reloaded on change; otherwise over plain TCP with `axum::serve`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;

use crate::context::Broker;
use crate::security::tls::TlsServer;

pub mod auth;
pub mod https;
pub mod reassign;

use auth::HttpAuth;

/// Serves the HTTP API on `listener` (over TLS when `tls` is given) until the task is aborted.
pub async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    auth: Arc<HttpAuth>,
    tls: Option<Arc<TlsServer>>,
) {
    let app = router(broker, auth);
    match tls {
        Some(tls) => https::serve(listener, app, tls).await,
        None => {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "HTTP server stopped");
            }
        }
    }
}

/// Loads the HTTP API's certificates when `http.ssl.enabled=true`; the error is one line
/// naming the key at fault (`http.ssl.keystore.location`, or the plain `ssl.*` key it fell
/// back to).
pub fn load_tls(config: &crate::config::BrokerConfig) -> Result<Option<Arc<TlsServer>>, String> {
    let Some(ssl) = &config.http.ssl else {
        return Ok(None);
    };
    TlsServer::new("HTTP", ssl)
        .map(|s| Some(Arc::new(s)))
        .map_err(|e| {
            // TlsServer names the plain key (`ssl.keystore.location: ...`): name the `http.` one
            // when that is where the value came from.
            let e = match e.split_once(": ") {
                Some((key, rest))
                    if key.starts_with("ssl.")
                        && config
                            .raw
                            .get(&format!("http.{key}"))
                            .is_some_and(|v| !v.trim().is_empty()) =>
                {
                    format!("http.{key}: {rest}")
                }
                _ => e,
            };
            format!("the HTTP API's TLS (http.ssl.enabled=true): {e}")
        })
}

/// The routes, separate from the listener so tests can call them directly. When `auth`
/// requires credentials, every route but the probes (`/healthz`, `/readyz`) needs them (401
/// with a challenge otherwise), as Prometheus' `authorization` or `basic_auth` scrape
/// settings send them.
pub fn router(broker: Arc<Broker>, auth: Arc<HttpAuth>) -> Router {
    let probes = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(broker.clone());
    let api = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/node", get(node))
        .route("/api/v1/partitions", get(partitions))
        .route("/api/v1/configs", get(configs))
        .route("/api/v1/quorum", get(quorum))
        .route("/api/v1/reassignments", get(reassign::reassignments))
        .route("/api/v1/brokers", get(brokers))
        .with_state(broker);
    let api = if auth.required() {
        api.layer(axum::middleware::from_fn_with_state(auth, auth::require))
    } else {
        api
    };
    probes.merge(api)
}

/// 200 once every hosted partition is loaded and every log dir is online; otherwise 503
/// with the reasons, one per line (a failed log dir names its error).
async fn readyz(State(b): State<Arc<Broker>>) -> Response {
    let mut why = String::new();
    if !b.ready.load(Ordering::Acquire) {
        why.push_str("loading partitions\n");
    }
    for (dir, off) in b.replicas.log_dir_health().offline_dirs() {
        why.push_str(&format!(
            "log dir {} offline since {} ms: {}\n",
            dir.display(),
            off.since_ms,
            off.reason
        ));
    }
    if why.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
    }
}

async fn metrics(State(b): State<Arc<Broker>>) -> Response {
    refresh_gauges(&b);
    let mut buf = String::new();
    match prometheus::TextEncoder::new().encode_utf8(&b.metrics.registry.gather(), &mut buf) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            buf,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {e}\n"),
        )
            .into_response(),
    }
}

/// Per-partition gauges are refreshed at scrape time from the partitions' cached counters, so
/// the produce path never touches them.
fn refresh_gauges(b: &Broker) {
    b.quotas.refresh_metrics(std::time::Instant::now());
    let m = &b.metrics;
    if let Some(n) = crate::resources::open_fds() {
        m.open_fds.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    let files = b.replicas.file_cache().stats();
    m.log_open_files
        .set(i64::try_from(files.open).unwrap_or(i64::MAX));
    m.log_max_open_files
        .set(i64::try_from(files.limit).unwrap_or(i64::MAX));
    // Counters follow the cache's own monotonic counts.
    m.log_file_opens
        .inc_by(files.opens.saturating_sub(m.log_file_opens.get()));
    m.log_file_evictions
        .inc_by(files.evictions.saturating_sub(m.log_file_evictions.get()));
    let image = b.controller.image();
    let (mut leaders, mut under, mut offline) = (0, 0, 0);
    let (mut under_min, mut at_min, mut not_preferred, mut total) = (0, 0, 0, 0);
    for t in image.topics.values() {
        let min_isr = b.replicas.topic_configs().get(t).min_insync_replicas;
        for p in &t.partitions {
            total += 1;
            if p.leader.0 < 0 {
                offline += 1;
            }
            if p.replicas.first() != Some(&p.leader) {
                not_preferred += 1;
            }
            if p.leader.0 == b.config.node_id {
                leaders += 1;
                if p.isr.len() < p.replicas.len() {
                    under += 1;
                }
                match p.isr.len().cmp(&min_isr) {
                    std::cmp::Ordering::Less => under_min += 1,
                    std::cmp::Ordering::Equal => at_min += 1,
                    std::cmp::Ordering::Greater => {}
                }
            }
        }
    }
    let active = matches!(
        b.controller.status().role,
        crate::controller::raft::QuorumRole::Leader
    );
    m.leader_count.set(leaders);
    m.active_controller.set(i64::from(active));
    m.under_replicated.set(under);
    m.under_min_isr.set(under_min);
    m.at_min_isr.set(at_min);
    // Kafka's controller metric: only the active controller reports it, so dashboards that
    // sum over brokers count every offline partition once.
    m.offline_partitions.set(if active { offline } else { 0 });
    let fenced = image.fenced_brokers.len() as i64;
    let only_active = |v: i64| if active { v } else { 0 };
    m.preferred_imbalance.set(only_active(not_preferred));
    m.global_partitions.set(only_active(total));
    m.global_topics.set(only_active(image.topics.len() as i64));
    m.fenced_brokers.set(only_active(fenced));
    m.active_brokers
        .set(only_active(image.brokers.len() as i64 - fenced));
    refresh_txn_gauges(b);
    refresh_group_gauges(b);
    m.log_size.reset();
    m.log_end_offset.reset();
    m.log_start_offset.reset();
    m.log_segments.reset();
    m.lso_lag.reset();
    for p in b.replicas.all() {
        let part = p.tp.partition.to_string();
        let labels = [p.tp.topic.as_str(), part.as_str()];
        m.log_size
            .with_label_values(&labels)
            .set(p.size_bytes() as i64);
        m.log_end_offset
            .with_label_values(&labels)
            .set(p.log_end_offset().0);
        m.log_start_offset
            .with_label_values(&labels)
            .set(p.log_start_offset().0);
        if let Ok(n) = p.with_log(|l| Ok(l.segment_count())) {
            m.log_segments.with_label_values(&labels).set(n as i64);
        }
        // Only the leader's last stable offset is served to consumers.
        if p.is_leader() {
            if let Ok(lso) = p.last_stable_offset() {
                m.lso_lag
                    .with_label_values(&labels)
                    .set((p.high_watermark().0 - lso.0).max(0));
            }
        }
    }
}

/// The group coordinator's gauges: groups by protocol and consumer groups by state, every
/// label reported (0 included) so that a dashboard's series never vanish.
fn refresh_group_gauges(b: &Broker) {
    let m = &b.metrics;
    let c = b.groups.counts();
    m.group_count
        .with_label_values(&["classic"])
        .set(c.classic as i64);
    m.group_count
        .with_label_values(&["consumer"])
        .set(c.consumer.iter().sum::<usize>() as i64);
    for (state, n) in crate::group::consumer::ConsumerGroupState::ALL
        .iter()
        .zip(c.consumer)
    {
        m.consumer_group_count
            .with_label_values(&[&state.name().to_ascii_lowercase()])
            .set(n as i64);
    }
}

/// The transaction coordinator's gauges: ids by state (every state reported, 0 included, so
/// a dashboard's series never vanish) and transactions open past their timeout.
fn refresh_txn_gauges(b: &Broker) {
    use crate::txn::state::TxnState;
    let m = &b.metrics;
    let now = crate::time::now_ms();
    let mut by_state = std::collections::BTreeMap::new();
    let mut past_timeout = 0;
    for d in b.txns.transactions() {
        let md = d.metadata;
        *by_state.entry(md.state).or_insert(0i64) += 1;
        let open = matches!(
            md.state,
            TxnState::Ongoing
                | TxnState::PrepareCommit
                | TxnState::PrepareAbort
                | TxnState::PrepareEpochFence
        );
        if open
            && md.txn_start_ms >= 0
            && now.saturating_sub(md.txn_start_ms) > i64::from(md.txn_timeout_ms)
        {
            past_timeout += 1;
        }
    }
    for s in TxnState::ALL {
        m.txn_ids
            .with_label_values(&[s.name()])
            .set(by_state.get(&s).copied().unwrap_or(0));
    }
    m.txn_open_past_timeout.set(past_timeout);
}

async fn quorum(State(b): State<Arc<Broker>>) -> Json<crate::controller::raft::QuorumStatus> {
    Json(b.controller.status())
}

/// One registered broker as the cluster sees it (a fenced one is down or shutting down).
#[derive(Serialize)]
struct BrokerView {
    node_id: i32,
    host: String,
    port: u16,
    rack: Option<String>,
    fenced: bool,
    controller: bool,
    /// Replicas placed on it, and partitions it leads.
    replicas: usize,
    leaders: usize,
}

/// Every registered broker, fenced ones included (Metadata leaves those out).
async fn brokers(State(b): State<Arc<Broker>>) -> Json<Vec<BrokerView>> {
    let image = b.controller.image();
    let parts: Vec<_> = image
        .topics
        .values()
        .flat_map(|t| t.partitions.iter())
        .collect();
    Json(
        image
            .brokers
            .values()
            .map(|bi| BrokerView {
                node_id: bi.id.0,
                host: bi.host.clone(),
                port: bi.port,
                rack: bi.rack.clone(),
                fenced: image.fenced_brokers.contains(&bi.id),
                controller: image.controller_id == bi.id,
                replicas: parts.iter().filter(|p| p.replicas.contains(&bi.id)).count(),
                leaders: parts.iter().filter(|p| p.leader == bi.id).count(),
            })
            .collect(),
    )
}

#[derive(Serialize)]
struct NodeView {
    node_id: i32,
    cluster_id: String,
    controller_id: i32,
    version: &'static str,
    kafka_listener: String,
    rack: Option<String>,
    log_dirs: Vec<String>,
    partitions: usize,
    ready: bool,
}

async fn node(State(b): State<Arc<Broker>>) -> Json<NodeView> {
    let image = b.controller.image();
    let me = image.brokers.get(&crate::types::BrokerId(b.config.node_id));
    Json(NodeView {
        node_id: b.config.node_id,
        cluster_id: image.cluster_id.clone(),
        controller_id: image.controller_id.0,
        version: env!("CARGO_PKG_VERSION"),
        kafka_listener: me
            .map(|m| format!("{}:{}", m.host, m.port))
            .unwrap_or_default(),
        rack: b.config.rack.clone(),
        log_dirs: b
            .config
            .log_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect(),
        partitions: b.replicas.all().len(),
        ready: b.ready.load(Ordering::Acquire),
    })
}

#[derive(Serialize)]
struct SegmentView {
    base_offset: i64,
    size_bytes: u64,
    max_timestamp: i64,
}

#[derive(Serialize)]
struct PartitionView {
    topic: String,
    partition: i32,
    topic_id: String,
    leader_epoch: i32,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
    size_bytes: u64,
    dir: String,
    segments: Vec<SegmentView>,
    is_leader: bool,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    /// On the leader: each follower's log end offset (-1 until it fetched in this leader
    /// epoch) and how many messages it is behind.
    followers: Vec<FollowerView>,
}

#[derive(Serialize)]
struct FollowerView {
    replica: i32,
    log_end_offset: i64,
    lag_messages: i64,
    in_isr: bool,
}

async fn partitions(State(b): State<Arc<Broker>>) -> Json<Vec<PartitionView>> {
    let views = b
        .replicas
        .all()
        .into_iter()
        .map(|p| {
            let (dir, segments) = p
                .with_log(|l| {
                    Ok((
                        l.dir().display().to_string(),
                        l.segments_info()
                            .into_iter()
                            .map(|s| SegmentView {
                                base_offset: s.base_offset.0,
                                size_bytes: s.size_bytes,
                                max_timestamp: s.max_timestamp,
                            })
                            .collect(),
                    ))
                })
                .unwrap_or_default();
            PartitionView {
                topic: p.tp.topic.clone(),
                partition: p.tp.partition,
                topic_id: p.topic_id.to_string(),
                leader_epoch: p.leader_epoch().0,
                log_start_offset: p.log_start_offset().0,
                log_end_offset: p.log_end_offset().0,
                high_watermark: p.high_watermark().0,
                size_bytes: p.size_bytes(),
                dir,
                segments,
                is_leader: p.is_leader(),
                replicas: p.replicas().iter().map(|r| r.0).collect(),
                isr: p.isr().iter().map(|r| r.0).collect(),
                followers: p
                    .followers()
                    .into_iter()
                    .map(|(id, f)| {
                        let leo = p.log_end_offset().0;
                        FollowerView {
                            replica: id.0,
                            log_end_offset: f.log_end_offset,
                            lag_messages: if f.log_end_offset < 0 {
                                leo
                            } else {
                                (leo - f.log_end_offset).max(0)
                            },
                            in_isr: p.isr().contains(&id),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    Json(views)
}

#[derive(Serialize)]
struct ConfigView {
    name: String,
    /// `null` for secrets (`sensitive`).
    value: Option<String>,
    source: &'static str,
    sensitive: bool,
}

async fn configs(State(b): State<Arc<Broker>>) -> Json<Vec<ConfigView>> {
    use crate::config::defs::ConfigSource;
    Json(
        crate::api::describe_configs::broker_configs(&b)
            .into_iter()
            .map(|(name, value, _, source)| ConfigView {
                name,
                value: Some(value),
                sensitive: false,
                source: match source {
                    ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
                    ConfigSource::Topic => "DYNAMIC_TOPIC_CONFIG",
                    ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
                    ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
                    ConfigSource::Default => "DEFAULT_CONFIG",
                },
            })
            .chain(
                crate::config::security::described(&b.config.raw)
                    .into_iter()
                    .map(|(name, value)| ConfigView {
                        name,
                        sensitive: value.is_none(),
                        value,
                        source: "STATIC_BROKER_CONFIG",
                    }),
            )
            .collect(),
    )
}
