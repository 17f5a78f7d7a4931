//! Writes: sent to the primary (or a writable node), or queued in the outbox when none can take them and
//! `offline.queueWrites` is on.
//!
//! A write is queued at once, without waiting `primaryWaitMs`, when the browser says it is offline or every
//! endpoint is known to be down: an awaited offline write must not hang. A document with a queued write takes its
//! next write through the outbox too, so the server sees this client's writes to it in the order they were made.

use serde_json::{Map, Value};

use super::effect::{ClientEvent, Effect, Failure, Output, Served, StoreOp, Stored};
use super::{Call, CallId, Client, Env, Kind};
use crate::core::action::{Action, CallOptions, Completed, Reply};
use crate::core::cache::Entry;
use crate::core::document::{CollectionName, Doc, Version};
use crate::core::error::Error;
use crate::core::merge_patch;
use crate::core::outbox::{should_queue, OutboxEntry, WriteKind};
use crate::core::time::format_rfc3339_ms;
use crate::core::types::Durability;

#[derive(Debug)]
pub struct WriteCall {
    kind: WriteKind,
    collection: CollectionName,
    id: String,
    data: Option<Map<String, Value>>,
    if_version: Option<Version>,
    key: String,
    written_at_ms: u64,
    /// The document already had a queued write.
    behind_queue: bool,
    /// Being queued: the entry, the document as it will be once synced (None for a delete), its cache entry, and
    /// the cache entry it replaced (put back if the store fails).
    queued: Option<(OutboxEntry, Option<Doc>, Entry, Option<Entry>)>,
}

impl WriteCall {
    /// Being put in the outbox (its store operation is out).
    pub(super) fn is_queueing(&self) -> bool {
        self.queued.is_some()
    }
}

/// A write as the app asked for it (`CallSpec::Write`).
pub(super) struct WriteSpec {
    pub kind: WriteKind,
    pub collection: CollectionName,
    pub id: Option<String>,
    pub data: Option<Map<String, Value>>,
    pub if_version: Option<Version>,
    pub durability: Option<Durability>,
}

/// A UUIDv7 (time-ordered) from the time and 10 random bytes.
pub fn uuid_v7(now_ms: u64, random: &[u8]) -> String {
    let mut bytes = [0u8; 10];
    for (b, r) in bytes.iter_mut().zip(random) {
        *b = *r;
    }
    uuid::Builder::from_unix_timestamp_millis(now_ms, &bytes).into_uuid().to_string()
}

impl Client {
    pub(super) fn start_write(&mut self, id: CallId, spec: WriteSpec, env: &Env) {
        let WriteSpec { kind, collection, id: doc_id, data, if_version, durability } = spec;
        let now_ms = env.now_ms;
        let doc_id = doc_id.unwrap_or_else(|| uuid_v7(now_ms, &env.random[..10]));
        let key = uuid_v7(now_ms, &env.random[10..]);
        let queue_writes = self.settings.queue_writes;
        let behind_queue = queue_writes && self.pending(collection.as_str(), &doc_id);
        let write = WriteCall {
            kind,
            collection,
            id: doc_id,
            data,
            if_version,
            key: key.clone(),
            written_at_ms: now_ms,
            behind_queue,
            queued: None,
        };
        let call = Self::new_call(Kind::Write(Box::new(write)), false);
        if behind_queue || queue_writes && (!self.online || self.router.all_down()) {
            return self.queue(id, call, now_ms);
        }
        let mut call = call;
        let Kind::Write(w) = &mut call.kind else { unreachable!() };
        // The data stays with the call only if the write may still be queued (no deep copy otherwise).
        let data = if queue_writes { w.data.clone() } else { w.data.take() };
        let action = Action::write(kind, w.collection.clone(), w.id.clone(), data, w.if_version.clone());
        let options =
            CallOptions { read_preference: None, durability, idempotency_key: Some(key), written_at_ms: Some(now_ms) };
        self.run(id, call, action, options, now_ms);
    }

    pub(super) fn write_done(&mut self, id: CallId, call: Call, result: Result<Completed, Failure>, now_ms: u64) {
        let Kind::Write(w) = &call.kind else { return };
        match result {
            Ok(done) => {
                let endpoint = self.url(done.endpoint);
                let c = w.collection.clone();
                match done.reply {
                    Reply::Doc(doc) => {
                        self.put_doc(c.as_str(), &doc, true, now_ms);
                        self.complete(id, Ok(Output::Doc(Served::fresh(doc, done.raw, endpoint))));
                    }
                    _ => {
                        let doc_id = w.id.clone();
                        self.remove(c.as_str(), &doc_id, true);
                        self.complete(id, Ok(Output::Nothing));
                    }
                }
            }
            Err(f) if self.settings.queue_writes && should_queue(&f.error) => self.queue(id, call, now_ms),
            Err(f) => self.fail(id, f),
        }
    }

