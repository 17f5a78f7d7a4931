//! Reads: `get` and `list` by read policy (cache, network, or the network with the cache to fall back on),
//! background revalidation, and settling multi-primary revision conflicts a read found.
//!
//! When every endpoint is known to be down, a read that may fall back to the cache does so at once instead of
//! waiting `primaryWaitMs` for an endpoint: an app shows "offline, from cache" now, not "nothing" in 5 s.

use super::effect::{
    ChangeSource, ClientEvent, Effect, Failure, Output, PageOut, ResolverAnswer, ResolverInput, Served,
};
use super::{Call, CallId, Client, Kind};
use crate::core::action::{Action, CallOptions, Completed, Page, Reply};
use crate::core::cache::{plan, Entry, ReadPlan};
use crate::core::document::{CollectionName, Doc, Version};
use crate::core::error::Error;
use crate::core::outbox::{pick_revision, should_queue, RevisionChoice};
use crate::core::time::parse_rfc3339_ms;
use crate::core::types::{ReadPolicy, ReadPreference};

/// Lists return this many documents unless asked otherwise.
pub const DEFAULT_LIMIT: u32 = 100;

#[derive(Debug)]
pub struct GetCall {
    collection: CollectionName,
    id: String,
    /// May serve `cached` when no endpoint can answer.
    fallback: bool,
    cached: Option<Entry>,
    settle: Option<Settle>,
}

#[derive(Debug)]
pub struct RevalidateCall {
    collection: CollectionName,
    id: String,
    settle: Option<Settle>,
}

#[derive(Debug)]
pub struct ListCall {
    pub collection: CollectionName,
    pub limit: Option<u32>,
    pub after: Option<String>,
    pub read_preference: Option<ReadPreference>,
    pub read_policy: Option<ReadPolicy>,
}

/// A revision conflict being settled: the server's winner, then every version, then the resolution written.
#[derive(Debug)]
struct Settle {
    winner: Doc,
    endpoint: String,
    versions: Vec<Doc>,
    /// The app's function merged the versions (else one was kept).
    merged: bool,
}

impl Client {
    pub(super) fn start_get(
        &mut self,
        id: CallId,
        collection: CollectionName,
        doc_id: String,
        read_preference: Option<ReadPreference>,
        read_policy: Option<ReadPolicy>,
        now_ms: u64,
    ) {
        let policy = read_policy.unwrap_or(self.settings.policy);
        let cached = self.cache_get(collection.as_str(), &doc_id);
        let fallback = match plan(policy, cached.as_ref(), self.settings.ttl_ms, now_ms) {
            ReadPlan::Cache => return self.complete(id, Ok(cached_output(cached.as_ref(), None))),
            ReadPlan::CacheThenRevalidate => {
                let version = cached.as_ref().and_then(|e| e.doc.as_ref()).map(|d| d.version.clone());
                self.start_revalidate(collection, doc_id, version, now_ms);
                return self.complete(id, Ok(cached_output(cached.as_ref(), None)));
            }
            ReadPlan::Network { fallback } => fallback,
        };
        if fallback && cached.is_some() && self.router.all_down() {
            return self.complete(id, Ok(cached_output(cached.as_ref(), None)));
        }
        // Revalidate what is cached with If-None-Match (a 304 serves it), unless the app wants the network only.
        let if_none_match = match policy {
            ReadPolicy::NetworkOnly => None,
            _ => cached.as_ref().and_then(|e| e.doc.as_ref()).map(|d| d.version.clone()),
        };
        let action = Action::Get { collection: collection.clone(), id: doc_id.clone(), if_none_match };
        let call = Self::new_call(Kind::Get(GetCall { collection, id: doc_id, fallback, cached, settle: None }), false);
        self.run(id, call, action, CallOptions { read_preference, ..Default::default() }, now_ms);
    }

