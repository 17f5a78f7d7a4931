//! Writes: create, replace, merge-patch and delete, each in one transaction that also
//! stores the idempotency record.
//!
//! Why the idempotency record shares the write's transaction: the key and the record
//! become durable (and replicate) together with the write, so after a failover a client can
//! retry a write whose answer it lost and get the first answer instead of a second write.
//! Two requests racing with the same key are serialized by a transaction-scoped advisory
//! lock on the key; the primary key on `replikit_idempotency` is the backstop. What a record
//! holds, how long, and how a replay answers: [`idempotency`].

mod commit;
mod idempotency;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use tokio_postgres::types::Json;
use tokio_postgres::Transaction;

use super::doc::{json_response, Doc, DOC_COLUMNS};
use super::input::{self, CollectionPath, DocPath, Durability, JsonBody, PatchBody};
use super::reads::{with_etag, with_position};
use super::AppState;
use crate::db;
use crate::error::ApiError;
use crate::position::Position;
use commit::Phase;
use idempotency::{Lookup, Replay, Request};

/// Response header set on a response replayed from an idempotency record.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

#[derive(Debug, Clone)]
enum WriteOp {
    Create { id: Option<String>, data: Map<String, Value> },
    Put { id: String, data: Map<String, Value> },
    Patch { id: String, patch: Value },
    Delete { id: String },
}

impl WriteOp {
    fn method(&self) -> &'static str {
        match self {
            WriteOp::Create { .. } => "POST",
            WriteOp::Put { .. } => "PUT",
            WriteOp::Patch { .. } => "PATCH",
            WriteOp::Delete { .. } => "DELETE",
        }
    }

    fn path_id(&self) -> Option<&str> {
        match self {
            WriteOp::Create { id, .. } => id.as_deref(),
            WriteOp::Put { id, .. } | WriteOp::Patch { id, .. } | WriteOp::Delete { id } => Some(id),
        }
    }

    /// The request as its idempotency record identifies it: the id is in `path_id`, the rest
    /// of the body is hashed as the gateway parsed it.
    fn request<'c>(&self, collection: &'c str) -> Request<'c> {
        let body = match self {
            WriteOp::Create { data, .. } | WriteOp::Put { data, .. } => serde_json::to_vec(data),
            WriteOp::Patch { patch, .. } => serde_json::to_vec(patch),
            WriteOp::Delete { .. } => Ok(Vec::new()),
        };
        Request::new(self.method(), collection, self.path_id(), &body.unwrap_or_default())
    }
}

/// What a write answers: status and optional JSON body (a document, or none for 204), with
/// the document's version (for `ETag`) and id (for the idempotency record).
struct Outcome {
    status: StatusCode,
    body: Option<String>,
    version: Option<i64>,
    id: Option<String>,
}

impl Outcome {
    fn doc(status: StatusCode, doc: &Doc) -> Outcome {
        Outcome { status, body: Some(doc.to_json()), version: Some(doc.version), id: Some(doc.id.clone()) }
    }

    fn empty(status: StatusCode) -> Outcome {
        Outcome { status, body: None, version: None, id: None }
    }
}

/// `POST /v1/c/{collection}` with `{"id"?, "data"}`.
pub async fn create(
    State(state): State<AppState>,
    CollectionPath(collection): CollectionPath,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let op = WriteOp::Create { id: input::id_member(&body)?, data: input::data_member(&body)? };
    execute(&state, &headers, collection, op).await
}

/// `PUT /v1/c/{collection}/{id}` with `{"data"}`: create or replace.
pub async fn put(
    State(state): State<AppState>,
    DocPath(collection, id): DocPath,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let op = WriteOp::Put { id, data: input::data_member(&body)? };
    execute(&state, &headers, collection, op).await
}

/// `PATCH /v1/c/{collection}/{id}` with an RFC 7396 merge patch applied to `data`.
pub async fn patch(
    State(state): State<AppState>,
    DocPath(collection, id): DocPath,
    headers: HeaderMap,
    PatchBody(patch): PatchBody,
) -> Result<Response, ApiError> {
    if !patch.is_object() {
        return Err(ApiError::BadRequest("merge patch must be a JSON object".into()));
    }
    execute(&state, &headers, collection, WriteOp::Patch { id, patch }).await
}

/// `DELETE /v1/c/{collection}/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    DocPath(collection, id): DocPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    execute(&state, &headers, collection, WriteOp::Delete { id }).await
}

