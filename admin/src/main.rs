//! `rill`: what an operator types. `rill dev` runs a local cluster; `rill console`
//! serves the web console; `rill topics` and
//! `rill groups` administer any Kafka-compatible cluster through the Kafka protocol (the
//! shared client in the `rill-client` crate), with kafka-topics.sh's and
//! kafka-consumer-groups.sh's flag names.
//!
//! Exit codes: 0 success, 1 the operation failed (message on stderr), 2 bad usage.

mod acls;
mod cli;
mod clock;
mod console;
mod dev;
mod dev_secure;
mod groups;
mod leaders;
mod ops;
mod quorum;
mod quotas;
mod reassign;
mod topics;
mod transactions;
mod users;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use cli::{Change, CliError, EXIT_FAILED, EXIT_USAGE};
use ops::audit;

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
    /// Start a local cluster for development: 3 nodes as child processes, data under
    /// ./rill-data, Kafka on 127.0.0.1:9092-9094.
    Dev(dev::DevArgs),
    /// Serve the web console and Prometheus metrics for a cluster (any Kafka-compatible one).
    Console(console::ConsoleArgs),
    /// Run one node, exactly as `rill-broker [server.properties] [--override k=v ...]` does.
    Broker(BrokerArgs),
    /// List, describe, create, delete and alter topics (like kafka-topics.sh).
    Topics(topics::TopicsArgs),
    /// List, describe, reset offsets of and delete consumer groups (like
    /// kafka-consumer-groups.sh).
    Groups(groups::GroupsArgs),
    /// Run preferred or unclean leader elections, or show leaders against preferred
    /// replicas (like kafka-leader-election.sh).
    Leaders(leaders::LeadersArgs),
    /// Move partition replicas between brokers, with throttles and progress (like
    /// kafka-reassign-partitions.sh).
    Reassign(reassign::ReassignArgs),
    /// Describe, set and delete users' SCRAM credentials (like kafka-configs.sh
    /// --entity-type users).
    Users(users::UsersArgs),
    /// Describe, set and remove client quotas of users and client ids (like kafka-configs.sh
    /// --entity-type users|clients with quota configs).
    Quotas(quotas::QuotasArgs),
    /// Describe the metadata quorum: leader, epoch, high watermark and each controller's lag
    /// (like kafka-metadata-quorum.sh describe).
    Quorum(quorum::QuorumArgs),
    /// Add, remove and list ACLs (like kafka-acls.sh).
    Acls(acls::AclsArgs),
    /// List and describe transactions and producers, find and abort hanging transactions
    /// (like kafka-transactions.sh).
    Transactions(transactions::TransactionsArgs),
}

/// Arguments of `rill broker` (kafka-server-start.sh's shape).
#[derive(clap::Args, Debug)]
struct BrokerArgs {
    /// A server.properties file (Kafka's key names).
    properties: Option<std::path::PathBuf>,
    /// Set or override one property, e.g. `--override log.dirs=/data/rill`. Repeatable.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Dev(_) | Command::Broker(_) | Command::Console(_) => "info",
        // The admin commands print their own results; only problems are logged.
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RILL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .init();
    match cli.command {
        Command::Dev(args) => dev::run(args),
        Command::Broker(args) => {
            rill_broker::node::run("rill broker", args.properties.as_deref(), &args.overrides)
        }
        Command::Console(args) => console::run(args),
        Command::Topics(args) => run_admin("topics", args.change(), topics::run(args)),
        Command::Groups(args) => run_admin("groups", args.change(), groups::run(args)),
        Command::Leaders(args) => run_admin("leaders", args.change(), leaders::run(args)),
        Command::Reassign(args) => run_admin("reassign", args.change(), reassign::run(args)),
        Command::Users(args) => run_admin("users", args.change(), users::run(args)),
        Command::Quotas(args) => run_admin("quotas", args.change(), quotas::run(args)),
        Command::Quorum(args) => run_admin("quorum", args.change(), quorum::run(args)),
        Command::Acls(args) => run_admin("acls", args.change(), acls::run(args)),
        Command::Transactions(args) => {
            run_admin("transactions", args.change(), transactions::run(args))
        }
    }
}

/// Runs an admin command on a small runtime and turns its outcome into an exit code. A
/// change the command attempted (`change`) goes to the cluster's audit trail afterwards,
/// whatever its outcome; bad usage attempted nothing and is not recorded.
fn run_admin(
    name: &str,
    change: Option<Change>,
    command: impl std::future::Future<Output = Result<(), CliError>>,
) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rill {name}: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let outcome = rt.block_on(command);
    if let Some(change) = change {
        let result = match &outcome {
            Ok(()) => Some(Ok(())),
            Err(CliError::Failed(msg)) => Some(Err(msg.clone())),
            Err(CliError::Usage(_)) => None,
        };
        if let Some(result) = result {
            rt.block_on(record(name, change, result));
        }
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(msg)) => {
            let mut cmd = Cli::command();
            cmd.build();
            let sub = cmd.find_subcommand_mut(name).map(|c| c.clone());
            let err = sub
                .unwrap_or(cmd)
                .error(clap::error::ErrorKind::ArgumentConflict, msg);
            let _ = err.print();
            ExitCode::from(EXIT_USAGE)
        }
        Err(CliError::Failed(msg)) => {
            eprintln!("Error: {msg}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Appends a change to the audit trail; a failure is a warning (the change itself is done).
async fn record(name: &str, change: Change, result: Result<(), String>) {
    let entry = audit::AuditRecord::new(change.action, &change.target, result);
    let written = match change.connect.connect().await {
        Ok(cluster) => audit::append(&cluster, &entry)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = written {
        eprintln!(
            "rill {name}: warning: not recorded in the audit trail ({}): {e}",
            audit::AUDIT_TOPIC
        );
    }
}
