//! The database side of a gateway: a connection pool with timeouts, the schema, and the
//! node-status query.
//!
//! Why the timeouts: a gateway in front of a dead or hung PostgreSQL must answer 503
//! promptly rather than hold a client forever. Connects time out after 2 s, statements after
//! 5 s (`statement_timeout`), and every request's database work is bounded by
//! [`REQUEST_DEADLINE`].

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::error::{log, ApiError};
use crate::position::{LAG_SQL, POSITION_SQL, TERM_SQL};

/// Upper bound on one request's database work (statement timeout plus slack).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(7);
/// Time limit for `/v1/health`.
pub const HEALTH_DEADLINE: Duration = Duration::from_millis(900);

/// Documents keyed by (collection, id); `id` sorts bytewise (`COLLATE "C"`) so list order
/// and the `after` cursor do not depend on the server's locale.
pub const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS replikit_documents (
    collection text NOT NULL,
    id text COLLATE \"C\" NOT NULL,
    version bigint NOT NULL,
    data jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection, id)
);
CREATE TABLE IF NOT EXISTS replikit_idempotency (
    key text PRIMARY KEY,
    method text NOT NULL,
    collection text NOT NULL,
    doc_id text,
    status int NOT NULL,
    body jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);";

/// Build a pool for `conninfo` (libpq key=value or URL form).
pub fn pool(conninfo: &str) -> Result<Pool, String> {
    let mut config = tokio_postgres::Config::from_str(conninfo).map_err(|e| format!("invalid --pg conninfo: {e}"))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(2));
    }
    config.options("-c statement_timeout=5000 -c idle_in_transaction_session_timeout=10000");
    if config.get_application_name().is_none() {
        config.application_name("replikit-gateway");
    }
    let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(16)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(3)))
        .create_timeout(Some(Duration::from_secs(3)))
        .recycle_timeout(Some(Duration::from_secs(1)))
        .build()
        .map_err(|e| e.to_string())
}

/// Column `idx` of `row` as `T`: 500 `internal` (logged) when it does not decode, never a
/// panic as `Row::get` would.
pub fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    idx: usize,
) -> Result<T, ApiError> {
    row.try_get(idx).map_err(|e| {
        log(format_args!("decoding column {idx}: {e}"));
        ApiError::Internal("the database answered a value the gateway cannot decode".into())
    })
}

/// Take a connection from the pool (503 `unavailable` when the database is unreachable).
pub async fn client(pool: &Pool) -> Result<Object, ApiError> {
    Ok(pool.get().await?)
}

/// Run `work` with a deadline; a timeout becomes 503 `unavailable`.
pub async fn deadline<T>(
    limit: Duration,
    work: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or_else(|_| Err(ApiError::Unavailable("the database did not answer in time".into())))
}

/// Create the tables if this node is a primary and they are missing. A standby gets them by
/// replication, so it is left alone. Returns whether this node is a primary.
pub async fn ensure_schema(pool: &Pool) -> Result<bool, ApiError> {
    let client = client(pool).await?;
    let in_recovery: bool = column(&client.query_one("SELECT pg_is_in_recovery()", &[]).await?, 0)?;
    if !in_recovery {
        client.batch_execute(SCHEMA_SQL).await?;
    }
    Ok(!in_recovery)
}

/// One node's status, as `/v1/health` reports it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    pub role: &'static str,
    pub term: i64,
    pub position: u64,
    pub lag_ms: Option<i64>,
    pub read_only: bool,
}

/// Query role, term, position and lag in one statement.
pub async fn node_status(client: &tokio_postgres::Client) -> Result<NodeStatus, ApiError> {
    let sql = format!(
        "SELECT pg_is_in_recovery(), {POSITION_SQL}, ({TERM_SQL})::int8, {LAG_SQL}, \
         pg_is_in_recovery() OR current_setting('default_transaction_read_only') = 'on'"
    );
    let row = client.query_one(&sql, &[]).await?;
    let in_recovery: bool = column(&row, 0)?;
    Ok(NodeStatus {
        role: if in_recovery { "replica" } else { "primary" },
        position: column::<Option<i64>>(&row, 1)?.unwrap_or(0).max(0) as u64,
        term: column::<Option<i64>>(&row, 2)?.unwrap_or(0),
        lag_ms: column(&row, 3)?,
        read_only: column::<Option<bool>>(&row, 4)?.unwrap_or(in_recovery),
    })
}

/// This node's position (see [`crate::position`]).
pub async fn position(client: &tokio_postgres::Client) -> Result<u64, ApiError> {
    let row = client.query_one(&format!("SELECT {POSITION_SQL}"), &[]).await?;
    Ok(column::<Option<i64>>(&row, 0)?.unwrap_or(0).max(0) as u64)
}
