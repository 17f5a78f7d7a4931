//! `Collection`: CRUD calls, with the read policy deciding between cache and network, and writes that no
//! primary could take going to the outbox (when `offline.queueWrites` is on).

use std::rc::Rc;

use js_sys::{Object, Reflect};
use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::AbortSignal;

use super::convert::{doc_to_js, id_of, json_of, json_to_js, object_of, raw_doc_to_js};
use super::driver::{Driver, Failure};
use super::errors::to_js;
use super::js::{get, now_ms, object};
use super::local::{browser_offline, Local};
use super::revisions;
use super::sync::{flush_once, queue, Queued};
use crate::core::action::Page;
use crate::core::cache::{plan, ReadPlan, ReadPolicy, READ_POLICIES};
use crate::core::document::Version;
use crate::core::fields::Fields;
use crate::core::outbox::{should_queue, WriteKind};
use crate::core::types::{DURABILITIES, READ_PREFERENCES};
use crate::core::{check_id, Action, CallOptions, CollectionName, Doc, Durability, Error, ReadPreference, Reply};

/// A handle on one collection of documents.
#[wasm_bindgen]
pub struct Collection {
    name: CollectionName,
    driver: Rc<Driver>,
    local: Rc<Local>,
}

/// Per-call options, read from the JS object (after `signal` was taken out).
#[derive(Default)]
struct RawCallOptions {
    id: Option<String>,
    if_version: Option<Version>,
    read_preference: Option<ReadPreference>,
    read_policy: Option<ReadPolicy>,
    durability: Option<Durability>,
    limit: Option<u32>,
    after: Option<String>,
}

