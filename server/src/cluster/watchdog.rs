//! The watchdog: keeps `synchronous_standby_names` in line with the live standbys, and, with
//! `--auto-failover`, promotes a standby when the primary stays down.
//!
//! This is a development stand-in for Patroni or pg_auto_failover, not a consensus system:
//! one supervisor decides alone. Rules:
//! - sync replication: every 500 ms, the primary gets `ANY 1 (<streaming standbys>)`; with no
//!   standby left it falls back to async (Patroni without strict mode). A promoted primary starts
//!   async too, until its standbys stream from it. Never silently: whenever a primary is found
//!   running async, once per primary, and when that ends, the log says so.
//! - failover: after the primary fails its health check (`SELECT 1`, 1 s limit) for 3 s, the
//!   running standby with the highest received LSN is promoted and the others re-pointed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::error::ClusterError;
use super::ops::connect;
use super::{Cluster, Replication};

/// How long the primary must fail health checks before an automatic failover.
pub const FAILOVER_AFTER: Duration = Duration::from_secs(3);
/// Watchdog period.
pub const TICK: Duration = Duration::from_millis(500);

/// Set `synchronous_standby_names` on the primary behind `client` to `ANY 1 (<streaming
/// standbys>)`, or to empty (async) when none streams. Returns the value now in force.
pub async fn sync_standbys(client: &Client) -> Result<String, ClusterError> {
    let rows = client
        .query("SELECT DISTINCT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1", &[])
        .await?;
    let names: Vec<String> = rows
        .iter()
        .filter_map(|r| r.try_get::<_, Option<String>>(0).ok().flatten())
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(|n| format!("\"{n}\""))
        .collect();
    let wanted = if names.is_empty() { String::new() } else { format!("ANY 1 ({})", names.join(", ")) };
    let row = client.query_one("SELECT current_setting('synchronous_standby_names')", &[]).await?;
    let current: String = super::ops::column(&row, 0)?;
    if current == wanted {
        return Ok(current);
    }
    // The names are checked identifiers from pg_stat_replication; ALTER SYSTEM takes no parameters.
    client.batch_execute(&format!("ALTER SYSTEM SET synchronous_standby_names = '{wanted}'")).await?;
    client.batch_execute("SELECT pg_reload_conf()").await?;
    // Falling back to async is logged by `note_async`, once per episode.
    if !wanted.is_empty() {
        let was = if current.is_empty() { " (was '': async until now)" } else { "" };
        crate::log!("synchronous_standby_names = '{wanted}'{was}");
    }
    Ok(wanted)
}

/// Say in the log when `primary` is found running async (once per primary and episode: a
/// promoted primary starts async, see `ops::promote_locked`) and when that ends, so a quorum
/// write acknowledged on one node is never a silent downgrade. `async_on` is the primary
/// currently known to run async.
fn note_async(async_on: &mut Option<(String, Instant)>, primary: &str, names: &str) {
    match (names.is_empty(), async_on.as_ref()) {
        (true, Some((id, _))) if id == primary => {}
        (true, _) => {
            crate::log!(
                "warning: no standby streams from primary {primary}: it runs async (synchronous_standby_names \
                 = ''), a quorum or visible write is acknowledged once flushed on {primary} alone"
            );
            *async_on = Some((primary.to_string(), Instant::now()));
        }
        (false, Some((id, since))) => {
            crate::log!("primary {primary} is synchronous again ({id} ran async for {:?})", since.elapsed());
            *async_on = None;
        }
        (false, None) => {}
    }
}

/// Run forever (until the process stops).
pub async fn run(cluster: Arc<Cluster>) {
    let mut failing_since: Option<Instant> = None;
    let mut async_on: Option<(String, Instant)> = None;
    loop {
        tokio::time::sleep(TICK).await;
        let mut inner = cluster.inner.lock().await;
        let primary = match inner.node(&inner.primary) {
            Ok(node) => node.pg.clone(),
            Err(_) => continue,
        };
        let healthy = match connect(&primary).await {
            Ok(client) => {
                let ok = tokio::time::timeout(Duration::from_secs(1), client.query_one("SELECT 1", &[]))
                    .await
                    .is_ok_and(|r| r.is_ok());
                if ok && cluster.replication == Replication::Sync {
                    match sync_standbys(&client).await {
                        Ok(names) => note_async(&mut async_on, &primary.id, &names),
                        Err(e) => crate::log!("sync standby update failed: {e}"),
                    }
                }
                ok
            }
            Err(_) => false,
        };
        if healthy {
            failing_since = None;
            continue;
        }
        let since = *failing_since.get_or_insert_with(Instant::now);
        if !cluster.auto_failover.load(Ordering::Relaxed) || since.elapsed() < FAILOVER_AFTER {
            continue;
        }
        match best_standby(&inner).await {
            Some(candidate) => {
                crate::log!("auto-failover: {} down for {:?}, promoting {candidate}", primary.id, since.elapsed());
                match cluster.promote_locked(&mut inner, &candidate).await {
                    Ok(_) => failing_since = None,
                    Err(e) => crate::log!("auto-failover: promoting {candidate} failed: {e}"),
                }
            }
            None => crate::log!("auto-failover: no standby to promote"),
        }
    }
}

/// The running standby with the highest received (else replayed) LSN.
async fn best_standby(inner: &super::Inner) -> Option<String> {
    let mut best: Option<(i64, String)> = None;
    for node in inner.nodes.iter().filter(|n| n.pg_running && n.pg.id != inner.primary) {
        let Ok(client) = connect(&node.pg).await else {
            continue;
        };
        let sql = "SELECT pg_is_in_recovery(), (COALESCE(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), '0/0') - '0/0'::pg_lsn)::int8";
        let Ok(Ok(row)) = tokio::time::timeout(Duration::from_secs(1), client.query_one(sql, &[])).await else {
            continue;
        };
        let (Ok(in_recovery), Ok(lsn)) = (row.try_get::<_, bool>(0), row.try_get::<_, i64>(1)) else {
            continue;
        };
        if in_recovery && best.as_ref().is_none_or(|(b, _)| lsn > *b) {
            best = Some((lsn, node.pg.id.clone()));
        }
    }
    best.map(|(_, id)| id)
}
