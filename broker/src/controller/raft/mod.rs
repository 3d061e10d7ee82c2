//! The replicated metadata quorum: the controller's [`MetadataImage`] behind a Raft log
//! (openraft 0.9, storage v2), ready for the controller to propose its changes through.
//!
//! - [`MetadataQuorum`] is the façade: start a node, [`propose`](MetadataQuorum::propose) a
//!   [`MetadataCommand`] from any node (followers forward to the leader), read the latest
//!   applied [`image`](MetadataQuorum::image) or [`subscribe`](MetadataQuorum::subscribe) to
//!   it, and report [`status`](MetadataQuorum::status).
//! - `command`: the commands and their deterministic application to the image.
//! - `state_machine`: the image plus recent proposal ids (exactly-once retries), snapshots.
//! - `log_store`: the log, vote and purge point on disk.
//! - `network`: the length-prefixed JSON RPC between voters.
//!
//! Timing defaults (chosen for a loopback or LAN cluster): heartbeat every
//! [`DEFAULT_HEARTBEAT_INTERVAL`] (100 ms); a follower that hears no leader for a random
//! [`DEFAULT_ELECTION_TIMEOUT_MIN`]..[`DEFAULT_ELECTION_TIMEOUT_MAX`] (0.5-1 s) starts an
//! election, so a controller failover takes roughly 0.6-1.2 s. The broker sets them from
//! `controller.quorum.election.timeout.ms`. A snapshot is taken every
//! [`DEFAULT_SNAPSHOT_EVERY`] (1000) entries and the log is purged up to it.
//!
//! The voter set is formed by the lowest-id configured voter on its first start (an empty
//! directory); later edits of `controller.quorum.voters` are not applied (and reported in the
//! log): voters are added and removed at run time through the leader (`membership`, KIP-853).

#![warn(missing_docs)]
pub mod command;
mod contact;
mod log_store;
pub mod membership;
pub mod network;
mod state_machine;
mod status;
mod takeover;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, Raft, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

pub use command::{CommandError, CommandResponse, CommandResult, MetadataCommand, Proposal};
pub use status::{QuorumDescription, QuorumRole, QuorumStatus, ReplicaProgress};
pub use takeover::Takeover;

use crate::metadata::image::MetadataImage;
use log_store::{CommitTracker, LogStore};
use network::{ForwardReply, NetworkFactory, RpcBody, RpcClient, RpcReply, ServerConfig};
use state_machine::StateMachineStore;

/// A voter's id: the broker's `node.id`.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// openraft's type configuration for the metadata quorum: proposals in, command responses
    /// out, voters known by their controller listener address (`host:port`).
    pub TypeConfig:
        D = Proposal,
        R = CommandResponse,
        NodeId = NodeId,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// Default leader heartbeat interval.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);
/// Default lower bound of the randomized election timeout.
pub const DEFAULT_ELECTION_TIMEOUT_MIN: Duration = Duration::from_millis(500);
/// Default upper bound of the randomized election timeout.
pub const DEFAULT_ELECTION_TIMEOUT_MAX: Duration = Duration::from_millis(1000);
/// Default number of log entries between snapshots.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 1000;
/// Default bound on one [`MetadataQuorum::propose`], retries included.
pub const DEFAULT_PROPOSE_TIMEOUT: Duration = Duration::from_secs(15);
/// Default bound on sending one snapshot to a follower.
pub const DEFAULT_SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default largest RPC frame (and log record).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 << 20;

/// Pause between proposal retries when no leadership change wakes the proposer earlier.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// How to run one quorum member.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    /// This node's id; must be one of `voters`.
    pub node_id: NodeId,
    /// Every voter's id and controller listener address (`host:port`), as in
    /// `controller.quorum.voters`.
    pub voters: BTreeMap<NodeId, String>,
    /// Where to listen for peers (used by [`MetadataQuorum::start`]).
    pub listen: SocketAddr,
    /// The quorum's own directory, e.g. `<first log dir>/__cluster_metadata/raft`.
    pub dir: PathBuf,
    /// The cluster id (from `meta.properties`): stored in the directory on first start, and a
    /// directory or peer of another cluster is refused.
    pub cluster_id: Option<String>,
    /// Leader heartbeat interval.
    pub heartbeat_interval: Duration,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min: Duration,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max: Duration,
    /// Log entries between snapshots; the log is purged up to each snapshot.
    pub snapshot_every: u64,
    /// Bound on one proposal, retries across leader changes included.
    pub propose_timeout: Duration,
    /// Bound on sending one snapshot to a follower.
    pub snapshot_timeout: Duration,
    /// Largest RPC frame and log record, in bytes.
    pub max_frame_bytes: usize,
    /// Mutual TLS between the controllers (a CONTROLLER listener mapped to SSL), or
    /// PLAINTEXT.
    pub tls: Option<QuorumTls>,
}

