//! Stored JSON text as clients read it: PostgreSQL's `jsonb` text with every number replaced by
//! the double `JSON.parse` reads for it, printed as serde_json prints that double.
//!
//! Why text and not a value: PostgreSQL accepts nesting far deeper than a value can be built,
//! serialized and dropped on a 2 MiB stack (about 10,000 levels with its default
//! `max_stack_depth`), and prints numbers in full (`Number.MAX_VALUE` as 309 digits, `5e-324`
//! as 324 decimals), which serde_json's default parser reads as "out of range". This pass is
//! one loop over the bytes: it never recurses and never fails on what PostgreSQL prints.
//! Numbers written through a gateway read back as written (the rule in [`super::number`]); one
//! stored around it reads as its nearest double, or `null` beyond the double range (what
//! `JSON.stringify(JSON.parse(text))` gives).

use super::parse::{number_value, string_end, Numbers};

/// `text` with numbers rewritten and whitespace outside strings dropped, and how many numbers
/// were beyond the double range (now `null`). `None` when `text` holds an invalid number or an
/// unterminated string, which PostgreSQL never prints.
pub fn rewrite(text: &str) -> Option<(String, usize)> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut beyond = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'"' => {
                let end = string_end(bytes, i)?;
                out.push_str(text.get(i..end)?);
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while bytes.get(i).is_some_and(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')) {
                    i += 1;
                }
                match number_value(text.get(start..i)?, Numbers::Nearest) {
                    Some(n) => out.push_str(&n.to_string()),
                    None if super::number::is_json_number(text.get(start..i)?) => {
                        beyond += 1;
                        out.push_str("null");
                    }
                    None => return None,
                }
            }
            _ => {
                let start = i;
                while bytes
                    .get(i)
                    .is_some_and(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'-' | b'0'..=b'9'))
                {
                    i += 1;
                }
                out.push_str(text.get(start..i)?);
            }
        }
    }
    Some((out, beyond))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_json_parse_reads_them_and_strings_stay_verbatim() {
        let max = format!("17976931348623157{}", "0".repeat(292));
        let tiny = format!("0.{}5", "0".repeat(323));
        let text = format!(r#"{{"a": [{max}, {tiny}, -0.0, 100, 1.0, 1e400], "s": "1e400 \" \\ é", "t": true}}"#);
        let (out, beyond) = rewrite(&text).unwrap();
        assert_eq!(out, r#"{"a":[1.7976931348623157e+308,5e-324,0.0,100,1.0,null],"s":"1e400 \" \\ é","t":true}"#);
        assert_eq!(beyond, 1);
        let legacy = rewrite(r#"{"n": 123456789012345678901234567890, "m": 1152921504606846976}"#).unwrap().0;
        assert_eq!(legacy, r#"{"n":1.2345678901234568e+29,"m":1.152921504606847e+18}"#);
    }

    #[test]
    fn any_nesting_rewrites_without_recursion() {
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(rewrite(&deep).unwrap().0, deep);
    }

    #[test]
    fn text_postgresql_never_prints_is_refused_not_a_panic() {
        for bad in ["\"abc", "[1.]", "[--1]", "[1e]", "\"\\"] {
            assert_eq!(rewrite(bad), None, "{bad:?}");
        }
    }
}
