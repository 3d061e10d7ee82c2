//! `rill console`: the admin server. A collector task polls the cluster into an in-memory
//! snapshot ([`collector`]); axum handlers render that snapshot as HTML (askama views from
//! `rill-web`) or JSON (the same view, for `Accept: application/json`); changes go to the
//! cluster through the shared Kafka client and into the audit log ([`store`]).
//!
//! Routes (see `web/README.md` for forms and element ids):
//! `/`, `/topics`, `/topics/{name}`, `/topics/{name}/messages`, `/groups`, `/groups/{id}`,
//! `/groups/{id}/lag-history`, `/brokers`, `/brokers/{id}`, `/acls`, `/users`, `/quotas`, `/audit`, `/metrics`,
//! `/healthz`, `/assets/{file}`, `/login`, `/logout`; POST routes for every change.

mod audit_feed;
pub mod auth;
mod broker_http;
pub mod collector;
mod http;
pub mod lag;
pub mod metrics;
mod pages;
mod session;
pub mod snapshot;
pub mod state;
pub mod store;
mod validate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use clap::Args;
use rill_client::{ClientError, Cluster, ConnectionConfig};
use tokio::sync::Mutex;

use collector::{CollectorConfig, Shared};
use store::{Retention, Store};

/// Arguments of `rill console`.
#[derive(Args, Debug, Clone)]
pub struct ConsoleArgs {
    /// The cluster's bootstrap servers.
    #[arg(
        long,
        value_name = "HOST:PORT[,HOST:PORT...]",
        required_unless_present = "hash_password"
    )]
    pub bootstrap: Option<String>,
    /// Where the console listens (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The store: `sqlite://PATH` (created if missing), a plain file path, or
    /// `postgres://USER@HOST/DB`.
    #[arg(long, default_value = "sqlite://rill-console.db")]
    pub database_url: String,
    /// Time between two collections of the cluster's state, in ms.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub collect_interval_ms: u64,
    /// How long lag and offset samples are kept (e.g. `7d`, `24h`, `90m`).
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    pub retention: Duration,
    /// Turn logins on: a file of `name:role:argon2-hash` lines, roles admin, operator
    /// (no deletions) or viewer (read only).
    #[arg(long, value_name = "FILE")]
    pub users_file: Option<std::path::PathBuf>,
    /// Key that signs session cookies (random per start when not given).
    #[arg(long, value_name = "FILE", requires = "users_file")]
    pub session_secret_file: Option<std::path::PathBuf>,
    /// Read a password from stdin, print its argon2 hash for the users file, and exit.
    #[arg(long)]
    pub hash_password: bool,
    /// Kafka client properties for a secured cluster (`security.protocol`, `sasl.mechanism`,
    /// `sasl.jaas.config`, `ssl.truststore.location`, ...), as Kafka's tools take them.
    #[arg(long = "command-config", value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
    /// Time limit per Kafka request, in ms.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub request_timeout_ms: u64,
    /// The brokers' HTTP APIs (`http://host:port`, comma-separated): reassignment progress
    /// comes from their `/api/v1/reassignments` when they answer, else from log dir sizes.
    #[arg(
        long = "broker-http",
        value_name = "URL[,URL...]",
        value_delimiter = ','
    )]
    pub broker_http: Vec<String>,
    /// `/metrics` covers only topics this regex matches (anywhere in the name), as
    /// kafka_exporter's `--topic.filter`; their group series too.
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub metrics_topic_filter: Option<regex::Regex>,
    /// `/metrics` leaves out topics this regex matches (kafka_exporter's `--topic.exclude`).
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub metrics_topic_exclude: Option<regex::Regex>,
    /// `/metrics` covers only groups this regex matches (kafka_exporter's `--group.filter`).
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub metrics_group_filter: Option<regex::Regex>,
    /// `/metrics` leaves out groups this regex matches (kafka_exporter's `--group.exclude`).
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub metrics_group_exclude: Option<regex::Regex>,
    /// Most partitions with per-partition series on `/metrics`, for topics and for groups
    /// each; whole topics (groups) past it, in name order, are left out and counted in
    /// `rill_console_metrics_omitted_partitions`.
    #[arg(long, value_name = "N", default_value_t = metrics::DEFAULT_MAX_PARTITIONS)]
    pub metrics_max_partitions: usize,
}

