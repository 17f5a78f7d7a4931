//! Web Locks: one tab at a time flushes the outbox.

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::js::get;

/// Takes the lock `name`; resolves with the function that releases it, or None where locks cannot be had
/// (no `navigator.locks`, a sandboxed or opaque origin): the caller then runs without it rather than never.
pub async fn acquire(name: &str) -> Option<Function> {
    let locks = get(&get(&js_sys::global(), "navigator"), "locks");
    let request = get(&locks, "request").dyn_ref::<Function>().cloned()?;
    let mut release: Option<Function> = None;
    let acquired = Promise::new(&mut |acquired_resolve, _| {
        let held = Promise::new(&mut |resolve, _| release = Some(resolve));
        let on_acquired = acquired_resolve.clone();
        let callback = Closure::once_into_js(move |_lock: JsValue| {
            let _ = on_acquired.call0(&JsValue::UNDEFINED);
            held
        });
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
    release
}
