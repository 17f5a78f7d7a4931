//! One CRUD call as data: what it asks for, and how its attempts are going.

use serde_json::{Map, Value};

use super::document::{CollectionName, Doc};
use super::error::Error;
use super::options::{Durability, ReadPreference};
use super::protocol::{encode_segment, EndpointId, Method, Page};

/// What a call asks of the cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `if_none_match`: the cached version, for a `304 Not Modified` revalidation.
    Get { collection: CollectionName, id: String, if_none_match: Option<u64> },
    List { collection: CollectionName, limit: Option<u32>, after: Option<String> },
    Create { collection: CollectionName, id: String, data: Map<String, Value> },
    Replace { collection: CollectionName, id: String, data: Map<String, Value>, if_version: Option<u64> },
    Update { collection: CollectionName, id: String, patch: Map<String, Value>, if_version: Option<u64> },
    Delete { collection: CollectionName, id: String, if_version: Option<u64> },
}

impl Action {
    pub fn is_write(&self) -> bool {
        !matches!(self, Action::Get { .. } | Action::List { .. })
    }

    pub(crate) fn method(&self) -> Method {
        match self {
            Action::Get { .. } | Action::List { .. } => Method::Get,
            Action::Create { .. } => Method::Post,
            Action::Replace { .. } => Method::Put,
            Action::Update { .. } => Method::Patch,
            Action::Delete { .. } => Method::Delete,
        }
    }

    pub(crate) fn path(&self) -> String {
        match self {
            Action::Create { collection, .. } => format!("/v1/c/{}", collection.as_str()),
            Action::List { collection, limit, after } => {
                let mut path = format!("/v1/c/{}", collection.as_str());
                let mut sep = '?';
                if let Some(limit) = limit {
                    path.push_str(&format!("{sep}limit={limit}"));
                    sep = '&';
                }
                if let Some(after) = after {
                    path.push_str(&format!("{sep}after={}", encode_segment(after)));
                }
                path
            }
            Action::Get { collection, id, .. }
            | Action::Replace { collection, id, .. }
            | Action::Update { collection, id, .. }
            | Action::Delete { collection, id, .. } => {
                format!("/v1/c/{}/{}", collection.as_str(), encode_segment(id))
            }
        }
    }

    /// The request body, serialized straight from the borrowed data (building a `json!` value would deep-copy
    /// the document first: npm run bench measured that as a quarter of a 100 KB create).
    pub(crate) fn body(&self) -> Option<String> {
        let text = |v: &Map<String, Value>| serde_json::to_string(v).unwrap_or_else(|_| "{}".into());
        match self {
            Action::Create { id, data, .. } => {
                let id = serde_json::to_string(id).unwrap_or_default();
                Some(format!("{{\"id\":{id},\"data\":{}}}", text(data)))
            }
            Action::Replace { data, .. } => Some(format!("{{\"data\":{}}}", text(data))),
            Action::Update { patch, .. } => Some(text(patch)),
            _ => None,
        }
    }

    pub(crate) fn if_version(&self) -> Option<u64> {
        match self {
            Action::Replace { if_version, .. } | Action::Update { if_version, .. } | Action::Delete { if_version, .. } => {
                *if_version
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
}

/// A successful call and the endpoint that served it.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    pub reply: Reply,
    pub endpoint: EndpointId,
    /// For a `Doc` reply: the response body it was parsed from (valid JSON of that document).
    pub raw: Option<String>,
}

/// Per-call options that override the client's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallOptions {
    pub read_preference: Option<ReadPreference>,
    pub durability: Option<Durability>,
    /// A write's idempotency key, when the caller made it (an outbox entry keeps its first one).
    pub idempotency_key: Option<String>,
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
    pub(crate) attempts: u32,
    /// Endpoints that failed this read; it moves elsewhere.
    pub(crate) excluded: Vec<EndpointId>,
    /// Replicas that answered `lagging` (not a failure).
    pub(crate) lagging: Vec<EndpointId>,
    pub(crate) not_before: u64,
    pub(crate) in_flight: Option<EndpointId>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_are_the_protocols_json() {
        let c = CollectionName::parse("c").unwrap();
        let data = json!({"a": [1, {"b": "\"q\""}], "é": null}).as_object().unwrap().clone();
        let create = Action::Create { collection: c.clone(), id: "x\"y".into(), data: data.clone() };
        let parsed: Value = serde_json::from_str(&create.body().unwrap()).unwrap();
        assert_eq!(parsed, json!({"id": "x\"y", "data": data}));
        let replace = Action::Replace { collection: c.clone(), id: "x".into(), data: data.clone(), if_version: None };
        assert_eq!(serde_json::from_str::<Value>(&replace.body().unwrap()).unwrap(), json!({"data": data}));
        let update = Action::Update { collection: c.clone(), id: "x".into(), patch: data.clone(), if_version: None };
        assert_eq!(serde_json::from_str::<Value>(&update.body().unwrap()).unwrap(), Value::Object(data));
        assert_eq!(Action::Delete { collection: c, id: "x".into(), if_version: None }.body(), None);
    }
}
