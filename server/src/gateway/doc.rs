//! A stored document as the protocol shows it, built from its row without ever panicking.
//!
//! Why `data` is read as text: tokio-postgres decodes `jsonb` with serde_json, whose default
//! parser fails on numbers PostgreSQL prints in full (`Number.MAX_VALUE` is 309 digits), and
//! `Row::get` panics on a failed decode: one such row made every read of it kill the
//! connection (and, with `panic = "abort"`, the whole dev cluster). Now the text is rewritten
//! by [`json::stored`] (numbers as clients read them, any nesting) and spliced into the
//! response; no value is built except to apply a merge patch.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::db;
use crate::error::{log, ApiError};
use crate::json::{self, Numbers};

/// Columns selected for a document, in the order [`Doc::from_row`] reads them.
pub const DOC_COLUMNS: &str =
    "id, version, data::text, to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";

/// A document: `data` is JSON text whose numbers are the doubles clients read.
#[derive(Debug, Clone)]
pub struct Doc {
    pub id: String,
    pub version: i64,
    pub data: String,
    pub updated_at: String,
}

impl Doc {
    /// Decode a row selected with [`DOC_COLUMNS`]; 500 `internal` (logged) if it does not decode.
    pub fn from_row(row: &tokio_postgres::Row) -> Result<Doc, ApiError> {
        let id: String = db::column(row, 0)?;
        let text: String = db::column(row, 2)?;
        let Some((data, beyond)) = json::stored::rewrite(&text) else {
            log(format_args!("document {id:?}: stored data is not JSON text PostgreSQL prints"));
            return Err(ApiError::Internal("a stored document could not be read".into()));
        };
        if beyond > 0 {
            log(format_args!("document {id:?}: {beyond} number(s) beyond the double range read as null"));
        }
        Ok(Doc { id, version: db::column(row, 1)?, data, updated_at: db::column(row, 3)? })
    }

    /// The protocol JSON: `{"id", "version", "data", "updatedAt"}`.
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"id":{},"version":{},"data":{},"updatedAt":{}}}"#,
            Value::String(self.id.clone()),
            self.version,
            self.data,
            Value::String(self.updated_at.clone())
        )
    }

    /// `data` as a value, to apply a merge patch to.
    pub fn data_value(&self) -> Result<Value, ApiError> {
        json::parse(self.data.as_bytes(), Numbers::Nearest, json::STORED_MAX_DEPTH, "data").map_err(|e| {
            log(format_args!("document {:?}: cannot be patched: {e}", self.id));
            match e {
                json::ParseError::TooDeep(depth) => ApiError::Internal(format!(
                    "the stored document nests deeper than {depth} levels and cannot be patched; replace it with PUT"
                )),
                _ => ApiError::Internal("a stored document could not be read".into()),
            }
        })
    }
}

/// A response with a JSON text body.
pub fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}
