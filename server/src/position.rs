//! Positions and terms: how a node says how far its data goes.
//!
//! A position is a WAL LSN as a u64 (`lsn - '0/0'`): on a primary the current write
//! position (`pg_current_wal_lsn()`), on a standby the last replayed one
//! (`pg_last_wal_replay_lsn()`). Positions from nodes of one cluster are comparable, which
//! is what lets a client ask a replica "at least p" (read-your-writes). A term is the
//! PostgreSQL timeline id: it grows by one at every promotion, so a node claiming primary on
//! an older term is a stale primary (split brain).

/// Header carrying the node id on every response.
pub const NODE_HEADER: &str = "x-replikit-node";
/// Header carrying the node's position on every response.
pub const POSITION_HEADER: &str = "x-replikit-position";
/// Header carrying the node's term (timeline) on every response that carries a position:
/// the two together name a point in one history.
pub const TERM_HEADER: &str = "x-replikit-term";
/// Request header: the position a replica must have replayed before answering a read.
pub const MIN_POSITION_HEADER: &str = "x-replikit-min-position";
/// Request header: the term of `MIN_POSITION_HEADER` (the session's last write). With it, a
/// node of a later term checks that the position is in its own history (it was not in a tail
/// lost by a failover) before it serves a read; see [`crate::gateway::session`].
pub const MIN_TERM_HEADER: &str = "x-replikit-min-term";
/// Response header on a write that carried a session whose earlier writes a failover lost:
/// `<term>/<position>` of the lost point. The write itself was applied.
pub const SESSION_LOST_HEADER: &str = "x-replikit-session-lost";
/// Request header: how long a replica may wait for `MIN_POSITION_HEADER`, in ms.
pub const MAX_WAIT_HEADER: &str = "x-replikit-max-wait-ms";
/// Request header: per-write durability (`local`, `quorum`, `visible`).
pub const DURABILITY_HEADER: &str = "x-replikit-durability";

/// Default wait for a min-position read, in ms.
pub const DEFAULT_MAX_WAIT_MS: u64 = 200;
/// Upper bound for `X-Replikit-Max-Wait-Ms`; larger values are clamped.
pub const MAX_MAX_WAIT_MS: u64 = 2000;

/// A point in a node's history: its term (timeline id) and position (LSN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub term: u64,
    pub lsn: u64,
}

/// SQL expression for this node's position as int8.
pub const POSITION_SQL: &str = "CASE WHEN pg_is_in_recovery() \
    THEN (COALESCE(pg_last_wal_replay_lsn(), '0/0') - '0/0'::pg_lsn)::int8 \
    ELSE (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8 END";

/// SQL expression for this node's term (timeline id) as int4.
pub const TERM_SQL: &str = "CASE WHEN pg_is_in_recovery() \
    THEN COALESCE((SELECT received_tli FROM pg_stat_wal_receiver), (pg_control_checkpoint()).timeline_id) \
    ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END";

/// SQL expression for replica lag in ms as int8 (NULL on a primary). Zero when everything
/// received is replayed, else the age of the last replayed transaction.
pub const LAG_SQL: &str = "CASE WHEN NOT pg_is_in_recovery() THEN NULL \
    WHEN pg_last_wal_receive_lsn() IS NOT NULL AND pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0::int8 \
    ELSE GREATEST(COALESCE((EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::int8, 0), 0) END";
