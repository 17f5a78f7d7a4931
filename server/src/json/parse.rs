//! A JSON parser that sees every number literal, iterative so that no nesting can exhaust the stack.
//!
//! Why our own: serde_json (without `arbitrary_precision`, which would change number handling
//! for the whole workspace) hands a deserializer an already rounded f64, and its default float
//! parsing is not correctly rounded at the extremes (`1.7976931348623157e308` written out in
//! full by PostgreSQL reads as "number out of range"). Strings are still decoded by serde_json.

use serde_json::{Map, Number, Value};

use super::number;

/// What to do with a number literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbers {
    /// Refuse a literal a double does not hold exactly (the rule in [`number`]): client input.
    Exact,
    /// Take the nearest double, as `JSON.parse` does; one beyond the double range becomes `null`
    /// (as `JSON.stringify(JSON.parse(text))`): data already stored.
    Nearest,
}

/// Why a text was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON.
    #[error("{what} at line {line} column {column}")]
    Syntax { what: &'static str, line: usize, column: usize },
    /// Containers nested deeper than allowed.
    #[error("nested deeper than {0} levels")]
    TooDeep(usize),
    /// A number a double does not hold exactly, at `path` (e.g. `data.a.b[3]`).
    #[error("the number {literal} at {path} does not survive a round trip through an IEEE double")]
    Number { path: String, literal: String },
}

/// Parse `text` into a value. `root` names the text's root in number errors (`"data"` turns a
/// member `a` into `data.a`); containers may nest `max_depth` deep.
pub fn parse(text: &[u8], numbers: Numbers, max_depth: usize, root: &str) -> Result<Value, ParseError> {
    let mut parser = Parser { text, pos: 0, numbers, max_depth, root, stack: Vec::new() };
    let value = parser.value()?;
    parser.whitespace();
    if parser.pos < text.len() {
        return Err(parser.syntax("trailing characters"));
    }
    Ok(value)
}

/// A container being filled: an array's items, or an object's members and the pending key.
enum Frame {
    Array(Vec<Value>),
    Object(Map<String, Value>, String),
}

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
    numbers: Numbers,
    max_depth: usize,
    root: &'a str,
    stack: Vec<Frame>,
}

impl Parser<'_> {
    /// One whole value, containers included, without recursion.
    fn value(&mut self) -> Result<Value, ParseError> {
        loop {
            self.whitespace();
            let mut value = match self.peek() {
                Some(b'{') | Some(b'[') if self.stack.len() >= self.max_depth => {
                    return Err(ParseError::TooDeep(self.max_depth))
                }
                Some(b'{') => {
                    self.pos += 1;
                    self.whitespace();
                    if self.eat(b'}') {
                        Value::Object(Map::new())
                    } else {
                        let key = self.key()?;
                        self.stack.push(Frame::Object(Map::new(), key));
                        continue;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    self.whitespace();
                    if self.eat(b']') {
                        Value::Array(Vec::new())
                    } else {
                        self.stack.push(Frame::Array(Vec::new()));
                        continue;
                    }
                }
                Some(b'"') => Value::String(self.string()?),
                Some(b't') => self.word("true", Value::Bool(true))?,
                Some(b'f') => self.word("false", Value::Bool(false))?,
                Some(b'n') => self.word("null", Value::Null)?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(_) => return Err(self.syntax("expected a value")),
                None => return Err(self.syntax("unexpected end of input")),
            };
            // Hand the finished value to its container; close containers that end here.
            loop {
                self.whitespace();
                match self.stack.last_mut() {
                    None => return Ok(value),
                    Some(Frame::Array(items)) => {
                        items.push(value);
                        if self.eat(b',') {
                            break;
                        }
                        if !self.eat(b']') {
                            return Err(self.syntax("expected `,` or `]`"));
                        }
                    }
                    Some(Frame::Object(members, key)) => {
                        members.insert(std::mem::take(key), value);
                        if self.eat(b',') {
                            self.whitespace();
                            let next = self.key()?;
                            if let Some(Frame::Object(_, key)) = self.stack.last_mut() {
                                *key = next;
                            }
                            break;
                        }
                        if !self.eat(b'}') {
                            return Err(self.syntax("expected `,` or `}`"));
                        }
                    }
                }
                value = match self.stack.pop() {
                    Some(Frame::Array(items)) => Value::Array(items),
                    Some(Frame::Object(members, _)) => Value::Object(members),
                    None => return Err(self.syntax("unbalanced container")),
                };
            }
        }
    }

    /// `"key"` then `:`.
    fn key(&mut self) -> Result<String, ParseError> {
        if self.peek() != Some(b'"') {
            return Err(self.syntax("expected a string key"));
        }
        let key = self.string()?;
        self.whitespace();
        if !self.eat(b':') {
            return Err(self.syntax("expected `:`"));
        }
        Ok(key)
    }

    /// A string token, decoded by serde_json (escapes, surrogate pairs, UTF-8, control characters).
    fn string(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        let end = string_end(self.text, start).ok_or_else(|| self.syntax("unterminated string"))?;
        let token = self.text.get(start..end).unwrap_or_default();
        let decoded = serde_json::from_slice::<String>(token).map_err(|_| self.syntax("invalid string"))?;
        self.pos = end;
        Ok(decoded)
    }

    fn word(&mut self, word: &'static str, value: Value) -> Result<Value, ParseError> {
        if self.text.get(self.pos..self.pos + word.len()) == Some(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.syntax("expected a value"))
        }
    }

    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        while self.peek().is_some_and(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')) {
            self.pos += 1;
        }
        let literal = std::str::from_utf8(self.text.get(start..self.pos).unwrap_or_default()).unwrap_or_default();
        if !number::is_json_number(literal) {
            self.pos = start;
            return Err(self.syntax("invalid number"));
        }
        match (self.numbers, number_value(literal, self.numbers)) {
            (_, Some(value)) => Ok(value),
            (Numbers::Nearest, None) => Ok(Value::Null),
            (Numbers::Exact, None) => Err(ParseError::Number { path: self.path(), literal: abbreviate(literal) }),
        }
    }

    /// The path of the value being parsed, from the container stack.
    fn path(&self) -> String {
        let mut path = self.root.to_string();
        for frame in &self.stack {
            match frame {
                Frame::Array(items) => path.push_str(&format!("[{}]", items.len())),
                Frame::Object(_, key) if is_identifier(key) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                Frame::Object(_, key) => {
                    path.push_str(&format!("[{}]", serde_json::to_string(key).unwrap_or_default()));
                }
            }
        }
        if path.is_empty() {
            path.push_str("the body");
        }
        path
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn syntax(&self, what: &'static str) -> ParseError {
        let before = self.text.get(..self.pos).unwrap_or(self.text);
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let column = 1 + before.iter().rev().take_while(|&&b| b != b'\n').count();
        ParseError::Syntax { what, line, column }
    }
}

