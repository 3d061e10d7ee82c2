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
//!
//! This file holds the messages and the framing; `client.rs` the calling side (the pool and
//! openraft's network adapter), `server.rs` the serving side.

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

mod client;
mod server;

pub(crate) use client::{Disagreements, NetworkFactory, RpcClient};
pub(crate) use server::{spawn_server, ServerConfig};

/// Idle connections kept per peer address.
const MAX_IDLE_PER_PEER: usize = 8;

/// Forwarded proposals in flight at once from this node. Each holds a connection to the
/// leader while it waits for its commit: without a bound, a burst (a leader's ISR changes
/// for thousands of partitions after a broker died) opened one socket per proposal on both
/// ends and ran the nodes out of file descriptors. Raft's own calls are not counted: openraft
/// bounds them (one replication stream per peer), and they must never queue behind proposals.
const MAX_FORWARDS_IN_FLIGHT: usize = 32;

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
