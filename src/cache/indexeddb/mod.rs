//! The IndexedDB store, through indexed_db_futures.
//!
//! Values are JSON text (the core's own serialization), so what is persisted is exactly what the core reads
//! back, and a schema change is one migration step. Each call is one transaction that awaits nothing but
//! IndexedDB: a transaction auto-commits as soon as it is idle, so awaiting anything else inside it would
//! silently end it.

mod migrations;

use indexed_db_futures::database::Database;
use indexed_db_futures::prelude::*;
use indexed_db_futures::transaction::{Transaction, TransactionMode};

use super::{entry_from_value, entry_key, entry_to_value, Store};
use crate::core::cache::Entry;
use crate::core::outbox::OutboxEntry;
use crate::core::Error;
use migrations::{ENTRIES, OUTBOX, SCHEMA_VERSION};

/// Cache and outbox in one IndexedDB database.
#[derive(Debug)]
pub struct IndexedDbStore {
    db: Database,
}

impl IndexedDbStore {
    /// Opens (creating or upgrading) the database `name`.
    pub async fn open(name: &str) -> Result<Self, Error> {
        let db = Database::open(name)
            .with_version(SCHEMA_VERSION)
            .with_on_upgrade_needed(|event, db| migrations::upgrade(event.old_version() as u32, &db))
            .await
            .map_err(|e| storage(format!("cannot open IndexedDB database {name:?}: {e}")))?;
        Ok(IndexedDbStore { db })
    }

    /// Closes the connection (another tab's upgrade is not blocked by it any more).
    pub fn close(self) {
        self.db.close();
    }

    /// Closes the connection of a store still shared (a closed client's): later operations fail as storage errors.
    pub fn close_connection(&self) {
        self.db.clone().close();
    }

    fn readwrite(&self, stores: &[&str]) -> Result<Transaction<'_>, Error> {
        self.db.transaction(stores).with_mode(TransactionMode::Readwrite).build().map_err(idb)
    }
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

fn parse<T>(json: &str, read: impl Fn(&serde_json::Value) -> Result<T, String>) -> Result<T, Error> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| storage(format!("corrupt record: {e}")))?;
    read(&value).map_err(|e| storage(format!("corrupt record: {e}")))
}

impl Store for IndexedDbStore {
    async fn entries(&self) -> Result<Vec<Entry>, Error> {
        let tx = self.db.transaction(ENTRIES).build().map_err(idb)?;
        let store = tx.object_store(ENTRIES).map_err(idb)?;
        let rows = store.get_all::<String>().await.map_err(idb)?;
        rows.map(|row| parse(&row.map_err(idb)?, entry_from_value)).collect()
    }

    async fn put_entry(&self, entry: &Entry) -> Result<(), Error> {
        let tx = self.readwrite(&[ENTRIES])?;
        let store = tx.object_store(ENTRIES).map_err(idb)?;
        let key = entry_key(&entry.collection, &entry.id);
        store.put(entry_to_value(entry).to_string()).with_key(key).await.map_err(idb)?;
        tx.commit().await.map_err(idb)
    }

    async fn delete_entry(&self, collection: &str, id: &str) -> Result<(), Error> {
        let tx = self.readwrite(&[ENTRIES])?;
        tx.object_store(ENTRIES).map_err(idb)?.delete(entry_key(collection, id)).await.map_err(idb)?;
        tx.commit().await.map_err(idb)
    }

    async fn outbox(&self) -> Result<Vec<OutboxEntry>, Error> {
        let tx = self.db.transaction(OUTBOX).build().map_err(idb)?;
        let store = tx.object_store(OUTBOX).map_err(idb)?;
        let rows = store.get_all::<String>().await.map_err(idb)?;
        let mut entries =
            rows.map(|row| parse(&row.map_err(idb)?, OutboxEntry::from_value)).collect::<Result<Vec<_>, _>>()?;
        entries.sort_by_key(|e| e.seq);
        Ok(entries)
    }

    async fn put_outbox(&self, entry: &OutboxEntry, cached: Option<&Entry>) -> Result<(), Error> {
        let tx = self.readwrite(&[OUTBOX, ENTRIES])?;
        let outbox = tx.object_store(OUTBOX).map_err(idb)?;
        outbox.put(entry.to_value().to_string()).with_key(entry.seq as f64).await.map_err(idb)?;
        if let Some(c) = cached {
            let entries = tx.object_store(ENTRIES).map_err(idb)?;
            let key = entry_key(&c.collection, &c.id);
            entries.put(entry_to_value(c).to_string()).with_key(key).await.map_err(idb)?;
        }
        tx.commit().await.map_err(idb)
    }

    async fn add_outbox(&self, entry: &OutboxEntry, cached: Option<&Entry>) -> Result<bool, Error> {
        let tx = self.readwrite(&[OUTBOX, ENTRIES])?;
        let outbox = tx.object_store(OUTBOX).map_err(idb)?;
        // `add`, not `put`: a key another tab took fails with ConstraintError, and the transaction writes nothing.
        match outbox.add(entry.to_value().to_string()).with_key(entry.seq as f64).await {
            Ok(_) => {}
            Err(indexed_db_futures::error::Error::DomException(
                indexed_db_futures::error::DomException::ConstraintError(_),
            )) => return Ok(false),
            Err(e) => return Err(idb(e)),
        }
        if let Some(c) = cached {
            let entries = tx.object_store(ENTRIES).map_err(idb)?;
            let key = entry_key(&c.collection, &c.id);
            entries.put(entry_to_value(c).to_string()).with_key(key).await.map_err(idb)?;
        }
        tx.commit().await.map_err(idb).map(|_| true)
    }

    async fn delete_outbox(&self, seq: u64) -> Result<(), Error> {
        let tx = self.readwrite(&[OUTBOX])?;
        tx.object_store(OUTBOX).map_err(idb)?.delete(seq as f64).await.map_err(idb)?;
        tx.commit().await.map_err(idb)
    }

    async fn clear(&self) -> Result<(), Error> {
        let tx = self.readwrite(&[ENTRIES, OUTBOX])?;
        tx.object_store(ENTRIES).map_err(idb)?.clear().map_err(idb)?.await.map_err(idb)?;
        tx.object_store(OUTBOX).map_err(idb)?.clear().map_err(idb)?.await.map_err(idb)?;
        tx.commit().await.map_err(idb)
    }
}
