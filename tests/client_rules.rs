//! The per-call core's rules (`core::client`), each a scenario on a simulated cluster with virtual time: what a
//! call does with the cache, the outbox and conflicts. Test names are the spec.

mod sim;
mod support;

use replikit::core::client::{CallSpec, ClientEvent, Failure, OutboxResolution, Output, Platform, ResolverInput};
use replikit::core::document::Version;
use replikit::core::outbox::WriteKind;
use replikit::core::types::ReadPolicy;
use replikit::core::{CollectionName, Config, Error};
use serde_json::{json, Map, Value};
use sim::{url, PgCluster};
use support::World;

fn todos() -> CollectionName {
    CollectionName::parse("todos").unwrap()
}

fn data(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// A browser-like client (offline writes queued) of a primary and one replica.
fn cluster(options: Value) -> World<PgCluster> {
    cluster_on(options, false)
}

fn cluster_on(options: Value, has_resolver: bool) -> World<PgCluster> {
    cluster_with(options, Platform { browser: true, has_indexeddb: false, has_resolver, has_fs: false })
}

/// A browser client whose store is persistent (IndexedDB; the harness's memory store stands in for it).
fn with_persistent_store() -> World<PgCluster> {
    cluster_with(json!({}), Platform { browser: true, has_indexeddb: true, has_resolver: false, has_fs: false })
}

fn cluster_with(options: Value, platform: Platform) -> World<PgCluster> {
    let mut opts = json!({ "primary": url(0), "replicas": [url(1)] });
    for (k, v) in options.as_object().cloned().unwrap_or_default() {
        opts[k] = v;
    }
    let config = Config::from_json(opts).expect("valid options");
    let mut h = World::new(PgCluster::new(1));
    h.add_client(config, platform);
    h.run_for(100); // the first health checks
    h
}

fn write(kind: WriteKind, id: &str, v: Option<Value>, if_version: Option<u64>) -> CallSpec {
    CallSpec::Write {
        kind,
        collection: todos(),
        id: Some(id.into()),
        data: v.map(data),
        if_version: if_version.map(Version::Seq),
        durability: None,
    }
}

fn get(id: &str, policy: Option<ReadPolicy>) -> CallSpec {
    CallSpec::Get { collection: todos(), id: id.into(), read_preference: None, read_policy: policy }
}

fn list(policy: Option<ReadPolicy>) -> CallSpec {
    CallSpec::List { collection: todos(), limit: None, after: None, read_preference: None, read_policy: policy }
}

fn doc(r: Result<Output, Failure>) -> replikit::core::client::Served {
    match r {
        Ok(Output::Doc(s)) => s,
        other => panic!("expected a document, got {other:?}"),
    }
}

fn kill_all(h: &mut World<PgCluster>) {
    for i in 0..h.server.nodes.len() {
        h.server.kill(i);
    }
    h.run_for(5000); // the health checks mark them down
    assert!(h.clients[0].client.router().all_down());
}

/// The server's copy of `id` on the primary.
fn on_server(h: &World<PgCluster>, id: &str) -> Option<Value> {
    h.server.nodes[0].docs.get(&("todos".to_string(), id.to_string())).cloned()
}

#[test]
fn a_write_with_every_endpoint_known_down_is_queued_at_once_not_after_primary_wait() {
    let mut h = cluster(json!({}));
    kill_all(&mut h);
    for i in 0..5 {
        let (r, took) = h.call_spec(0, write(WriteKind::Create, &format!("t{i}"), Some(json!({"n": i})), None));
        let d = doc(r);
        assert!(d.pending && d.from_cache, "queued: {d:?}");
        assert!(took < 50, "resolved in {took} virtual ms");
    }
    assert_eq!(h.clients[0].outbox().len(), 5);
    assert_eq!(h.clients[0].event_names().iter().filter(|n| **n == "queued").count(), 5);
}

#[test]
fn a_write_made_offline_is_queued_at_once_and_flushed_in_order_once_online() {
    let mut h = cluster(json!({}));
    h.clients[0].online = false;
    let (r, took) = h.call_spec(0, write(WriteKind::Create, "a", Some(json!({"v": 1})), None));
    assert!(doc(r).pending && took == 0);
    doc(h.call_spec(0, write(WriteKind::Update, "a", Some(json!({"done": true})), None)).0);
    assert_eq!(h.clients[0].outbox().len(), 2, "the second write goes behind the first");
    assert!(on_server(&h, "a").is_none());
    go_online(&mut h);
    h.run_for(1000);
    assert!(h.clients[0].outbox().is_empty());
    let server = on_server(&h, "a").expect("synced");
    assert_eq!(server["data"], json!({"v": 1, "done": true}));
    assert_eq!(server["version"], json!(2), "applied once each, in order");
    let synced = h.clients[0].event_names().iter().filter(|n| **n == "synced").count();
    assert_eq!(synced, 2);
    let cached = doc(h.call_spec(0, get("a", Some(ReadPolicy::CacheOnly))).0);
    assert!(!cached.pending, "the cache shows the server's copy");
    assert_eq!(cached.doc.version, Version::Seq(2));
}

#[test]
fn queued_writes_to_one_document_sync_in_order_though_versions_cannot_be_predicted() {
    let mut h = cluster(json!({}));
    h.server.term_versions = true; // as the reference server: term << 40 plus one sequence
    h.clients[0].online = false;
    let created = doc(h.call_spec(0, write(WriteKind::Create, "a", Some(json!({"v": 1})), None)).0);
    assert_eq!(created.doc.version, Version::Seq(0), "a pending copy's version is no server's");
    doc(h.call_spec(0, write(WriteKind::Update, "a", Some(json!({"done": true})), None)).0);
    doc(h.call_spec(0, write(WriteKind::Update, "a", Some(json!({"n": 3})), None)).0);
    go_online(&mut h);
    h.run_for(1000);
    assert!(h.clients[0].outbox().is_empty());
    assert_eq!(count(&h, "synced"), 3);
    assert_eq!(count(&h, "conflict"), 0, "each update was sent against the version the one before got");
    let server = on_server(&h, "a").expect("synced");
    assert_eq!(server["data"], json!({"v": 1, "done": true, "n": 3}));
    let cached = doc(h.call_spec(0, get("a", Some(ReadPolicy::CacheOnly))).0);
    assert_eq!(cached.doc.version.to_json(), server["version"], "the cache shows the server's version");
}

#[test]
fn a_write_queued_over_a_pending_copy_never_matches_another_clients_version() {
    let mut h = cluster(json!({ "conflict": "server-wins" }));
    doc(h.call_spec(0, write(WriteKind::Create, "a", Some(json!({"title": "first"})), None)).0);
    h.clients[0].online = false;
    doc(h.call_spec(0, write(WriteKind::Update, "a", Some(json!({"title": "mine"})), None)).0);
    doc(h.call_spec(0, write(WriteKind::Update, "a", Some(json!({"mine": 2})), None)).0);
    // Version 2 is the other client's, with a content this client never saw.
    another_client_writes(&mut h, "a", json!({"title": "theirs"}));
    go_online(&mut h);
    h.run_for(1000);
    assert!(h.clients[0].outbox().is_empty(), "settled");
    assert_eq!(count(&h, "conflict"), 2, "both queued writes met the other client's version");
    assert_eq!(on_server(&h, "a").unwrap()["data"], json!({"title": "theirs"}), "nothing written over it");
}

#[test]
fn queued_writes_flush_when_a_primary_comes_back_and_db_flush_resolves_then() {
    let mut h = cluster(json!({}));
    kill_all(&mut h);
    doc(h.call_spec(0, write(WriteKind::Create, "a", Some(json!({"v": 1})), None)).0);
    let flush = h.start_spec(0, CallSpec::Flush);
    h.run_for(3000);
    assert!(!h.clients[0].results.contains_key(&flush), "db.flush() waits while nothing takes writes");
    h.server.start(0);
    h.run_until(|h| h.clients[0].results.contains_key(&flush), h.now + 5000);
    assert!(matches!(h.clients[0].results[&flush].1, Ok(Output::Nothing)), "{:?}", h.clients[0].results[&flush]);
    assert!(on_server(&h, "a").is_some());
    assert!(h.clients[0].outbox().is_empty());
}

/// Another client's write to `id` (at version 1 on the primary), straight to the primary: version 2 with `data`.
fn another_client_writes<'a>(h: &'a mut World<PgCluster>, id: &str, data: Value) -> &'a mut Value {
    let doc = h.server.nodes[0].docs.get_mut(&("todos".to_string(), id.to_string())).expect("the document exists");
    doc["version"] = json!(2);
    doc["data"] = data;
    doc
}

