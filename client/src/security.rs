//! Connecting to a secured cluster: TLS (rustls) and SASL (PLAIN, SCRAM-SHA-256/512), set
//! from a Kafka client properties file as Kafka's tools take it (`--command-config`):
//! `security.protocol`, `sasl.mechanism`, `sasl.jaas.config` (or librdkafka's
//! `sasl.username`/`sasl.password`), `ssl.truststore.location`/`ssl.truststore.certificates`
//! (or `ssl.ca.location`), `ssl.keystore.location` (or `ssl.certificate.location` +
//! `ssl.key.location`) for a client certificate, `ssl.endpoint.identification.algorithm`.
//! Only PEM material: Java keystores are refused with a message saying how to convert.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use hmac::{Hmac, Mac};
use regex::Regex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256, Sha512};

/// A SASL mechanism this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// RFC 4616: the password travels as is (use it inside TLS).
    Plain,
    /// RFC 7677.
    ScramSha256,
    /// RFC 5802 with SHA-512, as Kafka names it.
    ScramSha512,
}

impl SaslMechanism {
    /// KIP-554's mechanism type (1, 2), for SCRAM mechanisms.
    pub fn scram_type(self) -> Option<i8> {
        match self {
            SaslMechanism::Plain => None,
            SaslMechanism::ScramSha256 => Some(1),
            SaslMechanism::ScramSha512 => Some(2),
        }
    }

    /// The SCRAM mechanism of a KIP-554 type.
    pub fn from_scram_type(t: i8) -> Option<SaslMechanism> {
        match t {
            1 => Some(SaslMechanism::ScramSha256),
            2 => Some(SaslMechanism::ScramSha512),
            _ => None,
        }
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// Parses Kafka's name, case-insensitively.
    pub fn parse(s: &str) -> Option<SaslMechanism> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Some(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Some(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(SaslMechanism::ScramSha512),
            _ => None,
        }
    }
}

/// SASL credentials.
#[derive(Clone)]
pub struct SaslCredentials {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// The user name.
    pub username: String,
    /// The password (never printed).
    pub password: String,
}

impl fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"[hidden]")
            .finish()
    }
}

/// How a client secures its connections: nothing (PLAINTEXT) by default.
#[derive(Clone, Default)]
pub struct ClientSecurity {
    /// TLS, for SSL and SASL_SSL.
    pub tls: Option<Arc<ClientConfig>>,
    /// SASL, for SASL_PLAINTEXT and SASL_SSL.
    pub sasl: Option<SaslCredentials>,
}

impl fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSecurity")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl)
            .finish()
    }
}

impl ClientSecurity {
    /// Reads Kafka client properties (a `--command-config` file's contents, parsed).
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<ClientSecurity, String> {
        let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let protocol = get("security.protocol")
            .unwrap_or("PLAINTEXT")
            .to_ascii_uppercase();
        let (tls, sasl) = match protocol.as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => {
                return Err(format!(
                    "security.protocol={other}: expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
                ))
            }
        };
        let tls = if tls {
            Some(Arc::new(tls_config(props)?))
        } else {
            None
        };
        let sasl = if sasl {
            let mech_name = get("sasl.mechanism")
                .or_else(|| get("sasl.mechanisms"))
                .unwrap_or("GSSAPI");
            let mechanism = SaslMechanism::parse(mech_name).ok_or_else(|| {
                format!("sasl.mechanism={mech_name}: supported are PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512")
            })?;
            let (username, password) = match (get("sasl.username"), get("sasl.password")) {
                (Some(u), Some(p)) => (u.to_string(), p.to_string()),
                _ => {
                    let jaas = get("sasl.jaas.config").ok_or(
                        "SASL needs sasl.jaas.config (… required username=\"…\" password=\"…\";) or sasl.username and sasl.password",
                    )?;
                    (
                        jaas_option(jaas, "username").ok_or("sasl.jaas.config has no username")?,
                        jaas_option(jaas, "password").ok_or("sasl.jaas.config has no password")?,
                    )
                }
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

    /// Reads a Kafka client properties file.
    pub fn from_file(path: &Path) -> Result<ClientSecurity, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let props = crate::properties::parse(&text).map_err(|line| {
            format!(
                "{}: malformed line {line:?}: expected key=value",
                path.display()
            )
        })?;
        ClientSecurity::from_properties(&props)
    }
}

/// The TLS server name (host name or IP address) of `host:port`, as certificates name it.
pub fn server_name(addr: &str) -> Result<ServerName<'static>, String> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host} is not a valid TLS server name: {e}"))
}

