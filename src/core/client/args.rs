//! A call's options object (`{ id, ifVersion, readPreference, readPolicy, durability, limit, after }`), checked
//! against what that call accepts. The executor takes `signal` out (a JS object) and hands the rest here as JSON;
//! a mistake is an `invalid_argument` naming the option, and an option the call does not take is refused.

use serde_json::Value;

use crate::core::document::{check_id, Version};
use crate::core::error::Error;
use crate::core::fields::Fields;
use crate::core::options::parse_read_preference;
use crate::core::types::{Durability, ReadPolicy, ReadPreference, DURABILITIES, READ_POLICIES};

/// Options a read (`get`) takes.
pub const READ: &[&str] = &["readPreference", "readPolicy"];
/// Options `replace`, `update` and `delete` take.
pub const WRITE: &[&str] = &["ifVersion", "durability"];
/// Options `create` takes.
pub const CREATE: &[&str] = &["id", "durability"];
/// Options `list` takes.
pub const LIST: &[&str] = &["limit", "after", "readPreference", "readPolicy"];

/// The most documents one page may ask for.
pub const MAX_LIMIT: u32 = 1000;

/// The options of one call, checked.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CallArgs {
    pub id: Option<String>,
    pub if_version: Option<Version>,
    pub read_preference: Option<ReadPreference>,
    pub read_policy: Option<ReadPolicy>,
    pub durability: Option<Durability>,
    pub limit: Option<u32>,
    pub after: Option<String>,
}

impl CallArgs {
    /// Reads `options` (null: none) for a call that accepts the keys in `allowed`.
    pub fn parse(options: &Value, allowed: &[&'static str]) -> Result<CallArgs, Error> {
        if options.is_null() {
            return Ok(CallArgs::default());
        }
        let mut f = Fields::new(options, "")?;
        let mut args = CallArgs::default();
        for &key in allowed {
            match key {
                "id" => args.id = f.string("id")?,
                "ifVersion" => args.if_version = f.get("ifVersion").map(parse_version).transpose()?,
                "readPreference" => {
                    args.read_preference = f.get("readPreference").map(|v| parse_read_preference(v, key)).transpose()?
                }
                "readPolicy" => args.read_policy = f.one_of("readPolicy", READ_POLICIES)?,
                "durability" => args.durability = f.one_of("durability", DURABILITIES)?,
                "limit" => args.limit = f.u32("limit")?,
                "after" => args.after = f.string("after")?,
                _ => {}
            }
        }
        f.finish()?;
        if let Some(id) = &args.id {
            check_id(id)?;
        }
        if args.limit.is_some_and(|l| !(1..=MAX_LIMIT).contains(&l)) {
            return Err(Error::invalid("limit", format!("must be between 1 and {MAX_LIMIT}")));
        }
        Ok(args)
    }
}

fn parse_version(v: &Value) -> Result<Version, Error> {
    Version::from_json(v).ok_or_else(|| {
        Error::invalid(
            "ifVersion",
            format!("must be a document's version (a whole number or a revision string), got {v}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_call_takes_only_its_own_options_and_names_a_mistake() {
        assert_eq!(CallArgs::parse(&Value::Null, READ).unwrap(), CallArgs::default());
        let a = CallArgs::parse(&json!({"ifVersion": 3, "durability": "local"}), WRITE).unwrap();
        assert_eq!(a.if_version, Some(Version::Seq(3)));
        assert_eq!(a.durability, Some(Durability::Local));
        let argument = |r: Result<CallArgs, Error>| match r {
            Err(Error::InvalidArgument { what, .. }) => what,
            other => panic!("{other:?}"),
        };
        assert_eq!(argument(CallArgs::parse(&json!({"limit": 5}), READ)), "limit", "get takes no limit");
        assert_eq!(argument(CallArgs::parse(&json!({"limit": 0}), LIST)), "limit");
        assert_eq!(argument(CallArgs::parse(&json!({"limit": 1001}), LIST)), "limit");
        assert_eq!(argument(CallArgs::parse(&json!({"ifVersion": {"rev": 1}}), WRITE)), "ifVersion");
        assert_eq!(argument(CallArgs::parse(&json!({"readPolicy": "sometimes"}), READ)), "readPolicy");
        assert!(CallArgs::parse(&json!({"id": ""}), CREATE).is_err(), "an empty id");
        let tags = json!({"readPreference": {"mode": "nearest", "tagSets": [{"dc": "eu"}, {}]}});
        assert_eq!(CallArgs::parse(&tags, READ).unwrap().read_preference.unwrap().tag_sets.len(), 2);
    }
}
