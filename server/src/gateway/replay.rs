//! Waiting for a position without holding a database connection.
//!
//! Why: a read with `X-Replikit-Min-Position` used to hold its pooled connection while it
//! polled, so 40 waiters for a position that never came emptied the pool (16) and health and
//! every other read failed with 503. Now one watcher per gateway polls the replay position
//! every [`POLL_INTERVAL`] with a short-lived checkout, only while someone waits, and
//! publishes it through a `tokio::sync::watch` channel; waiters hold no connection. At most
//! [`MAX_WAITERS`] requests wait at once; beyond that a read is answered `lagging` at once
//! (the client reads elsewhere), so waiters can never crowd out the connection cap either.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use crate::db;
use crate::error::ApiError;

/// How often the watcher reads the replay position while someone waits (as the old per-request poll).
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Concurrent min-position waiters per gateway: half the connection cap
/// ([`super::conn::MAX_CONNECTIONS`]), so the other half stays free for health and ordinary requests.
pub const MAX_WAITERS: usize = 256;

/// The shared replay watcher of one gateway.
pub struct ReplayWatch {
    pool: Pool,
    position: watch::Sender<u64>,
    running: AtomicBool,
    waiters: Semaphore,
}

impl ReplayWatch {
    pub fn new(pool: Pool) -> Arc<Self> {
        Arc::new(ReplayWatch {
            pool,
            position: watch::channel(0).0,
            running: AtomicBool::new(false),
            waiters: Semaphore::new(MAX_WAITERS),
        })
    }

    /// Wait, holding no connection, until the published position is at least `wanted` or
    /// `deadline` passes. `Err(Lagging)` with the last known position when it does not come
    /// in time, or at once when [`MAX_WAITERS`] requests already wait.
    pub async fn wait_for(self: &Arc<Self>, wanted: u64, known: u64, deadline: Instant) -> Result<(), ApiError> {
        let lagging = |position: u64| ApiError::Lagging { wanted, position };
        let Ok(_permit) = self.waiters.try_acquire() else {
            return Err(lagging(known.max(*self.position.borrow())));
        };
        let mut rx = self.position.subscribe();
        self.ensure_running();
        let reached = tokio::time::timeout_at(deadline, async { rx.wait_for(|p| *p >= wanted).await.is_ok() }).await;
        match reached {
            Ok(true) => Ok(()),
            _ => Err(lagging(known.max(*rx.borrow()))),
        }
    }

    /// Start the watcher unless it runs. It stops by itself when nobody is subscribed.
    fn ensure_running(self: &Arc<Self>) {
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                while this.position.receiver_count() > 0 {
                    if let Ok(Ok(p)) = tokio::time::timeout(db::HEALTH_DEADLINE, this.poll_once()).await {
                        this.position.send_replace(p);
                    }
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
                this.running.store(false, Ordering::Release);
                // A waiter may have subscribed after the check and seen `running` still true.
                if this.position.receiver_count() == 0 || this.running.swap(true, Ordering::AcqRel) {
                    return;
                }
            }
        });
    }

    async fn poll_once(&self) -> Result<u64, ApiError> {
        let client = db::client(&self.pool).await?;
        Ok(db::role_and_position(&client).await?.1.lsn)
    }
}
