//! Who is on the other end of a connection, and what they may do: TLS ([`tls`]), SASL
//! ([`sasl`], [`session`]) and principals ([`principal`]). Each listener has a
//! [`ListenerSecurity`] built once at start from `crate::config::security`; each connection
//! has a [`session::Session`] that carries its principal into every request's context, as
//! Kafka's `RequestContext` does.
//!
//! This sits above `config` and `metadata` (credentials are read from the image) and below
//! `net` and `api`, which only ask the session whether a request may run and who sent it.

pub mod authorizer;
pub mod decision_cache;
pub mod principal;
pub mod sasl;
pub mod session;
pub mod tls;

use std::sync::Arc;

pub use crate::config::security::SecurityProtocol;
use crate::config::security::{ListenerSecurity as ListenerConfig, PlainUsersSource};
pub use principal::Principal;

/// How this broker connects to the others (replication, liveness probes): the security of
/// `inter.broker.listener.name`, with the broker's own certificate for TLS and, for SASL,
/// `sasl.mechanism.inter.broker.protocol` (the listener's first mechanism by default) with
/// the `username`/`password` of that mechanism's JAAS line (`listener.name.<l>.<mech>.sasl.jaas.config`,
/// or `sasl.jaas.config`), as Kafka's brokers log in to each other.
pub fn inter_broker_client(
    config: &crate::config::BrokerConfig,
) -> Result<rill_client::security::ClientSecurity, String> {
    use rill_client::security::{jaas_option, ClientSecurity, SaslCredentials, SaslMechanism};
    let name = &config.security.inter_broker_listener;
    let Some(l) = config.security.listener(name) else {
        return Ok(ClientSecurity::default());
    };
    let tls = match &l.ssl {
        Some(ssl) => Some(Arc::new(
            tls::client_config(ssl).map_err(|e| format!("listener {name}: {e}"))?,
        )),
        None => None,
    };
    let sasl = if l.protocol.sasl() {
        let mech = config
            .raw
            .get("sasl.mechanism.inter.broker.protocol")
            .map(|m| m.trim().to_ascii_uppercase())
            .or_else(|| l.sasl_mechanisms.first().cloned())
            .unwrap_or_default();
        let mechanism = SaslMechanism::parse(&mech)
            .ok_or_else(|| format!("sasl.mechanism.inter.broker.protocol={mech}: not served"))?;
        let lower = name.to_ascii_lowercase();
        let jaas_key = format!(
            "listener.name.{lower}.{}.sasl.jaas.config",
            mech.to_ascii_lowercase()
        );
        let jaas = config
            .raw
            .get(&jaas_key)
            .or_else(|| config.raw.get(&format!("listener.name.{lower}.sasl.jaas.config")))
            .or_else(|| config.raw.get("sasl.jaas.config"))
            .ok_or_else(|| {
                format!("brokers log in to each other on {name} with {mech}: set {jaas_key} with username=\"...\" password=\"...\"")
            })?;
        let (Some(username), Some(password)) =
            (jaas_option(jaas, "username"), jaas_option(jaas, "password"))
        else {
            return Err(format!("{jaas_key}: needs username=\"...\" and password=\"...\" for the broker's own login"));
        };
        Some(SaslCredentials {
            mechanism,
            username,
            password,
        })
    } else {
        None
    };
    Ok(ClientSecurity { tls, sasl })
}

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
