//! Slow and waiting clients cannot take a gateway away from others: half-open connections
//! are closed after the header timeout and shed at the connection cap, a dripped body ends
//! at the body timeout, and min-position waiters hold no database connection. One shared
//! dev cluster: n0 (primary) for the typed error, n1 for the waiter flood, n2 for the slowloris.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use replikit_server::gateway::conn::{BODY_TIMEOUT, HEADER_TIMEOUT, MAX_CONNECTIONS};

fn cluster() -> &'static DevCluster {
    static CLUSTER: OnceLock<DevCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| DevCluster::start(&[]))
}

fn authority(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// `/v1/health` answered 200 within one second.
fn health_within_a_second(url: &str) {
    let started = Instant::now();
    let r = try_req("GET", &format!("{url}/v1/health"), &[], None, Duration::from_secs(1))
        .unwrap_or_else(|e| panic!("health did not answer within 1 s: {e}"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(started.elapsed() < Duration::from_secs(1), "health took {:?}", started.elapsed());
}

/// Whether the server has closed `stream` (EOF or reset), waiting at most `wait` for it.
fn closed_within(mut stream: &TcpStream, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an error response before the close
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if Instant::now() >= deadline {
                    return false;
                }
            }
            Err(_) => return true, // reset
        }
    }
}

/// A POST whose body (100 bytes announced) arrives one byte every 2 s; returns what the
/// server answered (its first line) and when, or `None` if it was still waiting after `limit`.
fn drip_body(addr: &str, limit: Duration) -> Option<(String, Duration)> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    let auth = cluster().bearer();
    let head =
        format!("POST /v1/c/drip HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Length: 100\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while started.elapsed() < limit {
        if stream.write_all(b" ").is_err() {
            break; // closed by the server
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    if started.elapsed() >= limit {
        return None;
    }
    let text = String::from_utf8_lossy(&answer);
    Some((text.lines().next().unwrap_or("(closed without an answer)").to_string(), started.elapsed()))
}

#[test]
fn slowloris_beyond_the_cap_and_a_dripped_body_leave_health_answering_and_are_closed() {
    let url = cluster().url(2);
    let addr = authority(&url);
    health_within_a_second(&url);
    let drip = {
        let addr = addr.clone();
        thread::spawn(move || drip_body(&addr, BODY_TIMEOUT + Duration::from_secs(15)))
    };
    // More half-open connections than the cap: each sends part of a request head, never its end.
    let opened = Instant::now();
    let half_open = MAX_CONNECTIONS + 88;
    let sockets: Vec<TcpStream> = (0..half_open)
        .map(|i| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(format!("GET /v1/health HTTP/1.1\r\nHost: {addr}\r\nX-Slow-{i}: 1").as_bytes()).unwrap();
            s
        })
        .collect();
    // Health keeps answering while they are open (its connection sheds the oldest half-open one).
    for _ in 0..5 {
        health_within_a_second(&url);
        thread::sleep(Duration::from_millis(300));
    }
    // Every half-open connection is closed after the header timeout (generous margin on 2 cores).
    let limit = HEADER_TIMEOUT + Duration::from_secs(10);
    let still_open = sockets.iter().filter(|s| !closed_within(s, limit.saturating_sub(opened.elapsed()))).count();
    assert_eq!(still_open, 0, "{still_open} of {half_open} half-open connections still open after {limit:?}");
    health_within_a_second(&url);
    // The dripped body was cut at the body timeout, not waited on forever.
    let answered = drip.join().unwrap();
    let (line, after) = answered.expect("a body dripping 1 byte per 2 s was still being waited on after 45 s");
    assert!(line.is_empty() || line.contains("408") || line.starts_with('('), "{line}");
    assert!(after >= BODY_TIMEOUT - Duration::from_secs(1), "cut after {after:?}: {line}");
    health_within_a_second(&url);
}

