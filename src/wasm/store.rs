//! Carries out the core's store operations on the store this client has (IndexedDB or memory).

use super::file_store::FileStore;
use crate::cache::indexeddb::IndexedDbStore;
use crate::cache::{MemoryStore, Store};
use crate::core::cache::Entry;
use crate::core::client::{StoreOp, Stored};
use crate::core::Error;

/// One of the stores, chosen at start-up (async trait methods cannot be `dyn`).
pub enum AnyStore {
    Memory(MemoryStore),
    IndexedDb(IndexedDbStore),
    File(FileStore),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($s) => $call.await,
            AnyStore::IndexedDb($s) => $call.await,
            AnyStore::File($s) => $call.await,
        }
    };
}

impl AnyStore {
    /// Opens the IndexedDB database `name`; the error says why it could not be.
    pub async fn indexeddb(name: &str) -> Result<AnyStore, Error> {
        IndexedDbStore::open(name).await.map(AnyStore::IndexedDb)
    }

    pub async fn entries(&self) -> Result<Vec<Entry>, Error> {
        dispatch!(self, s => s.entries())
    }

    /// Carries out `op` (`UseMemory` is the caller's: it swaps the store).
    pub async fn run(&self, op: &StoreOp) -> Result<Stored, Error> {
        match op {
            StoreOp::PutEntry(e) => dispatch!(self, s => s.put_entry(e)).map(|_| Stored::Done),
            StoreOp::DeleteEntry { collection, id } => {
                dispatch!(self, s => s.delete_entry(collection, id)).map(|_| Stored::Done)
            }
            StoreOp::LoadOutbox => dispatch!(self, s => s.outbox()).map(Stored::Outbox),
            StoreOp::AddOutbox { entry, cached } => dispatch!(self, s => s.add_outbox(entry, cached.as_ref()))
                .map(|added| if added { Stored::Done } else { Stored::Taken }),
            StoreOp::PutOutbox { entry, cached } => {
                dispatch!(self, s => s.put_outbox(entry, cached.as_ref())).map(|_| Stored::Done)
            }
            StoreOp::DeleteOutbox { seq } => dispatch!(self, s => s.delete_outbox(*seq)).map(|_| Stored::Done),
            StoreOp::Clear => dispatch!(self, s => s.clear()).map(|_| Stored::Done),
            StoreOp::UseMemory => Ok(Stored::Done),
        }
    }

    /// Closes the database connection (a closed client must not block another tab's upgrade).
    pub fn close(&self) {
        if let AnyStore::IndexedDb(s) = self {
            s.close_connection();
        }
    }
}
