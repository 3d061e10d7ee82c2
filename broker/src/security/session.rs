//! A connection's authentication state, as Kafka's `SaslServerAuthenticator` keeps it: on a
//! SASL listener nothing but ApiVersions and SaslHandshake is served until SaslAuthenticate
//! succeeds (anything else closes the connection, as Kafka does); after a SaslHandshake v0
//! the client sends bare SASL tokens instead of requests (the pre-KIP-152 framing old clients
//! use). With `connections.max.reauth.ms` a session expires (KIP-368): the client
//! re-authenticates on the same connection, as the same principal, or is disconnected at its
//! next request after the deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

use super::principal::Principal;
use super::sasl::{self, ScramMechanism, ScramServer};
use super::ListenerSecurity;
use crate::metadata::MetadataImage;

/// Kafka's ILLEGAL_SASL_STATE.
pub const ILLEGAL_SASL_STATE: i16 = ResponseError::IllegalSaslState.code();
/// Kafka's UNSUPPORTED_SASL_MECHANISM.
pub const UNSUPPORTED_SASL_MECHANISM: i16 = ResponseError::UnsupportedSaslMechanism.code();
/// Kafka's SASL_AUTHENTICATION_FAILED.
pub const SASL_AUTHENTICATION_FAILED: i16 = ResponseError::SaslAuthenticationFailed.code();

/// One connection's security state.
pub struct Session {
    /// The listener the connection came in on.
    pub listener: Arc<ListenerSecurity>,
    /// The client's address.
    pub peer: SocketAddr,
    /// The client's address as ACL hosts name it (Java's form), made once per connection
    /// rather than on every request's ACL check.
    pub acl_host: String,
    principal: Principal,
    state: State,
}

enum Exchange {
    Plain,
    Scram(Box<ScramServer>),
}

enum State {
    /// Nothing (more) to authenticate; `expires` is KIP-368's session end.
    Open { expires: Option<Instant> },
    /// A SASL listener before its first SaslHandshake.
    Handshake,
    /// After SaslHandshake: the mechanism's tokens arrive in SaslAuthenticate requests, or as
    /// bare frames after a v0 handshake (`raw`). `reauth` when re-authenticating.
    Authenticating {
        mechanism: String,
        exchange: Exchange,
        raw: bool,
        reauth: bool,
    },
    /// Authentication failed: the connection closes after the answer.
    Failed,
}

/// The result of a SaslHandshake.
#[derive(Debug, PartialEq, Eq)]
pub enum Handshake {
    /// Accepted: authentication tokens follow.
    Accepted,
    /// Answer with this error code and keep the connection (a non-SASL listener).
    Refused(i16),
    /// Answer with this error code, then close.
    RefusedClose(i16, String),
}

/// The result of one authentication token.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthStep {
    /// Send this challenge; more tokens follow.
    Continue(Vec<u8>),
    /// Authenticated: send this final token; `lifetime` is the session's (KIP-368), if any.
    Done {
        /// The mechanism's last message to the client.
        response: Vec<u8>,
        /// How long the session lasts.
        lifetime: Option<Duration>,
    },
    /// Answer with this error code and message (after the failed-authentication delay),
    /// then close.
    Failed(i16, String),
}

impl Session {
    /// A new connection's session; `principal` is what TLS established (or anonymous).
    pub fn new(listener: Arc<ListenerSecurity>, peer: SocketAddr, principal: Principal) -> Session {
        let state = if listener.protocol.sasl() {
            State::Handshake
        } else {
            State::Open { expires: None }
        };
        Session {
            listener,
            peer,
            acl_host: crate::metadata::acl::host_string(peer.ip()),
            principal,
            state,
        }
    }

    /// Who sent the requests.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Whether the next frame is a bare SASL token (after a SaslHandshake v0).
    pub fn expects_raw_token(&self) -> bool {
        matches!(self.state, State::Authenticating { raw: true, .. })
    }

    /// Whether a request of `api` may be served now; `Err` says why the connection closes.
    pub fn admit(&self, api: ApiKey, now: Instant) -> Result<(), String> {
        match &self.state {
            State::Open { expires } => match expires {
                Some(t) if now >= *t && api != ApiKey::SaslHandshake => Err(format!(
                    "{api:?} after the SASL session expired (connections.max.reauth.ms) without re-authentication"
                )),
                _ => Ok(()),
            },
            State::Handshake => match api {
                ApiKey::ApiVersions | ApiKey::SaslHandshake => Ok(()),
                _ => Err(format!(
                    "unexpected {api:?} request before SASL authentication (send SaslHandshake first)"
                )),
            },
            State::Authenticating { .. } => match api {
                ApiKey::SaslAuthenticate => Ok(()),
                _ => Err(format!(
                    "unexpected {api:?} request during SASL authentication"
                )),
            },
            State::Failed => Err("request after a failed authentication".into()),
        }
    }

