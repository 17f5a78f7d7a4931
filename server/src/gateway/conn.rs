//! The accept loop: timeouts and a connection cap, so that slow or idle clients cannot take
//! the gateway away from others (slowloris).
//!
//! Why these numbers:
//! - [`HEADER_TIMEOUT`] 5 s: a request head is a few hundred bytes; a client that has not sent
//!   one 5 s after connecting (or after the first byte of a later request) is stuck or hostile.
//!   hyper's own `header_read_timeout` works only with a timer (the builder had none) and, in
//!   hyper 1.12, also runs while a keep-alive connection waits for its next request, which
//!   would cut idle connections at 5 s too; so each connection has a small watchdog that
//!   tells the two apart, and hyper's timer is only a backstop.
//! - [`BODY_TIMEOUT`] 30 s, a total deadline for the body (at most 1 MiB): a per-chunk timeout
//!   would let a body dripped a byte at a time last forever.
//! - [`IDLE_TIMEOUT`] 60 s between requests on a keep-alive connection (as nginx's 75 s,
//!   Go's common 60 s). A request that is being answered is never idle, however long it
//!   waits: a min-position read (up to 2 s), or a future change-feed long-poll, which should
//!   stay well below this so that its connection is reused rather than reopened.
//! - [`MAX_CONNECTIONS`] 512 open connections per gateway. At the cap, a new connection
//!   closes the oldest one that has no request in progress (idle or half-open: still sending
//!   its head); only when all are busy is the new one refused. Busy connections are bounded
//!   separately (min-position waiters by [`super::replay::MAX_WAITERS`] = half the cap), so
//!   the rest is a reserve for health and ordinary requests.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

/// Time from connect, or from the first byte of a later request, to its complete head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time to receive a whole request body, once its head is read.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a keep-alive connection may sit between requests.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Open connections per gateway; see the module doc for who is closed at the cap.
pub const MAX_CONNECTIONS: usize = 512;

/// What the accept loop knows about one connection.
struct Activity {
    /// Requests being answered (0 or 1 on HTTP/1.1 without pipelining).
    in_flight: AtomicUsize,
    /// When the last request ended (or the connection opened), in ms since `epoch`.
    last_ms: AtomicU64,
    /// When the first byte of a request head not yet complete arrived, in ms since `epoch`
    /// plus one (0: none). Set by [`Counted`], cleared when the request starts.
    head_ms: AtomicU64,
    epoch: Instant,
}

impl Activity {
    fn new() -> Self {
        // A new connection counts as having started its head: it has HEADER_TIMEOUT to send it.
        Activity {
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            head_ms: AtomicU64::new(1),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Bytes arrived: between requests, they start a head.
    fn received(&self) {
        if !self.busy() && self.head_ms.load(Ordering::Acquire) == 0 {
            self.head_ms.store(self.now_ms() + 1, Ordering::Release);
        }
    }

    /// How long this connection may still wait before it is closed: [`HEADER_TIMEOUT`] from
    /// the first byte of a head (or from connect), [`IDLE_TIMEOUT`] from the end of the last
    /// request; `None` while a request is being answered.
    fn time_left(&self) -> Option<Duration> {
        if self.busy() {
            return None;
        }
        let now = Duration::from_millis(self.now_ms());
        let (since_ms, limit) = match self.head_ms.load(Ordering::Acquire) {
            0 => (self.last_ms.load(Ordering::Acquire), IDLE_TIMEOUT),
            head => (head - 1, HEADER_TIMEOUT),
        };
        Some((Duration::from_millis(since_ms) + limit).saturating_sub(now))
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }
}

/// Marks a request in progress while alive.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.head_ms.store(0, Ordering::Release);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.last_ms.store(a.now_ms(), Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accept loop. Connections live in a `JoinSet` owned by this task, so aborting the task
/// drops (closes) every connection, not only the listener.
pub async fn serve(listener: TcpListener, app: Router) {
    let mut tasks = JoinSet::new();
    // Open connections by age (accept order), to find the oldest one to shed.
    let mut open: BTreeMap<u64, (Arc<Activity>, AbortHandle)> = BTreeMap::new();
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                if open.len() >= MAX_CONNECTIONS && !shed_one(&mut open) {
                    continue; // every connection is busy: refuse this one (dropping it closes it)
                }
                let activity = Arc::new(Activity::new());
                let handle = tasks.spawn(connection(next_id, stream, app.clone(), activity.clone()));
                open.insert(next_id, (activity, handle));
                next_id += 1;
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(id) = done {
                    open.remove(&id);
                }
            }
        }
    }
}

/// Close the oldest connection without a request in progress; false if there is none.
fn shed_one(open: &mut BTreeMap<u64, (Arc<Activity>, AbortHandle)>) -> bool {
    let Some(id) = open.iter().find(|(_, (a, _))| !a.busy()).map(|(id, _)| *id) else {
        return false;
    };
    if let Some((_, handle)) = open.remove(&id) {
        handle.abort();
    }
    true
}

/// Serve one connection until it closes, times out, or idles past [`IDLE_TIMEOUT`].
async fn connection(id: u64, stream: TcpStream, app: Router, activity: Arc<Activity>) -> u64 {
    let _ = stream.set_nodelay(true);
    let inner = hyper_util::service::TowerToHyperService::new(app);
    let tracked = activity.clone();
    let service = hyper::service::service_fn(move |request| {
        let in_flight = InFlight::begin(&tracked);
        let response = inner.call(request);
        async move {
            let response = response.await;
            drop(in_flight);
            response
        }
    });
    // hyper's own header_read_timeout (1.12) also runs while a keep-alive connection waits for
    // its next request, which would make the idle timeout equal the header timeout: the
    // watchdog below keeps the two apart. hyper's stays on, at the longer of the two, as a backstop.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(IDLE_TIMEOUT + HEADER_TIMEOUT);
    let io = Counted { stream, activity: activity.clone() };
    let served = builder.serve_connection(TokioIo::new(io), service);
    tokio::select! {
        _ = served => {}
        _ = expired(&activity) => {}
    }
    id
}

/// Resolves once the connection has waited past its header or idle timeout.
async fn expired(activity: &Activity) {
    loop {
        match activity.time_left() {
            Some(left) if left.is_zero() => return,
            Some(left) => tokio::time::sleep(left.min(WATCH_TICK)).await,
            None => tokio::time::sleep(WATCH_TICK).await,
        }
    }
}

/// How often a connection's watchdog looks at it (so a timeout fires at most this late).
const WATCH_TICK: Duration = Duration::from_millis(500);

/// The TCP stream, telling [`Activity`] when bytes arrive.
struct Counted {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.received();
        }
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
