//! The server side of SASL's mechanisms: SCRAM-SHA-256/512 (RFC 5802, RFC 7677, as Kafka's
//! `ScramSaslServer`) and PLAIN (RFC 4616, as Kafka's `PlainSaslServer`).
//!
//! SCRAM never sees a password: the metadata log holds each user's salt, iteration count,
//! `StoredKey` and `ServerKey`; the client proves it knows the password and the server
//! proves it knows the keys. An unknown user is not told apart from a wrong password: the
//! exchange goes on with a made-up credential (derived from the name and a per-process
//! secret, so the same user always gets the same salt) and fails at the proof, with the same
//! message, so names cannot be enumerated.
//!
//! Every message is bounded ([`MAX_SASL_MESSAGE`]) before it is parsed, and nothing a client
//! sends sizes an allocation beyond its own length.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// The largest SASL token accepted (Kafka caps SASL receives at 512 KiB by default; SCRAM and
/// PLAIN tokens are a few hundred bytes, so a tighter bound costs nobody anything).
pub const MAX_SASL_MESSAGE: usize = 8 << 10;
/// The longest user name accepted.
pub const MAX_USERNAME: usize = 256;
/// Kafka's smallest SCRAM iteration count (`ScramMechanism.minIterations`).
pub const MIN_ITERATIONS: u32 = 4096;
/// Kafka's largest SCRAM iteration count (`ScramMechanism.maxIterations`).
pub const MAX_ITERATIONS: u32 = 16384;
/// Random characters the server adds to the client's nonce.
const SERVER_NONCE_CHARS: usize = 32;
/// Kafka's SASL_AUTHENTICATION_FAILED.
const SASL_AUTHENTICATION_FAILED: i16 =
    kafka_protocol::error::ResponseError::SaslAuthenticationFailed.code();

/// A SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256 (KIP-554 type 1).
    Sha256,
    /// SCRAM-SHA-512 (KIP-554 type 2).
    Sha512,
}

impl ScramMechanism {
    /// From Kafka's name (`SCRAM-SHA-256`), case-insensitively.
    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        match name.to_ascii_uppercase().as_str() {
            "SCRAM-SHA-256" => Some(ScramMechanism::Sha256),
            "SCRAM-SHA-512" => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// From KIP-554's mechanism type.
    pub fn from_type_id(id: i8) -> Option<ScramMechanism> {
        match id {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// KIP-554's mechanism type.
    pub fn type_id(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        match self {
            ScramMechanism::Sha256 => match Hmac::<Sha256>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
            ScramMechanism::Sha512 => match Hmac::<Sha512>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut out = vec![0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out
            }
            ScramMechanism::Sha512 => {
                let mut out = vec![0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out
            }
        }
    }
}

/// Why an authentication failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// Bad credentials, or a malformed exchange; Kafka answers both with
    /// SASL_AUTHENTICATION_FAILED and closes.
    #[error("{0}")]
    Failed(String),
    /// A credential Kafka would not store (iterations out of range, empty salt).
    #[error("{0}")]
    Unacceptable(String),
}

impl SaslError {
    /// The Kafka error code for the wire.
    pub fn kafka_code(&self) -> i16 {
        match self {
            SaslError::Failed(_) => SASL_AUTHENTICATION_FAILED,
            SaslError::Unacceptable(_) => {
                kafka_protocol::error::ResponseError::UnacceptableCredential.code()
            }
        }
    }
}

fn failed(mechanism: ScramMechanism) -> SaslError {
    SaslError::Failed(format!(
        "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
        mechanism.name()
    ))
}

fn malformed(what: &str) -> SaslError {
    SaslError::Failed(format!(
        "Authentication failed: malformed SASL message ({what})"
    ))
}

/// One user's SCRAM credential, as the metadata log stores it (never the password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The mechanism it is for.
    pub mechanism: ScramMechanism,
    /// The salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

impl ScramCredential {
    /// From what AlterUserScramCredentials carries: the salt and the salted password.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salted_password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<ScramCredential, SaslError> {
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(SaslError::Unacceptable(format!(
                "Iterations {iterations} must be between {MIN_ITERATIONS} and {MAX_ITERATIONS} for {}",
                mechanism.name()
            )));
        }
        if salt.is_empty() || salted_password.is_empty() {
            return Err(SaslError::Unacceptable(
                "The salt and the salted password must not be empty".into(),
            ));
        }
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        Ok(ScramCredential {
            mechanism,
            salt: salt.to_vec(),
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
        })
    }

    /// From a password, with a random salt (tests, `rill dev --secure`).
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &str,
        iterations: u32,
    ) -> Result<ScramCredential, SaslError> {
        let mut salt = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut salt);
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        ScramCredential::from_salted_password(mechanism, &salted, &salt, iterations)
    }
}

