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
use crate::core::client::args::{self, CallArgs};
use crate::core::client::CallSpec;
use crate::core::outbox::WriteKind;
use crate::core::{CollectionName, Error};

/// A handle on one collection of documents.
#[wasm_bindgen]
pub struct Collection {
    name: CollectionName,
    executor: Rc<Executor>,
}

/// Per-call options: `signal` (a JS object) is taken out here; the core checks the rest.
fn call_options(options: &JsValue, allowed: &[&'static str]) -> Result<(CallArgs, Option<AbortSignal>), JsValue> {
    read_call_options(options, allowed).map_err(|e| to_js(&e))
}

fn read_call_options(options: &JsValue, allowed: &[&'static str]) -> Result<(CallArgs, Option<AbortSignal>), Error> {
    if options.is_undefined() || options.is_null() {
        return Ok((CallArgs::default(), None));
    }
    if !options.is_object() {
        return Err(Error::invalid("options", "must be an object"));
    }
    let copy = Object::assign(&Object::new(), options.unchecked_ref());
    let signal = get(&copy, "signal");
    let _ = Reflect::delete_property(&copy, &"signal".into());
    let signal = match signal.is_undefined() {
        true => None,
        false => {
            Some(signal.dyn_into::<AbortSignal>().map_err(|_| Error::invalid("signal", "must be an AbortSignal"))?)
        }
    };
    Ok((CallArgs::parse(&json_of(&copy.into(), "options")?, allowed)?, signal))
}

impl Collection {
    pub fn new(name: CollectionName, executor: Rc<Executor>) -> Self {
        Collection { name, executor }
    }

    async fn write(
        &self,
        kind: WriteKind,
        id: Option<String>,
        data: Option<serde_json::Map<String, serde_json::Value>>,
        raw: CallArgs,
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
        let (raw, signal) = call_options(&options, args::CREATE)?;
        let id = raw.id.clone();
        self.write(WriteKind::Create, id, Some(data), raw, signal).await
    }

    /// The document `id`, or null when there is none (by the read policy: from an endpoint or the cache).
    pub async fn get(&self, id: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let id = id_of(&id)?;
        let (raw, signal) = call_options(&options, args::READ)?;
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
        let (raw, signal) = call_options(&options, args::WRITE)?;
        self.write(WriteKind::Replace, Some(id), Some(data), raw, signal).await
    }

    /// Applies a JSON merge patch (RFC 7396: `null` removes a field) to the document `id`.
    pub async fn update(&self, id: JsValue, patch: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let id = id_of(&id)?;
        let patch = object_of(&patch, "patch").map_err(|e| to_js(&e))?;
        let (raw, signal) = call_options(&options, args::WRITE)?;
        self.write(WriteKind::Update, Some(id), Some(patch), raw, signal).await
    }

    /// Deletes the document `id`.
    pub async fn delete(&self, id: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let id = id_of(&id)?;
        let (raw, signal) = call_options(&options, args::WRITE)?;
        self.write(WriteKind::Delete, Some(id), None, raw, signal).await
    }

    /// One page of documents ordered by id: `{ items, next, meta }`; pass `next` as `after` for the next page.
    pub async fn list(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let (raw, signal) = call_options(&options, args::LIST)?;
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
