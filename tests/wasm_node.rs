//! wasm-bindgen tests that run in Node (wasm-bindgen-test-runner): the compiled module's behaviour at the
//! JS boundary, and the IndexedDB store against fake-indexeddb (loaded with NODE_ARGS by scripts/test.sh).
#![cfg(target_arch = "wasm32")]

use replikit::cache::indexeddb::IndexedDbStore;
use replikit::cache::{conformance, MemoryStore};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

fn options(json: &str) -> JsValue {
    js_sys::JSON::parse(json).unwrap()
}

fn field(v: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(v, &JsValue::from_str(key)).unwrap()
}

#[wasm_bindgen_test]
async fn create_client_accepts_the_shorthand_and_lists_the_topology() {
    let client = replikit::wasm::create_client(options(
        r#"{"primary": "http://127.0.0.1:7100", "replicas": ["http://127.0.0.1:7101"]}"#,
    ))
    .await
    .unwrap();
    let topology: js_sys::Array = client.topology().into();
    assert_eq!(topology.length(), 2);
    assert_eq!(field(&topology.get(1), "role"), "replica");
    assert_eq!(field(&topology.get(1), "state"), "unknown");
    // Plain objects, not Maps: serde-wasm-bindgen's json_compatible serializer is in use.
    assert!(topology.get(0).is_object() && !topology.get(0).is_instance_of::<js_sys::Map>());
    let effective = client.effective_options();
    assert_eq!(field(&field(&effective, "cache"), "store"), "memory", "Node's default cache is memory");
    assert_eq!(field(&field(&effective, "offline"), "queueWrites"), false, "and Node does not queue by default");
    client.close().await;
}

#[wasm_bindgen_test]
async fn bad_options_reject_with_a_code_and_the_option_path() {
    let err = replikit::wasm::create_client(options(r#"{"primary": "http://a", "retry": {"maxAttempts": 1.5}}"#))
        .await
        .err()
        .unwrap();
    assert_eq!(field(&err, "code"), "invalid_argument");
    assert_eq!(field(&err, "argument"), "retry.maxAttempts");
    let err = replikit::wasm::create_client(JsValue::UNDEFINED).await.err().unwrap();
    assert_eq!(field(&err, "code"), "invalid_argument");
}

#[wasm_bindgen_test]
async fn memory_store_passes_the_conformance_suite_in_wasm() {
    conformance::run(&MemoryStore::new()).await;
}

#[wasm_bindgen_test]
async fn indexeddb_store_passes_the_conformance_suite_on_fake_indexeddb() {
    let name = format!("replikit-node-test-{}", js_sys::Math::random());
    let store = IndexedDbStore::open(&name).await.unwrap();
    conformance::run(&store).await;
    store.close();
}
