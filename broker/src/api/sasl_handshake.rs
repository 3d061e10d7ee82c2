//! SaslHandshake: the client names its SASL mechanism. On a listener without SASL the answer
//! is ILLEGAL_SASL_STATE (as Kafka's), an unknown mechanism gets UNSUPPORTED_SASL_MECHANISM
//! with the ones offered and the connection closes; v0 means the tokens follow as bare frames.

use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};

use super::sb;
use crate::security::session::{Handshake, Session};

/// Handles SaslHandshake; the second value, when set, closes the connection after the answer.
pub fn handle(
    session: &mut Session,
    req: SaslHandshakeRequest,
    version: i16,
) -> (SaslHandshakeResponse, Option<String>) {
    let offered = session
        .listener
        .sasl_mechanisms
        .iter()
        .map(|m| sb(m.clone()))
        .collect();
    let resp = SaslHandshakeResponse::default().with_mechanisms(offered);
    match session.handshake(req.mechanism.as_str(), version) {
        Handshake::Accepted => (resp, None),
        Handshake::Refused(code) => (resp.with_error_code(code), None),
        Handshake::RefusedClose(code, why) => (resp.with_error_code(code), Some(why)),
    }
}
