//! Versions never repeat (issue 13, point 3; docs/PROTOCOL.md, "Versions"): a (collection, id)
//! never shows one version for two contents, through a delete and recreate, and through a
//! failover that loses an async tail, where a promoted node re-issues the sequence values the
//! lost tail used (the term in the version keeps them apart).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use serde_json::Value;

const SEQUENCE_BITS: u32 = 40;

fn version(doc: &Value) -> u64 {
    doc["version"].as_u64().unwrap_or_else(|| panic!("a version is a whole JSON number: {doc}"))
}

#[test]
fn a_deleted_and_recreated_document_never_matches_its_old_etag() {
    let cluster = DevCluster::start(&["--replicas", "1", "--replication", "async"]);
    let c = fresh_collection("aba");
    let url = format!("{}/v1/c/{c}/d", cluster.url(0));
    let first = req("PUT", &url, &[], Some(r#"{"data":{"v":"first"}}"#));
    assert_eq!(first.status, 201);
    let old_etag = first.header("etag").unwrap().to_string();
    assert_eq!(req("DELETE", &url, &[], None).status, 204);
    let second = req("PUT", &url, &[], Some(r#"{"data":{"v":"second"}}"#));
    assert_eq!(second.status, 201, "recreated after the delete");
    assert_ne!(second.header("etag").unwrap(), old_etag);
    assert!(version(&second.json()) > version(&first.json()), "versions grow");
    assert!(version(&second.json()) < 1 << 53, "exact in JavaScript");
    assert_eq!(version(&second.json()) >> SEQUENCE_BITS, 1, "the term, 1, in the high bits");

    // The old ETag names the first document, not this one.
    let read = req("GET", &url, &[("If-None-Match", &old_etag)], None);
    assert_eq!(read.status, 200, "no 304 for another document's ETag");
    assert_eq!(read.json()["data"]["v"], "second");
    let write = req("PUT", &url, &[("If-Match", &old_etag)], Some(r#"{"data":{"v":"stale"}}"#));
    assert_eq!((write.status, code(&write).as_str()), (412, "conflict"));
    assert_eq!(write.json()["current"]["data"]["v"], "second", "nothing overwritten");
    let etag = second.header("etag").unwrap();
    assert_eq!(req("GET", &url, &[("If-None-Match", etag)], None).status, 304);
    let replaced = req("PUT", &url, &[("If-Match", etag)], Some(r#"{"data":{"v":"third"}}"#));
    assert_eq!(replaced.status, 200, "a replace is 200, whatever the version");
}

#[test]
fn a_failover_that_loses_an_async_tail_never_reissues_a_lost_version() {
    let cluster = DevCluster::start(&["--replicas", "1", "--replication", "async"]);
    let (n0, n1) = (cluster.url(0), cluster.url(1));
    let c = fresh_collection("tail");
    let kept = req("PUT", &format!("{n0}/v1/c/{c}/d"), &[], Some(r#"{"data":{"n":0}}"#));
    assert_eq!(kept.status, 201);
    let pos = position(&kept).to_string();
    let headers = [("X-Replikit-Min-Position", pos.as_str()), ("X-Replikit-Max-Wait-Ms", "2000")];
    assert_eq!(req("GET", &format!("{n1}/v1/c/{c}/d"), &headers, None).status, 200, "n1 has the kept write");

    // The tail n1 never receives: 64 writes of d (PostgreSQL logs sequences 32 values ahead, so
    // this tail uses values the promoted n1 hands out again).
    let stopped = StoppedReceiver::stop(&cluster, 1, libc::SIGKILL);
    let mut lost = HashSet::new();
    for n in 1..=64 {
        let r = req("PATCH", &format!("{n0}/v1/c/{c}/d"), &[], Some(&format!(r#"{{"n":{n}}}"#)));
        assert_eq!(r.status, 200);
        lost.insert(version(&r.json()));
    }
    cluster.admin("kill", "n0");
    drop(stopped);
    promote_once_recovered(&cluster, 1);

    // The new primary writes d 64 times with other contents.
    let mut new = HashSet::new();
    for n in 1..=64 {
        let body = format!(r#"{{"data":{{"n":{n},"term":2}}}}"#);
        let r = eventually(Duration::from_secs(10), || {
            let r = try_req("PUT", &format!("{n1}/v1/c/{c}/d"), &[], Some(&body), Duration::from_secs(5)).ok()?;
            (r.status < 300).then_some(r)
        })
        .expect("n1 takes writes after its promotion");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        new.insert(version(&r.json()));
    }
    let low = |set: &HashSet<u64>| set.iter().map(|v| v & ((1 << SEQUENCE_BITS) - 1)).collect::<HashSet<u64>>();
    assert!(
        !low(&lost).is_disjoint(&low(&new)),
        "n1 re-issued sequence values of the lost tail (a plain counter would have repeated versions)"
    );
    assert!(lost.is_disjoint(&new), "no version of the lost tail shows up again");
    assert!(new.iter().all(|v| v >> SEQUENCE_BITS == 2), "term 2 in the high bits");

    // A client holding a lost version: no 304, and its If-Match fails.
    let etag = format!("\"{}\"", lost.iter().max().unwrap());
    let url = format!("{n1}/v1/c/{c}/d");
    assert_eq!(req("GET", &url, &[("If-None-Match", &etag)], None).status, 200);
    assert_eq!(req("DELETE", &url, &[("If-Match", &etag)], None).status, 412);
}
