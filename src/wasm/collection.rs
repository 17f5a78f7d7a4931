//! `Collection`: the CRUD calls as JavaScript sees them. Arguments are converted and checked here; what a call
//! does (cache, network, outbox) is decided by the core (`core::client`), and the executor carries it out.

use std::rc::Rc;

use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use web_sys::AbortSignal;

use super::convert::{id_of, json_of, object_of};
use super::errors::to_js;
use super::executor::Executor;
use super::js::get;
use crate::core::cache::{ReadPolicy, READ_POLICIES};
use crate::core::client::CallSpec;
use crate::core::document::Version;
use crate::core::fields::Fields;
use crate::core::outbox::WriteKind;
use crate::core::types::{DURABILITIES, READ_PREFERENCES};
use crate::core::{check_id, CollectionName, Durability, Error, ReadPreference};

/// A handle on one collection of documents.
#[wasm_bindgen]
pub struct Collection {
    name: CollectionName,
    executor: Rc<Executor>,
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
            "readPreference" => raw.read_preference = f.one_of("readPreference", READ_PREFERENCES)?.map(Into::into),
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
const WRITE: &[&str] = &["ifVersion", "durability"];

impl Collection {
    pub fn new(name: CollectionName, executor: Rc<Executor>) -> Self {
        Collection { name, executor }
    }

    async fn write(
        &self,
        kind: WriteKind,
        id: Option<String>,
        data: Option<serde_json::Map<String, serde_json::Value>>,
        raw: RawCallOptions,
        signal: Option<AbortSignal>,
    ) -> Result<JsValue, JsValue> {
        let spec = CallSpec::Write {
            kind,
            collection: self.name.clone(),
            id,
            data,
            if_version: raw.if_version,
            durability: raw.durability,
        };
        self.executor.call(spec, signal).await
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
        if let Some(id) = &raw.id {
            check_id(id).map_err(|e| to_js(&e))?;
        }
        let id = raw.id.clone();
        self.write(WriteKind::Create, id, Some(data), raw, signal).await
    }

    /// The document `id`, or null when there is none (by the read policy: from an endpoint or the cache).
    pub async fn get(&self, id: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let id = id_of(&id)?;
        let (raw, signal) = call_options(&options, READ)?;
        let spec = CallSpec::Get {
            collection: self.name.clone(),
            id,
            read_preference: raw.read_preference,
            read_policy: raw.read_policy,
        };
        self.executor.call(spec, signal).await
    }

    /// Creates or replaces the document `id` with `data`; `ifVersion` makes it conditional.
    pub async fn replace(&self, id: JsValue, data: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let id = id_of(&id)?;
        let data = object_of(&data, "data").map_err(|e| to_js(&e))?;
        let (raw, signal) = call_options(&options, WRITE)?;
        self.write(WriteKind::Replace, Some(id), Some(data), raw, signal).await
    }

    /// Applies a JSON merge patch (RFC 7396: `null` removes a field) to the document `id`.
    pub async fn update(&self, id: JsValue, patch: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let id = id_of(&id)?;
        let patch = object_of(&patch, "patch").map_err(|e| to_js(&e))?;
        let (raw, signal) = call_options(&options, WRITE)?;
        self.write(WriteKind::Update, Some(id), Some(patch), raw, signal).await
    }

    /// Deletes the document `id`.
    pub async fn delete(&self, id: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let id = id_of(&id)?;
        let (raw, signal) = call_options(&options, WRITE)?;
        self.write(WriteKind::Delete, Some(id), None, raw, signal).await
    }

    /// One page of documents ordered by id: `{ items, next, meta }`; pass `next` as `after` for the next page.
    pub async fn list(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let (raw, signal) = call_options(&options, &["limit", "after", "readPreference", "readPolicy"])?;
        if raw.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
            return Err(to_js(&Error::invalid("limit", "must be between 1 and 1000")));
        }
        let spec = CallSpec::List {
            collection: self.name.clone(),
            limit: raw.limit,
            after: raw.after,
            read_preference: raw.read_preference,
            read_policy: raw.read_policy,
        };
        self.executor.call(spec, signal).await
    }
}
