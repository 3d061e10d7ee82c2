//! The quorum's transport: a small request/response RPC over TCP.
//!
//! Each frame is a `u32` big-endian length followed by that many bytes of JSON; frames above
//! the configured limit are refused before allocating, in both directions. A request names the
//! sender, the intended receiver and the sender's cluster id; a node refuses requests meant
//! for another node id or coming from another cluster (and says why in the reply and its log).
//! Requests: openraft's AppendEntries, Vote and (chunked, unused by default) InstallSnapshot,
//! a whole snapshot in one message, and `ClientWrite`, which forwards a proposal from a
//! follower to the leader.
//!
//! The client keeps a pool of idle connections per peer address; a call takes one (or dials),
//! and a connection is returned to the pool only after a complete exchange, so any failure
//! drops it and the next call reconnects. A pooled connection that fails (the peer restarted)
//! is retried once on a fresh one. Every call runs under a timeout covering dial, send and
//! reply.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::ClientWriteError;
use openraft::error::{
    Fatal, InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, ClientWriteResponse, InstallSnapshotRequest,
    InstallSnapshotResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{AnyError, BasicNode, RPCTypes, Raft, Snapshot, SnapshotMeta, StorageIOError, Vote};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::command::{CommandResponse, Proposal};
use super::{NodeId, TypeConfig};

/// Idle connections kept per peer address.
const MAX_IDLE_PER_PEER: usize = 8;

/// One request frame.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RpcRequest {
    /// The sender's cluster id, when it has one.
    cluster_id: Option<String>,
    /// The sender.
    from: NodeId,
    /// The node the sender means to reach.
    to: NodeId,
    /// The call.
    body: RpcBody,
}

/// The calls.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RpcBody {
    /// Raft log replication and heartbeats.
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Raft election.
    Vote(VoteRequest<NodeId>),
    /// One chunk of a snapshot (openraft's chunked transport; only used if the full-snapshot
    /// path is ever disabled).
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A whole snapshot: metadata is small enough for one message.
    FullSnapshot {
        /// The leader's vote.
        vote: Vote<NodeId>,
        /// Snapshot metadata.
        meta: SnapshotMeta<NodeId, BasicNode>,
        /// The snapshot payload (JSON text).
        data: String,
    },
    /// A proposal forwarded to the leader.
    ClientWrite(Proposal),
}

/// The replies, one per call kind, or a refusal of the request as a whole.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RpcReply {
    /// Reply to [`RpcBody::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// Reply to [`RpcBody::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// Reply to [`RpcBody::InstallSnapshot`].
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// Reply to [`RpcBody::FullSnapshot`].
    FullSnapshot(Result<SnapshotResponse<NodeId>, Fatal<NodeId>>),
    /// Reply to [`RpcBody::ClientWrite`].
    ClientWrite(ForwardReply),
    /// The request was not processed (wrong node id, other cluster).
    Refused(String),
}

/// What the receiver of a forwarded proposal did with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum ForwardReply {
    /// Committed and applied: the state machine's response (from nodes that do not say where).
    Applied(CommandResponse),
    /// Committed and applied at log `index`: the state machine's response.
    AppliedAt {
        /// The state machine's response.
        response: CommandResponse,
        /// The entry's log index (the image version that includes it).
        index: u64,
    },
    /// The receiver is not the leader (nothing was appended); its idea of the leader.
    NotLeader {
        /// The leader as the receiver knows it.
        leader: Option<NodeId>,
    },
    /// The outcome is unknown (timeout, shutdown, ...).
    Unavailable(String),
}

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RpcError {
    /// Could not dial.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Peer address.
        addr: String,
        /// Cause.
        source: io::Error,
    },
    /// No reply in time.
    #[error("no reply from {addr} within {timeout:?}")]
    Timeout {
        /// Peer address.
        addr: String,
        /// The limit.
        timeout: Duration,
    },
    /// The connection failed mid-exchange.
    #[error("i/o error with {addr}: {source}")]
    Io {
        /// Peer address.
        addr: String,
        /// Cause.
        source: io::Error,
    },
    /// The request would exceed the frame limit.
    #[error("request of {size} bytes exceeds the {limit} byte frame limit")]
    TooLarge {
        /// Request size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Encoding or decoding failed.
    #[error("bad frame with {addr}: {source}")]
    Codec {
        /// Peer address.
        addr: String,
        /// Cause.
        source: serde_json::Error,
    },
    /// The peer refused the request.
    #[error("{addr} refused the request: {reason}")]
    Refused {
        /// Peer address.
        addr: String,
        /// The peer's reason.
        reason: String,
    },
    /// A reply of the wrong kind.
    #[error("unexpected reply kind from {addr}")]
    Unexpected {
        /// Peer address.
        addr: String,
    },
}

