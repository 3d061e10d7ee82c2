//! Security settings with Kafka's key names: which security protocol each listener speaks
//! (`listener.security.protocol.map`), its TLS material (`ssl.*`, PEM only), its SASL
//! mechanisms and users, re-authentication and failed-authentication delays, and the
//! authorizer. Every `ssl.*`/`sasl.*` key can be set per listener as
//! `listener.name.<listener, lower case>.<key>`, which wins over the plain key (Kafka's rule),
//! so one node can serve PLAINTEXT on loopback and SASL_SSL outside. The HTTP API's TLS uses
//! the same keys under `http.` (`http.ssl.keystore.location`, ...), see [`super::http`].
//!
//! Only parsing and validation live here; loading certificates and running handshakes is
//! `crate::security`'s, at start, so a bad file is reported with the key that names it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub(super) use super::ssl::{ssl_config, SslScope};
pub use super::ssl::{ClientAuth, PemSource, SslConfig};
use super::{defs, get_bool, get_num, invalid, ConfigError, Listener};

/// A listener's security protocol (Kafka's `SecurityProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    /// No TLS, no authentication: every client is `User:ANONYMOUS`.
    Plaintext,
    /// TLS; the principal comes from the client certificate when there is one.
    Ssl,
    /// SASL over plain TCP.
    SaslPlaintext,
    /// SASL inside TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's name (`SASL_SSL`, ...).
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Parses Kafka's name, case-insensitively.
    pub fn parse(s: &str) -> Option<SecurityProtocol> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => SecurityProtocol::Plaintext,
            "SSL" => SecurityProtocol::Ssl,
            "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
            "SASL_SSL" => SecurityProtocol::SaslSsl,
            _ => return None,
        })
    }

    /// Whether the connection is wrapped in TLS.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether clients authenticate with SASL before anything else.
    pub fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// One listener's security.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSecurity {
    /// The listener's name.
    pub name: String,
    /// Its protocol, from `listener.security.protocol.map`.
    pub protocol: SecurityProtocol,
    /// TLS settings, for SSL and SASL_SSL.
    pub ssl: Option<SslConfig>,
    /// `sasl.enabled.mechanisms` for SASL listeners, upper case.
    pub sasl_mechanisms: Vec<String>,
    /// PLAIN's users, from `plain.sasl.jaas.config` (`user_<name>="<password>"` options) or
    /// `sasl.plain.users.file` (Rill's simple `name=password` file).
    pub plain_users: Option<PlainUsersSource>,
}

/// Where PLAIN's users come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlainUsersSource {
    /// Kafka's JAAS text (`org.apache.kafka.common.security.plain.PlainLoginModule required
    /// user_alice="..." ...;`).
    Jaas(String),
    /// A `name=password` properties file.
    File(PathBuf),
}

/// The SASL mechanisms Rill serves.
pub const SUPPORTED_SASL_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// `authorizer.class.name` values that turn ACL checks on: Kafka's KRaft authorizer (so a
/// Kafka `server.properties` works unchanged) and Rill's short name.
pub const STANDARD_AUTHORIZER_NAMES: &[&str] = &[
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
    "rill",
];

