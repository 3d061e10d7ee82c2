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
    // DescribeLogDirs (kafka-log-dirs.sh) reports both dirs with their partitions.
    use kafka_protocol::messages::{ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse};
    let mut sock = common::wire::connect(&b);
    let r: DescribeLogDirsResponse = common::wire::call(
        &mut sock,
        ApiKey::DescribeLogDirs,
        4,
        1,
        &DescribeLogDirsRequest::default().with_topics(None),
    );
    assert_eq!(r.results.len(), 2);
    for res in &r.results {
        let n: usize = res
            .topics
            .iter()
            .filter(|t| t.name.0.as_str() == "spread")
            .map(|t| t.partitions.len())
            .sum();
        assert_eq!(n, 2, "{}", res.log_dir.as_str());
        assert!(res
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .all(|p| p.partition_size > 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_file_sets_defaults_and_overrides_win() {
    let dir = tempfile::tempdir().expect("tempdir");
    let props = dir.path().join("server.properties");
    std::fs::write(&props, "# as kafka-server-start.sh takes it\nnum.partitions=3\nlog.retention.hours=2\nsome.unknown.key=1\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rill-broker"))
        .arg(&props)
        .args([
            "--override",
            "num.partitions=4",
            "--override",
            "listeners=PLAINTEXT://127.0.0.1:0",
            "--override",
            "http.listener=127.0.0.1:0",
        ])
        .arg("--override")
        .arg(format!("log.dirs={}", dir.path().join("data").display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut child = out;
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let line = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .next()
        .expect("a line")
        .expect("utf8");
    let bootstrap = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("kafka="))
        .expect("kafka=")
        .to_string();
    let http = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http="))
        .expect("http=")
        .to_string();
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("producer");
    p.send(
        FutureRecord::<(), _>::to("auto").payload("x"),
        Duration::from_secs(10),
    )
    .await
    .expect("sent");
    let (_, parts) = common::http_get(&http, "/api/v1/partitions");
    let parts: serde_json::Value = serde_json::from_str(&parts).expect("json");
    let n = parts
        .as_array()
        .expect("array")
        .iter()
        .filter(|p| p["topic"] == "auto")
        .count();
    assert_eq!(n, 4, "--override beats the file");
    let (_, cfg) = common::http_get(&http, "/api/v1/configs");
    assert!(
        cfg.contains("\"name\":\"log.retention.hours\",\"value\":\"2\""),
        "{cfg}"
    );
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut err).expect("stderr");
    assert!(
        err.contains("some.unknown.key"),
        "unknown keys are warned about: {err}"
    );
}

/// With `http.auth.token`, the API and `/metrics` need the bearer token; the probes do not.
#[test]
fn the_http_api_takes_a_bearer_token() {
    let b = BrokerProc::start(&["http.auth.token=s3cret-token"]);
    for path in ["/metrics", "/api/v1/node", "/api/v1/configs"] {
        let (status, body) = b.http_get(path);
        assert_eq!(status, 401, "{path}: {body}");
        let (status, _) =
            common::http_get_with(&b.http, path, &[("Authorization", "Bearer s3cret-token")]);
        assert_eq!(status, 200, "{path} with the token");
        let (status, _) =
            common::http_get_with(&b.http, path, &[("Authorization", "Bearer wrong")]);
        assert_eq!(status, 401, "{path} with a wrong token");
    }
    assert_eq!(b.http_get("/healthz").0, 200);
    assert_eq!(b.http_get("/readyz").0, 200);
    // The token itself is a secret: listed as sensitive, never shown.
    let (_, cfg) = common::http_get_with(
        &b.http,
        "/api/v1/configs",
        &[("Authorization", "Bearer s3cret-token")],
    );
    assert!(!cfg.contains("s3cret-token"), "{cfg}");
}
