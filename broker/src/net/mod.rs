//! The Kafka listener: one tokio task per connection, size-prefixed frames, one request at a
//! time per connection (as Kafka mutes a channel until its response is sent), so responses
//! always leave in request order.
//!
//! Everything a peer controls is bounded here, before any handler runs:
//! - connections: at `max.connections` the listener stops accepting until one closes (Kafka's
//!   acceptor does the same); beyond `max.connections.per.ip` a new connection from that
//!   address is closed at once;
//! - time: a connection idle for `connections.max.idle.ms` is closed, and once a request's
//!   first byte has arrived the whole frame must arrive within
//!   `socket.request.read.timeout.ms`, so slow writers cannot pin connections and buffers;
//! - memory: a frame's declared size is checked against `socket.request.max.bytes` before
//!   anything is allocated, and the buffer then grows only as bytes actually arrive, each read
//!   counted against a node-wide budget of `queued.max.request.bytes` (a connection stops
//!   reading while it is spent: back-pressure instead of an out-of-memory abort; each waiting
//!   connection holds at most one chunk beyond it). A peer that claims 100 MiB and sends 10
//!   bytes holds 10 bytes.
//!
//! Malformed frames (bad size, unknown API key or version, undecodable body) close only their
//! own connection, counted in `rill_connections_closed_total` and logged once per interval per
//! reason. A connection keeps its response buffer between responses, up to 4 MiB: a fresh
//! 1 MiB buffer per replica fetch page-faulted on every page (14% of a leader's CPU serving
//! two followers; removing it took RF=3/RF=1 acks=all throughput from ~0.45x to ~0.6x on 2
//! cores). Tried and dropped: pipelining a connection's Produce requests (Redpanda does):
//! librdkafka's idempotent producer never has a second Produce for a partition in flight (it
//! compares messages in flight, not requests, with its limit of 5), and plain producers
//! gained nothing.

mod admission;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::api::{self, Dispatcher, Outcome};
use crate::context::Broker;
use crate::security::session::Session;
use crate::security::{ListenerSecurity, Principal};
use crate::shutdown::Closing;
pub use admission::NetLimits;
use admission::{Admission, Held};

/// The largest response buffer a connection keeps between responses.
const KEEP_RESPONSE_BUFFER: usize = 4 << 20;

/// Request bytes read (and taken from the memory budget) per step.
const READ_CHUNK: usize = 64 << 10;

/// The most a frame's buffer reserves before its bytes arrive; larger frames grow with them.
const INITIAL_FRAME_CAPACITY: usize = 1 << 20;

/// How long a stopping listener lets its connections finish the requests in hand.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves every client listener until the node stops: one accept loop each, sharing the
/// connection slots and the request-memory budget (`max.connections` is node-wide in Kafka
/// too).
pub async fn serve(
    listeners: Vec<(TcpListener, Arc<ListenerSecurity>)>,
    dispatcher: Arc<Dispatcher>,
    limits: NetLimits,
    closing: Closing,
) {
    let broker = dispatcher.broker().clone();
    let admission = Arc::new(Admission::new(&limits, broker.metrics.clone()));
    let limits = Arc::new(limits);
    let mut loops = JoinSet::new();
    for (listener, security) in listeners {
        loops.spawn(accept_loop(
            listener,
            security,
            dispatcher.clone(),
            admission.clone(),
            limits.clone(),
            closing.clone(),
        ));
    }
    while loops.join_next().await.is_some() {}
}

