//! Who may read the HTTP API: a bearer token (`http.auth.token`), HTTP Basic users with
//! argon2 hashes (`http.auth.basic.users.file`, `name:hash` lines as `rill console
//! --hash-password` prints the hash), or both, either credential passing. The probes
//! (`/healthz`, `/readyz`) stay open for load balancers and orchestrators.
//!
//! Argon2 is slow on purpose (tens of milliseconds and ~19 MiB per check with the default
//! parameters), and Basic auth sends the password with every request: a Prometheus scraping
//! every 15 s would pay that on every scrape. So successful checks are cached (the user name
//! and a salted SHA-256 of the password, never the password itself; at most
//! [`MAX_CACHED_LOGINS`] entries, cleared when full), and checks run on the blocking pool, at
//! most [`MAX_CONCURRENT_VERIFICATIONS`] at a time, so a flood of wrong passwords costs a
//! bounded share of CPU and memory rather than the node. An unknown user is checked against a
//! real user's hash and refused whatever the outcome, so it costs and looks exactly like a
//! wrong password. A malformed header (not base64, no colon, not UTF-8, longer than
//! [`MAX_AUTHORIZATION_BYTES`]) is a 401 like any other refusal, never an error path.
//!
//! The users file is read once at start; a change takes a restart.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::config::http::HttpConfig;
use crate::repeated::Repeated;

/// The most successful Basic logins remembered (user and password digest); the cache is
/// cleared when it is full, so it stays small whatever the number of users.
pub const MAX_CACHED_LOGINS: usize = 64;

/// How many argon2 checks run at once; further requests with uncached Basic credentials wait.
pub const MAX_CONCURRENT_VERIFICATIONS: usize = 2;

/// The longest `Authorization` header looked at; longer ones are refused unread.
pub const MAX_AUTHORIZATION_BYTES: usize = 4096;

/// The largest users file read (thousands of users fit in far less).
pub const MAX_USERS_FILE_BYTES: u64 = 1 << 20;

/// The HTTP API's credentials and the state of checking them.
pub struct HttpAuth {
    token: Option<String>,
    users: Option<BasicUsers>,
    /// Successful Basic logins: user name to the salted digest of the password that worked.
    cache: Mutex<HashMap<String, [u8; 32]>>,
    /// Random per process, so the cached digests are useless outside it.
    cache_salt: [u8; 32],
    verifications: Arc<Semaphore>,
    refusals: Repeated,
}

/// The Basic users: name to argon2 PHC hash.
struct BasicUsers {
    hashes: HashMap<String, String>,
    /// A real user's hash, checked for unknown users so they cost what a wrong password does.
    decoy: String,
}

/// What an `Authorization` header carries.
#[derive(Debug, PartialEq, Eq)]
enum Credentials {
    Bearer(Vec<u8>),
    Basic {
        user: String,
        password: String,
    },
    /// Absent, malformed, too long, or another scheme.
    Unusable,
}

impl HttpAuth {
    /// No credentials configured: every request passes.
    pub fn open() -> HttpAuth {
        HttpAuth::with(None, None)
    }

    fn with(token: Option<String>, users: Option<BasicUsers>) -> HttpAuth {
        HttpAuth {
            token,
            users,
            cache: Mutex::new(HashMap::new()),
            cache_salt: rand::random(),
            verifications: Arc::new(Semaphore::new(MAX_CONCURRENT_VERIFICATIONS)),
            refusals: Repeated::default(),
        }
    }

    /// Reads the configured credentials (the users file, when set); the error is one line
    /// naming the key, the file and, for a bad entry, its line number.
    pub fn load(cfg: &HttpConfig) -> Result<HttpAuth, String> {
        let users = match &cfg.basic_users_file {
            None => None,
            Some(path) => Some(read_users(path)?),
        };
        Ok(HttpAuth::with(cfg.token.clone(), users))
    }

    /// Whether requests need credentials.
    pub fn required(&self) -> bool {
        self.token.is_some() || self.users.is_some()
    }

