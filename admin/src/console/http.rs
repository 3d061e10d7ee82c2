//! What every handler shares: content negotiation (HTML or JSON from one view), the page
//! frame, errors as responses, a body extractor taking forms and JSON alike, and the
//! non-page routes (`/metrics`, assets, 404).

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use rill_client::ClientError;
use rill_web::views::ErrorPage;
use rill_web::{FieldError, FormState, Layout};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;

use super::state::Console;
use super::store::StoreError;

/// The state every handler gets.
pub type AppState = State<Arc<Console>>;

/// True when the client asked for JSON (Accept) or sent JSON (Content-Type).
pub fn wants_json(headers: &HeaderMap) -> bool {
    let has = |h: header::HeaderName| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"))
    };
    has(header::ACCEPT) || has(header::CONTENT_TYPE)
}

/// Renders `view` as HTML or JSON as the client asked.
pub fn respond<T: Template + Serialize>(
    headers: &HeaderMap,
    status: StatusCode,
    view: &T,
) -> Response {
    if wants_json(headers) {
        return (status, Json(view)).into_response();
    }
    match view.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error\n").into_response()
        }
    }
}

/// The frame of a page from the current snapshot and health.
pub fn layout(console: &Console, title: &str, nav: &str, notice: Option<String>) -> Layout {
    let snap = console.shared.snapshot();
    let health = console.shared.health();
    let banner = if health.checked_at_ms == 0 {
        Some("Collecting the cluster's state for the first time…".to_string())
    } else if !health.reachable {
        Some(format!(
            "Cluster unreachable: {}. Showing data from {}.",
            health.error.as_deref().unwrap_or("unknown error"),
            if snap.taken_at_ms == 0 {
                "never".to_string()
            } else {
                rill_web::format::time(snap.taken_at_ms)
            }
        ))
    } else {
        let down = snap.down_brokers();
        (!down.is_empty()).then(|| {
            let names: Vec<String> = down
                .iter()
                .map(|b| {
                    format!(
                        "broker {} ({}, {})",
                        b.id,
                        b.address,
                        b.error.as_deref().unwrap_or(b.state.as_str())
                    )
                })
                .collect();
            let up: Vec<String> = snap
                .brokers
                .iter()
                .filter(|b| b.state == rill_web::model::BrokerState::Up)
                .map(|b| b.id.to_string())
                .collect();
            format!(
                "Not answering: {}. Pages show data from the brokers that answer ({}); figures that only those brokers hold are the last ones measured.",
                names.join("; "),
                if up.is_empty() { "none".to_string() } else { up.join(", ") }
            )
        })
    };
    let user = super::auth::logged_in().filter(|_| console.auth.is_some());
    Layout {
        user: user.as_ref().map(|u| u.name.clone()),
        role: user.as_ref().map(|u| u.role.as_str().to_string()),
        csrf_token: user.map(|u| u.csrf).unwrap_or_default(),
        title: title.to_string(),
        nav: nav.to_string(),
        banner,
        cluster_id: snap.cluster_id.clone(),
        collected_at_ms: snap.taken_at_ms,
        warnings: snap.warnings.clone(),
        notice,
    }
}

/// A failed request: which form and field it concerns, the status, the message.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Bad input (400), tied to a field.
    #[error("{message}")]
    Invalid {
        /// The field (empty = the whole form).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No such topic, group or broker (404).
    #[error("{0}")]
    NotFound(String),
    /// The cluster refused or could not be reached.
    #[error("{0}")]
    Cluster(#[from] ClientError),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl ConsoleError {
    /// A 400 about `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> ConsoleError {
        ConsoleError::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The HTTP status and the field to blame, with `kafka_field` naming the field a
    /// Kafka INVALID_* error concerns for this form.
    pub fn status_and_field(
        &self,
        kafka_field: &dyn Fn(i16, &str) -> String,
    ) -> (StatusCode, String) {
        match self {
            ConsoleError::Invalid { field, .. } => (StatusCode::BAD_REQUEST, field.clone()),
            ConsoleError::NotFound(_) => (StatusCode::NOT_FOUND, String::new()),
            ConsoleError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, String::new()),
            ConsoleError::Cluster(ClientError::Kafka { code, message }) => {
                let field = kafka_field(*code, message.as_deref().unwrap_or(""));
                let status = match *code {
                    // UNKNOWN_TOPIC_OR_PARTITION, GROUP_ID_NOT_FOUND
                    3 | 69 => StatusCode::NOT_FOUND,
                    // TOPIC_ALREADY_EXISTS, NON_EMPTY_GROUP, UNKNOWN_MEMBER_ID (group active),
                    // REBALANCE_IN_PROGRESS
                    36 | 68 | 25 | 27 => StatusCode::CONFLICT,
                    // TOPIC_DELETION_DISABLED, *_AUTHORIZATION_FAILED
                    73 | 29 | 30 | 31 => StatusCode::FORBIDDEN,
                    // Leaders moving, coordinators loading, timeouts: try again.
                    5 | 6 | 7 | 14 | 15 | 16 => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::BAD_REQUEST,
                };
                (status, field)
            }
            ConsoleError::Cluster(_) => (StatusCode::BAD_GATEWAY, String::new()),
        }
    }
}

