//! Turns [`core::Error`](crate::core::Error) into a JS `ReplikitError` (the class defined in js/errors.js).

use std::cell::RefCell;

use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::core::Error;

thread_local! {
    static ERROR_CLASS: RefCell<Option<js_sys::Function>> = const { RefCell::new(None) };
}

pub(crate) fn set_error_class(class: js_sys::Function) {
    ERROR_CLASS.with(|c| *c.borrow_mut() = Some(class));
}

fn set(obj: &Object, key: &str, value: &JsValue) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}

/// Builds the JS error for `err`: `new ReplikitError(message, { code, retryable, ... })`.
pub(crate) fn to_js(err: &Error) -> JsValue {
    let details = Object::new();
    set(&details, "code", &JsValue::from_str(err.code()));
    set(&details, "retryable", &JsValue::from_bool(err.retryable()));
    match err {
        Error::InvalidArgument { what, .. } => set(&details, "argument", &JsValue::from_str(what)),
        Error::Conflict { current } => {
            let current = match current {
                // Through JSON text, as every document reaches JS (a `__proto__` key stays an own property).
                Some(doc) => {
                    serde_json::to_string(doc).ok().and_then(|t| js_sys::JSON::parse(&t).ok()).unwrap_or(JsValue::NULL)
                }
                None => JsValue::NULL,
            };
            set(&details, "current", &current);
        }
        _ => {}
    }
    let message = JsValue::from_str(&err.to_string());
    let class = ERROR_CLASS.with(|c| c.borrow().clone());
    if let Some(class) = class {
        let args = js_sys::Array::of2(&message, &details);
        if let Ok(e) = Reflect::construct(&class, &args) {
            return e;
        }
    }
    // Not registered (the glue used directly): a plain Error carrying the same fields.
    let e = js_sys::Error::new(&err.to_string());
    let _ = Object::assign(&e, &details);
    e.into()
}
