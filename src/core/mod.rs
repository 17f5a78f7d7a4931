//! The sans-IO core: every decision, none of the IO.
//!
//! Nothing here reads a clock, touches the network or storage, or knows about JavaScript (as quinn-proto:
//! time arrives as `now_ms: u64`, requests leave as data). That is what lets every rule be tested natively
//! and deterministically; `src/wasm` does the IO and feeds the results back.

pub mod action;
pub mod cache;
pub mod client;
pub mod document;
pub mod error;
pub mod fields;
pub mod merge_patch;
pub mod options;
pub mod outbox;
pub mod protocol;
pub mod retry;
pub mod router;
pub mod selection;
pub mod time;
pub mod topology;
pub mod types;

pub use action::{Action, CallOptions, Completed, Reply};
pub use document::{check_data, check_id, CollectionName, Doc};
pub use error::Error;
pub use options::{Config, Consistency, Durability, ReadPreference, Role};
pub use protocol::{EndpointId, Outcome, Request, Response};
pub use router::{Event, Operation, Router, Step};
pub use topology::{EndpointState, EndpointView, Topology};
