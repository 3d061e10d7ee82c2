//! Running one node as a process: config, runtime, the ready line, signals. Shared by the
//! `rill-broker` binary and `rill broker` (which `rill dev` starts as child processes).

use std::path::Path;
use std::process::ExitCode;

/// Loads the config, starts the node, prints the ready line and serves until SIGTERM or
/// Ctrl-C, then shuts down cleanly. `name` prefixes error messages.
pub fn run(name: &str, properties: Option<&Path>, overrides: &[String]) -> ExitCode {
    let config = match crate::config::BrokerConfig::load(properties, overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{name}: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let node = config.node_id;
        let running = match crate::server::start(config).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{name}: failed to start: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        // The one line tools and tests wait for.
        let listeners: Vec<String> = running
            .listener_addrs
            .iter()
            .map(|(name, addr)| format!("{name}@{addr}"))
            .collect();
        println!(
            "rill-broker ready: node={node} kafka={} http={}://{} controller={} listeners={}",
            running.kafka_addr,
            if running.http_tls { "https" } else { "http" },
            running.http_addr,
            running.controller_addr,
            listeners.join(",")
        );
        let controller = running.broker.controller.clone();
        tokio::select! {
            _ = wait_for_signal() => {}
            why = controller.failed() => {
                eprintln!("{name}: metadata.log.dir: the metadata log failed ({why}); this node stops, as Kafka does: fix the disk of metadata.log.dir and restart it");
                tracing::error!(error = %why, "metadata quorum failed; stopping");
                return ExitCode::FAILURE;
            }
        }
        tracing::info!("shutting down");
        running.shutdown().await;
        ExitCode::SUCCESS
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
