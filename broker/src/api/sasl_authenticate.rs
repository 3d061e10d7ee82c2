//! SaslAuthenticate: one SASL token each way (KIP-152), or the same exchange as bare frames
//! after a SaslHandshake v0 ([`raw_token`]). A failure is answered with
//! SASL_AUTHENTICATION_FAILED after `connection.failed.authentication.delay.ms`, logged
//! with the peer (once per interval) and counted; then the connection closes, so every
//! guess costs the guesser a connection and the delay.

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};

use super::{sb, Outcome};
use crate::context::Broker;
use crate::repeated::Repeated;
use crate::security::session::{AuthStep, Session};

/// Failed authentications are logged once per interval per listener.
static FAILURES: std::sync::LazyLock<Repeated> = std::sync::LazyLock::new(Repeated::default);

/// Where an exchange stands after a token that did not fail it.
enum Progress {
    /// A challenge to send; more tokens follow.
    Challenge(Vec<u8>),
    /// Authenticated: the last token to send and the session's lifetime.
    Done(Vec<u8>, Option<Duration>),
}

/// Runs one token through the session; `Err` carries the failure to answer and log.
async fn step(b: &Broker, session: &mut Session, token: &[u8]) -> Result<Progress, (i16, String)> {
    let mechanism = session.mechanism().to_string();
    let listener = session.listener.name.clone();
    let image = b.controller.image();
    let result = session.authenticate(
        token,
        &image,
        b.config.security.connections_max_reauth,
        Instant::now(),
    );
    match result {
        AuthStep::Done { response, lifetime } => {
            b.metrics
                .authentications
                .with_label_values(&[&listener, &mechanism, "success"])
                .inc();
            tracing::debug!(peer = %session.peer, principal = %session.principal(), %listener, %mechanism, "authenticated");
            Ok(Progress::Done(response, lifetime))
        }
        AuthStep::Failed(code, message) => {
            b.metrics
                .authentications
                .with_label_values(&[&listener, &mechanism, "failure"])
                .inc();
            if let Some(left_out) = FAILURES.check(&listener) {
                tracing::warn!(peer = %session.peer, %listener, %mechanism, reason = %message, left_out, "authentication failed");
            }
            tokio::time::sleep(b.config.security.failed_authentication_delay).await;
            Err((code, message))
        }
        AuthStep::Continue(challenge) => Ok(Progress::Challenge(challenge)),
    }
}

/// Handles SaslAuthenticate; the second value, when set, closes the connection after the
/// answer.
pub async fn handle(
    b: &Broker,
    session: &mut Session,
    req: SaslAuthenticateRequest,
) -> (SaslAuthenticateResponse, Option<String>) {
    let resp = SaslAuthenticateResponse::default();
    match step(b, session, &req.auth_bytes).await {
        Ok(Progress::Challenge(challenge)) => (resp.with_auth_bytes(Bytes::from(challenge)), None),
        Ok(Progress::Done(response, lifetime)) => (
            resp.with_auth_bytes(Bytes::from(response))
                .with_session_lifetime_ms(
                    lifetime.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                ),
            None,
        ),
        Err((code, message)) => (
            resp.with_error_code(code)
                .with_error_message(Some(sb(message.clone()))),
            Some(message),
        ),
    }
}

/// A bare token after SaslHandshake v0: the answer is a bare size-prefixed token; a failure
/// has no way to be told, so the connection just closes (as in Kafka).
pub async fn raw_token(
    b: &Broker,
    session: &mut Session,
    frame: &[u8],
    out: &mut BytesMut,
) -> Outcome {
    let token = match step(b, session, frame).await {
        Ok(Progress::Challenge(t)) | Ok(Progress::Done(t, _)) => t,
        Err((_, m)) => return Outcome::Close(m),
    };
    out.clear();
    let Ok(len) = i32::try_from(token.len()) else {
        return Outcome::Close("SASL token too large".into());
    };
    out.put_i32(len);
    out.put_slice(&token);
    Outcome::Respond
}