/// What a SCRAM step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The server-first message; the client-final follows.
    Continue(Vec<u8>),
    /// Authenticated: the server-final message and the user name.
    Done {
        /// `v=<ServerSignature>`.
        response: Vec<u8>,
        /// The authenticated user (without `User:`).
        principal: String,
    },
}

/// The per-process secret that made-up credentials of unknown users derive from.
static FAKE_SECRET: LazyLock<[u8; 32]> = LazyLock::new(|| {
    let mut s = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut s);
    s
});

enum State {
    First,
    Final {
        user: String,
        /// `None` for an unknown user: the proof cannot match.
        credential: Option<ScramCredential>,
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Done,
}

/// The server side of one SCRAM exchange.
pub struct ScramServer {
    mechanism: ScramMechanism,
    state: State,
    nonce_suffix: Option<String>,
}

impl ScramServer {
    /// A new exchange for `mechanism`.
    pub fn new(mechanism: ScramMechanism) -> ScramServer {
        ScramServer {
            mechanism,
            state: State::First,
            nonce_suffix: None,
        }
    }

    /// A new exchange whose server nonce is `suffix` (test vectors).
    pub fn with_nonce(mechanism: ScramMechanism, suffix: &str) -> ScramServer {
        ScramServer {
            nonce_suffix: Some(suffix.to_string()),
            ..ScramServer::new(mechanism)
        }
    }

