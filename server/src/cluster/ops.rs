//! Operator actions on the dev cluster: kill, start, promote, rejoin, hang, unhang, status.
//!
//! Each action holds the cluster lock for its whole duration, so actions (and the
//! watchdog) never interleave. Promotion follows the measured PostgreSQL 15 recipe:
//! `pg_promote`, `CHECKPOINT` (so the new timeline is visible everywhere), then re-point the
//! other standbys with `ALTER SYSTEM SET primary_conninfo` + `pg_reload_conf()`, no restart.

use std::time::Duration;

use serde_json::{json, Value};
use tokio_postgres::{Client, NoTls};

use super::error::ClusterError;
use super::pg::PgNode;
use super::{Cluster, Inner};

/// Connect to a node directly (as the postgres superuser), with a 2 s limit.
pub async fn connect(node: &PgNode) -> Result<Client, ClusterError> {
    let conninfo = format!("{} connect_timeout=2 application_name=replikit-supervisor", node.conninfo());
    let (client, connection) = tokio::time::timeout(Duration::from_secs(2), tokio_postgres::connect(&conninfo, NoTls))
        .await
        .map_err(|_| ClusterError::Database(format!("{}: connect timed out", node.id)))??;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Column `idx` of `row`: an error, never a panic as `Row::get` would, when it does not decode.
pub fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    idx: usize,
) -> Result<T, ClusterError> {
    row.try_get(idx).map_err(|e| ClusterError::Database(format!("decoding column {idx}: {e}")))
}