/// A document cached at version 1, updated offline by this client and, meanwhile, by another to version 2.
fn conflict_with(strategy: Value) -> World<PgCluster> {
    let mut h = cluster(json!({ "conflict": strategy }));
    doc(h.call_spec(0, write(WriteKind::Create, "a", Some(json!({"title": "first", "n": 0})), None)).0);
    h.clients[0].online = false;
    doc(h.call_spec(0, write(WriteKind::Update, "a", Some(json!({"title": "mine"})), None)).0);
    let other = another_client_writes(&mut h, "a", json!({"title": "theirs", "n": 1}));
    other["updatedAt"] = json!("2999-01-01T00:00:00.000Z");
    go_online(&mut h);
    h.run_for(1000);
    assert!(h.clients[0].outbox().is_empty(), "settled");
    h
}

fn outbox_conflict(h: &World<PgCluster>) -> OutboxResolution {
    h.clients[0]
        .events
        .iter()
        .find_map(|(_, e)| match e {
            ClientEvent::OutboxConflict { resolution, remote, .. } => {
                assert_eq!(remote.as_ref().unwrap().version, Version::Seq(2), "the server's version");
                Some(*resolution)
            }
            _ => None,
        })
        .expect("a conflict event")
}

#[test]
fn server_wins_drops_the_queued_write_and_the_cache_shows_the_servers_version() {
    let mut h = conflict_with(json!("server-wins"));
    assert_eq!(outbox_conflict(&h), OutboxResolution::Dropped);
    assert_eq!(on_server(&h, "a").unwrap()["data"], json!({"title": "theirs", "n": 1}));
    let cached = doc(h.call_spec(0, get("a", Some(ReadPolicy::CacheOnly))).0);
    assert_eq!(cached.doc.data, data(json!({"title": "theirs", "n": 1})));
}

