//! The Kafka listener: one tokio task per connection, size-prefixed frames, one request at a
//! time per connection (as Kafka mutes a channel until its response is sent), so responses
//! always leave in request order.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::api::{self, Outcome};
use crate::server::Broker;

/// The largest response buffer a connection keeps between responses.
const KEEP_RESPONSE_BUFFER: usize = 4 << 20;

/// Accepts connections forever, spawning a task for each.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let broker = broker.clone();
                tokio::spawn(async move {
                    broker.metrics.connections.inc();
                    if let Err(e) = connection(stream, peer, &broker).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an I/O error");
                    }
                    broker.metrics.connections.dec();
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, broker: &Broker) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (mut rd, mut wr) = stream.into_split();
    let max = broker.config.socket_request_max_bytes;
    let mut out = BytesMut::with_capacity(64 * 1024);
    loop {
        let mut len = [0u8; 4];
        match rd.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let size = i32::from_be_bytes(len);
        // Checked before allocating, so a hostile size prefix costs nothing.
        if size < 0 || size as usize > max {
            tracing::warn!(%peer, size, limit = max, "closing connection: frame size outside 0..=socket.request.max.bytes");
            return Ok(());
        }
        // Filled from the socket without zeroing first (the size was checked above).
        let mut frame = Vec::with_capacity(size as usize);
        (&mut rd).take(size as u64).read_to_end(&mut frame).await?;
        if frame.len() != size as usize {
            tracing::warn!(%peer, size, got = frame.len(), "closing connection: truncated frame");
            return Ok(());
        }
        if broker.closing.load(std::sync::atomic::Ordering::Acquire) {
            tracing::debug!(%peer, "closing connection: broker shutting down");
            return Ok(());
        }
        match api::handle_frame(broker, peer, bytes::Bytes::from(frame), &mut out).await {
            Outcome::Respond => {
                wr.write_all(&out).await?;
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
                tracing::warn!(%peer, %reason, "closing connection");
                return Ok(());
            }
        }
    }
}
