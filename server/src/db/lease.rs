//! A connection lent to one request, which never goes back to the pool busy; and the WARNINGs each
//! connection received.
//!
//! Why: a request dropped while its statement runs (its deadline expired, or its HTTP client went
//! away) used to hand the connection back to the pool with the statement still running. tokio-postgres
//! queues the next request behind it, so reads and `/v1/health` that took that connection waited
//! too. The worst case is a COMMIT waiting for a synchronous standby: PostgreSQL 15 ends that wait
//! on neither `statement_timeout` (the timer is off during COMMIT) nor a closed client socket (the
//! wait does not read it), only on a cancel or a termination, and it holds the row locks and the
//! connection slot meanwhile. So a [`Lease`] dropped before [`Lease::release`] takes its connection
//! out of the pool, closes it, and cancels whatever its backend runs ([`Lease::discard`]).
//!
//! A cancelled synchronous-commit wait still commits locally and tells the client only with a
//! WARNING ("canceling wait for synchronous replication ... The transaction has already committed
//! locally"), which tokio-postgres hands to the connection task, not to the query. [`Connector`]
//! counts each connection's WARNINGs so that a write can tell that its COMMIT answered with one
//! ([`WarningCount`]): the severity is matched, not the (translated) text.

use std::collections::HashMap;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use deadpool_postgres::{ClientWrapper, Connect, Object, Pool};
use tokio::task::JoinHandle;
use tokio_postgres::error::Severity;
use tokio_postgres::{AsyncMessage, CancelToken, NoTls};

use crate::error::{log, ApiError};

/// WARNING counters of the live connections of this process, by backend pid. Pids are unique on a
/// host at any moment; the gateways of one process may share a host's PostgreSQL servers, never a
/// pid. An entry is removed when its connection ends.
static WARNINGS: Mutex<Option<HashMap<i32, Arc<AtomicU64>>>> = Mutex::new(None);

fn warnings() -> std::sync::MutexGuard<'static, Option<HashMap<i32, Arc<AtomicU64>>>> {
    WARNINGS.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many WARNINGs the connection of one backend has received so far.
#[derive(Clone)]
pub struct WarningCount(Option<Arc<AtomicU64>>);

impl WarningCount {
    /// The counter of the connection whose backend has this pid (`pg_backend_pid()`). A connection
    /// that was not made by [`Connector`] has none: it counts nothing.
    pub fn of_backend(pid: i32) -> WarningCount {
        WarningCount(warnings().as_ref().and_then(|m| m.get(&pid).cloned()))
    }

    pub fn get(&self) -> u64 {
        self.0.as_ref().map_or(0, |c| c.load(Ordering::SeqCst))
    }
}

/// Connects like deadpool's own connector, and runs the connection with a task that counts WARNINGs.
pub struct Connector;

impl Connect for Connector {
    fn connect(
        &self,
        pg_config: &tokio_postgres::Config,
    ) -> Pin<
        Box<dyn Future<Output = Result<(tokio_postgres::Client, JoinHandle<()>), tokio_postgres::Error>> + Send + '_>,
    > {
        let pg_config = pg_config.clone();
        Box::pin(async move {
            let (client, mut connection) = pg_config.connect(NoTls).await?;
            let count = Arc::new(AtomicU64::new(0));
            let counter = count.clone();
            let task = tokio::spawn(async move {
                // Unregisters when the task ends or is aborted (deadpool aborts it with the client).
                let _registered = Unregister(counter.clone());
                // A notice is handed out before the responses that follow it are routed: a WARNING sent
                // during a COMMIT is counted before that COMMIT's caller resumes.
                while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    match message {
                        Ok(AsyncMessage::Notice(n)) if n.parsed_severity() == Some(Severity::Warning) => {
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            log(format_args!("database connection: {e}"));
                            break;
                        }
                    }
                }
            });
            let row = client.query_one("SELECT pg_backend_pid()", &[]).await?;
            let pid: i32 = row.try_get(0)?;
            warnings().get_or_insert_with(HashMap::new).insert(pid, count);
            Ok((client, task))
        })
    }
}

struct Unregister(Arc<AtomicU64>);

impl Drop for Unregister {
    fn drop(&mut self) {
        if let Some(map) = warnings().as_mut() {
            map.retain(|_, c| !Arc::ptr_eq(c, &self.0));
        }
    }
}

/// A pooled connection lent to one request. Call [`Lease::release`] once nothing runs on it any more;
/// dropped before that, it is [discarded](Lease::discard) instead of going back to the pool.
pub struct Lease {
    object: Option<Object>,
    cancel: CancelToken,
}

impl Lease {
    /// Take a connection from the pool (503 `unavailable` when the database is unreachable).
    pub async fn get(pool: &Pool) -> Result<Lease, ApiError> {
        Ok(Lease::from_object(pool.get().await?))
    }

    /// Lend a connection already taken from the pool.
    pub fn from_object(object: Object) -> Lease {
        let cancel = object.cancel_token();
        Lease { object: Some(object), cancel }
    }

    /// Give the connection back to the pool: nothing runs on it.
    pub fn release(mut self) {
        drop(self.object.take());
    }

    /// Take the connection out of the pool and close it, and cancel what its backend runs, so that
    /// the backend ends (a COMMIT waiting for a standby commits locally, then sees the closed socket)
    /// and holds no lock or slot. Resolves once PostgreSQL took the cancel request.
    pub async fn discard(mut self) {
        if let Some(object) = self.object.take() {
            let client: ClientWrapper = Object::take(object);
            drop(client);
            if let Err(e) = self.cancel.cancel_query(NoTls).await {
                log(format_args!("cancelling a discarded connection's query: {e}"));
            }
        }
    }
}

impl Deref for Lease {
    type Target = Object;
    fn deref(&self) -> &Object {
        self.object.as_ref().expect("a lease holds its connection until released")
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut Object {
        self.object.as_mut().expect("a lease holds its connection until released")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(object) = self.object.take() {
            drop(Object::take(object));
            let cancel = self.cancel.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if let Err(e) = cancel.cancel_query(NoTls).await {
                        log(format_args!("cancelling a dropped request's query: {e}"));
                    }
                });
            }
        }
    }
}