/// Parses a controller-listener request frame (what the RPC server does with each frame
/// before acting on it); exposed for the fuzz harness.
pub fn parse_request(frame: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<RpcRequest>(frame)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Parses a controller-listener reply frame (what a peer's client does with each reply).
pub fn parse_reply(frame: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<RpcReply>(frame)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Well-formed request frames of each kind, as seeds for the fuzz harness's mutations.
pub fn sample_requests() -> Vec<Vec<u8>> {
    use openraft::{CommittedLeaderId, LogId};
    let vote = Vote::new(3, 1);
    let log_id = LogId::new(CommittedLeaderId::new(3, 1), 7);
    let bodies = vec![
        RpcBody::Vote(VoteRequest::new(vote, Some(log_id))),
        RpcBody::AppendEntries(AppendEntriesRequest {
            vote,
            prev_log_id: Some(log_id),
            entries: Vec::new(),
            leader_commit: Some(log_id),
        }),
        RpcBody::ClientWrite(Proposal {
            id: uuid::Uuid::nil(),
            command: super::command::MetadataCommand::AllocateProducerIds { count: 1 },
        }),
        RpcBody::ClientWrite(Proposal {
            id: uuid::Uuid::nil(),
            command: super::command::MetadataCommand::DeleteTopic { name: "t".into() },
        }),
    ];
    bodies
        .into_iter()
        .filter_map(|body| {
            serde_json::to_vec(&RpcRequest {
                cluster_id: Some("c".into()),
                from: 1,
                to: 2,
                body,
            })
            .ok()
        })
        .collect()
}

/// The most a frame's buffer reserves before its bytes arrive.
const INITIAL_FRAME_CAPACITY: usize = 64 << 10;

/// Reads one frame; `None` on a clean end of stream before a frame starts.
pub(crate) async fn read_frame<R: AsyncReadExt + Unpin + ?Sized>(
    r: &mut R,
    max: usize,
) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the {max} byte limit"),
        ));
    }
    // Grown as bytes arrive: a claimed length costs nothing until the peer sends it.
    let mut buf = Vec::with_capacity(len.min(INITIAL_FRAME_CAPACITY));
    let got = r.take(len as u64).read_to_end(&mut buf).await?;
    if got < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame cut short: {got} of {len} bytes"),
        ));
    }
    Ok(Some(buf))
}

/// Writes one frame.
pub(crate) async fn write_frame<W: AsyncWriteExt + Unpin + ?Sized>(
    w: &mut W,
    payload: &[u8],
) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut buf = Vec::with_capacity(4 + payload.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf).await?;
    w.flush().await
}

/// The client side: pooled connections to peers.
#[derive(Debug)]
pub(crate) struct RpcClient {
    me: NodeId,
    cluster_id: Option<String>,
    max_frame: usize,
    pool: Mutex<HashMap<String, Vec<Box<dyn Stream>>>>,
    /// TLS towards peers, when the CONTROLLER listener is SSL.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Peers this node disagrees with (see [`Disagreements`]).
    disagreements: Arc<Disagreements>,
}

/// Peers that refused this node, or that this node refused, for belonging to another cluster
/// (or a voter list naming another node), with the reason, by peer id. A starting node that
/// disagrees with a majority of the voters is the odd one out and fails with the reasons.
#[derive(Debug, Default)]
pub(crate) struct Disagreements(Mutex<BTreeMap<NodeId, String>>);

