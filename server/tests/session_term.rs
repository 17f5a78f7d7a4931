//! Read-your-writes across a failover that loses an async tail (issue 13, point 11): a
//! session names its last write as (term, position), and a node of a later term checks its
//! timeline history before it serves the session. On a real cluster: the standby's WAL
//! receiver is stopped (SIGSTOP) so that the primary's last write never reaches it, the
//! primary is killed, the receiver too (SIGKILL: what the kernel had buffered for it is gone,
//! and the standby restarts from its own WAL), and the standby is promoted.

mod common;

use std::time::Duration;

use common::*;
use replikit_server::client::HttpResponse;

fn mark(r: &HttpResponse) -> (String, String) {
    let term = r.header("x-replikit-term").expect("X-Replikit-Term on a write").to_string();
    (term, position(r).to_string())
}

fn read(url: &str, (term, pos): &(String, String)) -> HttpResponse {
    let headers = [("X-Replikit-Min-Term", term.as_str()), ("X-Replikit-Min-Position", pos.as_str())];
    req("GET", url, &headers, None)
}

#[test]
fn a_write_lost_in_a_failover_is_reported_to_its_session_and_a_kept_one_is_served() {
    let cluster = DevCluster::start(&["--replicas", "1", "--replication", "async"]);
    let (n0, n1) = (cluster.url(0), cluster.url(1));
    let c = fresh_collection("session");

    let kept = req("PUT", &format!("{n0}/v1/c/{c}/kept"), &[], Some(r#"{"data":{"v":1}}"#));
    assert_eq!(kept.status, 201);
    let kept = mark(&kept);
    assert_eq!(kept.0, "1");
    // n1 has it before its receiver stops.
    let replayed = read(&format!("{n1}/v1/c/{c}/kept"), &kept);
    assert_eq!(replayed.status, 200, "{}", String::from_utf8_lossy(&replayed.body));

    let stopped = StoppedReceiver::stop(&cluster, 1, libc::SIGKILL);
    let lost = req("PUT", &format!("{n0}/v1/c/{c}/lost"), &[], Some(r#"{"data":{"v":2}}"#));
    assert_eq!(lost.status, 201);
    let lost = mark(&lost);
    assert!(lost.1.parse::<u64>().unwrap() > kept.1.parse::<u64>().unwrap());

    cluster.admin("kill", "n0");
    drop(stopped);
    promote_once_recovered(&cluster, 1);
    let promoted = eventually(Duration::from_secs(10), || {
        let r = req("PUT", &format!("{n1}/v1/c/{c}/after"), &[], Some(r#"{"data":{}}"#));
        (r.status == 201).then_some(r)
    })
    .expect("n1 takes writes after its promotion");
    assert_eq!(promoted.header("x-replikit-term"), Some("2"));
    // Fill the new timeline past the lost write's position: a bare LSN can no longer tell.
    for i in 0..200 {
        let r = req("PUT", &format!("{n1}/v1/c/{c}/fill{i}"), &[], Some(r#"{"data":{"pad":"xxxxxxxxxxxxxxxx"}}"#));
        assert!(r.status < 300);
        if position(&r) > lost.1.parse::<u64>().unwrap() {
            break;
        }
    }
    assert!(position(&get(&format!("{n1}/v1/c/{c}/kept"))) > lost.1.parse().unwrap(), "n1 went past the lost tail");

    // The old protocol, a bare position: the read is served, without the session's write.
    let bare = req("GET", &format!("{n1}/v1/c/{c}/lost"), &[("X-Replikit-Min-Position", &lost.1)], None);
    assert_eq!(bare.status, 404, "what a bare LSN cannot see");

    // With the term: the lost write is named, and no data is served.
    let r = read(&format!("{n1}/v1/c/{c}/lost"), &lost);
    assert_eq!((r.status, code(&r)), (409, "session_lost".to_string()), "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["lost"]["term"], 1);
    assert_eq!(r.json()["lost"]["position"].to_string(), lost.1);
    let r = read(&format!("{n1}/v1/c/{c}?limit=5"), &lost);
    assert_eq!(code(&r), "session_lost", "lists check the session too");

    // A write made before the lost tail is in the new history: served.
    let r = read(&format!("{n1}/v1/c/{c}/kept"), &kept);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    // A write carrying the lost session is applied, and says so.
    let headers = [("X-Replikit-Min-Term", lost.0.as_str()), ("X-Replikit-Min-Position", lost.1.as_str())];
    let w = req("PUT", &format!("{n1}/v1/c/{c}/w1"), &headers, Some(r#"{"data":{}}"#));
    assert_eq!(w.status, 201);
    assert_eq!(w.header("x-replikit-session-lost"), Some(format!("1/{}", lost.1).as_str()));
    let headers = [("X-Replikit-Min-Term", kept.0.as_str()), ("X-Replikit-Min-Position", kept.1.as_str())];
    let w = req("PUT", &format!("{n1}/v1/c/{c}/w2"), &headers, Some(r#"{"data":{}}"#));
    assert_eq!((w.status, w.header("x-replikit-session-lost")), (201, None), "a kept session is not alarmed");

    // A session of a later term than the node is never served by it (a stale node).
    let ahead = ("3".to_string(), "1".to_string());
    assert_eq!(code(&read(&format!("{n1}/v1/c/{c}/kept"), &ahead)), "position_unreachable");
}