    /// Whether the request's `Authorization` header carries a valid credential.
    pub async fn check(&self, headers: &HeaderMap) -> bool {
        if !self.required() {
            return true;
        }
        let creds = headers
            .get(header::AUTHORIZATION)
            .map_or(Credentials::Unusable, parse);
        let (kind, ok) = match creds {
            Credentials::Bearer(given) => ("bearer", self.bearer_matches(&given)),
            Credentials::Basic { user, password } => {
                ("basic", self.basic_matches(user, password).await)
            }
            // Clients first try without credentials (curl, browsers): not worth a log line.
            Credentials::Unusable if !headers.contains_key(header::AUTHORIZATION) => return false,
            Credentials::Unusable => ("malformed", false),
        };
        if !ok {
            if let Some(left_out) = self.refusals.check(kind) {
                tracing::warn!(
                    scheme = kind,
                    left_out,
                    "HTTP API request refused: wrong or malformed credentials"
                );
            }
        }
        ok
    }

    /// `Bearer <token>` against `http.auth.token`, in constant time.
    fn bearer_matches(&self, given: &[u8]) -> bool {
        let Some(token) = &self.token else {
            return false;
        };
        let a = Sha256::digest(given);
        let b = Sha256::digest(token.as_bytes());
        bool::from(a.ct_eq(&b))
    }

    /// `Basic` credentials against the users file: from the cache, else one argon2 check on
    /// the blocking pool (bounded by [`MAX_CONCURRENT_VERIFICATIONS`]).
    async fn basic_matches(&self, user: String, password: String) -> bool {
        let Some(users) = &self.users else {
            return false;
        };
        let digest = self.digest(&password);
        if self.cached(&user, &digest) {
            return true;
        }
        let (hash, known) = match users.hashes.get(&user) {
            Some(h) => (h.clone(), true),
            None => (users.decoy.clone(), false),
        };
        let Ok(permit) = self.verifications.clone().acquire_owned().await else {
            return false;
        };
        // The permit goes with the check: a client that hangs up mid-check does not free
        // its slot while argon2 still runs for it.
        let verified = tokio::task::spawn_blocking(move || {
            let ok = verify(&password, &hash);
            drop(permit);
            ok
        })
        .await
        .unwrap_or(false);
        let ok = verified && known;
        if ok {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= MAX_CACHED_LOGINS {
                cache.clear();
            }
            cache.insert(user, digest);
        }
        ok
    }

    fn digest(&self, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.cache_salt);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    fn cached(&self, user: &str, digest: &[u8; 32]) -> bool {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(user).is_some_and(|d| bool::from(d.ct_eq(digest)))
    }

    /// The 401 answer: a challenge for each configured scheme.
    pub fn challenge(&self) -> Response {
        let mut headers = HeaderMap::new();
        let mut wanted = Vec::new();
        if self.users.is_some() {
            headers.append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"rill\", charset=\"UTF-8\""),
            );
            wanted.push("Basic (http.auth.basic.users.file)");
        }
        if self.token.is_some() {
            headers.append(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            wanted.push("Bearer (http.auth.token)");
        }
        (
            StatusCode::UNAUTHORIZED,
            headers,
            format!("credentials are required: {}\n", wanted.join(" or ")),
        )
            .into_response()
    }
}

/// Middleware: the request runs when its credentials pass, else 401 with the challenge.
pub async fn require(State(auth): State<Arc<HttpAuth>>, req: Request, next: Next) -> Response {
    if auth.check(req.headers()).await {
        next.run(req).await
    } else {
        auth.challenge()
    }
}

