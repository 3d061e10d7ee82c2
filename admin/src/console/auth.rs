//! Console logins, on when `--users-file` is given (off in `rill dev`).
//!
//! - Users come from a file of `name:role:argon2-hash` lines (`rill console --hash-password`
//!   makes the hash); roles are `admin` (everything), `operator` (every change but
//!   deleting topics and groups) and `viewer` (read only: 403 on every change).
//! - A login sets a session cookie `user|role|expiry|hmac` signed with HMAC-SHA256 under a
//!   secret that is random per process unless `--session-secret-file` gives one (so
//!   sessions survive restarts and several consoles can share them).
//! - Every form carries a CSRF token (HMAC of the session), checked on every POST made
//!   with the cookie; JSON clients send it as `X-CSRF-Token`, or use HTTP Basic auth
//!   (never sent by a browser on its own, so no token is needed).
//! - The middleware puts the user in a task-local for the handler's duration, so pages
//!   render the user and token and the audit log records who did what.

use std::collections::HashMap;
use std::path::Path;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

/// Cookie name of the session.
pub const SESSION_COOKIE: &str = "rill_session";
/// Form field and header carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";
/// How long a session lasts.
const SESSION_SECS: i64 = 12 * 3600;

/// A role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read only.
    Viewer,
    /// Changes except deletions.
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// Who is making the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUser {
    /// User name (`anonymous` without auth).
    pub name: String,
    /// Role.
    pub role: Role,
    /// The CSRF token for this session (empty without auth or with Basic auth).
    pub csrf: String,
}

tokio::task_local! {
    /// The user of the request being handled.
    pub static CURRENT: CurrentUser;
}

/// The logged-in user of the current request, if there is one.
pub fn logged_in() -> Option<CurrentUser> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The current request's user (`anonymous` admin without auth).
pub fn current() -> CurrentUser {
    CURRENT
        .try_with(Clone::clone)
        .unwrap_or_else(|_| CurrentUser {
            name: "anonymous".into(),
            role: Role::Admin,
            csrf: String::new(),
        })
}

/// Problems with the users or secret file.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A users-file line is malformed.
    #[error("{path}:{line}: {message}")]
    BadLine {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Hashing failed.
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

struct User {
    role: Role,
    hash: String,
}

/// The configured users and the session secret.
pub struct Auth {
    users: HashMap<String, User>,
    secret: Vec<u8>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

/// An argon2 hash (PHC string) of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    salt.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Auth {
    /// Loads `name:role:hash` lines (blank lines and `#` comments skipped) and the secret.
    pub fn load(users_file: &Path, secret_file: Option<&Path>) -> Result<Auth, AuthError> {
        let path = users_file.display().to_string();
        let text = std::fs::read_to_string(users_file).map_err(|source| AuthError::Read {
            path: path.clone(),
            source,
        })?;
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |message: &str| AuthError::BadLine {
                path: path.clone(),
                line: i + 1,
                message: message.into(),
            };
            let mut parts = line.splitn(3, ':');
            let (Some(name), Some(role), Some(hash)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad("expected name:role:argon2-hash"));
            };
            let role =
                Role::parse(role).ok_or_else(|| bad("role must be admin, operator or viewer"))?;
            if name.is_empty() || name.contains('|') {
                return Err(bad("a user name must be non-empty and without '|'"));
            }
            PasswordHash::new(hash)
                .map_err(|_| bad("not an argon2 hash (use rill console --hash-password)"))?;
            users.insert(
                name.to_string(),
                User {
                    role,
                    hash: hash.to_string(),
                },
            );
        }
        let secret = match secret_file {
            Some(p) => std::fs::read(p).map_err(|source| AuthError::Read {
                path: p.display().to_string(),
                source,
            })?,
            None => [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
                .iter()
                .flat_map(|u| *u.as_bytes())
                .collect(),
        };
        Ok(Auth { users, secret })
    }

    /// The user's role when `password` is right.
    pub fn verify(&self, name: &str, password: &str) -> Option<Role> {
        let user = self.users.get(name)?;
        let hash = PasswordHash::new(&user.hash).ok()?;
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .ok()
            .map(|()| user.role)
    }

    fn sign(&self, data: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        match Hmac::<Sha256>::new_from_slice(&self.secret) {
            Ok(mut mac) => {
                mac.update(data.as_bytes());
                hex(&mac.finalize().into_bytes())
            }
            Err(_) => String::new(),
        }
    }

    /// A session cookie value for `name` with `role`, valid from `now_s`.
    pub fn session(&self, name: &str, role: Role, now_s: i64) -> String {
        let data = format!("{name}|{}|{}", role.as_str(), now_s + SESSION_SECS);
        let sig = self.sign(&data);
        format!("{data}|{sig}")
    }

    /// The user of a valid, unexpired session cookie value (whose user still exists).
    pub fn check_session(&self, value: &str, now_s: i64) -> Option<CurrentUser> {
        let (data, sig) = value.rsplit_once('|')?;
        if !constant_time_eq(self.sign(data).as_bytes(), sig.as_bytes()) {
            return None;
        }
        let mut parts = data.split('|');
        let (name, role, expiry) = (parts.next()?, parts.next()?, parts.next()?);
        let expiry: i64 = expiry.parse().ok()?;
        let role = Role::parse(role)?;
        if expiry < now_s || self.users.get(name).map(|u| u.role) != Some(role) {
            return None;
        }
        Some(CurrentUser {
            name: name.to_string(),
            role,
            csrf: self.sign(&format!("csrf|{value}")),
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What `role` may do with a POST to `path`.
pub fn allowed(role: Role, path: &str) -> bool {
    match role {
        Role::Admin => true,
        Role::Viewer => false,
        // Security (ACLs, SCRAM users) is the admin's: an operator could grant themselves
        // anything through it. So is aborting a transaction: it discards another
        // application's writes for good.
        Role::Operator => {
            let under = |area: &str| path == area || path.starts_with(&format!("{area}/"));
            !(path.ends_with("/delete")
                || under("/acls")
                || under("/users")
                || under("/transactions"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_signed_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("users");
        let h = hash_password("pw").unwrap();
        std::fs::write(&f, format!("# users\nalice:admin:{h}\nbob:viewer:{h}\n")).unwrap();
        let auth = Auth::load(&f, None).unwrap();
        assert_eq!(auth.verify("alice", "pw"), Some(Role::Admin));
        assert_eq!(auth.verify("alice", "wrong"), None);
        assert_eq!(auth.verify("carol", "pw"), None);
        let s = auth.session("bob", Role::Viewer, 1000);
        let u = auth.check_session(&s, 1001).unwrap();
        assert_eq!((u.name.as_str(), u.role), ("bob", Role::Viewer));
        assert!(!u.csrf.is_empty());
        assert!(
            auth.check_session(&s, 1000 + SESSION_SECS + 1).is_none(),
            "expired"
        );
        let forged = s.replace("|viewer|", "|admin|");
        assert!(auth.check_session(&forged, 1001).is_none(), "forged role");
        assert!(!allowed(Role::Viewer, "/topics"));
        assert!(allowed(Role::Operator, "/topics/x/configs"));
        assert!(!allowed(Role::Operator, "/topics/x/delete"));
        std::fs::write(&f, "alice:root:x\n").unwrap();
        assert!(Auth::load(&f, None).is_err());
    }
}
