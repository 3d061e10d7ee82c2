//! `rill-broker [server.properties] [--override key=value ...]`: one node of a Rill cluster,
//! started the way `kafka-server-start.sh` is.

use std::path::PathBuf;

use clap::Parser;

/// Command line, shaped like kafka-server-start.sh's.
#[derive(Parser, Debug)]
#[command(
    name = "rill-broker",
    version,
    about = "A Kafka-compatible broker node. With no arguments: a one-node cluster on 127.0.0.1:9092, data in ./rill-data, HTTP API on 127.0.0.1:9644."
)]
struct Args {
    /// A server.properties file (Kafka's key names).
    properties: Option<PathBuf>,
    /// Set or override one property, e.g. `--override log.dirs=/data/rill`. Repeatable.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RILL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let config = match rill_broker::config::BrokerConfig::load(
        args.properties.as_deref(),
        &args.overrides,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rill-broker: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rill-broker: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let node = config.node_id;
        let running = match rill_broker::server::start(config).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("rill-broker: failed to start: {e:#}");
                return std::process::ExitCode::FAILURE;
            }
        };
        // The one line tools and tests wait for.
        println!(
            "rill-broker ready: node={node} kafka={} http=http://{} controller={}",
            running.kafka_addr, running.http_addr, running.controller_addr
        );
        wait_for_signal().await;
        tracing::info!("shutting down");
        running.shutdown().await;
        std::process::ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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
}
