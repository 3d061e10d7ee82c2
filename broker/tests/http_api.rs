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
        // The file system's size and free space, as df (coreutils) reads them.
        let df = std::process::Command::new("df")
            .args(["-B1", "--output=size,avail", res.log_dir.as_str()])
            .output()
            .expect("df");
        let text = String::from_utf8_lossy(&df.stdout);
        let nums: Vec<i64> = text
            .lines()
            .nth(1)
            .expect("df line")
            .split_whitespace()
            .map(|n| n.parse().expect("df number"))
            .collect();
        assert_eq!(res.total_bytes, nums[0], "{}", res.log_dir.as_str());
        assert!(
            (res.usable_bytes - nums[1]).abs() < 64 << 20,
            "usable {} vs df {}",
            res.usable_bytes,
            nums[1]
        );
        assert!(res.usable_bytes > 0 && res.usable_bytes <= res.total_bytes);
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

/// An argon2 hash of `password`, as `rill console --hash-password` prints it.
fn argon2_hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes()).expect("salt");
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("hash")
        .to_string()
}

/// `Authorization: Basic` for raw `user:password` bytes.
fn basic(credentials: &[u8]) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

/// The `WWW-Authenticate` values of a response head.
fn challenges(head: &str) -> Vec<String> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("www-authenticate"))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

/// A users file holding `alice` (password `wonderland`) and `bob` (`builder`).
fn users_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("http-users");
    std::fs::write(
        &path,
        format!(
            "# the HTTP API's users\nalice:{}\n\nbob:{}\n",
            argon2_hash("wonderland"),
            argon2_hash("builder")
        ),
    )
    .expect("write users");
    path
}

/// With `http.auth.basic.users.file`, the API takes Basic credentials that verify against the
/// argon2 hashes; wrong, unknown and malformed ones are all a plain 401 with the challenge.
#[test]
fn the_http_api_takes_basic_auth() {
    let dir = tempfile::tempdir().expect("tmp");
    let users = users_file(dir.path());
    let b = BrokerProc::start(&[&format!("http.auth.basic.users.file={}", users.display())]);
    let alice = basic(b"alice:wonderland");
    for path in ["/metrics", "/api/v1/node"] {
        let (status, head, _) = common::http_exchange(&b.http, path, &[]);
        assert_eq!(status, 401, "{path} without credentials");
        assert_eq!(challenges(&head).len(), 1, "{head}");
        assert!(
            challenges(&head)[0].starts_with("Basic realm=\"rill\""),
            "{head}"
        );
        // Twice: the second answer comes from the cache of successful checks.
        for _ in 0..2 {
            let (status, _) = common::http_get_with(&b.http, path, &[("Authorization", &alice)]);
            assert_eq!(status, 200, "{path} as alice");
        }
    }
    let (status, _) = common::http_get_with(
        &b.http,
        "/api/v1/node",
        &[("Authorization", &basic(b"bob:builder"))],
    );
    assert_eq!(status, 200, "bob");
    // A wrong password and an unknown user are answered alike.
    let wrong = common::http_exchange(
        &b.http,
        "/api/v1/node",
        &[("Authorization", &basic(b"alice:looking-glass"))],
    );
    let unknown = common::http_exchange(
        &b.http,
        "/api/v1/node",
        &[("Authorization", &basic(b"mallory:wonderland"))],
    );
    assert_eq!(wrong.0, 401);
    assert_eq!((wrong.0, &wrong.2), (unknown.0, &unknown.2));
    assert_eq!(challenges(&wrong.1), challenges(&unknown.1));
    // Malformed headers: not base64, no colon, not UTF-8, over-long, other schemes.
    let long = format!("Basic {}", "QUFB".repeat(2048));
    for bad in [
        "Basic !!!not-base64!!!".to_string(),
        basic(b"alice-without-a-colon"),
        basic(&[0xff, 0xfe, b':', 0xfd]),
        "Basic".to_string(),
        "Bearer wonderland".to_string(),
        "Digest username=\"alice\"".to_string(),
        long,
    ] {
        let (status, _) =
            common::http_get_with(&b.http, "/api/v1/node", &[("Authorization", &bad)]);
        assert_eq!(status, 401, "{bad:.40}");
    }
    assert_eq!(b.http_get("/healthz").0, 200, "the probes stay open");
    assert_eq!(b.http_get("/readyz").0, 200);
    // The file's path is not a secret: listed with its value.
    let (_, cfg) = common::http_get_with(&b.http, "/api/v1/configs", &[("Authorization", &alice)]);
    let cfg: serde_json::Value = serde_json::from_str(&cfg).expect("json");
    let entry = cfg
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["name"] == "http.auth.basic.users.file")
        .expect("listed");
    assert_eq!(entry["sensitive"], false);
    assert_eq!(entry["value"], users.display().to_string());
}