/// `name="value"` from a JAAS line (`username`, `password`).
pub fn jaas_option(jaas: &str, name: &str) -> Option<String> {
    let mut rest = jaas;
    while let Some(i) = rest.find(name) {
        let after = &rest[i + name.len()..];
        let boundary = i == 0
            || rest[..i]
                .chars()
                .last()
                .is_some_and(|c| c.is_whitespace() || c == ';');
        if let (true, Some(v)) = (boundary, after.trim_start().strip_prefix('=')) {
            let v = v.trim_start().strip_prefix('"')?;
            return v.find('"').map(|end| v[..end].to_string());
        }
        rest = after;
    }
    None
}

/// Inline PEM in a properties file loses its line breaks (`\` continuations join lines), as
/// in Kafka; like Kafka's PEM reader, accept that: each block's base64 is re-wrapped.
pub fn normalize_pem(text: &str) -> String {
    // The pattern is a literal, so building it cannot fail; an empty result only means no
    // block is found, which the caller reports.
    let Ok(block) = Regex::new(r"(?s)-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END ([A-Z0-9 ]+)-----")
    else {
        return text.to_string();
    };
    let mut out = String::new();
    for c in block.captures_iter(text) {
        let label = &c[1];
        let body: String = c[2].chars().filter(|ch| !ch.is_whitespace()).collect();
        out.push_str(&format!("-----BEGIN {label}-----\n"));
        for line in body.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str(&format!("-----END {}-----\n", &c[3]));
    }
    out
}

fn read_file(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
}