/// Longest regex accepted for a `/metrics` filter, and the most memory its program may use:
/// the flags are trusted, but a typo should not make every cycle slow.
const MAX_FILTER_REGEX_BYTES: usize = 1_000;
const MAX_FILTER_PROGRAM_BYTES: usize = 1 << 20;

fn parse_regex(s: &str) -> Result<regex::Regex, String> {
    if s.len() > MAX_FILTER_REGEX_BYTES {
        return Err(format!("at most {MAX_FILTER_REGEX_BYTES} bytes"));
    }
    regex::RegexBuilder::new(s)
        .size_limit(MAX_FILTER_PROGRAM_BYTES)
        .build()
        .map_err(|e| e.to_string())
}

/// Parses `7d`, `24h`, `90m`, `30s` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration '{s}': expected e.g. 7d, 24h, 90m or 30s"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("invalid duration unit in '{s}': use s, m, h or d")),
    };
    if secs == 0 {
        return Err("the duration must be positive".into());
    }
    Ok(Duration::from_secs(secs))
}

/// A running console.
pub struct ConsoleHandle {
    /// The address it listens on.
    pub addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
    collector: tokio::task::JoinHandle<()>,
}

impl ConsoleHandle {
    /// `http://addr/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Runs until the server stops.
    pub async fn wait(self) {
        let _ = self.server.await;
        self.collector.abort();
    }
}

/// Errors starting the console.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The bootstrap list is malformed.
    #[error("{0}")]
    Bootstrap(#[from] ClientError),
    /// The users or secret file is unusable.
    #[error("{0}")]
    Auth(#[from] auth::AuthError),
    /// The store could not be opened or migrated.
    #[error("{0}")]
    Store(#[from] store::StoreError),
    /// A flag's file is unusable (`--command-config`).
    #[error("{0}")]
    Config(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Opens the store (applying migrations), binds the listener, and starts the collector and
/// the HTTP server on the current runtime. The cluster need not be reachable yet.
pub async fn start(args: &ConsoleArgs) -> Result<ConsoleHandle, StartError> {
    let bootstrap = args.bootstrap.clone().unwrap_or_default();
    let request_timeout = Duration::from_millis(args.request_timeout_ms);
    let security = match &args.command_config {
        Some(path) => rill_client::security::ClientSecurity::from_file(path)
            .map_err(|e| StartError::Config(format!("--command-config: {e}")))?,
        None => rill_client::security::ClientSecurity::default(),
    };
    let client = |client_id: &str| ConnectionConfig {
        client_id: client_id.into(),
        connect_timeout: request_timeout.min(Duration::from_secs(3)),
        request_timeout,
        security: security.clone(),
        ..ConnectionConfig::default()
    };
    // Both clients connect on first use: the cluster need not be up yet.
    let admin = Cluster::new(&bootstrap, client("rill-console-admin"))?;
    let collector_client = Cluster::new(&bootstrap, client("rill-console"))?;
    let auth = match &args.users_file {
        Some(f) => Some(auth::Auth::load(f, args.session_secret_file.as_deref())?),
        None => None,
    };
    let store = Store::open(&args.database_url).await?;
    tracing::info!(backend = ?store.backend(), "console store ready");
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: args.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: args.listen,
        source,
    })?;
    let shared = Arc::new(Shared::default());
    let collector = tokio::spawn(collector::run(
        shared.clone(),
        store.clone(),
        collector_client,
        CollectorConfig {
            interval: Duration::from_millis(args.collect_interval_ms),
            retention: Retention {
                max_age: args.retention,
            },
            metrics: metrics::Scope {
                topics: metrics::NameFilter::new(
                    args.metrics_topic_filter.clone(),
                    args.metrics_topic_exclude.clone(),
                ),
                groups: metrics::NameFilter::new(
                    args.metrics_group_filter.clone(),
                    args.metrics_group_exclude.clone(),
                ),
                max_partitions: args.metrics_max_partitions,
            },
        },
    ));
    let console = Arc::new(state::Console {
        shared,
        store,
        auth,
        admin,
        reassign: Mutex::new(None),
        broker_http: args.broker_http.clone(),
    });
    let app = router(console);
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "console server stopped");
        }
    });
    Ok(ConsoleHandle {
        addr,
        server,
        collector,
    })
}

