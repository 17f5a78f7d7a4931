//! The core's outputs as JavaScript sees them: call results, failures (`ReplikitError` with `causes`), event
//! payloads, and the app's conflict function called with the core's question.

use js_sys::{Array, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::convert::{doc_to_js, object_of, raw_doc_to_js, to_js_value};
use super::errors::to_js;
use super::js::{get, object};
use crate::core::client::{
    ChangeSource, ClientEvent, Failure, OutboxResolution, Output, PageOut, ResolverAnswer, ResolverInput, Served,
};
use crate::core::outbox::OutboxEntry;
use crate::core::{Doc, Error};

fn set(obj: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &key.into(), value);
}

/// A document with `meta: { fromCache, pending, endpoint }`, from its response text when there is one.
pub fn served_to_js(s: &Served) -> JsValue {
    match &s.raw {
        Some(text) => raw_doc_to_js(text, s.from_cache, s.pending, s.endpoint.as_deref()),
        None => doc_to_js(&s.doc, s.from_cache, s.pending, s.endpoint.as_deref()),
    }
}

fn plain_doc(d: Option<&Doc>) -> JsValue {
    d.map(|d| doc_to_js(d, false, false, None)).unwrap_or(JsValue::NULL)
}

fn docs(list: &[Doc]) -> JsValue {
    let array = Array::new();
    for d in list {
        array.push(&doc_to_js(d, false, false, None));
    }
    array.into()
}

/// The outbox entry as the app sees it (`pendingWrites()`, events).
pub fn entry_to_js(e: &OutboxEntry) -> JsValue {
    js_sys::JSON::parse(&e.to_value().to_string()).unwrap_or(JsValue::NULL)
}

pub fn output_to_js(output: Output) -> JsValue {
    match output {
        Output::Doc(s) => served_to_js(&s),
        Output::Missing => JsValue::NULL,
        Output::Nothing => JsValue::UNDEFINED,
        Output::Page(page) => page_to_js(&page),
        Output::Pending(list) => {
            let array = Array::new();
            for e in &list {
                array.push(&entry_to_js(e));
            }
            array.into()
        }
    }
}

fn page_to_js(page: &PageOut) -> JsValue {
    let items = Array::new();
    for s in &page.items {
        items.push(&served_to_js(s));
    }
    let meta = object(&[
        ("fromCache", JsValue::from_bool(page.from_cache)),
        ("complete", JsValue::from_bool(page.complete)),
        ("endpoint", page.endpoint.as_deref().map(JsValue::from_str).unwrap_or(JsValue::NULL)),
    ]);
    let next = page.next.as_deref().map(JsValue::from_str).unwrap_or(JsValue::NULL);
    object(&[("items", items.into()), ("next", next), ("meta", meta)])
}

/// The `ReplikitError` of a failed call: with the endpoint and HTTP status of its last attempt, and `causes`.
pub fn failure_to_js(f: &Failure) -> JsValue {
    let js = to_js(&f.error);
    if let Some(url) = &f.endpoint {
        set(&js, "endpoint", &JsValue::from_str(url));
    }
    if let Some(status) = f.status {
        set(&js, "status", &JsValue::from_f64(status as f64));
    }
    if !f.causes.is_empty() {
        set(&js, "causes", &to_js_value(&f.causes));
    }
    js
}

