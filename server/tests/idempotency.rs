//! Idempotency records (docs/PROTOCOL.md, section 6) on a real cluster: a key is bound to one
//! request (method, path and body), a replay applies nothing, a record's size does not grow
//! with the body, and records older than the window are swept.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use serde_json::json;

/// The cluster of every test but the sweep's (the default window: nothing expires).
fn cluster() -> &'static DevCluster {
    static CLUSTER: OnceLock<DevCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| DevCluster::start(&["--replicas", "1"]))
}

fn primary() -> String {
    cluster().url(0)
}

fn primary_sql(query: &str) -> Vec<Vec<Option<String>>> {
    sql(cluster().info.nodes[0].pg_port, query)
}

fn put(url: &str, key: &str, body: &str) -> replikit_server::client::HttpResponse {
    req("PUT", url, &[("Idempotency-Key", key)], Some(body))
}

#[test]
fn the_same_key_with_another_body_is_422_idempotency_mismatch_and_applies_nothing() {
    let c = fresh_collection("mismatch");
    let key = format!("k-{c}");
    let url = format!("{}/v1/c/{c}/q", primary());
    let first = put(&url, &key, r#"{"data":{"v":1}}"#);
    assert_eq!(first.status, 201, "{}", String::from_utf8_lossy(&first.body));
    let other = put(&url, &key, r#"{"data":{"v":2}}"#);
    assert_eq!((other.status, code(&other).as_str()), (422, "idempotency_mismatch"));
    assert_eq!(other.header("idempotent-replayed"), None);
    assert_eq!(get(&url).json()["data"], json!({"v": 1}), "nothing applied");

    // Another method or path under the key is the same mismatch.
    let delete = req("DELETE", &url, &[("Idempotency-Key", &key)], None);
    assert_eq!((delete.status, code(&delete).as_str()), (422, "idempotency_mismatch"));
    let elsewhere = put(&format!("{url}2"), &key, r#"{"data":{"v":1}}"#);
    assert_eq!((elsewhere.status, code(&elsewhere).as_str()), (422, "idempotency_mismatch"));
}

#[test]
fn the_same_key_and_body_replay_the_first_answer_and_a_lost_answer_applies_once() {
    let c = fresh_collection("replay");
    let key = format!("k-{c}");
    let url = format!("{}/v1/c/{c}/d", primary());
    let first = put(&url, &key, r#"{"data":{"n":1}}"#);
    assert_eq!(first.status, 201);
    // The client lost that answer and retries: the first answer again, applied once.
    let retry = put(&url, &key, r#"{"data":{"n":1}}"#);
    assert_eq!(retry.status, 201);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.header("etag"), first.header("etag"));
    assert_eq!(retry.json(), first.json());
    assert_eq!(get(&url).json()["version"], first.json()["version"], "applied once");

    // A PATCH retried: one version step, the same answer; and a replayed DELETE is 204.
    let patch_key = format!("p-{c}");
    let patched = req("PATCH", &url, &[("Idempotency-Key", &patch_key)], Some(r#"{"m":2}"#));
    let again = req("PATCH", &url, &[("Idempotency-Key", &patch_key)], Some(r#"{"m":2}"#));
    assert_eq!((patched.status, again.status), (200, 200));
    assert_eq!(again.json(), patched.json());
    assert_eq!(get(&url).json()["version"], patched.json()["version"], "applied once");
    let delete_key = format!("d-{c}");
    let deleted = req("DELETE", &url, &[("Idempotency-Key", &delete_key)], None);
    let deleted_again = req("DELETE", &url, &[("Idempotency-Key", &delete_key)], None);
    assert_eq!((deleted.status, deleted_again.status), (204, 204));
    assert_eq!(deleted_again.header("idempotent-replayed"), Some("true"));
}

#[test]
fn a_replay_answers_the_document_as_it_is_now_and_404_once_it_was_deleted() {
    let c = fresh_collection("moved");
    let key = format!("k-{c}");
    let url = format!("{}/v1/c/{c}/d", primary());
    assert_eq!(put(&url, &key, r#"{"data":{"n":1}}"#).status, 201);
    // Someone else writes the document: the replay still says 201 (what the write did) and
    // carries the document as it is now, never a version that is not the current one.
    let later = req("PUT", &url, &[], Some(r#"{"data":{"n":2}}"#));
    assert_eq!(later.status, 200);
    let replay = put(&url, &key, r#"{"data":{"n":1}}"#);
    assert_eq!((replay.status, replay.header("idempotent-replayed")), (201, Some("true")));
    assert_eq!(replay.json(), later.json());
    assert_eq!(replay.header("etag"), later.header("etag"));
    // Deleted since: 404 not_found, marked replayed, and nothing is written again.
    assert_eq!(req("DELETE", &url, &[], None).status, 204);
    let gone = put(&url, &key, r#"{"data":{"n":1}}"#);
    assert_eq!((gone.status, code(&gone).as_str()), (404, "not_found"));
    assert_eq!(gone.header("idempotent-replayed"), Some("true"));
    assert_eq!(get(&url).status, 404, "the retry did not write the document again");
}

#[test]
fn records_made_before_fingerprints_still_replay_on_method_and_path() {
    let c = fresh_collection("legacy");
    let key = format!("k-{c}");
    let url = format!("{}/v1/c/{c}/old", primary());
    // The document and the record an older gateway wrote (its record had no fingerprint).
    let r = req("PUT", &url, &[], Some(r#"{"data":{"v":1}}"#));
    assert_eq!(r.status, 201);
    primary_sql(&format!(
        "INSERT INTO replikit_idempotency (key, method, collection, doc_id, status) VALUES ('{key}', 'PUT', '{c}', 'old', 201)"
    ));
    let replay = put(&url, &key, r#"{"data":{"v":1}}"#);
    assert_eq!((replay.status, replay.header("idempotent-replayed")), (201, Some("true")));
    assert_eq!(replay.json(), r.json());
    let delete = req("DELETE", &url, &[("Idempotency-Key", &key)], None);
    assert_eq!((delete.status, code(&delete).as_str()), (422, "idempotency_mismatch"));
}

#[test]
fn the_schema_migrates_a_table_made_by_an_older_gateway() {
    // An old-shaped table in a schema of its own, then the gateway's schema statements there.
    let schema = format!("legacy_{}", replikit_server::cluster::random_hex(4));
    primary_sql(&format!(
        "CREATE SCHEMA {schema}; SET search_path = {schema}; \
         CREATE TABLE replikit_idempotency (key text PRIMARY KEY, method text NOT NULL, collection text NOT NULL, \
         doc_id text, status int NOT NULL, body jsonb, created_at timestamptz NOT NULL DEFAULT now()); \
         INSERT INTO replikit_idempotency (key, method, collection, doc_id, status, body) \
         VALUES ('k', 'PUT', 't', 'q', 201, '{{\"id\":\"q\"}}'); {}",
        replikit_server::db::SCHEMA_SQL
    ));
    let columns = primary_sql(&format!(
        "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns \
         WHERE table_schema = '{schema}' AND table_name = 'replikit_idempotency'"
    ));
    assert_eq!(columns[0][0].as_deref(), Some("collection,created_at,doc_id,fingerprint,key,method,status"));
    let kept = primary_sql(&format!("SELECT count(*) FROM {schema}.replikit_idempotency WHERE fingerprint IS NULL"));
    assert_eq!(kept[0][0].as_deref(), Some("1"), "the old record is kept until the sweep");
    let index = primary_sql(&format!("SELECT count(*) FROM pg_indexes WHERE schemaname = '{schema}' AND indexname = 'replikit_idempotency_created_at'"));
    assert_eq!(index[0][0].as_deref(), Some("1"));
    primary_sql(&format!("DROP SCHEMA {schema} CASCADE"));
}

/// A string of `len` letters that does not compress (a fixed LCG, so the run is reproducible).
fn incompressible(len: usize, seed: u64) -> String {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            char::from(b'a' + ((x >> 33) % 26) as u8)
        })
        .collect()
}

#[test]
fn a_record_does_not_grow_with_the_body() {
    let c = fresh_collection("size");
    let size = || -> i64 {
        let rows = primary_sql("SELECT pg_total_relation_size('replikit_idempotency')");
        rows[0][0].as_deref().unwrap().parse().unwrap()
    };
    let before = size();
    for i in 0..20 {
        let body = json!({ "data": { "blob": incompressible(500_000, i) } }).to_string();
        let r = put(&format!("{}/v1/c/{c}/big{i}", primary()), &format!("big-{c}-{i}"), &body);
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
    let grown = size() - before;
    eprintln!("20 writes of 500 KB grew replikit_idempotency by {grown} bytes");
    // 10 MB of bodies; the records are a few hundred bytes each (pages and index included).
    assert!(grown < 256 * 1024, "the records grew by {grown} bytes");
}

#[test]
fn records_older_than_the_window_are_swept_and_the_key_is_free_again() {
    // A cluster of its own with a one-second window, so the sweep is seen within the test
    // and sweeps nothing another test relies on.
    let cluster = DevCluster::start(&["--replicas", "1", "--idempotency-window", "1s"]);
    let primary = cluster.url(0);
    let records = |key: &str| -> usize {
        let query = format!("SELECT count(*) FROM replikit_idempotency WHERE key = '{key}'");
        sql(cluster.info.nodes[0].pg_port, &query)[0][0].as_deref().unwrap().parse().unwrap()
    };
    let c = fresh_collection("sweep");
    let key = format!("k-{c}");
    let url = format!("{}/v1/c/{c}/s", primary);
    assert_eq!(put(&url, &key, r#"{"data":{"v":1}}"#).status, 201);
    assert_eq!(records(&key), 1);
    std::thread::sleep(Duration::from_millis(2100));
    // Writes drive the sweep: one more keyed write after the window.
    assert_eq!(put(&format!("{url}-later"), &format!("later-{c}"), r#"{"data":{}}"#).status, 201);
    let swept = eventually(Duration::from_secs(10), || (records(&key) == 0).then_some(()));
    assert!(swept.is_some(), "the expired record is still there");
    // The key now names a new request.
    let reused = put(&url, &key, r#"{"data":{"v":2}}"#);
    assert_eq!(reused.status, 200, "{}", String::from_utf8_lossy(&reused.body));
    assert_eq!(reused.header("idempotent-replayed"), None);
    assert_eq!(get(&url).json()["data"], json!({"v": 2}));
}
