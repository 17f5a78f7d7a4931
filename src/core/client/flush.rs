//! Flushing the outbox: one flush at a time per client and, through a cross-tab lock, per browser; the store is
//! read again before each entry (another tab may have flushed or queued meanwhile); each write goes with the
//! idempotency key and edit time of its first attempt, so nothing applies twice. A `412` goes to the conflict
//! strategy (`core::outbox::resolve`, or the app's function); a write that fails for good is removed and
//! reported (`syncFailed`), and `db.flush()` rejects with the first such failure.
//!
//! A flush starts when the client starts (writes queued before a reload), when a writable endpoint appears,
//! when the browser goes online, after a write queued behind another, and on `db.flush()`.

use super::effect::{
    ClientEvent, Effect, Failure, OutboxResolution, Output, ResolverAnswer, ResolverInput, Served, StoreOp, Stored,
};
use super::{Call, CallId, Client, Kind, FLUSH_RETRY_MS};
use crate::core::action::{Action, CallOptions, Completed, Reply};
use crate::core::cache::Entry;
use crate::core::document::{Doc, Version};
use crate::core::error::Error;
use crate::core::outbox::{resolve, should_queue, OutboxEntry, Resolution};

#[derive(Debug, Default)]
pub struct FlushCall {
    /// The outbox as last read, oldest first.
    outbox: Vec<OutboxEntry>,
    stage: Stage,
    /// Writes that failed for good during this flush, in order (a `db.flush()` that joined later sees only
    /// those after it joined).
    failures: Vec<Failure>,
    /// Per document synced in this flush: the version its queued copy was given, and the server's. A later entry
    /// made over that copy is sent with the server's version as `If-Match` (no protocol-v1 version is predictable).
    synced: Vec<(String, String, Version, Version)>,
}

impl FlushCall {
    pub(super) fn is_locking(&self) -> bool {
        matches!(self.stage, Stage::Locking)
    }
}

#[derive(Debug, Default)]
enum Stage {
    #[default]
    Locking,
    Loading,
    /// The head entry's write is out.
    Sending,
    /// Removing the head entry from the store; then reading the outbox again.
    Removing(After),
    /// Reading the outbox after the head entry was removed; then do what `After` says (whether another write to
    /// the same document is queued is known only now: it may have been queued while the head was being sent).
    Reloading(After),
    /// Storing the re-made write a conflict resolution chose.
    Replacing,
    /// Asking the app's function about the head entry's conflict with `current`.
    Asking {
        current: Option<Doc>,
    },
}

#[derive(Debug)]
enum After {
    /// It synced: cache what the server answered and tell the app.
    Synced { doc: Option<Doc>, endpoint: String },
    /// Its conflict was settled by dropping it: cache the server's version.
    Dropped { current: Option<Doc> },
    /// It failed for good.
    Failed(Failure),
}

impl Client {
    /// Starts a flush unless one runs already, or the outbox is paused (credentials refused): then only
    /// `db.flush()` tries again.
    pub(super) fn start_flush(&mut self, _now_ms: u64) {
        if self.flushing.is_some() || self.closed || self.paused && self.flush_waiters.is_empty() {
            return;
        }
        self.paused = false;
        let id = self.call_id();
        self.flushing = Some(id);
        self.effects.push_back(Effect::Lock { call: id, name: self.settings.lock_name() });
        self.park(id, Self::new_call(Kind::Flush(FlushCall::default()), true));
    }

    /// `db.flush()`: waits for the running flush (or starts one).
    pub(super) fn start_flush_all(&mut self, id: CallId, now_ms: u64) {
        self.retry_flush_all(id, Self::new_call(Kind::FlushAll, false), now_ms);
    }

    /// Joins the running flush (only the failures from now on are this call's) or starts one.
    pub(super) fn retry_flush_all(&mut self, id: CallId, call: Call, now_ms: u64) {
        self.park(id, call);
        let joined = match self.flushing.and_then(|f| self.calls.get(&f)).map(|c| &c.kind) {
            Some(Kind::Flush(f)) => f.failures.len(),
            _ => 0,
        };
        self.flush_waiters.push((id, joined));
        self.start_flush(now_ms);
    }

    /// Reads the outbox (the lock is held).
    pub(super) fn flush_load(&mut self, id: CallId, mut call: Call) {
        let Kind::Flush(f) = &mut call.kind else { return };
        f.stage = Stage::Loading;
        self.store(StoreOp::LoadOutbox, Some(id));
        self.park(id, call);
    }

    fn head(call: &mut Call) -> (&mut FlushCall, OutboxEntry) {
        let Kind::Flush(f) = &mut call.kind else { unreachable!("a flush") };
        let head = f.outbox.first().cloned().expect("an entry is being flushed");
        (f, head)
    }