/// Parse the write headers, then run the write (retrying once if an identical key won a race)
/// within [`db::REQUEST_DEADLINE`]. A write whose deadline expires gives up its connection
/// ([`db::Lease::discard`]: never back to the pool busy) and answers by its [`Phase`].
async fn execute(state: &AppState, headers: &HeaderMap, collection: String, op: WriteOp) -> Result<Response, ApiError> {
    let key = input::idempotency_key(headers)?;
    let durability = input::durability(headers)?;
    let if_match = input::if_match(headers)?;
    let deadline = tokio::time::Instant::now() + db::REQUEST_DEADLINE;
    let mut lease = match tokio::time::timeout_at(deadline, db::Lease::get(&state.pool)).await {
        Ok(lease) => lease?,
        Err(_) => return Err(Phase::Working.expired()),
    };
    let mut phase = Phase::Working;
    let write = Write { key: key.as_deref(), durability, if_match, collection: &collection, op };
    match tokio::time::timeout_at(deadline, run(state, &mut lease, &write, &mut phase)).await {
        Ok(answer) => {
            lease.release();
            answer
        }
        Err(_) => {
            // Bounded: the cancel connects to PostgreSQL, which may be what is slow.
            let _ = tokio::time::timeout(DISCARD_WAIT, lease.discard()).await;
            Err(phase.expired())
        }
    }
}

/// How long an expired write waits for its backend's cancel to be taken before it answers.
const DISCARD_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// One write request, parsed.
struct Write<'a> {
    key: Option<&'a str>,
    durability: Option<Durability>,
    if_match: Option<i64>,
    collection: &'a str,
    op: WriteOp,
}

async fn run(
    state: &AppState,
    client: &mut db::Client,
    w: &Write<'_>,
    phase: &mut Phase,
) -> Result<Response, ApiError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let tx = client.transaction().await?;
        let begun = commit::begin(&tx).await?;
        match attempt(&tx, begun.term, w).await? {
            Attempt::Replay(replay) => {
                let key = w.key.unwrap_or_default();
                commit::confirm_replay(tx, key, w.durability, &begun.warnings, phase).await?;
                let position = db::position(client).await?;
                let response = match replay {
                    Replay::Answer { status, doc: Some(doc) } => respond(Outcome::doc(status, &doc), position),
                    Replay::Answer { status, doc: None } => respond(Outcome::empty(status), position),
                    Replay::Gone { collection, id } => with_position(
                        ApiError::NotFound(format!(
                            "the write with this Idempotency-Key was applied; document {id:?} in \
                             {collection:?} has since been deleted"
                        ))
                        .into_response(),
                        position,
                    ),
                };
                return Ok(mark_replayed(response));
            }
            Attempt::Mismatch => {
                tx.rollback().await?;
                let position = db::position(client).await?;
                return Ok(with_position(idempotency::mismatch_response(), position));
            }
            Attempt::Done(outcome) => {
                commit::commit(tx, &begun.warnings, phase).await?;
                let position = db::position(client).await?;
                if w.key.is_some() {
                    idempotency::maybe_sweep(&state.pool, &state.config.node_id);
                }
                return Ok(respond(outcome, position));
            }
            Attempt::KeyRace if attempts < 3 => {
                tx.rollback().await?;
            }
            Attempt::KeyRace => {
                return Err(ApiError::Unavailable(
                    "too many concurrent requests with this Idempotency-Key; retry".into(),
                ))
            }
        }
    }
}

enum Attempt {
    Done(Outcome),
    Replay(Replay),
    Mismatch,
    KeyRace,
}

async fn attempt(tx: &Transaction<'_>, term: i64, w: &Write<'_>) -> Result<Attempt, ApiError> {
    if let Some(d) = w.durability {
        // A constant from a closed set, never client text.
        tx.batch_execute(&format!("SET LOCAL synchronous_commit = '{}'", d.synchronous_commit())).await?;
    }
    let request = w.key.map(|_| w.op.request(w.collection));
    if let (Some(key), Some(request)) = (w.key, &request) {
        tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&key]).await?;
        match idempotency::lookup(tx, key, request).await? {
            Lookup::Fresh => {}
            Lookup::Mismatch => return Ok(Attempt::Mismatch),
            Lookup::Replay(replay) => return Ok(Attempt::Replay(replay)),
        }
    }
    let outcome = apply(tx, w.collection, &w.op, w.if_match, term).await?;
    if let (Some(key), Some(request)) = (w.key, &request) {
        let doc_id = request.path_id.as_deref().or(outcome.id.as_deref());
        if !idempotency::record(tx, key, request, outcome.status, doc_id).await? {
            return Ok(Attempt::KeyRace);
        }
    }
    Ok(Attempt::Done(outcome))
}