    /// SaslHandshake for `mechanism`; `version` 0 switches to bare tokens.
    pub fn handshake(&mut self, mechanism: &str, version: i16) -> Handshake {
        if !self.listener.protocol.sasl() {
            return Handshake::Refused(ILLEGAL_SASL_STATE);
        }
        let reauth = match self.state {
            State::Handshake => false,
            State::Open { .. } => true,
            State::Authenticating { .. } | State::Failed => {
                return Handshake::RefusedClose(
                    ILLEGAL_SASL_STATE,
                    "SaslHandshake during an authentication".into(),
                )
            }
        };
        let mechanism = mechanism.to_ascii_uppercase();
        if !self.listener.sasl_mechanisms.contains(&mechanism) {
            return Handshake::RefusedClose(
                UNSUPPORTED_SASL_MECHANISM,
                format!(
                    "unsupported SASL mechanism {mechanism:?}; this listener offers {}",
                    self.listener.sasl_mechanisms.join(", ")
                ),
            );
        }
        let exchange = if mechanism == "PLAIN" {
            Exchange::Plain
        } else {
            match ScramMechanism::from_name(&mechanism) {
                Some(m) => Exchange::Scram(Box::new(ScramServer::new(m))),
                None => {
                    return Handshake::RefusedClose(
                        UNSUPPORTED_SASL_MECHANISM,
                        format!("unsupported SASL mechanism {mechanism:?}"),
                    )
                }
            }
        };
        self.state = State::Authenticating {
            mechanism,
            exchange,
            raw: version == 0,
            reauth,
        };
        Handshake::Accepted
    }

    /// The mechanism being negotiated, for metrics and logs.
    pub fn mechanism(&self) -> &str {
        match &self.state {
            State::Authenticating { mechanism, .. } => mechanism,
            _ => "",
        }
    }

    /// One authentication token. Credentials come from `image` (SCRAM) or the listener's
    /// users (PLAIN); `reauth_after` is `connections.max.reauth.ms`.
    pub fn authenticate(
        &mut self,
        token: &[u8],
        image: &MetadataImage,
        reauth_after: Option<Duration>,
        now: Instant,
    ) -> AuthStep {
        let State::Authenticating {
            mechanism,
            exchange,
            reauth,
            ..
        } = &mut self.state
        else {
            self.state = State::Failed;
            return AuthStep::Failed(
                ILLEGAL_SASL_STATE,
                "SaslAuthenticate before SaslHandshake".into(),
            );
        };
        let reauth = *reauth;
        let result = match exchange {
            Exchange::Plain => {
                let users = self.listener.plain_users.as_ref();
                match sasl::parse_plain(token) {
                    Ok(c) if users.is_some_and(|u| u.verify(&c.username, &c.password)) => {
                        Ok((Vec::new(), c.username))
                    }
                    Ok(_) => Err(failed_message("PLAIN")),
                    Err(e) => Err(e.to_string()),
                }
            }
            Exchange::Scram(server) => {
                let mech = mechanism.clone();
                let scram = server.mechanism();
                let lookup = |user: &str| {
                    image
                        .scram_credentials
                        .get(user)
                        .and_then(|m| m.get(&mech))
                        .map(|c| sasl::ScramCredential {
                            mechanism: scram,
                            salt: c.salt.clone(),
                            iterations: c.iterations,
                            stored_key: c.stored_key.clone(),
                            server_key: c.server_key.clone(),
                        })
                };
                match server.step(token, lookup) {
                    Ok(sasl::Step::Continue(challenge)) => return AuthStep::Continue(challenge),
                    Ok(sasl::Step::Done {
                        response,
                        principal,
                    }) => Ok((response, principal)),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        match result {
            Ok((response, user)) => {
                let principal = Principal::user(&user);
                if reauth && principal != self.principal {
                    self.state = State::Failed;
                    return AuthStep::Failed(
                        SASL_AUTHENTICATION_FAILED,
                        format!(
                            "re-authentication as {principal} on a connection of {}",
                            self.principal
                        ),
                    );
                }
                self.principal = principal;
                self.state = State::Open {
                    expires: reauth_after.map(|d| now + d),
                };
                AuthStep::Done {
                    response,
                    lifetime: reauth_after,
                }
            }
            Err(message) => {
                self.state = State::Failed;
                AuthStep::Failed(SASL_AUTHENTICATION_FAILED, message)
            }
        }
    }
}

/// Kafka's message for bad credentials; it never says whether the user exists.
fn failed_message(mechanism: &str) -> String {
    format!("Authentication failed: Invalid username or password (mechanism {mechanism})")
}
