//! CouchDB's document API (CouchDB 2/3, PouchDB Server): multi-primary, versions are revisions.
//!
//! Mapping (docs/PROTOCOL.md, "CouchDB"): all collections live in one database; document `id` of collection `c` is
//! the CouchDB `_id` `"c:id"`, stored as `{ "collection": "c", "data": {...}, "updatedAt": "<RFC 3339>" }` (the
//! app's data is nested, so its field names never clash with CouchDB's `_` fields). `version` is `_rev`.
//!
//! Writes are two requests to one node. The first reads every leaf revision with its history
//! (`GET ?open_revs=all&revs=true`); the second writes the child of the winning revision with `_bulk_docs` and
//! `new_edits: false` (a delete: a tombstone under every live leaf, so no losing leaf outlives it), with a revision
//! id the client derives from the write's idempotency key and the parent (`N+1-hash(key, parent)`) and a body that
//! is the same on every attempt. Writing a revision that exists is a
//! no-op in CouchDB and replication carries revisions unchanged, so a write retried on a node that is in the same
//! state (the node its answer was lost on is tried again first, see the router) lands as the same revision, and a
//! retry that finds its revision in any leaf's history knows the first attempt landed. `ifVersion`, "create only
//! if absent" and merge patches are checked against the winner read first.
//!
//! Conflicts (two nodes took writes to one document before replicating) show up as `_conflicts` on reads
//! (`conflicts=true`). Settling one writes tombstones under every losing leaf, and a merged child when a merge
//! was chosen; their revision ids are derived from the conflict, so two clients settling it alike write the
//! same revisions and converge instead of conflicting again.
//!
//! This file is the adapter and only dispatches; each concern has its module, and none imports this one (but in tests):
//! - `revision`: revision ids, generations, `rev_hash`, a document's leaves and CouchDB's winner;
//! - `wire`: CouchDB's answers (documents, leaves, statuses, `_bulk_docs` results) as typed values and errors;
//! - `read`: reads (a document with its conflicts, a page of `_all_docs`, chosen revisions);
//! - `write`: a write, from the `open_revs` precheck to the `_bulk_docs` body and the version it predicts;
//! - `settle`: the `_bulk_docs` that settles a conflict (losers' tombstones, the merged child).

mod read;
mod revision;
mod settle;
mod wire;
mod write;

#[cfg(test)]
mod fixtures;

pub use revision::rev_hash;

use std::ops::ControlFlow;

use super::{encode_segment, Adapter, Attempt, Call, FollowUp, HealthReport, Response, Verdict};
use crate::core::action::Action;
use crate::core::document::{CollectionName, Version};
use crate::core::error::Error;

/// The CouchDB-protocol adapter for one database.
#[derive(Debug)]
pub struct CouchDb {
    database: String,
}

impl CouchDb {
    pub fn new(database: &str) -> CouchDb {
        CouchDb { database: database.to_string() }
    }

    /// The database as a path segment.
    fn db(&self) -> String {
        encode_segment(&self.database)
    }

    fn doc_path(&self, collection: &CollectionName, id: &str) -> String {
        format!("/{}/{}", self.db(), encode_segment(&wire::couch_id(collection, id)))
    }
}

impl Adapter for CouchDb {
    /// `GET /{db}`: the node answers and serves the database (CouchDB's `/_up` does not say the latter, and PouchDB
    /// Server 4 does not implement it).
    fn health_check(&self) -> Call {
        Call::get(format!("/{}", self.db()))
    }

    fn parse_health(&self, url: &str, body: &str) -> Result<HealthReport, Error> {
        wire::parse_health(url, body)
    }

    fn request(&self, action: &Action, _attempt: &Attempt) -> Result<Call, Error> {
        Ok(match action {
            Action::Get { collection, id, .. } => read::get(&self.doc_path(collection, id)),
            Action::List { collection, limit, after } => read::list(&self.db(), collection, *limit, after.as_deref())?,
            Action::Revisions { collection, id, revs } => read::revisions(&self.doc_path(collection, id), revs),
            Action::Create { collection, id, .. }
            | Action::Replace { collection, id, .. }
            | Action::Update { collection, id, .. }
            | Action::Delete { collection, id, .. } => write::precheck(&self.doc_path(collection, id)),
            Action::Resolve { .. } => settle::resolve(&self.db(), action)?.0,
        })
    }

    fn interpret(
        &self,
        url: &str,
        action: &Action,
        attempt: &Attempt,
        follow_up: Option<&FollowUp>,
        response: Response,
    ) -> Verdict {
        if let Some(refused) = wire::refused(url, &response) {
            return refused;
        }
        if let Some(f) = follow_up {
            return wire::written(url, &response, f.reply.clone());
        }
        let (collection, id) = match action {
            Action::Resolve { .. } => {
                return match settle::resolve(&self.db(), action) {
                    Ok((_, reply)) => wire::written(url, &response, reply),
                    Err(e) => Verdict::Final(e),
                };
            }
            Action::List { collection, limit, after } => {
                return read::listed(url, &self.database, collection, *limit, after.as_deref(), &response);
            }
            Action::Get { collection, id, .. }
            | Action::Create { collection, id, .. }
            | Action::Replace { collection, id, .. }
            | Action::Update { collection, id, .. }
            | Action::Delete { collection, id, .. }
            | Action::Revisions { collection, id, .. } => (collection, id),
        };
        // The answer about one document: its body, or None when the document is missing (or deleted).
        let body = match wire::document_answer(url, &self.database, &response) {
            ControlFlow::Continue(body) => body,
            ControlFlow::Break(verdict) => return verdict,
        };
        match action {
            Action::Get { if_none_match, .. } => read::got(url, collection, id, if_none_match.as_ref(), body),
            Action::Revisions { .. } => read::versions(url, collection, id, body),
            _ => match body.map(|b| wire::parse_leaves(url, collection, id, b)).transpose() {
                // No body: no record of the document at all.
                Ok(leaves) => write::compose(&self.db(), url, action, attempt, leaves.unwrap_or_default()),
                Err(e) => Verdict::Failed(e),
            },
        }
    }

    fn predicted_version(&self, base: Option<&Version>, key: &str) -> Version {
        write::predicted(base, key)
    }
}