/// The authorizer's settings, when one is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// `super.users`: principals allowed everything (`User:admin;User:ops`).
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found` (false).
    pub allow_everyone_if_no_acl_found: bool,
}

/// The node's security settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityConfig {
    /// Every listener's security, by listener name (the CONTROLLER listener included).
    pub listeners: BTreeMap<String, ListenerSecurity>,
    /// `inter.broker.listener.name`: the listener brokers use to reach each other
    /// (replication, liveness), with its security; the first PLAINTEXT client listener
    /// when unset, else the first client listener.
    pub inter_broker_listener: String,
    /// `connections.max.reauth.ms` (0 = sessions never expire): KIP-368's session lifetime.
    pub connections_max_reauth: Option<Duration>,
    /// `connection.failed.authentication.delay.ms` (100): how long a failed authentication's
    /// answer is held back, so password guessing costs the guesser time.
    pub failed_authentication_delay: Duration,
    /// `authorizer.class.name`: ACLs are checked only when it names the standard authorizer
    /// (Kafka's default is no authorizer: everything allowed).
    pub authorizer: Option<AuthorizerConfig>,
}

impl SecurityConfig {
    /// The security of a listener by name (every configured listener has one).
    pub fn listener(&self, name: &str) -> Option<&ListenerSecurity> {
        self.listeners.get(name)
    }
}

/// Kafka's default protocol map, plus CONTROLLER as PLAINTEXT (KRaft requires it mapped).
const DEFAULT_PROTOCOL_MAP: &str =
    "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT";

/// Keys read here (also as `listener.name.<l>.<key>`), for the unknown-key warning.
pub const SECURITY_KEYS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.truststore.password",
    "ssl.client.auth",
    "ssl.principal.mapping.rules",
    "ssl.enabled.protocols",
    "ssl.protocol",
    "ssl.endpoint.identification.algorithm",
    "sasl.enabled.mechanisms",
    "sasl.mechanism.inter.broker.protocol",
    "plain.sasl.jaas.config",
    "scram-sha-256.sasl.jaas.config",
    "scram-sha-512.sasl.jaas.config",
    "sasl.jaas.config",
    "sasl.plain.users.file",
    "security.inter.broker.protocol",
    "connections.max.reauth.ms",
    "connection.failed.authentication.delay.ms",
    "authorizer.class.name",
    "super.users",
    "allow.everyone.if.no.acl.found",
    "http.auth.token",
    "http.auth.basic.users.file",
    "http.auth.allow.unauthenticated",
    "http.ssl.enabled",
    "http.ssl.keystore.type",
    "http.ssl.keystore.location",
    "http.ssl.keystore.certificate.chain",
    "http.ssl.keystore.key",
    "http.ssl.keystore.password",
    "http.ssl.key.password",
    "http.ssl.client.auth",
    "http.ssl.enabled.protocols",
];

/// Keys whose values are secrets (Kafka's PASSWORD type): never shown by DescribeConfigs or
/// the HTTP API, which list them as sensitive with no value.
const SENSITIVE_KEYS: &[&str] = &[
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.truststore.certificates",
    "ssl.truststore.password",
    "sasl.jaas.config",
    "plain.sasl.jaas.config",
    "scram-sha-256.sasl.jaas.config",
    "scram-sha-512.sasl.jaas.config",
    "http.auth.token",
    "http.ssl.keystore.key",
    "http.ssl.keystore.certificate.chain",
    "http.ssl.keystore.password",
    "http.ssl.key.password",
];

/// The key without its `listener.name.<l>.` prefix.
fn bare_key(key: &str) -> &str {
    match key.strip_prefix("listener.name.") {
        Some(rest) => rest.split_once('.').map_or(rest, |(_, k)| k),
        None => key,
    }
}

/// Whether `key`'s value is a secret (plain or listener-prefixed).
pub fn is_sensitive(key: &str) -> bool {
    SENSITIVE_KEYS.contains(&bare_key(key))
}

/// The security keys as configured, for DescribeConfigs and the HTTP API: secrets as `None`.
pub fn described(raw: &BTreeMap<String, String>) -> Vec<(String, Option<String>)> {
    raw.iter()
        .filter(|(k, _)| is_security_key(k) || k.as_str() == "listener.security.protocol.map")
        .map(|(k, v)| (k.clone(), (!is_sensitive(k)).then(|| v.clone())))
        .collect()
}

/// Whether `key` is a security key, plain or listener-prefixed.
pub fn is_security_key(key: &str) -> bool {
    SECURITY_KEYS.contains(&bare_key(key))
}

/// Looks a key up for one listener: `listener.name.<l>.<key>` first, then `<key>`.
fn lookup<'a>(raw: &'a BTreeMap<String, String>, listener: &str, key: &str) -> Option<&'a str> {
    let prefixed = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
    raw.get(&prefixed)
        .or_else(|| raw.get(key))
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// The authorizer `authorizer.class.name`, `super.users` and
/// `allow.everyone.if.no.acl.found` describe (none without `authorizer.class.name`); the
/// console reads the same keys from DescribeConfigs through this.
pub fn authorizer_config(
    raw: &BTreeMap<String, String>,
) -> Result<Option<AuthorizerConfig>, ConfigError> {
    let authorizer = match raw
        .get("authorizer.class.name")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(name) if STANDARD_AUTHORIZER_NAMES.contains(&name) => Some(AuthorizerConfig {
            super_users: raw
                .get("super.users")
                .map(|s| {
                    s.split(';')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            allow_everyone_if_no_acl_found: get_bool(
                raw,
                "allow.everyone.if.no.acl.found",
                false,
            )?,
        }),
        Some(name) => {
            return Err(invalid(
                "authorizer.class.name",
                name,
                "the only authorizer is the standard one (org.apache.kafka.metadata.authorizer.StandardAuthorizer)",
            ))
        }
    };
    if let Some(a) = &authorizer {
        for p in &a.super_users {
            if !p.contains(':') {
                return Err(invalid(
                    "super.users",
                    p,
                    "each principal is Type:name, e.g. User:admin (separated by ';')",
                ));
            }
        }
    }
    Ok(authorizer)
}

/// Reads the security settings for `listeners` from the raw properties.
pub(super) fn security_config(
    raw: &BTreeMap<String, String>,
    listeners: &[Listener],
    controller_names: &[String],
) -> Result<SecurityConfig, ConfigError> {
    let map_text = raw
        .get("listener.security.protocol.map")
        .map(String::as_str)
        .unwrap_or(DEFAULT_PROTOCOL_MAP);
    let mut map = BTreeMap::new();
    for item in defs::split_list(map_text) {
        let (name, proto) = item.split_once(':').ok_or_else(|| {
            invalid(
                "listener.security.protocol.map",
                item,
                "expected LISTENER_NAME:SECURITY_PROTOCOL",
            )
        })?;
        let proto = SecurityProtocol::parse(proto).ok_or_else(|| {
            invalid(
                "listener.security.protocol.map",
                item,
                "the protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
            )
        })?;
        map.insert(name.trim().to_string(), proto);
    }
    let mut out = BTreeMap::new();
    for l in listeners {
        let protocol = match map.get(&l.name) {
            Some(p) => *p,
            // Kafka refuses a listener missing from the map; CONTROLLER defaults to PLAINTEXT.
            None if controller_names.contains(&l.name) => SecurityProtocol::Plaintext,
            None => {
                return Err(invalid(
                    "listener.security.protocol.map",
                    map_text,
                    &format!("has no entry for listener {}", l.name),
                ))
            }
        };
        if controller_names.contains(&l.name) && protocol.sasl() {
            return Err(invalid(
                "listener.security.protocol.map",
                map_text,
                &format!(
                    "the controller listener {} can be PLAINTEXT or SSL (mutual TLS), not SASL",
                    l.name
                ),
            ));
        }
        let ssl = if protocol.tls() {
            Some(ssl_config(&SslScope::listener(raw, &l.name))?)
        } else {
            None
        };
        // Controllers authenticate each other by certificate: without client auth anyone
        // who reaches the port could vote.
        if controller_names.contains(&l.name)
            && ssl
                .as_ref()
                .is_some_and(|s| s.client_auth != ClientAuth::Required)
        {
            return Err(invalid(
                &format!("listener.name.{}.ssl.client.auth", l.name.to_ascii_lowercase()),
                "",
                "an SSL controller listener needs ssl.client.auth=required (controllers authenticate each other by certificate)",
            ));
        }
        let (sasl_mechanisms, plain_users) = if protocol.sasl() {
            sasl_config(raw, &l.name)?
        } else {
            (Vec::new(), None)
        };
        out.insert(
            l.name.clone(),
            ListenerSecurity {
                name: l.name.clone(),
                protocol,
                ssl,
                sasl_mechanisms,
                plain_users,
            },
        );
    }
    let client_listeners: Vec<&Listener> = listeners
        .iter()
        .filter(|l| !controller_names.contains(&l.name))
        .collect();
    let inter_broker_listener = match (
        raw.get("inter.broker.listener.name"),
        raw.get("security.inter.broker.protocol"),
    ) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "inter.broker.listener.name",
                raw.get("inter.broker.listener.name")
                    .map(String::as_str)
                    .unwrap_or(""),
                "set either inter.broker.listener.name or security.inter.broker.protocol, not both (as Kafka)",
            ))
        }
        (Some(name), None) => {
            let name = name.trim();
            if !client_listeners.iter().any(|l| l.name == name) {
                return Err(invalid(
                    "inter.broker.listener.name",
                    name,
                    "must name one of the client listeners in `listeners`",
                ));
            }
            name.to_string()
        }
        (None, Some(proto)) => {
            let p = SecurityProtocol::parse(proto).ok_or_else(|| {
                invalid(
                    "security.inter.broker.protocol",
                    proto,
                    "expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
                )
            })?;
            client_listeners
                .iter()
                .find(|l| out.get(&l.name).map(|s: &ListenerSecurity| s.protocol) == Some(p))
                .map(|l| l.name.clone())
                .ok_or_else(|| {
                    invalid(
                        "security.inter.broker.protocol",
                        proto,
                        "no listener in `listeners` uses this protocol",
                    )
                })?
        }
        // A PLAINTEXT listener when there is one (Kafka's default is the PLAINTEXT one).
        (None, None) => client_listeners
            .iter()
            .find(|l| {
                out.get(&l.name).map(|s: &ListenerSecurity| s.protocol)
                    == Some(SecurityProtocol::Plaintext)
            })
            .or(client_listeners.first())
            .map(|l| l.name.clone())
            .unwrap_or_default(),
    };
    let reauth = get_num::<u64>(raw, "connections.max.reauth.ms", 0, 0)?;
    let delay = get_num::<u64>(raw, "connection.failed.authentication.delay.ms", 100, 0)?;
    let authorizer = authorizer_config(raw)?;
    Ok(SecurityConfig {
        listeners: out,
        inter_broker_listener,
        connections_max_reauth: (reauth > 0).then(|| Duration::from_millis(reauth)),
        failed_authentication_delay: Duration::from_millis(delay),
        authorizer,
    })
}

type SaslSettings = (Vec<String>, Option<PlainUsersSource>);

fn sasl_config(
    raw: &BTreeMap<String, String>,
    listener: &str,
) -> Result<SaslSettings, ConfigError> {
    // Kafka's default is GSSAPI, which Rill does not serve; SCRAM needs no setup beyond
    // credentials in the metadata log, so it is the default here.
    let mechanisms: Vec<String> = defs::split_list(
        lookup(raw, listener, "sasl.enabled.mechanisms").unwrap_or("SCRAM-SHA-256,SCRAM-SHA-512"),
    )
    .map(|m| m.to_ascii_uppercase())
    .collect();
    if mechanisms.is_empty() {
        return Err(invalid(
            "sasl.enabled.mechanisms",
            "",
            "a SASL listener needs at least one mechanism",
        ));
    }
    for m in &mechanisms {
        if !SUPPORTED_SASL_MECHANISMS.contains(&m.as_str()) {
            return Err(invalid(
                "sasl.enabled.mechanisms",
                m,
                "supported mechanisms are PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512",
            ));
        }
    }
    let plain_users = if mechanisms.iter().any(|m| m == "PLAIN") {
        match (
            lookup(raw, listener, "plain.sasl.jaas.config")
                .or_else(|| lookup(raw, listener, "sasl.jaas.config")),
            lookup(raw, listener, "sasl.plain.users.file"),
        ) {
            (Some(jaas), _) => Some(PlainUsersSource::Jaas(jaas.to_string())),
            (None, Some(file)) => Some(PlainUsersSource::File(PathBuf::from(file))),
            (None, None) => {
                return Err(invalid(
                    &format!(
                        "listener.name.{}.plain.sasl.jaas.config",
                        listener.to_ascii_lowercase()
                    ),
                    "",
                    "PLAIN is enabled but has no users: set the JAAS config (user_<name>=\"<password>\") or sasl.plain.users.file",
                ));
            }
        }
    } else {
        None
    };
    Ok((mechanisms, plain_users))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<SecurityConfig, ConfigError> {
        let raw: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let listeners = super::super::parse_listeners(
            "listeners",
            raw.get("listeners")
                .map(String::as_str)
                .unwrap_or("PLAINTEXT://127.0.0.1:9092"),
        )?;
        security_config(&raw, &listeners, &["CONTROLLER".to_string()])
    }

    #[test]
    fn plaintext_by_default() {
        let c = cfg(&[]).unwrap();
        assert_eq!(
            c.listener("PLAINTEXT").unwrap().protocol,
            SecurityProtocol::Plaintext
        );
        assert_eq!(c.inter_broker_listener, "PLAINTEXT");
        assert!(c.authorizer.is_none());
        assert_eq!(c.failed_authentication_delay, Duration::from_millis(100));
    }

    #[test]
    fn listener_prefixed_keys_win() {
        let c = cfg(&[
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:1,SASL_SSL://127.0.0.1:2,SSL://127.0.0.1:3",
            ),
            ("ssl.keystore.location", "/a.pem"),
            ("listener.name.sasl_ssl.ssl.keystore.location", "/b.pem"),
            (
                "listener.name.sasl_ssl.sasl.enabled.mechanisms",
                "scram-sha-512",
            ),
            ("ssl.client.auth", "required"),
            ("ssl.truststore.location", "/ca.pem"),
        ])
        .unwrap();
        let s = c.listener("SASL_SSL").unwrap();
        assert_eq!(s.protocol, SecurityProtocol::SaslSsl);
        assert_eq!(
            s.ssl.as_ref().unwrap().certificate_chain,
            PemSource::File("/b.pem".into())
        );
        assert_eq!(s.sasl_mechanisms, vec!["SCRAM-SHA-512".to_string()]);
        let ssl = c.listener("SSL").unwrap().ssl.clone().unwrap();
        assert_eq!(ssl.private_key, PemSource::File("/a.pem".into()));
        assert_eq!(ssl.client_auth, ClientAuth::Required);
    }

    #[test]
    fn bad_settings_name_their_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("listeners", "SSL://127.0.0.1:1")],
                "ssl.keystore.location",
            ),
            (
                &[
                    ("listeners", "SSL://127.0.0.1:1"),
                    ("ssl.keystore.location", "/a"),
                    ("ssl.keystore.type", "JKS"),
                ],
                "ssl.keystore.type",
            ),
            (
                &[
                    ("listeners", "SSL://127.0.0.1:1"),
                    ("ssl.keystore.location", "/a"),
                    ("ssl.client.auth", "required"),
                ],
                "ssl.client.auth",
            ),
            (
                &[
                    ("listeners", "SASL_PLAINTEXT://127.0.0.1:1"),
                    ("sasl.enabled.mechanisms", "GSSAPI"),
                ],
                "sasl.enabled.mechanisms",
            ),
            (
                &[
                    ("listeners", "SASL_PLAINTEXT://127.0.0.1:1"),
                    ("sasl.enabled.mechanisms", "PLAIN"),
                ],
                "plain.sasl.jaas.config",
            ),
            (
                &[("listeners", "X://127.0.0.1:1")],
                "listener.security.protocol.map",
            ),
            (
                &[
                    ("listeners", "PLAINTEXT://127.0.0.1:1"),
                    ("authorizer.class.name", "com.example.Mine"),
                ],
                "authorizer.class.name",
            ),
            (
                &[
                    ("listeners", "PLAINTEXT://127.0.0.1:1"),
                    ("authorizer.class.name", "rill"),
                    ("super.users", "admin"),
                ],
                "super.users",
            ),
            (
                &[
                    ("listeners", "PLAINTEXT://127.0.0.1:1"),
                    ("inter.broker.listener.name", "SSL"),
                ],
                "inter.broker.listener.name",
            ),
            (
                &[
                    (
                        "listeners",
                        "PLAINTEXT://127.0.0.1:1,CONTROLLER://127.0.0.1:2",
                    ),
                    (
                        "listener.security.protocol.map",
                        "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL",
                    ),
                    ("ssl.keystore.location", "/a"),
                    ("ssl.truststore.location", "/ca"),
                ],
                "listener.name.controller.ssl.client.auth",
            ),
            (
                &[
                    (
                        "listeners",
                        "PLAINTEXT://127.0.0.1:1,CONTROLLER://127.0.0.1:2",
                    ),
                    (
                        "listener.security.protocol.map",
                        "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_SSL",
                    ),
                ],
                "listener.security.protocol.map",
            ),
        ];
        for (pairs, key) in cases {
            let e = cfg(pairs).expect_err(key).to_string();
            assert!(e.contains(key), "{e} should name {key}");
        }
    }

    #[test]
    fn authorizer_reads_super_users() {
        let c = cfg(&[
            (
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            ),
            ("super.users", "User:admin; User:ops"),
        ])
        .unwrap();
        let a = c.authorizer.unwrap();
        assert_eq!(a.super_users, vec!["User:admin", "User:ops"]);
        assert!(!a.allow_everyone_if_no_acl_found);
    }

    #[test]
    fn secrets_are_described_without_their_values() {
        let raw: BTreeMap<String, String> = [
            ("ssl.keystore.location", "/k.pem"),
            ("ssl.keystore.key", "-----BEGIN PRIVATE KEY-----"),
            (
                "listener.name.sasl_ssl.plain.sasl.jaas.config",
                "user_a=\"pw\";",
            ),
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("num.partitions", "3"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let d: BTreeMap<String, Option<String>> = described(&raw).into_iter().collect();
        assert_eq!(d["ssl.keystore.location"].as_deref(), Some("/k.pem"));
        assert_eq!(d["ssl.keystore.key"], None);
        assert_eq!(d["listener.name.sasl_ssl.plain.sasl.jaas.config"], None);
        assert_eq!(d["sasl.enabled.mechanisms"].as_deref(), Some("PLAIN"));
        assert!(!d.contains_key("num.partitions"));
    }

    #[test]
    fn prefixed_keys_are_known() {
        assert!(is_security_key(
            "listener.name.sasl_ssl.ssl.keystore.location"
        ));
        assert!(is_security_key("listener.name.x.plain.sasl.jaas.config"));
        assert!(is_security_key("super.users"));
        assert!(!is_security_key("listener.name.x.bogus"));
    }
}
