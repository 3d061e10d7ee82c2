//! The serving side of the quorum's RPC: one task per peer connection (TLS first when the
//! CONTROLLER listener is SSL), requests checked for their target node and cluster.

use super::*;

/// How long a peer has to finish its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

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
    pub(crate) heard: Arc<crate::controller::raft::takeover::Heard>,
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
