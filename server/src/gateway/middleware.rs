//! Cross-cutting request handling: the hung-server switch, bearer auth, and the node
//! headers every response carries.

use std::sync::atomic::Ordering;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::input;
use super::session::Judgement;
use super::AppState;
use crate::db;
use crate::error::ApiError;
use crate::position::{Position, NODE_HEADER, POSITION_HEADER, SESSION_LOST_HEADER, TERM_HEADER};

/// While the gateway is hung, wait (the TCP connection stays open, nothing is answered).
pub async fn hang(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut hung = state.hung.clone();
    // `wait_for` only fails when the sender is gone, i.e. the gateway is being stopped.
    if hung.wait_for(|h| !*h).await.is_err() {
        std::future::pending::<()>().await;
    }
    next.run(request).await
}

/// Require `Authorization: Bearer <token>` when the gateway has a token, except on a real
/// CORS preflight (which a browser sends without credentials). This layer sits inside the
/// CORS layer, so a 401 still carries the CORS headers a browser needs to read it.
pub async fn auth(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !authorized(&state, &request) && !is_preflight(&request) {
        return ApiError::Unauthorized.into_response();
    }
    next.run(request).await
}

/// Bound the request bodies a gateway holds at once: a request with a body takes its size in KiB
/// (the declared `Content-Length`, else the 1 MiB maximum) from a budget of
/// [`super::BODY_BUDGET_BYTES`] and gives it back when its answer is ready. Why: a body is read,
/// parsed (a JSON value of many small members takes many times its text) and written with its
/// copies while it is handled; eight concurrent 1 MiB bodies took a gateway from 13 MB to 442 MB.
/// A request waits up to [`super::BODY_BUDGET_WAIT`] for its share, then gets 503 `unavailable`
/// (retryable: a write keeps its idempotency key). Inside auth, so only authorized requests wait.
pub async fn body_budget(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let bytes = declared.map_or(super::MAX_BODY_BYTES as u64, |n| n.min(super::MAX_BODY_BYTES as u64));
    let kib = (bytes.div_ceil(1024) as u32).max(1);
    let permit = tokio::time::timeout(super::BODY_BUDGET_WAIT, state.body_budget.clone().acquire_many_owned(kib));
    let Ok(Ok(_permit)) = permit.await else {
        return ApiError::Unavailable("too many large requests in progress; retry".into()).into_response();
    };
    next.run(request).await
}

/// Outside the CORS layer, which answers every `OPTIONS` itself as if it were a preflight:
/// an `OPTIONS` that is not a real preflight needs the token like any other request.
pub async fn auth_options(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() == Method::OPTIONS && !is_preflight(&request) && !authorized(&state, &request) {
        return ApiError::Unauthorized.into_response();
    }
    next.run(request).await
}

/// Whether the request carries the gateway's token (always true without one). The scheme is
/// case-insensitive (RFC 7235 section 2.1: `bearer`, `BEARER`), followed by one or more spaces.
fn authorized(state: &AppState, request: &Request) -> bool {
    let Some(token) = &state.config.auth_token else {
        return true;
    };
    let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer);
    given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()))
}

/// The credentials of a `Bearer` authorization value.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim_start_matches(' '))
}

/// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method` (Fetch standard).
fn is_preflight(request: &Request) -> bool {
    let headers = request.headers();
    request.method() == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Add `X-Replikit-Node`, and `X-Replikit-Position` and `X-Replikit-Term` when the handler
/// did not set them (then they are the last ones this gateway observed).
pub async fn node_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(node) = HeaderValue::from_str(&state.config.node_id) {
        headers.insert(NODE_HEADER, node);
    }
    for (name, last) in [(POSITION_HEADER, &state.last_position), (TERM_HEADER, &state.last_term)] {
        match headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok()) {
            Some(v) => last.store(v, Ordering::Relaxed),
            None => {
                headers.insert(name, HeaderValue::from(last.load(Ordering::Relaxed)));
            }
        }
    }
    response
}

/// A write that carries a session mark of an earlier term than the node that applied it: say
/// in `X-Replikit-Session-Lost` when the session's earlier write is not in this node's history
/// (see [`super::session`]). The write was applied; only the session learns that an earlier
/// one was lost (a read answers 409 `session_lost` instead). Costs nothing while terms match.
pub async fn session_writes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let write = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let mark = if write { input::session_mark(request.headers()).ok().flatten() } else { None };
    let mut response = next.run(request).await;
    let Some(mark) = mark.filter(|_| response.status().is_success()) else {
        return response;
    };
    let headers = response.headers();
    let number = |name: &str| headers.get(name)?.to_str().ok()?.parse::<u64>().ok();
    let (Some(term), Some(lsn)) = (number(TERM_HEADER), number(POSITION_HEADER)) else {
        return response;
    };
    if term <= mark.term {
        return response;
    }
    let judged = async {
        let client = db::client(&state.pool).await.ok()?;
        Some(state.histories.judge(&client, mark, Position { term, lsn }).await)
    };
    let judged = tokio::time::timeout(db::HEALTH_DEADLINE, judged).await.ok().flatten();
    if !matches!(judged, Some(Judgement::Included)) {
        // Lost, or not provable: the session is told rather than left to trust it silently.
        if let Ok(v) = HeaderValue::from_str(&format!("{}/{}", mark.term, mark.lsn)) {
            response.headers_mut().insert(SESSION_LOST_HEADER, v);
        }
    }
    response
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_needs_credentials() {
        for value in ["Bearer t0k", "bearer t0k", "BEARER t0k", "BeArEr   t0k", " Bearer t0k "] {
            assert_eq!(bearer(value), Some("t0k"), "{value:?}");
        }
        for value in ["Bearert0k", "Basic t0k", "t0k", "", "Bearer"] {
            assert_ne!(bearer(value), Some("t0k"), "{value:?}");
        }
    }
}
