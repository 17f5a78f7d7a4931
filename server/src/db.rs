//! The database side of a gateway: a connection pool with timeouts, the schema, and the
//! node-status query.
//!
//! Why the timeouts: a gateway in front of a dead or hung PostgreSQL must answer 503
//! promptly rather than hold a client forever. Connects time out after 2 s, statements after
//! 5 s (`statement_timeout`), and every request's database work is bounded by
//! [`REQUEST_DEADLINE`].

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};

mod lease;
pub use lease::{Lease, WarningCount};

use crate::error::{log, ApiError};
use crate::position::{Position, LAG_SQL, POSITION_SQL, TERM_SQL};

/// Upper bound on one request's database work (statement timeout plus slack).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(7);
/// Time limit for `/v1/health`.
pub const HEALTH_DEADLINE: Duration = Duration::from_millis(900);

/// Documents keyed by (collection, id); `id` sorts bytewise (`COLLATE "C"`) so list order
/// and the `after` cursor do not depend on the server's locale.
///
/// A document's version is `term << 40 | nextval('replikit_version_seq')` ([`version_sql`]): never
/// the same number for two contents of one document (see docs/PROTOCOL.md, "Versions"). The
/// sequence's MAXVALUE keeps versions below 2^53 (exact in JavaScript); exhausting it is an error,
/// never a wrap. Versions written before the sequence (1, 2, ...) stay below 2^40, under every new one.
///
/// Idempotency records hold what a replay needs, never the response body (see
/// `gateway/writes/idempotency.rs`). Migrations, append-only and safe to rerun: tables made
/// before the fingerprint gain the column (their records, `NULL`, are matched on method, path
/// and id only, as they were) and lose `body`, which only a rewrite or VACUUM gives back: the
/// sweep deletes those records within the window.
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
    fingerprint bytea,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE replikit_idempotency ADD COLUMN IF NOT EXISTS fingerprint bytea;
ALTER TABLE replikit_idempotency DROP COLUMN IF EXISTS body;
CREATE INDEX IF NOT EXISTS replikit_idempotency_created_at ON replikit_idempotency (created_at);
CREATE SEQUENCE IF NOT EXISTS replikit_version_seq AS bigint MINVALUE 1 MAXVALUE 1099511627775 NO CYCLE;";

/// Bits of a version below its term: the sequence's share (its MAXVALUE is 2^40 - 1).
pub const VERSION_TERM_SHIFT: u32 = 40;
/// The highest term versions can carry: 8191 << 40 plus the sequence stays below 2^53.
pub const MAX_VERSION_TERM: i64 = (1 << (53 - VERSION_TERM_SHIFT)) - 1;

/// SQL expression for a new version, given the term as `$term` (an int8 parameter): the term in the
/// high bits, the next value of the one version sequence below. Evaluated where the row is locked, so
/// one document's versions also grow in the order its writes commit.
pub fn version_sql(term_param: &str) -> String {
    format!("(({term_param}::int8 << {VERSION_TERM_SHIFT}) + nextval('replikit_version_seq'))")
}

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
    let manager =
        Manager::from_connect(config, lease::Connector, ManagerConfig { recycling_method: RecyclingMethod::Fast });
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

/// A pooled connection.
pub type Client = Object;

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

/// This node's term and position, in one statement (see [`crate::position`]).
pub async fn position(client: &tokio_postgres::Client) -> Result<Position, ApiError> {
    Ok(role_and_position(client).await?.1)
}

/// Whether this node is a standby, and its term and position, in one statement.
pub async fn role_and_position(client: &tokio_postgres::Client) -> Result<(bool, Position), ApiError> {
    let sql = format!("SELECT pg_is_in_recovery(), {POSITION_SQL}, ({TERM_SQL})::int8");
    let row = client.query_one(&sql, &[]).await?;
    let lsn = column::<Option<i64>>(&row, 1)?.unwrap_or(0).max(0) as u64;
    let term = column::<Option<i64>>(&row, 2)?.unwrap_or(0).max(0) as u64;
    Ok((column(&row, 0)?, Position { term, lsn }))
}

