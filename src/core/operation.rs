//! One CRUD call as data: what it asks for, and how its attempts are going.

use serde_json::{Map, Value};

use super::document::{CollectionName, Doc, Version};
use super::error::Error;
use super::options::{Durability, ReadPreference};
use super::protocol::{EndpointId, FollowUp};

/// What a call asks of the cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `if_none_match`: the cached version, for a `304 Not Modified` revalidation.
    Get { collection: CollectionName, id: String, if_none_match: Option<Version> },
    List { collection: CollectionName, limit: Option<u32>, after: Option<String> },
    Create { collection: CollectionName, id: String, data: Map<String, Value> },
    Replace { collection: CollectionName, id: String, data: Map<String, Value>, if_version: Option<Version> },
    Update { collection: CollectionName, id: String, patch: Map<String, Value>, if_version: Option<Version> },
    Delete { collection: CollectionName, id: String, if_version: Option<Version> },
    /// Multi-primary: the documents at these (conflicting) revisions.
    Revisions { collection: CollectionName, id: String, revs: Vec<Version> },
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
    pub fn is_write(&self) -> bool {
        !matches!(self, Action::Get { .. } | Action::List { .. } | Action::Revisions { .. })
    }

    pub(crate) fn if_version(&self) -> Option<&Version> {
        match self {
            Action::Replace { if_version, .. } | Action::Update { if_version, .. } | Action::Delete { if_version, .. } => {
                if_version.as_ref()
            }
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

/// One call in progress. Created by [`Router::start`](super::router::Router::start), advanced by `step`.
#[derive(Debug, Clone)]
pub struct Operation {
    pub(crate) action: Action,
    pub(crate) read_preference: ReadPreference,
    pub(crate) durability: Durability,
    /// The same key on every attempt of a write: the server applies it once.
    pub(crate) idempotency_key: Option<String>,
    pub(crate) started_ms: u64,
    pub(crate) written_at_ms: u64,
    /// Multi-primary: the endpoint a write's outcome is unknown at (its answer was lost); the next attempt goes
    /// back there first, because a retry elsewhere cannot tell whether it landed.
    pub(crate) retry_same: Option<EndpointId>,
    /// Multi-primary: a node where this write's outcome is unknown (its answer was lost there).
    pub(crate) unknown_at: Option<EndpointId>,
    pub(crate) attempts: u32,
    /// Endpoints that failed this read; it moves elsewhere.
    pub(crate) excluded: Vec<EndpointId>,
    /// Replicas that answered `lagging` (not a failure).
    pub(crate) lagging: Vec<EndpointId>,
    pub(crate) not_before: u64,
    pub(crate) in_flight: Option<EndpointId>,
    /// The second request of the current attempt, due to this endpoint (see `protocol::FollowUp`).
    pub(crate) follow_up: Option<(EndpointId, FollowUp)>,
    /// The follow-up in flight, if the request in flight is one.
    pub(crate) sent_follow_up: Option<FollowUp>,
    pub(crate) result: Option<Result<Completed, Error>>,
    /// The endpoint of the last attempt, and the HTTP status it answered (for error reports).
    pub(crate) last_endpoint: Option<EndpointId>,
    pub(crate) last_status: Option<u16>,
}

impl Operation {
    pub fn action(&self) -> &Action {
        &self.action
    }

    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    pub fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }

    /// The endpoint the last attempt went to.
    pub fn last_endpoint(&self) -> Option<EndpointId> {
        self.last_endpoint
    }

    /// The HTTP status of the last answer, if one came.
    pub fn last_status(&self) -> Option<u16> {
        self.last_status
    }
}

/// What the driver does next for an operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Send this request and hand its outcome to `Router::handle_outcome`.
    Send(super::protocol::Request),
    /// Nothing to send before `until_ms`; step again then, or sooner when the topology changes.
    Wait { until_ms: u64 },
    Done(Result<Completed, Error>),
}
