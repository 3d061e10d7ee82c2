//! TLS for a listener (rustls): the server config built from Kafka's PEM keys, client
//! certificates checked against the truststore as `ssl.client.auth` asks, the principal taken
//! from the certificate's subject through `ssl.principal.mapping.rules`, and the material
//! re-read when its files change (a certificate rotated by cert-manager or certbot takes
//! effect for new connections without a restart; connections already open keep theirs).
//!
//! A reload that fails (a half-written file, a key that does not match) keeps the previous
//! config and is retried at the next check, logged once per interval.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
use x509_cert::der::Decode;

use super::principal::{Principal, PrincipalMapper};
use crate::config::security::{ClientAuth, PemSource, SslConfig};

/// How often certificate files are checked for changes.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// The largest PEM file read (a chain of a few certificates is a few KiB).
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// A listener's TLS: the current rustls config (swapped on reload) and the principal mapper.
pub struct TlsServer {
    listener: String,
    ssl: SslConfig,
    mapper: PrincipalMapper,
    current: RwLock<Arc<ServerConfig>>,
    /// Modification times of the files last loaded successfully.
    stamps: Mutex<Vec<Option<SystemTime>>>,
}

impl TlsServer {
    /// Loads the listener's material; the error names the key and the problem.
    pub fn new(listener: &str, ssl: &SslConfig) -> Result<TlsServer, String> {
        let mapper = PrincipalMapper::parse(&ssl.principal_mapping_rules)
            .map_err(|e| format!("ssl.principal.mapping.rules: {e}"))?;
        let stamps = stamps(ssl);
        let config = build(ssl)?;
        Ok(TlsServer {
            listener: listener.to_string(),
            ssl: ssl.clone(),
            mapper,
            current: RwLock::new(Arc::new(config)),
            stamps: Mutex::new(stamps),
        })
    }

    /// The acceptor for a new connection, with the config current now.
    pub fn acceptor(&self) -> TlsAcceptor {
        let cfg = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        TlsAcceptor::from(cfg)
    }

    /// Re-reads the material when a file changed: `Ok(true)` when a new config is in use.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let now = stamps(&self.ssl);
        {
            let seen = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
            if *seen == now {
                return Ok(false);
            }
        }
        let config = build(&self.ssl)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        *self.stamps.lock().unwrap_or_else(|p| p.into_inner()) = now;
        tracing::info!(listener = %self.listener, "TLS certificates reloaded");
        Ok(true)
    }

    /// The principal of a client that presented `chain` (leaf first), or `User:ANONYMOUS`
    /// without one. `Err` when no mapping rule matches its subject.
    pub fn principal(&self, chain: Option<&[CertificateDer<'_>]>) -> Result<Principal, String> {
        let Some(leaf) = chain.and_then(|c| c.first()) else {
            return Ok(Principal::anonymous());
        };
        let cert = x509_cert::Certificate::from_der(leaf.as_ref())
            .map_err(|e| format!("unreadable client certificate: {e}"))?;
        let dn = cert.tbs_certificate.subject.to_string();
        self.mapper
            .map(&dn)
            .map(|n| Principal::user(&n))
            .ok_or_else(|| format!("no ssl.principal.mapping.rules rule matches {dn:?}"))
    }
}

/// Checks every TLS listener's files every [`RELOAD_CHECK_INTERVAL`] and swaps in what
/// changed; runs until aborted at shutdown.
pub async fn reload_loop(servers: Vec<Arc<TlsServer>>) {
    if servers.is_empty() {
        return;
    }
    let failures = crate::repeated::Repeated::default();
    let mut tick = tokio::time::interval(RELOAD_CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for s in &servers {
            let server = s.clone();
            let r = tokio::task::spawn_blocking(move || server.reload_if_changed()).await;
            if let Ok(Err(e)) = r {
                if let Some(left_out) = failures.check(&s.listener) {
                    tracing::warn!(listener = %s.listener, error = %e, left_out, "TLS certificates changed but cannot be loaded; still using the previous ones");
                }
            }
        }
    }
}

fn files(ssl: &SslConfig) -> Vec<PathBuf> {
    [
        Some(&ssl.certificate_chain),
        Some(&ssl.private_key),
        ssl.truststore.as_ref(),
    ]
    .into_iter()
    .flatten()
    .filter_map(|s| match s {
        PemSource::File(p) => Some(p.clone()),
        PemSource::Inline(_) => None,
    })
    .collect()
}