/// How long idempotency records are kept by default: 7 days, longer than an outbox holds a
/// write in practice (an app offline for a week replays its queue, and each write is still
/// applied once).
pub const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

static IDEMPOTENCY_WINDOW_MS: AtomicU64 = AtomicU64::new(DEFAULT_IDEMPOTENCY_WINDOW.as_millis() as u64);

/// Set the idempotency window of every gateway in this process (`--idempotency-window`).
pub fn set_idempotency_window(window: Duration) {
    IDEMPOTENCY_WINDOW_MS.store(window.as_millis().min(u64::MAX as u128) as u64, Ordering::Relaxed);
}

/// The idempotency window: records at least this old may be swept.
pub fn idempotency_window() -> Duration {
    Duration::from_millis(IDEMPOTENCY_WINDOW_MS.load(Ordering::Relaxed))
}

/// Parse a window such as `7d`, `12h`, `30m`, `90s` or `500ms` (a bare number is seconds).
pub fn parse_window(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("invalid window {text:?}: expected e.g. 7d, 12h, 90s"))?;
    let ms_per = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("invalid window unit {unit:?}: use ms, s, m, h or d")),
    };
    n.checked_mul(ms_per).map(Duration::from_millis).ok_or_else(|| format!("window {text:?} is too long"))
}

/// Rows one sweep statement deletes at most, so that no statement holds many locks or runs
/// near `statement_timeout`.
pub const SWEEP_BATCH: i64 = 1_000;

/// Delete idempotency records older than `window`, [`SWEEP_BATCH`] at a time, at most
/// `max_batches` statements. Returns how many were deleted. On a standby the first statement
/// fails with 25006 (`NotPrimary`): only a primary sweeps.
pub async fn sweep_idempotency(
    client: &tokio_postgres::Client,
    window: Duration,
    max_batches: u32,
) -> Result<u64, ApiError> {
    let window_ms = window.as_millis().min(i64::MAX as u128) as i64;
    let sql = "DELETE FROM replikit_idempotency WHERE key IN (SELECT key FROM replikit_idempotency \
               WHERE created_at < now() - make_interval(secs => $1::int8 / 1000.0) \
               ORDER BY created_at LIMIT $2)";
    let mut deleted = 0;
    for _ in 0..max_batches {
        let n = client.execute(sql, &[&window_ms, &SWEEP_BATCH]).await?;
        deleted += n;
        if n < SWEEP_BATCH as u64 {
            break;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_two_terms_never_meet_and_all_fit_a_javascript_number() {
        let max_sequence: i64 = (1 << VERSION_TERM_SHIFT) - 1;
        assert!(SCHEMA_SQL.contains(&format!("MAXVALUE {max_sequence} NO CYCLE")), "the sequence stops, never wraps");
        let version = |term: i64, sequence: i64| (term << VERSION_TERM_SHIFT) + sequence;
        // The largest version is 2^53 - 1: exact as a double.
        assert_eq!(version(MAX_VERSION_TERM, max_sequence), (1 << 53) - 1);
        // A promoted node re-issues sequence values a lost tail used: its term keeps them apart,
        // and every version of a term is above every version of the terms before it.
        for (t, s) in [(1, 1), (1, max_sequence), (2, 1), (7, 12345), (MAX_VERSION_TERM, max_sequence)] {
            assert!(version(t, s) > version(t - 1, max_sequence), "term {t} above term {}", t - 1);
            assert_eq!(version(t, s) >> VERSION_TERM_SHIFT, t);
            assert_eq!(version(t, s) & max_sequence, s);
        }
        // Versions written before the sequence (1, 2, ...) are all below the first term's.
        assert!(version(1, 1) > max_sequence);
    }

    #[test]
    fn windows_parse_with_their_unit_and_refuse_anything_else() {
        assert_eq!(parse_window("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_window("12h"), Ok(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_window("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_window("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_window("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "d", "7w", "-1s", "1.5h", "99999999999999999999d"] {
            assert!(parse_window(bad).is_err(), "{bad:?}");
        }
    }
}