impl Disagreements {
    /// Records a disagreement with `peer`.
    pub(crate) fn note(&self, peer: NodeId, reason: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer, reason.to_string());
    }

    /// Every disagreement so far, by peer.
    pub(crate) fn all(&self) -> BTreeMap<NodeId, String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl RpcClient {
    /// The disagreements record this client and the server share.
    pub(crate) fn disagreements(&self) -> Arc<Disagreements> {
        self.disagreements.clone()
    }

    /// A client calling as node `me` of cluster `cluster_id`.
    pub(crate) fn new(
        me: NodeId,
        cluster_id: Option<String>,
        max_frame: usize,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> RpcClient {
        RpcClient {
            me,
            cluster_id,
            max_frame,
            tls,
            pool: Mutex::new(HashMap::new()),
            disagreements: Default::default(),
        }
    }

    fn take(&self, addr: &str) -> Option<Box<dyn Stream>> {
        self.pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(addr)
            .and_then(Vec::pop)
    }

    fn put(&self, addr: &str, conn: Box<dyn Stream>) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let idle = pool.entry(addr.to_string()).or_default();
        if idle.len() < MAX_IDLE_PER_PEER {
            idle.push(conn);
        }
    }

    /// Drops every idle connection (at shutdown).
    pub(crate) fn clear(&self) {
        self.pool.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Sends `body` to node `target` at `addr` and waits for its reply, all within `timeout`.
    pub(crate) async fn call(
        &self,
        target: NodeId,
        addr: &str,
        body: RpcBody,
        timeout: Duration,
    ) -> Result<RpcReply, RpcError> {
        let req = RpcRequest {
            cluster_id: self.cluster_id.clone(),
            from: self.me,
            to: target,
            body,
        };
        let bytes = serde_json::to_vec(&req).map_err(|source| RpcError::Codec {
            addr: addr.into(),
            source,
        })?;
        if bytes.len() > self.max_frame {
            return Err(RpcError::TooLarge {
                size: bytes.len(),
                limit: self.max_frame,
            });
        }
        let reply = tokio::time::timeout(timeout, self.exchange(addr, &bytes))
            .await
            .map_err(|_| RpcError::Timeout {
                addr: addr.into(),
                timeout,
            })??;
        let reply: RpcReply = serde_json::from_slice(&reply).map_err(|source| RpcError::Codec {
            addr: addr.into(),
            source,
        })?;
        if let RpcReply::Refused(reason) = reply {
            self.disagreements.note(target, &reason);
            return Err(RpcError::Refused {
                addr: addr.into(),
                reason,
            });
        }
        Ok(reply)
    }

    async fn exchange(&self, addr: &str, request: &[u8]) -> Result<Vec<u8>, RpcError> {
        if let Some(mut conn) = self.take(addr) {
            match round_trip(&mut conn, request, self.max_frame).await {
                Ok(reply) => {
                    self.put(addr, conn);
                    return Ok(reply);
                }
                Err(e) => {
                    tracing::debug!(peer = addr, error = %e, "pooled connection failed, reconnecting")
                }
            }
        }
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| RpcError::Connect {
                addr: addr.into(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let mut conn: Box<dyn Stream> = match &self.tls {
            None => Box::new(tcp),
            Some(tls) => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let name =
                    rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
                        RpcError::Io {
                            addr: addr.into(),
                            source: io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
                        }
                    })?;
                let tls = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|source| RpcError::Io {
                        addr: addr.into(),
                        source,
                    })?;
                Box::new(tls)
            }
        };
        let reply = round_trip(&mut conn, request, self.max_frame)
            .await
            .map_err(|source| RpcError::Io {
                addr: addr.into(),
                source,
            })?;
        self.put(addr, conn);
        Ok(reply)
    }
}

/// A quorum connection: TCP, or TLS over it.
pub(crate) trait Stream:
    AsyncRead + AsyncWrite + Send + Sync + Unpin + std::fmt::Debug
{
}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + std::fmt::Debug> Stream for T {}

/// How long a peer has to finish its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

async fn round_trip<S: AsyncRead + AsyncWrite + Unpin + ?Sized>(
    conn: &mut S,
    request: &[u8],
    max: usize,
) -> io::Result<Vec<u8>> {
    write_frame(conn, request).await?;
    read_frame(conn, max).await?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before the reply",
        )
    })
}

