//! Reassignment progress from the brokers' own HTTP API (`/api/v1/reassignments`, given
//! with `rill console --broker-http`): the partition leader's view of each adding
//! replica (bytes copied of its log, rate, ETA). A tiny HTTP/1.1 GET over a TCP stream,
//! since that is all the console needs.

use std::time::Duration;

use rill_web::reassign::ProgressRow;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Deserialize)]
struct Body {
    reassignments: Vec<View>,
}

#[derive(Deserialize)]
struct View {
    topic: String,
    partition: i32,
    replicas: Vec<i32>,
    progress: Option<Vec<Replica>>,
}

#[derive(Deserialize)]
struct Replica {
    replica: i32,
    bytes_copied: u64,
    bytes_total: u64,
    bytes_remaining: u64,
    rate_bytes_per_sec: Option<f64>,
    eta_seconds: Option<f64>,
}

/// GETs `path` from `base` (`http://host:port`); the body of a 200 answer.
async fn get(base: &str, path: &str, timeout: Duration) -> Option<String> {
    let host = base
        .strip_prefix("http://")
        .unwrap_or(base)
        .trim_end_matches('/');
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(host).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8(buf).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_string())
    };
    tokio::time::timeout(timeout, fetch).await.ok().flatten()
}

/// Progress rows from every broker that answers: each reassignment's leader reports its
/// adding replicas. `None` when no broker answered.
pub async fn progress(urls: &[String], timeout: Duration) -> Option<Vec<ProgressRow>> {
    let mut rows: Vec<ProgressRow> = Vec::new();
    let mut answered = false;
    for url in urls {
        let Some(body) = get(url, "/api/v1/reassignments", timeout).await else {
            tracing::debug!(url, "broker HTTP API not reachable");
            continue;
        };
        let Ok(parsed) = serde_json::from_str::<Body>(&body) else {
            tracing::warn!(url, "unexpected /api/v1/reassignments answer");
            continue;
        };
        answered = true;
        for v in parsed.reassignments {
            for r in v.progress.unwrap_or_default() {
                if rows.iter().any(|x| {
                    x.topic == v.topic && x.partition == v.partition && x.replica == r.replica
                }) {
                    continue;
                }
                let total = i64::try_from(r.bytes_total).unwrap_or(i64::MAX);
                let copied = i64::try_from(r.bytes_copied).unwrap_or(i64::MAX);
                rows.push(ProgressRow {
                    topic: v.topic.clone(),
                    partition: v.partition,
                    replica: r.replica,
                    replicas: v.replicas.clone(),
                    copied,
                    total,
                    remaining: i64::try_from(r.bytes_remaining).unwrap_or(i64::MAX),
                    rate: r.rate_bytes_per_sec,
                    eta_seconds: r.eta_seconds,
                    percent: if total > 0 {
                        (copied as f64 * 100.0 / total as f64).clamp(0.0, 100.0)
                    } else {
                        0.0
                    },
                });
            }
        }
    }
    answered.then_some(rows)
}