#[test]
fn client_wins_reapplies_the_queued_write_over_the_current_version() {
    let h = conflict_with(json!("client-wins"));
    assert_eq!(outbox_conflict(&h), OutboxResolution::Reapplied);
    let server = on_server(&h, "a").unwrap();
    assert_eq!(server["data"], json!({"title": "mine", "n": 1}), "the patch over their version");
    assert_eq!(server["version"], json!(3));
}

#[test]
fn last_writer_wins_keeps_the_later_edit_here_the_servers() {
    let h = conflict_with(json!("last-writer-wins"));
    assert_eq!(outbox_conflict(&h), OutboxResolution::Dropped, "their updatedAt is later than the local edit");
    assert_eq!(on_server(&h, "a").unwrap()["version"], json!(2));
}

#[test]
fn a_conflict_function_is_asked_with_local_remote_and_base_and_its_answer_is_written() {
    let mut h = cluster_on(json!({}), true);
    h.clients[0].resolver = Some(Box::new(|input| match input {
        ResolverInput::Outbox { local, remote, base } => {
            let mut merged = remote.as_ref().unwrap().data.clone();
            merged.insert("title".into(), local.as_ref().unwrap().data["title"].clone());
            merged.insert("base".into(), json!(base.as_ref().unwrap().version.to_string()));
            Ok(Some(merged))
        }
        other => panic!("{other:?}"),
    }));
    doc(h.call_spec(0, write(WriteKind::Create, "a", Some(json!({"title": "first", "n": 0})), None)).0);
    h.clients[0].online = false;
    doc(h.call_spec(0, write(WriteKind::Update, "a", Some(json!({"title": "mine"})), None)).0);
    another_client_writes(&mut h, "a", json!({"title": "theirs", "n": 1}));
    go_online(&mut h);
    h.run_for(1000);
    assert_eq!(h.clients[0].asked.len(), 1);
    assert_eq!(on_server(&h, "a").unwrap()["data"], json!({"title": "mine", "n": 1, "base": "1"}));
    assert_eq!(outbox_conflict(&h), OutboxResolution::Reapplied);
}

