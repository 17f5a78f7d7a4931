//! Multi-primary revision conflicts: two nodes took writes to one document before they replicated, and a read
//! found the conflicting revisions. The configured strategy keeps one (or the app's function merges them), the
//! losers are deleted, and `conflict` is emitted. The revisions written are derived from the conflict (see
//! `core::protocol::couchdb`), so clients settling the same conflict alike converge instead of conflicting again.

use std::rc::Rc;

use wasm_bindgen::prelude::*;

use super::convert::doc_to_js;
use super::driver::{Driver, Failure};
use super::js::object;
use super::local::Local;
use super::sync::call_resolver;
use crate::core::document::Version;
use crate::core::outbox::{pick_revision, RevisionChoice};
use crate::core::time::parse_rfc3339_ms;
use crate::core::{Action, CallOptions, CollectionName, Doc, Error, Reply};

/// Settles the conflict between `winner` (the server's pick) and the `conflicts` revisions; resolves to the
/// document that stands. A failure leaves the conflict for the next read to settle.
pub async fn settle(
    driver: &Rc<Driver>,
    local: &Rc<Local>,
    collection: &CollectionName,
    winner: Doc,
    conflicts: Vec<Version>,
) -> Result<Doc, Failure> {
    let id = winner.id.clone();
    let action = Action::Revisions { collection: collection.clone(), id: id.clone(), revs: conflicts };
    let Reply::Versions(others) = driver.run(action, CallOptions::default(), None).await?.reply else {
        return Err(Failure::from(Error::Protocol {
            message: "conflicting revisions answered with no versions".into(),
        }));
    };
    let mut versions = vec![winner.clone()];
    versions.extend(others.into_iter().filter(|d| d.version != winner.version));
    if versions.len() == 1 {
        return Ok(winner); // the losers are gone already (another client settled it)
    }
    let docs_js = || {
        let list = js_sys::Array::new();
        for d in &versions {
            list.push(&doc_to_js(d, false, false, None));
        }
        JsValue::from(list)
    };
    let (keep, merged) = match pick_revision(local.options.conflict, &versions) {
        RevisionChoice::Keep(i) => (i, None),
        RevisionChoice::AskApp => {
            // The same resolver as the outbox's: `remote` is the server's winner, `versions` all of them.
            let arg = object(&[
                ("local", JsValue::NULL),
                ("remote", doc_to_js(&winner, false, false, None)),
                ("base", JsValue::NULL),
                ("versions", docs_js()),
                ("collection", JsValue::from_str(collection.as_str())),
                ("id", JsValue::from_str(&id)),
            ]);
            (0, call_resolver(local, &arg).await?)
        }
    };
    let losers = versions.iter().enumerate().filter(|(i, _)| *i != keep).map(|(_, d)| d.version.clone()).collect();
    let was_merged = merged.is_some();
    // A merge is as new as the newest version in it; derived from the conflict, so clients agree on it.
    let updated_at = versions
        .iter()
        .max_by_key(|d| parse_rfc3339_ms(&d.updated_at).unwrap_or(i64::MIN))
        .map(|d| d.updated_at.clone())
        .unwrap_or_default();
    let resolve = Action::Resolve {
        collection: collection.clone(),
        id: id.clone(),
        keep: versions[keep].clone(),
        merged,
        losers,
        updated_at,
    };
    let Reply::Doc(result) = driver.run(resolve, CallOptions::default(), None).await?.reply else {
        return Err(Failure::from(Error::Protocol {
            message: "a conflict resolution answered with no document".into(),
        }));
    };
    local.put_doc(collection.as_str(), &result, false).await;
    let payload = object(&[
        ("source", "revisions".into()),
        ("collection", JsValue::from_str(collection.as_str())),
        ("id", JsValue::from_str(&id)),
        ("versions", docs_js()),
        ("doc", doc_to_js(&result, false, false, None)),
        ("resolution", JsValue::from_str(if was_merged { "merged" } else { "kept" })),
    ]);
    driver.emit("conflict", &payload);
    Ok(result)
}
