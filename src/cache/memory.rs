//! The in-memory store: `BTreeMap`s behind `RefCell`s (single-threaded, like the JS event loop).

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::{entry_key, Store};
use crate::core::cache::Entry;
use crate::core::outbox::OutboxEntry;
use crate::core::Error;

/// Cache and outbox kept in memory for the life of the client.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: RefCell<BTreeMap<String, Entry>>,
    outbox: RefCell<BTreeMap<u64, OutboxEntry>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    async fn entries(&self) -> Result<Vec<Entry>, Error> {
        Ok(self.entries.borrow().values().cloned().collect())
    }

    async fn put_entry(&self, entry: &Entry) -> Result<(), Error> {
        self.entries.borrow_mut().insert(entry_key(&entry.collection, &entry.id), entry.clone());
        Ok(())
    }

    async fn delete_entry(&self, collection: &str, id: &str) -> Result<(), Error> {
        self.entries.borrow_mut().remove(&entry_key(collection, id));
        Ok(())
    }

    async fn outbox(&self) -> Result<Vec<OutboxEntry>, Error> {
        Ok(self.outbox.borrow().values().cloned().collect())
    }

    async fn put_outbox(&self, entry: &OutboxEntry, cached: Option<&Entry>) -> Result<(), Error> {
        self.outbox.borrow_mut().insert(entry.seq, entry.clone());
        if let Some(c) = cached {
            self.put_entry(c).await?;
        }
        Ok(())
    }

    async fn add_outbox(&self, entry: &OutboxEntry, cached: Option<&Entry>) -> Result<bool, Error> {
        if self.outbox.borrow().contains_key(&entry.seq) {
            return Ok(false);
        }
        self.put_outbox(entry, cached).await.map(|_| true)
    }

    async fn delete_outbox(&self, seq: u64) -> Result<(), Error> {
        self.outbox.borrow_mut().remove(&seq);
        Ok(())
    }

    async fn clear(&self) -> Result<(), Error> {
        self.entries.borrow_mut().clear();
        self.outbox.borrow_mut().clear();
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
