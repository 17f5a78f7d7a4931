//! Cross-cutting request handling: the hung-server switch, bearer auth, and the node
//! headers every response carries.

use std::sync::atomic::Ordering;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::ApiError;
use crate::position::{NODE_HEADER, POSITION_HEADER};

/// While the gateway is hung, wait (the TCP connection stays open, nothing is answered).
pub async fn hang(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut hung = state.hung.clone();
    // `wait_for` only fails when the sender is gone, i.e. the gateway is being stopped.
    if hung.wait_for(|h| !*h).await.is_err() {
        std::future::pending::<()>().await;
    }
    next.run(request).await
}

/// Require `Authorization: Bearer <token>` when the gateway has a token. CORS preflights
/// never reach this layer (the CORS layer answers them).
pub async fn auth(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.config.auth_token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()))
            && request.method() != Method::OPTIONS
        {
            return ApiError::Unauthorized.into_response();
        }
    }
    next.run(request).await
}

/// Add `X-Replikit-Node`, and `X-Replikit-Position` when the handler did not set it (then
/// it is the last position this gateway observed).
pub async fn node_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(node) = HeaderValue::from_str(&state.config.node_id) {
        headers.insert(NODE_HEADER, node);
    }
    match headers.get(POSITION_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok()) {
        Some(p) => {
            state.last_position.store(p, Ordering::Relaxed);
        }
        None => {
            headers.insert(POSITION_HEADER, HeaderValue::from(state.last_position.load(Ordering::Relaxed)));
        }
    }
    response
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
