//! What the client knows about its endpoints, and who is primary.
//!
//! Each endpoint is health-checked every `health.intervalMs`; an operation's failure marks it `suspect` and
//! asks for an immediate re-check (at most one per 500 ms per endpoint), so failover never waits for the next
//! interval. The primary is the one `up` endpoint reporting `primary` on the highest term (PostgreSQL
//! timeline) this client has ever seen a primary claim: an old primary back on a lower term is stale and is
//! never chosen, and
//! two primaries on the highest term mean no primary until it resolves (MongoDB's SDAM rule with
//! electionId, with the timeline as the term). RTT is an EWMA with alpha 0.2, as MongoDB's SDAM spec.

use std::collections::VecDeque;

use serde::Serialize;

use super::options::{EndpointConfig, HealthOptions, Role};
use super::protocol::HealthReport;
use super::types::{EndpointId, Tags};

/// Forced re-checks of one endpoint are at least this far apart.
pub const MIN_RECHECK_MS: u64 = 500;
/// Weight of a new RTT sample in the moving average.
pub const RTT_ALPHA: f64 = 0.2;

/// An endpoint's health as the client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EndpointState {
    /// Not checked yet.
    Unknown,
    Up,
    /// A request or check failed; re-checking now.
    Suspect,
    /// `failureThreshold` checks in a row failed.
    Down,
}

/// Something the app may want to hear about (`db.on(...)`).
#[derive(Debug, Clone, PartialEq)]
pub enum TopologyEvent {
    /// Any endpoint's state, role, term or position changed.
    Changed,
    /// The writable primary changed (None: no usable primary).
    PrimaryChanged(Option<EndpointId>),
    EndpointDown(EndpointId),
    EndpointUp(EndpointId),
}

/// One endpoint's entry in `db.topology()`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    pub url: String,
    pub node_id: Option<String>,
    pub role: Option<Role>,
    /// The configured labels a read preference's tag sets match (`{}` when none).
    pub tags: Tags,
    pub state: EndpointState,
    pub rtt_ms: Option<f64>,
    pub lag_ms: Option<u64>,
    pub term: Option<u64>,
    pub position: Option<u64>,
    pub last_error: Option<String>,
    /// Whether writes go here now (primary-replica: the primary).
    pub primary: bool,
    /// Whether this endpoint takes writes now: the primary, or in a multi-primary cluster every node that is up.
    pub writable: bool,
}

#[derive(Debug, Clone)]
struct Endpoint {
    url: String,
    configured_role: Option<Role>,
    tags: Tags,
    state: EndpointState,
    report: Option<HealthReport>,
    rtt_ms: Option<f64>,
    failures: u32,
    last_error: Option<String>,
    in_flight: u32,
    /// When the next periodic check is due.
    next_check_at: u64,
    /// When a forced re-check is due, if one was asked for.
    forced_at: Option<u64>,
    /// When the last forced re-check was (or will be) due; rate-limits them.
    last_forced_at: Option<u64>,
    check_in_flight: bool,
}