    /// The mechanism.
    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Takes the client's next message; `lookup` finds a user's credential.
    pub fn step(
        &mut self,
        msg: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<Step, SaslError> {
        if msg.len() > MAX_SASL_MESSAGE {
            self.state = State::Done;
            return Err(malformed("message too long"));
        }
        let text = std::str::from_utf8(msg).map_err(|_| malformed("not UTF-8"))?;
        match std::mem::replace(&mut self.state, State::Done) {
            State::First => self.first(text, lookup),
            State::Final {
                user,
                credential,
                gs2_header,
                client_first_bare,
                server_first,
                nonce,
            } => {
                let without_proof_end = text.rfind(",p=").ok_or_else(|| malformed("no proof"))?;
                let without_proof = &text[..without_proof_end];
                let proof_b64 = &text[without_proof_end + 3..];
                let attrs = attributes(without_proof)?;
                let channel = attrs
                    .get("c")
                    .ok_or_else(|| malformed("no channel binding"))?;
                let expected_c = base64::engine::general_purpose::STANDARD.encode(&gs2_header);
                if *channel != expected_c {
                    return Err(malformed("channel binding does not match the gs2 header"));
                }
                // Kafka's check is `endsWith`, not equality, and clients rely on it:
                // librdkafka 2.0 sends the client nonce twice (client + whole server nonce).
                if !attrs.get("r").is_some_and(|r| r.ends_with(nonce.as_str())) {
                    return Err(malformed("nonce mismatch"));
                }
                let proof = base64::engine::general_purpose::STANDARD
                    .decode(proof_b64)
                    .map_err(|_| malformed("proof is not base64"))?;
                let Some(cred) = credential else {
                    return Err(failed(self.mechanism));
                };
                let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
                let client_signature = self
                    .mechanism
                    .hmac(&cred.stored_key, auth_message.as_bytes());
                if proof.len() != client_signature.len() {
                    return Err(failed(self.mechanism));
                }
                let client_key: Vec<u8> = proof
                    .iter()
                    .zip(&client_signature)
                    .map(|(a, b)| a ^ b)
                    .collect();
                let computed = self.mechanism.hash(&client_key);
                if !bool::from(computed.ct_eq(&cred.stored_key)) {
                    return Err(failed(self.mechanism));
                }
                let signature = self
                    .mechanism
                    .hmac(&cred.server_key, auth_message.as_bytes());
                let v = base64::engine::general_purpose::STANDARD.encode(signature);
                Ok(Step::Done {
                    response: format!("v={v}").into_bytes(),
                    principal: user,
                })
            }
            State::Done => Err(SaslError::Failed(
                "Authentication failed: the SCRAM exchange is already over".into(),
            )),
        }
    }

    fn first(
        &mut self,
        text: &str,
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<Step, SaslError> {
        // gs2-header: "n," [ "a=" authzid ] ","; Kafka supports no channel binding ('y'/'p').
        let rest = text
            .strip_prefix("n,")
            .ok_or_else(|| malformed("channel binding is not supported (expected n,,)"))?;
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or_else(|| malformed("no gs2 header"))?;
        let authzid = match authzid {
            "" => None,
            a => Some(decode_name(
                a.strip_prefix("a=")
                    .ok_or_else(|| malformed("bad authorization id"))?,
            )?),
        };
        let gs2_header = text[..text.len() - bare.len()].to_string();
        if bare.starts_with("m=") {
            return Err(malformed("mandatory extensions are not supported"));
        }
        let mut parts = bare.split(',');
        let user = parts
            .next()
            .and_then(|p| p.strip_prefix("n="))
            .ok_or_else(|| malformed("no user name"))?;
        let client_nonce = parts
            .next()
            .and_then(|p| p.strip_prefix("r="))
            .ok_or_else(|| malformed("no nonce"))?;
        for ext in parts {
            let (k, v) = ext
                .split_once('=')
                .ok_or_else(|| malformed("bad extension"))?;
            if k == "tokenauth" && v.eq_ignore_ascii_case("true") {
                return Err(SaslError::Failed(
                    "Authentication failed: delegation tokens are not supported".into(),
                ));
            }
        }
        let user = decode_name(user)?;
        if user.is_empty() || user.len() > MAX_USERNAME {
            return Err(malformed("user name empty or too long"));
        }
        if authzid.as_ref().is_some_and(|a| *a != user) {
            return Err(SaslError::Failed(
                "Authentication failed: the authorization id differs from the user name".into(),
            ));
        }
        if client_nonce.is_empty()
            || !client_nonce
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
        {
            return Err(malformed("bad nonce"));
        }
        let credential = lookup(&user).filter(|c| c.mechanism == self.mechanism);
        let (salt, iterations) = match &credential {
            Some(c) => (c.salt.clone(), c.iterations),
            None => (
                self.mechanism.hmac(&FAKE_SECRET[..], user.as_bytes())[..16].to_vec(),
                MIN_ITERATIONS,
            ),
        };
        let suffix = self.nonce_suffix.clone().unwrap_or_else(|| {
            rand::thread_rng()
                .sample_iter(&rand::distributions::Alphanumeric)
                .take(SERVER_NONCE_CHARS)
                .map(char::from)
                .collect()
        });
        let nonce = format!("{client_nonce}{suffix}");
        let server_first = format!(
            "r={nonce},s={},i={iterations}",
            base64::engine::general_purpose::STANDARD.encode(&salt)
        );
        self.state = State::Final {
            user,
            credential,
            gs2_header,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok(Step::Continue(server_first.into_bytes()))
    }
}

/// `k=v,k=v` into a map; a repeated or malformed attribute is refused.
fn attributes(s: &str) -> Result<BTreeMap<&str, &str>, SaslError> {
    let mut out = BTreeMap::new();
    for part in s.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| malformed("bad attribute"))?;
        if out.insert(k, v).is_some() {
            return Err(malformed("repeated attribute"));
        }
    }
    Ok(out)
}

/// SCRAM's `saslname`: `=2C` is a comma, `=3D` an equals sign; any other `=` is an error.
fn decode_name(s: &str) -> Result<String, SaslError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(malformed("bad escape in a name")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// PLAIN's credentials.
#[derive(Debug, PartialEq, Eq)]
pub struct PlainCredentials {
    /// The user.
    pub username: String,
    /// The password.
    pub password: String,
}

/// Parses a PLAIN token, `[authzid] NUL authcid NUL passwd`; the authorization id, when
/// given, must be the user (Kafka's rule).
pub fn parse_plain(msg: &[u8]) -> Result<PlainCredentials, SaslError> {
    if msg.len() > MAX_SASL_MESSAGE {
        return Err(malformed("message too long"));
    }
    let text = std::str::from_utf8(msg).map_err(|_| malformed("not UTF-8"))?;
    let parts: Vec<&str> = text.splitn(4, '\0').collect();
    let [authzid, user, password] = parts[..] else {
        return Err(malformed("expected authzid NUL user NUL password"));
    };
    if user.is_empty() || password.is_empty() || user.len() > MAX_USERNAME {
        return Err(SaslError::Failed(
            "Authentication failed: user name and password must be given".into(),
        ));
    }
    if !authzid.is_empty() && authzid != user {
        return Err(SaslError::Failed(
            "Authentication failed: the authorization id differs from the user name".into(),
        ));
    }
    Ok(PlainCredentials {
        username: user.to_string(),
        password: password.to_string(),
    })
}

/// PLAIN's users and passwords.
#[derive(Debug, Clone, Default)]
pub struct PlainUsers {
    /// User → SHA-256 of the password (compared in constant time).
    users: BTreeMap<String, [u8; 32]>,
}

/// The most PLAIN users a listener holds.
pub const MAX_PLAIN_USERS: usize = 10_000;

impl PlainUsers {
    fn insert(&mut self, user: &str, password: &str) -> Result<(), String> {
        if self.users.len() >= MAX_PLAIN_USERS {
            return Err(format!("more than {MAX_PLAIN_USERS} users"));
        }
        if user.is_empty() || user.len() > MAX_USERNAME {
            return Err(format!("user name {user:?} is empty or too long"));
        }
        self.users
            .insert(user.to_string(), Sha256::digest(password.as_bytes()).into());
        Ok(())
    }

    /// From Kafka's JAAS text: every `user_<name>="<password>"` option.
    pub fn from_jaas(text: &str) -> Result<PlainUsers, String> {
        let mut users = PlainUsers::default();
        let mut rest = text;
        while let Some(i) = rest.find("user_") {
            let after = &rest[i + 5..];
            let (name, value) = after
                .split_once('=')
                .ok_or_else(|| format!("expected user_<name>=\"<password>\" near {after:?}"))?;
            let name = name.trim();
            let value = value.trim_start();
            let value = value
                .strip_prefix('"')
                .ok_or_else(|| format!("the password of user_{name} must be in double quotes"))?;
            let end = value
                .find('"')
                .ok_or_else(|| format!("unterminated password of user_{name}"))?;
            users.insert(name, &value[..end])?;
            rest = &value[end + 1..];
        }
        if users.users.is_empty() {
            return Err("no user_<name>=\"<password>\" options".into());
        }
        Ok(users)
    }

    /// From `name=password` lines (`#` comments).
    pub fn from_properties_text(text: &str) -> Result<PlainUsers, String> {
        let mut users = PlainUsers::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (u, p) = line
                .split_once('=')
                .ok_or_else(|| format!("line {}: expected name=password", n + 1))?;
            users.insert(u.trim(), p.trim())?;
        }
        if users.users.is_empty() {
            return Err("no users".into());
        }
        Ok(users)
    }

    /// Whether `password` is `user`'s; the comparison takes the same time whatever matches.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        match self.users.get(user) {
            Some(h) => bool::from(h.ct_eq(&given)),
            None => {
                // Same work for unknown users.
                let _ = [0u8; 32].ct_eq(&given);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    /// RFC 7677 section 3's example exchange.
    #[test]
    fn rfc7677_sha256_vector() {
        let salt = base64::engine::general_purpose::STANDARD
            .decode("W22ZaJ0SNY7soEsUEjb6gQ==")
            .unwrap();
        let salted = ScramMechanism::Sha256.salted_password(b"pencil", &salt, 4096);
        let cred =
            ScramCredential::from_salted_password(ScramMechanism::Sha256, &salted, &salt, 4096)
                .unwrap();
        let mut s =
            ScramServer::with_nonce(ScramMechanism::Sha256, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        let first = s
            .step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", |u| {
                (u == "user").then(|| cred.clone())
            })
            .unwrap();
        assert_eq!(
            first,
            Step::Continue(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".to_vec()
            )
        );
        let done = s
            .step(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                |_| None,
            )
            .unwrap();
        assert_eq!(
            done,
            Step::Done {
                response: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec(),
                principal: "user".into()
            }
        );
    }

    /// A client, for round trips: (client-final, expected server signature).
    fn client_final(
        mech: ScramMechanism,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> (String, String) {
        let attrs = attributes(server_first).unwrap();
        let salt = base64::engine::general_purpose::STANDARD
            .decode(attrs["s"])
            .unwrap();
        let iterations: u32 = attrs["i"].parse().unwrap();
        let salted = mech.salted_password(password.as_bytes(), &salt, iterations);
        let client_key = mech.hmac(&salted, b"Client Key");
        let stored = mech.hash(&client_key);
        let without = format!("c=biws,r={}", attrs["r"]);
        let auth = format!("{client_first_bare},{server_first},{without}");
        let sig = mech.hmac(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let server_sig = mech.hmac(&mech.hmac(&salted, b"Server Key"), auth.as_bytes());
        (
            format!("{without},p={}", b64(&proof)),
            format!("v={}", b64(&server_sig)),
        )
    }

    fn exchange(password: &str, user: &str) -> Result<Step, SaslError> {
        let mech = ScramMechanism::Sha512;
        let cred = ScramCredential::from_password(mech, "s3cret", 4096).unwrap();
        let mut s = ScramServer::new(mech);
        let bare = format!("n={user},r=abcdefgh");
        let Step::Continue(first) = s
            .step(format!("n,,{bare}").as_bytes(), |u| {
                (u == "alice").then(|| cred.clone())
            })
            .unwrap()
        else {
            panic!("expected a challenge")
        };
        let first = String::from_utf8(first).unwrap();
        let (fin, expected) = client_final(mech, password, &bare, &first);
        let r = s.step(fin.as_bytes(), |_| None);
        if let Ok(Step::Done { response, .. }) = &r {
            assert_eq!(response, expected.as_bytes());
        }
        r
    }

    #[test]
    fn sha512_round_trip_and_failures_look_alike() {
        match exchange("s3cret", "alice").unwrap() {
            Step::Done { principal, .. } => assert_eq!(principal, "alice"),
            other => panic!("expected success, got {other:?}"),
        }
        let wrong = exchange("nope", "alice").unwrap_err();
        let unknown = exchange("s3cret", "bob").unwrap_err();
        assert_eq!(
            wrong, unknown,
            "an unknown user fails like a wrong password"
        );
        assert_eq!(wrong.kafka_code(), 58);
    }

    #[test]
    fn malformed_exchanges_fail_without_panicking() {
        let mech = ScramMechanism::Sha256;
        let cred = ScramCredential::from_password(mech, "pw", 4096).unwrap();
        for first in [
            &b"y,,n=alice,r=abc"[..],
            b"p=tls-server-end-point,,n=alice,r=abc",
            b"n,a=bob,n=alice,r=abc",
            b"n,,m=x,n=alice,r=abc",
            b"n,,n=al=ZZice,r=abc",
            b"n,,n=alice",
            b"n,,n=,r=abc",
            b"n,,n=alice,r=abc,tokenauth=true",
            b"\xff\xfe",
            b"",
        ] {
            let mut s = ScramServer::new(mech);
            assert!(s.step(first, |_| Some(cred.clone())).is_err(), "{first:?}");
        }
        let big = vec![b'a'; MAX_SASL_MESSAGE + 1];
        assert!(ScramServer::new(mech).step(&big, |_| None).is_err());
        // Bad finals: nonce, channel binding, proof.
        for fin in [
            "c=biws,r=other,p=AAAA",
            "c=biws,r={n}x,p=AAAA",
            "c=eSws,r={n},p=AAAA",
            "c=biws,r={n},p=***",
            "c=biws,r={n}",
            "c=biws,c=biws,r={n},p=AAAA",
        ] {
            let mut s = ScramServer::new(mech);
            let Ok(Step::Continue(first)) = s.step(b"n,,n=alice,r=abc", |_| Some(cred.clone()))
            else {
                panic!()
            };
            let nonce = attributes(std::str::from_utf8(&first).unwrap()).unwrap()["r"].to_string();
            let fin = fin.replace("{n}", &nonce);
            assert!(s.step(fin.as_bytes(), |_| None).is_err(), "{fin}");
            assert!(s.step(b"again", |_| None).is_err(), "a step after the end");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let cred = ScramCredential::from_password(ScramMechanism::Sha256, "pw", 4096).unwrap();
        for _ in 0..10_000 {
            let len = rng.gen_range(0..64);
            let mut msg = vec![0u8; len];
            rng.fill_bytes(&mut msg);
            if rng.gen_bool(0.3) {
                msg.splice(0..0, b"n,,n=a,r=".iter().copied());
            }
            let mut s = ScramServer::new(ScramMechanism::Sha256);
            let _ = s.step(&msg, |_| Some(cred.clone()));
            let _ = s.step(&msg, |_| None);
            let _ = parse_plain(&msg);
        }
    }

    #[test]
    fn credentials_refused_like_kafka() {
        let m = ScramMechanism::Sha256;
        assert!(ScramCredential::from_salted_password(m, b"x", b"s", 4095).is_err());
        assert!(ScramCredential::from_salted_password(m, b"x", b"s", 16385).is_err());
        assert!(ScramCredential::from_salted_password(m, b"x", b"", 4096).is_err());
        assert!(ScramCredential::from_salted_password(m, b"", b"s", 4096).is_err());
        assert_eq!(
            ScramCredential::from_salted_password(m, b"x", b"s", 100)
                .unwrap_err()
                .kafka_code(),
            93
        );
        assert_eq!(
            ScramMechanism::from_type_id(2),
            Some(ScramMechanism::Sha512)
        );
        assert_eq!(ScramMechanism::from_name("scram-sha-256"), Some(m));
    }

    #[test]
    fn plain_tokens_and_users() {
        assert_eq!(
            parse_plain(b"\0bob\0pw").unwrap(),
            PlainCredentials {
                username: "bob".into(),
                password: "pw".into()
            }
        );
        assert!(parse_plain(b"bob\0bob\0pw").is_ok());
        for bad in [
            &b"alice\0bob\0pw"[..],
            b"\0bob\0",
            b"\0\0pw",
            b"bob",
            b"\0a\0b\0c",
        ] {
            assert!(parse_plain(bad).is_err(), "{bad:?}");
        }
        let u = PlainUsers::from_jaas(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice = "alice pw";"#,
        )
        .unwrap();
        assert!(u.verify("admin", "admin-secret"));
        assert!(u.verify("alice", "alice pw"));
        assert!(!u.verify("alice", "admin-secret"));
        assert!(!u.verify("nobody", "x"));
        assert!(PlainUsers::from_jaas("PlainLoginModule required;").is_err());
        assert!(PlainUsers::from_jaas(r#"user_x=unquoted;"#).is_err());
        assert!(PlainUsers::from_jaas(r#"user_x="open"#).is_err());
        let f = PlainUsers::from_properties_text("# users\nbob = b\ncarol=c\n").unwrap();
        assert!(f.verify("bob", "b") && f.verify("carol", "c"));
        assert!(PlainUsers::from_properties_text("nobody").is_err());
    }
}
