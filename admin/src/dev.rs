//! `rill dev`: a local cluster for trying Rill out. Each node is a separate `rill broker`
//! child process (so one can be killed for a demo or a test), all of them combined
//! broker+controller nodes in one Raft metadata quorum, data under `--data-dir` — plus the
//! web console (`rill console`, another child process, its SQLite store in the data dir).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Args;

/// Arguments of `rill dev`.
#[derive(Args, Debug)]
pub struct DevArgs {
    /// Where the nodes keep their data (one folder per node) and their logs.
    #[arg(long, default_value = "./rill-data")]
    data_dir: PathBuf,
    /// How many nodes (each a broker and a metadata-quorum voter).
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// Kafka port of node 1; node N listens on this + N - 1.
    #[arg(long, default_value_t = 9092)]
    port: u16,
    /// Controller (metadata quorum) port of node 1; node N uses this + N - 1.
    #[arg(long, default_value_t = 19092)]
    controller_port: u16,
    /// HTTP API port of node 1; node N uses this + N - 1.
    #[arg(long, default_value_t = 9644)]
    http_port: u16,
    /// Port of the web console (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    console_port: u16,
    /// Do not start the web console.
    #[arg(long)]
    no_console: bool,
    /// Clients connect over SASL_SSL (SCRAM-SHA-512): a dev CA, broker certificates and an
    /// admin user are made under the data dir, and a ready client config is printed.
    /// Brokers talk to each other on loopback ports `--port` + 1000 + N - 1.
    #[arg(long)]
    secure: bool,
    /// Extra broker properties for every node, as `key=value` (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

struct Node {
    id: u16,
    child: Child,
    /// Where clients connect (the SASL_SSL listener with --secure).
    kafka: String,
    /// Where brokers and `rill dev` itself connect (the PLAINTEXT listener).
    internal: String,
    http: String,
    controller: String,
    log: PathBuf,
}

/// Starts the nodes, prints where to connect, and runs until Ctrl-C or SIGTERM.
pub fn run(args: DevArgs) -> ExitCode {
    match start(&args) {
        Ok(mut nodes) => {
            let mut console = if args.no_console {
                None
            } else {
                match start_console(&args, &nodes) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        eprintln!("rill dev: the console did not start: {e}");
                        None
                    }
                }
            };
            print_banner(&args, &nodes, console.as_ref().map(|(_, url)| url.as_str()));
            wait_for_signal();
            eprintln!("stopping the dev cluster...");
            if let Some((child, _)) = console.as_mut() {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(child.id().to_string())
                    .status();
                let _ = child.wait();
            }
            stop(&mut nodes);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rill dev: {e}");
            ExitCode::FAILURE
        }
    }
}

