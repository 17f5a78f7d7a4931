//! Values across the JS boundary. Documents go in through `JSON.stringify` and come out through `JSON.parse`
//! of the core's serialization, so a `__proto__` key stays an own data property, never a prototype.

use serde::Serialize;
use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;

use super::errors::to_js;
use super::js::get;
use crate::core::{check_data, check_id, Doc, Error};

/// Serializes as plain JS objects (not `Map`s), as JSON would (views, not documents).
pub(crate) fn to_js_value<T: Serialize + ?Sized>(value: &T) -> JsValue {
    let serializer = serde_wasm_bindgen::Serializer::json_compatible();
    value.serialize(&serializer).unwrap_or(JsValue::NULL)
}

/// A document for the app, with `meta: { fromCache, pending, endpoint }`.
pub(crate) fn doc_to_js(doc: &Doc, from_cache: bool, pending: bool, endpoint: Option<&str>) -> JsValue {
    let text = serde_json::to_string(doc).unwrap_or_default();
    raw_doc_to_js(&text, from_cache, pending, endpoint)
}

/// A document from JSON text already known to be a valid document (a response body the core parsed), so it
/// reaches JS with one `JSON.parse` and no round trip through Rust values.
pub(crate) fn raw_doc_to_js(text: &str, from_cache: bool, pending: bool, endpoint: Option<&str>) -> JsValue {
    let js = js_sys::JSON::parse(text).unwrap_or(JsValue::NULL);
    if !js.is_object() {
        return JsValue::NULL;
    }
    let meta = super::js::object(&[
        ("fromCache", JsValue::from_bool(from_cache)),
        ("pending", JsValue::from_bool(pending)),
        ("endpoint", endpoint.map(JsValue::from_str).unwrap_or(JsValue::NULL)),
    ]);
    let _ = js_sys::Reflect::set(&js, &"meta".into(), &meta);
    js
}

/// A JS value to JSON through `JSON.stringify` (its usual rules: `toJSON`, dates as strings).
pub(crate) fn json_of(value: &JsValue, what: &str) -> Result<Value, Error> {
    if value.is_undefined() {
        return Err(Error::invalid(what, "is required"));
    }
    let text = js_sys::JSON::stringify(value)
        .map_err(|e| Error::invalid(what, format!("cannot be serialized as JSON: {}", message_of(&e))))?;
    let text: String = text.into();
    serde_json::from_str(&text).map_err(|e| Error::invalid(what, format!("is not valid JSON data: {e}")))
}

pub(crate) fn message_of(e: &JsValue) -> String {
    get(e, "message").as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// A plain-object argument (`data`, `patch`).
pub(crate) fn object_of(value: &JsValue, what: &str) -> Result<Map<String, Value>, Error> {
    let json = json_of(value, what)?;
    check_data(json).map_err(|e| match e {
        Error::InvalidArgument { message, .. } => Error::invalid(what, message),
        other => other,
    })
}

/// A document id argument: a string within the protocol's rules.
pub(crate) fn id_of(value: &JsValue) -> Result<String, JsValue> {
    let id = value.as_string().ok_or_else(|| to_js(&Error::invalid("id", "must be a string")))?;
    check_id(&id).map_err(|e| to_js(&e))?;
    Ok(id)
}
