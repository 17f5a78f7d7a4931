//! Replikit: a replica-aware CRUD client SDK, written in Rust and shipped to JavaScript as WebAssembly.
//!
//! The crate is layered so the tree tells the architecture (see docs/ARCHITECTURE.md):
//! - [`core`]: sans-IO decisions (options, documents, topology). No clock, no IO, no JS.
//! - [`cache`]: local document stores behind one trait (memory; IndexedDB in wasm builds).
//! - `wasm`: the wasm-bindgen bindings, compiled for `wasm32` only; the one place that touches JS.

pub mod cache;
pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod wasm;