/// One request on a kept-alive connection; the first line of its answer.
fn keep_alive_request(stream: &mut TcpStream, addr: &str) -> String {
    let auth = cluster().bearer();
    stream
        .write_all(format!("GET /v1/health HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\n\r\n").as_bytes())
        .unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("(closed)").to_string()
}

#[test]
fn a_kept_alive_connection_idles_past_the_header_timeout_between_requests() {
    let addr = authority(&cluster().url(0));
    let mut stream = TcpStream::connect(&addr).unwrap();
    assert_eq!(keep_alive_request(&mut stream, &addr), "HTTP/1.1 200 OK");
    // Idle is not a slow head: the connection is reused after longer than the header timeout.
    thread::sleep(HEADER_TIMEOUT + Duration::from_secs(2));
    assert_eq!(keep_alive_request(&mut stream, &addr), "HTTP/1.1 200 OK");
    // A head started and never finished is cut at the header timeout.
    stream.write_all(b"GET /v1/health HTTP/1.1\r\n").unwrap();
    assert!(closed_within(&stream, HEADER_TIMEOUT + Duration::from_secs(5)), "a half-sent second head was kept");
}

#[test]
fn forty_eight_waiters_for_an_unreachable_position_leave_health_and_list_answering_on_the_replica() {
    let url = cluster().url(1);
    let doc_url = format!("{url}/v1/c/{}/d", fresh_collection("flood"));
    let far = (position(&get(&format!("{}/v1/health", cluster().url(0)))) + (1 << 40)).to_string();
    let waiters: Vec<_> = (0..48)
        .map(|_| {
            let (doc_url, far) = (doc_url.clone(), far.clone());
            thread::spawn(move || {
                (0..2)
                    .map(|_| {
                        let headers = [("X-Replikit-Min-Position", far.as_str()), ("X-Replikit-Max-Wait-Ms", "2000")];
                        let r = try_req("GET", &doc_url, &headers, None, Duration::from_secs(10)).expect("waiter");
                        (r.status, code(&r))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(500));
    for _ in 0..6 {
        health_within_a_second(&url);
        let list = try_req("GET", &format!("{url}/v1/c/flood?limit=5"), &[], None, Duration::from_secs(2))
            .expect("list during the flood");
        assert_eq!(list.status, 200, "list during the flood: {}", String::from_utf8_lossy(&list.body));
        thread::sleep(Duration::from_millis(400));
    }
    for waiter in waiters {
        for (status, code) in waiter.join().unwrap() {
            assert_eq!((status, code.as_str()), (503, "lagging"));
        }
    }
}

#[test]
fn a_primary_asked_for_a_position_beyond_its_own_answers_position_unreachable_at_once() {
    let url = cluster().url(0);
    let c = fresh_collection("beyond");
    assert_eq!(req("PUT", &format!("{url}/v1/c/{c}/d"), &[], Some(r#"{"data":{}}"#)).status, 201);
    let own = position(&get(&format!("{url}/v1/health")));
    let far = (own + (1 << 40)).to_string();
    for path in [format!("/v1/c/{c}/d"), format!("/v1/c/{c}")] {
        let started = Instant::now();
        let headers = [("X-Replikit-Min-Position", far.as_str()), ("X-Replikit-Max-Wait-Ms", "2000")];
        let r = req("GET", &format!("{url}{path}"), &headers, None);
        let took = started.elapsed();
        assert_eq!((r.status, code(&r).as_str()), (422, "position_unreachable"), "{path}");
        let reported = r.json()["position"].as_u64().expect("position member");
        assert!(reported >= own && reported < own + (1 << 40), "{reported}");
        assert_eq!(position(&r), reported);
        assert!(took < Duration::from_millis(1500), "{path} took {took:?}: not at once");
    }
    // A position the primary has is answered as before.
    let own = own.to_string();
    let headers = [("X-Replikit-Min-Position", own.as_str()), ("X-Replikit-Max-Wait-Ms", "2000")];
    assert_eq!(req("GET", &format!("{url}/v1/c/{c}/d"), &headers, None).status, 200);
}
