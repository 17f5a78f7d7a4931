//! JSON merge patch (RFC 7396), to apply an offline `update` to the cached copy the way the server will.
//!
//! Hand-written: the algorithm is the ten lines of pseudo-code in the RFC itself, and the `json-patch` crate
//! (which has it) would bring JSON Pointer and JSON Patch along, weight the wasm budget cannot spare.

use serde_json::{Map, Value};

/// Applies `patch` to `target` (both JSON objects' contents) as RFC 7396 section 2 says.
pub fn apply(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(inner) => {
                let slot = target.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(t) = slot {
                    apply(t, inner);
                }
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(target: Value, patch: Value) -> Value {
        let mut t = target.as_object().unwrap().clone();
        apply(&mut t, patch.as_object().unwrap());
        Value::Object(t)
    }

    #[test]
    fn the_rfc_7396_appendix_a_examples_hold() {
        assert_eq!(merged(json!({"a": "b"}), json!({"a": "c"})), json!({"a": "c"}));
        assert_eq!(merged(json!({"a": "b"}), json!({"b": "c"})), json!({"a": "b", "b": "c"}));
        assert_eq!(merged(json!({"a": "b"}), json!({"a": null})), json!({}));
        assert_eq!(merged(json!({"a": "b", "b": "c"}), json!({"a": null})), json!({"b": "c"}));
        assert_eq!(merged(json!({"a": ["b"]}), json!({"a": "c"})), json!({"a": "c"}));
        assert_eq!(merged(json!({"a": "c"}), json!({"a": ["b"]})), json!({"a": ["b"]}));
        assert_eq!(merged(json!({"a": {"b": "c"}}), json!({"a": {"b": "d", "c": null}})), json!({"a": {"b": "d"}}));
        assert_eq!(merged(json!({"a": [{"b": "c"}]}), json!({"a": [1]})), json!({"a": [1]}));
        assert_eq!(merged(json!({"e": null}), json!({"a": 1})), json!({"e": null, "a": 1}));
        assert_eq!(merged(json!({}), json!({"a": {"bb": {"ccc": null}}})), json!({"a": {"bb": {}}}));
    }
}
