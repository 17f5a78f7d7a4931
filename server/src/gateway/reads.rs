//! Reads: one document, or a page of a collection ordered by id. Both honour
//! `X-Replikit-Min-Position`: a replica waits (without a database connection, see
//! [`super::replay`]) up to the allowed time for replay to reach the wanted position, else
//! answers 503 `lagging`; a primary behind the wanted position answers 422
//! `position_unreachable` at once.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::time::Instant;

use super::doc::{json_response, Doc, DOC_COLUMNS};
use super::input::{self, CollectionPath, DocPath};
use super::session::Judgement;
use super::AppState;
use crate::db;
use crate::error::ApiError;
use crate::position::{Position, POSITION_HEADER, TERM_HEADER};

/// Add `X-Replikit-Position` and `X-Replikit-Term` to a response.
pub fn with_position(mut response: Response, position: Position) -> Response {
    let headers = response.headers_mut();
    headers.insert(POSITION_HEADER, HeaderValue::from(position.lsn));
    headers.insert(TERM_HEADER, HeaderValue::from(position.term));
    response
}

/// Add `ETag: "<version>"` to a response.
pub fn with_etag(mut response: Response, version: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// A connection and the node's position, measured before the read; when the request asks for
/// a min position, only once the node has it. The wait holds no connection (see
/// [`super::replay`]); a primary asked for a position beyond its own answers
/// `position_unreachable` at once, since its position only moves forward on its own timeline.
/// With a session term ([`input::session_mark`]), a node of a later term first checks that the
/// session's write is in its history ([`super::session`]): else 409 `session_lost`.
async fn client_at_position(state: &AppState, headers: &HeaderMap) -> Result<(db::Client, Position), ApiError> {
    let Some((wanted, wait_ms)) = input::min_position(headers)? else {
        let client = db::client(&state.pool).await?;
        let position = db::position(&client).await?;
        return Ok((client, position));
    };
    let mark = input::session_mark(headers)?;
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    let client = db::client(&state.pool).await?;
    let (in_recovery, here) = db::role_and_position(&client).await?;
    if let Some(mark) = mark {
        let behind = || match in_recovery {
            true => ApiError::Lagging { wanted, position: here.lsn },
            false => ApiError::PositionUnreachable { wanted, position: here.lsn },
        };
        match state.histories.judge(&client, mark, here).await {
            Judgement::SameTerm | Judgement::Included => {}
            Judgement::Behind => return Err(behind()),
            // A replica that cannot read its history sends the read elsewhere; the primary always can.
            Judgement::Unknown if in_recovery => return Err(behind()),
            Judgement::Lost | Judgement::Unknown => {
                return Err(ApiError::SessionLost { term: mark.term, position: mark.lsn })
            }
        }
    }
    if here.lsn >= wanted {
        return Ok((client, here));
    }
    if !in_recovery {
        return Err(ApiError::PositionUnreachable { wanted, position: here.lsn });
    }
    drop(client);
    state.replay.wait_for(wanted, here.lsn, deadline).await?;
    let client = db::client(&state.pool).await?;
    let position = db::position(&client).await?;
    Ok((client, position))
}

/// `GET /v1/c/{collection}/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    DocPath(collection, id): DocPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    db::deadline(db::REQUEST_DEADLINE, async {
        let (client, position) = client_at_position(&state, &headers).await?;
        // Dropped while the query runs (deadline, client gone), the connection is discarded, not pooled busy.
        let client = db::Lease::from_object(client);
        let sql = format!("SELECT {DOC_COLUMNS} FROM replikit_documents WHERE collection = $1 AND id = $2");
        let row = client.query_opt(&sql, &[&collection, &id]).await;
        client.release();
        let Some(row) = row? else {
            return Err(ApiError::NotFound(format!("no document {id:?} in {collection:?}")));
        };
        let doc = Doc::from_row(&row)?;
        let response = if input::if_none_match_hits(&headers, doc.version) {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            json_response(StatusCode::OK, doc.to_json())
        };
        Ok(with_position(with_etag(response, doc.version), position))
    })
    .await
}

/// Default page size for lists.
pub const DEFAULT_LIMIT: i64 = 100;
/// Largest page size for lists.
pub const MAX_LIMIT: i64 = 1000;
/// A page stops once the data of its documents reaches this many bytes (it always holds at least
/// one document, so a page is at most this plus one 1 MiB document): far below the SDK's 16 MiB
/// response limit, so any collection can be paged through. 24 documents of 900 KB used to make a
/// 21.6 MB page no client could read.
pub const PAGE_MAX_BYTES: i64 = 8 << 20;

/// `GET /v1/c/{collection}?limit=&after=`.
pub async fn list(
    State(state): State<AppState>,
    CollectionPath(collection): CollectionPath,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(format!("bad query string: {e}")))?;
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(ApiError::BadRequest(format!("limit must be an integer in 1..={MAX_LIMIT}"))),
        },
    };
    let after = query.get("after").cloned();
    db::deadline(db::REQUEST_DEADLINE, async {
        let (client, position) = client_at_position(&state, &headers).await?;
        // `data` as text once per row (the OFFSET 0 keeps the planner from inlining it twice); the
        // running size stops the page at PAGE_MAX_BYTES, and `lead` says whether a row follows the
        // last one kept. Rows are pulled lazily: the scan stops at `limit + 1` rows.
        let sql = format!(
            "SELECT {DOC_COLUMNS}, has_next FROM ( \
               SELECT d.id, d.version, x.data, d.updated_at, \
                 sum(octet_length(x.data)) OVER w - octet_length(x.data) AS before, \
                 lead(d.id) OVER w IS NOT NULL AS has_next \
               FROM replikit_documents d CROSS JOIN LATERAL (SELECT d.data::text AS data OFFSET 0) x \
               WHERE d.collection = $1 AND ($2::text IS NULL OR d.id > $2) \
               WINDOW w AS (ORDER BY d.id) ORDER BY d.id LIMIT $3 \
             ) page WHERE before < $4 ORDER BY id"
        );
        // Dropped while the query runs (deadline, client gone), the connection is discarded, not pooled busy.
        let client = db::Lease::from_object(client);
        let rows = client.query(&sql, &[&collection, &after, &(limit + 1), &PAGE_MAX_BYTES]).await;
        client.release();
        let rows = rows?;
        let more = match rows.last() {
            _ if rows.len() as i64 > limit => true,
            Some(last) => db::column::<bool>(last, 4)?,
            None => false,
        };
        let items = rows.iter().take(limit as usize).map(Doc::from_row).collect::<Result<Vec<_>, _>>()?;
        let next = match items.last() {
            Some(last) if more => Value::String(last.id.clone()),
            _ => Value::Null,
        };
        let items: Vec<String> = items.iter().map(Doc::to_json).collect();
        let body = format!(r#"{{"items":[{}],"next":{next}}}"#, items.join(","));
        Ok(with_position(json_response(StatusCode::OK, body), position))
    })
    .await
}
