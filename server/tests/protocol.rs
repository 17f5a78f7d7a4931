//! Protocol v1 against one shared, undisturbed dev cluster (n0 primary, n1 and n2 standbys).

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use serde_json::json;

fn cluster() -> &'static DevCluster {
    static CLUSTER: OnceLock<DevCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| DevCluster::start(&["--cors-origin", "http://localhost:5173"]))
}

fn primary() -> String {
    cluster().url(0)
}

fn replica(i: usize) -> String {
    cluster().url(i)
}

fn create(collection: &str, id: &str, data: serde_json::Value) -> replikit_server::client::HttpResponse {
    let body = json!({ "id": id, "data": data }).to_string();
    let r = req("POST", &format!("{}/v1/c/{collection}", primary()), &[], Some(&body));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r
}

#[test]
fn health_reports_primary_and_replicas_on_term_one() {
    let p = get(&format!("{}/v1/health", primary())).json();
    assert_eq!(p["nodeId"], "n0");
    assert_eq!(p["role"], "primary");
    assert_eq!(p["term"], 1);
    assert!(p["position"].as_u64().unwrap() > 0);
    assert!(p["lagMs"].is_null());
    assert_eq!(p["readOnly"], false);
    for i in 1..=2 {
        let r = get(&format!("{}/v1/health", replica(i))).json();
        assert_eq!(r["nodeId"], format!("n{i}"));
        assert_eq!(r["role"], "replica");
        assert_eq!(r["term"], 1);
        assert!(r["lagMs"].is_number());
        assert_eq!(r["readOnly"], true);
    }
}

#[test]
fn write_on_primary_is_readable_on_every_replica_at_its_position() {
    let c = fresh_collection("repl");
    let w = create(&c, "doc1", json!({ "title": "hello" }));
    let version = w.json()["version"].clone();
    assert_eq!(w.header("etag"), Some(format!("\"{version}\"").as_str()));
    let pos = position(&w).to_string();
    for i in 1..=2 {
        let headers = [("X-Replikit-Min-Position", pos.as_str()), ("X-Replikit-Max-Wait-Ms", "2000")];
        let r = req("GET", &format!("{}/v1/c/{c}/doc1", replica(i)), &headers, None);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-replikit-node"), Some(format!("n{i}").as_str()));
        assert!(position(&r) >= pos.parse::<u64>().unwrap());
        let doc = r.json();
        assert_eq!(doc["id"], "doc1");
        assert_eq!(doc["version"], version);
        assert_eq!(doc["data"], json!({ "title": "hello" }));
        assert!(doc["updatedAt"].as_str().unwrap().ends_with('Z'));
    }
}