/// How long replication to an unreachable peer pauses before the next attempt.
const UNREACHABLE_BACKOFF: Duration = Duration::from_millis(100);

/// openraft's network factory: one [`PeerNetwork`] per target, all sharing one pool.
pub(crate) struct NetworkFactory {
    client: Arc<RpcClient>,
    /// This node's own `controller.quorum.voters` addresses.
    voters: BTreeMap<NodeId, String>,
}

impl NetworkFactory {
    /// A factory over `client`; `voters` are this node's configured peer addresses.
    pub(crate) fn new(client: Arc<RpcClient>, voters: BTreeMap<NodeId, String>) -> NetworkFactory {
        NetworkFactory { client, voters }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerNetwork {
        // The membership holds the addresses the cluster was formed with (the first voter's
        // view); this node's own `controller.quorum.voters` says how *it* reaches each peer
        // (as KRaft's static quorum does), which matters when routes differ per node.
        let addr = self
            .voters
            .get(&target)
            .cloned()
            .unwrap_or_else(|| node.addr.clone());
        PeerNetwork {
            target,
            addr,
            client: self.client.clone(),
        }
    }
}

/// The connection to one peer as openraft sees it.
pub(crate) struct PeerNetwork {
    target: NodeId,
    addr: String,
    client: Arc<RpcClient>,
}

impl PeerNetwork {
    fn rpc_error<E: std::error::Error>(
        &self,
        e: RpcError,
        action: RPCTypes,
    ) -> RPCError<NodeId, BasicNode, E> {
        match e {
            RpcError::Timeout { timeout, .. } => RPCError::Timeout(Timeout {
                action,
                id: self.client.me,
                target: self.target,
                timeout,
            }),
            // An I/O error here already failed on a fresh connection (`exchange` retries a
            // pooled one once): a peer that accepts and drops connections is as unreachable
            // as one that refuses them, and `Unreachable` makes openraft back off instead of
            // retrying in a tight loop.
            RpcError::Connect { .. } | RpcError::Refused { .. } | RpcError::Io { .. } => {
                RPCError::Unreachable(Unreachable::new(&e))
            }
            _ => RPCError::Network(NetworkError::new(&e)),
        }
    }

