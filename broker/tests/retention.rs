//! Retention deletes old segments by time and by size, never the active segment.

mod common;

use std::time::Duration;

use common::{wait_for, BrokerProc};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

const T: Duration = Duration::from_secs(20);

fn partition_view(b: &BrokerProc, topic: &str) -> Option<serde_json::Value> {
    let (status, body) = b.http_get("/api/v1/partitions");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    v.as_array()?.iter().find(|p| p["topic"] == topic).cloned()
}

async fn fill(b: &BrokerProc, topic: &str, n: usize) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    for i in 0..n {
        p.send(
            FutureRecord::<(), _>::to(topic).payload(&format!("{i:0>200}")),
            T,
        )
        .await
        .expect("sent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_retention_deletes_old_segments_only() {
    let b = BrokerProc::start(&[
        "log.segment.bytes=4096",
        "log.retention.bytes=8192",
        "log.retention.check.interval.ms=100",
    ]);
    fill(&b, "sized", 200).await;
    let p = wait_for(30, "size retention to run", || {
        let p = partition_view(&b, "sized")?;
        (p["size_bytes"].as_u64()? <= 8192 + 4096 && p["log_start_offset"].as_i64()? > 0)
            .then_some(p)
    });
    let segs = p["segments"].as_array().expect("segments");
    assert!(!segs.is_empty(), "the active segment is never deleted");
    assert_eq!(p["log_end_offset"], 200);
    assert_eq!(
        segs.first().expect("first")["base_offset"],
        p["log_start_offset"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_retention_keeps_the_active_segment() {
    let b = BrokerProc::start(&[
        "log.segment.bytes=4096",
        "log.retention.ms=1",
        "log.retention.check.interval.ms=100",
    ]);
    fill(&b, "timed", 100).await;
    let p = wait_for(30, "time retention to run", || {
        let p = partition_view(&b, "timed")?;
        (p["segments"].as_array()?.len() == 1).then_some(p)
    });
    // Everything but the active segment is past retention.ms=1.
    let active = &p["segments"][0];
    assert_eq!(active["base_offset"], p["log_start_offset"]);
    assert!(p["log_start_offset"].as_i64().expect("start") > 0);
    assert_eq!(p["log_end_offset"], 100);
}