#[test]
fn write_on_a_replica_is_421_not_primary() {
    let c = fresh_collection("ro");
    for (method, path, body) in [
        ("POST", format!("/v1/c/{c}"), Some(r#"{"data":{}}"#)),
        ("PUT", format!("/v1/c/{c}/x"), Some(r#"{"data":{}}"#)),
        ("PATCH", format!("/v1/c/{c}/x"), Some(r#"{"a":1}"#)),
        ("DELETE", format!("/v1/c/{c}/x"), None),
    ] {
        let r = req(method, &format!("{}{path}", replica(1)), &[("Idempotency-Key", "k-ro")], body);
        assert_eq!(r.status, 421, "{method}");
        assert_eq!(code(&r), "not_primary");
    }
}

#[test]
fn idempotent_retry_returns_the_first_response_and_applies_once() {
    let c = fresh_collection("idem");
    let key = format!("key-{c}");
    let url = format!("{}/v1/c/{c}", primary());
    let body = r#"{"data":{"n":1}}"#;
    let first = req("POST", &url, &[("Idempotency-Key", &key)], Some(body));
    assert_eq!(first.status, 201);
    let again = req("POST", &url, &[("Idempotency-Key", &key)], Some(body));
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), first.json());
    let list = get(&format!("{url}?limit=10")).json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "applied once");

    // Racing retries of one PATCH: all get the same answer, the version moves by one.
    let id = first.json()["id"].as_str().unwrap().to_string();
    let patch_key = format!("patch-{c}");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (u, k) = (format!("{url}/{id}"), patch_key.clone());
            std::thread::spawn(move || req("PATCH", &u, &[("Idempotency-Key", &k)], Some(r#"{"m":2}"#)))
        })
        .collect();
    let answers: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let patched = answers[0].json()["version"].clone();
    assert!(patched.as_u64() > first.json()["version"].as_u64(), "{patched} after {}", first.json()["version"]);
    for a in &answers {
        assert_eq!(a.status, 200);
        assert_eq!(a.json()["version"], patched);
    }
    assert_eq!(get(&format!("{url}/{id}")).json()["version"], patched, "applied once");

    // The same key for a different request is refused.
    let other = req("DELETE", &format!("{url}/{id}"), &[("Idempotency-Key", &key)], None);
    assert_eq!((other.status, code(&other).as_str()), (422, "idempotency_mismatch"));
}

#[test]
fn if_match_on_a_stale_version_is_412_conflict_with_the_current_document() {
    let c = fresh_collection("cas");
    let first = create(&c, "d", json!({ "v": 1 })).header("etag").unwrap().to_string();
    let url = format!("{}/v1/c/{c}/d", primary());
    let ok = req("PUT", &url, &[("If-Match", &first)], Some(r#"{"data":{"v":2}}"#));
    assert_eq!(ok.status, 200);
    let second = ok.json()["version"].clone();
    assert_eq!(ok.header("etag"), Some(format!("\"{second}\"").as_str()));
    for (method, body) in [("PUT", Some(r#"{"data":{"v":3}}"#)), ("PATCH", Some(r#"{"v":3}"#)), ("DELETE", None)] {
        let r = req(method, &url, &[("If-Match", &first)], body);
        assert_eq!(r.status, 412, "{method}");
        assert_eq!(code(&r), "conflict");
        assert_eq!(r.json()["current"]["version"], second);
        assert_eq!(r.json()["current"]["data"], json!({ "v": 2 }));
    }
    let missing = req("PATCH", &format!("{}/v1/c/{c}/nope", primary()), &[("If-Match", "\"1\"")], Some("{}"));
    assert_eq!(missing.status, 412);
    assert!(missing.json()["current"].is_null());
}

#[test]
fn crud_put_creates_then_replaces_patch_merges_delete_removes() {
    let c = fresh_collection("crud");
    let url = format!("{}/v1/c/{c}/a", primary());
    let created = req("PUT", &url, &[], Some(r#"{"data":{"x":1,"y":{"z":1}}}"#));
    assert_eq!(created.status, 201);
    let replaced = req("PUT", &url, &[], Some(r#"{"data":{"x":2,"y":{"z":1,"w":2}}}"#));
    assert_eq!(replaced.status, 200);
    assert!(replaced.json()["version"].as_u64() > created.json()["version"].as_u64());
    let patched = req("PATCH", &url, &[], Some(r#"{"x":null,"y":{"z":5},"n":[1]}"#));
    assert_eq!(patched.status, 200);
    assert_eq!(patched.json()["data"], json!({ "y": { "z": 5, "w": 2 }, "n": [1] }));
    assert!(patched.json()["version"].as_u64() > replaced.json()["version"].as_u64());
    let dup = req("POST", &format!("{}/v1/c/{c}", primary()), &[], Some(r#"{"id":"a","data":{}}"#));
    assert_eq!(dup.status, 409);
    assert_eq!(code(&dup), "already_exists");
    let etag = get(&url).header("etag").unwrap().to_string();
    let not_modified = req("GET", &url, &[("If-None-Match", &etag)], None);
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(req("DELETE", &url, &[], None).status, 204);
    let gone = get(&url);
    assert_eq!(gone.status, 404);
    assert_eq!(code(&gone), "not_found");
    assert_eq!(req("DELETE", &url, &[], None).status, 404);
}

#[test]
fn list_pages_through_a_collection_in_id_order() {
    let c = fresh_collection("list");
    for id in ["c", "a", "e", "b", "d"] {
        create(&c, id, json!({ "id": id }));
    }
    let url = format!("{}/v1/c/{c}", primary());
    let page1 = get(&format!("{url}?limit=2")).json();
    let ids = |p: &serde_json::Value| {
        p["items"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&page1), ["a", "b"]);
    let page2 = get(&format!("{url}?limit=2&after={}", page1["next"].as_str().unwrap())).json();
    assert_eq!(ids(&page2), ["c", "d"]);
    let page3 = get(&format!("{url}?limit=2&after={}", page2["next"].as_str().unwrap())).json();
    assert_eq!(ids(&page3), ["e"]);
    assert!(page3["next"].is_null());
    assert_eq!(get(&format!("{url}?limit=1001")).status, 400);
}

#[test]
fn min_position_beyond_replay_is_503_lagging_after_the_wait_not_a_failure() {
    let c = fresh_collection("lag");
    create(&c, "d", json!({}));
    let far = (position(&get(&format!("{}/v1/health", primary()))) + (1 << 40)).to_string();
    let started = std::time::Instant::now();
    let r = req(
        "GET",
        &format!("{}/v1/c/{c}/d", replica(1)),
        &[("X-Replikit-Min-Position", &far), ("X-Replikit-Max-Wait-Ms", "300")],
        None,
    );
    let waited = started.elapsed();
    assert_eq!(r.status, 503);
    assert_eq!(code(&r), "lagging");
    assert!(r.json()["position"].as_u64().unwrap() > 0);
    assert!(position(&r) > 0);
    assert!(waited >= Duration::from_millis(280), "waited {waited:?}");
    // Default wait is 200 ms; the cap is 2000 ms.
    let r = req(
        "GET",
        &format!("{}/v1/c/{c}", replica(2)),
        &[("X-Replikit-Min-Position", &far), ("X-Replikit-Max-Wait-Ms", "999999")],
        None,
    );
    assert_eq!(code(&r), "lagging");
}

#[test]
fn visible_durability_means_readable_on_a_standby_when_acknowledged() {
    let c = fresh_collection("dur");
    let url = format!("{}/v1/c/{c}", primary());
    for (i, level) in ["local", "quorum", "visible"].iter().enumerate() {
        let body = json!({ "id": format!("d{i}"), "data": {} }).to_string();
        let r = req("POST", &url, &[("X-Replikit-Durability", level)], Some(&body));
        assert_eq!(r.status, 201, "{level}");
    }
    let on_some_replica = (1..=2).any(|i| get(&format!("{}/v1/c/{c}/d2", replica(i))).status == 200);
    assert!(on_some_replica, "a `visible` write is readable on a standby when acknowledged");
    let bad = req("POST", &url, &[("X-Replikit-Durability", "eventually")], Some(r#"{"data":{}}"#));
    assert_eq!(bad.status, 400);
}

#[test]
fn every_bad_input_is_rejected_with_a_stable_code() {
    let c = fresh_collection("bad");
    let p = primary();
    let long_id = "x".repeat(257);
    let cases: Vec<(&str, String, Option<String>, u16, &str)> = vec![
        ("POST", format!("/v1/c/{c}"), Some("{not json".into()), 400, "bad_request"),
        ("POST", format!("/v1/c/{c}"), Some(r#"{"data":[1,2]}"#.into()), 400, "bad_request"),
        ("POST", format!("/v1/c/{c}"), Some(r#"{"data":"s"}"#.into()), 400, "bad_request"),
        ("POST", format!("/v1/c/{c}"), Some(r#"{"nodata":1}"#.into()), 400, "bad_request"),
        ("POST", format!("/v1/c/{c}"), Some(r#"{"id":"","data":{}}"#.into()), 400, "bad_request"),
        ("POST", format!("/v1/c/{c}"), Some(r#"{"id":7,"data":{}}"#.into()), 400, "bad_request"),
        ("POST", format!("/v1/c/{c}"), Some(format!(r#"{{"id":"{long_id}","data":{{}}}}"#)), 400, "bad_request"),
        ("POST", "/v1/c/bad%20name".into(), Some(r#"{"data":{}}"#.into()), 400, "bad_request"),
        ("POST", format!("/v1/c/{}", "c".repeat(65)), Some(r#"{"data":{}}"#.into()), 400, "bad_request"),
        ("PUT", format!("/v1/c/{c}/.."), Some(r#"{"data":{}}"#.into()), 400, "bad_request"),
        ("PUT", format!("/v1/c/{c}/%2E"), Some(r#"{"data":{}}"#.into()), 400, "bad_request"),
        ("PUT", format!("/v1/c/{c}/{long_id}"), Some(r#"{"data":{}}"#.into()), 400, "bad_request"),
        ("GET", format!("/v1/c/{c}/"), None, 400, "bad_request"),
        ("PATCH", format!("/v1/c/{c}/x"), Some("[1]".into()), 400, "bad_request"),
        ("GET", format!("/v1/c/{c}?limit=0"), None, 400, "bad_request"),
        ("GET", format!("/v1/c/{c}?limit=abc"), None, 400, "bad_request"),
        ("GET", "/v1/nothing".into(), None, 404, "not_found"),
        ("POST", "/v1/health".into(), Some("{}".into()), 405, "method_not_allowed"),
    ];
    for (method, path, body, status, expected) in cases {
        let r = req(method, &format!("{p}{path}"), &[], body.as_deref());
        assert_eq!(
            (r.status, code(&r).as_str()),
            (status, expected),
            "{method} {path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(!r.json()["error"]["message"].as_str().unwrap_or_default().is_empty());
        assert_eq!(r.header("x-replikit-node"), Some("n0"));
        assert!(r.header("x-replikit-position").is_some());
    }
    let headers_cases = [("If-Match", "abc"), ("X-Replikit-Min-Position", "-1"), ("X-Replikit-Max-Wait-Ms", "soon")];
    for (name, value) in headers_cases {
        let mut headers = vec![(name, value)];
        if name == "X-Replikit-Max-Wait-Ms" {
            headers.push(("X-Replikit-Min-Position", "1"));
        }
        let method = if name == "If-Match" { "PUT" } else { "GET" };
        let r = req(method, &format!("{p}/v1/c/{c}/x"), &headers, Some(r#"{"data":{}}"#));
        assert_eq!((r.status, code(&r).as_str()), (400, "bad_request"), "{name}: {value}");
    }
    let big = format!(r#"{{"data":{{"s":"{}"}}}}"#, "a".repeat(1 << 20));
    let r = req("POST", &format!("{p}/v1/c/{c}"), &[], Some(&big));
    assert_eq!((r.status, code(&r).as_str()), (413, "payload_too_large"));
}

#[test]
fn cors_preflight_allows_the_protocol_headers_and_exposes_etag_and_positions() {
    let r = req(
        "OPTIONS",
        &format!("{}/v1/c/x/y", primary()),
        &[
            ("Origin", "http://localhost:5173"),
            ("Access-Control-Request-Method", "PUT"),
            ("Access-Control-Request-Headers", "if-match,idempotency-key"),
        ],
        None,
    );
    assert!(r.status < 300);
    assert!(r.header("access-control-allow-origin").is_some());
    assert!(r.header("access-control-allow-headers").unwrap().contains("idempotency-key"));
    let g = req("GET", &format!("{}/v1/health", primary()), &[("Origin", "http://localhost:5173")], None);
    let exposed = g.header("access-control-expose-headers").unwrap().to_ascii_lowercase();
    for h in ["etag", "x-replikit-node", "x-replikit-position"] {
        assert!(exposed.contains(h), "{h} in {exposed}");
    }
}