/// Per-call options: `signal` is taken out, the rest must be among the keys this call accepts.
fn call_options(options: &JsValue, allowed: &[&'static str]) -> Result<(RawCallOptions, Option<AbortSignal>), JsValue> {
    read_call_options(options, allowed).map_err(|e| to_js(&e))
}

fn read_call_options(
    options: &JsValue,
    allowed: &[&'static str],
) -> Result<(RawCallOptions, Option<AbortSignal>), Error> {
    if options.is_undefined() || options.is_null() {
        return Ok((RawCallOptions::default(), None));
    }
    if !options.is_object() {
        return Err(Error::invalid("options", "must be an object"));
    }
    let copy = Object::assign(&Object::new(), options.unchecked_ref());
    let signal = get(&copy, "signal");
    let _ = Reflect::delete_property(&copy, &"signal".into());
    let signal = if signal.is_undefined() {
        None
    } else {
        Some(signal.dyn_into::<AbortSignal>().map_err(|_| Error::invalid("signal", "must be an AbortSignal"))?)
    };
    let json = json_of(&copy.into(), "options")?;
    let mut f = Fields::new(&json, "")?;
    let mut raw = RawCallOptions::default();
    for &key in allowed {
        match key {
            "id" => raw.id = f.string("id")?,
            "ifVersion" => {
                raw.if_version = match f.get("ifVersion") {
                    None => None,
                    Some(v) => Some(Version::from_json(v).ok_or_else(|| {
                        Error::invalid(
                            "ifVersion",
                            format!("must be a document's version (a whole number or a revision string), got {v}"),
                        )
                    })?),
                }
            }
            "readPreference" => raw.read_preference = f.one_of("readPreference", READ_PREFERENCES)?,
            "readPolicy" => raw.read_policy = f.one_of("readPolicy", READ_POLICIES)?,
            "durability" => raw.durability = f.one_of("durability", DURABILITIES)?,
            "limit" => raw.limit = f.u32("limit")?,
            "after" => raw.after = f.string("after")?,
            _ => {}
        }
    }
    f.finish()?;
    Ok((raw, signal))
}

const READ: &[&str] = &["readPreference", "readPolicy"];

/// A document an endpoint just served: from its own response text when there is one.
fn served(doc: &Doc, raw: Option<&str>, endpoint: &str) -> JsValue {
    match raw {
        Some(text) => raw_doc_to_js(text, false, false, Some(endpoint)),
        None => doc_to_js(doc, false, false, Some(endpoint)),
    }
}
const WRITE: &[&str] = &["ifVersion", "durability"];

impl Collection {
    pub fn new(name: CollectionName, driver: Rc<Driver>, local: Rc<Local>) -> Self {
        Collection { name, driver, local }
    }

    fn c(&self) -> &str {
        self.name.as_str()
    }

    /// Sends a write; if no primary could take it and queueing is on, queues it instead.
    async fn write(
        &self,
        kind: WriteKind,
        id: String,
        data: Option<Map<String, Value>>,
        raw: RawCallOptions,
        signal: Option<AbortSignal>,
    ) -> Result<JsValue, JsValue> {
        let key = self.driver.new_id();
        let written_at_ms = now_ms();
        let queue_writes = self.local.options.queue_writes;
        // A document with a queued write takes its next write through the outbox too, so the server sees this
        // client's writes to it in the order they were made.
        let behind_queue = queue_writes && self.local.get(self.c(), &id).is_some_and(|e| e.pending);
        if !(behind_queue || queue_writes && browser_offline()) {
            let action = match kind {
                WriteKind::Create => Action::Create {
                    collection: self.name.clone(),
                    id: id.clone(),
                    data: data.clone().unwrap_or_default(),
                },
                WriteKind::Replace => Action::Replace {
                    collection: self.name.clone(),
                    id: id.clone(),
                    data: data.clone().unwrap_or_default(),
                    if_version: raw.if_version.clone(),
                },
                WriteKind::Update => Action::Update {
                    collection: self.name.clone(),
                    id: id.clone(),
                    patch: data.clone().unwrap_or_default(),
                    if_version: raw.if_version.clone(),
                },
                WriteKind::Delete => {
                    Action::Delete { collection: self.name.clone(), id: id.clone(), if_version: raw.if_version.clone() }
                }
            };
            let options = CallOptions {
                read_preference: None,
                durability: raw.durability,
                idempotency_key: Some(key.clone()),
                written_at_ms: Some(written_at_ms),
            };
            match self.driver.run(action, options, signal).await {
                Ok(done) => {
                    let endpoint = self.driver.url(done.endpoint);
                    return Ok(match done.reply {
                        Reply::Doc(doc) => {
                            self.local.put_doc(self.c(), &doc, true).await;
                            served(&doc, done.raw.as_deref(), &endpoint)
                        }
                        _ => {
                            self.local.remove(self.c(), &id, true).await;
                            JsValue::UNDEFINED
                        }
                    });
                }
                Err(f) if queue_writes && should_queue(&f.error) => {}
                Err(f) => return Err(f.to_js()),
            }
        }
        let queued =
            Queued { kind, collection: self.c().to_string(), id, data, if_version: raw.if_version, key, written_at_ms };
        let doc = queue(&self.driver, &self.local, queued).await;
        if behind_queue && !browser_offline() {
            let (driver, local) = (self.driver.clone(), self.local.clone());
            spawn_local(async move {
                let _ = flush_once(&driver, &local).await;
            });
        }
        Ok(doc.map(|d| doc_to_js(&d, true, true, None)).unwrap_or(JsValue::UNDEFINED))
    }

    /// Revalidates a cached document in the background; emits `change` if the server's differs.
    fn revalidate(&self, id: String, cached_version: Option<Version>) {
        let (driver, local, collection) = (self.driver.clone(), self.local.clone(), self.name.clone());
        spawn_local(async move {
            let action = Action::Get { collection: collection.clone(), id: id.clone(), if_none_match: cached_version };
            let Ok(done) = driver.run(action, CallOptions::default(), None).await else {
                return;
            };
            let endpoint = driver.url(done.endpoint);
            let changed = match done.reply {
                Reply::Doc(doc) => {
                    let doc = match done.conflicts.is_empty() {
                        true => doc,
                        false => revisions::settle(&driver, &local, &collection, doc.clone(), done.conflicts)
                            .await
                            .unwrap_or(doc),
                    };
                    local.put_doc(collection.as_str(), &doc, false).await;
                    Some(doc_to_js(&doc, false, false, Some(&endpoint)))
                }
                Reply::Missing => {
                    local.remove(collection.as_str(), &id, false).await;
                    Some(JsValue::NULL)
                }
                _ => None,
            };
            if let Some(doc) = changed {
                let payload = object(&[
                    ("collection", JsValue::from_str(collection.as_str())),
                    ("id", JsValue::from_str(&id)),
                    ("doc", doc),
                    ("source", "revalidate".into()),
                ]);
                driver.emit("change", &payload);
            }
        });
    }

    async fn read(&self, id: String, raw: RawCallOptions, signal: Option<AbortSignal>) -> Result<JsValue, JsValue> {
        let policy = raw.read_policy.unwrap_or(self.local.options.policy);
        let cached = self.local.get(self.c(), &id);
        let cached_js = |e: &crate::core::cache::Entry, endpoint: Option<&str>| match &e.doc {
            Some(d) => doc_to_js(d, true, e.pending, endpoint),
            None => JsValue::NULL,
        };
        let fallback = match plan(policy, cached.as_ref(), self.local.options.ttl_ms, now_ms()) {
            ReadPlan::Cache => return Ok(cached.as_ref().map(|e| cached_js(e, None)).unwrap_or(JsValue::NULL)),
            ReadPlan::CacheThenRevalidate => {
                let entry = cached.expect("the plan only says so when an entry exists");
                self.revalidate(id, entry.doc.as_ref().map(|d| d.version.clone()));
                return Ok(cached_js(&entry, None));
            }
            ReadPlan::Network { fallback } => fallback,
        };
        // Revalidate what is cached with If-None-Match (a 304 serves it), except when the app asked for the
        // network's answer only.
        let if_none_match = match policy {
            ReadPolicy::NetworkOnly => None,
            _ => cached.as_ref().and_then(|e| e.doc.as_ref()).map(|d| d.version.clone()),
        };
        let action = Action::Get { collection: self.name.clone(), id: id.clone(), if_none_match };
        let options = CallOptions { read_preference: raw.read_preference, ..Default::default() };
        match self.driver.run(action, options, signal).await {
            Ok(done) => {
                let endpoint = self.driver.url(done.endpoint);
                Ok(match done.reply {
                    Reply::Doc(doc) if !done.conflicts.is_empty() => {
                        match revisions::settle(&self.driver, &self.local, &self.name, doc.clone(), done.conflicts)
                            .await
                        {
                            Ok(settled) => doc_to_js(&settled, false, false, Some(&endpoint)),
                            // The app's resolver failed: that is the app's to see.
                            Err(f) if matches!(f.error, Error::InvalidArgument { .. }) => return Err(f.to_js()),
                            // A node went away meanwhile: the read still has its answer; the next one settles it.
                            Err(_) => {
                                self.local.put_doc(self.c(), &doc, false).await;
                                doc_to_js(&doc, false, false, Some(&endpoint))
                            }
                        }
                    }
                    Reply::Doc(doc) => {
                        self.local.put_doc(self.c(), &doc, false).await;
                        served(&doc, done.raw.as_deref(), &endpoint)
                    }
                    Reply::NotModified => match &cached {
                        Some(e) => {
                            if let Some(d) = &e.doc {
                                self.local.put_doc(self.c(), d, false).await; // confirmed fresh
                            }
                            cached_js(e, Some(&endpoint))
                        }
                        None => JsValue::NULL,
                    },
                    _ => {
                        self.local.remove(self.c(), &id, false).await;
                        JsValue::NULL
                    }
                })
            }
            Err(f) if fallback && cached.is_some() && should_queue(&f.error) => {
                Ok(cached_js(cached.as_ref().unwrap(), None))
            }
            Err(f) => Err(f.to_js()),
        }
    }

    async fn list_page(&self, raw: RawCallOptions, signal: Option<AbortSignal>) -> Result<JsValue, Failure> {
        let policy = raw.read_policy.unwrap_or(self.local.options.policy);
        let from_cache = || {
            let docs = self.local.documents(self.c());
            let after = raw.after.clone().unwrap_or_default();
            let limit = raw.limit.unwrap_or(100) as usize;
            let items: Vec<Doc> = docs.into_iter().filter(|d| d.id > after).take(limit + 1).collect();
            let next = (items.len() > limit).then(|| items[limit - 1].id.clone());
            let list = js_sys::Array::new();
            for d in items.iter().take(limit) {
                list.push(&doc_to_js(d, true, self.local.get(self.c(), &d.id).is_some_and(|e| e.pending), None));
            }
            object(&[("items", list.into()), ("next", next.map(|n| JsValue::from_str(&n)).unwrap_or(JsValue::NULL))])
        };
        if policy == ReadPolicy::CacheOnly {
            return Ok(from_cache());
        }
        let action = Action::List { collection: self.name.clone(), limit: raw.limit, after: raw.after.clone() };
        let options = CallOptions { read_preference: raw.read_preference, ..Default::default() };
        match self.driver.run(action, options, signal).await {
            Ok(done) => {
                let Reply::Page(Page { items, next, conflicted }) = done.reply else {
                    return Err(Failure::from(Error::Protocol { message: "a list answered with no page".into() }));
                };
                let endpoint = self.driver.url(done.endpoint);
                let list = js_sys::Array::new();
                for d in &items {
                    self.local.put_doc(self.c(), d, false).await;
                    list.push(&doc_to_js(d, false, false, Some(&endpoint)));
                }
                let next = next.map(|n| json_to_js(&Value::String(n))).unwrap_or(JsValue::NULL);
                // Conflicted documents are listed with the server's pick and settled in the background
                // (`conflict` events tell when).
                for id in conflicted {
                    self.revalidate(id, None);
                }
                Ok(object(&[("items", list.into()), ("next", next)]))
            }
            Err(f) if policy != ReadPolicy::NetworkOnly && self.local.enabled() && should_queue(&f.error) => {
                Ok(from_cache())
            }
            Err(f) => Err(f),
        }
    }
}

#[wasm_bindgen]
impl Collection {
    /// The collection's name.
    #[wasm_bindgen(getter, js_name = name)]
    pub fn name_js(&self) -> String {
        self.name.as_str().to_string()
    }

    /// Creates a document (a UUIDv7 id unless `options.id` is given). Resolves to the stored `Doc`, or with
    /// `meta.pending` when it was queued offline.
    pub async fn create(&self, data: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let data = object_of(&data, "data").map_err(|e| to_js(&e))?;
        let (raw, signal) = call_options(&options, &["id", "durability"])?;
        let id = match &raw.id {
            Some(id) => {
                check_id(id).map_err(|e| to_js(&e))?;
                id.clone()
            }
            None => self.driver.new_id(),
        };
        self.write(WriteKind::Create, id, Some(data), raw, signal).await
    }

    /// The document `id`, or null when there is none (by the read policy: from an endpoint or the cache).
    pub async fn get(&self, id: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let id = id_of(&id)?;
        let (raw, signal) = call_options(&options, READ)?;
        self.read(id, raw, signal).await
    }

    /// Creates or replaces the document `id` with `data`; `ifVersion` makes it conditional.
    pub async fn replace(&self, id: JsValue, data: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let id = id_of(&id)?;
        let data = object_of(&data, "data").map_err(|e| to_js(&e))?;
        let (raw, signal) = call_options(&options, WRITE)?;
        self.write(WriteKind::Replace, id, Some(data), raw, signal).await
    }

    /// Applies a JSON merge patch (RFC 7396: `null` removes a field) to the document `id`.
    pub async fn update(&self, id: JsValue, patch: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let id = id_of(&id)?;
        let patch = object_of(&patch, "patch").map_err(|e| to_js(&e))?;
        let (raw, signal) = call_options(&options, WRITE)?;
        self.write(WriteKind::Update, id, Some(patch), raw, signal).await
    }

    /// Deletes the document `id`.
    pub async fn delete(&self, id: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let id = id_of(&id)?;
        let (raw, signal) = call_options(&options, WRITE)?;
        self.write(WriteKind::Delete, id, None, raw, signal).await
    }

    /// One page of documents ordered by id: `{ items, next }`; pass `next` as `after` for the next page.
    pub async fn list(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let (raw, signal) = call_options(&options, &["limit", "after", "readPreference", "readPolicy"])?;
        if raw.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
            return Err(to_js(&Error::invalid("limit", "must be between 1 and 1000")));
        }
        self.list_page(raw, signal).await.map_err(|f| f.to_js())
    }
}