#[test]
fn a_resolver_that_fails_makes_the_write_fail_for_good_and_flush_reject() {
    let mut h = cluster_on(json!({}), true);
    doc(h.call_spec(0, write(WriteKind::Create, "a", Some(json!({"title": "first"})), None)).0);
    another_client_writes(&mut h, "a", json!({"title": "theirs"}));
    h.clients[0].resolver = Some(Box::new(|_| Err(Error::invalid("conflict", "the resolver threw: no"))));
    h.clients[0].online = false;
    doc(h.call_spec(0, write(WriteKind::Replace, "a", Some(json!({"title": "x"})), Some(1))).0);
    h.clients[0].online = true;
    let (r, _) = h.call_spec(0, CallSpec::Flush);
    assert_eq!(r.unwrap_err().error.code(), "invalid_argument");
    assert!(h.clients[0].event_names().contains(&"syncFailed"));
    assert!(h.clients[0].outbox().is_empty(), "removed, not retried forever");
}

#[test]
fn a_list_that_reaches_no_endpoint_is_served_from_the_cache_at_once_and_says_so() {
    let mut h = cluster(json!({}));
    for i in 0..3 {
        doc(h.call_spec(0, write(WriteKind::Create, &format!("t{i}"), Some(json!({"i": i})), None)).0);
    }
    kill_all(&mut h);
    let (r, took) = h.call_spec(0, list(None));
    let Ok(Output::Page(page)) = r else { panic!("{r:?}") };
    assert!(page.from_cache && !page.complete, "{page:?}");
    assert_eq!(page.items.len(), 3);
    assert!(took < 50, "took {took}");
}

#[test]
fn a_network_only_list_that_reaches_no_endpoint_fails_with_the_causes() {
    let mut h = cluster(json!({"primaryWaitMs": 1000}));
    kill_all(&mut h);
    let (r, _) = h.call_spec(0, list(Some(ReadPolicy::NetworkOnly)));
    let f = r.unwrap_err();
    assert_eq!(f.error.code(), "unavailable");
    assert_eq!(f.causes.len(), 2, "{:?}", f.causes);
    assert!(f.causes.iter().all(|c| c.code == "unreachable"), "{:?}", f.causes);
}

#[test]
fn a_get_that_reaches_no_endpoint_serves_the_cached_copy_and_a_pending_write_always_wins() {
    let mut h = cluster(json!({}));
    doc(h.call_spec(0, write(WriteKind::Create, "a", Some(json!({"v": 1})), None)).0);
    kill_all(&mut h);
    let (r, took) = h.call_spec(0, get("a", None));
    let d = doc(r);
    assert!(d.from_cache && took < 50);
    doc(h.call_spec(0, write(WriteKind::Update, "a", Some(json!({"v": 2})), None)).0);
    let d = doc(h.call_spec(0, get("a", Some(ReadPolicy::NetworkFirst))).0);
    assert!(d.pending);
    assert_eq!(d.doc.data, data(json!({"v": 2})));
}

