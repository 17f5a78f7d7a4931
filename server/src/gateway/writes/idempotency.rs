//! Idempotency records: what a replay needs, bound to one request, kept for a window.
//!
//! Why a fingerprint and no body: a record used to hold the whole response body, so 50 keys
//! with 500 KB bodies took 25 MB on every node, and it was matched on method and path only,
//! so the same key with another body replayed the first answer. A record now holds the
//! request's SHA-256 fingerprint (method, collection, id, body) and the answer's status and
//! document id: a few hundred bytes whatever the body. A replay answers the stored status
//! with the document as it is now, which is the first answer byte for byte until someone else
//! writes the document (see docs/PROTOCOL.md, section 6). Records are swept once older than
//! the window ([`crate::db::idempotency_window`]); the sweep runs on the primary, started by
//! keyed writes there, at most once per [`sweep_interval`].
//!
//! Keys are global today. Per-principal keys come with per-user access: the principal joins
//! the key in the primary key, the advisory lock and the fingerprint, here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::Response;
use deadpool_postgres::Pool;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio_postgres::error::SqlState;
use tokio_postgres::Transaction;

use super::super::doc::{json_response, Doc, DOC_COLUMNS};
use crate::db;
use crate::error::{log, ApiError};

/// The error code of a key reused for another request.
pub const MISMATCH_CODE: &str = "idempotency_mismatch";

/// Sweep statements per sweep run (at most `db::SWEEP_BATCH` rows each).
const SWEEP_MAX_BATCHES: u32 = 10;

/// One write request as its idempotency record identifies it.
pub struct Request<'a> {
    pub method: &'static str,
    pub collection: &'a str,
    /// The id in the path (or in a POST's body); `None` for a POST that lets the server pick.
    pub path_id: Option<String>,
    pub fingerprint: [u8; 32],
}

impl<'a> Request<'a> {
    /// `body` is the request's JSON as the gateway parsed it (so whitespace does not matter).
    pub fn new(method: &'static str, collection: &'a str, path_id: Option<&str>, body: &[u8]) -> Self {
        let mut hash = Sha256::new();
        for part in [method.as_bytes(), collection.as_bytes(), path_id.unwrap_or("").as_bytes(), body] {
            // Method, collection and id never hold NUL (input rules): the separator is unambiguous.
            hash.update(part);
            hash.update([0]);
        }
        Request { method, collection, path_id: path_id.map(str::to_owned), fingerprint: hash.finalize().into() }
    }
}

/// What a stored record says about a request with its key.
pub enum Lookup {
    /// No record: execute the request.
    Fresh,
    /// The key belongs to another request.
    Mismatch,
    /// The request was executed: answer this.
    Replay(Replay),
}

pub enum Replay {
    /// The stored status with the document as it is now (no document for a 204).
    Answer { status: StatusCode, doc: Option<Doc> },
    /// The write was applied, and the document has since been deleted.
    Gone { collection: String, id: String },
}

/// Look `key` up for `request` inside the write's transaction (which holds the key's lock).
pub async fn lookup(tx: &Transaction<'_>, key: &str, request: &Request<'_>) -> Result<Lookup, ApiError> {
    let sql = "SELECT method, collection, doc_id, status, fingerprint FROM replikit_idempotency WHERE key = $1";
    let Some(row) = tx.query_opt(sql, &[&key]).await? else {
        return Ok(Lookup::Fresh);
    };
    let method: String = db::column(&row, 0)?;
    let collection: String = db::column(&row, 1)?;
    let doc_id: Option<String> = db::column(&row, 2)?;
    let same = match db::column::<Option<Vec<u8>>>(&row, 4)? {
        Some(fingerprint) => fingerprint == request.fingerprint,
        // A record from before fingerprints: matched on method and path, as it was made.
        None => {
            method == request.method
                && collection == request.collection
                && request.path_id.as_ref().is_none_or(|id| doc_id.as_ref() == Some(id))
        }
    };
    if !same {
        return Ok(Lookup::Mismatch);
    }
    let status = u16::try_from(db::column::<i32>(&row, 3)?).ok().and_then(|s| StatusCode::from_u16(s).ok());
    let Some(status) = status else {
        log(format_args!("idempotency record {key:?}: stored status is not an HTTP status"));
        return Err(ApiError::Internal("a stored idempotency record could not be read".into()));
    };
    let Some(id) = doc_id.filter(|_| status != StatusCode::NO_CONTENT) else {
        return Ok(Lookup::Replay(Replay::Answer { status, doc: None }));
    };
    let sql = format!("SELECT {DOC_COLUMNS} FROM replikit_documents WHERE collection = $1 AND id = $2");
    Ok(Lookup::Replay(match tx.query_opt(&sql, &[&collection, &id]).await? {
        Some(row) => Replay::Answer { status, doc: Some(Doc::from_row(&row)?) },
        None => Replay::Gone { collection, id },
    }))
}