fn respond(outcome: Outcome, position: Position) -> Response {
    let response = match outcome.body {
        Some(body) => json_response(outcome.status, body),
        None => outcome.status.into_response(),
    };
    let response = match outcome.version {
        Some(v) => with_etag(response, v),
        None => response,
    };
    with_position(response, position)
}

fn mark_replayed(mut response: Response) -> Response {
    response.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

/// Run the document statement(s) for `op` inside `tx`. Every write gives the document a new
/// version ([`db::version_sql`]: the term, then the next value of one sequence), computed after the
/// row is locked.
async fn apply(
    tx: &Transaction<'_>,
    collection: &str,
    op: &WriteOp,
    if_match: Option<i64>,
    term: i64,
) -> Result<Outcome, ApiError> {
    let version = db::version_sql("$4");
    match op {
        WriteOp::Create { id, data } => {
            let sql = format!(
                "INSERT INTO replikit_documents (collection, id, version, data, updated_at) \
                 VALUES ($1, COALESCE($2, gen_random_uuid()::text), {version}, $3, now()) \
                 ON CONFLICT (collection, id) DO NOTHING RETURNING {DOC_COLUMNS}"
            );
            let row = tx.query_opt(&sql, &[&collection, id, &Json(data), &term]).await?;
            let row = row.ok_or_else(|| ApiError::AlreadyExists(id.clone().unwrap_or_default()))?;
            Ok(Outcome::doc(StatusCode::CREATED, &Doc::from_row(&row)?))
        }
        WriteOp::Put { id, data } => {
            if if_match.is_some() {
                check_version(tx, collection, id, if_match).await?;
            }
            // `xmax = 0` only on a row this statement inserted (an updated row carries our xid).
            let sql = format!(
                "INSERT INTO replikit_documents (collection, id, version, data, updated_at) \
                 VALUES ($1, $2, {version}, $3, now()) \
                 ON CONFLICT (collection, id) DO UPDATE SET version = {version}, \
                 data = EXCLUDED.data, updated_at = now() RETURNING {DOC_COLUMNS}, (xmax = 0)"
            );
            let row = tx.query_one(&sql, &[&collection, id, &Json(data), &term]).await?;
            let doc = Doc::from_row(&row)?;
            let created: bool = db::column(&row, 4)?;
            Ok(Outcome::doc(if created { StatusCode::CREATED } else { StatusCode::OK }, &doc))
        }
        WriteOp::Patch { id, patch } => {
            let current = check_version(tx, collection, id, if_match).await?;
            let mut data = current.data_value()?;
            json_patch::merge(&mut data, patch);
            let sql = format!(
                "UPDATE replikit_documents SET version = {version}, data = $3, updated_at = now() \
                 WHERE collection = $1 AND id = $2 RETURNING {DOC_COLUMNS}"
            );
            let row = tx.query_one(&sql, &[&collection, id, &data, &term]).await?;
            Ok(Outcome::doc(StatusCode::OK, &Doc::from_row(&row)?))
        }
        WriteOp::Delete { id } => {
            check_version(tx, collection, id, if_match).await?;
            tx.execute("DELETE FROM replikit_documents WHERE collection = $1 AND id = $2", &[&collection, id]).await?;
            Ok(Outcome::empty(StatusCode::NO_CONTENT))
        }
    }
}

/// Lock the document and check `If-Match`. Returns the current document; a missing document
/// is 412 under `If-Match` (RFC 9110) and 404 otherwise.
async fn check_version(
    tx: &Transaction<'_>,
    collection: &str,
    id: &str,
    if_match: Option<i64>,
) -> Result<Doc, ApiError> {
    let sql = format!("SELECT {DOC_COLUMNS} FROM replikit_documents WHERE collection = $1 AND id = $2 FOR UPDATE");
    let current = match tx.query_opt(&sql, &[&collection, &id]).await? {
        Some(row) => Some(Doc::from_row(&row)?),
        None => None,
    };
    match (current, if_match) {
        (None, Some(_)) => Err(ApiError::Conflict { current: None }),
        (None, None) => Err(ApiError::NotFound(format!("no document {id:?} in {collection:?}"))),
        (Some(doc), Some(v)) if doc.version != v => Err(ApiError::Conflict { current: Some(doc) }),
        (Some(doc), _) => Ok(doc),
    }
}