#[test]
fn a_store_that_fails_while_queueing_refuses_the_write_rather_than_reorder_it() {
    // A persistent store (IndexedDB in browsers) that breaks: what it holds cannot be seen any more, so a write
    // queued in memory now would sync before older queued writes and be overwritten by them after a reload.
    let mut h = with_persistent_store();
    doc(h.call_spec(0, write(WriteKind::Create, "a", Some(json!({"v": 1})), None)).0);
    h.clients[0].online = false;
    h.clients[0].store_fails = true;
    let err = h.call_spec(0, write(WriteKind::Update, "a", Some(json!({"v": 2})), None)).0.unwrap_err();
    assert_eq!(err.error.code(), "storage", "the app is told the write was not kept");
    assert_eq!(count(&h, "storageError"), 1, "and the store's failure reported once");
    let cached = doc(h.call_spec(0, get("a", Some(ReadPolicy::CacheOnly))).0);
    assert_eq!(cached.doc.data, data(json!({"v": 1})), "the refused write left no optimistic copy");
    assert!(!cached.pending);
    let err = h.call_spec(0, write(WriteKind::Update, "a", Some(json!({"v": 3})), None)).0.unwrap_err();
    assert_eq!(err.error.code(), "storage", "later writes are refused too (not queued in memory)");
    assert!(h.clients[0].outbox().is_empty());
    h.clients[0].online = true;
    let d = doc(h.call_spec(0, write(WriteKind::Update, "a", Some(json!({"v": 4})), None)).0);
    assert!(!d.pending, "writes that reach the server go on");
}

#[test]
fn a_read_with_every_endpoint_unknown_and_a_404_non_gateway_fails_with_not_a_gateway_causes() {
    // Endpoints answering 404 without a Replikit error body (another server, or a wrong path).
    let mut h = cluster(json!({"primaryWaitMs": 1000}));
    for n in h.server.nodes.iter_mut() {
        n.not_a_gateway = true;
    }
    h.run_for(3000);
    let (r, _) = h.call_spec(0, get("a", Some(ReadPolicy::NetworkOnly)));
    let f = r.unwrap_err();
    assert_ne!(f.error.code(), "not_found", "a 404 from a non-gateway is not a missing document");
    assert!(f.causes.iter().any(|c| c.code == "not_a_gateway" || c.code == "protocol"), "{:?}", f.causes);
}

fn go_online(h: &mut World<PgCluster>) {
    h.clients[0].online = true;
    let now = h.now;
    h.clients[0].client.set_online(true, now);
    h.pump_all();
}

fn count(h: &World<PgCluster>, name: &str) -> usize {
    h.clients[0].event_names().iter().filter(|n| **n == name).count()
}

#[test]
fn a_write_queued_while_the_flush_sends_the_one_before_keeps_its_cache_entry_until_it_syncs() {
    let mut h = cluster(json!({}));
    h.clients[0].online = false;
    doc(h.call_spec(0, write(WriteKind::Create, "a", Some(json!({"v": 1})), None)).0);
    go_online(&mut h); // the flush sends the create now
    let second = doc(h.call_spec(0, write(WriteKind::Update, "a", Some(json!({"e2": true})), None)).0);
    assert!(second.pending, "queued behind the create in flight");
    h.run_until(|w| count(w, "synced") == 1, h.now + 1000);
    let cached = doc(h.call_spec(0, get("a", Some(ReadPolicy::CacheOnly))).0);
    assert!(cached.pending, "the update is still queued: the cache must not show the server's older copy");
    assert_eq!(cached.doc.data, data(json!({"v": 1, "e2": true})));
    h.run_for(1000);
    assert_eq!(on_server(&h, "a").unwrap()["data"], json!({"v": 1, "e2": true}));
    assert!(!doc(h.call_spec(0, get("a", Some(ReadPolicy::CacheOnly))).0).pending);
}