    pub(super) fn get_done(&mut self, id: CallId, mut call: Call, result: Result<Completed, Failure>, now_ms: u64) {
        let Kind::Get(get) = &mut call.kind else { return };
        if get.settle.is_some() {
            return self.settle_step(id, call, result, now_ms);
        }
        let c = get.collection.clone();
        match result {
            Ok(done) => {
                let endpoint = self.url(done.endpoint);
                match done.reply {
                    Reply::Doc(doc) if !done.conflicts.is_empty() => {
                        let revs = done.conflicts;
                        get.settle = Some(Settle { winner: doc, endpoint, versions: Vec::new(), merged: false });
                        let action = Action::Revisions { collection: c, id: get.id.clone(), revs };
                        self.run(id, call, action, CallOptions::default(), now_ms);
                    }
                    Reply::Doc(doc) => {
                        self.put_doc(c.as_str(), &doc, false, now_ms);
                        self.complete(id, Ok(Output::Doc(Served::fresh(doc, done.raw, endpoint))));
                    }
                    Reply::NotModified => {
                        let cached = get.cached.take();
                        if let Some(doc) = cached.as_ref().and_then(|e| e.doc.as_ref()) {
                            self.put_doc(c.as_str(), doc, false, now_ms); // confirmed fresh
                        }
                        self.complete(id, Ok(cached_output(cached.as_ref(), Some(endpoint))));
                    }
                    _ => {
                        self.remove(c.as_str(), &get.id, false);
                        self.complete(id, Ok(Output::Missing));
                    }
                }
            }
            Err(f) if get.fallback && get.cached.is_some() && should_queue(&f.error) => {
                self.complete(id, Ok(cached_output(get.cached.as_ref(), None)))
            }
            Err(f) => self.fail(id, f),
        }
    }

    /// Refreshes a cached document in the background; `change` tells the app what came back.
    pub(super) fn start_revalidate(
        &mut self,
        collection: CollectionName,
        doc_id: String,
        version: Option<Version>,
        now_ms: u64,
    ) {
        let id = self.call_id();
        let action = Action::Get { collection: collection.clone(), id: doc_id.clone(), if_none_match: version };
        let call = Self::new_call(Kind::Revalidate(RevalidateCall { collection, id: doc_id, settle: None }), true);
        self.run(id, call, action, CallOptions::default(), now_ms);
    }

    pub(super) fn revalidate_done(
        &mut self,
        id: CallId,
        mut call: Call,
        result: Result<Completed, Failure>,
        now_ms: u64,
    ) {
        let Kind::Revalidate(r) = &mut call.kind else { return };
        if r.settle.is_some() {
            return self.settle_step(id, call, result, now_ms);
        }
        let Ok(done) = result else { return };
        let endpoint = self.url(done.endpoint);
        let (c, doc_id) = (r.collection.clone(), r.id.clone());
        match done.reply {
            Reply::Doc(doc) if !done.conflicts.is_empty() => {
                r.settle = Some(Settle { winner: doc, endpoint, versions: Vec::new(), merged: false });
                let action = Action::Revisions { collection: c, id: doc_id, revs: done.conflicts };
                self.run(id, call, action, CallOptions::default(), now_ms);
            }
            Reply::Doc(doc) => self.revalidated(c, doc_id, Some(Served::fresh(doc, None, endpoint)), now_ms),
            Reply::Missing => self.revalidated(c, doc_id, None, now_ms),
            _ => {}
        }
    }

    /// Caches what a revalidation found and tells the app.
    fn revalidated(&mut self, collection: CollectionName, doc_id: String, doc: Option<Served>, now_ms: u64) {
        match &doc {
            Some(s) => self.put_doc(collection.as_str(), &s.doc, false, now_ms),
            None => self.remove(collection.as_str(), &doc_id, false),
        }
        let event = ClientEvent::Change {
            collection: collection.as_str().into(),
            id: doc_id,
            doc,
            source: ChangeSource::Revalidate,
        };
        self.effects.push_back(Effect::Emit(event));
    }

    pub(super) fn start_list(&mut self, id: CallId, list: ListCall, now_ms: u64) {
        let policy = list.read_policy.unwrap_or(self.settings.policy);
        let may_use_cache = policy != ReadPolicy::NetworkOnly && self.cache_enabled();
        if policy == ReadPolicy::CacheOnly || may_use_cache && self.router.all_down() {
            return self.complete(id, Ok(self.page_from_cache(&list)));
        }
        let action = Action::List { collection: list.collection.clone(), limit: list.limit, after: list.after.clone() };
        let options = CallOptions { read_preference: list.read_preference.clone(), ..Default::default() };
        self.run(id, Self::new_call(Kind::List(list), false), action, options, now_ms);
    }