/// Accepts connections on one listener until the node stops, a task for each, kept in a
/// `JoinSet`; then stops accepting, lets every connection finish the request in hand (each
/// closes before reading another) and waits for them, at most [`DRAIN_TIMEOUT`].
async fn accept_loop(
    listener: TcpListener,
    security: Arc<ListenerSecurity>,
    dispatcher: Arc<Dispatcher>,
    admission: Arc<Admission>,
    limits: Arc<NetLimits>,
    closing: Closing,
) {
    let broker = dispatcher.broker().clone();
    let mut connections = JoinSet::new();
    let mut stop = closing.clone();
    loop {
        // Finished connections leave the set as they go.
        while connections.try_join_next().is_some() {}
        // At max.connections, wait for a slot before accepting more: new clients queue in
        // the kernel's backlog instead of costing descriptors.
        let slot = tokio::select! {
            s = admission.slot() => s,
            _ = stop.closed() => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.closed() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Some(per_ip) = admission.enter(peer.ip()) else {
                    broker
                        .metrics
                        .connections_refused
                        .with_label_values(&["per_ip"])
                        .inc();
                    if let Some(left_out) = admission.repeated.check("per_ip") {
                        tracing::warn!(%peer, limit = ?limits.max_per_ip, left_out, "closing new connection: max.connections.per.ip reached for this address");
                    }
                    drop(stream);
                    continue;
                };
                let broker = broker.clone();
                let dispatcher = dispatcher.clone();
                let admission = admission.clone();
                let limits = limits.clone();
                let closing = closing.clone();
                let security = security.clone();
                connections.spawn(async move {
                    let _slot = slot;
                    let _per_ip = per_ip;
                    broker.metrics.connections.inc();
                    let r = connection(
                        stream,
                        peer,
                        security,
                        &dispatcher,
                        &limits,
                        &admission,
                        closing,
                    )
                    .await;
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an I/O error");
                    }
                    broker.metrics.connections.dec();
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                if let Some(left_out) = admission.repeated.check("accept") {
                    tracing::warn!(error = %e, left_out, "accept failed");
                }
                drop(slot);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    let open = connections.len();
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open,
            left = connections.len(),
            "connections still busy after the drain timeout; closing them"
        );
        connections.shutdown().await;
    }
}

/// Why a connection is closed by the broker (the `reason` label of
/// `rill_connections_closed_total`).
#[derive(Debug, Clone, Copy)]
enum CloseReason {
    Idle,
    SlowRequest,
    OversizedFrame,
    Malformed,
    TlsHandshake,
    Authentication,
}

impl CloseReason {
    fn label(self) -> &'static str {
        match self {
            CloseReason::Idle => "idle",
            CloseReason::SlowRequest => "slow_request",
            CloseReason::OversizedFrame => "oversized_frame",
            CloseReason::Malformed => "malformed",
            CloseReason::TlsHandshake => "tls_handshake",
            CloseReason::Authentication => "authentication",
        }
    }
}

/// The result of reading one request frame.
enum Frame {
    /// A whole frame, with its share of the request-memory budget.
    Request(Vec<u8>, Held),
    /// The peer closed the connection between requests.
    End,
    /// The broker closes the connection.
    Close(CloseReason, String),
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    security: Arc<ListenerSecurity>,
    dispatcher: &Dispatcher,
    limits: &NetLimits,
    admission: &Admission,
    closing: Closing,
) -> std::io::Result<()> {
    let broker = dispatcher.broker().as_ref();
    stream.set_nodelay(true)?;
    let Some(tls) = security.tls.clone() else {
        let session = Session::new(security, peer, Principal::anonymous());
        return requests(stream, session, dispatcher, limits, admission, closing).await;
    };
    // The handshake is the first thing a TLS peer sends: it must finish within the same
    // time as a request frame, or a silent peer would hold the connection.
    let accepted =
        tokio::time::timeout(limits.request_read_timeout, tls.acceptor().accept(stream)).await;
    let stream = match accepted {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            close(
                broker,
                admission,
                peer,
                CloseReason::TlsHandshake,
                &e.to_string(),
            );
            return Ok(());
        }
        Err(_) => {
            close(
                broker,
                admission,
                peer,
                CloseReason::SlowRequest,
                "TLS handshake not complete within socket.request.read.timeout.ms",
            );
            return Ok(());
        }
    };
    let principal = match tls.principal(stream.get_ref().1.peer_certificates()) {
        Ok(p) => p,
        Err(why) => {
            close(broker, admission, peer, CloseReason::Authentication, &why);
            return Ok(());
        }
    };
    let session = Session::new(security, peer, principal);
    requests(stream, session, dispatcher, limits, admission, closing).await
}

