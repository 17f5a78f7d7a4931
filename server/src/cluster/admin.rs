//! The admin HTTP API of the dev cluster (its own listener, `Authorization: Bearer <token>`):
//!
//! - `GET /admin/status`
//! - `POST /admin/nodes/{id}/{kill|start|promote|rejoin|hang|unhang}`
//! - `POST /admin/auto-failover` with `{"enabled": bool}`
//!
//! It stays up while a gateway is hung or killed, which is the point: it is how the failures
//! are switched on and off.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::error::ClusterError;
use super::Cluster;

/// Bind the admin listener on loopback (`port` 0 picks a free one).
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await
}

/// Serve the admin API until the process stops.
pub async fn serve(listener: TcpListener, cluster: Arc<Cluster>) {
    let app = Router::new()
        .route("/admin/status", get(status))
        .route("/admin/nodes/{id}/{action}", post(node_action))
        .route("/admin/auto-failover", post(auto_failover))
        .fallback(|| async { ClusterError::UnknownNode("no such admin route".into()) })
        .layer(axum::middleware::from_fn_with_state(cluster.clone(), auth))
        .with_state(cluster);
    if let Err(e) = axum::serve(listener, app).await {
        crate::log!("admin API stopped: {e}");
    }
}

async fn auth(State(cluster): State<Arc<Cluster>>, request: Request, next: Next) -> Response {
    let expected = format!("Bearer {}", cluster.admin_token);
    let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if given != Some(expected.as_str()) {
        return ClusterError::Unauthorized.into_response();
    }
    next.run(request).await
}

async fn status(State(cluster): State<Arc<Cluster>>) -> Json<Value> {
    Json(cluster.status().await)
}

async fn node_action(
    State(cluster): State<Arc<Cluster>>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<Value>, ClusterError> {
    let result = match action.as_str() {
        "kill" => cluster.kill(&id).await,
        "start" => cluster.start(&id).await,
        "promote" => cluster.promote(&id).await,
        "rejoin" => cluster.rejoin(&id).await,
        "hang" => cluster.set_hung(&id, true).await,
        "unhang" => cluster.set_hung(&id, false).await,
        other => Err(ClusterError::BadRequest(format!(
            "unknown action {other:?} (kill, start, promote, rejoin, hang, unhang)"
        ))),
    };
    if let Err(e) = &result {
        crate::log!("{action} {id}: {e}");
    }
    result.map(Json)
}

async fn auto_failover(
    State(cluster): State<Arc<Cluster>>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ClusterError> {
    let body: Value =
        serde_json::from_slice(&body).map_err(|e| ClusterError::BadRequest(format!("invalid JSON: {e}")))?;
    let enabled = body["enabled"]
        .as_bool()
        .ok_or_else(|| ClusterError::BadRequest("body must be {\"enabled\": true|false}".into()))?;
    cluster.auto_failover.store(enabled, Ordering::Relaxed);
    Ok(Json(json!({ "autoFailover": enabled })))
}
