//! Offline writes: queueing a write no primary could take, and flushing the outbox (in order, one tab at a
//! time through Web Locks) when one can, with conflicts settled by the configured strategy.

use std::future::Future;
use std::rc::Rc;

use js_sys::{Function, Promise};
use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::convert::doc_to_js;
use super::driver::{Driver, Failure};
use super::js::{get, now_ms, object};
use super::local::Local;
use crate::core::cache::Entry;
use crate::core::document::Version;
use crate::core::merge_patch;
use crate::core::outbox::{resolve, should_queue, OutboxEntry, Resolution, WriteKind};
use crate::core::time::format_rfc3339_ms;
use crate::core::{CallOptions, Doc, Error, Reply};

/// A write to queue: what, where, and the key its first attempt used.
pub struct Queued {
    pub kind: WriteKind,
    pub collection: String,
    pub id: String,
    pub data: Option<Map<String, Value>>,
    pub if_version: Option<Version>,
    pub key: String,
    /// When the app made the write (its first attempt carried the same time).
    pub written_at_ms: u64,
}

/// Queues a write and applies it to the cache; returns the document as it will be once synced (None for a
/// delete). An `update` of a document that is not cached shows only the patched fields until it syncs.
pub async fn queue(driver: &Rc<Driver>, local: &Rc<Local>, w: Queued) -> Option<Doc> {
    let base = local.get(&w.collection, &w.id).and_then(|e| e.doc);
    let base_version = match w.kind {
        WriteKind::Create => None,
        _ => w.if_version.clone().or(base.as_ref().map(|d| d.version.clone())),
    };
    let now = w.written_at_ms;
    let version = driver.router().adapter().predicted_version(base_version.as_ref(), &w.key);
    let data = match w.kind {
        WriteKind::Create | WriteKind::Replace => w.data.clone(),
        WriteKind::Update => {
            let mut merged = base.as_ref().map(|d| d.data.clone()).unwrap_or_default();
            merge_patch::apply(&mut merged, w.data.as_ref().unwrap_or(&Map::new()));
            Some(merged)
        }
        WriteKind::Delete => None,
    };
    let optimistic =
        data.map(|data| Doc { id: w.id.clone(), version, data, updated_at: format_rfc3339_ms(now as i64) });
    let entry = OutboxEntry {
        seq: local.next_seq(),
        key: w.key,
        kind: w.kind,
        collection: w.collection.clone(),
        id: w.id.clone(),
        data: w.data,
        base_version,
        base,
        edited_at_ms: now,
        reapplied: 0,
    };
    let cached =
        Entry { collection: w.collection, id: w.id, doc: optimistic.clone(), stored_at_ms: now, pending: true };
    local.enqueue(&entry, cached).await;
    driver.emit("queued", &entry_to_js(&entry));
    report_store_errors(driver, local);
    optimistic
}

/// The outbox entry as the app sees it (`pendingWrites()`, events).
pub fn entry_to_js(e: &OutboxEntry) -> JsValue {
    js_sys::JSON::parse(&e.to_value().to_string()).unwrap_or(JsValue::NULL)
}

pub fn report_store_errors(driver: &Driver, local: &Local) {
    for e in local.take_store_errors() {
        driver.emit("storageError", &e);
    }
}

/// Flushes the outbox once, unless a flush is already running here. `Ok(true)`: it is empty now;
/// `Ok(false)`: no primary yet (try later); `Err`: the first write that failed for good (it was removed).
pub async fn flush_once(driver: &Rc<Driver>, local: &Rc<Local>) -> Result<bool, Failure> {
    if local.flushing.replace(true) {
        return Ok(false);
    }
    let lock = format!("replikit:{}:outbox", local.options.name);
    let result = with_lock(&lock, drain(driver, local)).await;
    local.flushing.set(false);
    report_store_errors(driver, local);
    result
}

