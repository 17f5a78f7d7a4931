//! JSON with exact numbers: the rule for numbers a client sends ([`number`]) and a parser that
//! applies it ([`parse`]).
//!
//! Why apart from serde_json's parser: to judge a number the gateway must see its literal,
//! which serde_json only shows with its `arbitrary_precision` feature, and that feature would
//! change number handling for every crate of the workspace. Bodies are small (1 MiB), so a
//! second parser costs little.

pub mod number;
pub mod parse;

pub use parse::{parse, Numbers, ParseError};

/// How deep request bodies may nest (serde_json's default limit, which the gateway used before).
pub const REQUEST_MAX_DEPTH: usize = 128;