fn start(args: &DevArgs) -> Result<Vec<Node>, String> {
    if args.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", args.data_dir.display()))?;
    let cluster_id = cluster_id(&args.data_dir)?;
    let secure = if args.secure {
        Some(crate::dev_secure::Secure::prepare(&args.data_dir)?)
    } else {
        None
    };
    let port = |base: u16, i: u16| {
        base.checked_add(i - 1)
            .ok_or_else(|| format!("port {base} + {} is out of range", i - 1))
    };
    let mut voters = Vec::new();
    for i in 1..=args.nodes {
        voters.push(format!("{i}@127.0.0.1:{}", port(args.controller_port, i)?));
    }
    let voters = voters.join(",");
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the rill executable: {e}"))?;
    let mut launched = Vec::new();
    for i in 1..=args.nodes {
        let log = args.data_dir.join(format!("node-{i}.log"));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        let listeners = match &secure {
            Some(s) => s.broker_props(
                port(args.port, i)?,
                port(args.port.saturating_add(1000), i)?,
                port(args.controller_port, i)?,
            ),
            None => vec![format!(
                "listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                port(args.port, i)?,
                port(args.controller_port, i)?
            )],
        };
        let mut props = vec![
            format!("node.id={i}"),
            format!("cluster.id={cluster_id}"),
            format!("controller.quorum.voters={voters}"),
            format!("http.listener=127.0.0.1:{}", port(args.http_port, i)?),
            format!(
                "log.dirs={}",
                args.data_dir.join(format!("node-{i}")).display()
            ),
        ];
        props.extend(listeners);
        props.extend(args.overrides.iter().cloned());
        let mut cmd = Command::new(&exe);
        cmd.arg("broker");
        for p in &props {
            cmd.arg("--override").arg(p);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .map_err(|e| format!("cannot start node {i}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("rill-broker ready:") {
                    let _ = tx.send(line);
                }
            }
        });
        launched.push((i, child, rx, log));
    }
    // All nodes must be running before any can form the quorum and say it is ready.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut nodes = Vec::new();
    let mut failure = None;
    for (id, mut child, rx, log) in launched {
        let wait = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(line) => {
                let field = |k: &str| {
                    line.split_whitespace()
                        .find_map(|w| w.strip_prefix(k))
                        .unwrap_or("?")
                        .to_string()
                };
                // The ready line's kafka= is the inter-broker listener; clients of a
                // secure cluster go to its SASL_SSL listener.
                let internal = field("kafka=");
                let kafka = field("listeners=")
                    .split(',')
                    .find_map(|l| l.strip_prefix("SASL_SSL@"))
                    .map_or_else(|| internal.clone(), str::to_string);
                nodes.push(Node {
                    id,
                    kafka,
                    internal,
                    http: field("http="),
                    controller: field("controller="),
                    child,
                    log,
                });
            }
            Err(_) => {
                let status = child
                    .try_wait()
                    .ok()
                    .flatten()
                    .map(|s| format!(" (exited: {s})"))
                    .unwrap_or_default();
                failure.get_or_insert_with(|| {
                    format!(
                        "node {id} did not become ready{status}; see {}",
                        log.display()
                    )
                });
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
    if let Some(f) = failure {
        stop(&mut nodes);
        return Err(f);
    }
    if let Some(s) = &secure {
        let internal: Vec<&str> = nodes.iter().map(|n| n.internal.as_str()).collect();
        if let Err(e) = s.create_admin(&internal.join(",")) {
            stop(&mut nodes);
            return Err(e);
        }
    }
    Ok(nodes)
}

/// Starts `rill console` as a child process on the cluster, its store in the data dir
/// (SQLite); returns it with its URL once it says it is ready.
fn start_console(args: &DevArgs, nodes: &[Node]) -> Result<(Child, String), String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the rill executable: {e}"))?;
    let bootstrap = nodes
        .iter()
        .map(|n| n.kafka.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let http = nodes
        .iter()
        .filter(|n| n.http.starts_with("http://"))
        .map(|n| n.http.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let log = args.data_dir.join("console.log");
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let mut child = Command::new(exe)
        .arg("console")
        .arg("--bootstrap")
        .arg(&bootstrap)
        .args(if http.is_empty() {
            Vec::new()
        } else {
            vec!["--broker-http".to_string(), http]
        })
        .args(if args.secure {
            vec![
                "--command-config".to_string(),
                crate::dev_secure::client_properties(&args.data_dir)
                    .display()
                    .to_string(),
            ]
        } else {
            Vec::new()
        })
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", args.console_port))
        .arg("--database-url")
        .arg(format!(
            "sqlite://{}",
            args.data_dir.join("console.db").display()
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .spawn()
        .map_err(|e| format!("cannot start the console: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("rill console ready: ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(url) => Ok((child, url)),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("no ready line within 30 s; see {}", log.display()))
        }
    }
}

fn print_banner(args: &DevArgs, nodes: &[Node], console: Option<&str>) {
    let bootstrap = nodes
        .iter()
        .map(|n| n.kafka.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "Rill dev cluster is up: {} node(s), data in {}",
        nodes.len(),
        args.data_dir.display()
    );
    let _ = writeln!(out, "  bootstrap servers: {bootstrap}");
    for n in nodes {
        let _ = writeln!(
            out,
            "  node {}: pid {}  kafka {}  controller {}  http {}  log {}",
            n.id,
            n.child.id(),
            n.kafka,
            n.controller,
            n.http,
            n.log.display()
        );
    }
    if let Some(url) = console {
        let _ = writeln!(out, "  console: {url}");
    }
    if args.secure {
        let props = crate::dev_secure::client_properties(&args.data_dir);
        let _ = writeln!(
            out,
            "  clients connect over SASL_SSL as user admin; the client config ({}):",
            props.display()
        );
        if let Ok(text) = std::fs::read_to_string(&props) {
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                let _ = writeln!(out, "    {line}");
            }
        }
        let _ = writeln!(
            out,
            "Try: rill topics --bootstrap-server {bootstrap} --command-config {} --list",
            props.display()
        );
    } else {
        let _ = writeln!(out, "Try: kcat -b {bootstrap} -L");
    }
    let _ = writeln!(out, "Ctrl-C stops the cluster; `kill -9 <pid>` stops one node (run `rill dev` again to bring it back).");
    let _ = out.flush();
}

fn stop(nodes: &mut [Node]) {
    for n in nodes.iter() {
        // SIGTERM: each node closes its logs cleanly.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(n.child.id().to_string())
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for n in nodes.iter_mut() {
        while matches!(n.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = n.child.kill();
        let _ = n.child.wait();
    }
}

/// The cluster id, made once per data dir (like `kafka-storage.sh random-uuid` + `format`).
fn cluster_id(dir: &Path) -> Result<String, String> {
    let path = dir.join("cluster.id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim().to_string();
        if !id.is_empty() {
            return Ok(id);
        }
    }
    let id = rill_broker::server::new_cluster_id();
    std::fs::write(&path, format!("{id}\n"))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(id)
}

fn wait_for_signal() {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(_) => return,
    };
    rt.block_on(async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    });
}