    pub(super) fn flush_stored(&mut self, id: CallId, mut call: Call, result: Result<Stored, ()>, now_ms: u64) {
        let Kind::Flush(f) = &mut call.kind else { return };
        match std::mem::take(&mut f.stage) {
            Stage::Loading => {
                f.outbox = match result {
                    Ok(Stored::Outbox(list)) => list,
                    _ => Vec::new(),
                };
                self.flush_next(id, call, now_ms);
            }
            Stage::Removing(after) => {
                f.stage = Stage::Reloading(after);
                self.store(StoreOp::LoadOutbox, Some(id));
                self.park(id, call);
            }
            Stage::Reloading(after) => {
                let (_, entry) = Self::head(&mut call);
                let fresh = match result {
                    Ok(Stored::Outbox(list)) => list,
                    _ => Vec::new(),
                };
                self.after_removed(&mut call, entry, &fresh, after, now_ms);
                let Kind::Flush(f) = &mut call.kind else { return };
                f.outbox = fresh;
                self.flush_next(id, call, now_ms);
            }
            Stage::Replacing => self.flush_load(id, call),
            other => {
                f.stage = other;
                self.park(id, call);
            }
        }
    }

    /// Sends the oldest entry, or ends the flush when the outbox is empty.
    fn flush_next(&mut self, id: CallId, mut call: Call, now_ms: u64) {
        let Kind::Flush(f) = &mut call.kind else { return };
        let Some(entry) = f.outbox.first() else {
            let failures = std::mem::take(&mut f.failures);
            return self.end_flush(id, true, failures, now_ms);
        };
        let rebased = f.synced.iter().find(|(c, id, predicted, _)| {
            *c == entry.collection && *id == entry.id && entry.base_version.as_ref() == Some(predicted)
        });
        let rebased = rebased.map(|(.., actual)| actual.clone());
        let mut action = match entry.action() {
            Ok(a) => a,
            Err(e) => return self.remove_head(id, call, After::Failed(e.into())),
        };
        if let (
            Some(v),
            Action::Replace { if_version, .. } | Action::Update { if_version, .. } | Action::Delete { if_version, .. },
        ) = (rebased, &mut action)
        {
            *if_version = Some(v);
        }
        // The edit time travels with the key: a retry that writes again writes the same document.
        let options = CallOptions {
            idempotency_key: Some(entry.key.clone()),
            written_at_ms: Some(entry.edited_at_ms),
            ..Default::default()
        };
        f.stage = Stage::Sending;
        self.run(id, call, action, options, now_ms);
    }

    pub(super) fn flush_done(&mut self, id: CallId, mut call: Call, result: Result<Completed, Failure>, now_ms: u64) {
        let (f, entry) = Self::head(&mut call);
        match result {
            Ok(done) => {
                let endpoint = self.url(done.endpoint);
                let doc = match done.reply {
                    Reply::Doc(d) => Some(d),
                    _ => None,
                };
                self.remove_head(id, call, After::Synced { doc, endpoint });
            }
            Err(Failure { error: Error::Conflict { current }, .. }) => {
                let current = current.and_then(|c| Doc::from_value(c).ok());
                match resolve(self.settings.conflict, &entry, current.as_ref()) {
                    Resolution::AskApp => {
                        let local = self.cache.peek(&entry.collection, &entry.id).and_then(|e| e.doc.clone());
                        let input = ResolverInput::Outbox { local, remote: current.clone(), base: entry.base.clone() };
                        f.stage = Stage::Asking { current };
                        self.effects.push_back(Effect::AskResolver { call: id, input });
                        call.asking = true;
                        self.park(id, call);
                    }
                    resolution => self.apply_resolution(id, call, entry, current, resolution),
                }
            }
            // Refused credentials are not this write's fault: keep the whole outbox, tell the app, and wait for
            // `db.flush()` (the automatic triggers would only be refused again).
            Err(failure) if matches!(failure.error, Error::Unauthorized) => {
                self.paused = true;
                let mut failures = std::mem::take(&mut f.failures);
                failures.push(failure.clone());
                self.effects.push_back(Effect::Emit(ClientEvent::SyncPaused { entry, failure }));
                self.end_flush(id, false, failures, now_ms);
            }
            // No endpoint takes it now: the rest waits for the next flush.
            Err(failure) if should_queue(&failure.error) => {
                let failures = std::mem::take(&mut f.failures);
                self.end_flush(id, false, failures, now_ms);
            }
            Err(failure) => self.remove_head(id, call, After::Failed(failure)),
        }
    }

    /// The app's function answered about the head entry's conflict.
    pub(super) fn flush_resolved(&mut self, id: CallId, mut call: Call, answer: ResolverAnswer, _now_ms: u64) {
        let (f, entry) = Self::head(&mut call);
        let Stage::Asking { current } = std::mem::take(&mut f.stage) else { return self.park(id, call) };
        let resolution = match answer {
            Ok(None) => Resolution::Drop,
            Ok(Some(data)) => Resolution::Reapply(Box::new(entry.reapply(current.as_ref(), Some(data)))),
            Err(e) => return self.remove_head(id, call, After::Failed(e.into())),
        };
        self.apply_resolution(id, call, entry, current, resolution);
    }