/// TLS for the quorum's RPC: the server side (which requires and checks the peer's
/// certificate) and the client side (which presents this node's).
#[derive(Clone)]
pub struct QuorumTls {
    /// Accepts peers.
    pub server: Arc<crate::security::tls::TlsServer>,
    /// Connects to peers.
    pub client: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for QuorumTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QuorumTls")
    }
}

impl QuorumConfig {
    /// A config with the default timings.
    pub fn new(
        node_id: NodeId,
        voters: BTreeMap<NodeId, String>,
        listen: SocketAddr,
        dir: PathBuf,
    ) -> QuorumConfig {
        QuorumConfig {
            node_id,
            voters,
            listen,
            dir,
            cluster_id: None,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            election_timeout_min: DEFAULT_ELECTION_TIMEOUT_MIN,
            election_timeout_max: DEFAULT_ELECTION_TIMEOUT_MAX,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            propose_timeout: DEFAULT_PROPOSE_TIMEOUT,
            snapshot_timeout: DEFAULT_SNAPSHOT_TIMEOUT,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            tls: None,
        }
    }

    fn validate(&self) -> Result<(), QuorumError> {
        let bad = |m: String| Err(QuorumError::Config(m));
        if !self.voters.contains_key(&self.node_id) {
            return bad(format!(
                "node {} is not among the voters {:?}",
                self.node_id, self.voters
            ));
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval >= self.election_timeout_min
        {
            return bad(
                "the heartbeat interval must be positive and below the election timeout".into(),
            );
        }
        if self.election_timeout_min >= self.election_timeout_max {
            return bad("election_timeout_min must be below election_timeout_max".into());
        }
        if self.snapshot_every == 0 {
            return bad("snapshot_every must be positive".into());
        }
        if self.max_frame_bytes < 1024 || self.max_frame_bytes > u32::MAX as usize {
            return bad("max_frame_bytes must be within 1 KiB..4 GiB".into());
        }
        Ok(())
    }
}

/// Quorum failures.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// The state machine refused the command (nothing changed).
    #[error(transparent)]
    Rejected(#[from] CommandError),
    /// No outcome within the proposal deadline. The command may still commit later (a retry
    /// with a new proposal would then apply it twice: the caller decides).
    #[error("no committed outcome within {waited:?}: {last}")]
    Timeout {
        /// How long the proposal tried.
        waited: Duration,
        /// The last reason a try failed.
        last: String,
    },
    /// This node's quorum was shut down.
    #[error("the metadata quorum is shut down")]
    Shutdown,
    /// openraft failed (storage error, internal error).
    #[error("raft: {0}")]
    Raft(String),
    /// The quorum directory could not be read or written.
    #[error("metadata quorum storage at {path}: {source}")]
    Storage {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The directory belongs to another cluster.
    #[error("{dir} holds metadata of cluster {stored}, but this node is configured for cluster {configured}: refusing to start (wrong data directory or cluster id?)")]
    ClusterIdMismatch {
        /// The quorum directory.
        dir: PathBuf,
        /// The cluster id found there.
        stored: String,
        /// The configured cluster id.
        configured: String,
    },
    /// The other voters refused this node before it knew a leader (another cluster id, or a
    /// voter list naming another node at this address).
    #[error("this node cannot join the metadata quorum: {0}")]
    RefusedByPeers(String),
    /// The directory belongs to another node id.
    #[error("{dir} holds metadata of node {stored}, but this node is node {configured}: refusing to start")]
    NodeIdMismatch {
        /// The quorum directory.
        dir: PathBuf,
        /// The node id found there.
        stored: NodeId,
        /// The configured node id.
        configured: NodeId,
    },
    /// The configuration is inconsistent.
    #[error("invalid metadata quorum config: {0}")]
    Config(String),
    /// The peer listener could not be set up.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct QuorumMeta {
    node_id: NodeId,
    cluster_id: Option<String>,
}

struct Inner {
    me: NodeId,
    cfg: QuorumConfig,
    cluster_id: Option<String>,
    raft: Raft<TypeConfig>,
    client: Arc<RpcClient>,
    image: watch::Receiver<Arc<MetadataImage>>,
    commit: Arc<CommitTracker>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
    stopped: AtomicBool,
    local_addr: SocketAddr,
    contact: Arc<contact::Contact>,
    heard: Arc<takeover::Heard>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(h) = self
            .server
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            h.abort();
        }
        if !self.stopped.load(Ordering::SeqCst) {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let raft = self.raft.clone();
                rt.spawn(async move {
                    let _ = raft.shutdown().await;
                });
            }
        }
    }
}