fn tls_config(props: &BTreeMap<String, String>) -> Result<ClientConfig, String> {
    let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    for k in ["ssl.truststore.type", "ssl.keystore.type"] {
        if let Some(t) = get(k) {
            if !t.eq_ignore_ascii_case("PEM") {
                return Err(format!(
                    "{k}={t}: only PEM is supported (convert with `openssl pkcs12 -nodes` or `keytool -exportcert -rfc`)"
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let pem = match (
        get("ssl.truststore.certificates"),
        get("ssl.truststore.location").or_else(|| get("ssl.ca.location")),
    ) {
        (Some(inline), _) => normalize_pem(inline).into_bytes(),
        (None, Some(path)) => read_file(path)?,
        (None, None) => return Err(
            "TLS needs the CA that signed the brokers' certificates: set ssl.truststore.location (PEM) or ssl.ca.location".into(),
        ),
    };
    for c in CertificateDer::pem_slice_iter(&pem) {
        let c = c.map_err(|e| format!("truststore: {e}"))?;
        roots
            .add(c)
            .map_err(|e| format!("truststore: unusable CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("truststore: no CA certificate found".into());
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("truststore: {e}"))?;
    // Kafka's default is hostname verification ("https"); an empty value turns it off.
    let check_name = props
        .get("ssl.endpoint.identification.algorithm")
        .is_none_or(|v| !v.trim().is_empty());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier {
            inner: verifier,
            check_name,
        }));
    // A client certificate: one PEM with key and chain, or librdkafka's two files.
    let key_and_chain = match (
        get("ssl.keystore.location"),
        get("ssl.certificate.location"),
        get("ssl.key.location"),
    ) {
        (Some(ks), _, _) => {
            let pem = read_file(ks)?;
            Some((pem.clone(), pem))
        }
        (None, Some(cert), Some(key)) => Some((read_file(cert)?, read_file(key)?)),
        _ => None,
    };
    match key_and_chain {
        None => Ok(builder.with_no_client_auth()),
        Some((chain, key)) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("client certificate: {e}"))?;
            let key =
                PrivateKeyDer::from_pem_slice(&key).map_err(|e| format!("client key: {e}"))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("client certificate: {e}"))
        }
    }
}

/// The WebPKI verifier, with the host-name check optional (Kafka's
/// `ssl.endpoint.identification.algorithm=`): the chain is always verified.
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The client side of one SCRAM exchange (RFC 5802): `first()`, then `respond(server_first)`,
/// then `verify(server_final)`.
pub struct ScramClient {
    sha512: bool,
    username: String,
    password: String,
    nonce: String,
    client_first_bare: String,
    expected_server_signature: Vec<u8>,
}

impl ScramClient {
    /// A new exchange for `mechanism` (a SCRAM one).
    pub fn new(sha512: bool, username: &str, password: &str) -> ScramClient {
        use rand::Rng;
        let nonce: String = rand::thread_rng()
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        ScramClient {
            sha512,
            username: username.replace('=', "=3D").replace(',', "=2C"),
            password: password.to_string(),
            nonce,
            client_first_bare: String::new(),
            expected_server_signature: Vec::new(),
        }
    }

    /// The client-first message.
    pub fn first(&mut self) -> Vec<u8> {
        self.client_first_bare = format!("n={},r={}", self.username, self.nonce);
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// The client-final message for the server's challenge.
    pub fn respond(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let text = std::str::from_utf8(server_first).map_err(|_| "server-first is not UTF-8")?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in text.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                Some(("e", v)) => return Err(format!("server error: {v}")),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(format!("malformed server-first message {text:?}"));
        };
        if !nonce.starts_with(&self.nonce) || iterations == 0 || iterations > 1_000_000 {
            return Err("server-first message fails the nonce or iteration checks".into());
        }
        let salt = base64::engine::general_purpose::STANDARD
            .decode(salt)
            .map_err(|_| "server salt is not base64")?;
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let (proof, server_sig) = if self.sha512 {
            proofs_sha512(&self.password, &salt, iterations, &auth_message)
        } else {
            proofs_sha256(&self.password, &salt, iterations, &auth_message)
        };
        self.expected_server_signature = server_sig;
        let p = base64::engine::general_purpose::STANDARD.encode(proof);
        Ok(format!("{without_proof},p={p}").into_bytes())
    }

    /// Checks the server's signature: a server that does not know the password cannot forge it.
    pub fn verify(&self, server_final: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(server_final).map_err(|_| "server-final is not UTF-8")?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(format!("server error: {e}"));
        }
        let v = text
            .strip_prefix("v=")
            .ok_or_else(|| format!("malformed server-final message {text:?}"))?;
        let got = base64::engine::general_purpose::STANDARD
            .decode(v)
            .map_err(|_| "server signature is not base64")?;
        if got != self.expected_server_signature {
            return Err(
                "the server's SCRAM signature is wrong: it does not know the password".into(),
            );
        }
        Ok(())
    }
}

/// (ClientProof, ServerSignature) for one exchange, per digest (the `pbkdf2`/`hmac` bounds
/// are simplest met by naming the digest).
macro_rules! scram_proofs {
    ($name:ident, $digest:ty) => {
        fn $name(
            password: &str,
            salt: &[u8],
            iterations: u32,
            auth_message: &str,
        ) -> (Vec<u8>, Vec<u8>) {
            let mut salted = vec![0u8; <$digest as Digest>::output_size()];
            pbkdf2::pbkdf2_hmac::<$digest>(password.as_bytes(), salt, iterations, &mut salted);
            let hmac = |key: &[u8], msg: &[u8]| -> Vec<u8> {
                // HMAC takes keys of any length, so this cannot fail.
                let mut m = <Hmac<$digest> as Mac>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
                m.update(msg);
                m.finalize().into_bytes().to_vec()
            };
            let client_key = hmac(&salted, b"Client Key");
            let stored_key = <$digest>::digest(&client_key).to_vec();
            let client_signature = hmac(&stored_key, auth_message.as_bytes());
            let proof = client_key
                .iter()
                .zip(&client_signature)
                .map(|(a, b)| a ^ b)
                .collect();
            let server_key = hmac(&salted, b"Server Key");
            (proof, hmac(&server_key, auth_message.as_bytes()))
        }
    };
}
scram_proofs!(proofs_sha256, Sha256);
scram_proofs!(proofs_sha512, Sha512);

/// SCRAM's `Hi(password, salt, iterations)` (PBKDF2-HMAC): what AlterUserScramCredentials
/// sends instead of the password.
pub fn salted_password(
    mechanism: SaslMechanism,
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    match mechanism {
        SaslMechanism::ScramSha512 => {
            let mut out = vec![0u8; 64];
            pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, iterations, &mut out);
            out
        }
        _ => {
            let mut out = vec![0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_pem_without_line_breaks_is_rewrapped() {
        let text = "-----BEGIN CERTIFICATE----- QUJD REVG -----END CERTIFICATE----------BEGIN PRIVATE KEY-----R0hJ-----END PRIVATE KEY-----";
        let n = normalize_pem(text);
        assert_eq!(
            n,
            "-----BEGIN CERTIFICATE-----\nQUJDREVG\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nR0hJ\n-----END PRIVATE KEY-----\n"
        );
    }
}