/// Wait (up to 30 s) until `count` standbys stream from the primary behind `client`.
pub async fn wait_streaming(client: &Client, count: usize) -> Result<(), ClusterError> {
    for _ in 0..300 {
        let row = client.query_one("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'", &[]).await?;
        if column::<i64>(&row, 0)? as usize >= count {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(ClusterError::InvalidState(format!("{count} standbys did not start streaming within 30 s")))
}

impl Cluster {
    /// `kill`: stop the gateway (listener and connections) and `pg_ctl stop -m immediate`.
    pub async fn kill(&self, id: &str) -> Result<Value, ClusterError> {
        let mut inner = self.inner.lock().await;
        let node = inner.node_mut(id)?;
        if let Some(g) = node.gateway.take() {
            g.stop();
        }
        if node.pg_running || node.pg.is_running(&self.tools).await {
            node.pg.stop(&self.tools, "immediate").await?;
        }
        node.pg_running = false;
        Ok(json!({ "nodeId": id, "killed": true }))
    }

    /// `start`: bring a killed node back as it was. A former primary that is no longer the
    /// supervisor's primary comes back claiming primary on its old term (split brain); it is
    /// started with `synchronous_standby_names` empty, since no standby follows it. A standby
    /// is re-pointed to the current primary (a promotion may have happened meanwhile).
    pub async fn start(&self, id: &str) -> Result<Value, ClusterError> {
        let mut inner = self.inner.lock().await;
        let is_primary = inner.primary == id;
        let current_primary = inner.node(&inner.primary)?.pg.clone();
        let node = inner.node_mut(id)?;
        if node.pg_running && node.gateway.is_some() {
            return Err(ClusterError::InvalidState(format!("{id} is already running")));
        }
        let stale_primary = !is_primary && !node.pg.has_standby_signal();
        if !node.pg.is_running(&self.tools).await {
            let extra = if stale_primary { "-c synchronous_standby_names=''" } else { "" };
            node.pg.start(&self.tools, extra).await?;
        }
        node.pg_running = true;
        if node.pg.has_standby_signal() && !is_primary {
            // A promotion may have happened while it was down: follow the current primary.
            if let Err(e) = repoint(&node.pg, &current_primary).await {
                crate::log!("could not re-point {id}: {e}");
            }
        }
        node.start_gateway(&self.gateway_access).await?;
        if stale_primary {
            crate::log!("{id} started as a stale primary on its old term (split brain)");
        }
        Ok(json!({ "nodeId": id, "started": true, "stalePrimary": stale_primary }))
    }

    /// `promote`: promote a standby, checkpoint it, re-point the other standbys to it.
    pub async fn promote(&self, id: &str) -> Result<Value, ClusterError> {
        let mut inner = self.inner.lock().await;
        self.promote_locked(&mut inner, id).await
    }

    pub(super) async fn promote_locked(&self, inner: &mut Inner, id: &str) -> Result<Value, ClusterError> {
        let started = std::time::Instant::now();
        let target = inner.node(id)?;
        if !target.pg_running {
            return Err(ClusterError::InvalidState(format!("{id} is not running")));
        }
        let new_primary = target.pg.clone();
        let client = connect(&new_primary).await?;
        let in_recovery: bool = column(&client.query_one("SELECT pg_is_in_recovery()", &[]).await?, 0)?;
        if !in_recovery {
            return Err(ClusterError::InvalidState(format!("{id} is already a primary")));
        }
        // Async until the watchdog sees standbys streaming from the new primary.
        client.batch_execute("ALTER SYSTEM SET synchronous_standby_names = ''").await?;
        client.batch_execute("SELECT pg_reload_conf()").await?;
        let promoted: bool = column(&client.query_one("SELECT pg_promote(true, 60)", &[]).await?, 0)?;
        if !promoted {
            return Err(ClusterError::InvalidState(format!("{id} did not finish promotion within 60 s")));
        }
        client.batch_execute("CHECKPOINT").await?;
        inner.primary = id.to_string();
        let mut repointed = Vec::new();
        for node in inner.nodes.iter().filter(|n| n.pg.id != id && n.pg_running) {
            match repoint(&node.pg, &new_primary).await {
                Ok(true) => repointed.push(node.pg.id.clone()),
                Ok(false) => {}
                Err(e) => crate::log!("could not re-point {}: {e}", node.pg.id),
            }
        }
        crate::log!("promoted {id}; re-pointed {repointed:?}");
        Ok(
            json!({ "nodeId": id, "promoted": true, "repointed": repointed, "tookMs": started.elapsed().as_millis() as u64 }),
        )
    }

    /// `rejoin`: rewind a node (typically a former primary) onto the current primary with
    /// pg_rewind and start it as its standby.
    pub async fn rejoin(&self, id: &str) -> Result<Value, ClusterError> {
        let mut inner = self.inner.lock().await;
        if inner.primary == id {
            return Err(ClusterError::InvalidState(format!("{id} is the current primary")));
        }
        let source = inner.node(&inner.primary)?.pg.clone();
        let node = inner.node_mut(id)?;
        node.gateway.take();
        if node.pg.is_running(&self.tools).await {
            node.pg.stop(&self.tools, "fast").await?;
        }
        node.pg_running = false;
        connect(&source).await?.batch_execute("CHECKPOINT").await?;
        node.pg.rewind(&self.tools, &source).await?;
        // pg_rewind copied the source's config, synchronous_standby_names included; it has no
        // effect on a standby, and a later promotion resets it.
        node.pg.start(&self.tools, "").await?;
        node.pg_running = true;
        node.start_gateway(&self.gateway_access).await?;
        Ok(json!({ "nodeId": id, "rejoined": true, "primary": source.id }))
    }

    /// `hang` / `unhang`: the gateway accepts requests and never answers, or answers again.
    pub async fn set_hung(&self, id: &str, hung: bool) -> Result<Value, ClusterError> {
        let mut inner = self.inner.lock().await;
        let node = inner.node_mut(id)?;
        let gateway =
            node.gateway.as_ref().ok_or_else(|| ClusterError::InvalidState(format!("{id}'s gateway is down")))?;
        gateway.set_hung(hung);
        Ok(json!({ "nodeId": id, "hung": hung }))
    }

    /// `status`: every node's gateway state, PostgreSQL state, role, term and position.
    pub async fn status(&self) -> Value {
        let inner = self.inner.lock().await;
        let mut nodes = Vec::new();
        for node in &inner.nodes {
            let health = match connect(&node.pg).await {
                Ok(client) => crate::db::deadline(Duration::from_secs(1), crate::db::node_status(&client)).await.ok(),
                Err(_) => None,
            };
            let gateway = match &node.gateway {
                None => "down",
                Some(g) if g.is_hung() => "hung",
                Some(_) => "up",
            };
            nodes.push(json!({
                "nodeId": node.pg.id,
                "url": node.url(),
                "pgPort": node.pg.port,
                "gateway": gateway,
                "postgres": if node.pg_running { "running" } else { "stopped" },
                "role": health.as_ref().map(|h| h.role),
                "term": health.as_ref().map(|h| h.term),
                "position": health.as_ref().map(|h| h.position),
                "lagMs": health.as_ref().and_then(|h| h.lag_ms),
            }));
        }
        json!({
            "primary": inner.primary,
            "replication": self.replication,
            "autoFailover": self.auto_failover.load(std::sync::atomic::Ordering::Relaxed),
            "nodes": nodes,
        })
    }
}

/// Point a running standby at `primary` without a restart. Returns false if `node` is not
/// in recovery (e.g. a stale primary), which is left alone.
async fn repoint(node: &PgNode, primary: &PgNode) -> Result<bool, ClusterError> {
    let client = connect(node).await?;
    let sql = "SELECT pg_is_in_recovery(), current_setting('primary_conninfo')";
    let row = client.query_one(sql, &[]).await?;
    let (in_recovery, current): (bool, String) = (column(&row, 0)?, column(&row, 1)?);
    if !in_recovery {
        return Ok(false);
    }
    let wanted_port = format!("port={}", primary.port);
    if current.split_whitespace().any(|kv| kv.trim_matches('\'') == wanted_port) {
        // Already following it: changing primary_conninfo would restart the WAL receiver.
        return Ok(true);
    }
    // Our own conninfo (host, port, user, the pgpass file: no password): no client text.
    // ALTER SYSTEM takes no parameters.
    let conninfo = primary.libpq_conninfo().replace('\'', "''");
    client.batch_execute(&format!("ALTER SYSTEM SET primary_conninfo = '{conninfo}'")).await?;
    client.batch_execute("SELECT pg_reload_conf()").await?;
    Ok(true)
}