/// With both a token and Basic users configured, either credential passes, and a refusal
/// challenges for both.
#[test]
fn the_http_api_takes_a_token_or_basic_auth() {
    let dir = tempfile::tempdir().expect("tmp");
    let users = users_file(dir.path());
    let b = BrokerProc::start(&[
        "http.auth.token=s3cret-token",
        &format!("http.auth.basic.users.file={}", users.display()),
    ]);
    let path = "/api/v1/node";
    for (auth, want) in [
        ("Bearer s3cret-token".to_string(), 200),
        (basic(b"alice:wonderland"), 200),
        ("Bearer wrong".to_string(), 401),
        (basic(b"alice:s3cret-token"), 401),
    ] {
        let (status, _) = common::http_get_with(&b.http, path, &[("Authorization", &auth)]);
        assert_eq!(status, want, "{auth}");
    }
    let (status, head, _) = common::http_exchange(&b.http, path, &[]);
    assert_eq!(status, 401);
    let c = challenges(&head);
    assert!(
        c.iter().any(|v| v.starts_with("Basic realm=\"rill\"")) && c.iter().any(|v| v == "Bearer"),
        "{head}"
    );
}

/// A test CA, and server certificates it signs for 127.0.0.1 (as `rill dev --secure`).
struct TestPki {
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl TestPki {
    fn new() -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate().expect("ca key");
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "rill http test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).expect("ca");
        TestPki { ca, ca_key }
    }

    /// A server's key and certificate PEM (one keystore file), and the certificate's DER.
    fn server(&self, cn: &str) -> (String, Vec<u8>) {
        use rcgen::{CertificateParams, DnType, KeyPair, SanType};
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        let cert = params
            .signed_by(&key, &self.ca, &self.ca_key)
            .expect("sign");
        (
            format!("{}{}", key.serialize_pem(), cert.pem()),
            cert.der().to_vec(),
        )
    }

    /// A TLS client trusting only this CA.
    fn client(&self) -> std::sync::Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).expect("root");
        std::sync::Arc::new(
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    }
}