#[test]
fn db_flush_joining_a_running_flush_answers_for_what_happens_after_it_joined() {
    let mut h = cluster(json!({}));
    doc(h.call_spec(0, write(WriteKind::Create, "taken", Some(json!({})), None)).0);
    h.clients[0].online = false;
    for id in ["taken", "b", "c"] {
        // "taken" exists on the server: its queued create fails for good (already_exists).
        doc(h.call_spec(0, write(WriteKind::Create, id, Some(json!({})), None)).0);
    }
    go_online(&mut h);
    h.run_until(|w| count(w, "syncFailed") == 1, h.now + 1000);
    assert_eq!(h.clients[0].outbox().len(), 2, "b and c still to go");
    let (r, _) = h.call_spec(0, CallSpec::Flush);
    assert!(matches!(r, Ok(Output::Nothing)), "the failure before it joined is not this call's: {r:?}");
    assert!(on_server(&h, "b").is_some() && on_server(&h, "c").is_some());
}

#[test]
fn a_lock_granted_to_a_flush_that_is_gone_is_released_at_once() {
    let mut h = cluster(json!({}));
    let now = h.now;
    let stray = replikit::core::client::CallId(9999);
    h.clients[0].client.handle_locked(stray, now);
    let effects: Vec<_> = std::iter::from_fn(|| h.clients[0].client.poll_effect()).collect();
    assert!(effects.contains(&replikit::core::client::Effect::Unlock { call: stray }), "{effects:?}");
}

#[test]
fn an_answer_of_the_conflict_function_nobody_asked_for_is_ignored() {
    let mut h = cluster(json!({}));
    doc(h.call_spec(0, write(WriteKind::Create, "a", Some(json!({"v": 1})), None)).0);
    let read = h.start_spec(0, get("a", Some(ReadPolicy::NetworkOnly)));
    let now = h.now;
    h.clients[0].client.handle_resolver(read, now, Ok(Some(data(json!({"x": 1})))));
    h.run_until(|w| w.clients[0].results.contains_key(&read), h.now + 1000);
    let d = doc(h.clients[0].results.remove(&read).unwrap().1);
    assert_eq!(d.doc.data, data(json!({"v": 1})), "the read went on as if nothing came");
}

#[test]
fn a_store_that_fails_to_read_is_reported_but_kept() {
    let mut h = with_persistent_store();
    h.clients[0].store_fails = true;
    let (r, _) = h.call_spec(0, CallSpec::PendingWrites);
    assert!(matches!(r, Ok(Output::Pending(ref l)) if l.is_empty()), "{r:?}");
    assert_eq!(count(&h, "storageError"), 1);
    assert!(h.clients[0].store_fails, "no switch to a memory store for a failed read");
}

#[test]
fn ids_and_idempotency_keys_come_from_the_calls_random_bytes_not_the_endpoint_picker() {
    let mut h = cluster(json!({}));
    let mut random = [0u8; 20];
    random.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8 * 13);
    let spec = CallSpec::Write {
        kind: WriteKind::Create,
        collection: todos(),
        id: None,
        data: Some(data(json!({}))),
        if_version: None,
        durability: None,
    };
    let now = h.now;
    h.clients[0].client.start_call(spec, replikit::core::client::Env { now_ms: now, online: true, random });
    let send = std::iter::from_fn(|| h.clients[0].client.poll_effect())
        .find_map(|e| match e {
            replikit::core::client::Effect::Send { request, .. } => Some(request),
            _ => None,
        })
        .expect("the create is sent");
    let id = replikit::core::client::uuid_v7(now, &random[..10]);
    let key = replikit::core::client::uuid_v7(now, &random[10..]);
    assert!(send.body.as_deref().unwrap().contains(&id), "the document id: {:?}", send.body);
    assert!(send.headers.iter().any(|(k, v)| k == "idempotency-key" && *v == key), "{:?}", send.headers);
    assert_ne!(id, key);
}