/// Serves one connection's requests, in order, until it closes.
async fn requests<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    mut session: Session,
    dispatcher: &Dispatcher,
    limits: &NetLimits,
    admission: &Admission,
    mut closing: Closing,
) -> std::io::Result<()> {
    let broker = dispatcher.broker().as_ref();
    let peer = session.peer;
    let mut out = BytesMut::with_capacity(64 * 1024);
    loop {
        // Between requests a stopping node closes the connection; a request in hand is
        // answered first.
        let next = tokio::select! {
            f = read_frame(&mut stream, limits, admission) => f?,
            _ = closing.closed() => {
                tracing::debug!(%peer, "closing connection: broker shutting down");
                return Ok(());
            }
        };
        let (frame, held) = match next {
            Frame::Request(f, held) => (f, held),
            Frame::End => return Ok(()),
            Frame::Close(reason, detail) => {
                close(broker, admission, peer, reason, &detail);
                return Ok(());
            }
        };
        let mut throttle = api::throttle::Throttle::default();
        let outcome = api::handle_frame(
            dispatcher,
            &mut session,
            bytes::Bytes::from(frame),
            &mut out,
            &mut throttle,
        )
        .await;
        drop(held);
        match outcome {
            Outcome::Respond => {
                stream.write_all(&out).await?;
                // TLS buffers records; a plain socket's flush is a no-op.
                stream.flush().await?;
                out.clear();
                // A big fetch response must not pin its buffer for the connection's life,
                // but responses of the usual fetch sizes (1 MiB per partition, a replica's
                // included) reuse one: a fresh buffer per response page-faults on every
                // page it touches, which cost a leader serving followers 14% of its CPU.
                if out.capacity() > KEEP_RESPONSE_BUFFER {
                    out = BytesMut::with_capacity(64 * 1024);
                }
            }
            Outcome::NoResponse => {}
            Outcome::Close(reason) => {
                close(broker, admission, peer, CloseReason::Malformed, &reason);
                return Ok(());
            }
            Outcome::RespondThenClose(reason) => {
                stream.write_all(&out).await?;
                stream.flush().await?;
                close(
                    broker,
                    admission,
                    peer,
                    CloseReason::Authentication,
                    &reason,
                );
                return Ok(());
            }
        }
        // KIP-219: the answer went out at once; the connection reads nothing more until the
        // throttle has passed (Kafka mutes the channel).
        if !mute(throttle.delay, &mut closing).await {
            return Ok(());
        }
    }
}

/// Waits out a quota throttle; false when the node began stopping meanwhile.
async fn mute(delay: std::time::Duration, closing: &mut Closing) -> bool {
    if delay.is_zero() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = closing.closed() => false,
    }
}

/// Counts a close and logs it, at most once per interval per reason: every close costs the
/// peer only a connection, so an unbounded log line per close would let it fill the disk.
fn close(broker: &Broker, admission: &Admission, peer: SocketAddr, why: CloseReason, detail: &str) {
    broker
        .metrics
        .connections_closed
        .with_label_values(&[why.label()])
        .inc();
    if let Some(left_out) = admission.repeated.check(why.label()) {
        tracing::warn!(%peer, reason = why.label(), detail, left_out, "closing connection");
    }
}

/// Reads one size-prefixed frame within the connection's time and memory limits.
async fn read_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    limits: &NetLimits,
    admission: &Admission,
) -> std::io::Result<Frame> {
    let mut len = [0u8; 4];
    // Between requests the connection may be idle, up to connections.max.idle.ms.
    match tokio::time::timeout(limits.idle, rd.read(&mut len[..1])).await {
        Err(_) => {
            return Ok(Frame::Close(
                CloseReason::Idle,
                format!(
                    "no request for {} ms (connections.max.idle.ms)",
                    limits.idle.as_millis()
                ),
            ))
        }
        Ok(Ok(0)) => return Ok(Frame::End),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(e),
    }
    // From its first byte, the whole frame must arrive in time.
    let read_rest = async {
        if let Err(e) = rd.read_exact(&mut len[1..]).await {
            return if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Ok(Frame::Close(
                    CloseReason::Malformed,
                    "truncated size prefix".into(),
                ))
            } else {
                Err(e)
            };
        }
        let size = i32::from_be_bytes(len);
        // Checked before allocating, so a hostile size prefix costs nothing.
        let Some(size) = usize::try_from(size)
            .ok()
            .filter(|s| *s <= limits.max_frame)
        else {
            return Ok(Frame::Close(
                CloseReason::OversizedFrame,
                format!(
                    "frame size {size} outside 0..={} (socket.request.max.bytes)",
                    limits.max_frame
                ),
            ));
        };
        let mut frame = Vec::with_capacity(size.min(INITIAL_FRAME_CAPACITY));
        let mut held = admission.held();
        while frame.len() < size {
            let chunk = (size - frame.len()).min(READ_CHUNK);
            frame.reserve(chunk);
            // What has arrived, at most a chunk; then it is counted against the budget,
            // which stops this connection reading on while the budget is spent. Waiting for
            // budget before bytes arrive would let idle claimants starve everyone.
            let got = (&mut *rd).take(chunk as u64).read_buf(&mut frame).await?;
            if got == 0 {
                return Ok(Frame::Close(
                    CloseReason::Malformed,
                    format!("truncated frame: {} of {size} bytes", frame.len()),
                ));
            }
            admission.take(&mut held, got).await;
        }
        Ok(Frame::Request(frame, held))
    };
    match tokio::time::timeout(limits.request_read_timeout, read_rest).await {
        Ok(r) => r,
        Err(_) => Ok(Frame::Close(
            CloseReason::SlowRequest,
            format!(
                "request frame not complete after {} ms (socket.request.read.timeout.ms)",
                limits.request_read_timeout.as_millis()
            ),
        )),
    }
}