impl Endpoint {
    /// When this endpoint's next check is due, if one is scheduled.
    fn due_at(&self, paused: bool) -> Option<u64> {
        if self.check_in_flight {
            return None;
        }
        let periodic = (!paused).then_some(self.next_check_at);
        match (periodic, self.forced_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The client's model of the cluster. Inputs are `handle_*`, outputs `poll_*`.
#[derive(Debug, Clone)]
pub struct Topology {
    endpoints: Vec<Endpoint>,
    /// Every endpoint takes writes (multi-primary): there is no single primary to find.
    multi: bool,
    health: HealthOptions,
    max_term: u64,
    primary: Option<EndpointId>,
    paused: bool,
    events: VecDeque<TopologyEvent>,
}

impl Topology {
    pub fn new(endpoints: &[EndpointConfig], health: HealthOptions, multi: bool) -> Self {
        let endpoints = endpoints
            .iter()
            .map(|e| Endpoint {
                url: e.url.clone(),
                configured_role: e.role,
                tags: e.tags.clone(),
                state: EndpointState::Unknown,
                report: None,
                rtt_ms: None,
                failures: 0,
                last_error: None,
                in_flight: 0,
                next_check_at: 0,
                forced_at: None,
                last_forced_at: None,
                check_in_flight: false,
            })
            .collect();
        Topology { endpoints, multi, health, max_term: 0, primary: None, paused: false, events: VecDeque::new() }
    }

    // ----- getters -----

    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    pub fn ids(&self) -> impl Iterator<Item = EndpointId> {
        (0..self.endpoints.len()).map(EndpointId)
    }

    pub fn url(&self, id: EndpointId) -> &str {
        &self.endpoints[id.0].url
    }

    /// The endpoint writes go to, if one is trusted now.
    pub fn primary(&self) -> Option<EndpointId> {
        self.primary
    }

    /// Whether writes may go to `id` now: the primary, or (multi-primary) any endpoint that is up.
    pub fn writable(&self, id: EndpointId) -> bool {
        if self.multi {
            let e = &self.endpoints[id.0];
            e.state == EndpointState::Up && e.report.as_ref().is_some_and(|r| !r.read_only)
        } else {
            self.primary == Some(id)
        }
    }

    /// The highest term an endpoint has reported while claiming primary.
    pub fn max_term(&self) -> u64 {
        self.max_term
    }

    pub fn state(&self, id: EndpointId) -> EndpointState {
        self.endpoints[id.0].state
    }

    /// The role reported by the last health check, else the configured one.
    pub fn role(&self, id: EndpointId) -> Option<Role> {
        let e = &self.endpoints[id.0];
        e.report.as_ref().map(|r| r.role).or(e.configured_role)
    }

    /// The configured labels of `id` (read preference tag sets match them).
    pub fn tags(&self, id: EndpointId) -> &Tags {
        &self.endpoints[id.0].tags
    }

    pub fn lag_ms(&self, id: EndpointId) -> Option<u64> {
        self.endpoints[id.0].report.as_ref().and_then(|r| r.lag_ms)
    }

    pub fn rtt_ms(&self, id: EndpointId) -> Option<f64> {
        self.endpoints[id.0].rtt_ms
    }

    pub fn in_flight(&self, id: EndpointId) -> u32 {
        self.endpoints[id.0].in_flight
    }

    /// Whether a health report has been received from `id` since it was last marked down.
    pub fn has_report(&self, id: EndpointId) -> bool {
        self.endpoints[id.0].report.is_some()
    }

    /// A snapshot for `db.topology()`.
    pub fn describe(&self) -> Vec<EndpointView> {
        self.endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| EndpointView {
                url: e.url.clone(),
                node_id: e.report.as_ref().map(|r| r.node_id.clone()),
                role: e.report.as_ref().map(|r| r.role).or(e.configured_role),
                tags: e.tags.clone(),
                state: e.state,
                rtt_ms: e.rtt_ms.map(|r| (r * 100.0).round() / 100.0),
                lag_ms: e.report.as_ref().and_then(|r| r.lag_ms),
                term: e.report.as_ref().map(|r| r.term),
                position: e.report.as_ref().map(|r| r.position),
                last_error: e.last_error.clone(),
                primary: self.primary == Some(EndpointId(i)),
                writable: self.writable(EndpointId(i)),
            })
            .collect()
    }

    // ----- health checks -----

    /// Endpoints whose health check is due at `now_ms`; each is marked in flight until its result is handled.
    pub fn poll_health_checks(&mut self, now_ms: u64) -> Vec<EndpointId> {
        let mut due = Vec::new();
        for (i, e) in self.endpoints.iter_mut().enumerate() {
            if e.due_at(self.paused).is_some_and(|t| t <= now_ms) {
                e.check_in_flight = true;
                e.forced_at = None;
                due.push(EndpointId(i));
            }
        }
        due
    }

    /// When the next health check is due (for the driver's timer).
    pub fn poll_timeout(&self) -> Option<u64> {
        self.endpoints.iter().filter_map(|e| e.due_at(self.paused)).min()
    }

    pub fn poll_event(&mut self) -> Option<TopologyEvent> {
        self.events.pop_front()
    }

    /// The result of a health check started by [`poll_health_checks`](Self::poll_health_checks).
    pub fn handle_health(&mut self, id: EndpointId, now_ms: u64, result: Result<(HealthReport, f64), String>) {
        let interval = self.health.interval_ms;
        let threshold = self.health.failure_threshold;
        let e = &mut self.endpoints[id.0];
        e.check_in_flight = false;
        e.next_check_at = now_ms + interval;
        let before = (e.state, e.report.clone());
        match result {
            Ok((report, rtt)) => {
                e.failures = 0;
                e.state = EndpointState::Up;
                e.last_error = None;
                let rtt = rtt.max(0.0);
                e.rtt_ms = Some(match e.rtt_ms {
                    Some(old) => RTT_ALPHA * rtt + (1.0 - RTT_ALPHA) * old,
                    None => rtt,
                });
                // Only a primary's claim raises the term (MongoDB's SDAM takes electionId from primaries only):
                // a replica reporting a huge term must not fence the real primary.
                if report.role == Role::Primary {
                    self.max_term = self.max_term.max(report.term);
                }
                e.report = Some(report);
            }
            Err(error) => {
                e.failures += 1;
                e.last_error = Some(error);
                e.state = if e.failures >= threshold { EndpointState::Down } else { EndpointState::Suspect };
                if e.state == EndpointState::Down {
                    e.rtt_ms = None;
                }
            }
        }
        let after = (e.state, e.report.clone());
        self.after_change(id, before, after);
    }

    /// An operation on `id` failed at the network or with a 5xx: suspect it and re-check it now.
    pub fn handle_op_failure(&mut self, id: EndpointId, now_ms: u64, error: String) {
        let e = &mut self.endpoints[id.0];
        let before = (e.state, e.report.clone());
        if matches!(e.state, EndpointState::Up | EndpointState::Unknown) {
            e.state = EndpointState::Suspect;
        }
        e.last_error = Some(error);
        let after = (e.state, e.report.clone());
        self.request_check(id, now_ms);
        self.after_change(id, before, after);
    }

    /// `id` answered `not_primary`: it is not the primary any more; re-check every endpoint now.
    pub fn handle_not_primary(&mut self, id: EndpointId, now_ms: u64) {
        let e = &mut self.endpoints[id.0];
        let before = (e.state, e.report.clone());
        if let Some(r) = e.report.as_mut() {
            r.role = Role::Replica;
        }
        let after = (e.state, e.report.clone());
        self.after_change(id, before, after);
        self.request_check_all(now_ms);
    }

    /// Re-check every endpoint as soon as the 500 ms rate limit allows (no primary known, say).
    pub fn request_check_all(&mut self, now_ms: u64) {
        for i in 0..self.endpoints.len() {
            self.request_check(EndpointId(i), now_ms);
        }
    }

    /// Re-check `id` now, or when its rate limit allows.
    pub fn request_check(&mut self, id: EndpointId, now_ms: u64) {
        let e = &mut self.endpoints[id.0];
        if e.forced_at.is_some() {
            return; // one is already scheduled
        }
        let at = match e.last_forced_at {
            Some(last) if now_ms < last + MIN_RECHECK_MS => last + MIN_RECHECK_MS,
            _ => now_ms,
        };
        e.forced_at = Some(at);
        e.last_forced_at = Some(at);
    }

    /// Pauses periodic checks (a hidden browser tab); forced re-checks still run.
    pub fn set_paused(&mut self, paused: bool, now_ms: u64) {
        let was = self.paused;
        self.paused = paused;
        if was && !paused {
            for e in &mut self.endpoints {
                e.next_check_at = e.next_check_at.min(now_ms);
            }
        }
    }

    /// Counts requests in flight per endpoint (power of two choices reads it).
    pub fn begin_request(&mut self, id: EndpointId) {
        self.endpoints[id.0].in_flight += 1;
    }

    pub fn end_request(&mut self, id: EndpointId) {
        let e = &mut self.endpoints[id.0];
        e.in_flight = e.in_flight.saturating_sub(1);
    }

    fn after_change(
        &mut self,
        id: EndpointId,
        before: (EndpointState, Option<HealthReport>),
        after: (EndpointState, Option<HealthReport>),
    ) {
        if before != after {
            self.events.push_back(TopologyEvent::Changed);
        }
        if before.0 != EndpointState::Down && after.0 == EndpointState::Down {
            self.events.push_back(TopologyEvent::EndpointDown(id));
        }
        if before.0 != EndpointState::Up && after.0 == EndpointState::Up {
            self.events.push_back(TopologyEvent::EndpointUp(id));
        }
        let primary = self.compute_primary();
        if primary != self.primary {
            self.primary = primary;
            self.events.push_back(TopologyEvent::PrimaryChanged(primary));
        }
    }

    fn compute_primary(&self) -> Option<EndpointId> {
        if self.multi {
            return None; // every node takes writes; `writable` says which
        }
        let mut found = None;
        for (i, e) in self.endpoints.iter().enumerate() {
            let Some(r) = &e.report else { continue };
            if e.state == EndpointState::Up && r.role == Role::Primary && !r.read_only && r.term == self.max_term {
                if found.is_some() {
                    return None; // two primaries on the highest term: wait until it resolves
                }
                found = Some(EndpointId(i));
            }
        }
        found
    }
}
