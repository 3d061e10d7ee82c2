//! Starting and stopping a node: log dirs and `meta.properties`, resource limits, the
//! controller, the replica manager, the group coordinator, the Kafka listener and the HTTP
//! API, wired into the shared [`Broker`] context; controlled shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::BrokerConfig;
use crate::context::Broker;
use crate::controller::Controller;
use crate::metadata::BrokerInfo;
use crate::metrics::Metrics;
use crate::replica::ReplicaManager;
use crate::shutdown::Shutdown;
use crate::types::BrokerId;

/// A started node.
pub struct RunningBroker {
    /// Shared state.
    pub broker: Arc<Broker>,
    /// Where Kafka clients connect: the inter-broker listener's address.
    pub kafka_addr: SocketAddr,
    /// Every client listener's bound address, by listener name.
    pub listener_addrs: std::collections::BTreeMap<String, SocketAddr>,
    /// Where the HTTP API listens.
    pub http_addr: SocketAddr,
    /// Whether the HTTP API speaks TLS (`http.ssl.enabled`).
    pub http_tls: bool,
    /// Where the metadata quorum listens (the CONTROLLER listener).
    pub controller_addr: SocketAddr,
    /// The Kafka listener, which drains its connections when the stop begins.
    listener: JoinHandle<()>,
    /// Background loops, aborted at the stop.
    tasks: Vec<JoinHandle<()>>,
}

impl RunningBroker {
    /// Stops accepting work and closes every log cleanly.
    pub async fn shutdown(self) {
        self.broker.shutdown.begin();
        self.broker.ready.store(false, Ordering::Release);
        // Connections answer the request in hand and close; the listener accepts no more.
        if let Err(e) = self.listener.await {
            tracing::warn!(error = %e, "the Kafka listener ended abnormally");
        }
        controlled_shutdown(&self.broker).await;
        for t in &self.tasks {
            t.abort();
        }
        self.broker.replicas.stop_fetchers();
        let broker = self.broker.clone();
        let _ = tokio::task::spawn_blocking(move || broker.replicas.shutdown()).await;
        self.broker.controller.shutdown().await;
        tracing::info!("broker stopped cleanly");
    }
}

