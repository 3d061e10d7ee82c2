//! `/api/v1/reassignments`: every partition reassignment in progress (from the metadata image)
//! and, on the partition's leader, how far each adding replica has copied: its log end offset
//! against the leader's, the bytes of the leader's log below it (copied) and above it
//! (remaining), the copy rate over the last seconds and the time left at that rate. Other nodes
//! answer `progress: null` and name the leader to ask.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::context::Broker;
use crate::types::{BrokerId, Offset};

/// How far back the copy rate looks.
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// One adding replica's copy progress, as the leader sees it.
#[derive(Debug, Serialize)]
pub struct ReplicaProgress {
    /// The adding replica.
    pub replica: i32,
    /// Whether it has joined the ISR.
    pub in_isr: bool,
    /// Its log end offset (-1 until it has fetched in this leader epoch).
    pub log_end_offset: i64,
    /// The leader's log end offset.
    pub leader_log_end_offset: i64,
    /// Messages it is behind.
    pub lag_messages: i64,
    /// Bytes of the leader's log it has.
    pub bytes_copied: u64,
    /// Bytes of the leader's log.
    pub bytes_total: u64,
    /// Bytes still to copy.
    pub bytes_remaining: u64,
    /// Copy rate over the last seconds of polls, bytes/s (`None` until two polls apart).
    pub rate_bytes_per_sec: Option<f64>,
    /// Seconds left at that rate.
    pub eta_seconds: Option<f64>,
}

/// One reassignment in progress.
#[derive(Debug, Serialize)]
pub struct ReassignmentView {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Current replicas: the target, then those being removed.
    pub replicas: Vec<i32>,
    /// The target replica set.
    pub target: Vec<i32>,
    /// Replicas being added.
    pub adding: Vec<i32>,
    /// Replicas being removed.
    pub removing: Vec<i32>,
    /// Current leader.
    pub leader: i32,
    /// Current ISR.
    pub isr: Vec<i32>,
    /// Per adding replica, when this node leads the partition; `null` elsewhere.
    pub progress: Option<Vec<ReplicaProgress>>,
}

/// The reassignments endpoint's body.
#[derive(Debug, Serialize)]
pub struct ReassignmentsView {
    /// The node answering.
    pub node_id: i32,
    /// The reassignments in progress.
    pub reassignments: Vec<ReassignmentView>,
}

type Samples = HashMap<(String, i32, i32), VecDeque<(Instant, u64)>>;

/// Recent (time, bytes copied) per adding replica, from the polls of this endpoint.
fn samples() -> &'static Mutex<Samples> {
    static S: OnceLock<Mutex<Samples>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Records a sample and returns the rate over the window, bytes/s.
fn rate(key: (String, i32, i32), now: Instant, copied: u64) -> Option<f64> {
    let mut all = samples().lock().unwrap_or_else(|p| p.into_inner());
    let q = all.entry(key).or_default();
    q.push_back((now, copied));
    while q
        .front()
        .is_some_and(|(t, _)| now.saturating_duration_since(*t) > RATE_WINDOW)
    {
        q.pop_front();
    }
    let (t0, c0) = *q.front()?;
    let dt = now.saturating_duration_since(t0).as_secs_f64();
    (dt >= 0.2).then(|| copied.saturating_sub(c0) as f64 / dt)
}

/// Handles `GET /api/v1/reassignments`.
pub async fn reassignments(State(b): State<Arc<Broker>>) -> Json<ReassignmentsView> {
    let image = b.controller.image();
    let ids = |v: &[BrokerId]| v.iter().map(|x| x.0).collect::<Vec<_>>();
    let now = Instant::now();
    let mut out = Vec::new();
    for (topic, parts) in &image.reassignments {
        for (partition, r) in parts {
            let Some(meta) = image.partition(topic, *partition) else {
                continue;
            };
            let progress = b
                .replicas
                .get(topic, *partition)
                .filter(|p| p.is_leader())
                .map(|p| {
                    let leo = p.log_end_offset().0;
                    let followers: HashMap<BrokerId, i64> = p
                        .followers()
                        .into_iter()
                        .map(|(id, f)| (id, f.log_end_offset))
                        .collect();
                    r.adding
                        .iter()
                        .map(|a| {
                            let fleo = followers.get(a).copied().unwrap_or(-1);
                            let (copied, total) = p
                                .with_log(|l| {
                                    Ok((l.bytes_before(Offset(fleo.max(0))), l.size_bytes()))
                                })
                                .unwrap_or((0, 0));
                            let copied = if fleo < 0 { 0 } else { copied.min(total) };
                            let remaining = total - copied;
                            let rate = rate((topic.clone(), *partition, a.0), now, copied);
                            ReplicaProgress {
                                replica: a.0,
                                in_isr: meta.isr.contains(a),
                                log_end_offset: fleo,
                                leader_log_end_offset: leo,
                                lag_messages: if fleo < 0 { leo } else { (leo - fleo).max(0) },
                                bytes_copied: copied,
                                bytes_total: total,
                                bytes_remaining: remaining,
                                rate_bytes_per_sec: rate,
                                eta_seconds: rate
                                    .filter(|r| *r > 0.0)
                                    .map(|r| remaining as f64 / r),
                            }
                        })
                        .collect()
                });
            out.push(ReassignmentView {
                topic: topic.clone(),
                partition: *partition,
                replicas: ids(&meta.replicas),
                target: ids(&r.target(&meta.replicas)),
                adding: ids(&r.adding),
                removing: ids(&r.removing),
                leader: meta.leader.0,
                isr: ids(&meta.isr),
                progress,
            });
        }
    }
    Json(ReassignmentsView {
        node_id: b.config.node_id,
        reassignments: out,
    })
}