    fn unexpected<E: std::error::Error>(&self) -> RPCError<NodeId, BasicNode, E> {
        RPCError::Network(NetworkError::new(&RpcError::Unexpected {
            addr: self.addr.clone(),
        }))
    }
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    /// Pause after an unreachable peer: short, so a returning peer catches up quickly, but
    /// enough that a dead one costs no CPU.
    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(UNREACHABLE_BACKOFF))
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let n = rpc.entries.len();
        match self
            .client
            .call(
                self.target,
                &self.addr,
                RpcBody::AppendEntries(rpc),
                option.hard_ttl(),
            )
            .await
        {
            Ok(RpcReply::AppendEntries(r)) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(self.unexpected()),
            Err(RpcError::TooLarge { .. }) if n > 1 => Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint((n / 2) as u64),
            )),
            Err(e) => Err(self.rpc_error(e, RPCTypes::AppendEntries)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self
            .client
            .call(
                self.target,
                &self.addr,
                RpcBody::InstallSnapshot(rpc),
                option.hard_ttl(),
            )
            .await
        {
            Ok(RpcReply::InstallSnapshot(r)) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(self.unexpected()),
            Err(e) => Err(self.rpc_error(e, RPCTypes::InstallSnapshot)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self
            .client
            .call(
                self.target,
                &self.addr,
                RpcBody::Vote(rpc),
                option.hard_ttl(),
            )
            .await
        {
            Ok(RpcReply::Vote(r)) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(self.unexpected()),
            Err(e) => Err(self.rpc_error(e, RPCTypes::Vote)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let meta = snapshot.meta;
        let data = String::from_utf8(snapshot.snapshot.into_inner()).map_err(|e| {
            StreamingError::StorageError(
                StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e)).into(),
            )
        })?;
        tracing::info!(target = self.target, snapshot = %meta, bytes = data.len(), "sending metadata snapshot");
        let body = RpcBody::FullSnapshot { vote, meta, data };
        let call = self
            .client
            .call(self.target, &self.addr, body, option.hard_ttl());
        let res = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            res = call => res,
        };
        match res {
            Ok(RpcReply::FullSnapshot(r)) => {
                r.map_err(|e| StreamingError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(StreamingError::Network(NetworkError::new(
                &RpcError::Unexpected {
                    addr: self.addr.clone(),
                },
            ))),
            Err(RpcError::Timeout { timeout, .. }) => Err(StreamingError::Timeout(Timeout {
                action: RPCTypes::InstallSnapshot,
                id: self.client.me,
                target: self.target,
                timeout,
            })),
            Err(
                e @ (RpcError::Connect { .. } | RpcError::Refused { .. } | RpcError::Io { .. }),
            ) => Err(StreamingError::Unreachable(Unreachable::new(&e))),
            Err(e) => Err(StreamingError::Network(NetworkError::new(&e))),
        }
    }
}

/// The server side's settings.
#[derive(Debug, Clone)]
pub(crate) struct ServerConfig {
    /// This node.
    pub(crate) me: NodeId,
    /// This node's cluster id, when known.
    pub(crate) cluster_id: Option<String>,
    /// Frame limit.
    pub(crate) max_frame: usize,
    /// How long a forwarded proposal may wait for its commit.
    pub(crate) client_write_timeout: Duration,
    /// Rate limit for refusal warnings (a misconfigured peer retries every heartbeat).
    pub(crate) refusals: Arc<RefusalLog>,
    /// Shared with this node's [`RpcClient`].
    pub(crate) disagreements: Arc<Disagreements>,
    /// When each peer last sent AppendEntries (see `takeover`).
    pub(crate) heard: Arc<super::takeover::Heard>,
}

/// Lets one refusal warning through per [`REFUSAL_LOG_INTERVAL`]; the rest go to debug.
#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    last: Mutex<Option<std::time::Instant>>,
}

/// Minimum time between two refusal warnings.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

impl RefusalLog {
    fn log(&self, reason: &str) {
        let now = std::time::Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| now.duration_since(t) >= REFUSAL_LOG_INTERVAL) {
            *last = Some(now);
            tracing::warn!(reason, "refusing quorum requests");
        } else {
            tracing::debug!(reason, "refusing a quorum request");
        }
    }
}

/// Serves peers on `listener` until the returned task is aborted (which also ends every
/// connection task).
pub(crate) fn spawn_server(
    listener: TcpListener,
    tls: Option<Arc<crate::security::tls::TlsServer>>,
    raft: Raft<TypeConfig>,
    cfg: ServerConfig,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let raft = raft.clone();
                        let cfg = cfg.clone();
                        let tls = tls.clone();
                        conns.spawn(async move {
                            let r = match tls {
                                None => serve_connection(stream, raft, &cfg).await,
                                Some(tls) => {
                                    // The peer must present a certificate the truststore
                                    // vouches for (the listener requires client auth).
                                    match tokio::time::timeout(
                                        TLS_HANDSHAKE_TIMEOUT,
                                        tls.acceptor().accept(stream),
                                    )
                                    .await
                                    {
                                        Ok(Ok(s)) => serve_connection(s, raft, &cfg).await,
                                        Ok(Err(e)) => Err(e),
                                        Err(_) => Err(io::Error::new(
                                            io::ErrorKind::TimedOut,
                                            "TLS handshake timed out",
                                        )),
                                    }
                                }
                            };
                            if let Err(e) = r {
                                tracing::debug!(%peer, error = %e, "quorum connection closed");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "quorum listener accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    })
}

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    raft: Raft<TypeConfig>,
    cfg: &ServerConfig,
) -> io::Result<()> {
    while let Some(frame) = read_frame(&mut stream, cfg.max_frame).await? {
        let req: RpcRequest = serde_json::from_slice(&frame).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("undecodable request: {e}"),
            )
        })?;
        let reply = handle(req, &raft, cfg).await;
        let mut bytes = serde_json::to_vec(&reply).map_err(io::Error::other)?;
        if bytes.len() > cfg.max_frame {
            let refused = RpcReply::Refused(format!(
                "reply of {} bytes exceeds the frame limit",
                bytes.len()
            ));
            bytes = serde_json::to_vec(&refused).map_err(io::Error::other)?;
        }
        write_frame(&mut stream, &bytes).await?;
    }
    Ok(())
}