/// Writes `text` to `path` as a certificate rotation does: a new file renamed into place.
fn replace_file(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// A TLS connection to `base` (`https://host:port`), verified against the test CA for
/// 127.0.0.1, with its handshake done.
fn tls_connect(
    client: &std::sync::Arc<rustls::ClientConfig>,
    base: &str,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>, String> {
    let addr = base.trim_start_matches("https://");
    let tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let conn = rustls::ClientConnection::new(client.clone(), name).map_err(|e| e.to_string())?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .map_err(|e| format!("handshake: {e}"))?;
    }
    Ok(s)
}

/// The DER of the certificate the server presents to a new connection.
fn served_certificate(client: &std::sync::Arc<rustls::ClientConfig>, base: &str) -> Vec<u8> {
    let s = tls_connect(client, base).expect("TLS connection");
    s.conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .expect("a server certificate")
}

/// `GET` over TLS: (status, body).
fn https_get(
    client: &std::sync::Arc<rustls::ClientConfig>,
    base: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut s = tls_connect(client, base).expect("TLS connection");
    let host = base.trim_start_matches("https://").to_string();
    let (status, _, body) = common::http_over(&mut s, &host, path, headers);
    (status, body)
}

/// `http.ssl.enabled=true` serves the API over TLS with the `http.ssl.*` keystore; the
/// credentials work as over plain HTTP; a client that fails its handshake (plain HTTP on the
/// TLS port, garbage) costs only its own connection.
#[test]
fn the_http_api_over_tls() {
    let dir = tempfile::tempdir().expect("tmp");
    let pki = TestPki::new();
    let keystore = dir.path().join("http.pem");
    let (pem, der) = pki.server("rill-http");
    std::fs::write(&keystore, pem).expect("write keystore");
    let b = BrokerProc::start(&[
        "http.ssl.enabled=true",
        &format!("http.ssl.keystore.location={}", keystore.display()),
        "http.auth.token=s3cret-token",
    ]);
    assert!(b.http.starts_with("https://"), "ready line: {}", b.http);
    let client = pki.client();
    assert_eq!(served_certificate(&client, &b.http), der);
    assert_eq!(https_get(&client, &b.http, "/healthz", &[]).0, 200);
    assert_eq!(https_get(&client, &b.http, "/api/v1/node", &[]).0, 401);
    let auth = [("Authorization", "Bearer s3cret-token")];
    let (status, node) = https_get(&client, &b.http, "/api/v1/node", &auth);
    assert_eq!(status, 200);
    let node: serde_json::Value = serde_json::from_str(&node).expect("json");
    assert_eq!(node["node_id"], 1);
    // Plain HTTP and garbage on the TLS port get no answer, and cost nothing else.
    let plain = b.http.replace("https://", "http://");
    for _ in 0..3 {
        assert_eq!(common::http_get(&plain, "/healthz").0, 0, "no plain HTTP");
        use std::io::Write;
        let mut s =
            std::net::TcpStream::connect(b.http.trim_start_matches("https://")).expect("connect");
        let _ = s.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0, 0, 0, 0]);
    }
    // A client that does not trust the server's CA fails its own handshake only.
    let stranger = TestPki::new().client();
    assert!(tls_connect(&stranger, &b.http).is_err());
    let (status, metrics) = https_get(&client, &b.http, "/metrics", &auth);
    assert_eq!(status, 200);
    assert!(metrics.contains("kafka_server_replicamanager_partitioncount"));
    // The TLS settings are listed; the keystore's path is not a secret.
    let (_, cfg) = https_get(&client, &b.http, "/api/v1/configs", &auth);
    let cfg: serde_json::Value = serde_json::from_str(&cfg).expect("json");
    let value = |name: &str| {
        cfg.as_array()
            .expect("array")
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| (c["value"].clone(), c["sensitive"].clone()))
    };
    assert_eq!(
        value("http.ssl.enabled"),
        Some((serde_json::json!("true"), serde_json::json!(false)))
    );
    assert_eq!(
        value("http.ssl.keystore.location"),
        Some((
            serde_json::json!(keystore.display().to_string()),
            serde_json::json!(false)
        ))
    );
}

/// A certificate rotated on disk (a new file renamed over the old, as cert-manager or certbot
/// do) is served to new connections without a restart; the broker's plain `ssl.*` keystore
/// is used when no `http.ssl.*` one is set.
#[test]
fn the_http_api_picks_up_a_rotated_certificate() {
    let dir = tempfile::tempdir().expect("tmp");
    let pki = TestPki::new();
    let keystore = dir.path().join("broker.pem");
    let (pem, first) = pki.server("rill-http-1");
    std::fs::write(&keystore, pem).expect("write keystore");
    let b = BrokerProc::start(&[
        "http.ssl.enabled=true",
        &format!("ssl.keystore.location={}", keystore.display()),
    ]);
    let client = pki.client();
    assert_eq!(served_certificate(&client, &b.http), first);
    let (pem, second) = pki.server("rill-http-2");
    replace_file(&keystore, &pem);
    common::wait_for(20, "the rotated certificate to be served", || {
        (served_certificate(&client, &b.http) == second).then_some(())
    });
    assert_eq!(https_get(&client, &b.http, "/api/v1/node", &[]).0, 200);
}