    pub(super) fn list_done(&mut self, id: CallId, call: Call, result: Result<Completed, Failure>, now_ms: u64) {
        let Kind::List(list) = call.kind else { return };
        let policy = list.read_policy.unwrap_or(self.settings.policy);
        match result {
            Ok(Completed { reply: Reply::Page(Page { items, next, conflicted }), endpoint, .. }) => {
                let endpoint = self.url(endpoint);
                for d in &items {
                    self.put_doc(list.collection.as_str(), d, false, now_ms);
                }
                // Conflicted documents are listed with the server's pick and settled in the background
                // (`conflict` events tell when).
                for doc_id in conflicted {
                    self.start_revalidate(list.collection.clone(), doc_id, None, now_ms);
                }
                let items = items.into_iter().map(|d| Served::fresh(d, None, endpoint.clone())).collect();
                let page = PageOut { items, next, from_cache: false, complete: true, endpoint: Some(endpoint) };
                self.complete(id, Ok(Output::Page(page)));
            }
            Ok(_) => self.fail(id, Error::Protocol { message: "a list answered with no page".into() }.into()),
            Err(f) if policy != ReadPolicy::NetworkOnly && self.cache_enabled() && should_queue(&f.error) => {
                self.complete(id, Ok(self.page_from_cache(&list)))
            }
            Err(f) => self.fail(id, f),
        }
    }

    /// A page of what the cache holds, in id order after `after`.
    fn page_from_cache(&self, list: &ListCall) -> Output {
        let limit = list.limit.unwrap_or(DEFAULT_LIMIT) as usize;
        let after = list.after.as_deref().unwrap_or("");
        let entries = self.cache.entries_of(list.collection.as_str());
        let mut items: Vec<Served> = entries
            .into_iter()
            .filter(|e| e.id.as_str() > after)
            .take(limit + 1)
            .filter_map(|e| e.doc.clone().map(|d| Served::cached(d, e.pending)))
            .collect();
        let next = (items.len() > limit).then(|| items[limit - 1].doc.id.clone());
        items.truncate(limit);
        Output::Page(PageOut { items, next, from_cache: true, complete: false, endpoint: None })
    }

    // ----- revision conflicts (multi-primary) -----

    fn settle_of(call: &mut Call) -> Option<&mut Settle> {
        match &mut call.kind {
            Kind::Get(g) => g.settle.as_mut(),
            Kind::Revalidate(r) => r.settle.as_mut(),
            _ => None,
        }
    }

    fn target(call: &Call) -> (CollectionName, String) {
        match &call.kind {
            Kind::Get(g) => (g.collection.clone(), g.id.clone()),
            Kind::Revalidate(r) => (r.collection.clone(), r.id.clone()),
            _ => unreachable!("only reads settle revisions"),
        }
    }

    /// The versions came (then pick one or ask the app), or the resolution was written.
    fn settle_step(&mut self, id: CallId, mut call: Call, result: Result<Completed, Failure>, now_ms: u64) {
        let strategy = self.settings.conflict;
        let (collection, doc_id) = Self::target(&call);
        let settle = Self::settle_of(&mut call).expect("settling");
        let done = match result {
            Ok(done) => done,
            Err(f) => return self.settled(id, call, Err(f), now_ms),
        };
        if !settle.versions.is_empty() {
            // The resolution was written.
            return match done.reply {
                Reply::Doc(doc) => self.settled(id, call, Ok(doc), now_ms),
                _ => {
                    let f = Error::Protocol { message: "a conflict resolution answered with no document".into() };
                    self.settled(id, call, Err(f.into()), now_ms)
                }
            };
        }
        let Reply::Versions(others) = done.reply else {
            let f = Error::Protocol { message: "conflicting revisions answered with no versions".into() };
            return self.settled(id, call, Err(f.into()), now_ms);
        };
        let winner = settle.winner.clone();
        settle.versions =
            std::iter::once(winner.clone()).chain(others.into_iter().filter(|d| d.version != winner.version)).collect();
        if settle.versions.len() == 1 {
            return self.settled(id, call, Ok(winner), now_ms); // another client settled it already
        }
        match pick_revision(strategy, &settle.versions) {
            RevisionChoice::Keep(i) => self.write_resolution(id, call, i, None, now_ms),
            RevisionChoice::AskApp => {
                let input = ResolverInput::Revisions {
                    collection: collection.as_str().into(),
                    id: doc_id,
                    remote: winner,
                    versions: settle.versions.clone(),
                };
                self.effects.push_back(Effect::AskResolver { call: id, input });
                call.asking = true;
                self.park(id, call);
            }
        }
    }