/// The index just past the string token starting at `start` (a `"`), honouring backslash escapes.
pub(super) fn string_end(text: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match text.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The value for a number literal under `numbers`; `None` when refused or beyond the double range.
/// An integer literal that fits i64/u64 stays an integer (as serde_json parses it); others are doubles.
pub(super) fn number_value(literal: &str, numbers: Numbers) -> Option<Value> {
    let exact = number::exact_double(literal);
    let double = match numbers {
        Numbers::Exact => exact?,
        Numbers::Nearest => exact.or_else(|| number::nearest_double(literal))?,
    };
    let integer_form = !literal.contains(['.', 'e', 'E']);
    if integer_form && exact.is_some() {
        if let Ok(n) = literal.parse::<u64>() {
            return Some(Value::Number(n.into()));
        }
        if let Ok(n) = literal.parse::<i64>() {
            return Some(Value::Number(n.into()));
        }
    }
    let double = if double == 0.0 { 0.0 } else { double };
    Number::from_f64(double).map(Value::Number)
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// A literal for an error message: at most 40 characters.
fn abbreviate(literal: &str) -> String {
    if literal.len() <= 40 {
        literal.to_string()
    } else {
        format!("{}…({} digits)", &literal[..24], literal.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exact(text: &str) -> Result<Value, ParseError> {
        parse(text.as_bytes(), Numbers::Exact, 128, "")
    }

    #[test]
    fn documents_parse_as_serde_json_parses_them() {
        let text = r#" {"a": [1, -2, 0.5, "x\u00e9\n", true, false, null, {}, []], "b": {"c": 1e2}, "a2": "é"} "#;
        assert_eq!(exact(text).unwrap(), serde_json::from_str::<Value>(text).unwrap());
        assert_eq!(exact("-0").unwrap(), json!(0));
        assert_eq!(exact("[-0.0]").unwrap(), json!([0.0]));
        assert!(exact("[-0.0]").unwrap()[0].as_f64().is_some_and(|f| f.is_sign_positive()));
    }

    #[test]
    fn a_refused_number_names_its_path() {
        let err = exact(r#"{"data": {"a": {"b": [0, 1, 2, 1e400]}}}"#).unwrap_err();
        assert_eq!(err, ParseError::Number { path: "data.a.b[3]".into(), literal: "1e400".into() });
        let err = parse(br#"{"x y": [[7, 1e-400]]}"#, Numbers::Exact, 128, "data").unwrap_err();
        assert!(matches!(err, ParseError::Number { path, .. } if path == r#"data["x y"][0][1]"#));
        let err = exact("123456789012345678901234567890").unwrap_err();
        assert!(matches!(err, ParseError::Number { path, .. } if path == "the body"));
    }

    #[test]
    fn stored_numbers_read_as_json_parse_reads_them() {
        let text = format!(
            "[17976931348623157{}, 0.{}5, 1e400, 123456789012345678901234567890]",
            "0".repeat(292),
            "0".repeat(323)
        );
        let value = parse(text.as_bytes(), Numbers::Nearest, 128, "").unwrap();
        assert_eq!(value, json!([f64::MAX, 5e-324, null, 1.2345678901234568e29]));
    }

    #[test]
    fn malformed_text_is_a_syntax_error_never_a_panic() {
        for bad in [
            "",
            "{",
            "[1,]",
            "[1 2]",
            "{\"a\" 1}",
            "{\"a\":}",
            "{1:2}",
            "\"abc",
            "\"\\",
            "01",
            "1.",
            "-",
            "tru",
            "[1]x",
            "\"\\ud800\"",
            "\"a\u{1}b\"",
            "{\"a\":1,}",
            "]",
            "nul",
            "[\"\\",
        ] {
            assert!(matches!(exact(bad), Err(ParseError::Syntax { .. })), "{bad:?}");
        }
        assert!(parse(b"\"\xff\"", Numbers::Exact, 128, "").is_err());
    }

    #[test]
    fn nesting_is_bounded_without_recursion() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(exact(&deep(128)).is_ok());
        assert_eq!(exact(&deep(129)), Err(ParseError::TooDeep(128)));
        let very = deep(200_000);
        assert_eq!(parse(very.as_bytes(), Numbers::Nearest, 1000, ""), Err(ParseError::TooDeep(1000)));
    }
}
