//! One request-level operation in progress: how the attempts of one [`Action`] are going (the router's state).

use crate::core::action::{Action, Cause, Completed};
use crate::core::error::Error;
use crate::core::protocol::FollowUp;
use crate::core::types::{Durability, EndpointId, ReadPreference};

/// One request-level operation in progress: an opaque handle. Created by [`Router::start`](super::Router::start),
/// advanced by `step` and `handle_outcome`.
#[derive(Debug, Clone)]
pub struct Operation {
    pub(super) action: Action,
    pub(super) read_preference: ReadPreference,
    pub(super) durability: Durability,
    /// The same key on every attempt of a write: the server applies it once.
    pub(super) idempotency_key: Option<String>,
    pub(super) started_ms: u64,
    pub(super) written_at_ms: u64,
    /// Multi-primary: the endpoint a write's outcome is unknown at (its answer was lost); the next attempt goes
    /// back there first, because a retry elsewhere cannot tell whether it landed.
    pub(super) retry_same: Option<EndpointId>,
    /// Multi-primary: a node where this write's outcome is unknown (its answer was lost there).
    pub(super) unknown_at: Option<EndpointId>,
    pub(super) attempts: u32,
    /// Endpoints that failed this read; it moves elsewhere.
    pub(super) excluded: Vec<EndpointId>,
    /// Replicas that answered `lagging` (not a failure).
    pub(super) lagging: Vec<EndpointId>,
    pub(super) not_before: u64,
    pub(super) in_flight: Option<EndpointId>,
    /// The second request of the current attempt, due to this endpoint (see `protocol::FollowUp`).
    pub(super) follow_up: Option<(EndpointId, FollowUp)>,
    /// The follow-up in flight, if the request in flight is one.
    pub(super) sent_follow_up: Option<FollowUp>,
    pub(super) result: Option<Result<Completed, Error>>,
    /// The endpoint of the last attempt, and the HTTP status it answered (for error reports).
    pub(super) last_endpoint: Option<EndpointId>,
    pub(super) last_status: Option<u16>,
    /// Why each attempt failed (the call's `error.causes` if it ends without an answer).
    pub(super) causes: Vec<Cause>,
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
    Send(crate::core::protocol::Request),
    /// Nothing to send before `until_ms`; step again then, or sooner when the topology changes.
    Wait {
        until_ms: u64,
    },
    Done(Result<Completed, Error>),
}
