//! Errors of the dev cluster and its admin API, each with a stable lowercase code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A PostgreSQL tool exited with an error.
    #[error("{tool} failed: {detail}")]
    Tool { tool: String, detail: String },
    /// No node with this id.
    #[error("no node {0:?}")]
    UnknownNode(String),
    /// The operation does not apply to the node in its current state.
    #[error("{0}")]
    InvalidState(String),
    /// A SQL command on a node failed.
    #[error("database: {0}")]
    Database(String),
    /// Filesystem or socket failure.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A port the cluster was told to use is taken.
    #[error(
        "127.0.0.1:{port} ({what}) is already in use: stop what listens there, or choose another port with {flag}"
    )]
    PortInUse { port: u16, what: String, flag: &'static str },
    /// Missing or wrong admin token.
    #[error("missing or wrong admin token")]
    Unauthorized,
    /// Bad admin request body.
    #[error("{0}")]
    BadRequest(String),
}

impl ClusterError {
    pub fn code(&self) -> &'static str {
        match self {
            ClusterError::Tool { .. } => "tool_failed",
            ClusterError::UnknownNode(_) => "unknown_node",
            ClusterError::InvalidState(_) => "invalid_state",
            ClusterError::Database(_) => "database",
            ClusterError::Io(_) => "io",
            ClusterError::PortInUse { .. } => "port_in_use",
            ClusterError::Unauthorized => "unauthorized",
            ClusterError::BadRequest(_) => "bad_request",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ClusterError::UnknownNode(_) => StatusCode::NOT_FOUND,
            ClusterError::InvalidState(_) | ClusterError::PortInUse { .. } => StatusCode::CONFLICT,
            ClusterError::Unauthorized => StatusCode::UNAUTHORIZED,
            ClusterError::BadRequest(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl ClusterError {
    /// A failure to listen on `port` (`what`, chosen with `flag`): [`ClusterError::PortInUse`]
    /// naming the port when it is taken, else the io error with the port in it.
    pub fn bind(e: std::io::Error, port: u16, what: &str, flag: &'static str) -> Self {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            ClusterError::PortInUse { port, what: what.to_string(), flag }
        } else {
            ClusterError::Io(std::io::Error::new(e.kind(), format!("listening on 127.0.0.1:{port} ({what}): {e}")))
        }
    }
}

impl From<tokio_postgres::Error> for ClusterError {
    fn from(e: tokio_postgres::Error) -> Self {
        ClusterError::Database(e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string()))
    }
}

impl IntoResponse for ClusterError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        (self.status(), axum::Json(body)).into_response()
    }
}
