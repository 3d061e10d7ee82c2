//! `/users`: SCRAM users (KIP-554). The list is read from the cluster on each visit
//! (DescribeUserScramCredentials: mechanisms and iterations, never a key); a user is created
//! or a password rotated by one upsert (salted in `rill_client`, so no password crosses the
//! wire or reaches the audit log); a user is deleted with all their mechanisms after the name
//! is typed again.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rill_client::security::SaslMechanism;
use rill_client::users::{ScramChange, DEFAULT_SCRAM_ITERATIONS};
use rill_web::views::{ScramCredentialView, ScramUserRow, UsersPage};
use rill_web::FormState;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{audit, refresh};
use crate::console::http::{
    done, error_page, form_state, json_error, layout, lenient, respond, wants_json, AppState,
    ConsoleError, FormOrJson, Notice,
};
use crate::console::state::Console;

/// The SCRAM mechanisms offered, strongest first.
const MECHANISMS: [SaslMechanism; 2] = [SaslMechanism::ScramSha512, SaslMechanism::ScramSha256];
/// Kafka's bounds on SCRAM iterations.
const MIN_ITERATIONS: i64 = 4096;
const MAX_ITERATIONS: i64 = 16384;
/// Longest user name and password the form takes (bounded input; Kafka has no limit of
/// its own below the request size).
const MAX_USER_NAME: usize = 256;
const MAX_PASSWORD: usize = 1024;

/// GET `/users`.
pub async fn list(
    State(c): AppState,
    headers: HeaderMap,
    axum::extract::Query(n): axum::extract::Query<Notice>,
) -> Response {
    let view = page(&c, FormState::default(), n.notice).await;
    respond(&headers, StatusCode::OK, &view)
}

async fn page(c: &Console, form: FormState, notice: Option<String>) -> UsersPage {
    let (users, error) = match c.cluster().describe_scram_users(&[]).await {
        Ok(mut users) => {
            users.sort_by(|a, b| a.user.cmp(&b.user));
            let rows = users
                .into_iter()
                .map(|u| ScramUserRow {
                    user: u.user,
                    credentials: u
                        .credentials
                        .into_iter()
                        .map(|(mechanism, iterations)| ScramCredentialView {
                            mechanism,
                            iterations,
                        })
                        .collect(),
                })
                .collect();
            (rows, None)
        }
        Err(e) => (
            Vec::new(),
            Some(format!("The SCRAM users could not be read: {e}")),
        ),
    };
    UsersPage {
        layout: layout(c, "Users", "users", notice),
        users,
        error,
        mechanisms: MECHANISMS.iter().map(|m| m.name().to_string()).collect(),
        default_iterations: DEFAULT_SCRAM_ITERATIONS,
        form,
    }
}

/// Body of POST `/users`. Never serialised whole: the audit log gets [`AuditedUpsert`].
#[derive(Debug, Deserialize, Default)]
pub struct UpsertInput {
    #[serde(default, deserialize_with = "lenient")]
    user: String,
    #[serde(default, deserialize_with = "lenient")]
    mechanism: String,
    #[serde(default, deserialize_with = "lenient")]
    iterations: String,
    #[serde(default, deserialize_with = "lenient")]
    password: String,
    #[serde(default, deserialize_with = "lenient")]
    password_confirm: String,
}

/// What the audit log records of an upsert: everything but the password.
#[derive(Debug, Serialize)]
struct AuditedUpsert<'a> {
    user: &'a str,
    mechanism: &'a str,
    iterations: &'a str,
}

impl UpsertInput {
    /// Values to re-show after an error (passwords are never echoed back).
    fn values(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("user".into(), self.user.clone()),
            ("mechanism".into(), self.mechanism.clone()),
            ("iterations".into(), self.iterations.clone()),
        ])
    }
}

fn user_name(field: &str, user: &str) -> Result<String, ConsoleError> {
    let user = user.trim();
    if user.is_empty() {
        return Err(ConsoleError::invalid(field, "a user name is required"));
    }
    if user.len() > MAX_USER_NAME {
        return Err(ConsoleError::invalid(
            field,
            format!("a user name has at most {MAX_USER_NAME} bytes"),
        ));
    }
    if user.chars().any(char::is_control) {
        return Err(ConsoleError::invalid(
            field,
            "a user name has no control characters",
        ));
    }
    Ok(user.to_string())
}

