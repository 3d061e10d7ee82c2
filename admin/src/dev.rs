//! `rill dev`: a local one-node cluster in this process, for trying Rill out.

use std::path::PathBuf;

use clap::Args;

/// Arguments of `rill dev`.
#[derive(Args, Debug)]
pub struct DevArgs {
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
}

/// Runs the dev cluster until Ctrl-C.
pub fn run(args: DevArgs) -> std::process::ExitCode {
    let DevArgs {
        data_dir,
        port,
        http_port,
        overrides,
    } = args;
    dev(data_dir, port, http_port, overrides)
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
