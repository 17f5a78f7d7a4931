//! One request-level operation in progress: how the attempts of one [`Action`] are going (the router's state).

use super::action::{Action, Cause, Completed};
use super::error::Error;
use super::protocol::FollowUp;
use super::types::{Durability, EndpointId, ReadPreference};

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
    /// Why each attempt failed (the call's `error.causes` if it ends without an answer).
    pub(crate) causes: Vec<Cause>,
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
    Wait {
        until_ms: u64,
    },
    Done(Result<Completed, Error>),
}
