//! Reads option objects field by field, naming every mistake by its path (`health.intervalMs`).
//!
//! Hand-written rather than serde derive + serde_path_to_error: those monomorphize a visitor per type and
//! cost about 30 KB of wasm for a few dozen fields; this is one small, non-generic reader. `null` counts as
//! absent (as `undefined` does once JSON-stringified). Unknown keys are rejected, so a typo is found at once.

use serde_json::{Map, Value};

use super::error::Error;

/// The fields of one JSON object, read one key at a time.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: String,
    known: Vec<&'static str>,
    free_form: bool,
}

impl<'a> Fields<'a> {
    /// `value` must be an object; `path` names it in errors (`""` for the top level, then named `options`).
    pub fn new(value: &'a Value, path: &str) -> Result<Self, Error> {
        match value {
            Value::Object(map) => Ok(Fields { map, path: path.to_string(), known: Vec::new(), free_form: false }),
            _ => Err(Error::invalid(if path.is_empty() { "options" } else { path }, "must be an object")),
        }
    }

    /// The path of `key` for error messages.
    pub fn name(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The raw value of `key`, if present and not null.
    pub fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A whole number from 0 up.
    pub fn u64(&mut self, key: &'static str) -> Result<Option<u64>, Error> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match v.as_u64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9e15).map(|f| f as u64))
        {
            Some(n) => Ok(Some(n)),
            None => Err(Error::invalid(self.name(key), format!("must be a whole number from 0 up, got {v}"))),
        }
    }

    /// A whole number that fits in 32 bits.
    pub fn u32(&mut self, key: &'static str) -> Result<Option<u32>, Error> {
        match self.u64(key)? {
            Some(n) => {
                u32::try_from(n).map(Some).map_err(|_| Error::invalid(self.name(key), format!("{n} is too large")))
            }
            None => Ok(None),
        }
    }

    pub fn bool(&mut self, key: &'static str) -> Result<Option<bool>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(Error::invalid(self.name(key), format!("must be true or false, got {v}"))),
        }
    }

    pub fn string(&mut self, key: &'static str) -> Result<Option<String>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(Error::invalid(self.name(key), format!("must be a string, got {v}"))),
        }
    }

    /// One of the named `choices`.
    pub fn one_of<T: Copy>(&mut self, key: &'static str, choices: &[(&str, T)]) -> Result<Option<T>, Error> {
        let Some(s) = self.string(key)? else {
            return Ok(None);
        };
        match choices.iter().find(|(name, _)| *name == s) {
            Some((_, v)) => Ok(Some(*v)),
            None => {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                Err(Error::invalid(self.name(key), format!("{s:?} is not one of {}", names.join(", "))))
            }
        }
    }

    /// A nested object.
    pub fn object(&mut self, key: &'static str) -> Result<Option<Fields<'a>>, Error> {
        let name = self.name(key);
        match self.get(key) {
            None => Ok(None),
            Some(v) => Fields::new(v, &name).map(Some),
        }
    }

    pub fn array(&mut self, key: &'static str) -> Result<Option<&'a Vec<Value>>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(Error::invalid(self.name(key), format!("must be an array, got {v}"))),
        }
    }

    /// Every entry, for maps with free-form keys (headers); marks them all as read.
    pub fn map_entries(&mut self) -> Vec<(&'a String, &'a Value)> {
        let entries: Vec<_> = self.map.iter().collect();
        self.known.clear();
        self.free_form = true;
        entries
    }

    /// Every key that was not read is an error: a typo, or an option this version does not have.
    pub fn finish(self) -> Result<(), Error> {
        if self.free_form {
            return Ok(());
        }
        for key in self.map.keys() {
            if !self.known.contains(&key.as_str()) {
                return Err(Error::invalid(
                    self.name(key),
                    format!("unknown option (expected one of {})", self.known.join(", ")),
                ));
            }
        }
        Ok(())
    }
}