    /// Puts the write in the outbox with its optimistic cache entry (one store transaction).
    fn queue(&mut self, id: CallId, mut call: Call, now_ms: u64) {
        if let Some(refused) = self.refuse_queue() {
            return self.fail(id, refused);
        }
        let Kind::Write(w) = &mut call.kind else { return };
        let base = self.cache_get(w.collection.as_str(), &w.id).and_then(|e| e.doc);
        let base_version = match w.kind {
            WriteKind::Create => None,
            _ => w.if_version.clone().or(base.as_ref().map(|d| d.version.clone())),
        };
        let version = self.router.adapter().predicted_version(base_version.as_ref(), &w.key);
        let data = match w.kind {
            WriteKind::Create | WriteKind::Replace => w.data.clone(),
            WriteKind::Update => {
                // A document that is not cached shows only the patched fields until it syncs.
                let mut merged = base.as_ref().map(|d| d.data.clone()).unwrap_or_default();
                merge_patch::apply(&mut merged, w.data.as_ref().unwrap_or(&Map::new()));
                Some(merged)
            }
            WriteKind::Delete => None,
        };
        let updated_at = format_rfc3339_ms(w.written_at_ms as i64);
        let optimistic = data.map(|data| Doc { id: w.id.clone(), version, data, updated_at });
        let entry = OutboxEntry {
            seq: 0,
            key: w.key.clone(),
            kind: w.kind,
            collection: w.collection.as_str().to_string(),
            id: w.id.clone(),
            data: w.data.take(),
            base_version,
            base,
            edited_at_ms: w.written_at_ms,
            reapplied: 0,
        };
        let entry = OutboxEntry { seq: self.next_seq(now_ms), ..entry };
        let cached = Entry {
            collection: entry.collection.clone(),
            id: entry.id.clone(),
            doc: optimistic.clone(),
            stored_at_ms: now_ms,
            pending: true,
        };
        // In the cache at once, so a write to the same document made meanwhile queues behind this one.
        let previous = self.cache.peek(&entry.collection, &entry.id).cloned();
        if self.cache_enabled() {
            self.cache.put(cached.clone());
        }
        // With `cache: { store: 'none' }` the outbox still lives in the memory store: a queued write is never dropped.
        self.store(StoreOp::AddOutbox { entry: entry.clone(), cached: Some(cached.clone()) }, Some(id));
        w.queued = Some((entry, optimistic, cached, previous));
        self.park(id, call);
    }

    /// A durable store that failed (IndexedDB, files) may still hold queued writes that this session cannot see: a
    /// write queued in memory now would sync before them and be overwritten by them after a reload. Refuse instead.
    fn refuse_queue(&self) -> Option<Failure> {
        self.store_broken.then(|| {
            Failure::from(Error::Storage {
                message: "no endpoint took this write and the local store failed, so it was not queued \
                          (queueing it in memory could reorder it against the writes the store still holds)"
                    .into(),
            })
        })
    }

    pub(super) fn write_stored(&mut self, id: CallId, mut call: Call, result: Result<Stored, ()>, now_ms: u64) {
        let Kind::Write(w) = &mut call.kind else { return };
        let Some((mut entry, optimistic, cached, previous)) = w.queued.take() else { return };
        match result {
            Ok(Stored::Taken) => {
                // Another tab queued under this seq in the same millisecond: take the next one (still after it).
                entry.seq = self.next_seq(now_ms);
                self.store(StoreOp::AddOutbox { entry: entry.clone(), cached: Some(cached.clone()) }, Some(id));
                w.queued = Some((entry, optimistic, cached, previous));
                return self.park(id, call);
            }
            // The store failed (and the app was told): nothing was written, so nothing is queued.
            Err(()) => {
                match previous {
                    Some(p) => self.cache.put(p),
                    None => self.cache.remove(&entry.collection, &entry.id),
                }
                let refused = self.refuse_queue().unwrap_or_else(|| {
                    Error::Storage { message: "the local store failed; this write was not queued".into() }.into()
                });
                return self.fail(id, refused);
            }
            Ok(_) => {}
        }
        self.announce_current(&entry.collection, &entry.id);
        let flush_now = w.behind_queue && self.online;
        self.effects.push_back(Effect::Emit(ClientEvent::Queued(entry)));
        let output = match optimistic {
            Some(doc) => Output::Doc(Served::cached(doc, true)),
            None => Output::Nothing,
        };
        self.complete(id, Ok(output));
        if flush_now {
            self.start_flush(now_ms);
        }
    }
}
