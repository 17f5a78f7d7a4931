//! Local document stores.
//!
//! One [`Store`] trait with two implementations: [`MemoryStore`] (Node's default, and the fallback when a
//! browser database cannot be opened) and, in wasm builds, `IndexedDbStore`. Both run one shared
//! [`conformance`] suite, so the cache behaves the same wherever it lives (matrix-sdk-indexeddb's model).

pub mod conformance;
mod memory;
#[cfg(target_arch = "wasm32")]
pub mod indexeddb;

pub use memory::MemoryStore;

use crate::core::{CollectionName, Doc, Error};

/// A local store of documents, keyed by (collection, id).
///
/// Futures are not `Send`: stores live on the one JS thread.
#[allow(async_fn_in_trait)]
pub trait Store {
    /// The cached document, if any.
    async fn get(&self, collection: &CollectionName, id: &str) -> Result<Option<Doc>, Error>;
    /// Inserts or overwrites the document.
    async fn put(&self, collection: &CollectionName, doc: &Doc) -> Result<(), Error>;
    /// Removes the document; removing a missing one is not an error.
    async fn delete(&self, collection: &CollectionName, id: &str) -> Result<(), Error>;
    /// Removes every document of every collection (a user logging out).
    async fn clear(&self) -> Result<(), Error>;
}