/// POST `/users`: creates a user, or replaces their password for the mechanism.
pub async fn upsert(
    State(c): AppState,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<UpsertInput>,
) -> Response {
    let existed = c
        .cluster()
        .describe_scram_users(&[])
        .await
        .ok()
        .map(|us| us.iter().any(|u| u.user == input.user.trim()));
    let result = save(&c, &input).await;
    let audited = AuditedUpsert {
        user: input.user.trim(),
        mechanism: input.mechanism.trim(),
        iterations: input.iterations.trim(),
    };
    let action = match existed {
        Some(true) => "rotate-scram-user",
        Some(false) => "create-scram-user",
        // The list could not be read: whether this creates or rotates is not known.
        None => "upsert-scram-user",
    };
    audit(&c, action, input.user.trim(), &audited, &result).await;
    match result {
        Ok((user, mechanism)) => {
            refresh(&c).await;
            let what = if existed == Some(true) {
                "password changed"
            } else {
                "saved"
            };
            done(
                &headers,
                "/users",
                &format!("User {user} {what} ({})", mechanism.name()),
                json!({ "saved": user, "mechanism": mechanism.name(), "existed": existed }),
            )
        }
        Err(e) => failed(&c, &headers, "scram-user", e, input.values()).await,
    }
}

async fn save(c: &Console, input: &UpsertInput) -> Result<(String, SaslMechanism), ConsoleError> {
    let user = user_name("user", &input.user)?;
    let mechanism = SaslMechanism::parse(input.mechanism.trim())
        .filter(|m| MECHANISMS.contains(m))
        .ok_or_else(|| {
            ConsoleError::invalid(
                "mechanism",
                "the mechanism is SCRAM-SHA-256 or SCRAM-SHA-512",
            )
        })?;
    let iterations = if input.iterations.trim().is_empty() {
        DEFAULT_SCRAM_ITERATIONS
    } else {
        crate::console::validate::int_in(
            "iterations",
            &input.iterations,
            MIN_ITERATIONS,
            MAX_ITERATIONS,
        )? as u32
    };
    if input.password.is_empty() {
        return Err(ConsoleError::invalid("password", "a password is required"));
    }
    if input.password.len() > MAX_PASSWORD {
        return Err(ConsoleError::invalid(
            "password",
            format!("a password has at most {MAX_PASSWORD} bytes"),
        ));
    }
    if input.password != input.password_confirm {
        return Err(ConsoleError::invalid(
            "password_confirm",
            "the two passwords differ",
        ));
    }
    let change = ScramChange::Upsert {
        user: user.clone(),
        mechanism,
        iterations,
        password: input.password.clone(),
    };
    for (_, r) in c.cluster().alter_scram_users(&[change]).await? {
        r?;
    }
    Ok((user, mechanism))
}

/// Body of POST `/users/{name}/delete`.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct DeleteInput {
    #[serde(default, deserialize_with = "lenient")]
    confirm: String,
}

/// POST `/users/{name}/delete`: removes every SCRAM credential of the user.
pub async fn delete(
    State(c): AppState,
    Path(name): Path<String>,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<DeleteInput>,
) -> Response {
    let result = remove(&c, &name, &input).await;
    audit(&c, "delete-scram-user", &name, &input, &result).await;
    match result {
        Ok(mechanisms) => {
            refresh(&c).await;
            done(
                &headers,
                "/users",
                &format!("User {name} deleted"),
                json!({ "deleted": name, "mechanisms": mechanisms }),
            )
        }
        Err(e) => failed(&c, &headers, "delete-user", e, BTreeMap::new()).await,
    }
}

async fn remove(c: &Console, name: &str, input: &DeleteInput) -> Result<Vec<String>, ConsoleError> {
    if input.confirm != name {
        return Err(ConsoleError::invalid(
            "confirm",
            "type the user's name exactly to confirm the deletion",
        ));
    }
    let users = c.cluster().describe_scram_users(&[]).await?;
    let Some(user) = users.iter().find(|u| u.user == name) else {
        return Err(ConsoleError::NotFound(format!("no SCRAM user '{name}'")));
    };
    let changes: Vec<ScramChange> = user
        .credentials
        .iter()
        .filter_map(|(m, _)| SaslMechanism::parse(m))
        .map(|mechanism| ScramChange::Delete {
            user: name.to_string(),
            mechanism,
        })
        .collect();
    for (_, r) in c.cluster().alter_scram_users(&changes).await? {
        r?;
    }
    Ok(user.credentials.iter().map(|(m, _)| m.clone()).collect())
}

async fn failed(
    c: &Console,
    headers: &HeaderMap,
    form: &str,
    e: ConsoleError,
    values: BTreeMap<String, String>,
) -> Response {
    let (status, field) = e.status_and_field(&|_, _| String::new());
    if wants_json(headers) {
        return json_error(status, &field, &e.to_string());
    }
    if status == StatusCode::NOT_FOUND {
        return error_page(c, headers, status, &field, &e.to_string());
    }
    let view = page(c, form_state(form, field, e.to_string(), values), None).await;
    respond(headers, status, &view)
}
