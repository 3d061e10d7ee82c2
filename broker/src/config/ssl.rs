//! TLS settings with Kafka's keys (`ssl.keystore.*`, `ssl.truststore.*`, `ssl.client.auth`,
//! `ssl.principal.mapping.rules`, PEM only), read for one endpoint at a time: a Kafka listener
//! (`listener.name.<l>.ssl.*` first) or the HTTP API (`http.ssl.*` first), each falling back
//! to the plain `ssl.*` key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{defs, invalid, ConfigError};

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// A certificate is asked for; a client without one is still admitted.
    Requested,
    /// A client without a trusted certificate is refused in the handshake.
    Required,
}

/// Where a PEM item comes from: inline in the config (`ssl.keystore.key`, ...) or a file
/// (`ssl.keystore.location`, ...). Files are re-read when they change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemSource {
    /// PEM text given in the config itself.
    Inline(String),
    /// A PEM file.
    File(PathBuf),
}

/// A TLS listener's material and policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslConfig {
    /// The certificate chain, leaf first (`ssl.keystore.certificate.chain`, or the
    /// certificates of the `ssl.keystore.location` file).
    pub certificate_chain: PemSource,
    /// The private key (`ssl.keystore.key`, or the key in the `ssl.keystore.location` file).
    pub private_key: PemSource,
    /// CAs trusted for client certificates (`ssl.truststore.certificates` or
    /// `ssl.truststore.location`); needed unless `ssl.client.auth=none`.
    pub truststore: Option<PemSource>,
    /// `ssl.client.auth` (none).
    pub client_auth: ClientAuth,
    /// `ssl.principal.mapping.rules` (DEFAULT): from a certificate's distinguished name to
    /// the principal's name.
    pub principal_mapping_rules: String,
    /// `ssl.enabled.protocols` (TLSv1.2,TLSv1.3).
    pub enabled_protocols: Vec<String>,
}

/// Where one TLS endpoint's `ssl.*` keys are read: under its prefix first
/// (`listener.name.<l>.` for a Kafka listener, `http.` for the HTTP API), then the plain key.
pub(super) struct SslScope<'a> {
    raw: &'a BTreeMap<String, String>,
    prefix: String,
    /// For messages: "listener SSL", "the HTTP API".
    what: String,
    /// For advice in messages: the prefix of the keys to suggest ("" or "http.").
    advise: &'static str,
    /// Whether client certificates (`ssl.client.auth`, the truststore, principal mapping)
    /// apply; the HTTP API authenticates with its own credentials instead.
    client_certificates: bool,
}

