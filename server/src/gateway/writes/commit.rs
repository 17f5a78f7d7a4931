//! Ending a write's transaction: when its outcome is known, and when it is not.
//!
//! Why a distinct answer: with a synchronous standby stalled, a quorum write's COMMIT waits. Past the
//! request deadline the gateway cannot say whether the write will count: PostgreSQL has written the
//! commit record, and cancelling the wait (which the gateway does, so that the backend releases its
//! row locks and connection slot, see [`crate::db::Lease`]) makes it visible on the primary without
//! the standbys' acknowledgement. So from the moment COMMIT is sent, a failure is 503
//! `outcome_unknown`, never `unavailable` (which promises nothing was applied) and never a 2xx: a
//! COMMIT that answered with a WARNING (PostgreSQL's "canceling wait for synchronous replication ...
//! already committed locally", whoever cancelled it) did not reach its durability. The client retries
//! with the same `Idempotency-Key`; the retry applies the write once, or replays it, and a replay
//! under `quorum` or `visible` durability is confirmed by a commit of its own ([`confirm_replay`]).

use deadpool_postgres::Transaction;

use super::super::input::Durability;
use crate::db::{self, WarningCount};
use crate::error::{log, ApiError};
use crate::position::TERM_SQL;

/// How far a write got: what a deadline that expires now means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Before COMMIT: nothing was applied (503 `unavailable`).
    #[default]
    Working,
    /// COMMIT was sent: it may be applied (503 `outcome_unknown`).
    Committing,
}

impl Phase {
    /// The answer to a write whose deadline expired in this phase.
    pub fn expired(self) -> ApiError {
        match self {
            Phase::Working => ApiError::Unavailable("the database did not answer in time".into()),
            Phase::Committing => ApiError::OutcomeUnknown(
                "the write's COMMIT did not finish in time (the standbys did not confirm it): it may have been \
                 applied; retry with the same Idempotency-Key"
                    .into(),
            ),
        }
    }
}

/// What the first statement of a write's transaction found out.
pub struct Begun {
    /// The primary's term, the high bits of the versions this transaction writes.
    pub term: i64,
    /// The WARNINGs of this connection, to tell a COMMIT that answered with one.
    pub warnings: WarningCount,
}

/// Check that this node is the primary, and read its term and backend pid, in one statement.
pub async fn begin(tx: &Transaction<'_>) -> Result<Begun, ApiError> {
    let sql = format!("SELECT pg_is_in_recovery(), pg_backend_pid(), ({TERM_SQL})::int8");
    let row = tx.query_one(&sql, &[]).await?;
    if db::column::<bool>(&row, 0)? {
        return Err(ApiError::NotPrimary);
    }
    let term = db::column::<Option<i64>>(&row, 2)?.unwrap_or(0);
    if !(1..=db::MAX_VERSION_TERM).contains(&term) {
        // 8191 promotions: versions would no longer fit in a JavaScript number exactly.
        log(format_args!("term {term} is beyond the range versions can carry (1..={})", db::MAX_VERSION_TERM));
        return Err(ApiError::Internal(format!(
            "this primary's term is beyond what versions can carry (1..={}): see docs/PROTOCOL.md, Versions",
            db::MAX_VERSION_TERM
        )));
    }
    Ok(Begun { term, warnings: WarningCount::of_backend(db::column(&row, 1)?) })
}

/// COMMIT. From here on the outcome is unknown (`phase`) until PostgreSQL answers without a WARNING.
pub async fn commit(tx: Transaction<'_>, warnings: &WarningCount, phase: &mut Phase) -> Result<(), ApiError> {
    *phase = Phase::Committing;
    let before = warnings.get();
    match tx.commit().await {
        Ok(()) if warnings.get() == before => Ok(()),
        Ok(()) => {
            log(format_args!("a COMMIT answered with a WARNING (its synchronous-replication wait was cancelled)"));
            Err(ApiError::OutcomeUnknown(
                "the write was committed on the primary, but its wait for the standbys was cancelled: it may not \
                 survive a failover; retry with the same Idempotency-Key"
                    .into(),
            ))
        }
        // Checks at commit (deferred constraints, serialization): rolled back, a known outcome.
        Err(e) if e.code().is_some_and(|c| c.code().starts_with("23") || c.code().starts_with("40")) => Err(e.into()),
        Err(e) => {
            log(format_args!("COMMIT failed, outcome unknown: {}", ApiError::from(e)));
            Err(Phase::Committing.expired())
        }
    }
}

/// End a replay's transaction. Under `local` durability it is rolled back. Otherwise (`quorum`,
/// `visible`, or the server's default) the write it replays may have been committed locally only (a
/// cancelled wait, above): the replay writes (touches its record, so it takes an xid and WAL) and
/// commits, and its COMMIT waits for the standbys up to its own commit record, which is after the
/// replayed write's. So a replay is a 2xx only once the standbys hold the write, else
/// `outcome_unknown` again. (`SELECT pg_current_xact_id()` alone would not do: a transaction that
/// wrote no WAL before its commit record commits asynchronously and does not wait.)
pub async fn confirm_replay(
    tx: Transaction<'_>,
    key: &str,
    durability: Option<Durability>,
    warnings: &WarningCount,
    phase: &mut Phase,
) -> Result<(), ApiError> {
    if durability == Some(Durability::Local) {
        return Ok(tx.rollback().await?);
    }
    tx.execute("UPDATE replikit_idempotency SET created_at = created_at WHERE key = $1", &[&key]).await?;
    commit(tx, warnings, phase).await
}
