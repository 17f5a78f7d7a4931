//! The read preference option, the client's (`readPreference`) and a call's: a mode (`'nearest'`), or
//! `{ mode, tagSets, maxStalenessMs }` as MongoDB's read preference, and the endpoint `tags` its tag sets match.
//! One parser for both places, so a call's preference is checked exactly as the client's.

use serde_json::Value;

use super::super::error::Error;
use super::super::fields::Fields;
use super::super::types::READ_PREFERENCES;
use super::{ranged, ReadMode, ReadPreference, Tags};

/// Reads a read preference: a mode (`'nearest'`) or `{ mode, tagSets?, maxStalenessMs? }`; `path` names it in
/// errors (`readPreference`). The client's option and a call's option are read by this one function.
///
/// A tag set is an object of strings. Mode `primary` takes no tag set but `{}` (as MongoDB's spec: a primary
/// read goes to the primary whatever its tags, so a tag set there is a mistake, not a filter).
pub fn parse_read_preference(value: &Value, path: &str) -> Result<ReadPreference, Error> {
    let mut f = match value {
        Value::String(name) => return Ok(read_mode(name, path)?.into()),
        Value::Object(_) => Fields::new(value, path)?,
        _ => {
            let expected = "a mode ('nearest') or an object { mode, tagSets, maxStalenessMs }";
            return Err(Error::invalid(path, format!("must be {expected}, got {value}")));
        }
    };
    let mode = match f.string("mode")? {
        Some(name) => read_mode(&name, &f.name("mode"))?,
        None => return Err(Error::invalid(f.name("mode"), "is required")),
    };
    let sets_path = f.name("tagSets");
    let tag_sets = match f.array("tagSets")? {
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, set)| parse_tags(set, &format!("{sets_path}[{i}]")))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let max_staleness_ms = match f.u64("maxStalenessMs")? {
        Some(ms) => Some(ranged(&f.name("maxStalenessMs"), Some(ms), 0, 0)?),
        None => None,
    };
    f.finish()?;
    if mode == ReadMode::Primary {
        if let Some(i) = tag_sets.iter().position(|set: &Tags| !set.is_empty()) {
            return Err(Error::invalid(
                format!("{sets_path}[{i}]"),
                "does not apply to mode 'primary' (it reads from the primary whatever its tags): leave tagSets out",
            ));
        }
        return Ok(ReadPreference { mode, tag_sets: Vec::new(), max_staleness_ms });
    }
    Ok(ReadPreference { mode, tag_sets, max_staleness_ms })
}

/// The mode named `name` (its string form).
fn read_mode(name: &str, path: &str) -> Result<ReadMode, Error> {
    match READ_PREFERENCES.iter().find(|(n, _)| *n == name) {
        Some((_, mode)) => Ok(*mode),
        None => {
            let names: Vec<&str> = READ_PREFERENCES.iter().map(|(n, _)| *n).collect();
            Err(Error::invalid(path, format!("{name:?} is not one of {}", names.join(", "))))
        }
    }
}

/// An object of strings: an endpoint's `tags`, or one tag set of a read preference.
pub(super) fn parse_tags(value: &Value, path: &str) -> Result<Tags, Error> {
    let Value::Object(map) = value else {
        return Err(Error::invalid(path, format!("must be an object of strings ({{ \"dc\": \"eu\" }}), got {value}")));
    };
    map.iter()
        .map(|(key, v)| match v {
            Value::String(s) => Ok((key.clone(), s.clone())),
            _ => Err(Error::invalid(format!("{path}.{key}"), format!("must be a string, got {v}"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn read(v: Value) -> Result<ReadPreference, Error> {
        parse_read_preference(&v, "readPreference")
    }

    fn what(v: Value) -> String {
        match read(v) {
            Err(Error::InvalidArgument { what, .. }) => what,
            other => panic!("expected invalid_argument, got {other:?}"),
        }
    }

    #[test]
    fn a_read_preference_is_a_mode_or_an_object_with_tag_sets_and_a_staleness_bound() {
        assert_eq!(read(json!("primaryPreferred")), Ok(ReadMode::PrimaryPreferred.into()));
        assert_eq!(read(json!({"mode": "nearest"})), read(json!("nearest")), "the same preference");
        let p = read(json!({"mode": "replica", "tagSets": [{"dc": "eu", "rack": "1"}, {"dc": "eu"}, {}],
            "maxStalenessMs": 5000}))
        .unwrap();
        assert_eq!(p.mode, ReadMode::Replica);
        assert_eq!(p.tag_sets, vec![tags(&[("dc", "eu"), ("rack", "1")]), tags(&[("dc", "eu")]), Tags::new()]);
        assert_eq!(p.max_staleness_ms, Some(5000));
    }

    #[test]
    fn read_preference_mistakes_are_named_by_their_path() {
        assert_eq!(what(json!("secondary")), "readPreference");
        assert_eq!(what(json!(1)), "readPreference");
        assert_eq!(what(json!({"tagSets": [{}]})), "readPreference.mode");
        assert_eq!(what(json!({"mode": "secondary"})), "readPreference.mode");
        assert_eq!(what(json!({"mode": "nearest", "tagSets": {"dc": "eu"}})), "readPreference.tagSets");
        assert_eq!(what(json!({"mode": "nearest", "tagSets": [{}, "eu"]})), "readPreference.tagSets[1]");
        assert_eq!(what(json!({"mode": "nearest", "tagSets": [{"dc": ["eu"]}]})), "readPreference.tagSets[0].dc");
        assert_eq!(what(json!({"mode": "nearest", "maxStalenessMs": 7_200_000})), "readPreference.maxStalenessMs");
        assert_eq!(what(json!({"mode": "nearest", "maxStalenessMs": -1})), "readPreference.maxStalenessMs");
        assert_eq!(what(json!({"mode": "nearest", "tags": [{"dc": "eu"}]})), "readPreference.tags");
        let nested = parse_read_preference(&json!({"mode": "x"}), "options.readPreference").unwrap_err();
        assert_eq!(
            nested,
            Error::invalid(
                "options.readPreference.mode",
                "\"x\" is not one of primary, primaryPreferred, replica, replicaPreferred, nearest"
            )
        );
    }

    #[test]
    fn mode_primary_takes_no_tag_set_but_an_empty_one() {
        let err = read(json!({"mode": "primary", "tagSets": [{}, {"dc": "eu"}]})).unwrap_err();
        assert!(matches!(&err, Error::InvalidArgument { what, .. } if what == "readPreference.tagSets[1]"), "{err:?}");
        assert!(err.to_string().contains("primary"), "{err}");
        for sets in [json!([]), json!([{}]), json!([{}, {}])] {
            assert_eq!(read(json!({"mode": "primary", "tagSets": sets})), Ok(ReadMode::Primary.into()));
        }
        let bounded = read(json!({"mode": "primary", "maxStalenessMs": 100})).unwrap();
        assert_eq!(bounded.max_staleness_ms, Some(100), "a staleness bound is harmless with it");
    }

    #[test]
    fn the_effective_read_preference_is_shown_as_it_was_given() {
        let show = |v: Value| serde_json::to_value(read(v).unwrap()).unwrap();
        assert_eq!(show(json!("replicaPreferred")), json!("replicaPreferred"));
        assert_eq!(show(json!({"mode": "nearest"})), json!("nearest"));
        let full = json!({"mode": "nearest", "tagSets": [{"dc": "eu"}, {}], "maxStalenessMs": 5000});
        assert_eq!(show(full.clone()), full);
    }
}
