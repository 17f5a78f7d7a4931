//! Offline writes: the queued entry, which failures queue a write, and how a conflict found while syncing
//! is resolved.
//!
//! A queued write keeps the idempotency key of its first attempt, so if that attempt did reach the primary,
//! syncing it again cannot apply it twice. Replace, update and delete carry the version they were made
//! against (`If-Match`); a `412` while syncing goes to the configured strategy: `server-wins` (drop the local
//! change), `client-wins` (re-apply it over the current version), `last-writer-wins` (the later of the local
//! edit time and the server's `updatedAt`), or the app's function.

use serde_json::{Map, Value};

use super::action::Action;
pub use super::action::WriteKind;
use super::document::{CollectionName, Doc, Version};
use super::error::Error;
use super::time::parse_rfc3339_ms;
pub use super::types::{ConflictStrategy, CONFLICT_STRATEGIES};

/// One queued write, persisted in the outbox until it is synced.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// Order of the queue (flushes go in this order).
    pub seq: u64,
    /// The idempotency key the write is sent with.
    pub key: String,
    pub kind: WriteKind,
    pub collection: String,
    pub id: String,
    /// The data (create, replace) or the merge patch (update).
    pub data: Option<Map<String, Value>>,
    /// The version the write was made against (`If-Match`), if known.
    pub base_version: Option<Version>,
    /// The document as it was at `base_version`, for a custom resolver's `base`.
    pub base: Option<Doc>,
    /// When the app made the write (last-writer-wins compares it with the server's `updatedAt`).
    pub edited_at_ms: u64,
    /// How many times a conflict resolution re-applied it.
    pub reapplied: u32,
}

/// Failures after which a write is queued instead of rejected (no primary could take it now).
pub fn should_queue(error: &Error) -> bool {
    matches!(error, Error::NoPrimary { .. } | Error::Unavailable { .. } | Error::Timeout { .. })
}

impl OutboxEntry {
    /// The write to send for this entry.
    pub fn action(&self) -> Result<Action, Error> {
        let collection = CollectionName::parse(&self.collection)?;
        Ok(Action::write(self.kind, collection, self.id.clone(), self.data.clone(), self.base_version.clone()))
    }

    /// The JSON persisted in the outbox store.
    pub fn to_value(&self) -> Value {
        serde_json::json!({
            "seq": self.seq,
            "key": self.key,
            "kind": self.kind.as_str(),
            "collection": self.collection,
            "id": self.id,
            "data": self.data,
            "baseVersion": self.base_version,
            "base": self.base.as_ref().map(Doc::to_value),
            "editedAt": self.edited_at_ms,
            "reapplied": self.reapplied,
        })
    }

    pub fn from_value(v: &Value) -> Result<OutboxEntry, String> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from).ok_or(format!("outbox entry: bad {k}"));
        let u = |k: &str| v.get(k).and_then(Value::as_u64).ok_or(format!("outbox entry: bad {k}"));
        Ok(OutboxEntry {
            seq: u("seq")?,
            key: s("key")?,
            kind: WriteKind::parse(&s("kind")?).ok_or("outbox entry: bad kind")?,
            collection: s("collection")?,
            id: s("id")?,
            data: v.get("data").and_then(Value::as_object).cloned(),
            base_version: v.get("baseVersion").and_then(Version::from_json),
            base: match v.get("base") {
                Some(b) if b.is_object() => Some(Doc::from_value(b.clone())?),
                _ => None,
            },
            edited_at_ms: u("editedAt")?,
            reapplied: v.get("reapplied").and_then(Value::as_u64).unwrap_or(0) as u32,
        })
    }

    /// This write re-made against `current` (a new key: the first one may be stored with a failure).
    pub fn reapply(&self, current: Option<&Doc>, data: Option<Map<String, Value>>) -> OutboxEntry {
        let mut next = self.clone();
        next.reapplied += 1;
        next.key = format!("{}~{}", self.key, next.reapplied);
        next.base_version = current.map(|d| d.version.clone());
        next.base = current.cloned();
        if let Some(data) = data {
            next.kind = WriteKind::Replace;
            next.data = Some(data);
        }
        if current.is_none() && next.kind == WriteKind::Update {
            // Nothing left to patch: the patch becomes the document.
            next.kind = WriteKind::Replace;
        }
        next
    }
}

/// What to do with a write whose `If-Match` failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Drop the local change; the server's document stands.
    Drop,
    /// Send this instead (against the current version).
    Reapply(Box<OutboxEntry>),
    /// Ask the app's resolver.
    AskApp,
}

/// Settles a conflict between a queued write and the server's current document (`None`: deleted).
pub fn resolve(strategy: ConflictStrategy, entry: &OutboxEntry, current: Option<&Doc>) -> Resolution {
    let client_wins = || match (entry.kind, current) {
        // Deleting what is already gone is done.
        (WriteKind::Delete, None) => Resolution::Drop,
        _ => Resolution::Reapply(Box::new(entry.reapply(current, None))),
    };
    match strategy {
        ConflictStrategy::ServerWins => Resolution::Drop,
        ConflictStrategy::ClientWins => client_wins(),
        ConflictStrategy::Custom => Resolution::AskApp,
        ConflictStrategy::LastWriterWins => {
            let server_ms = current.and_then(|d| parse_rfc3339_ms(&d.updated_at));
            match server_ms {
                Some(server) if server >= entry.edited_at_ms as i64 => Resolution::Drop,
                _ => client_wins(),
            }
        }
    }
}