/// The event's name and payload.
pub fn event_to_js(event: &ClientEvent) -> (&'static str, JsValue) {
    let payload = match event {
        ClientEvent::Topology(views) => to_js_value(views),
        ClientEvent::Primary { url, term } => object(&[
            ("url", url.as_deref().map(JsValue::from_str).unwrap_or(JsValue::NULL)),
            ("term", term.map(|t| JsValue::from_f64(t as f64)).unwrap_or(JsValue::NULL)),
        ]),
        ClientEvent::EndpointDown(v) | ClientEvent::EndpointUp(v) => to_js_value(v),
        ClientEvent::Retry { attempt, endpoint, error } => object(&[
            ("attempt", JsValue::from_f64(*attempt as f64)),
            ("endpoint", JsValue::from_str(endpoint)),
            ("error", to_js(error)),
        ]),
        ClientEvent::Change { collection, id, doc, source } => object(&[
            ("collection", JsValue::from_str(collection)),
            ("id", JsValue::from_str(id)),
            ("doc", doc.as_ref().map(served_to_js).unwrap_or(JsValue::NULL)),
            ("source", JsValue::from_str(if *source == ChangeSource::Tab { "tab" } else { "revalidate" })),
        ]),
        ClientEvent::Queued(entry) => entry_to_js(entry),
        ClientEvent::Synced { entry, doc } => {
            let payload = entry_to_js(entry);
            set(&payload, "doc", &doc.as_ref().map(served_to_js).unwrap_or(JsValue::NULL));
            payload
        }
        ClientEvent::OutboxConflict { entry, local, remote, resolution } => {
            let payload = entry_to_js(entry);
            set(&payload, "source", &"outbox".into());
            set(&payload, "local", &plain_doc(local.as_ref()));
            set(&payload, "remote", &plain_doc(remote.as_ref()));
            set(&payload, "base", &plain_doc(entry.base.as_ref()));
            let resolution = if *resolution == OutboxResolution::Dropped { "dropped" } else { "reapplied" };
            set(&payload, "resolution", &resolution.into());
            payload
        }
        ClientEvent::RevisionConflict { collection, id, versions, doc, merged } => object(&[
            ("source", "revisions".into()),
            ("collection", JsValue::from_str(collection)),
            ("id", JsValue::from_str(id)),
            ("versions", docs(versions)),
            ("doc", doc_to_js(doc, false, false, None)),
            ("resolution", JsValue::from_str(if *merged { "merged" } else { "kept" })),
        ]),
        ClientEvent::SyncFailed { entry, failure } | ClientEvent::SyncPaused { entry, failure } => {
            let payload = entry_to_js(entry);
            set(&payload, "error", &failure_to_js(failure));
            payload
        }
        ClientEvent::SessionLost { term, position } => {
            object(&[("term", JsValue::from_f64(*term as f64)), ("position", JsValue::from_f64(*position as f64))])
        }
        ClientEvent::StorageError(e) => to_js(e),
    };
    (event.name(), payload)
}

/// Calls the app's conflict function with the core's question: `{ local, remote, base }` for a queued write,
/// with `versions`, `collection` and `id` too for revisions. A throw or a non-object answer is an
/// `invalid_argument` error naming `conflict`.
pub async fn call_resolver(resolver: &js_sys::Function, input: &ResolverInput) -> ResolverAnswer {
    let arg = match input {
        ResolverInput::Outbox { local, remote, base } => object(&[
            ("local", plain_doc(local.as_ref())),
            ("remote", plain_doc(remote.as_ref())),
            ("base", plain_doc(base.as_ref())),
        ]),
        ResolverInput::Revisions { collection, id, remote, versions } => object(&[
            ("local", JsValue::NULL),
            ("remote", doc_to_js(remote, false, false, None)),
            ("base", JsValue::NULL),
            ("versions", docs(versions)),
            ("collection", JsValue::from_str(collection)),
            ("id", JsValue::from_str(id)),
        ]),
    };
    let thrown = |e: JsValue| {
        let message = get(&e, "message").as_string().unwrap_or_else(|| "the conflict resolver failed".into());
        Error::invalid("conflict", format!("the resolver threw: {message}"))
    };
    let mut answer = resolver.call1(&JsValue::UNDEFINED, &arg).map_err(thrown)?;
    if answer.is_instance_of::<Promise>() {
        answer = JsFuture::from(Promise::from(answer)).await.map_err(thrown)?;
    }
    if answer.is_null() || answer.is_undefined() {
        return Ok(None);
    }
    object_of(&answer, "conflict resolver result").map(Some)
}
