//! The broker's HTTP API: health, readiness, node info, partitions, configs and metrics.

mod common;

use std::time::Duration;

use common::BrokerProc;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_report_the_node() {
    let b = BrokerProc::start(&["broker.rack=r1"]);
    assert_eq!(b.http_get("/healthz").0, 200);
    assert_eq!(b.http_get("/readyz").0, 200);
    let (_, node) = b.http_get("/api/v1/node");
    let node: serde_json::Value = serde_json::from_str(&node).expect("json");
    assert_eq!(node["node_id"], 1);
    assert_eq!(node["rack"], "r1");
    assert_eq!(node["cluster_id"].as_str().map(str::len), Some(22));

    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .create()
        .expect("producer");
    for _ in 0..10 {
        p.send(
            FutureRecord::<(), _>::to("metered").payload("0123456789"),
            Duration::from_secs(10),
        )
        .await
        .expect("sent");
    }
    let (_, parts) = b.http_get("/api/v1/partitions");
    let parts: serde_json::Value = serde_json::from_str(&parts).expect("json");
    let m = parts
        .as_array()
        .expect("array")
        .iter()
        .find(|p| p["topic"] == "metered")
        .expect("partition listed");
    assert_eq!(m["log_end_offset"], 10);
    assert_eq!(m["high_watermark"], 10);
    assert!(m["size_bytes"].as_u64().expect("size") > 100);

    let (_, cfg) = b.http_get("/api/v1/configs");
    let cfg: serde_json::Value = serde_json::from_str(&cfg).expect("json");
    let rack = cfg
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["name"] == "broker.rack")
        .expect("broker.rack");
    assert_eq!(rack["source"], "STATIC_BROKER_CONFIG");

    let (status, metrics) = b.http_get("/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("kafka_server_brokertopicmetrics_messagesin_total{topic=\"metered\"} 10"),
        "{metrics}"
    );
    assert!(metrics.contains("kafka_log_log_logendoffset{partition=\"0\",topic=\"metered\"} 10"));
    assert!(metrics.contains("kafka_controller_kafkacontroller_activecontrollercount 1"));
    assert!(metrics.contains("kafka_server_replicamanager_partitioncount 1"));
    assert!(metrics.contains("rill_request_duration_seconds_bucket{request=\"Produce\""));
    assert!(metrics.contains("kafka_network_requestmetrics_requests_total{request=\"Produce\""));
}

#[test]
fn bad_config_is_refused_at_start_naming_the_key() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rill-broker"))
        .args(["--override", "num.partitions=lots"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("num.partitions"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_spread_over_several_log_dirs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, c) = (dir.path().join("a"), dir.path().join("c"));
    let b = BrokerProc::start(&[
        &format!("log.dirs={},{}", a.display(), c.display()),
        "num.partitions=4",
    ]);
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .create()
        .expect("producer");
    for part in 0..4 {
        p.send(
            FutureRecord::<(), _>::to("spread")
                .partition(part)
                .payload("x"),
            Duration::from_secs(10),
        )
        .await
        .expect("sent");
    }
    let count = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .expect("dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("spread-"))
            .count()
    };
    assert_eq!(
        (count(&a), count(&c)),
        (2, 2),
        "new partitions go to the log dir with fewest"
    );
    for d in [&a, &c] {
        assert!(
            d.join("meta.properties").exists(),
            "every log dir is formatted"
        );
    }
}
