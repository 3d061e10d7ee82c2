//! The HTTP API's settings (`http.*`): how clients authenticate and whether it speaks TLS.
//!
//! The API shows the node's state (every config, partitions, metrics) to whoever reaches it,
//! so a node refuses to serve it beyond loopback without credentials (`http.auth.token`,
//! `http.auth.basic.users.file`, or both) unless `http.auth.allow.unauthenticated=true` says
//! an open API is intended (a private network, as in docker-compose.yml). On loopback nothing
//! is required, as before.
//!
//! TLS (`http.ssl.enabled=true`) takes the Kafka listeners' `ssl.*` keys under the `http.`
//! prefix, each falling back to the plain key when unset (`http.ssl.keystore.location`, else
//! `ssl.keystore.location`), so one keystore can serve both or the API can have its own.
//! Client certificates are not asked for (`http.ssl.client.auth` may only be `none`): the
//! API authenticates with its own credentials, which Prometheus and curl send easily.
//!
//! Only parsing lives here; the users file and the certificates are loaded at start
//! (`crate::http::auth`, `crate::security::tls`), so a bad file is reported with its key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::security::{ssl_config, SslConfig, SslScope};
use super::{get_bool, invalid, ConfigError};

/// How the HTTP API is served.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// `http.auth.token`: `Authorization: Bearer <token>` is accepted.
    pub token: Option<String>,
    /// `http.auth.basic.users.file`: a file of `name:argon2-PHC-hash` lines whose users are
    /// accepted with `Authorization: Basic`.
    pub basic_users_file: Option<PathBuf>,
    /// `http.auth.allow.unauthenticated` (false): serve beyond loopback without credentials.
    pub allow_unauthenticated: bool,
    /// TLS, when `http.ssl.enabled=true`.
    pub ssl: Option<SslConfig>,
}

impl HttpConfig {
    /// Whether clients must present credentials (a token or Basic users is configured).
    pub fn authenticated(&self) -> bool {
        self.token.is_some() || self.basic_users_file.is_some()
    }
}

impl std::fmt::Debug for HttpConfig {
    // The token is a secret: never in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("token", &self.token.as_ref().map(|_| "[hidden]"))
            .field("basic_users_file", &self.basic_users_file)
            .field("allow_unauthenticated", &self.allow_unauthenticated)
            .field("tls", &self.ssl.is_some())
            .finish()
    }
}

/// Reads the `http.*` settings; `listener` is the parsed `http.listener` (given as `text`).
pub(super) fn http_config(
    raw: &BTreeMap<String, String>,
    listener: SocketAddr,
    text: &str,
) -> Result<HttpConfig, ConfigError> {
    let non_empty = |key: &str| {
        raw.get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let cfg = HttpConfig {
        token: non_empty("http.auth.token"),
        basic_users_file: non_empty("http.auth.basic.users.file").map(PathBuf::from),
        allow_unauthenticated: get_bool(raw, "http.auth.allow.unauthenticated", false)?,
        ssl: if get_bool(raw, "http.ssl.enabled", false)? {
            Some(ssl_config(&SslScope::http(raw))?)
        } else {
            None
        },
    };
    if !listener.ip().is_loopback() && !cfg.authenticated() && !cfg.allow_unauthenticated {
        return Err(invalid(
            "http.listener",
            text,
            "the HTTP API would listen beyond loopback without authentication: set http.auth.token or http.auth.basic.users.file, or http.auth.allow.unauthenticated=true if an open API is intended (a private network)",
        ));
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::security::PemSource;

    fn cfg(listener: &str, pairs: &[(&str, &str)]) -> Result<HttpConfig, ConfigError> {
        let raw: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        http_config(&raw, listener.parse().expect("addr"), listener)
    }

    #[test]
    fn loopback_needs_nothing_and_beyond_needs_credentials_or_the_opt_out() {
        let c = cfg("127.0.0.1:9644", &[]).expect("loopback");
        assert!(!c.authenticated() && c.ssl.is_none());
        assert!(cfg("[::1]:9644", &[]).is_ok());
        let e = cfg("0.0.0.0:9644", &[]).expect_err("open").to_string();
        assert!(
            e.contains("http.listener") && e.contains("http.auth.allow.unauthenticated"),
            "{e}"
        );
        assert!(cfg("0.0.0.0:9644", &[("http.auth.token", " ")]).is_err());
        assert!(cfg(
            "0.0.0.0:9644",
            &[("http.auth.allow.unauthenticated", "true")]
        )
        .is_ok());
        assert!(cfg("0.0.0.0:9644", &[("http.auth.token", "t")]).is_ok());
        let c = cfg("10.0.0.1:9644", &[("http.auth.basic.users.file", "/u")]).expect("basic");
        assert_eq!(c.basic_users_file, Some(PathBuf::from("/u")));
        let e = cfg("0.0.0.0:1", &[("http.auth.allow.unauthenticated", "yes")])
            .expect_err("bool")
            .to_string();
        assert!(e.contains("http.auth.allow.unauthenticated"), "{e}");
    }

    #[test]
    fn tls_keys_take_the_http_prefix_then_the_plain_key() {
        let c = cfg(
            "127.0.0.1:1",
            &[
                ("http.ssl.enabled", "true"),
                ("ssl.keystore.location", "/kafka.pem"),
                ("ssl.client.auth", "required"),
                ("ssl.truststore.location", "/ca.pem"),
            ],
        )
        .expect("fallback");
        let ssl = c.ssl.expect("tls");
        assert_eq!(ssl.certificate_chain, PemSource::File("/kafka.pem".into()));
        assert_eq!(ssl.truststore, None, "no client certificates on HTTP");
        let c = cfg(
            "127.0.0.1:1",
            &[
                ("http.ssl.enabled", "true"),
                ("ssl.keystore.location", "/kafka.pem"),
                ("http.ssl.keystore.location", "/http.pem"),
                ("http.ssl.enabled.protocols", "TLSv1.3"),
            ],
        )
        .expect("own keystore");
        let ssl = c.ssl.expect("tls");
        assert_eq!(ssl.private_key, PemSource::File("/http.pem".into()));
        assert_eq!(ssl.enabled_protocols, vec!["TLSv1.3".to_string()]);
        assert!(cfg("127.0.0.1:1", &[("ssl.keystore.location", "/k.pem")])
            .expect("off")
            .ssl
            .is_none());
    }

    #[test]
    fn bad_tls_settings_name_their_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("http.ssl.enabled", "true")],
                "http.ssl.keystore.location",
            ),
            (
                &[
                    ("http.ssl.enabled", "true"),
                    ("http.ssl.keystore.location", "/a"),
                    ("http.ssl.client.auth", "required"),
                ],
                "http.ssl.client.auth",
            ),
            (
                &[
                    ("http.ssl.enabled", "true"),
                    ("http.ssl.keystore.location", "/a"),
                    ("http.ssl.keystore.type", "JKS"),
                ],
                "http.ssl.keystore.type",
            ),
            (
                &[
                    ("http.ssl.enabled", "true"),
                    ("ssl.keystore.location", "/a"),
                    ("ssl.enabled.protocols", "SSLv3"),
                ],
                "ssl.enabled.protocols",
            ),
            (&[("http.ssl.enabled", "maybe")], "http.ssl.enabled"),
        ];
        for (pairs, key) in cases {
            let e = cfg("127.0.0.1:1", pairs).expect_err(key).to_string();
            assert!(e.contains(key), "{e} should name {key}");
        }
    }
}