/// Parses an `Authorization` value; anything odd is [`Credentials::Unusable`].
fn parse(value: &HeaderValue) -> Credentials {
    let raw = value.as_bytes();
    if raw.len() > MAX_AUTHORIZATION_BYTES {
        return Credentials::Unusable;
    }
    let Some(space) = raw.iter().position(|b| *b == b' ') else {
        return Credentials::Unusable;
    };
    let (scheme, rest) = (&raw[..space], raw[space + 1..].trim_ascii());
    if scheme.eq_ignore_ascii_case(b"Bearer") {
        return Credentials::Bearer(rest.to_vec());
    }
    if !scheme.eq_ignore_ascii_case(b"Basic") {
        return Credentials::Unusable;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
        return Credentials::Unusable;
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return Credentials::Unusable;
    };
    // RFC 7617: the user id cannot contain a colon; the password may.
    match text.split_once(':') {
        Some((user, password)) => Credentials::Basic {
            user: user.to_string(),
            password: password.to_string(),
        },
        None => Credentials::Unusable,
    }
}

/// One argon2 check (slow: run it on the blocking pool).
fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Reads `name:argon2-hash` lines (blank lines and `#` comments skipped).
fn read_users(path: &Path) -> Result<BasicUsers, String> {
    use std::io::Read;
    const KEY: &str = "http.auth.basic.users.file";
    let file = std::fs::File::open(path)
        .map_err(|e| format!("{KEY}: cannot open {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_USERS_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{KEY}: cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_USERS_FILE_BYTES {
        return Err(format!(
            "{KEY}: {} is larger than {MAX_USERS_FILE_BYTES} bytes",
            path.display()
        ));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("{KEY}: {} is not UTF-8 text", path.display()))?;
    let users = parse_users(&text)
        .map_err(|(line, why)| format!("{KEY}: {} line {line}: {why}", path.display()))?;
    if users.hashes.is_empty() {
        return Err(format!(
            "{KEY}: {} has no users (lines of name:argon2-hash, made with rill console --hash-password)",
            path.display()
        ));
    }
    Ok(users)
}

/// The users of a file's text; `Err((line number, why))` for the first bad line.
fn parse_users(text: &str) -> Result<BasicUsers, (usize, String)> {
    let mut hashes = HashMap::new();
    let mut decoy = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, hash)) = line.split_once(':') else {
            return Err((n, "expected name:argon2-hash".into()));
        };
        let (name, hash) = (name.trim(), hash.trim());
        if name.is_empty() {
            return Err((n, "the user name is empty".into()));
        }
        check_hash(hash).map_err(|why| (n, why))?;
        if hashes.insert(name.to_string(), hash.to_string()).is_some() {
            return Err((n, format!("user {name:?} is listed twice")));
        }
        decoy.get_or_insert_with(|| hash.to_string());
    }
    Ok(BasicUsers {
        hashes,
        decoy: decoy.unwrap_or_default(),
    })
}

