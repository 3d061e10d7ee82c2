//! `rill`: what an operator types. Today: `rill dev`, a local cluster for trying Rill out.
//! The topic/group/reassignment commands and the console arrive with their issues.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "rill",
    version,
    about = "Operate a Rill (Kafka-compatible) cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a local cluster for development: data under ./rill-data, Kafka on 127.0.0.1:9092.
    Dev {
        /// Where the nodes keep their data.
        #[arg(long, default_value = "./rill-data")]
        data_dir: PathBuf,
        /// Kafka listener port of the first node.
        #[arg(long, default_value_t = 9092)]
        port: u16,
        /// HTTP API port of the first node.
        #[arg(long, default_value_t = 9644)]
        http_port: u16,
        /// Extra broker properties, as `key=value` (repeatable).
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RILL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Dev {
            data_dir,
            port,
            http_port,
            overrides,
        } => dev(data_dir, port, http_port, overrides),
    }
}

fn dev(
    data_dir: PathBuf,
    port: u16,
    http_port: u16,
    overrides: Vec<String>,
) -> std::process::ExitCode {
    let mut props = vec![
        "node.id=1".to_string(),
        format!("listeners=PLAINTEXT://127.0.0.1:{port}"),
        format!("http.listener=127.0.0.1:{http_port}"),
        format!("log.dirs={}", data_dir.join("node-1").display()),
    ];
    props.extend(overrides);
    let config = match rill_broker::config::BrokerConfig::load(None, &props) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rill dev: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rill dev: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let running = match rill_broker::server::start(config).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("rill dev: failed to start: {e:#}");
                return std::process::ExitCode::FAILURE;
            }
        };
        println!(
            "Rill dev cluster is up (1 node, data in {}).",
            data_dir.display()
        );
        println!("  bootstrap servers: {}", running.kafka_addr);
        println!(
            "  node 1 HTTP API:   http://{}  (/metrics, /api/v1/node, /api/v1/partitions)",
            running.http_addr
        );
        println!("Try: kcat -b {} -L", running.kafka_addr);
        println!("Press Ctrl-C to stop.");
        let _ = tokio::signal::ctrl_c().await;
        running.shutdown().await;
        std::process::ExitCode::SUCCESS
    })
}
