//! What a call asks of the cluster and what it gets back, as data: the [`Action`] the router carries out, the
//! [`Reply`] it completes with, and the per-call options. A leaf below the router and the protocol adapters.

use serde_json::{Map, Value};

use super::document::{CollectionName, Doc, Version};
use super::types::{Durability, EndpointId, ReadPreference};

/// Which write was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Create,
    Replace,
    Update,
    Delete,
}

impl WriteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteKind::Create => "create",
            WriteKind::Replace => "replace",
            WriteKind::Update => "update",
            WriteKind::Delete => "delete",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        [WriteKind::Create, WriteKind::Replace, WriteKind::Update, WriteKind::Delete]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// What a call asks of the cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `if_none_match`: the cached version, for a `304 Not Modified` revalidation.
    Get {
        collection: CollectionName,
        id: String,
        if_none_match: Option<Version>,
    },
    List {
        collection: CollectionName,
        limit: Option<u32>,
        after: Option<String>,
    },
    Create {
        collection: CollectionName,
        id: String,
        data: Map<String, Value>,
    },
    Replace {
        collection: CollectionName,
        id: String,
        data: Map<String, Value>,
        if_version: Option<Version>,
    },
    Update {
        collection: CollectionName,
        id: String,
        patch: Map<String, Value>,
        if_version: Option<Version>,
    },
    Delete {
        collection: CollectionName,
        id: String,
        if_version: Option<Version>,
    },
    /// Multi-primary: the documents at these (conflicting) revisions.
    Revisions {
        collection: CollectionName,
        id: String,
        revs: Vec<Version>,
    },
    /// Multi-primary: settle a revision conflict by keeping `keep` (or writing `merged` over it) and deleting
    /// the `losers`. Idempotent: the revisions written are derived from the conflict itself.
    /// `updated_at`: the merge's time, derived from the versions (the latest), so clients merging alike write
    /// the same bytes.
    Resolve {
        collection: CollectionName,
        id: String,
        keep: Doc,
        merged: Option<Map<String, Value>>,
        losers: Vec<Version>,
        updated_at: String,
    },
}

impl Action {
    /// The action of a write of `kind` (`data`: the document, or the merge patch of an update).
    pub fn write(
        kind: WriteKind,
        collection: CollectionName,
        id: String,
        data: Option<Map<String, Value>>,
        if_version: Option<Version>,
    ) -> Action {
        let data = data.unwrap_or_default();
        match kind {
            WriteKind::Create => Action::Create { collection, id, data },
            WriteKind::Replace => Action::Replace { collection, id, data, if_version },
            WriteKind::Update => Action::Update { collection, id, patch: data, if_version },
            WriteKind::Delete => Action::Delete { collection, id, if_version },
        }
    }

    pub fn is_write(&self) -> bool {
        !matches!(self, Action::Get { .. } | Action::List { .. } | Action::Revisions { .. })
    }

    pub(crate) fn if_version(&self) -> Option<&Version> {
        match self {
            Action::Replace { if_version, .. }
            | Action::Update { if_version, .. }
            | Action::Delete { if_version, .. } => if_version.as_ref(),
            _ => None,
        }
    }
}

/// What a finished call gives back.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Doc(Doc),
    /// `get` of a missing document.
    Missing,
    /// `get` answered `304`: the cached version (`if_none_match`) is current.
    NotModified,
    Page(Page),
    Deleted,
    /// The documents at the revisions a `Revisions` call asked for (deleted or missing ones left out).
    Versions(Vec<Doc>),
}

/// A page of a list, in id order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Page {
    pub items: Vec<Doc>,
    pub next: Option<String>,
    /// Multi-primary: ids of the items that have conflicting revisions.
    #[serde(skip)]
    pub conflicted: Vec<String>,
}

/// A successful call and the endpoint that served it.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    pub reply: Reply,
    pub endpoint: EndpointId,
    /// For a `Doc` reply: the response body it was parsed from (valid JSON of that document).
    pub raw: Option<String>,
    /// Multi-primary: other revisions of the replied document in conflict with it.
    pub conflicts: Vec<Version>,
}

/// Per-call options that override the client's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallOptions {
    pub read_preference: Option<ReadPreference>,
    pub durability: Option<Durability>,
    /// A write's idempotency key, when the caller made it (an outbox entry keeps its first one).
    pub idempotency_key: Option<String>,
    /// When the app made the write (an outbox entry's edit time); default: when the call starts.
    pub written_at_ms: Option<u64>,
}

/// Why an endpoint could not serve a call (`error.causes`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Cause {
    pub endpoint: String,
    /// `unreachable`, `timeout`, `unauthorized`, `not_a_gateway`, `not_primary`, `lagging`, `protocol`,
    /// `unavailable` (a 5xx), or the server's error code.
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl Cause {
    pub fn of(endpoint: &str, code: &str, message: &str, status: Option<u16>) -> Cause {
        Cause { endpoint: endpoint.to_string(), code: code.to_string(), message: message.to_string(), status }
    }
}