/// How long a stopping node waits for its leaderships to move before it stops anyway.
const CONTROLLED_SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Controlled shutdown: with other live brokers around, fence this node so the active
/// controller moves every leadership it holds to a live ISR member, and wait (bounded) until
/// that is committed. Connections are closed already (`shutdown`), so liveness probes fail
/// and the node is not unfenced again. Clients see NOT_LEADER_OR_FOLLOWER and move, instead
/// of waiting out `broker.session.timeout.ms`.
async fn controlled_shutdown(b: &Broker) {
    let me = BrokerId(b.config.node_id);
    if b.controller
        .image()
        .live_brokers()
        .iter()
        .all(|x| x.id == me)
    {
        return;
    }
    // Bounded: when the rest of the cluster is stopping too, the quorum may be gone.
    match tokio::time::timeout(
        std::time::Duration::from_secs(5),
        b.controller.fence_broker(me),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "controlled shutdown: cannot fence this node; stopping anyway");
            return;
        }
        Err(_) => {
            tracing::warn!(
                "controlled shutdown: the metadata quorum did not answer; stopping anyway"
            );
            return;
        }
    }
    let deadline = tokio::time::Instant::now() + CONTROLLED_SHUTDOWN_TIMEOUT;
    loop {
        let img = b.controller.image();
        // Partitions this node still leads that another live in-sync replica could take.
        let movable = img
            .topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .filter(|p| {
                p.leader == me
                    && p.isr.iter().any(|r| {
                        *r != me && !img.fenced_brokers.contains(r) && img.brokers.contains_key(r)
                    })
            })
            .count();
        if movable == 0 {
            tracing::info!("controlled shutdown: leaderships moved");
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                partitions = movable,
                "controlled shutdown timed out; stopping with leaderships still here"
            );
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Starts a node: prepares log dirs, loads metadata and partitions, binds listeners.
pub async fn start(config: BrokerConfig) -> anyhow::Result<RunningBroker> {
    let config = Arc::new(config);
    let cluster_id = prepare_log_dirs(&config)?;
    let fd_limit = crate::resources::raise_fd_limit().unwrap_or(u64::MAX);
    let budget = crate::resources::budget(fd_limit, &config.limits).map_err(anyhow::Error::msg)?;
    let metrics = Arc::new(Metrics::new().context("registering metrics")?);
    let quotas = crate::quota::QuotaManager::new(config.quotas, &metrics.registry)
        .context("registering quota metrics")?;
    metrics
        .max_fds
        .set(i64::try_from(budget.limit).unwrap_or(i64::MAX));
    metrics
        .max_partitions
        .set(budget.max_partitions.map_or(-1, i64::from));
    tracing::info!(
        fd_limit = budget.limit,
        max_connections = budget.max_connections,
        log_max_open_files = budget.open_files,
        max_broker_partitions = ?budget.max_partitions,
        "resource limits"
    );

    // Every client listener binds now, so a port conflict stops the start before anything
    // registers; its security (certificates, users) loads now too, for the same reason.
    let mut bound = Vec::new();
    let mut endpoints = Vec::new();
    for listener in config.client_listeners() {
        let socket = TcpListener::bind((listener.host.as_str(), listener.port))
            .await
            .map_err(|e| bind_error("listeners", listener, e))?;
        let addr = socket.local_addr()?;
        let security = match config.security.listener(&listener.name) {
            Some(s) => {
                crate::security::ListenerSecurity::load(s).map_err(|e| anyhow::anyhow!(e))?
            }
            None => crate::security::ListenerSecurity::plaintext(&listener.name),
        };
        let (host, port) = advertised(&config, listener, addr);
        endpoints.push(crate::metadata::image::Endpoint {
            listener: listener.name.clone(),
            host,
            port,
        });
        bound.push((listener.name.clone(), socket, addr, Arc::new(security)));
    }
    // The HTTP API binds and loads its credentials and certificates now too.
    let http = TcpListener::bind(config.http_listener).await.map_err(|e| {
        anyhow::anyhow!(
            "http.listener: cannot bind {}: {e}: {}",
            config.http_listener,
            bind_fix(&e)
        )
    })?;
    let http_addr = http.local_addr()?;
    let http_auth =
        Arc::new(crate::http::auth::HttpAuth::load(&config.http).map_err(|e| anyhow::anyhow!(e))?);
    let http_tls = crate::http::load_tls(&config).map_err(|e| anyhow::anyhow!(e))?;
    // Beyond loopback without credentials only with http.auth.allow.unauthenticated=true
    // (the config refuses it otherwise): still worth a warning.
    if !http_addr.ip().is_loopback() && !http_auth.required() {
        tracing::warn!(http = %http_addr, "the HTTP API listens beyond loopback without authentication (http.auth.allow.unauthenticated=true): anyone who reaches it can read the node's state");
    }
    let inter_broker = &config.security.inter_broker_listener;
    let (kafka_addr, adv) = bound
        .iter()
        .zip(&endpoints)
        .find(|((name, ..), _)| name == inter_broker)
        .or_else(|| bound.iter().zip(&endpoints).next())
        .map(|((_, _, addr, _), e)| (*addr, e.clone()))
        .context("no client listener")?;
    let listener_addrs: std::collections::BTreeMap<String, SocketAddr> = bound
        .iter()
        .map(|(name, _, addr, _)| (name.clone(), *addr))
        .collect();
    let me = BrokerInfo {
        id: BrokerId(config.node_id),
        host: adv.host,
        port: adv.port,
        endpoints,
        rack: config.rack.clone(),
        max_partitions: budget.max_partitions,
    };
    let cl = &config.controller_listener;
    let controller_socket = std::net::TcpListener::bind((cl.host.as_str(), cl.port))
        .map_err(|e| bind_error("listeners (its CONTROLLER listener)", cl, e))?;
    controller_socket.set_nonblocking(true)?;
    let controller_addr = controller_socket.local_addr()?;
    let controller = Controller::start(
        &config,
        &config.metadata_log_dir.join("__cluster_metadata"),
        &cluster_id,
        me,
        controller_socket,
    )
    .await
    .context("starting the metadata quorum")?;

    let topic_configs = Arc::new(crate::metadata::TopicConfigs::new(config.raw.clone()));
    let inter_broker =
        crate::security::inter_broker_client(&config).map_err(|e| anyhow::anyhow!(e))?;
    let replicas = Arc::new(ReplicaManager::new(
        config.clone(),
        metrics.clone(),
        topic_configs.clone(),
        inter_broker.clone(),
        crate::log::FileCache::new(budget.open_files),
    ));
    {
        let r = replicas.clone();
        let load = controller.clone();
        // Loading (and recovering) logs is blocking file work.
        tokio::task::spawn_blocking(move || load.subscribe(Box::new(move |img| r.apply(img))))
            .await?;
    }
    let groups = Arc::new(crate::group::GroupCoordinator::new(
        config.groups.clone(),
        crate::group::offsets_log::OffsetsLog::new(
            BrokerId(config.node_id),
            controller.clone(),
            replicas.clone(),
        ),
    ));
    let txns = Arc::new(crate::txn::TxnCoordinator::new(
        config.transactions.clone(),
        config.groups.offsets_partitions,
        crate::txn::txn_log::TxnLog::new(
            BrokerId(config.node_id),
            controller.clone(),
            replicas.clone(),
            groups.clone(),
            crate::txn::peers::PeerClient::new(BrokerId(config.node_id), inter_broker.clone()),
        ),
    ));
    let broker = Arc::new(Broker {
        config: config.clone(),
        controller,
        replicas: replicas.clone(),
        metrics,
        groups: groups.clone(),
        txns: txns.clone(),
        ready: AtomicBool::new(false),
        shutdown: Shutdown::new(),
        quotas,
        authorizer: config
            .security
            .authorizer
            .as_ref()
            .map(crate::security::authorizer::Authorizer::new),
    });
    {
        // The coordinator follows leadership of __consumer_offsets with every image (after the
        // replica manager, which subscribed first), replaying newly led partitions in the
        // background.
        let weak = Arc::downgrade(&groups);
        let c = broker.controller.clone();
        tokio::task::spawn_blocking(move || {
            c.subscribe(Box::new(move |_img| {
                if let Some(g) = weak.upgrade() {
                    g.on_image();
                }
            }))
        })
        .await?;
        // The transaction coordinator follows __transaction_state the same way.
        let weak = Arc::downgrade(&txns);
        let c = broker.controller.clone();
        tokio::task::spawn_blocking(move || {
            c.subscribe(Box::new(move |_img| {
                if let Some(t) = weak.upgrade() {
                    t.on_image();
                }
            }))
        })
        .await?;
    }

    // Certificates are re-read on change for every TLS listener and the HTTP API.
    let tls: Vec<_> = bound
        .iter()
        .filter_map(|(.., sec)| sec.tls.clone())
        .chain(http_tls.clone())
        .collect();
    let listener = tokio::spawn(crate::net::serve(
        bound
            .into_iter()
            .map(|(_, socket, _, sec)| (socket, sec))
            .collect(),
        Arc::new(crate::api::Dispatcher::new(broker.clone())),
        crate::net::NetLimits {
            max_connections: budget.max_connections,
            max_per_ip: config.limits.max_connections_per_ip,
            idle: config.limits.connections_max_idle,
            request_read_timeout: config.limits.request_read_timeout,
            max_frame: config.socket_request_max_bytes,
            request_memory: config.limits.queued_max_request_bytes,
        },
        broker.shutdown.watch(),
    ));
    let tasks = vec![
        tokio::spawn(crate::security::tls::reload_loop(tls)),
        tokio::spawn(crate::http::serve(
            http,
            broker.clone(),
            http_auth,
            http_tls.clone(),
        )),
        tokio::spawn(replicas.retention_loop()),
        tokio::spawn(groups.run()),
        tokio::spawn(txns.run()),
        tokio::spawn(crate::replica::isr::run(
            broker.replicas.clone(),
            broker.controller.clone(),
            std::time::Duration::from_millis(config.replication.lag_time_max_ms),
        )),
        tokio::spawn(crate::replica::log_dirs::run(
            broker.replicas.clone(),
            broker.controller.clone(),
            BrokerId(config.node_id),
        )),
        tokio::spawn(crate::controller::reassign::run(broker.controller.clone())),
        tokio::spawn(crate::controller::liveness::run(
            broker.controller.clone(),
            BrokerId(config.node_id),
            crate::controller::liveness::LivenessConfig {
                heartbeat: std::time::Duration::from_millis(
                    config.replication.heartbeat_interval_ms,
                ),
                session_timeout: std::time::Duration::from_millis(
                    config.replication.session_timeout_ms,
                ),
                security: inter_broker.clone(),
            },
            topic_configs.clone(),
        )),
        tokio::spawn(crate::replica::checkpoint::run(
            broker.replicas.clone(),
            config.log_dirs.clone(),
            std::time::Duration::from_millis(config.hw_checkpoint_interval_ms),
        )),
        tokio::spawn(crate::controller::election::run_rebalance(
            broker.controller.clone(),
            config.leader_rebalance,
        )),
    ];
    broker.ready.store(true, Ordering::Release);
    tracing::info!(node = config.node_id, kafka = %kafka_addr, http = %http_addr, cluster_id = %cluster_id, "broker started");
    Ok(RunningBroker {
        broker,
        kafka_addr,
        listener_addrs,
        http_addr,
        http_tls: http_tls.is_some(),
        controller_addr,
        listener,
        tasks,
    })
}

/// Creates the log dirs and reads (or writes) `meta.properties` in each, as `kafka-storage.sh
/// format` would; refuses dirs that belong to another node or cluster.
fn prepare_log_dirs(config: &BrokerConfig) -> anyhow::Result<String> {
    let mut cluster_id = config.raw.get("cluster.id").cloned();
    for dir in config.log_dirs.iter().chain([&config.metadata_log_dir]) {
        let key = if config.log_dirs.contains(dir) {
            "log.dirs"
        } else {
            "metadata.log.dir"
        };
        check_writable(key, dir)?;
    }
    for dir in &config.log_dirs {
        if let Some(props) = read_meta(dir)? {
            if let Some(node) = props.get("node.id") {
                if node != &config.node_id.to_string() {
                    anyhow::bail!(
                        "log dir {} belongs to node {node}, but this is node.id={}",
                        dir.display(),
                        config.node_id
                    );
                }
            }
            if let Some(cid) = props.get("cluster.id") {
                match &cluster_id {
                    Some(existing) if existing != cid => anyhow::bail!("log dir {} belongs to cluster {cid}, but this node is in cluster {existing}", dir.display()),
                    _ => cluster_id = Some(cid.clone()),
                }
            }
        }
    }
    if cluster_id.is_none() && !config.quorum_voters.is_empty() {
        anyhow::bail!(
            "cluster.id: not set, but controller.quorum.voters lists {} voters: give every node of the cluster the same cluster.id (e.g. --override cluster.id={}), or each node makes up its own and they never form a cluster",
            config.quorum_voters.len(),
            new_cluster_id()
        );
    }
    let cluster_id = cluster_id.unwrap_or_else(new_cluster_id);
    for dir in &config.log_dirs {
        let text = format!(
            "#\n#Written by rill-broker\nversion=1\ncluster.id={cluster_id}\nnode.id={}\n",
            config.node_id
        );
        let path = dir.join("meta.properties");
        if std::fs::read_to_string(&path).ok().as_deref() != Some(&text) {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(cluster_id)
}

/// Creates `dir` if needed and proves it writable (a file created, synced and removed), so a
/// log dir the node cannot use stops it at start, naming the key, rather than failing every
/// partition later.
fn check_writable(key: &str, dir: &Path) -> anyhow::Result<()> {
    let fail = |what: &str, e: std::io::Error| {
        anyhow::anyhow!(
            "{key}: {} {what}: {e}: give a directory this user ({}) can create and write",
            dir.display(),
            std::env::var("USER").unwrap_or_else(|_| "the broker's user".into())
        )
    };
    std::fs::create_dir_all(dir).map_err(|e| fail("cannot be created", e))?;
    let probe = dir.join(".rill-write-probe");
    std::fs::File::create(&probe)
        .and_then(|f| f.sync_all())
        .map_err(|e| fail("is not writable", e))?;
    std::fs::remove_file(&probe).map_err(|e| fail("is not writable", e))?;
    Ok(())
}

/// Where clients are told to reach `listener` bound at `addr`: its `advertised.listeners`
/// entry (port 0 there means the bound port), or the bound address (loopback for a wildcard).
fn advertised(
    config: &BrokerConfig,
    listener: &crate::config::Listener,
    addr: SocketAddr,
) -> (String, u16) {
    match config
        .advertised_listeners
        .iter()
        .find(|l| l.name == listener.name)
    {
        Some(a) => (
            a.host.clone(),
            if a.port == 0 { addr.port() } else { a.port },
        ),
        None => {
            let host = if addr.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                addr.ip().to_string()
            };
            (host, addr.port())
        }
    }
}

/// A listener that cannot bind, as one line naming the key and the fix.
fn bind_error(key: &str, l: &crate::config::Listener, e: std::io::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "{key}: cannot bind {}://{}:{}: {e}: {}",
        l.name,
        l.host,
        l.port,
        bind_fix(&e)
    )
}

fn bind_fix(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "another process holds this port: stop it or choose another port"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "this machine has no such address: use one of its own addresses (or 0.0.0.0)"
        }
        std::io::ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges: choose a port of 1024 or above"
        }
        _ => "check the host and port",
    }
}

fn read_meta(dir: &Path) -> anyhow::Result<Option<std::collections::BTreeMap<String, String>>> {
    match std::fs::read_to_string(dir.join("meta.properties")) {
        Ok(text) => Ok(Some(crate::config::parse_properties(&text)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A cluster id in Kafka's form: a random UUID, URL-safe base64 without padding (22 chars).
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = String::with_capacity(22);
    for b in bytes {
        bits = (bits << 8) | b as u32;
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
    }
    out
}
