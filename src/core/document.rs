//! Documents and the names that address them.
//!
//! The rules match protocol v1 (docs/PROTOCOL.md), so a bad name is rejected before any request is made:
//! a collection is `[A-Za-z0-9_-]{1,64}`; an id is 1 to 256 bytes of UTF-8 and neither `.` nor `..`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::Error;

/// A document's version: a counter on the Replikit gateway (protocol v1), a revision (`"3-9f2c..."`) on a
/// CouchDB-protocol server. JavaScript sees a number or a string; `ifVersion` takes the same back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Version {
    Seq(u64),
    Rev(String),
}

impl Version {
    /// Reads a version from JSON: a whole number, or a revision string `N-hash`.
    pub fn from_json(v: &Value) -> Option<Version> {
        match v {
            Value::Number(_) => v.as_u64().map(Version::Seq),
            Value::String(s) => Version::parse_rev(s),
            _ => None,
        }
    }

    /// A revision `N-hash`: N a generation (1 to 19 digits, no leading zero), the hash 1 to 128 characters
    /// without whitespace or quotes.
    pub fn parse_rev(s: &str) -> Option<Version> {
        split_rev(s).map(|_| Version::Rev(s.to_string()))
    }

    pub fn to_json(&self) -> Value {
        match self {
            Version::Seq(n) => Value::from(*n),
            Version::Rev(r) => Value::String(r.clone()),
        }
    }

    /// The version as an HTTP entity tag (`"7"`, `"3-9f2c"`).
    pub fn etag(&self) -> String {
        match self {
            Version::Seq(n) => format!("\"{n}\""),
            Version::Rev(r) => format!("\"{r}\""),
        }
    }

    /// A revision's generation and hash; None unless this is a revision [`Version::parse_rev`] accepts.
    pub fn rev_parts(&self) -> Option<(u64, &str)> {
        let Version::Rev(r) = self else { return None };
        split_rev(r)
    }

    /// The generation of this revision's children (`N+1`); None unless this is a revision that can have one (the
    /// child of the last generation would not be a revision).
    pub fn child_generation(&self) -> Option<u64> {
        self.rev_parts()?.0.checked_add(1).filter(|g| *g <= MAX_GENERATION)
    }
}

/// Most digits a revision's generation may have. A generation is written in decimal from 1 (0 is no revision),
/// without a sign or leading zeros, so one generation has one spelling; 19 digits keep it and its child's
/// generation within a u64 (CouchDB's are far smaller: one per edit of a document).
const MAX_GENERATION_DIGITS: usize = 19;
/// The last generation: 19 nines.
const MAX_GENERATION: u64 = 10u64.pow(MAX_GENERATION_DIGITS as u32) - 1;

/// `N-hash` checked and split; the one rule for what a revision is.
fn split_rev(s: &str) -> Option<(u64, &str)> {
    let (digits, hash) = s.split_once('-')?;
    let canonical = (1..=MAX_GENERATION_DIGITS).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    let hash_ok = (1..=128).contains(&hash.len()) && hash.bytes().all(|b| b.is_ascii_graphic() && b != b'"');
    if !(canonical && hash_ok) {
        return None;
    }
    Some((digits.parse().ok()?, hash))
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Version::Seq(n) => write!(f, "{n}"),
            Version::Rev(r) => f.write_str(r),
        }
    }
}

/// A stored document, as the protocol and the JS API both spell it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Doc {
    pub id: String,
    /// Changed by every write of this document (see [`Version`]).
    pub version: Version,
    pub data: Map<String, Value>,
    /// RFC 3339 time of the last write, as the server reported it.
    pub updated_at: String,
}

impl Doc {
    /// Reads a document from JSON, checking every field (the protocol's shape; no serde visitor per type).
    pub fn from_value(value: Value) -> Result<Doc, String> {
        let Value::Object(mut map) = value else {
            return Err("a document must be an object".into());
        };
        let id = match map.remove("id") {
            Some(Value::String(s)) => s,
            _ => return Err("document `id` must be a string".into()),
        };
        let version = map
            .get("version")
            .and_then(Version::from_json)
            .ok_or("document `version` must be a whole number or a revision string")?;
        let data = match map.remove("data") {
            Some(Value::Object(d)) => d,
            _ => return Err("document `data` must be an object".into()),
        };
        let updated_at = match map.remove("updatedAt") {
            Some(Value::String(s)) => s,
            _ => return Err("document `updatedAt` must be a string".into()),
        };
        Ok(Doc { id, version, data, updated_at })
    }

    /// The protocol's JSON form.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("id".into(), Value::String(self.id.clone()));
        map.insert("version".into(), self.version.to_json());
        map.insert("data".into(), Value::Object(self.data.clone()));
        map.insert("updatedAt".into(), Value::String(self.updated_at.clone()));
        Value::Object(map)
    }
}

/// A collection name checked against the protocol's rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CollectionName(String);

