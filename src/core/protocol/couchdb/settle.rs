//! Settling a revision conflict (the `Resolve` action): one `_bulk_docs` that ends every losing leaf with a
//! tombstone and, when a merge was chosen, writes the merged data as a child of the kept revision.
//!
//! Why derived revision ids: every id here is a hash of the conflict itself (the loser's or the kept revision and
//! the merged data), never of a key or a clock, so two clients that settle one conflict alike write the same
//! revisions and converge, instead of making a new conflict out of the settlement.

use serde_json::Value;

use super::revision::rev_hash;
use super::wire::couch_id;
use super::write::bulk_docs;
use crate::core::action::{Action, Reply};
use crate::core::document::{Doc, Version};
use crate::core::error::Error;
use crate::core::protocol::Call;

/// The `_bulk_docs` that settles the conflict `action` resolves, and what the call replies once it lands.
pub(super) fn resolve(db: &str, action: &Action) -> Result<(Call, Reply), Error> {
    let Action::Resolve { collection, id, keep, merged, losers, updated_at } = action else {
        return Err(Error::Protocol { message: "not a resolution".into() });
    };
    let cid = couch_id(collection, id);
    let mut docs: Vec<Value> = losers.iter().filter_map(|loser| tombstone(&cid, loser)).collect();
    let reply = match (merged, keep.version.rev_parts()) {
        (Some(data), Some((generation, parent))) => {
            let text = serde_json::to_string(data).unwrap_or_default();
            let hash = rev_hash(&["replikit:resolve:merge", &keep.version.to_string(), &text]);
            let rev = format!("{}-{hash}", generation + 1);
            let updated_at = updated_at.clone();
            docs.push(serde_json::json!({
                "_id": cid, "_rev": rev, "_revisions": { "start": generation + 1, "ids": [hash, parent] },
                "collection": collection.as_str(), "data": data, "updatedAt": updated_at,
            }));
            Doc { id: id.clone(), version: Version::Rev(rev), data: data.clone(), updated_at }
        }
        _ => keep.clone(),
    };
    Ok((bulk_docs(db, docs), Reply::Doc(reply)))
}

/// The tombstone that ends the losing leaf `loser` of the document `cid` (None: `loser` is not a revision).
fn tombstone(cid: &str, loser: &Version) -> Option<Value> {
    let (generation, parent) = loser.rev_parts()?;
    let hash = rev_hash(&["replikit:resolve:delete", &loser.to_string()]);
    Some(serde_json::json!({
        "_id": cid, "_rev": format!("{}-{hash}", generation + 1), "_deleted": true,
        "_revisions": { "start": generation + 1, "ids": [hash, parent] },
    }))
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
}
