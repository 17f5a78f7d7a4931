//! The in-memory store: a `BTreeMap` behind a `RefCell` (single-threaded, like the JS event loop).

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::Store;
use crate::core::{CollectionName, Doc, Error};

/// Documents kept in memory for the life of the client.
#[derive(Debug, Default)]
pub struct MemoryStore {
    docs: RefCell<BTreeMap<(String, String), Doc>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    async fn get(&self, collection: &CollectionName, id: &str) -> Result<Option<Doc>, Error> {
        let key = (collection.as_str().to_string(), id.to_string());
        Ok(self.docs.borrow().get(&key).cloned())
    }

    async fn put(&self, collection: &CollectionName, doc: &Doc) -> Result<(), Error> {
        let key = (collection.as_str().to_string(), doc.id.clone());
        self.docs.borrow_mut().insert(key, doc.clone());
        Ok(())
    }

    async fn delete(&self, collection: &CollectionName, id: &str) -> Result<(), Error> {
        let key = (collection.as_str().to_string(), id.to_string());
        self.docs.borrow_mut().remove(&key);
        Ok(())
    }

    async fn clear(&self) -> Result<(), Error> {
        self.docs.borrow_mut().clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_passes_the_conformance_suite() {
        pollster::block_on(crate::cache::conformance::run(&MemoryStore::new()));
    }
}