/// The JSON error body: `{"error": "...", "field": "..."}`.
pub fn json_error(status: StatusCode, field: &str, message: &str) -> Response {
    (status, Json(json!({ "error": message, "field": field }))).into_response()
}

/// An error page (or JSON error) for requests without a form to re-show.
pub fn error_page(
    console: &Console,
    headers: &HeaderMap,
    status: StatusCode,
    field: &str,
    message: &str,
) -> Response {
    if wants_json(headers) {
        return json_error(status, field, message);
    }
    let view = ErrorPage {
        layout: layout(console, "Error", "", None),
        status: status.as_u16(),
        field: Some(field.to_string()).filter(|f| !f.is_empty()),
        error: message.to_string(),
    };
    respond(headers, status, &view)
}

/// The form state to re-show after `err` on `form` with the submitted `values`.
pub fn form_state(
    form: &str,
    field: String,
    message: String,
    values: BTreeMap<String, String>,
) -> FormState {
    FormState {
        values,
        error: Some(FieldError {
            form: form.to_string(),
            field,
            message,
        }),
    }
}

/// Success: JSON `body` (status 200), or a redirect to `to` with a notice for HTML.
pub fn done(headers: &HeaderMap, to: &str, notice: &str, body: serde_json::Value) -> Response {
    if wants_json(headers) {
        return (StatusCode::OK, Json(body)).into_response();
    }
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{sep}notice={}", encode(notice))).into_response()
}

/// Percent-encodes a query or path component (the views' encoder, so links and redirects
/// agree).
pub use rill_web::format::path_segment as encode;

/// The `?notice=` query parameter that success redirects carry.
#[derive(Debug, Deserialize, Default)]
pub struct Notice {
    /// The message.
    pub notice: Option<String>,
}

/// A request body from an HTML form (urlencoded) or a JSON client. A body that does not
/// parse is a 400 with the reason, in the format the client speaks.
pub struct FormOrJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequest<S> for FormOrJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if json {
            match Json::<T>::from_request(req, state).await {
                Ok(Json(v)) => Ok(FormOrJson(v)),
                Err(e) => Err(json_error(StatusCode::BAD_REQUEST, "", &e.body_text())),
            }
        } else {
            match Form::<T>::from_request(req, state).await {
                Ok(Form(v)) => Ok(FormOrJson(v)),
                Err(e) => Err((StatusCode::BAD_REQUEST, e.body_text()).into_response()),
            }
        }
    }
}

/// Deserializes a string, number or boolean as a string, so JSON clients may send
/// `"partitions": 3` and forms `partitions=3`, and the handler validates either with a
/// field-specific message.
pub fn lenient<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Any {
        S(String),
        I(i64),
        F(f64),
        B(bool),
        N(()),
    }
    Ok(match Any::deserialize(d)? {
        Any::S(s) => s,
        Any::I(i) => i.to_string(),
        Any::F(f) => f.to_string(),
        Any::B(b) => b.to_string(),
        Any::N(()) => String::new(),
    })
}

/// `/metrics`: the text rendered by the collector plus the console's own health.
pub async fn metrics(State(c): AppState) -> Response {
    let body = c.shared.scrape_body();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// `/assets/{file}`.
pub async fn asset(Path(file): Path<String>) -> Response {
    match rill_web::assets::get(&file) {
        Some((data, mime)) => (
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            data.into_owned(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

/// Anything else.
pub async fn not_found(State(c): AppState, headers: HeaderMap) -> Response {
    error_page(&c, &headers, StatusCode::NOT_FOUND, "", "no such page")
}