/// The routes.
fn router(console: Arc<state::Console>) -> Router {
    use pages::{
        acls, audit, brokers, elect, groups, overview, quotas, reassign, topic, topics,
        transactions, users,
    };
    Router::new()
        .route("/", get(overview::show))
        .route("/topics", get(topics::list).post(topics::create))
        .route("/topics/{name}", get(topic::show))
        .route("/topics/{name}/configs", post(topic::alter_config))
        .route("/topics/{name}/partitions", post(topic::add_partitions))
        .route("/topics/{name}/delete", post(topic::delete))
        .route("/topics/{name}/messages", get(topic::messages))
        .route("/topics/{name}/produce", post(topic::produce))
        .route("/groups", get(groups::list))
        .route("/groups/{id}", get(groups::show))
        .route("/groups/{id}/lag-history", get(groups::lag_history))
        .route("/groups/{id}/thresholds", post(groups::set_thresholds))
        .route("/groups/{id}/reset", post(groups::reset))
        .route("/groups/{id}/delete", post(groups::delete))
        .route("/brokers", get(brokers::list))
        .route("/brokers/{id}", get(brokers::show))
        .route("/acls", get(acls::list).post(acls::create))
        .route("/acls/delete", post(acls::delete))
        .route("/users", get(users::list).post(users::upsert))
        .route("/users/{name}/delete", post(users::delete))
        .route("/quotas", get(quotas::list).post(quotas::set))
        .route("/quotas/delete", post(quotas::delete))
        .route("/audit", get(audit::show))
        .route("/transactions", get(transactions::show))
        .route("/transactions/abort", post(transactions::abort))
        .route("/reassign", get(reassign::show))
        .route("/reassign/plan", post(reassign::generate))
        .route("/reassign/execute", post(reassign::execute))
        .route("/reassign/cancel", post(reassign::cancel))
        .route("/reassign/elect", post(elect::elect))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/metrics", get(http::metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/assets/{file}", get(http::asset))
        .fallback(http::not_found)
        .layer(axum::middleware::from_fn_with_state(
            console.clone(),
            session::guard,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(console)
}

/// `rill console`: serves until Ctrl-C or SIGTERM.
pub fn run(args: ConsoleArgs) -> std::process::ExitCode {
    if args.hash_password {
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line).is_err()
            || line.trim_end_matches(['\r', '\n']).is_empty()
        {
            eprintln!("rill console --hash-password: give the password on stdin");
            return std::process::ExitCode::FAILURE;
        }
        return match auth::hash_password(line.trim_end_matches(['\r', '\n'])) {
            Ok(h) => {
                println!("{h}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rill console: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rill console: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        let handle = match start(&args).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("rill console: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        // Scripts and `rill dev` read this line.
        println!("rill console ready: {}", handle.url());
        tokio::select! {
            _ = handle.wait() => std::process::ExitCode::FAILURE,
            _ = shutdown_signal() => std::process::ExitCode::SUCCESS,
        }
    })
}

async fn shutdown_signal() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("7w").is_err());
        assert!(parse_duration("d").is_err());
    }
}