async fn drain(driver: &Rc<Driver>, local: &Rc<Local>) -> Result<bool, Failure> {
    let mut first_failure: Option<Failure> = None;
    loop {
        if driver.is_closed() {
            return Ok(false);
        }
        // Read the store each time: another tab may have flushed or queued meanwhile.
        let Some(entry) = local.outbox().await.into_iter().next() else {
            break;
        };
        let action = match entry.action() {
            Ok(a) => a,
            Err(e) => {
                failed(driver, local, &entry, Failure::from(e), &mut first_failure).await;
                continue;
            }
        };
        // The edit time travels with the key: a retry that writes again writes the same document.
        let options = CallOptions {
            idempotency_key: Some(entry.key.clone()),
            written_at_ms: Some(entry.edited_at_ms),
            ..Default::default()
        };
        match driver.run(action, options, None).await {
            Ok(done) => {
                let endpoint = driver.url(done.endpoint);
                synced(driver, local, &entry, done.reply, &endpoint).await
            }
            Err(Failure { error: Error::Conflict { current }, .. }) => {
                let current = current.and_then(|c| Doc::from_value(c).ok());
                if let Err(f) = conflict(driver, local, &entry, current).await {
                    failed(driver, local, &entry, f, &mut first_failure).await;
                }
            }
            Err(f) if should_queue(&f.error) => return first_failure.map_or(Ok(false), Err),
            Err(f) => failed(driver, local, &entry, f, &mut first_failure).await,
        }
    }
    first_failure.map_or(Ok(true), Err)
}

async fn still_pending(local: &Local, entry: &OutboxEntry) -> bool {
    local.outbox().await.iter().any(|e| e.collection == entry.collection && e.id == entry.id)
}

/// Makes the cache show the server's `doc` (or its absence) once no local write to it is pending.
async fn settle(local: &Local, entry: &OutboxEntry, doc: Option<&Doc>) {
    if still_pending(local, entry).await {
        return;
    }
    match doc {
        Some(d) => {
            let e = Entry {
                collection: entry.collection.clone(),
                id: entry.id.clone(),
                doc: Some(d.clone()),
                stored_at_ms: now_ms(),
                pending: false,
            };
            local.put(e, true).await;
        }
        None => local.remove(&entry.collection, &entry.id, true).await,
    }
}

async fn synced(driver: &Rc<Driver>, local: &Rc<Local>, entry: &OutboxEntry, reply: Reply, endpoint: &str) {
    local.dequeue(entry.seq).await;
    let doc = match reply {
        Reply::Doc(d) => Some(d),
        _ => None,
    };
    settle(local, entry, doc.as_ref()).await;
    let payload = entry_to_js(entry);
    let doc_js = doc.as_ref().map(|d| doc_to_js(d, false, false, Some(endpoint))).unwrap_or(JsValue::NULL);
    let _ = js_sys::Reflect::set(&payload, &"doc".into(), &doc_js);
    driver.emit("synced", &payload);
}

async fn failed(driver: &Rc<Driver>, local: &Rc<Local>, entry: &OutboxEntry, f: Failure, first: &mut Option<Failure>) {
    local.dequeue(entry.seq).await;
    if !still_pending(local, entry).await {
        // What the cache shows was never accepted: forget it, so the next read asks an endpoint.
        local.remove(&entry.collection, &entry.id, true).await;
    }
    let payload = entry_to_js(entry);
    let _ = js_sys::Reflect::set(&payload, &"error".into(), &f.to_js());
    driver.emit("syncFailed", &payload);
    first.get_or_insert(f);
}

async fn conflict(
    driver: &Rc<Driver>,
    local: &Rc<Local>,
    entry: &OutboxEntry,
    current: Option<Doc>,
) -> Result<(), Failure> {
    let strategy = local.options.conflict;
    let local_doc = local.get(&entry.collection, &entry.id).and_then(|e| e.doc);
    let resolution = match resolve(strategy, entry, current.as_ref()) {
        Resolution::AskApp => ask_app(local, entry, local_doc.as_ref(), current.as_ref()).await?,
        r => r,
    };
    let js_doc = |d: Option<&Doc>| d.map(|d| doc_to_js(d, false, false, None)).unwrap_or(JsValue::NULL);
    let payload = entry_to_js(entry);
    for (k, v) in [
        ("local", js_doc(local_doc.as_ref())),
        ("remote", js_doc(current.as_ref())),
        ("base", js_doc(entry.base.as_ref())),
        ("resolution", JsValue::from_str(if matches!(resolution, Resolution::Drop) { "dropped" } else { "reapplied" })),
    ] {
        let _ = js_sys::Reflect::set(&payload, &k.into(), &v);
    }
    driver.emit("conflict", &payload);
    match resolution {
        Resolution::Reapply(next) => local.replace_queued(&next).await,
        _ => {
            local.dequeue(entry.seq).await;
            settle(local, entry, current.as_ref()).await;
        }
    }
    Ok(())
}

