//! `/users`: SCRAM users (KIP-554): who has credentials for which mechanism, a form that
//! creates a user or rotates a password, and deletion with a typed confirmation. No
//! password or salted key is ever shown: the cluster returns only mechanisms and iterations.

use askama::Template;
use serde::Serialize;

use crate::{FormState, Layout};

/// One SCRAM credential of a user.
#[derive(Debug, Clone, Serialize)]
pub struct ScramCredentialView {
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    /// PBKDF2 iterations.
    pub iterations: i32,
}

/// One user.
#[derive(Debug, Clone, Serialize)]
pub struct ScramUserRow {
    /// The user name (the principal is `User:<name>`).
    pub user: String,
    /// Its credentials.
    pub credentials: Vec<ScramCredentialView>,
}

impl ScramUserRow {
    /// Where its delete form posts (the name percent-encoded: SCRAM names may hold any
    /// character).
    pub fn delete_path(&self) -> String {
        format!("/users/{}/delete", crate::format::path_segment(&self.user))
    }
}

/// `/users`.
#[derive(Debug, Template, Serialize)]
#[template(path = "users.html")]
pub struct UsersPage {
    /// Frame.
    pub layout: Layout,
    /// Users with SCRAM credentials, by name.
    pub users: Vec<ScramUserRow>,
    /// Why the users could not be listed.
    pub error: Option<String>,
    /// The mechanisms offered.
    pub mechanisms: Vec<String>,
    /// Default PBKDF2 iterations for the form (Kafka's tools use 4096).
    pub default_iterations: u32,
    /// The forms after an error.
    pub form: FormState,
}
