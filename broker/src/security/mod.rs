//! Who is on the other end of a connection, and what they may do: TLS ([`tls`]), SASL
//! ([`sasl`], [`session`]) and principals ([`principal`]). Each listener has a
//! [`ListenerSecurity`] built once at start from `crate::config::security`; each connection
//! has a [`session::Session`] that carries its principal into every request's context, as
//! Kafka's `RequestContext` does.
//!
//! This sits above `config` and `metadata` (credentials are read from the image) and below
//! `net` and `api`, which only ask the session whether a request may run and who sent it.

pub mod authorizer;
pub mod principal;
pub mod sasl;
pub mod session;
pub mod tls;

use std::sync::Arc;

pub use crate::config::security::SecurityProtocol;
use crate::config::security::{ListenerSecurity as ListenerConfig, PlainUsersSource};
pub use principal::Principal;

/// One listener's security, ready to serve connections.
pub struct ListenerSecurity {
    /// The listener's name (as in `listeners`).
    pub name: String,
    /// Its protocol.
    pub protocol: SecurityProtocol,
    /// TLS, for SSL and SASL_SSL.
    pub tls: Option<Arc<tls::TlsServer>>,
    /// SASL mechanisms offered (upper case), for SASL listeners.
    pub sasl_mechanisms: Vec<String>,
    /// PLAIN's users, when PLAIN is enabled.
    pub plain_users: Option<sasl::PlainUsers>,
}

impl ListenerSecurity {
    /// A PLAINTEXT listener (tests and the default).
    pub fn plaintext(name: &str) -> ListenerSecurity {
        ListenerSecurity {
            name: name.to_string(),
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl_mechanisms: Vec::new(),
            plain_users: None,
        }
    }

    /// Loads the listener's certificates and users; the error names the key at fault.
    pub fn load(cfg: &ListenerConfig) -> Result<ListenerSecurity, String> {
        let tls = match &cfg.ssl {
            Some(ssl) => Some(Arc::new(
                tls::TlsServer::new(&cfg.name, ssl)
                    .map_err(|e| format!("listener {}: {e}", cfg.name))?,
            )),
            None => None,
        };
        let plain_users = match &cfg.plain_users {
            None => None,
            Some(PlainUsersSource::Jaas(text)) => Some(
                sasl::PlainUsers::from_jaas(text)
                    .map_err(|e| format!("listener {}: plain.sasl.jaas.config: {e}", cfg.name))?,
            ),
            Some(PlainUsersSource::File(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!(
                        "listener {}: sasl.plain.users.file: cannot read {}: {e}",
                        cfg.name,
                        path.display()
                    )
                })?;
                Some(
                    sasl::PlainUsers::from_properties_text(&text).map_err(|e| {
                        format!("listener {}: sasl.plain.users.file: {e}", cfg.name)
                    })?,
                )
            }
        };
        Ok(ListenerSecurity {
            name: cfg.name.clone(),
            protocol: cfg.protocol,
            tls,
            sasl_mechanisms: cfg.sasl_mechanisms.clone(),
            plain_users,
        })
    }
}
