//! The engine under the per-call core: stepping a call's router operation, waking calls on time or on a change
//! of the topology, store operations and their waiters, the store's failure, and completing calls.

use super::effect::{ClientEvent, Effect, Failure, Output, StoreOp, StoreToken, Stored, TabMessage};
use super::{Call, CallId, Client, Kind};
use crate::core::action::{Action, CallOptions, Completed};
use crate::core::error::Error;
use crate::core::router::{Event, Operation, Step};
use crate::core::types::{EndpointId, StoreKind};

impl Client {
    pub(super) fn call_id(&mut self) -> CallId {
        let id = CallId(self.next_call);
        self.next_call += 1;
        id
    }

    /// Health checks due, the router's events, then every call whose time has come (or that a change of the
    /// topology may unblock).
    pub(super) fn after_input(&mut self, now_ms: u64) {
        if self.closed {
            return;
        }
        for request in self.router.poll_health_checks(now_ms) {
            self.effects.push_back(Effect::Check(request));
        }
        let mut changed = false;
        let mut writable = false;
        while let Some(event) = self.router.poll_event() {
            changed = true;
            writable |= match &event {
                Event::Primary { url: Some(_), .. } => true,
                Event::EndpointUp(view) => view.writable,
                _ => false,
            };
            self.effects.push_back(Effect::Emit(client_event(event)));
        }
        if writable {
            self.start_flush(now_ms); // a writable node came up: the outbox can go
        }
        let due: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| !c.sending && c.wake_at.is_some_and(|at| changed || at <= now_ms))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.wake(id, now_ms);
        }
    }

    pub(super) fn wake(&mut self, id: CallId, now_ms: u64) {
        let Some(c) = self.calls.get_mut(&id) else { return };
        c.wake_at = None;
        if c.op.is_some() {
            self.drive(id, now_ms);
        } else if matches!(c.kind, Kind::FlushAll) {
            let c = self.calls.remove(&id).expect("present");
            self.retry_flush_all(id, c, now_ms);
        }
    }

    /// Starts a request-level operation for `call` and steps it.
    pub(super) fn run(&mut self, id: CallId, mut call: Call, action: Action, options: CallOptions, now_ms: u64) {
        call.op = Some(self.router.start(action, options, now_ms));
        call.sending = false;
        call.wake_at = None;
        self.calls.insert(id, call);
        self.drive(id, now_ms);
    }

    /// Steps `id`'s operation until it sends, waits or ends.
    pub(super) fn drive(&mut self, id: CallId, now_ms: u64) {
        let Some(c) = self.calls.get_mut(&id) else { return };
        let Some(op) = c.op.as_mut() else { return };
        match self.router.step(op, now_ms) {
            Step::Send(request) => {
                c.sending = true;
                self.effects.push_back(Effect::Send { call: id, request });
            }
            Step::Wait { until_ms } => c.wake_at = Some(until_ms),
            Step::Done(result) => {
                let mut c = self.calls.remove(&id).expect("present");
                let op = c.op.take().expect("present");
                let result = result.map_err(|error| self.failure(&op, error));
                self.op_done(id, c, result, now_ms);
            }
        }
    }

    pub(super) fn failure(&self, op: &Operation, error: Error) -> Failure {
        Failure {
            endpoint: op.last_endpoint().map(|e| self.url(e)),
            status: op.last_status(),
            causes: self.router.causes(op),
            error,
        }
    }

    pub(super) fn url(&self, id: EndpointId) -> String {
        self.router.topology().url(id).to_string()
    }

    pub(super) fn op_done(&mut self, id: CallId, call: Call, result: Result<Completed, Failure>, now_ms: u64) {
        match call.kind {
            Kind::Get(_) => self.get_done(id, call, result, now_ms),
            Kind::Revalidate(_) => self.revalidate_done(id, call, result, now_ms),
            Kind::List(_) => self.list_done(id, call, result, now_ms),
            Kind::Write(_) => self.write_done(id, call, result, now_ms),
            Kind::Flush(_) => self.flush_done(id, call, result, now_ms),
            Kind::FlushAll | Kind::Pending | Kind::Clear => {}
        }
    }

    pub(super) fn on_stored(&mut self, id: CallId, call: Call, result: Result<Stored, ()>, now_ms: u64) {
        match call.kind {
            Kind::Write(_) => self.write_stored(id, call, result, now_ms),
            Kind::Flush(_) => self.flush_stored(id, call, result, now_ms),
            Kind::Pending => {
                let list = match result {
                    Ok(Stored::Outbox(list)) => list,
                    _ => Vec::new(),
                };
                self.complete(id, Ok(Output::Pending(list)));
            }
            Kind::Clear => {
                if self.settings.store == StoreKind::IndexedDb {
                    self.effects.push_back(Effect::Announce(TabMessage::Clear));
                }
                self.complete(id, Ok(Output::Nothing));
            }
            _ => {}
        }
    }

    /// Hands out a store operation; `waiter` continues when its result comes.
    pub(super) fn store(&mut self, op: StoreOp, waiter: Option<CallId>) {
        let token = StoreToken(self.next_token);
        self.next_token += 1;
        if let Some(call) = waiter {
            self.store_waiters.insert(token, call);
        }
        if op == StoreOp::LoadOutbox {
            self.store_reads.insert(token);
        }
        self.effects.push_back(Effect::Store { token, op });
    }

    /// Waits for the store operation just handed out (the call is parked until `handle_stored`).
    pub(super) fn park(&mut self, id: CallId, call: Call) {
        self.calls.insert(id, call);
    }

    /// A write to the store failed: switch to memory (reads go on, queued writes stay in memory) and tell the app.
    pub(super) fn storage_failed(&mut self, error: Error) {
        if self.settings.store.durable() && !self.store_broken {
            self.store_broken = true;
            self.persistent = false;
            self.effects.push_back(Effect::Store { token: StoreToken(0), op: StoreOp::UseMemory });
        }
        self.report_storage_error(error);
    }

    /// Tells the app of a store error (held until it could subscribe).
    pub(super) fn report_storage_error(&mut self, error: Error) {
        match self.held_errors.as_mut() {
            Some(held) => held.push(error),
            None => self.effects.push_back(Effect::Emit(ClientEvent::StorageError(error))),
        }
    }

    pub(super) fn complete(&mut self, id: CallId, result: Result<Output, Failure>) {
        self.effects.push_back(Effect::Complete { call: id, result });
    }

    pub(super) fn fail(&mut self, id: CallId, failure: Failure) {
        self.complete(id, Err(failure));
    }

    pub(super) fn new_call(kind: Kind, internal: bool) -> Call {
        Call { kind, op: None, sending: false, wake_at: None, internal, asking: false }
    }
}

fn client_event(event: Event) -> ClientEvent {
    match event {
        Event::Topology(views) => ClientEvent::Topology(views),
        Event::Primary { url, term } => ClientEvent::Primary { url, term },
        Event::EndpointDown(v) => ClientEvent::EndpointDown(v),
        Event::EndpointUp(v) => ClientEvent::EndpointUp(v),
        Event::Retry { attempt, endpoint, error } => ClientEvent::Retry { attempt, endpoint, error },
        Event::SessionLost { term, position } => ClientEvent::SessionLost { term, position },
    }
}