/// Whether `hash` is an argon2 PHC string this build can check.
fn check_hash(hash: &str) -> Result<(), String> {
    const HINT: &str = "not an argon2 hash (make one with rill console --hash-password)";
    let h = PasswordHash::new(hash).map_err(|_| HINT.to_string())?;
    argon2::Algorithm::try_from(h.algorithm).map_err(|_| HINT.to_string())?;
    argon2::Params::try_from(&h).map_err(|e| format!("unusable argon2 parameters: {e}"))?;
    if h.salt.is_none() || h.hash.is_none() {
        return Err(HINT.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};

    fn hash(password: &str) -> String {
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .expect("hash")
            .to_string()
    }

    fn value(v: &str) -> HeaderValue {
        HeaderValue::from_str(v).expect("header value")
    }

    fn basic(s: &[u8]) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }

    #[test]
    fn parses_the_schemes_and_refuses_what_is_malformed() {
        assert_eq!(
            parse(&value(&basic(b"alice:pa:ss"))),
            Credentials::Basic {
                user: "alice".into(),
                password: "pa:ss".into()
            }
        );
        assert_eq!(
            parse(&value("bearer t0k")),
            Credentials::Bearer(b"t0k".to_vec())
        );
        let long = format!("Basic {}", "A".repeat(MAX_AUTHORIZATION_BYTES));
        for bad in [
            "Basic !!!".to_string(),
            basic(b"no-colon"),
            basic(&[0xff, 0xfe, b':', 0xfd]),
            "Basic".into(),
            "Digest abc".into(),
            long,
        ] {
            assert_eq!(parse(&value(&bad)), Credentials::Unusable, "{bad}");
        }
        let opaque = HeaderValue::from_bytes(b"Basic \xff\xfe").expect("obs-text");
        assert_eq!(parse(&opaque), Credentials::Unusable);
    }

    #[test]
    fn users_file_lines_are_checked() {
        let h = hash("pw");
        let u = parse_users(&format!("# ops\n\nalice:{h}\nbob : {h}\n")).expect("users");
        assert_eq!(u.hashes.len(), 2);
        assert_eq!(u.decoy, h);
        for (text, line, why) in [
            (format!("alice:{h}\nbob\n"), 2, "expected name:argon2-hash"),
            (format!(":{h}"), 1, "empty"),
            ("alice:admin:$argon2id$x".to_string(), 1, "argon2 hash"),
            (
                "alice:$pbkdf2-sha256$i=1$c2FsdA$aGFzaA".to_string(),
                1,
                "argon2 hash",
            ),
            (format!("a:{h}\na:{h}"), 2, "twice"),
        ] {
            let Err((n, e)) = parse_users(&text) else {
                panic!("{text} accepted");
            };
            assert_eq!(n, line, "{text}");
            assert!(e.contains(why), "{e}");
        }
    }

    #[tokio::test]
    async fn basic_logins_are_checked_cached_and_bounded() {
        let h = hash("right");
        let auth = HttpAuth::with(
            None,
            Some(parse_users(&format!("alice:{h}\n")).expect("users")),
        );
        let headers = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::AUTHORIZATION, value(v));
            m
        };
        assert!(!auth.check(&HeaderMap::new()).await);
        assert!(!auth.check(&headers(&basic(b"alice:wrong"))).await);
        assert!(!auth.check(&headers(&basic(b"mallory:right"))).await);
        assert!(!auth.check(&headers("Bearer right")).await);
        assert!(
            auth.cache.lock().unwrap().is_empty(),
            "failures are not cached"
        );
        assert!(auth.check(&headers(&basic(b"alice:right"))).await);
        assert_eq!(auth.cache.lock().unwrap().len(), 1);
        assert!(auth.check(&headers(&basic(b"alice:right"))).await);
        assert!(!auth.check(&headers(&basic(b"alice:wrong"))).await);
        // The cache is cleared when full, never grows past its bound.
        {
            let mut c = auth.cache.lock().unwrap();
            for i in 0..MAX_CACHED_LOGINS - 1 {
                c.insert(format!("u{i}"), [0; 32]);
            }
        }
        assert!(auth.check(&headers(&basic(b"alice:right"))).await);
        assert!(auth.cache.lock().unwrap().len() <= MAX_CACHED_LOGINS);
    }

    #[tokio::test]
    async fn either_credential_passes_when_both_are_configured() {
        let h = hash("pw");
        let auth = HttpAuth::with(
            Some("tok".into()),
            Some(parse_users(&format!("alice:{h}\n")).expect("users")),
        );
        let mut m = HeaderMap::new();
        m.insert(header::AUTHORIZATION, value("Bearer tok"));
        assert!(auth.check(&m).await);
        m.insert(header::AUTHORIZATION, value(&basic(b"alice:pw")));
        assert!(auth.check(&m).await);
        m.insert(header::AUTHORIZATION, value("Bearer nope"));
        assert!(!auth.check(&m).await);
        let r = auth.challenge();
        let challenges: Vec<_> = r
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(challenges[0].starts_with("Basic realm=\"rill\""));
        assert_eq!(challenges[1], "Bearer");
        assert!(HttpAuth::open().check(&HeaderMap::new()).await);
    }
}
