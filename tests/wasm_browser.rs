//! wasm-bindgen tests in headless Chromium (through chromedriver): the IndexedDB store on the real thing.
#![cfg(target_arch = "wasm32")]

use replikit::cache::indexeddb::IndexedDbStore;
use replikit::cache::{conformance, Store};
use replikit::core::{CollectionName, Doc};
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
async fn a_document_written_to_indexeddb_is_read_back_after_reopening() {
    let name = fresh_name("reopen");
    let users = CollectionName::parse("users").unwrap();
    let doc: Doc = serde_json::from_value(serde_json::json!({
        "id": "u1", "version": 7, "data": {"name": "Grace", "langs": ["COBOL"]}, "updatedAt": "2026-11-22T00:00:00Z"
    }))
    .unwrap();
    let store = IndexedDbStore::open(&name).await.unwrap();
    store.put(&users, &doc).await.unwrap();
    store.close();

    let reopened = IndexedDbStore::open(&name).await.unwrap();
    assert_eq!(reopened.get(&users, "u1").await.unwrap(), Some(doc));
    reopened.close();
}
