//! The HTTP side of logins: the middleware that authenticates every request, enforces
//! roles and CSRF tokens on changes, and the login and logout routes.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use rill_web::views::LoginPage;
use serde::Deserialize;

use super::auth::{allowed, CurrentUser, CSRF_FIELD, CURRENT, SESSION_COOKIE};
use super::http::{
    encode, error_page, json_error, layout, respond, wants_json, AppState, FormOrJson,
};
use super::state::Console;
use crate::clock::now_ms;

/// Largest form body read for the CSRF check.
const MAX_FORM_BYTES: usize = 1 << 20;

fn now_s() -> i64 {
    now_ms() / 1000
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v.strip_prefix("Basic ")?;
    let decoded = decode_base64(b64.trim())?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Standard base64 (with padding) → bytes.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::new();
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len().max(1)]);
    }
    Some(out)
}

/// The token in a urlencoded form body (tokens are hex, so no decoding is needed).
fn form_token(body: &[u8]) -> Option<String> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == CSRF_FIELD)
        .map(|(_, v)| v.to_string())
}

/// Authenticates every request when logins are on; see [`super::auth`].
pub async fn guard(State(c): State<Arc<Console>>, req: Request, next: Next) -> Response {
    let Some(auth) = c.auth.as_ref() else {
        return next.run(req).await;
    };
    let path = req.uri().path().to_string();
    if path == "/login" || path == "/healthz" || path == "/metrics" || path.starts_with("/assets/")
    {
        return next.run(req).await;
    }
    let from_cookie =
        cookie(req.headers(), SESSION_COOKIE).and_then(|v| auth.check_session(&v, now_s()));
    let (user, via_cookie) = match from_cookie {
        Some(u) => (u, true),
        None => match basic(req.headers())
            .and_then(|(u, p)| auth.verify(&u, &p).map(|role| (u, role)))
        {
            Some((name, role)) => (
                CurrentUser {
                    name,
                    role,
                    csrf: String::new(),
                },
                false,
            ),
            None => {
                if wants_json(req.headers()) {
                    let mut r = json_error(StatusCode::UNAUTHORIZED, "", "login required");
                    if let Ok(v) = header::HeaderValue::from_str("Basic realm=\"rill console\"") {
                        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                    }
                    return r;
                }
                let next_path = req
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string();
                return Redirect::to(&format!("/login?next={}", encode(&next_path)))
                    .into_response();
            }
        },
    };
    let mut req = req;
    if req.method() == Method::POST {
        if path != "/logout" && !allowed(user.role, &path) {
            let headers = req.headers().clone();
            let msg = format!("the {} role may not do this", user.role.as_str());
            return CURRENT
                .scope(user, async {
                    error_page(&c, &headers, StatusCode::FORBIDDEN, "", &msg)
                })
                .await;
        }
        if via_cookie {
            let header_token = req
                .headers()
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let (parts, body) = req.into_parts();
            let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
                Ok(b) => b,
                Err(_) => {
                    return (StatusCode::PAYLOAD_TOO_LARGE, "body too large\n").into_response()
                }
            };
            let token = header_token.or_else(|| form_token(&bytes));
            if token.as_deref() != Some(user.csrf.as_str()) {
                let headers = parts.headers.clone();
                return CURRENT
                    .scope(user, async {
                        error_page(
                            &c,
                            &headers,
                            StatusCode::FORBIDDEN,
                            CSRF_FIELD,
                            "missing or wrong CSRF token: reload the page and try again",
                        )
                    })
                    .await;
            }
            req = Request::from_parts(parts, Body::from(bytes));
        }
    }
    CURRENT.scope(user, next.run(req)).await
}

/// Query of GET `/login`.
#[derive(Debug, Deserialize, Default)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// Where to go after logging in: a local path only.
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next.to_string()
    } else {
        "/".to_string()
    }
}

/// GET `/login`.
pub async fn login_page(
    State(c): AppState,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let view = LoginPage {
        layout: layout(&c, "Log in", "login", None),
        next: safe_next(&q.next),
        error: None,
    };
    respond(&headers, StatusCode::OK, &view)
}

/// Body of POST `/login`.
#[derive(Debug, Deserialize, Default)]
pub struct LoginInput {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// POST `/login`: checks the password and sets the session cookie.
pub async fn login(
    State(c): AppState,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<LoginInput>,
) -> Response {
    let next = safe_next(&input.next);
    let Some(auth) = c.auth.as_ref() else {
        return Redirect::to(&next).into_response();
    };
    match auth.verify(&input.username, &input.password) {
        Some(role) => {
            let value = auth.session(&input.username, role, now_s());
            let cookie =
                format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=43200");
            tracing::info!(user = %input.username, role = role.as_str(), "console login");
            let mut r = if wants_json(&headers) {
                let csrf = auth
                    .check_session(&value, now_s())
                    .map(|u| u.csrf)
                    .unwrap_or_default();
                axum::Json(
                    serde_json::json!({ "user": input.username, "role": role, "csrf_token": csrf }),
                )
                .into_response()
            } else {
                Redirect::to(&next).into_response()
            };
            if let Ok(v) = header::HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        None => {
            tracing::warn!(user = %input.username, "console login refused");
            if wants_json(&headers) {
                return json_error(
                    StatusCode::UNAUTHORIZED,
                    "password",
                    "wrong user name or password",
                );
            }
            let view = LoginPage {
                layout: layout(&c, "Log in", "login", None),
                next,
                error: Some("wrong user name or password".into()),
            };
            respond(&headers, StatusCode::UNAUTHORIZED, &view)
        }
    }
}

/// POST `/logout`: clears the session cookie.
pub async fn logout() -> Response {
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = header::HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_next_paths() {
        assert_eq!(decode_base64("YWxpY2U6cHc=").unwrap(), b"alice:pw");
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert_eq!(decode_base64("YWI=").unwrap(), b"ab");
        assert!(decode_base64("!!").is_none());
        assert_eq!(safe_next("/topics?q=a"), "/topics?q=a");
        assert_eq!(safe_next("//evil.example"), "/");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(form_token(b"a=1&csrf_token=abc"), Some("abc".into()));
    }
}
