//! JSON with exact numbers: the rule for numbers a client sends ([`number`]), a parser that
//! applies it ([`parse`]), and stored text rewritten as clients read it ([`stored`]).
//!
//! Why apart from serde_json's parser: to judge a number the gateway must see its literal,
//! which serde_json only shows with its `arbitrary_precision` feature, and that feature would
//! change number handling for every crate of the workspace. Bodies are small (1 MiB), so a
//! second parser costs little.

pub mod number;
pub mod parse;
pub mod stored;

pub use parse::{parse, Numbers, ParseError};

/// How deep request bodies may nest (serde_json's default limit, which the gateway used before).
pub const REQUEST_MAX_DEPTH: usize = 128;
/// How deep a stored document may nest to be parsed into a value (for a merge patch); a gateway
/// writes at most [`REQUEST_MAX_DEPTH`], and reads never build a value.
pub const STORED_MAX_DEPTH: usize = 1024;