/// Store the record of an executed request. `Ok(false)` when another request with the same
/// key committed first (the primary key backstops the advisory lock).
pub async fn record(
    tx: &Transaction<'_>,
    key: &str,
    request: &Request<'_>,
    status: StatusCode,
    doc_id: Option<&str>,
) -> Result<bool, ApiError> {
    let inserted = tx
        .execute(
            "INSERT INTO replikit_idempotency (key, method, collection, doc_id, status, fingerprint) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &key,
                &request.method,
                &request.collection,
                &doc_id,
                &(status.as_u16() as i32),
                &request.fingerprint.as_slice(),
            ],
        )
        .await;
    match inserted {
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(false),
        other => other.map(|_| true).map_err(ApiError::from),
    }
}

/// 422 `idempotency_mismatch`.
pub fn mismatch_response() -> Response {
    let message = "Idempotency-Key was already used for a different request (method, path or body)";
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({ "error": { "code": MISMATCH_CODE, "message": message } }).to_string(),
    )
}

/// How often a gateway sweeps: the window, at most a minute and at least 100 ms.
pub fn sweep_interval(window: Duration) -> Duration {
    window.clamp(Duration::from_millis(100), Duration::from_secs(60))
}

/// After a keyed write committed on this primary: start a sweep unless this gateway (by node
/// id) started one within [`sweep_interval`]. The sweep runs on its own connection and
/// never delays the write's answer.
pub fn maybe_sweep(pool: &Pool, node_id: &str) {
    static LAST: Mutex<Option<HashMap<String, Instant>>> = Mutex::new(None);
    let window = db::idempotency_window();
    let now = Instant::now();
    {
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        let last = last.get_or_insert_with(HashMap::new);
        if last.get(node_id).is_some_and(|t| now.duration_since(*t) < sweep_interval(window)) {
            return;
        }
        last.insert(node_id.to_owned(), now);
    }
    let pool = pool.clone();
    tokio::spawn(async move {
        let swept = db::deadline(db::REQUEST_DEADLINE * 2, async {
            let client = db::client(&pool).await?;
            db::sweep_idempotency(&client, window, SWEEP_MAX_BATCHES).await
        })
        .await;
        if let Err(e) = swept {
            log(format_args!("idempotency sweep: {e}"));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_covers_method_path_and_body() {
        let base = Request::new("PUT", "t", Some("q"), br#"{"v":1}"#).fingerprint;
        assert_eq!(base, Request::new("PUT", "t", Some("q"), br#"{"v":1}"#).fingerprint);
        for other in [
            Request::new("PUT", "t", Some("q"), br#"{"v":2}"#),
            Request::new("PATCH", "t", Some("q"), br#"{"v":1}"#),
            Request::new("PUT", "t2", Some("q"), br#"{"v":1}"#),
            Request::new("PUT", "t", Some("q2"), br#"{"v":1}"#),
            Request::new("PUT", "tq", None, br#"{"v":1}"#),
        ] {
            assert_ne!(base, other.fingerprint);
        }
    }

    #[test]
    fn the_sweep_interval_follows_the_window_within_bounds() {
        assert_eq!(sweep_interval(Duration::from_secs(1)), Duration::from_secs(1));
        assert_eq!(sweep_interval(Duration::ZERO), Duration::from_millis(100));
        assert_eq!(sweep_interval(Duration::from_secs(7 * 86_400)), Duration::from_secs(60));
    }
}
