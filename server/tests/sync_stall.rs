//! A synchronous standby that stalls (issue 13, point 2), on a real cluster: quorum writes whose
//! COMMIT outlives the request deadline answer 503 `outcome_unknown`, their backends are
//! cancelled (none left waiting in `SyncRep`, holding row locks and connection slots), the pool
//! holds no busy connection (reads and health on the primary answer at once), and a retry with the
//! same key is a 2xx only once the standby holds the write. The standby's WAL receiver is stopped
//! with SIGSTOP, and always continued when the test ends.

mod common;

use std::time::{Duration, Instant};

use common::*;
use replikit_server::client::HttpResponse;

fn sync_rep_waiters(pg_port: u16) -> u64 {
    let rows = sql(pg_port, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'");
    rows[0][0].as_deref().unwrap_or("0").parse().unwrap()
}

fn quorum_put(url: &str, key: &str) -> HttpResponse {
    let headers = [("Idempotency-Key", key), ("X-Replikit-Durability", "quorum")];
    try_req("PUT", url, &headers, Some(r#"{"data":{"n":1}}"#), Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("PUT {url}: {e}"))
}

#[test]
fn a_stalled_standby_makes_quorum_writes_outcome_unknown_and_leaves_no_backend_in_syncrep() {
    let cluster = DevCluster::start(&["--replicas", "1"]);
    let n0 = cluster.url(0);
    let pg0 = cluster.info.nodes[0].pg_port;
    let c = fresh_collection("stall");
    // The watchdog makes n1 synchronous once it streams.
    let synchronous = eventually(Duration::from_secs(15), || {
        let names = sql(pg0, "SELECT current_setting('synchronous_standby_names')");
        names[0][0].as_deref().is_some_and(|n| !n.is_empty()).then_some(())
    });
    assert!(synchronous.is_some(), "n1 never became a synchronous standby");
    assert_eq!(quorum_put(&format!("{n0}/v1/c/{c}/warm"), &format!("warm-{c}")).status, 201);

    let stalled = StoppedReceiver::stop(&cluster, 1, libc::SIGCONT);

    // Six quorum writes at once, each past the 7 s deadline.
    let writers: Vec<_> = (0..6)
        .map(|i| {
            let (url, key) = (format!("{n0}/v1/c/{c}/d{i}"), format!("k{i}-{c}"));
            std::thread::spawn(move || quorum_put(&url, &key))
        })
        .collect();
    for (i, w) in writers.into_iter().enumerate() {
        let r = w.join().unwrap();
        assert_eq!(
            (r.status, code(&r).as_str()),
            (503, "outcome_unknown"),
            "d{i}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    // Their backends were cancelled: none waits for the standby any more.
    let cleared = eventually(Duration::from_secs(3), || (sync_rep_waiters(pg0) == 0).then_some(()));
    assert!(cleared.is_some(), "{} backends still wait in SyncRep", sync_rep_waiters(pg0));

    // No connection went back to the pool busy: reads and health on the primary answer at once.
    let started = Instant::now();
    let fast = |path: &str| try_req("GET", &format!("{n0}{path}"), &[], None, Duration::from_secs(2));
    let health = fast("/v1/health").expect("health answers");
    assert_eq!(health.status, 200, "{}", String::from_utf8_lossy(&health.body));
    let doc = fast(&format!("/v1/c/{c}/d0")).expect("a read answers");
    assert_eq!(doc.status, 200, "the write committed on the primary");
    assert_eq!(fast(&format!("/v1/c/{c}")).expect("a list answers").status, 200);
    assert!(started.elapsed() < Duration::from_secs(3), "reads took {:?}", started.elapsed());

    // A retry while the standby is still stalled is not a 2xx: the replay waits for the standby
    // too, and is outcome_unknown again.
    let retry = quorum_put(&format!("{n0}/v1/c/{c}/d0"), &format!("k0-{c}"));
    assert_eq!((retry.status, code(&retry).as_str()), (503, "outcome_unknown"));
    let cleared = eventually(Duration::from_secs(3), || (sync_rep_waiters(pg0) == 0).then_some(()));
    assert!(cleared.is_some(), "the replay's backend still waits in SyncRep");

    // Whoever cancels a waiting COMMIT (an operator's pg_cancel_backend), PostgreSQL commits it
    // locally and says so only with a WARNING: that is outcome_unknown too, at once, never a 2xx.
    let url = format!("{n0}/v1/c/{c}/cancelled");
    let writer = std::thread::spawn(move || {
        let started = Instant::now();
        (quorum_put(&url, "cancelled-key"), started.elapsed())
    });
    let waiting = eventually(Duration::from_secs(5), || {
        let rows = sql(pg0, "SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'");
        rows.first().and_then(|r| r[0].clone())
    })
    .expect("the write waits for the standby");
    sql(pg0, &format!("SELECT pg_cancel_backend({waiting})"));
    let (cancelled, took) = writer.join().unwrap();
    assert_eq!((cancelled.status, code(&cancelled).as_str()), (503, "outcome_unknown"), "a cancelled wait is no 2xx");
    assert!(took < Duration::from_secs(6), "answered when cancelled, not at the deadline: {took:?}");

    // Once the standby streams again, the retry replays the write, applied once.
    drop(stalled);
    let replayed = eventually(Duration::from_secs(20), || {
        let r = quorum_put(&format!("{n0}/v1/c/{c}/d0"), &format!("k0-{c}"));
        (r.status == 201).then_some(r)
    })
    .expect("the retry succeeds once the standby is back");
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(replayed.json()["version"], doc.json()["version"], "applied once");
}
