//! `GET /v1/health`: role, term, position and lag, answered within a second even when the
//! database is down (then 503 `unavailable`).

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::db;
use crate::error::ApiError;
use crate::position::{POSITION_HEADER, TERM_HEADER};

pub async fn health(State(state): State<AppState>) -> Result<Response, ApiError> {
    let status = db::deadline(db::HEALTH_DEADLINE, async {
        // Dropped at the deadline while the query runs, the connection is discarded, not pooled busy.
        let client = db::Lease::from_object(db::client(&state.pool).await?);
        let status = db::node_status(&client).await;
        client.release();
        status
    })
    .await?;
    let body = json!({
        "nodeId": state.config.node_id,
        "role": status.role,
        "term": status.term,
        "position": status.position,
        "lagMs": status.lag_ms,
        "readOnly": status.read_only,
    });
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(POSITION_HEADER, HeaderValue::from(status.position));
    headers.insert(TERM_HEADER, HeaderValue::from(status.term.max(0) as u64));
    Ok(response)
}
