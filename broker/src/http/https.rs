//! HTTPS for the HTTP API (`http.ssl.enabled=true`): the same axum routes served by hyper's
//! HTTP/1.1 connection inside rustls, one task per connection.
//!
//! `axum::serve` only speaks plain TCP, so this is the accept loop for TLS. It keeps what a
//! public-facing port needs: a cap on concurrent connections ([`MAX_HTTP_CONNECTIONS`];
//! beyond it new connections wait in the kernel's backlog), a bound on the TLS handshake
//! ([`TLS_HANDSHAKE_TIMEOUT`]) and on reading a request's headers, idle keep-alive included
//! ([`HEADER_READ_TIMEOUT`]), so slow or silent clients cannot hold slots; and a failed
//! handshake costs only its own connection, logged at most once per interval
//! ([`crate::repeated`]). Each connection takes the acceptor current when it arrives, so
//! certificates rotated on disk (reloaded by `crate::security::tls::reload_loop`) serve new
//! connections without a restart.
//!
//! Only HTTP/1.1 is served (as on plain HTTP, where axum is built without HTTP/2).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::repeated::Repeated;
use crate::security::tls::TlsServer;

/// The most HTTPS connections served at once (Prometheus, the console and a few operators
/// need a handful); further connections wait to be accepted.
pub const MAX_HTTP_CONNECTIONS: usize = 128;

/// How long a client has to complete the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may take to send a request's headers, counted from when the server
/// starts waiting for them (so an idle keep-alive connection is closed after this too).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The pause after a failed accept (out of file descriptors, say), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `app` over TLS on `listener` until the task is aborted (which closes every
/// connection it serves).
pub async fn serve(listener: TcpListener, app: Router, tls: Arc<TlsServer>) {
    let slots = Arc::new(Semaphore::new(MAX_HTTP_CONNECTIONS));
    let failures = Arc::new(Repeated::default());
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                if let Some(left_out) = failures.check("accept") {
                    tracing::warn!(error = %e, left_out, "HTTPS: cannot accept a connection");
                }
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let acceptor = tls.acceptor();
        let app = app.clone();
        let failures = failures.clone();
        connections.spawn(async move {
            connection(stream, peer, acceptor, app, &failures).await;
            drop(slot);
        });
    }
}

/// One connection: the bounded handshake, then HTTP/1.1 until the client or a timeout ends it.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    app: Router,
    failures: &Repeated,
) {
    let _ = stream.set_nodelay(true);
    let tls = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            if let Some(left_out) = failures.check("handshake") {
                tracing::warn!(peer = %peer, error = %e, left_out, "HTTPS: TLS handshake failed");
            }
            return;
        }
        Err(_) => {
            if let Some(left_out) = failures.check("handshake timeout") {
                tracing::warn!(peer = %peer, timeout_s = TLS_HANDSHAKE_TIMEOUT.as_secs(), left_out, "HTTPS: TLS handshake timed out");
            }
            return;
        }
    };
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
        .await;
    if let Err(e) = served {
        tracing::debug!(peer = %peer, error = %e, "HTTPS connection ended with an error");
    }
}