fn stamps(ssl: &SslConfig) -> Vec<Option<SystemTime>> {
    files(ssl)
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

/// Reads a PEM source, bounded; inline values are re-wrapped (see [`normalize_pem`]).
fn read_pem(src: &PemSource, key: &str) -> Result<Vec<u8>, String> {
    match src {
        PemSource::Inline(text) => Ok(rill_client::security::normalize_pem(text).into_bytes()),
        PemSource::File(path) => {
            use std::io::Read;
            let f = std::fs::File::open(path)
                .map_err(|e| format!("{key}: cannot open {}: {e}", path.display()))?;
            let mut out = Vec::new();
            f.take(MAX_PEM_BYTES + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("{key}: cannot read {}: {e}", path.display()))?;
            if out.len() as u64 > MAX_PEM_BYTES {
                return Err(format!(
                    "{key}: {} is larger than {MAX_PEM_BYTES} bytes",
                    path.display()
                ));
            }
            Ok(out)
        }
    }
}

/// The client side of this listener's TLS, for brokers reaching each other on it: the
/// listener's truststore verifies the peer (host names included), and the broker's own
/// certificate answers a peer that asks for one (`ssl.client.auth`).
pub fn client_config(ssl: &SslConfig) -> Result<rustls::ClientConfig, String> {
    let trust = ssl.truststore.as_ref().ok_or(
        "the inter-broker listener uses TLS: set ssl.truststore.location (or ssl.truststore.certificates) so brokers can verify each other",
    )?;
    let pem = read_pem(trust, "ssl.truststore.location")?;
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&pem) {
        let c = c.map_err(|e| format!("ssl.truststore.location: {e}"))?;
        roots
            .add(c)
            .map_err(|e| format!("ssl.truststore.location: unusable CA certificate: {e}"))?;
    }
    let chain_pem = read_pem(&ssl.certificate_chain, "ssl.keystore.location")?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("ssl.keystore.location: {e}"))?;
    let key_pem = read_pem(&ssl.private_key, "ssl.keystore.location")?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("ssl.keystore.location: {e}"))?;
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| format!("ssl.keystore.location: {e}"))
}

fn build(ssl: &SslConfig) -> Result<ServerConfig, String> {
    let chain_key = match ssl.certificate_chain {
        PemSource::File(_) => "ssl.keystore.location",
        PemSource::Inline(_) => "ssl.keystore.certificate.chain",
    };
    let key_key = match ssl.private_key {
        PemSource::File(_) => "ssl.keystore.location",
        PemSource::Inline(_) => "ssl.keystore.key",
    };
    let chain_pem = read_pem(&ssl.certificate_chain, chain_key)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{chain_key}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{chain_key}: no certificate found"));
    }
    let key_pem = read_pem(&ssl.private_key, key_key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        format!("{key_key}: no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}")
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = ssl
        .enabled_protocols
        .iter()
        .filter_map(|p| match p.as_str() {
            "TLSv1.2" => Some(&rustls::version::TLS12),
            "TLSv1.3" => Some(&rustls::version::TLS13),
            _ => None,
        })
        .collect();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("ssl.enabled.protocols: {e}"))?;
    let builder = match (ssl.client_auth, &ssl.truststore) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(trust)) => {
            let trust_key = match trust {
                PemSource::File(_) => "ssl.truststore.location",
                PemSource::Inline(_) => "ssl.truststore.certificates",
            };
            let pem = read_pem(trust, trust_key)?;
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&pem) {
                let c = c.map_err(|e| format!("{trust_key}: {e}"))?;
                roots
                    .add(c)
                    .map_err(|e| format!("{trust_key}: unusable CA certificate: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("{trust_key}: no CA certificate found"));
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if auth == ClientAuth::Requested {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder.with_client_cert_verifier(
                v.build()
                    .map_err(|e| format!("{trust_key}: cannot verify clients: {e}"))?,
            )
        }
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("{key_key}: the key does not fit the certificate: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_garbage_files_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("g.pem");
        std::fs::write(&garbage, "not pem").unwrap();
        for (path, want) in [
            (dir.path().join("missing.pem"), "cannot open"),
            (garbage, "no certificate"),
        ] {
            let ssl = SslConfig {
                certificate_chain: PemSource::File(path.clone()),
                private_key: PemSource::File(path),
                truststore: None,
                client_auth: ClientAuth::None,
                principal_mapping_rules: "DEFAULT".into(),
                enabled_protocols: vec!["TLSv1.3".into()],
            };
            let e = TlsServer::new("SSL", &ssl).err().unwrap();
            assert!(
                e.contains("ssl.keystore.location") && e.contains(want),
                "{e}"
            );
        }
    }
}