/// How a revision conflict (multi-primary: writes to one document at two nodes) is settled.
#[derive(Debug, Clone, PartialEq)]
pub enum RevisionChoice {
    /// Keep `versions[i]`; the others are deleted.
    Keep(usize),
    /// Ask the app's resolver for merged data.
    AskApp,
}

/// Picks among a document's conflicting revisions; `versions[0]` is the server's deterministic winner.
/// `server-wins` keeps it; `last-writer-wins` keeps the latest `updatedAt` (the time the SDK stores with every
/// write; ties and unreadable times go to the server's winner). `client-wins` has no client side here (no local
/// write is involved), so it settles as `last-writer-wins`: the most recent client write wins.
pub fn pick_revision(strategy: ConflictStrategy, versions: &[Doc]) -> RevisionChoice {
    match strategy {
        ConflictStrategy::ServerWins => RevisionChoice::Keep(0),
        ConflictStrategy::Custom => RevisionChoice::AskApp,
        ConflictStrategy::LastWriterWins | ConflictStrategy::ClientWins => {
            let mut best = 0;
            let mut best_ms = i64::MIN;
            for (i, d) in versions.iter().enumerate() {
                let ms = parse_rfc3339_ms(&d.updated_at).unwrap_or(i64::MIN);
                if ms > best_ms {
                    best = i;
                    best_ms = ms;
                }
            }
            RevisionChoice::Keep(best)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(kind: WriteKind, edited_at_ms: u64) -> OutboxEntry {
        OutboxEntry {
            seq: 1,
            key: "k".into(),
            kind,
            collection: "notes".into(),
            id: "a".into(),
            data: Some(json!({"v": "local"}).as_object().unwrap().clone()),
            base_version: Some(Version::Seq(1)),
            base: None,
            edited_at_ms,
            reapplied: 0,
        }
    }

    fn doc(version: u64, updated_at: &str) -> Doc {
        Doc::from_value(json!({"id": "a", "version": version, "data": {"v": "remote"}, "updatedAt": updated_at}))
            .unwrap()
    }

    #[test]
    fn each_strategy_settles_a_conflict_its_own_way() {
        let remote = doc(3, "2026-11-22T10:00:00Z");
        let early = parse_rfc3339_ms("2026-11-22T09:00:00Z").unwrap() as u64;
        let late = parse_rfc3339_ms("2026-11-22T11:00:00Z").unwrap() as u64;
        let e = entry(WriteKind::Replace, early);
        assert_eq!(resolve(ConflictStrategy::ServerWins, &e, Some(&remote)), Resolution::Drop);
        assert_eq!(resolve(ConflictStrategy::Custom, &e, Some(&remote)), Resolution::AskApp);
        match resolve(ConflictStrategy::ClientWins, &e, Some(&remote)) {
            Resolution::Reapply(next) => {
                assert_eq!(next.base_version, Some(Version::Seq(3)), "re-applied over the current version");
                assert_eq!(next.key, "k~1", "with a key of its own");
                assert_eq!(next.data, e.data);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(resolve(ConflictStrategy::LastWriterWins, &e, Some(&remote)), Resolution::Drop, "server is later");
        let late_entry = entry(WriteKind::Update, late);
        assert!(matches!(
            resolve(ConflictStrategy::LastWriterWins, &late_entry, Some(&remote)),
            Resolution::Reapply(_)
        ));
        assert_eq!(resolve(ConflictStrategy::ClientWins, &entry(WriteKind::Delete, 0), None), Resolution::Drop);
        match resolve(ConflictStrategy::ClientWins, &entry(WriteKind::Update, 0), None) {
            Resolution::Reapply(next) => {
                assert_eq!(next.kind, WriteKind::Replace, "nothing to patch: recreate")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn revision_conflicts_are_settled_by_strategy() {
        let v = |rev: &str, at: &str| {
            Doc::from_value(json!({"id": "a", "version": rev, "data": {}, "updatedAt": at})).unwrap()
        };
        let versions = [v("2-b", "2026-11-22T10:00:00Z"), v("2-a", "2026-11-22T11:00:00Z"), v("2-c", "garbage")];
        assert_eq!(pick_revision(ConflictStrategy::ServerWins, &versions), RevisionChoice::Keep(0));
        assert_eq!(pick_revision(ConflictStrategy::LastWriterWins, &versions), RevisionChoice::Keep(1));
        assert_eq!(pick_revision(ConflictStrategy::ClientWins, &versions), RevisionChoice::Keep(1));
        assert_eq!(pick_revision(ConflictStrategy::Custom, &versions), RevisionChoice::AskApp);
        let tie = [v("2-b", "2026-11-22T10:00:00Z"), v("2-a", "2026-11-22T10:00:00Z")];
        assert_eq!(
            pick_revision(ConflictStrategy::LastWriterWins, &tie),
            RevisionChoice::Keep(0),
            "a tie keeps the server's winner"
        );
    }

    #[test]
    fn entries_round_trip_through_json() {
        let mut e = entry(WriteKind::Update, 42);
        e.base = Some(doc(1, "2026-11-22T10:00:00Z"));
        assert_eq!(OutboxEntry::from_value(&e.to_value()).unwrap(), e);
        assert!(OutboxEntry::from_value(&json!({"seq": 1})).is_err());
    }

    #[test]
    fn only_failures_that_may_pass_queue_a_write() {
        assert!(should_queue(&Error::NoPrimary { waited_ms: 1 }));
        assert!(should_queue(&Error::Timeout { after_ms: 1 }));
        assert!(!should_queue(&Error::Conflict { current: None }));
        assert!(!should_queue(&Error::invalid("data", "x")));
    }
}