impl CollectionName {
    pub fn parse(name: &str) -> Result<Self, Error> {
        let ok =
            (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(Error::invalid(
                "collection",
                format!("{name:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'"),
            ));
        }
        Ok(CollectionName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a document id against the protocol's rules (1 to 256 bytes, no NUL, not `.` or `..`).
pub fn check_id(id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::invalid("id", "must not be empty"));
    }
    if id.len() > 256 {
        return Err(Error::invalid("id", format!("is {} bytes; at most 256 are allowed", id.len())));
    }
    if id == "." || id == ".." {
        return Err(Error::invalid("id", format!("{id:?} is reserved")));
    }
    if id.contains('\0') {
        return Err(Error::invalid("id", "must not contain NUL"));
    }
    Ok(())
}

/// Checks that a value given as document data is a JSON object.
pub fn check_data(data: Value) -> Result<Map<String, Value>, Error> {
    match data {
        Value::Object(map) => Ok(map),
        other => Err(Error::invalid("data", format!("must be a plain object, got {}", kind(&other)))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_are_counters_or_revisions() {
        assert_eq!(Version::from_json(&json!(3)), Some(Version::Seq(3)));
        assert_eq!(Version::from_json(&json!("12-ab3f")), Some(Version::Rev("12-ab3f".into())));
        for bad in
            [json!(-1), json!(1.5), json!("abc"), json!("0-a"), json!("1-"), json!("-a"), json!("1-a b"), json!(null)]
        {
            assert_eq!(Version::from_json(&bad), None, "{bad}");
        }
        assert_eq!(Version::Rev("3-x".into()).rev_parts(), Some((3, "x")));
        assert_eq!(Version::Rev("3-x".into()).child_generation(), Some(4));
        assert_eq!(Version::Seq(7).etag(), "\"7\"");
    }

    #[test]
    fn a_generation_is_one_decimal_spelling_from_1_to_19_nines() {
        for bad in ["0-a", "00-a", "01-a", "+1-a", " 1-a", "1 -a", "18446744073709551615-a", "99999999999999999999-a"] {
            assert_eq!(Version::parse_rev(bad), None, "{bad}");
            assert_eq!(Version::Rev(bad.into()).rev_parts(), None, "a Rev made without parse_rev: {bad}");
            assert_eq!(Version::Rev(bad.into()).child_generation(), None, "{bad}");
        }
        let last = Version::Rev(format!("{MAX_GENERATION}-a"));
        assert_eq!(last.rev_parts(), Some((9_999_999_999_999_999_999, "a")));
        assert_eq!(last.child_generation(), None, "its child would have 20 digits");
        let before = Version::Rev(format!("{}-a", MAX_GENERATION - 1));
        assert_eq!(before.child_generation(), Some(MAX_GENERATION));
        assert_eq!(Version::Seq(u64::MAX).child_generation(), None);
        assert_eq!(Version::Rev("1-".into()).rev_parts(), None, "no hash");
    }

    #[test]
    fn collection_names_follow_the_protocol() {
        assert!(CollectionName::parse("users_2-a").is_ok());
        assert!(CollectionName::parse("").is_err());
        assert!(CollectionName::parse(&"a".repeat(65)).is_err());
        assert!(CollectionName::parse("a/b").is_err());
        assert!(CollectionName::parse("é").is_err());
    }

    #[test]
    fn ids_follow_the_protocol() {
        assert!(check_id("ü-any thing/ok").is_ok());
        assert!(check_id("").is_err());
        assert!(check_id("..").is_err());
        assert!(check_id("a\0").is_err());
        assert!(check_id(&"x".repeat(257)).is_err());
        assert!(check_id(&"x".repeat(256)).is_ok());
    }

    #[test]
    fn data_must_be_an_object() {
        assert!(check_data(json!({"a": 1})).is_ok());
        let e = check_data(json!([1])).unwrap_err();
        assert_eq!(e.to_string(), "invalid data: must be a plain object, got an array");
    }

    #[test]
    fn doc_uses_the_protocol_field_names() {
        let v = json!({"id": "a", "version": 3, "data": {"k": [1]}, "updatedAt": "t"});
        let d = Doc::from_value(v.clone()).unwrap();
        assert_eq!(d.to_value(), v);
        assert_eq!(serde_json::to_value(&d).unwrap(), v, "serde and to_value agree");
        assert!(Doc::from_value(json!({"id": "a", "version": -1, "data": {}, "updatedAt": "t"})).is_err());
        assert!(Doc::from_value(json!({"id": "a", "version": "x", "data": {}, "updatedAt": "t"})).is_err());
        let rev = json!({"id": "a", "version": "2-abc", "data": {}, "updatedAt": "t"});
        assert_eq!(Doc::from_value(rev.clone()).unwrap().to_value(), rev);
        assert_eq!(serde_json::to_value(Doc::from_value(rev.clone()).unwrap()).unwrap(), rev);
        assert!(Doc::from_value(json!({"id": "a", "version": 1, "data": [], "updatedAt": "t"})).is_err());
        assert!(Doc::from_value(json!({"id": 1, "version": 1, "data": {}, "updatedAt": "t"})).is_err());
    }
}
