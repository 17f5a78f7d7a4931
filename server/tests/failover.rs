//! Destructive scenarios, each on a fresh dev cluster: kill, promote, split brain, rejoin,
//! automatic failover, hung and killed gateways, and the `ctl` CLI. They run one at a time
//! (2-core CI machines; the promote timing is the one wall-clock assertion).

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn health(url: &str) -> serde_json::Value {
    get(&format!("{url}/v1/health")).json()
}

#[test]
fn primary_killed_then_standby_promoted_is_writable_within_two_seconds() {
    let _serial = serial();
    let cluster = DevCluster::start(&[]);
    let (n0, n1, n2) = (cluster.url(0), cluster.url(1), cluster.url(2));
    let w = req("PUT", &format!("{n0}/v1/c/t/before"), &[("Idempotency-Key", "once")], Some(r#"{"data":{"k":1}}"#));
    assert_eq!(w.status, 201);
    assert_eq!(health(&n1)["term"], 1);

    cluster.admin("kill", "n0");
    assert!(
        try_req("GET", &format!("{n0}/v1/health"), &[], None, Duration::from_secs(2)).is_err(),
        "killed gateway refuses"
    );

    let started = Instant::now();
    cluster.admin("promote", "n1");
    let written = eventually(Duration::from_secs(2), || {
        let r =
            try_req("PUT", &format!("{n1}/v1/c/t/after"), &[], Some(r#"{"data":{}}"#), Duration::from_secs(2)).ok()?;
        (r.status == 201).then_some(r)
    });
    let took = started.elapsed();
    let written = written.unwrap_or_else(|| panic!("n1 not writable {took:?} after promote"));
    assert!(took <= Duration::from_secs(2), "writable after {took:?}");

    let h1 = health(&n1);
    assert_eq!((h1["role"].as_str(), h1["term"].as_i64()), (Some("primary"), Some(2)));
    assert!(h1["position"].as_u64().unwrap() >= position(&w));
    // The acknowledged (synchronous) write before the failover survived it, and a client
    // retrying it on the new primary gets the first answer instead of a second write.
    assert_eq!(get(&format!("{n1}/v1/c/t/before")).status, 200);
    let retry = req("PUT", &format!("{n1}/v1/c/t/before"), &[("Idempotency-Key", "once")], Some(r#"{"data":{"k":1}}"#));
    assert_eq!((retry.status, retry.header("idempotent-replayed")), (201, Some("true")));
    assert_eq!(retry.json(), w.json());
    assert_eq!(get(&format!("{n1}/v1/c/t/before")).json()["version"], w.json()["version"], "applied once");
    // n2 follows the new primary without a restart.
    let pos = position(&written).to_string();
    let r = req(
        "GET",
        &format!("{n2}/v1/c/t/after"),
        &[("X-Replikit-Min-Position", &pos), ("X-Replikit-Max-Wait-Ms", "2000")],
        None,
    );
    assert_eq!(r.status, 200, "n2 replays the new primary's writes");
    assert_eq!(health(&n2)["term"], 2);
    assert_eq!(health(&n2)["role"], "replica");
}

#[test]
fn old_primary_started_after_promotion_claims_its_old_term_until_rejoined() {
    let _serial = serial();
    let cluster = DevCluster::start(&[]);
    let (n0, n1) = (cluster.url(0), cluster.url(1));
    cluster.admin("kill", "n0");
    cluster.admin("promote", "n1");
    assert_eq!(req("PUT", &format!("{n1}/v1/c/t/new"), &[], Some(r#"{"data":{}}"#)).status, 201);

    // Split brain: the old primary comes back claiming primary on term 1.
    cluster.admin("start", "n0");
    let h0 = health(&n0);
    assert_eq!((h0["role"].as_str(), h0["term"].as_i64()), (Some("primary"), Some(1)));
    assert_eq!(health(&n1)["term"], 2);
    let rogue = req("PUT", &format!("{n0}/v1/c/t/rogue"), &[], Some(r#"{"data":{}}"#));
    assert_eq!(rogue.status, 201, "a stale primary still accepts writes: clients must check terms");

    // Rejoin: pg_rewind discards the rogue write and n0 follows n1 on term 2.
    cluster.admin("rejoin", "n0");
    let h0 = health(&n0);
    assert_eq!((h0["role"].as_str(), h0["term"].as_i64()), (Some("replica"), Some(2)));
    let pos = position(&req("PUT", &format!("{n1}/v1/c/t/later"), &[], Some(r#"{"data":{}}"#))).to_string();
    let r = req(
        "GET",
        &format!("{n0}/v1/c/t/later"),
        &[("X-Replikit-Min-Position", &pos), ("X-Replikit-Max-Wait-Ms", "2000")],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(get(&format!("{n0}/v1/c/t/rogue")).status, 404, "rewound away");
    assert_eq!(req("PUT", &format!("{n0}/v1/c/t/x"), &[], Some(r#"{"data":{}}"#)).status, 421);
}

#[test]
fn auto_failover_promotes_the_most_advanced_standby_after_three_seconds() {
    let _serial = serial();
    let cluster = DevCluster::start(&["--auto-failover"]);
    assert_eq!(req("PUT", &format!("{}/v1/c/t/a", cluster.url(0)), &[], Some(r#"{"data":{}}"#)).status, 201);
    cluster.admin("kill", "n0");
    let killed = Instant::now();
    let new_primary = eventually(Duration::from_secs(15), || {
        (1..=2).find(|&i| {
            try_req("GET", &format!("{}/v1/health", cluster.url(i)), &[], None, Duration::from_secs(1))
                .is_ok_and(|r| r.json()["role"] == "primary")
        })
    })
    .expect("a standby was promoted");
    assert!(killed.elapsed() >= Duration::from_millis(2500), "not before the 3 s grace: {:?}", killed.elapsed());
    let url = cluster.url(new_primary);
    assert_eq!(health(&url)["term"], 2);
    assert_eq!(get(&format!("{url}/v1/c/t/a")).status, 200);
    let status = cluster.admin("status", "");
    assert_eq!(status["primary"], format!("n{new_primary}"));
}

#[test]
fn hung_gateway_accepts_but_never_answers_until_unhung() {
    let _serial = serial();
    let cluster = DevCluster::start(&["--replicas", "1"]);
    let n1 = cluster.url(1);
    cluster.admin("hang", "n1");
    let err = try_req("GET", &format!("{n1}/v1/health"), &[], None, Duration::from_millis(700)).unwrap_err();
    assert!(matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{err:?}");
    assert_eq!(cluster.admin("status", "")["nodes"][1]["gateway"], "hung");
    cluster.admin("unhang", "n1");
    assert_eq!(get(&format!("{n1}/v1/health")).status, 200);
}

#[test]
fn ctl_subcommands_drive_the_cluster_through_the_state_file() {
    let _serial = serial();
    let cluster = DevCluster::start(&["--replicas", "1", "--replication", "async"]);
    let ctl = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .arg("ctl")
            .arg("--state-file")
            .arg(&cluster.state_file)
            .args(args)
            .output()
            .expect("run ctl");
        (out.status.success(), serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or(json!(null)))
    };
    let (ok, status) = ctl(&["status"]);
    assert!(ok);
    assert_eq!(status["replication"], "async");
    assert_eq!(status["nodes"][0]["role"], "primary");
    assert!(ctl(&["kill", "n1"]).0);
    assert_eq!(ctl(&["status"]).1["nodes"][1]["gateway"], "down");
    assert!(ctl(&["start", "n1"]).0);
    assert_eq!(health(&cluster.url(1))["role"], "replica");
    assert!(ctl(&["auto-failover", "on"]).0);
    assert_eq!(ctl(&["status"]).1["autoFailover"], true);
    let (ok, err) = ctl(&["promote", "n9"]);
    assert!(!ok);
    assert_eq!(err["error"]["code"], "unknown_node");
}

#[test]
fn standby_down_during_a_promotion_follows_the_new_primary_when_started() {
    let _serial = serial();
    let cluster = DevCluster::start(&[]);
    let (n1, n2) = (cluster.url(1), cluster.url(2));
    cluster.admin("kill", "n2");
    cluster.admin("kill", "n0");
    cluster.admin("promote", "n1");
    cluster.admin("start", "n2");
    let pos = position(&req("PUT", &format!("{n1}/v1/c/t/x"), &[], Some(r#"{"data":{}}"#))).to_string();
    let r = req(
        "GET",
        &format!("{n2}/v1/c/t/x"),
        &[("X-Replikit-Min-Position", &pos), ("X-Replikit-Max-Wait-Ms", "2000")],
        None,
    );
    assert_eq!(r.status, 200, "n2 streams from n1 after its restart");
    assert_eq!(health(&n2)["term"], 2);
}

#[test]
fn last_standby_killed_primary_falls_back_to_async_and_keeps_accepting_writes() {
    let _serial = serial();
    let cluster = DevCluster::start(&["--replicas", "1"]);
    let n0 = cluster.url(0);
    assert_eq!(req("PUT", &format!("{n0}/v1/c/t/a"), &[], Some(r#"{"data":{}}"#)).status, 201);
    cluster.admin("kill", "n1");
    // The watchdog runs every 500 ms; without the fallback the write below would wait for
    // the 5 s statement timeout.
    let started = Instant::now();
    let r = req("PUT", &format!("{n0}/v1/c/t/b"), &[], Some(r#"{"data":{}}"#));
    assert_eq!(r.status, 201);
    assert!(started.elapsed() < Duration::from_secs(3), "write waited {:?} for a dead standby", started.elapsed());
    // Back to synchronous once the standby streams again.
    cluster.admin("start", "n1");
    let pos = position(&req(
        "PUT",
        &format!("{n0}/v1/c/t/c"),
        &[("X-Replikit-Durability", "visible")],
        Some(r#"{"data":{}}"#),
    ));
    let r = req(
        "GET",
        &format!("{}/v1/c/t/c", cluster.url(1)),
        &[("X-Replikit-Min-Position", &pos.to_string()), ("X-Replikit-Max-Wait-Ms", "2000")],
        None,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}