impl<'a> SslScope<'a> {
    /// A Kafka listener's scope: `listener.name.<listener, lower case>.<key>`, then `<key>`.
    pub(super) fn listener(raw: &'a BTreeMap<String, String>, listener: &str) -> SslScope<'a> {
        SslScope {
            raw,
            prefix: format!("listener.name.{}.", listener.to_ascii_lowercase()),
            what: format!("listener {listener}"),
            advise: "",
            client_certificates: true,
        }
    }

    /// The HTTP API's scope: `http.<key>`, then `<key>`; no client certificates.
    pub(super) fn http(raw: &'a BTreeMap<String, String>) -> SslScope<'a> {
        SslScope {
            raw,
            prefix: "http.".into(),
            what: "the HTTP API".into(),
            advise: "http.",
            client_certificates: false,
        }
    }

    fn prefixed(&self, key: &str) -> Option<&'a str> {
        self.raw
            .get(&format!("{}{key}", self.prefix))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.prefixed(key).or_else(|| {
            self.raw
                .get(key)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        })
    }

    /// The key that supplies `key`'s value, for messages: the prefixed one when it is set or
    /// when neither is, else the plain one.
    fn name(&self, key: &str) -> String {
        if self.prefixed(key).is_none() && self.get(key).is_some() {
            key.to_string()
        } else {
            format!("{}{key}", self.prefix)
        }
    }
}

/// Reads one TLS endpoint's settings (keystore, truststore, client auth, protocols).
pub(super) fn ssl_config(scope: &SslScope<'_>) -> Result<SslConfig, ConfigError> {
    for (k, what) in [
        ("ssl.keystore.type", "keystore"),
        ("ssl.truststore.type", "truststore"),
    ] {
        if what == "truststore" && !scope.client_certificates {
            continue;
        }
        if let Some(t) = scope.get(k) {
            if !t.eq_ignore_ascii_case("PEM") {
                return Err(invalid(
                    &scope.name(k),
                    t,
                    &format!("only PEM {what}s are supported (convert with `openssl pkcs12 -nodes`, or set ssl.{what}.type=PEM)"),
                ));
            }
        }
    }
    if scope.get("ssl.key.password").is_some() {
        return Err(invalid(
            &scope.name("ssl.key.password"),
            "[hidden]",
            "encrypted private keys are not supported; give the key unencrypted (PKCS#8 PEM) and protect the file",
        ));
    }
    let chain = scope.get("ssl.keystore.certificate.chain");
    let key = scope.get("ssl.keystore.key");
    let location = scope.get("ssl.keystore.location");
    let (certificate_chain, private_key) = match (chain, key, location) {
        (Some(c), Some(k), None) => (
            PemSource::Inline(c.to_string()),
            PemSource::Inline(k.to_string()),
        ),
        (None, None, Some(path)) => (
            PemSource::File(PathBuf::from(path)),
            PemSource::File(PathBuf::from(path)),
        ),
        (None, None, None) => {
            return Err(invalid(
                &scope.name("ssl.keystore.location"),
                "",
                &format!("{} uses TLS: set {p}ssl.keystore.location (a PEM file with the key and the certificate chain) or {p}ssl.keystore.certificate.chain and {p}ssl.keystore.key", scope.what, p = scope.advise),
            ))
        }
        _ => {
            return Err(invalid(
                &scope.name("ssl.keystore.location"),
                location.unwrap_or(""),
                "set either ssl.keystore.location or both ssl.keystore.certificate.chain and ssl.keystore.key",
            ))
        }
    };
    let (truststore, client_auth, principal_mapping_rules) = if scope.client_certificates {
        client_certificates(scope)?
    } else {
        // Only the endpoint's own key counts: a broker-wide ssl.client.auth is for Kafka.
        match scope.prefixed("ssl.client.auth") {
            None => {}
            Some(v) if v.eq_ignore_ascii_case("none") => {}
            Some(v) => {
                return Err(invalid(
                    &scope.name("ssl.client.auth"),
                    v,
                    &format!("{} does not take client certificates (only none); it authenticates with its own credentials", scope.what),
                ))
            }
        }
        (None, ClientAuth::None, "DEFAULT".to_string())
    };
    let enabled_protocols: Vec<String> = defs::split_list(
        scope
            .get("ssl.enabled.protocols")
            .unwrap_or("TLSv1.2,TLSv1.3"),
    )
    .map(str::to_string)
    .collect();
    for p in &enabled_protocols {
        if p != "TLSv1.2" && p != "TLSv1.3" {
            return Err(invalid(
                &scope.name("ssl.enabled.protocols"),
                p,
                "only TLSv1.2 and TLSv1.3 are supported",
            ));
        }
    }
    if enabled_protocols.is_empty() {
        return Err(invalid(
            &scope.name("ssl.enabled.protocols"),
            "",
            "needs TLSv1.2, TLSv1.3 or both",
        ));
    }
    Ok(SslConfig {
        certificate_chain,
        private_key,
        truststore,
        client_auth,
        principal_mapping_rules,
        enabled_protocols,
    })
}

type ClientCertificates = (Option<PemSource>, ClientAuth, String);

/// The truststore, `ssl.client.auth` and `ssl.principal.mapping.rules` of a Kafka listener.
fn client_certificates(scope: &SslScope<'_>) -> Result<ClientCertificates, ConfigError> {
    let truststore = match (
        scope.get("ssl.truststore.certificates"),
        scope.get("ssl.truststore.location"),
    ) {
        (Some(_), Some(l)) => {
            return Err(invalid(
                &scope.name("ssl.truststore.location"),
                l,
                "set ssl.truststore.location or ssl.truststore.certificates, not both",
            ))
        }
        (Some(c), None) => Some(PemSource::Inline(c.to_string())),
        (None, Some(l)) => Some(PemSource::File(PathBuf::from(l))),
        (None, None) => None,
    };
    let client_auth = match scope
        .get("ssl.client.auth")
        .unwrap_or("none")
        .to_ascii_lowercase()
        .as_str()
    {
        "none" => ClientAuth::None,
        "requested" => ClientAuth::Requested,
        "required" => ClientAuth::Required,
        other => {
            return Err(invalid(
                &scope.name("ssl.client.auth"),
                other,
                "expected none, requested or required",
            ))
        }
    };
    if client_auth != ClientAuth::None && truststore.is_none() {
        return Err(invalid(
            &scope.name("ssl.client.auth"),
            scope.get("ssl.client.auth").unwrap_or(""),
            "client certificates need a truststore: set ssl.truststore.location or ssl.truststore.certificates",
        ));
    }
    let rules = scope
        .get("ssl.principal.mapping.rules")
        .unwrap_or("DEFAULT")
        .to_string();
    Ok((truststore, client_auth, rules))
}