    fn apply_resolution(
        &mut self,
        id: CallId,
        mut call: Call,
        entry: OutboxEntry,
        current: Option<Doc>,
        resolution: Resolution,
    ) {
        let local = self.cache.peek(&entry.collection, &entry.id).and_then(|e| e.doc.clone());
        let outcome = if matches!(resolution, Resolution::Reapply(_)) {
            OutboxResolution::Reapplied
        } else {
            OutboxResolution::Dropped
        };
        let event = ClientEvent::OutboxConflict { entry, local, remote: current.clone(), resolution: outcome };
        self.effects.push_back(Effect::Emit(event));
        match resolution {
            Resolution::Reapply(next) => {
                let Kind::Flush(f) = &mut call.kind else { return };
                f.stage = Stage::Replacing;
                self.store(StoreOp::PutOutbox { entry: *next, cached: None }, Some(id));
                self.park(id, call);
            }
            _ => self.remove_head(id, call, After::Dropped { current }),
        }
    }

    fn remove_head(&mut self, id: CallId, mut call: Call, after: After) {
        let (f, entry) = Self::head(&mut call);
        f.stage = Stage::Removing(after);
        self.store(StoreOp::DeleteOutbox { seq: entry.seq }, Some(id));
        self.park(id, call);
    }

    /// The head entry is out of the store: make the cache show the server's version (unless another write to the
    /// document is still queued) and tell the app.
    fn after_removed(
        &mut self,
        call: &mut Call,
        entry: OutboxEntry,
        outbox: &[OutboxEntry],
        after: After,
        now_ms: u64,
    ) {
        let Kind::Flush(f) = &mut call.kind else { return };
        let still_pending = outbox.iter().any(|e| e.collection == entry.collection && e.id == entry.id);
        f.synced.retain(|(c, id, ..)| *c != entry.collection || *id != entry.id);
        if let After::Synced { doc: Some(d), .. } = &after {
            let predicted = self.router.adapter().predicted_version(entry.base_version.as_ref(), &entry.key);
            f.synced.push((entry.collection.clone(), entry.id.clone(), predicted, d.version.clone()));
        }
        match after {
            After::Synced { doc, endpoint } => {
                if !still_pending {
                    self.show(&entry, doc.as_ref(), now_ms);
                }
                let doc = doc.map(|d| Served::fresh(d, None, endpoint));
                self.effects.push_back(Effect::Emit(ClientEvent::Synced { entry, doc }));
            }
            After::Dropped { current } => {
                if !still_pending {
                    self.show(&entry, current.as_ref(), now_ms);
                }
            }
            After::Failed(failure) => {
                if !still_pending {
                    // What the cache shows was never accepted: forget it, so the next read asks an endpoint.
                    self.remove(&entry.collection, &entry.id, true);
                }
                f.failures.push(failure.clone());
                self.effects.push_back(Effect::Emit(ClientEvent::SyncFailed { entry, failure }));
            }
        }
    }

    /// Makes the cache show the server's `doc` (or its absence) for the entry's document.
    fn show(&mut self, entry: &OutboxEntry, doc: Option<&Doc>, now_ms: u64) {
        match doc {
            Some(d) => {
                let e = Entry {
                    collection: entry.collection.clone(),
                    id: entry.id.clone(),
                    doc: Some(d.clone()),
                    stored_at_ms: now_ms,
                    pending: false,
                };
                self.put(e, true);
            }
            None => self.remove(&entry.collection, &entry.id, true),
        }
    }

    /// The flush is over: `empty` the outbox is (else no endpoint took its writes now), with the writes that failed
    /// for good. A `db.flush()` rejects with the first failure since it joined, resolves if the outbox is empty, or
    /// looks again later.
    fn end_flush(&mut self, id: CallId, empty: bool, failures: Vec<Failure>, now_ms: u64) {
        self.effects.push_back(Effect::Unlock { call: id });
        self.flushing = None;
        for (waiter, joined) in std::mem::take(&mut self.flush_waiters) {
            if let Some(f) = failures.get(joined) {
                self.calls.remove(&waiter);
                self.fail(waiter, f.clone());
            } else if empty {
                self.calls.remove(&waiter);
                self.complete(waiter, Ok(Output::Nothing));
            } else if let Some(c) = self.calls.get_mut(&waiter) {
                c.wake_at = Some(now_ms + FLUSH_RETRY_MS);
            }
        }
    }

    pub(super) fn start_pending(&mut self, id: CallId) {
        self.store(StoreOp::LoadOutbox, Some(id));
        self.park(id, Self::new_call(Kind::Pending, false));
    }

    pub(super) fn start_clear(&mut self, id: CallId) {
        self.cache.clear();
        self.store(StoreOp::Clear, Some(id));
        self.park(id, Self::new_call(Kind::Clear, false));
    }
}
