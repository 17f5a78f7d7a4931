//! The `file` store (Node): the outbox as one JSON file per queued write under `cache.path`, so queued writes
//! survive the process; cached documents stay in memory. Node's `fs` is handed in by the package's Node entry
//! (`__setNodeFs`); browsers never have it.
//!
//! A write is `{seq}.json`, written to a temporary name and renamed (atomic on POSIX: a killed process leaves the
//! old file or the new one, never half of one), with mode 0600 in a 0700 folder (queued writes are user data).
//! One process per folder: two processes flushing one folder could each send the same write (it applies once,
//! by its idempotency key, but both would report it).

use std::cell::RefCell;

use js_sys::{Array, Function, Reflect};
use wasm_bindgen::prelude::*;

use super::js::{get, object};
use crate::cache::Store;
use crate::core::cache::Entry;
use crate::core::outbox::OutboxEntry;
use crate::core::Error;

thread_local! {
    static FS: RefCell<Option<JsValue>> = const { RefCell::new(None) };
}

/// Registers Node's `fs` module (called once by js/node.mjs).
#[wasm_bindgen(js_name = __setNodeFs)]
pub fn set_node_fs(fs: JsValue) {
    FS.with(|f| *f.borrow_mut() = Some(fs));
}

/// Whether Node's file system was registered.
pub fn has_fs() -> bool {
    FS.with(|f| f.borrow().is_some())
}

pub struct FileStore {
    fs: JsValue,
    dir: String,
}

fn storage(message: String) -> Error {
    Error::Storage { message }
}

fn message_of(e: &JsValue) -> String {
    get(e, "message").as_string().unwrap_or_else(|| format!("{e:?}"))
}

impl FileStore {
    /// Opens (creating) the folder `dir`.
    pub fn open(dir: &str) -> Result<FileStore, Error> {
        let fs = FS.with(|f| f.borrow().clone()).ok_or_else(|| storage("no file system here".into()))?;
        let store = FileStore { fs, dir: dir.trim_end_matches('/').to_string() };
        let options = object(&[("recursive", JsValue::TRUE), ("mode", JsValue::from_f64(0o700 as f64))]);
        store.call("mkdirSync", &[JsValue::from_str(&store.dir), options])?;
        Ok(store)
    }

    fn call(&self, name: &str, args: &[JsValue]) -> Result<JsValue, Error> {
        let f: Function = get(&self.fs, name).dyn_into().map_err(|_| storage(format!("fs.{name} is missing")))?;
        let args: Array = args.iter().collect();
        Reflect::apply(&f, &self.fs, &args).map_err(|e| storage(format!("{}: {}", self.dir, message_of(&e))))
    }

    fn file(&self, seq: u64) -> String {
        format!("{}/{seq}.json", self.dir)
    }

    fn seqs(&self) -> Result<Vec<u64>, Error> {
        let names: Array = self.call("readdirSync", &[JsValue::from_str(&self.dir)])?.into();
        let mut seqs: Vec<u64> = names
            .iter()
            .filter_map(|n| n.as_string())
            .filter_map(|n| n.strip_suffix(".json").and_then(|s| s.parse().ok()))
            .collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    fn exists(&self, seq: u64) -> Result<bool, Error> {
        Ok(self.call("existsSync", &[JsValue::from_str(&self.file(seq))])?.is_truthy())
    }

    fn write(&self, entry: &OutboxEntry) -> Result<(), Error> {
        let (file, tmp) = (self.file(entry.seq), format!("{}.tmp", self.file(entry.seq)));
        let options = object(&[("mode", JsValue::from_f64(0o600 as f64))]);
        self.call(
            "writeFileSync",
            &[JsValue::from_str(&tmp), JsValue::from_str(&entry.to_value().to_string()), options],
        )?;
        self.call("renameSync", &[JsValue::from_str(&tmp), JsValue::from_str(&file)]).map(|_| ())
    }

    fn remove(&self, seq: u64) -> Result<(), Error> {
        if self.exists(seq)? {
            self.call("unlinkSync", &[JsValue::from_str(&self.file(seq))])?;
        }
        Ok(())
    }
}

impl Store for FileStore {
    /// Documents are cached in memory only: nothing to load.
    async fn entries(&self) -> Result<Vec<Entry>, Error> {
        Ok(Vec::new())
    }

    async fn put_entry(&self, _entry: &Entry) -> Result<(), Error> {
        Ok(())
    }

    async fn delete_entry(&self, _collection: &str, _id: &str) -> Result<(), Error> {
        Ok(())
    }

    async fn outbox(&self) -> Result<Vec<OutboxEntry>, Error> {
        let mut out = Vec::new();
        for seq in self.seqs()? {
            let text = self.call("readFileSync", &[JsValue::from_str(&self.file(seq)), JsValue::from_str("utf8")])?;
            let entry = text
                .as_string()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| OutboxEntry::from_value(&v).ok())
                .ok_or_else(|| storage(format!("{} is not a queued write", self.file(seq))))?;
            out.push(entry);
        }
        Ok(out)
    }

    async fn put_outbox(&self, entry: &OutboxEntry, _cached: Option<&Entry>) -> Result<(), Error> {
        self.write(entry)
    }

    async fn add_outbox(&self, entry: &OutboxEntry, _cached: Option<&Entry>) -> Result<bool, Error> {
        if self.exists(entry.seq)? {
            return Ok(false);
        }
        self.write(entry).map(|_| true)
    }

    async fn delete_outbox(&self, seq: u64) -> Result<(), Error> {
        self.remove(seq)
    }

    async fn clear(&self) -> Result<(), Error> {
        self.seqs()?.into_iter().try_for_each(|seq| self.remove(seq))
    }
}