/// Calls the app's resolver with `{ local, remote, base }`; its answer (or its promise's) is the data to
/// write over the current version, or null to drop the local change.
async fn ask_app(
    local: &Local,
    entry: &OutboxEntry,
    mine: Option<&Doc>,
    current: Option<&Doc>,
) -> Result<Resolution, Failure> {
    let js_doc = |d: Option<&Doc>| d.map(|d| doc_to_js(d, false, false, None)).unwrap_or(JsValue::NULL);
    let arg = object(&[("local", js_doc(mine)), ("remote", js_doc(current)), ("base", js_doc(entry.base.as_ref()))]);
    Ok(match call_resolver(local, &arg).await? {
        None => Resolution::Drop,
        Some(data) => Resolution::Reapply(Box::new(entry.reapply(current, Some(data)))),
    })
}

/// Calls the app's conflict resolver with `arg`: the data it answers (or its promise resolves to), or None for
/// null/undefined. A throw or a non-object answer is an `invalid_argument` error naming `conflict`.
pub async fn call_resolver(local: &Local, arg: &JsValue) -> Result<Option<Map<String, Value>>, Failure> {
    let Some(resolver) = local.options.resolver.as_ref() else {
        return Ok(None);
    };
    let thrown = |e: JsValue| {
        let message = get(&e, "message").as_string().unwrap_or_else(|| "the conflict resolver failed".into());
        Failure::from(Error::invalid("conflict", format!("the resolver threw: {message}")))
    };
    let mut answer = resolver.call1(&JsValue::UNDEFINED, arg).map_err(thrown)?;
    if answer.is_instance_of::<Promise>() {
        answer = JsFuture::from(Promise::from(answer)).await.map_err(thrown)?;
    }
    if answer.is_null() || answer.is_undefined() {
        return Ok(None);
    }
    super::convert::object_of(&answer, "conflict resolver result").map(Some).map_err(Failure::from)
}

/// Runs `f` holding the Web Lock `name` (one tab at a time); without `navigator.locks`, just runs it.
async fn with_lock<T, F: Future<Output = T>>(name: &str, f: F) -> T {
    let locks = get(&get(&js_sys::global(), "navigator"), "locks");
    let Some(request) = get(&locks, "request").dyn_ref::<Function>().cloned() else {
        return f.await;
    };
    let mut release: Option<Function> = None;
    let acquired = Promise::new(&mut |acquired_resolve, _| {
        let held = Promise::new(&mut |resolve, _| release = Some(resolve));
        let on_acquired = acquired_resolve.clone();
        let callback = Closure::once_into_js(move |_lock: JsValue| {
            let _ = on_acquired.call0(&JsValue::UNDEFINED);
            held
        });
        // If the lock cannot be had (a sandboxed or opaque origin), run without it rather than never.
        match request.call2(&locks, &JsValue::from_str(name), &callback) {
            Ok(p) if p.is_object() => {
                let fallback = acquired_resolve.clone();
                // once_into_js: JS owns the closure and frees it after its one call.
                let on_error = Closure::once_into_js(move |_e: JsValue| {
                    let _ = fallback.call0(&JsValue::UNDEFINED);
                });
                if let Some(catch) = get(&p, "catch").dyn_ref::<Function>() {
                    let _ = catch.call1(&p, &on_error);
                }
            }
            _ => {
                let _ = acquired_resolve.call0(&JsValue::UNDEFINED);
            }
        }
    });
    let _ = JsFuture::from(acquired).await;
    let result = f.await;
    if let Some(release) = release {
        let _ = release.call0(&JsValue::UNDEFINED);
    }
    result
}
