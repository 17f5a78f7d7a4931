//! The JavaScript bindings: the only module that knows about wasm_bindgen, js_sys and web_sys.
//!
//! It converts JS values to core types and back, and forwards; it decides nothing (as automerge-wasm does
//! for automerge). Names are camelCase for JS (`js_name`) and snake_case for Rust.

mod client;
mod collection;
mod convert;
mod errors;
mod events;
mod executor;
mod file_store;
mod http;
mod js;
mod locks;
mod store;
mod tabs;

use wasm_bindgen::prelude::*;

pub use client::{create_client, Client};
pub use collection::Collection;

/// The SDK version (the crate's version).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Registers the `ReplikitError` class every rejection is an instance of. Called once by the JS entry
/// right after the module is instantiated; not part of the public API.
#[wasm_bindgen(js_name = __setErrorClass)]
pub fn set_error_class(class: js_sys::Function) {
    errors::set_error_class(class);
}
