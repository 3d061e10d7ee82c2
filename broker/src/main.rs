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
    rill_broker::node::run("rill-broker", args.properties.as_deref(), &args.overrides)
}
