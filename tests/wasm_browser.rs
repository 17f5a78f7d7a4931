//! wasm-bindgen tests in headless Chromium (through chromedriver): the IndexedDB store on the real thing.
#![cfg(target_arch = "wasm32")]

use indexed_db_futures::database::Database;
use indexed_db_futures::prelude::*;
use replikit::cache::indexeddb::IndexedDbStore;
use replikit::cache::{conformance, Store};
use replikit::core::cache::Entry;
use replikit::core::outbox::{OutboxEntry, WriteKind};
use replikit::core::Doc;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn fresh_name(what: &str) -> String {
    format!("replikit-browser-{what}-{}", js_sys::Math::random())
}

#[wasm_bindgen_test]
async fn indexeddb_store_passes_the_conformance_suite_in_chromium() {
    let store = IndexedDbStore::open(&fresh_name("conformance")).await.unwrap();
    conformance::run(&store).await;
    store.close();
}

#[wasm_bindgen_test]
async fn the_cache_and_the_outbox_survive_closing_and_reopening_the_database() {
    let name = fresh_name("reopen");
    let doc = Doc::from_value(serde_json::json!({
        "id": "u1", "version": 7, "data": {"name": "Grace", "langs": ["COBOL"]}, "updatedAt": "2026-11-22T00:00:00Z"
    }))
    .unwrap();
    let entry = Entry { collection: "users".into(), id: "u1".into(), doc: Some(doc), stored_at_ms: 5, pending: true };
    let queued = OutboxEntry {
        seq: 1_795_311_648_094_001,
        key: "k".into(),
        kind: WriteKind::Replace,
        collection: "users".into(),
        id: "u1".into(),
        data: serde_json::json!({"name": "Grace"}).as_object().cloned(),
        base_version: Some(replikit::core::document::Version::Seq(6)),
        base: None,
        edited_at_ms: 9,
        reapplied: 0,
    };
    let store = IndexedDbStore::open(&name).await.unwrap();
    store.put_outbox(&queued, Some(&entry)).await.unwrap();
    store.close();

    let reopened = IndexedDbStore::open(&name).await.unwrap();
    assert_eq!(reopened.entries().await.unwrap(), vec![entry]);
    assert_eq!(reopened.outbox().await.unwrap(), vec![queued], "a large seq survives as an IndexedDB number key");
    reopened.close();
}

#[wasm_bindgen_test]
async fn a_version_1_database_is_upgraded_in_place() {
    let name = fresh_name("upgrade");
    let v1 = Database::open(name.as_str())
        .with_version(1u32)
        .with_on_upgrade_needed(|_, db| {
            db.create_object_store("docs").build()?;
            Ok(())
        })
        .await
        .unwrap();
    v1.close();
    let store = IndexedDbStore::open(&name).await.unwrap();
    assert!(store.entries().await.unwrap().is_empty());
    conformance::run(&store).await;
    store.close();
}