async fn handle(req: RpcRequest, raft: &Raft<TypeConfig>, cfg: &ServerConfig) -> RpcReply {
    if req.to != cfg.me {
        let reason = format!(
            "this is node {}, not node {} (request from node {}): check controller.quorum.voters",
            cfg.me, req.to, req.from
        );
        cfg.refusals.log(&reason);
        return RpcReply::Refused(reason);
    }
    if let (Some(mine), Some(theirs)) = (&cfg.cluster_id, &req.cluster_id) {
        if mine != theirs {
            let reason = format!(
                "node {} belongs to cluster {mine}, but node {} belongs to cluster {theirs}",
                cfg.me, req.from
            );
            cfg.refusals.log(&reason);
            cfg.disagreements.note(req.from, &reason);
            return RpcReply::Refused(reason);
        }
    }
    match req.body {
        RpcBody::AppendEntries(r) => {
            cfg.heard.note(req.from);
            RpcReply::AppendEntries(raft.append_entries(r).await)
        }
        RpcBody::Vote(r) => RpcReply::Vote(raft.vote(r).await),
        RpcBody::InstallSnapshot(r) => RpcReply::InstallSnapshot(raft.install_snapshot(r).await),
        RpcBody::FullSnapshot { vote, meta, data } => {
            let snapshot = Snapshot {
                meta,
                snapshot: Box::new(io::Cursor::new(data.into_bytes())),
            };
            RpcReply::FullSnapshot(raft.install_full_snapshot(vote, snapshot).await)
        }
        RpcBody::ClientWrite(p) => {
            let res = tokio::time::timeout(cfg.client_write_timeout, raft.client_write(p)).await;
            RpcReply::ClientWrite(match res {
                Ok(Ok(ClientWriteResponse { data, log_id, .. })) => ForwardReply::AppliedAt {
                    response: data,
                    index: log_id.index,
                },
                Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                    ForwardReply::NotLeader {
                        leader: f.leader_id,
                    }
                }
                Ok(Err(e)) => ForwardReply::Unavailable(e.to_string()),
                Err(_) => ForwardReply::Unavailable(format!(
                    "not committed within {:?}",
                    cfg.client_write_timeout
                )),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_are_bounded() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, b"hello").await.expect("write");
        assert_eq!(
            read_frame(&mut b, 16).await.expect("read"),
            Some(b"hello".to_vec())
        );
        write_frame(&mut a, &[7u8; 100]).await.expect("write");
        assert!(
            read_frame(&mut b, 99).await.is_err(),
            "oversized frame refused"
        );
        drop(a);
        let (a2, mut b2) = tokio::io::duplex(64);
        drop(a2);
        assert_eq!(read_frame(&mut b2, 16).await.expect("clean eof"), None);
    }

    #[tokio::test]
    async fn client_reports_unreachable_and_oversized() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        drop(listener);
        let client = RpcClient::new(1, None, 1 << 20, None);
        let body = RpcBody::Vote(VoteRequest {
            vote: Vote::new(1, 1),
            last_log_id: None,
        });
        let err = client
            .call(2, &addr, body, Duration::from_secs(2))
            .await
            .expect_err("nobody listens");
        assert!(matches!(err, RpcError::Connect { .. }), "{err}");
        let small = RpcClient::new(1, None, 8, None);
        let body = RpcBody::Vote(VoteRequest {
            vote: Vote::new(1, 1),
            last_log_id: None,
        });
        let err = small
            .call(2, &addr, body, Duration::from_secs(2))
            .await
            .expect_err("too large");
        assert!(matches!(err, RpcError::TooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn silent_peer_times_out() {
        // A peer that accepts and never answers: the call times out.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let client = RpcClient::new(1, None, 1 << 20, None);
        let body = RpcBody::Vote(VoteRequest {
            vote: Vote::new(1, 1),
            last_log_id: None,
        });
        let err = client
            .call(2, &addr, body, Duration::from_millis(200))
            .await
            .expect_err("silent peer");
        assert!(matches!(err, RpcError::Timeout { .. }), "{err}");
        hold.abort();
    }
}
