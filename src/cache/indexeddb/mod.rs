//! The IndexedDB store, through indexed_db_futures.
//!
//! Documents live in one object store keyed by `"<collection>/<id>"` (a collection name never contains `/`,
//! so the key is unambiguous). Each call is one transaction that awaits nothing but IndexedDB: a transaction
//! auto-commits as soon as it is idle, so awaiting anything else inside it would silently end it.

mod migrations;

use indexed_db_futures::database::Database;
use indexed_db_futures::prelude::*;
use indexed_db_futures::transaction::{Transaction, TransactionMode};

use super::Store;
use crate::core::{CollectionName, Doc, Error};
use migrations::{DOCS, SCHEMA_VERSION};

/// A document store in one IndexedDB database.
#[derive(Debug)]
pub struct IndexedDbStore {
    db: Database,
}

impl IndexedDbStore {
    /// Opens (creating or upgrading) the database `name`.
    pub async fn open(name: &str) -> Result<Self, Error> {
        let db = Database::open(name)
            .with_version(SCHEMA_VERSION)
            .with_on_upgrade_needed(|event, db| {
                migrations::upgrade(event.old_version() as u32, &db)
            })
            .await
            .map_err(|e| storage(format!("cannot open IndexedDB database {name:?}: {e}")))?;
        Ok(IndexedDbStore { db })
    }

    /// A read-write transaction over the documents (it rolls back unless committed).
    fn readwrite(&self) -> Result<Transaction<'_>, Error> {
        self.db.transaction(DOCS).with_mode(TransactionMode::Readwrite).build().map_err(idb)
    }

    /// Closes the connection (another tab's upgrade is not blocked by it any more).
    pub fn close(self) {
        self.db.close();
    }
}

fn key(collection: &CollectionName, id: &str) -> String {
    format!("{}/{}", collection.as_str(), id)
}

fn storage(message: String) -> Error {
    if message.contains("QuotaExceeded") {
        return Error::Quota;
    }
    Error::Storage { message }
}

fn idb(e: indexed_db_futures::error::Error) -> Error {
    storage(e.to_string())
}

impl Store for IndexedDbStore {
    async fn get(&self, collection: &CollectionName, id: &str) -> Result<Option<Doc>, Error> {
        let tx = self.db.transaction(DOCS).build().map_err(idb)?;
        let store = tx.object_store(DOCS).map_err(idb)?;
        let raw: Option<String> = store.get(key(collection, id)).await.map_err(idb)?;
        match raw {
            None => Ok(None),
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| e.to_string())
                .and_then(Doc::from_value)
                .map(Some)
                .map_err(|e| storage(format!("corrupt cache entry {id:?}: {e}"))),
        }
    }

    async fn put(&self, collection: &CollectionName, doc: &Doc) -> Result<(), Error> {
        let json = doc.to_value().to_string();
        let tx = self.readwrite()?;
        let store = tx.object_store(DOCS).map_err(idb)?;
        store.put(json).with_key(key(collection, &doc.id)).await.map_err(idb)?;
        tx.commit().await.map_err(idb)
    }

    async fn delete(&self, collection: &CollectionName, id: &str) -> Result<(), Error> {
        let tx = self.readwrite()?;
        let store = tx.object_store(DOCS).map_err(idb)?;
        store.delete(key(collection, id)).await.map_err(idb)?;
        tx.commit().await.map_err(idb)
    }

    async fn clear(&self) -> Result<(), Error> {
        let tx = self.readwrite()?;
        tx.object_store(DOCS).map_err(idb)?.clear().map_err(idb)?.await.map_err(idb)?;
        tx.commit().await.map_err(idb)
    }
}