#[test]
fn a_write_whose_outbox_seq_another_tab_took_is_queued_under_the_next_one() {
    use replikit::core::client::{Effect, Env, StoreOp, Stored};
    let mut h = cluster(json!({}));
    let now = h.now;
    let spec = write(WriteKind::Create, "a", Some(json!({"v": 1})), None);
    let call = h.clients[0].client.start_call(spec, Env { now_ms: now, online: false, random: [1; 20] });
    let add = |c: &mut replikit::core::client::Client| {
        std::iter::from_fn(|| c.poll_effect()).find_map(|e| match e {
            Effect::Store { token, op: StoreOp::AddOutbox { entry, .. } } => Some((token, entry)),
            _ => None,
        })
    };
    let (token, first) = add(&mut h.clients[0].client).expect("queued with AddOutbox");
    h.clients[0].client.handle_stored(token, now, Ok(Stored::Taken));
    let (token, second) = add(&mut h.clients[0].client).expect("added again");
    assert_eq!(second.seq, first.seq + 1, "the next seq, still in order after the other tab's");
    assert_eq!(second.key, first.key, "the same write");
    h.clients[0].client.handle_stored(token, now, Ok(Stored::Done));
    let done = std::iter::from_fn(|| h.clients[0].client.poll_effect())
        .any(|e| matches!(e, Effect::Complete { call: c, result: Ok(Output::Doc(_)) } if c == call));
    assert!(done, "the call resolves once the entry is stored");
}

#[test]
fn refused_credentials_while_flushing_pause_the_outbox_and_keep_every_entry() {
    let mut h = cluster(json!({}));
    h.clients[0].online = false;
    for id in ["a", "b"] {
        doc(h.call_spec(0, write(WriteKind::Create, id, Some(json!({})), None)).0);
    }
    h.server.nodes[0].refuses_writes = true; // the session's token was revoked
    go_online(&mut h);
    h.run_for(3000);
    assert_eq!(h.clients[0].outbox().len(), 2, "nothing dropped");
    assert_eq!(count(&h, "syncPaused"), 1, "told once; the automatic triggers wait");
    assert_eq!(count(&h, "syncFailed"), 0);
    let (r, _) = h.call_spec(0, CallSpec::Flush);
    assert_eq!(r.unwrap_err().error.code(), "unauthorized", "db.flush() tries again and says why it cannot");
    assert_eq!(h.clients[0].outbox().len(), 2);
    h.server.nodes[0].refuses_writes = false; // new credentials
    let (r, _) = h.call_spec(0, CallSpec::Flush);
    assert!(matches!(r, Ok(Output::Nothing)), "{r:?}");
    assert!(on_server(&h, "a").is_some() && on_server(&h, "b").is_some());
}

#[test]
fn the_file_store_needs_nodes_file_system_and_its_failure_is_a_durable_stores_failure() {
    use replikit::core::client::Settings;
    use replikit::core::types::StoreKind;
    let config = Config::from_json(json!({ "primary": url(0), "cache": {"store": "file", "path": "/q"} })).unwrap();
    let browser = Platform { browser: true, has_indexeddb: true, has_resolver: false, has_fs: false };
    let err = Settings::resolve(&config, browser).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { ref what, .. } if what == "cache.store"), "{err:?}");
    let node = Platform { browser: false, has_indexeddb: false, has_resolver: false, has_fs: true };
    let settings = Settings::resolve(&config, node).unwrap();
    assert_eq!((settings.store, settings.path.as_deref()), (StoreKind::File, Some("/q")));
    assert!(StoreKind::File.durable() && StoreKind::IndexedDb.durable() && !StoreKind::Memory.durable());
}
