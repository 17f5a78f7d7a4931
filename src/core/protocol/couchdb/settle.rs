//! Settling a revision conflict (the `Resolve` action): one `_bulk_docs` that ends every losing leaf with a
//! tombstone and, when a merge was chosen, writes the merged data as a child of the kept revision.
//!
//! Why derived revision ids: every id here is a hash of the conflict itself (the loser's or the kept revision and
//! the merged data), never of a key or a clock, so two clients that settle one conflict alike write the same
//! revisions and converge, instead of making a new conflict out of the settlement.

use serde_json::Value;

use super::revision::{child_link, rev_hash};
use super::wire::couch_id;
use super::write::bulk_docs;
use crate::core::action::{Action, Reply};
use crate::core::document::{Doc, Version};
use crate::core::error::Error;
use crate::core::protocol::Call;

/// The `_bulk_docs` that settles the conflict `action` resolves, and what the call replies once it lands. Every
/// loser, and the kept revision when a merge is written under it, must be a revision.
pub(super) fn resolve(db: &str, action: &Action) -> Result<(Call, Reply), Error> {
    let Action::Resolve { collection, id, keep, merged, losers, updated_at } = action else {
        return Err(Error::Protocol { message: "not a resolution".into() });
    };
    let cid = couch_id(collection, id);
    let mut docs = losers.iter().map(|loser| tombstone(&cid, loser)).collect::<Result<Vec<Value>, Error>>()?;
    let Some(data) = merged else {
        return Ok((bulk_docs(db, docs), Reply::Doc(keep.clone())));
    };
    let (generation, parent) = child_link(&keep.version).ok_or_else(|| not_a_revision("keep", &keep.version))?;
    let text = serde_json::to_string(data).unwrap_or_default();
    let hash = rev_hash(&["replikit:resolve:merge", &keep.version.to_string(), &text]);
    let rev = format!("{generation}-{hash}");
    docs.push(serde_json::json!({
        "_id": cid, "_rev": rev, "_revisions": { "start": generation, "ids": [hash, parent] },
        "collection": collection.as_str(), "data": data, "updatedAt": updated_at,
    }));
    let merged = Doc { id: id.clone(), version: Version::Rev(rev), data: data.clone(), updated_at: updated_at.clone() };
    Ok((bulk_docs(db, docs), Reply::Doc(merged)))
}

/// The tombstone that ends the losing leaf `loser` of the document `cid`.
fn tombstone(cid: &str, loser: &Version) -> Result<Value, Error> {
    let (generation, parent) = child_link(loser).ok_or_else(|| not_a_revision("losers", loser))?;
    let hash = rev_hash(&["replikit:resolve:delete", &loser.to_string()]);
    Ok(serde_json::json!({
        "_id": cid, "_rev": format!("{generation}-{hash}"), "_deleted": true,
        "_revisions": { "start": generation, "ids": [hash, parent] },
    }))
}

fn not_a_revision(what: &str, version: &Version) -> Error {
    Error::invalid(
        what,
        format!(
            "{:?} is not a revision, or one of the last generation (no child can be written under it)",
            version.to_string()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::CouchDb;
    use crate::core::action::Action;
    use crate::core::document::{Doc, Version};
    use crate::core::protocol::Adapter;
    use serde_json::{json, Map, Value};

    #[test]
    fn resolving_is_deterministic() {
        let a = CouchDb::new("app");
        let keep =
            Doc { id: "a".into(), version: Version::Rev("2-bb".into()), data: Map::new(), updated_at: "t".into() };
        let resolve = |merged: Option<Map<String, Value>>| Action::Resolve {
            collection: c(),
            id: "a".into(),
            keep: keep.clone(),
            merged,
            losers: vec![Version::Rev("2-cc".into()), Version::Rev("3-dd".into())],
            updated_at: "2026-11-22T10:00:00.000Z".into(),
        };
        let one = a.request(&resolve(None), &attempt("k1", false)).unwrap();
        let two = a.request(&resolve(None), &attempt("k2", false)).unwrap();
        assert_eq!(one.body, two.body, "two clients settling alike write the same revisions");
        let body: Value = serde_json::from_str(one.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["docs"].as_array().unwrap().len(), 2);
        assert_eq!(body["docs"][1]["_revisions"]["ids"][1], "dd");
        assert_eq!(body["docs"][1]["_deleted"], true);
        let merged = a.request(&resolve(Some(data(json!({"m": 1})))), &attempt("k", false)).unwrap();
        let body: Value = serde_json::from_str(merged.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["docs"][2]["_revisions"]["ids"][1], "bb", "the merge is a child of the kept revision");
        assert_eq!(body["docs"][2]["data"], json!({"m": 1}));
    }

    #[test]
    fn settling_under_what_is_not_a_revision_is_refused() {
        let a = CouchDb::new("app");
        let huge = Version::Rev(format!("{}-a", u64::MAX));
        let keep = |version: Version| Doc { id: "a".into(), version, data: Map::new(), updated_at: "t".into() };
        let resolve = |keep: Doc, merged: Option<Map<String, Value>>, losers: Vec<Version>| Action::Resolve {
            collection: c(),
            id: "a".into(),
            keep,
            merged,
            losers,
            updated_at: "t".into(),
        };
        for bad in [
            resolve(keep(Version::Rev("2-bb".into())), None, vec![huge.clone()]),
            resolve(keep(Version::Rev("2-bb".into())), None, vec![Version::Rev("0-a".into())]),
            resolve(keep(huge.clone()), Some(data(json!({"m": 1}))), vec![Version::Rev("2-cc".into())]),
        ] {
            let e = a.request(&bad, &attempt("k", false)).unwrap_err();
            assert_eq!(e.code(), "invalid_argument", "{e}");
        }
        // Kept as it is, its version is not written under: nothing to check.
        assert!(a.request(&resolve(keep(huge), None, vec![Version::Rev("2-cc".into())]), &attempt("k", false)).is_ok());
    }
}
