//! Small JS helpers: the clock, timers that work in browsers and Node, and property access.

use js_sys::{Function, Object, Reflect};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(f: &Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// Milliseconds since the epoch (the core's `now_ms`).
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// A timer; `unref` keeps it from holding a Node process open (the health checks' timer).
pub struct Timer(JsValue);

impl Timer {
    pub fn start(f: &Function, ms: u64, unref: bool) -> Timer {
        let id = set_timeout(f, ms.min(i32::MAX as u64) as f64);
        if unref {
            if let Ok(unref) = Reflect::get(&id, &"unref".into()) {
                if let Some(unref) = unref.dyn_ref::<Function>() {
                    let _ = unref.call0(&id);
                }
            }
        }
        Timer(id)
    }

    pub fn cancel(self) {
        clear_timeout(&self.0);
    }

    /// Node: whether the timer keeps the process alive (`ref`/`unref`); browsers have no such notion.
    pub fn keep_alive(&self, on: bool) {
        let name = if on { "ref" } else { "unref" };
        if let Ok(f) = Reflect::get(&self.0, &name.into()) {
            if let Some(f) = f.dyn_ref::<Function>() {
                let _ = f.call0(&self.0);
            }
        }
    }
}

/// `obj[key]`, or undefined.
pub fn get(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// A fresh plain object with `pairs`.
pub fn object(pairs: &[(&str, JsValue)]) -> JsValue {
    let obj = Object::new();
    for (k, v) in pairs {
        let _ = Reflect::set(&obj, &JsValue::from_str(k), v);
    }
    obj.into()
}

/// Whether this runs in a browser page or worker (not Node).
pub fn in_browser() -> bool {
    let g = js_sys::global();
    !get(&g, "document").is_undefined() || !get(&g, "WorkerGlobalScope").is_undefined()
}

/// Whether the browser says it is offline (`navigator.onLine === false`).
pub fn browser_offline() -> bool {
    in_browser() && get(&get(&js_sys::global(), "navigator"), "onLine") == JsValue::FALSE
}

/// `N` random bytes from `crypto.getRandomValues` (every browser and Node 20 have it; in an environment without
/// it, `Math.random`, which is not for secrets: ids only need to be unguessable in practice there).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    let array = js_sys::Uint8Array::new_with_length(N as u32);
    let crypto = get(&js_sys::global(), "crypto");
    let filled =
        get(&crypto, "getRandomValues").dyn_ref::<Function>().is_some_and(|f| f.call1(&crypto, &array).is_ok());
    if filled {
        array.copy_to(&mut out);
    } else {
        for b in &mut out {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    out
}
