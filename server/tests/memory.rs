//! A gateway's memory stays bounded under large requests and large collections (issue 13,
//! point 6): concurrent 1 MiB bodies wait for a shared body budget instead of all being
//! parsed at once, and a list page stops at a byte cap so a collection of large documents
//! can be paged through by a client with a 16 MiB response limit.

mod common;

use std::thread;
use std::time::Duration;

use common::*;

/// A status line of `/proc/<pid>/status` in KiB (`VmHWM`: the peak resident set).
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("{field} in /proc status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `{"data":{"a":[1,1,...]}}` of about `bytes`: many small values, the shape that costs a parser most.
fn numbers_body(bytes: usize) -> String {
    let mut body = String::with_capacity(bytes + 32);
    body.push_str(r#"{"data":{"a":["#);
    while body.len() < bytes - 8 {
        body.push_str("1,");
    }
    body.push_str("1]}}");
    body
}

#[test]
fn sixteen_concurrent_one_mib_bodies_leave_the_gateway_bounded() {
    let cluster = DevCluster::start(&["--replicas", "1", "--replication", "async"]);
    let n0 = cluster.url(0);
    let c = fresh_collection("mem");
    let body = numbers_body((1 << 20) - 64);
    assert_eq!(req("PUT", &format!("{n0}/v1/c/{c}/warm"), &[], Some(r#"{"data":{}}"#)).status, 201);
    let before = proc_kib(cluster.pid(), "VmHWM:");
    let writers: Vec<_> = (0..16)
        .map(|i| {
            let (url, body) = (format!("{n0}/v1/c/{c}/big{i}"), body.clone());
            thread::spawn(move || try_req("PUT", &url, &[], Some(&body), Duration::from_secs(60)).map(|r| r.status))
        })
        .collect();
    let statuses: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let grown_mib = (proc_kib(cluster.pid(), "VmHWM:").saturating_sub(before)) / 1024;
    eprintln!("peak RSS grew by {grown_mib} MiB; statuses {statuses:?}");
    for s in &statuses {
        assert!(matches!(s, Ok(201) | Ok(503)), "every write is applied or refused for a retry: {statuses:?}");
    }
    assert!(statuses.iter().filter(|s| matches!(s, Ok(201))).count() >= 1);
    assert!(grown_mib < 150, "the gateway's peak grew by {grown_mib} MiB for 16 x 1 MiB bodies");
}

#[test]
fn a_collection_of_24_documents_of_900_kb_is_listed_in_pages_under_the_clients_limit() {
    let cluster = DevCluster::start(&["--replicas", "1", "--replication", "async"]);
    let n0 = cluster.url(0);
    let c = fresh_collection("big");
    let body = format!(r#"{{"data":{{"s":"{}"}}}}"#, "x".repeat(900_000));
    for i in 0..24 {
        let r = req("PUT", &format!("{n0}/v1/c/{c}/d{i:02}"), &[], Some(&body));
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
    let (mut seen, mut after, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let url = match &after {
            Some(a) => format!("{n0}/v1/c/{c}?limit=1000&after={a}"),
            None => format!("{n0}/v1/c/{c}?limit=1000"),
        };
        let r = get(&url);
        assert_eq!(r.status, 200);
        assert!(r.body.len() < 16 << 20, "a page of {} bytes is over the SDK's limit", r.body.len());
        pages += 1;
        let page = r.json();
        let items = page["items"].as_array().unwrap();
        assert!(!items.is_empty(), "every page holds at least one document");
        seen.extend(items.iter().map(|d| d["id"].as_str().unwrap().to_string()));
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..24).map(|i| format!("d{i:02}")).collect();
    assert_eq!(seen, expected, "every document once, in id order");
    assert!(pages >= 3, "{pages} pages");
    // A small page that ends exactly at its limit still says whether more follow.
    let page = get(&format!("{n0}/v1/c/{c}?limit=2")).json();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["next"], "d01");
    let last = get(&format!("{n0}/v1/c/{c}?limit=5&after=d22")).json();
    assert_eq!((last["items"].as_array().unwrap().len(), &last["next"]), (1, &serde_json::Value::Null));
}
