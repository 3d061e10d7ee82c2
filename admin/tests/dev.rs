//! `rill dev` starts a multi-node cluster of child processes that real clients use; one node
//! can be killed and the rest keep serving; SIGTERM stops them all.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::wait_for;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Three runs of three consecutive free ports (Kafka, controller, HTTP).
fn port_ranges() -> (u16, u16, u16) {
    let free =
        |base: u16| (0..3).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
    let seed = std::process::id() as u32;
    for attempt in 0..200u32 {
        let base = 20_000 + ((seed.wrapping_mul(7919).wrapping_add(attempt * 97)) % 30_000) as u16;
        let (a, b, c) = (base, base + 10, base + 20);
        if free(a) && free(b) && free(c) {
            return (a, b, c);
        }
    }
    panic!("no free port ranges");
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// Starts `rill dev` with `extra` flags on the given port bases (console on a free port) and
/// reads its banner up to the `Try:` line: the process and the banner's lines.
fn start_dev(
    data: &std::path::Path,
    extra: &[&str],
    (kafka, controller, http): (u16, u16, u16),
) -> (std::process::Child, Vec<String>) {
    let mut dev = Command::new(env!("CARGO_BIN_EXE_rill"))
        .arg("dev")
        .args(extra)
        .arg("--data-dir")
        .arg(data)
        .args([
            "--port",
            &kafka.to_string(),
            "--controller-port",
            &controller.to_string(),
            "--http-port",
            &http.to_string(),
            "--console-port",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rill dev");
    let stdout = dev.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut banner = Vec::new();
    while !banner.iter().any(|l: &String| l.starts_with("Try:")) {
        banner.push(
            rx.recv_timeout(Duration::from_secs(120))
                .expect("rill dev printed its banner"),
        );
    }
    (dev, banner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_cluster_serves_survives_a_kill_and_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (kafka, controller, http) = port_ranges();
    let (mut dev, banner) = start_dev(
        &dir.path().join("data"),
        &["--nodes", "3"],
        (kafka, controller, http),
    );
    let bootstrap = banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("bootstrap servers: "))
        .expect("bootstrap line")
        .to_string();
    assert_eq!(bootstrap.split(',').count(), 3);
    let pids: Vec<u32> = banner
        .iter()
        .filter(|l| l.trim().starts_with("node "))
        .map(|l| {
            l.split_whitespace()
                .nth(3)
                .and_then(|p| p.parse().ok())
                .expect("pid")
        })
        .collect();
    assert_eq!(pids.len(), 3, "{banner:?}");
    // The console runs too and answers.
    let console = banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("console: http://"))
        .expect("console line")
        .trim_end_matches('/')
        .to_string();
    let mut s = std::net::TcpStream::connect(&console).expect("connect to the console");
    std::io::Write::write_all(
        &mut s,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .expect("request");
    let mut resp = String::new();
    std::io::Read::read_to_string(&mut s, &mut resp).expect("response");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("admin");
    let r = admin
        .create_topics(
            [&NewTopic::new("dev-topic", 3, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create");
    assert!(r[0].is_ok(), "{:?}", r[0]);
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("producer");
    for i in 0..30 {
        p.send(
            FutureRecord::<(), _>::to("dev-topic")
                .partition(i % 3)
                .payload("x"),
            Duration::from_secs(20),
        )
        .await
        .expect("delivered");
    }

    // kill -9 one node: the other two keep a quorum and still create topics.
    let victim = pids[2];
    Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .expect("kill");
    wait_for(20, "the killed node to be gone", || {
        (!alive(victim)).then_some(())
    });
    let first_node = bootstrap.split(',').next().expect("node 1").to_string();
    let survivors: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &first_node)
        .create()
        .expect("admin");
    let r = survivors
        .create_topics(
            [&NewTopic::new("after-kill", 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("create");
    assert!(r[0].is_ok(), "{:?}", r[0]);
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &first_node)
        .create()
        .expect("client");
    let md = c
        .fetch_metadata(Some("after-kill"), Duration::from_secs(10))
        .expect("metadata");
    assert_eq!(md.topics()[0].partitions().len(), 1);

    // SIGTERM to `rill dev` stops every node.
    Command::new("kill")
        .args(["-TERM", &dev.id().to_string()])
        .status()
        .expect("kill");
    let status = wait_for(60, "rill dev to exit", || dev.try_wait().ok().flatten());
    assert!(status.success(), "{status}");
    for pid in &pids[..2] {
        wait_for(20, "the nodes to stop", || (!alive(*pid)).then_some(()));
    }
}

/// `rill dev --secure`: clients must come over SASL_SSL; the printed client config works for
/// `rill` (topics, users, acls), ACLs are enforced, and the console reaches the cluster.
#[test]
fn dev_secure_cluster_takes_sasl_ssl_clients_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The INTERNAL listener is on --port + 1000.
    let (kafka, controller, http) = loop {
        let r = port_ranges();
        if std::net::TcpListener::bind(("127.0.0.1", r.0 + 1000)).is_ok() {
            break r;
        }
    };
    let (mut dev, banner) = start_dev(
        &dir.path().join("data"),
        &["--secure", "--nodes", "1"],
        (kafka, controller, http),
    );
    let bootstrap = banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("bootstrap servers: "))
        .expect("bootstrap line")
        .to_string();
    assert_eq!(bootstrap, format!("127.0.0.1:{kafka}"), "{banner:?}");
    assert!(
        banner
            .iter()
            .any(|l| l.trim() == "security.protocol=SASL_SSL"),
        "the banner shows the client config: {banner:?}"
    );
    let props = dir
        .path()
        .join("data")
        .join("secure")
        .join("client.properties");
    let props = props.to_str().expect("utf-8 path");
    let rill = |args: &[&str]| common::rill(args);

    // Without the client config the SASL_SSL port refuses the CLI.
    let plain = rill(&[
        "topics",
        "--bootstrap-server",
        &bootstrap,
        "--list",
        "--timeout",
        "3000",
    ]);
    assert_eq!(plain.code, 1, "{plain:?}");

    let with = |cmd: &str, extra: &[&str]| -> Vec<String> {
        let mut a = vec![
            cmd,
            "--bootstrap-server",
            bootstrap.as_str(),
            "--command-config",
            props,
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(str::to_string).collect()
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        rill(&a)
    };
    run(with(
        "topics",
        &["--create", "--topic", "secure-t", "--partitions", "2"],
    ))
    .ok();
    assert!(run(with("topics", &["--list"]))
        .ok()
        .lines()
        .any(|l| l == "secure-t"));

    // SCRAM users: the admin made by `rill dev`, then one added and described.
    let users = run(with("users", &["--describe", "--output", "json"])).json();
    let admin = users["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["user"] == "admin")
        .expect("the admin user");
    assert_eq!(
        admin["credentials"].as_array().map(Vec::len),
        Some(2),
        "{users}"
    );
    run(with(
        "users",
        &[
            "--alter",
            "--entity-name",
            "bob",
            "--add-config",
            "SCRAM-SHA-256=[iterations=4096,password=bob-pw]",
        ],
    ))
    .ok();
    let bob_props = dir.path().join("bob.properties");
    std::fs::write(
        &bob_props,
        std::fs::read_to_string(props)
            .expect("client.properties")
            .replace("SCRAM-SHA-512", "SCRAM-SHA-256")
            .replace("username=\"admin\"", "username=\"bob\"")
            .lines()
            .map(|l| {
                if l.starts_with("sasl.jaas.config") {
                    "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"bob\" password=\"bob-pw\";".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .expect("write");
    let bob_lists = || {
        rill(&[
            "topics",
            "--bootstrap-server",
            &bootstrap,
            "--command-config",
            bob_props.to_str().expect("utf-8"),
            "--list",
        ])
        .ok()
        .lines()
        .any(|l| l == "secure-t")
    };
    // ACLs are on: bob sees nothing until the admin grants him the topic's prefix.
    assert!(!bob_lists(), "deny by default");
    let grant = [
        "--allow-principal",
        "User:bob",
        "--consumer",
        "--topic",
        "secure-",
        "--group",
        "bob-",
        "--resource-pattern-type",
        "prefixed",
    ];
    let mut add = vec!["--add"];
    add.extend_from_slice(&grant);
    run(with("acls", &add)).ok();
    let listed = run(with(
        "acls",
        &["--list", "--principal", "User:bob", "--output", "json"],
    ))
    .json();
    assert_eq!(listed["acls"].as_array().map(Vec::len), Some(3), "{listed}");
    assert!(bob_lists(), "the prefixed ACL lets bob see secure-t");
    // Removing needs --force.
    let mut remove = vec!["--remove"];
    remove.extend_from_slice(&grant);
    assert_eq!(run(with("acls", &remove)).code, 2);
    remove.push("--force");
    run(with("acls", &remove)).ok();
    assert!(!bob_lists(), "bob's ACLs are gone");
    // A wrong password is refused with Kafka's message.
    std::fs::write(
        &bob_props,
        std::fs::read_to_string(&bob_props)
            .expect("read")
            .replace("bob-pw", "nope"),
    )
    .expect("write");
    let refused = rill(&[
        "topics",
        "--bootstrap-server",
        &bootstrap,
        "--command-config",
        bob_props.to_str().expect("utf-8"),
        "--list",
        "--timeout",
        "3000",
    ]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("invalid credentials"),
        "{refused:?}"
    );

    // The console reaches the cluster over SASL_SSL with the same config.
    let console = banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("console: http://"))
        .expect("console line")
        .trim_end_matches('/')
        .to_string();
    wait_for(30, "the console to list secure-t", || {
        let mut s = std::net::TcpStream::connect(&console).ok()?;
        std::io::Write::write_all(
            &mut s,
            b"GET /topics HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        )
        .ok()?;
        let mut resp = String::new();
        std::io::Read::read_to_string(&mut s, &mut resp).ok()?;
        resp.contains("\"secure-t\"").then_some(())
    });

    Command::new("kill")
        .args(["-TERM", &dev.id().to_string()])
        .status()
        .expect("kill");
    let status = wait_for(60, "rill dev to exit", || dev.try_wait().ok().flatten());
    assert!(status.success(), "{status}");
}
