//! The gateway: one stateless HTTP server per PostgreSQL node, speaking protocol v1
//! (docs/PROTOCOL.md).
//!
//! It decides nothing about replication: PostgreSQL does replication, durability and
//! promotion. The gateway translates HTTP to parameterized SQL and reports the node's role,
//! term and position so that clients can route. It can be *hung* (accepts, never answers)
//! and *stopped* (listener and every open connection closed) by the dev cluster, to simulate
//! the failures clients must survive.

pub mod conn;
pub mod doc;
mod health;
mod input;
mod middleware;
mod reads;
pub mod replay;
pub mod session;
mod writes;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::routing::{any, get};
use axum::Router;
use deadpool_postgres::Pool;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::ApiError;
use crate::position::*;

/// Request bodies above this are answered 413.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Request body bytes one gateway handles at once (see [`middleware::body_budget`]): two bodies
/// of the largest size, or thousands of small ones.
pub const BODY_BUDGET_BYTES: usize = 2 * MAX_BODY_BYTES;
/// How long a request waits for its share of [`BODY_BUDGET_BYTES`] before 503 `unavailable`.
pub const BODY_BUDGET_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How one gateway is configured.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub node_id: String,
    pub auth_token: Option<String>,
    /// Allowed browser origins; `*` allows any.
    pub cors_origins: Vec<String>,
}

/// Shared state of one gateway's handlers.
pub struct Gateway {
    pub config: GatewayConfig,
    pub pool: Pool,
    /// The last position this gateway observed; fills `X-Replikit-Position` on responses
    /// that did not query the database (e.g. 400, 401).
    pub last_position: AtomicU64,
    /// While true, every request waits (the "hung server" failure).
    pub hung: watch::Receiver<bool>,
    /// The last term this gateway observed, with `last_position`.
    pub last_term: AtomicU64,
    /// The shared watcher that min-position reads wait on.
    pub replay: Arc<replay::ReplayWatch>,
    /// Timeline histories read so far, for session checks across terms.
    pub histories: session::Histories,
    /// Request body bytes being handled, in KiB permits (see [`middleware::body_budget`]).
    pub body_budget: Arc<tokio::sync::Semaphore>,
}

pub type AppState = Arc<Gateway>;

/// Build the protocol v1 router.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/v1/health", get(health::health))
        .route("/v1/c/{collection}", get(reads::list).post(writes::create))
        .route(
            "/v1/c/{collection}/{id}",
            get(reads::get_one).put(writes::put).patch(writes::patch).delete(writes::delete),
        )
        .route("/v1/c/{collection}/", any(empty_id))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::body_budget))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::auth));
    let routes = match cors_layer(&state.config.cors_origins) {
        Some(cors) => {
            routes.layer(cors).layer(axum::middleware::from_fn_with_state(state.clone(), middleware::auth_options))
        }
        None => routes,
    };
    routes
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::session_writes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::node_headers))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::hang))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn empty_id() -> ApiError {
    ApiError::BadRequest("id is empty".into())
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    let names = |list: &[&'static str]| list.iter().map(|h| HeaderName::from_static(h)).collect::<Vec<_>>();
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS])
            .allow_headers(
                [header::AUTHORIZATION, header::CONTENT_TYPE, header::IF_MATCH, header::IF_NONE_MATCH]
                    .into_iter()
                    .chain(names(&[
                        "idempotency-key",
                        MIN_POSITION_HEADER,
                        MIN_TERM_HEADER,
                        MAX_WAIT_HEADER,
                        DURABILITY_HEADER,
                    ]))
                    .collect::<Vec<_>>(),
            )
            .expose_headers(
                [header::ETAG]
                    .into_iter()
                    .chain(names(&[
                        NODE_HEADER,
                        POSITION_HEADER,
                        TERM_HEADER,
                        SESSION_LOST_HEADER,
                        "idempotent-replayed",
                    ]))
                    .collect::<Vec<_>>(),
            )
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// A running gateway: dropping or [`GatewayHandle::stop`]ping it closes the listener and
/// every open connection at once, like a machine going away.
pub struct GatewayHandle {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
    hang_tx: watch::Sender<bool>,
}

impl GatewayHandle {
    /// Bind `addr` and serve protocol v1 for `config` over `pool`.
    pub async fn start(addr: SocketAddr, config: GatewayConfig, pool: Pool) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (hang_tx, hung) = watch::channel(false);
        let replay = replay::ReplayWatch::new(pool.clone());
        let state = Arc::new(Gateway {
            config,
            pool,
            last_position: AtomicU64::new(0),
            last_term: AtomicU64::new(0),
            hung,
            replay,
            histories: session::Histories::default(),
            body_budget: Arc::new(tokio::sync::Semaphore::new(BODY_BUDGET_BYTES / 1024)),
        });
        let app = router(state);
        let task = tokio::spawn(conn::serve(listener, app));
        Ok(GatewayHandle { addr, task, hang_tx })
    }

    /// Make every request (current and future) wait until [`GatewayHandle::set_hung`]`(false)`.
    pub fn set_hung(&self, hung: bool) {
        self.hang_tx.send_replace(hung);
    }

    pub fn is_hung(&self) -> bool {
        *self.hang_tx.borrow()
    }

    /// Close the listener and all connections now.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}
