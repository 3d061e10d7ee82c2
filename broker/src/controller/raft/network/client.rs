//! The calling side of the quorum's RPC: pooled connections to peers (TCP, or TLS when the
//! CONTROLLER listener is SSL), and openraft's network adapter over them.

use super::*;
use std::time::Instant;

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
    /// When each peer last accepted an AppendEntries from this node (heartbeats included):
    /// DescribeQuorum's last fetch time, as a KRaft leader reports its followers' fetches.
    acks: Mutex<BTreeMap<NodeId, Instant>>,
    /// Permits for forwarded proposals ([`MAX_FORWARDS_IN_FLIGHT`]).
    forwards: Arc<tokio::sync::Semaphore>,
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
            acks: Mutex::new(BTreeMap::new()),
            forwards: Arc::new(tokio::sync::Semaphore::new(MAX_FORWARDS_IN_FLIGHT)),
        }
    }

    /// When each peer last accepted an AppendEntries from this node.
    pub(crate) fn last_acks(&self) -> BTreeMap<NodeId, Instant> {
        self.acks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn note_ack(&self, peer: NodeId) {
        self.acks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer, Instant::now());
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
        let forwarded = matches!(req.body, RpcBody::ClientWrite(_));
        let exchange = async {
            // A forwarded proposal waits for a permit within its own timeout.
            let _permit =
                match forwarded {
                    true => Some(self.forwards.clone().acquire_owned().await.map_err(|_| {
                        RpcError::Io {
                            addr: addr.into(),
                            source: io::Error::other("the RPC client is shutting down"),
                        }
                    })?),
                    false => None,
                };
            self.exchange(addr, &bytes).await
        };
        let reply = tokio::time::timeout(timeout, exchange)
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
                let name = rill_client::security::server_name(addr).map_err(|e| RpcError::Io {
                    addr: addr.into(),
                    source: io::Error::new(io::ErrorKind::InvalidInput, e),
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
                if r.is_ok() {
                    self.client.note_ack(self.target);
                }
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