/// A committed and applied proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The state machine's result.
    pub result: CommandResult,
    /// The log index of the entry: images of this version and later include it (0 when the
    /// leader did not say).
    pub index: u64,
}

/// One member of the metadata quorum. Cheap to clone; every clone is the same node.
#[derive(Clone)]
pub struct MetadataQuorum {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MetadataQuorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataQuorum")
            .field("node_id", &self.inner.me)
            .field("local_addr", &self.inner.local_addr)
            .finish()
    }
}

impl MetadataQuorum {
    /// Binds `config.listen` and starts this member (see [`MetadataQuorum::start_on`]).
    pub async fn start(config: QuorumConfig) -> Result<MetadataQuorum, QuorumError> {
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(|source| QuorumError::Listen {
                addr: config.listen,
                source,
            })?;
        MetadataQuorum::start_on(config, listener).await
    }

    /// Starts this member serving peers on an already bound `listener`: recovers the log,
    /// vote and latest snapshot from `config.dir` (openraft then re-applies the committed log
    /// after the snapshot), and, when this node is the lowest-id voter and its directory is
    /// empty, initializes the cluster membership with all voters (idempotent: a formed
    /// cluster ignores it).
    pub async fn start_on(
        config: QuorumConfig,
        listener: std::net::TcpListener,
    ) -> Result<MetadataQuorum, QuorumError> {
        config.validate()?;
        let me = config.node_id;
        let dir = config.dir.clone();
        let storage = |path: PathBuf| move |source| QuorumError::Storage { path, source };
        std::fs::create_dir_all(&dir).map_err(storage(dir.clone()))?;
        let cluster_id = check_meta(&config)?;

        let log = LogStore::open(&dir, config.max_frame_bytes).map_err(storage(dir.clone()))?;
        let commit = log.commit_tracker();
        let (sm, image) = StateMachineStore::open(&dir).map_err(storage(dir.clone()))?;
        {
            let img = image.borrow();
            if let Some(c) = &cluster_id {
                if !img.cluster_id.is_empty() && img.cluster_id != *c {
                    return Err(QuorumError::ClusterIdMismatch {
                        dir,
                        stored: img.cluster_id.clone(),
                        configured: c.clone(),
                    });
                }
            }
        }

        let raft_config = openraft::Config {
            cluster_name: cluster_id.clone().unwrap_or_else(|| "rill".into()),
            heartbeat_interval: millis(config.heartbeat_interval),
            election_timeout_min: millis(config.election_timeout_min),
            election_timeout_max: millis(config.election_timeout_max),
            install_snapshot_timeout: millis(config.snapshot_timeout),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: 0,
            ..Default::default()
        }
        .validate()
        .map_err(|e| QuorumError::Config(e.to_string()))?;

        let client = Arc::new(RpcClient::new(
            me,
            cluster_id.clone(),
            config.max_frame_bytes,
            config.tls.as_ref().map(|t| t.client.clone()),
        ));
        let raft = Raft::new(
            me,
            Arc::new(raft_config),
            NetworkFactory::new(client.clone(), config.voters.clone()),
            log,
            sm,
        )
        .await
        .map_err(|e| QuorumError::Raft(e.to_string()))?;

        let local_addr = listener
            .local_addr()
            .map_err(|source| QuorumError::Listen {
                addr: config.listen,
                source,
            })?;
        let listener = listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener))
            .map_err(|source| QuorumError::Listen {
                addr: local_addr,
                source,
            })?;
        let heard = Arc::new(takeover::Heard::default());
        let server = network::spawn_server(
            listener,
            config.tls.as_ref().map(|t| t.server.clone()),
            raft.clone(),
            ServerConfig {
                me,
                cluster_id: cluster_id.clone(),
                max_frame: config.max_frame_bytes,
                client_write_timeout: config.propose_timeout,
                refusals: Default::default(),
                disagreements: client.disagreements(),
                heard: heard.clone(),
            },
        );

        let contact = contact::Contact::track(&raft, config.voters.len() == 1);
        let quorum = MetadataQuorum {
            inner: Arc::new(Inner {
                contact,
                heard,
                me,
                cfg: config,
                cluster_id,
                raft,
                client,
                image,
                commit,
                server: Mutex::new(Some(server)),
                stopped: AtomicBool::new(false),
                local_addr,
            }),
        };
        quorum.initialize_if_first().await?;
        tracing::info!(node = me, addr = %local_addr, voters = ?quorum.inner.cfg.voters, "metadata quorum member started");
        Ok(quorum)
    }

    /// How long this node has been out of touch with a quorum of the voters: as leader,
    /// since a majority last acknowledged it; otherwise since it last knew a leader. Zero for
    /// a quorum of one.
    pub fn out_of_contact(&self) -> Duration {
        self.inner.contact.out_of_contact()
    }

    async fn initialize_if_first(&self) -> Result<(), QuorumError> {
        let inner = &self.inner;
        let initialized = inner
            .raft
            .is_initialized()
            .await
            .map_err(|e| QuorumError::Raft(e.to_string()))?;
        if initialized {
            let configured: Vec<NodeId> = inner.cfg.voters.keys().copied().collect();
            let m = inner.raft.metrics().borrow().membership_config.clone();
            let effective: Vec<NodeId> = m.voter_ids().collect();
            if effective != configured {
                tracing::info!(?configured, ?effective, "configured voters differ from the quorum's membership (voters change at run time with AddRaftVoter/RemoveRaftVoter); the membership holds");
            }
            return Ok(());
        }
        if inner.cfg.voters.keys().next() != Some(&inner.me) {
            tracing::info!(
                node = inner.me,
                "waiting for the lowest-id voter to form the metadata quorum"
            );
            return Ok(());
        }
        let members: BTreeMap<NodeId, BasicNode> = inner
            .cfg
            .voters
            .iter()
            .map(|(id, addr)| (*id, BasicNode::new(addr)))
            .collect();
        match inner.raft.initialize(members).await {
            Ok(()) => {
                tracing::info!(voters = ?inner.cfg.voters, "formed the metadata quorum");
                Ok(())
            }
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                tracing::debug!(error = %e, "metadata quorum already formed");
                Ok(())
            }
            Err(e) => Err(QuorumError::Raft(e.to_string())),
        }
    }

    /// Whether this node is the quorum leader; the receiver sees a change only when the role
    /// changes (not on every metrics update).
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.inner.contact.leading()
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.me
    }

    /// Resolves when the Raft core has stopped on a fatal error (its log or state storage
    /// failed) other than a shutdown, with the error.
    pub async fn failed(&self) -> String {
        let mut m = self.inner.raft.metrics();
        loop {
            let state = m.borrow_and_update().running_state.clone();
            if let Err(e) = state {
                if !self.inner.stopped.load(Ordering::SeqCst) {
                    return e.to_string();
                }
            }
            if m.changed().await.is_err() {
                if self.inner.stopped.load(Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                return "the metadata quorum stopped".into();
            }
        }
    }

    /// The address the peer listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Proposes `command` and waits until it is committed and applied, returning the state
    /// machine's result. Works on any node: a follower forwards to the leader. Retries across
    /// leader changes and lost replies until [`QuorumConfig::propose_timeout`]; every retry
    /// carries the same proposal id, so the command is applied at most once.
    pub async fn propose(&self, command: MetadataCommand) -> Result<CommandResult, QuorumError> {
        self.propose_committed(command).await.map(|c| c.result)
    }

    /// [`MetadataQuorum::propose`], also saying where the command sits in the log (the image
    /// version that includes it), so the proposer can wait until its own node has applied it.
    pub async fn propose_committed(
        &self,
        command: MetadataCommand,
    ) -> Result<Committed, QuorumError> {
        let inner = &self.inner;
        let proposal = Proposal {
            id: Uuid::new_v4(),
            command,
        };
        let waited = inner.cfg.propose_timeout;
        let deadline = Instant::now() + waited;
        let mut metrics = inner.raft.metrics();
        let mut last = String::from("no leader known");
        loop {
            if inner.stopped.load(Ordering::SeqCst) {
                return Err(QuorumError::Shutdown);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(QuorumError::Timeout { waited, last });
            }
            let (leader, leader_addr) = {
                let m = metrics.borrow_and_update();
                let leader = m.current_leader;
                // This node's configured address for the leader first (see the network).
                let addr = leader.and_then(|l| {
                    inner.cfg.voters.get(&l).cloned().or_else(|| {
                        m.membership_config
                            .membership()
                            .get_node(&l)
                            .map(|n| n.addr.clone())
                    })
                });
                (leader, addr)
            };
            match (leader, leader_addr) {
                (Some(l), _) if l == inner.me => {
                    match tokio::time::timeout(remaining, inner.raft.client_write(proposal.clone()))
                        .await
                    {
                        Ok(Ok(resp)) => {
                            let index = resp.log_id.index;
                            return resp
                                .data
                                .map(|result| Committed { result, index })
                                .map_err(QuorumError::Rejected);
                        }
                        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                            last = format!("leadership moved away (to {:?})", f.leader_id);
                        }
                        Ok(Err(RaftError::APIError(e))) => {
                            return Err(QuorumError::Raft(e.to_string()))
                        }
                        Ok(Err(RaftError::Fatal(e))) => {
                            if inner.stopped.load(Ordering::SeqCst) {
                                return Err(QuorumError::Shutdown);
                            }
                            return Err(QuorumError::Raft(e.to_string()));
                        }
                        Err(_) => last = "not committed in time".into(),
                    }
                }
                (Some(l), Some(addr)) => {
                    let body = RpcBody::ClientWrite(proposal.clone());
                    match inner.client.call(l, &addr, body, remaining).await {
                        Ok(RpcReply::ClientWrite(ForwardReply::Applied(r))) => {
                            return r
                                .map(|result| Committed { result, index: 0 })
                                .map_err(QuorumError::Rejected)
                        }
                        Ok(RpcReply::ClientWrite(ForwardReply::AppliedAt { response, index })) => {
                            return response
                                .map(|result| Committed { result, index })
                                .map_err(QuorumError::Rejected)
                        }
                        Ok(RpcReply::ClientWrite(ForwardReply::NotLeader { leader })) => {
                            last =
                                format!("node {l} is no longer the leader (it knows {leader:?})");
                        }
                        Ok(RpcReply::ClientWrite(ForwardReply::Unavailable(why))) => {
                            last = format!("node {l}: {why}")
                        }
                        Ok(_) => last = format!("node {l} sent an unexpected reply"),
                        Err(e) => last = e.to_string(),
                    }
                    tracing::debug!(leader = l, reason = %last, "forwarded proposal did not complete, retrying");
                }
                (Some(l), None) => last = format!("no address known for leader {l}"),
                (None, _) => {}
            }
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(RETRY_BACKOFF);
            if let Ok(Err(_)) = tokio::time::timeout(wait, metrics.changed()).await {
                return Err(QuorumError::Shutdown);
            }
        }
    }

    /// Proposes `command` only if this node is the leader now, never forwarding or retrying
    /// elsewhere, and waits up to `timeout` for it to commit. For decisions that are only
    /// valid while this node leads (the active controller's liveness verdicts): a verdict
    /// taken by a leader cut off from the others must not be carried out later by whoever
    /// leads after the partition heals.
    pub async fn propose_as_leader(
        &self,
        command: MetadataCommand,
        timeout: Duration,
    ) -> Result<CommandResult, QuorumError> {
        let inner = &self.inner;
        let not_leader = |last: String| QuorumError::Timeout {
            waited: Duration::ZERO,
            last,
        };
        if inner.raft.metrics().borrow().current_leader != Some(inner.me) {
            return Err(not_leader("this node is not the quorum leader".into()));
        }
        let proposal = Proposal {
            id: Uuid::new_v4(),
            command,
        };
        match tokio::time::timeout(timeout, inner.raft.client_write(proposal)).await {
            Ok(Ok(resp)) => resp.data.map_err(QuorumError::Rejected),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => Err(not_leader(
                format!("leadership moved away (to {:?})", f.leader_id),
            )),
            Ok(Err(e)) => Err(QuorumError::Raft(e.to_string())),
            Err(_) => Err(QuorumError::Timeout {
                waited: timeout,
                last: "not committed in time".into(),
            }),
        }
    }

    /// The latest applied image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.inner.image.borrow().clone()
    }

    /// A receiver of every applied image (published after each applied batch; committed
    /// entries only, so a published change is durable on a quorum). The current image counts
    /// as not yet seen, so a first `changed()` returns at once.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        let mut rx = self.inner.image.clone();
        rx.mark_changed();
        rx
    }

    /// The leader this node knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.inner.raft.metrics().borrow().current_leader
    }

    /// Waits until this node knows a leader, up to `timeout`.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId, QuorumError> {
        let mut metrics = self.inner.raft.metrics();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(l) = metrics.borrow_and_update().current_leader {
                return Ok(l);
            }
            // Refused by a majority of the voters and no leader: this node is the odd one out
            // (a minority that refuses the others can still form a quorum without them).
            let refusals = self.inner.client.disagreements().all();
            if refusals.len() > self.inner.cfg.voters.len() / 2 {
                let why: Vec<String> = refusals.into_values().collect();
                return Err(QuorumError::RefusedByPeers(why.join("; ")));
            }
            let slice = deadline.min(tokio::time::Instant::now() + Duration::from_millis(200));
            match tokio::time::timeout_at(slice, metrics.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(QuorumError::Shutdown),
                Err(_) if slice < deadline => {}
                Err(_) => {
                    return Err(QuorumError::Timeout {
                        waited: timeout,
                        last: "no leader elected".into(),
                    });
                }
            }
        }
    }

    /// Stops this member: Raft, the peer listener and pooled connections. Proposals fail with
    /// [`QuorumError::Shutdown`] afterwards. Idempotent.
    pub async fn shutdown(&self) -> Result<(), QuorumError> {
        let inner = &self.inner;
        if inner.stopped.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let res = inner.raft.shutdown().await;
        let server = inner
            .server
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = server {
            h.abort();
            let _ = h.await;
        }
        inner.client.clear();
        tracing::info!(node = inner.me, "metadata quorum member stopped");
        res.map_err(|e| QuorumError::Raft(format!("raft core ended abnormally: {e}")))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Checks `meta.json` in the quorum directory against the configured node and cluster ids
/// (writing it on first start) and returns the effective cluster id.
fn check_meta(cfg: &QuorumConfig) -> Result<Option<String>, QuorumError> {
    let path = cfg.dir.join("meta.json");
    let storage = |source| QuorumError::Storage {
        path: path.clone(),
        source,
    };
    let stored: Option<QuorumMeta> = log_store::read_json(&path).map_err(storage)?;
    match stored {
        Some(m) => {
            if m.node_id != cfg.node_id {
                return Err(QuorumError::NodeIdMismatch {
                    dir: cfg.dir.clone(),
                    stored: m.node_id,
                    configured: cfg.node_id,
                });
            }
            match (&m.cluster_id, &cfg.cluster_id) {
                (Some(s), Some(c)) if s != c => Err(QuorumError::ClusterIdMismatch {
                    dir: cfg.dir.clone(),
                    stored: s.clone(),
                    configured: c.clone(),
                }),
                (Some(s), _) => Ok(Some(s.clone())),
                (None, Some(c)) => {
                    let meta = QuorumMeta {
                        node_id: cfg.node_id,
                        cluster_id: Some(c.clone()),
                    };
                    log_store::write_json_atomic(&path, &meta, true).map_err(storage)?;
                    Ok(Some(c.clone()))
                }
                (None, None) => Ok(None),
            }
        }
        None => {
            let meta = QuorumMeta {
                node_id: cfg.node_id,
                cluster_id: cfg.cluster_id.clone(),
            };
            log_store::write_json_atomic(&path, &meta, true).map_err(storage)?;
            Ok(cfg.cluster_id.clone())
        }
    }
}