    /// The app's function answered for a revision conflict.
    pub(super) fn settle_resolved(&mut self, id: CallId, call: Call, answer: ResolverAnswer, now_ms: u64) {
        match answer {
            Ok(merged) => self.write_resolution(id, call, 0, merged, now_ms),
            Err(e) => self.settled(id, call, Err(e.into()), now_ms),
        }
    }

    /// Keeps `versions[keep]` (or writes `merged` over it) and deletes the others.
    fn write_resolution(
        &mut self,
        id: CallId,
        mut call: Call,
        keep: usize,
        merged: Option<serde_json::Map<String, serde_json::Value>>,
        now_ms: u64,
    ) {
        let (collection, doc_id) = Self::target(&call);
        let settle = Self::settle_of(&mut call).expect("settling");
        let versions = &settle.versions;
        let losers = versions.iter().enumerate().filter(|(i, _)| *i != keep).map(|(_, d)| d.version.clone()).collect();
        // A merge is as new as the newest version in it; derived from the conflict, so clients agree on it.
        let updated_at = versions
            .iter()
            .max_by_key(|d| parse_rfc3339_ms(&d.updated_at).unwrap_or(i64::MIN))
            .map(|d| d.updated_at.clone())
            .unwrap_or_default();
        settle.merged = merged.is_some();
        let action =
            Action::Resolve { collection, id: doc_id, keep: versions[keep].clone(), merged, losers, updated_at };
        self.run(id, call, action, CallOptions::default(), now_ms);
    }

    /// The conflict is settled (`Ok`: the document that stands) or could not be (the read keeps the winner).
    fn settled(&mut self, id: CallId, mut call: Call, result: Result<Doc, Failure>, now_ms: u64) {
        let (collection, doc_id) = Self::target(&call);
        let settle = Self::settle_of(&mut call).expect("settling");
        let merged = settle.merged;
        let endpoint = settle.endpoint.clone();
        let winner = settle.winner.clone();
        let versions = std::mem::take(&mut settle.versions);
        let doc = match result {
            Ok(doc) => {
                if versions.len() > 1 {
                    let event = ClientEvent::RevisionConflict {
                        collection: collection.as_str().into(),
                        id: doc_id.clone(),
                        versions,
                        doc: doc.clone(),
                        merged,
                    };
                    self.effects.push_back(Effect::Emit(event));
                }
                doc
            }
            // The app's resolver failed: that is the app's to see.
            Err(f) if matches!(f.error, Error::InvalidArgument { .. }) && matches!(call.kind, Kind::Get(_)) => {
                return self.fail(id, f);
            }
            // A node went away meanwhile: the read still has its answer; the next one settles it.
            Err(_) => winner,
        };
        match call.kind {
            Kind::Get(_) => {
                self.put_doc(collection.as_str(), &doc, false, now_ms);
                self.complete(id, Ok(Output::Doc(Served::fresh(doc, None, endpoint))));
            }
            _ => self.revalidated(collection, doc_id, Some(Served::fresh(doc, None, endpoint)), now_ms),
        }
    }
}

/// What the cache holds for a read: the document (`fromCache`), or null for nothing or a pending delete.
fn cached_output(entry: Option<&Entry>, endpoint: Option<String>) -> Output {
    match entry {
        Some(Entry { doc: Some(doc), pending, .. }) => {
            Output::Doc(Served { doc: doc.clone(), raw: None, from_cache: true, pending: *pending, endpoint })
        }
        _ => Output::Missing,
    }
}
