//! The number rule: a JSON number is stored only if it survives a trip through an IEEE double.
//!
//! Why: every reader of a document holds its numbers as doubles (JavaScript's `JSON.parse`,
//! the SDK, a cache evaluating a query), while PostgreSQL's `jsonb` keeps the exact decimal.
//! If the gateway stored `123456789012345678901234567890`, PostgreSQL would compare and sort
//! one value and every client another (`1.2345678901234568e+29`). So a literal is accepted
//! iff the nearest double, printed back as its shortest round-trip representation (what
//! `JSON.stringify` and serde_json print: the fewest digits that read back as the same
//! double, the closest such when there is a choice, the even one on a tie), denotes the same
//! decimal value as the literal. The comparison is of values, not text: `1.0` and `1`, `1e2`
//! and `100`, `-0` and `0` are each one value, and `0.1` passes because the double nearest
//! 0.1 prints as `0.1`.
//! Refused: overflow to infinity (`1e400`), underflow to zero (`1e-400`), digits beyond a
//! double's precision (`1.000000000000000000001`, `9007199254740993`), and even a double's
//! exact value when it is not the shortest form (2^60 written as `1152921504606846976`:
//! JavaScript prints that double as `1152921504606847000`). So every stored number is a fixed
//! point: what a client reads and writes back is what PostgreSQL already holds.

/// A finite decimal value: `0.d₁d₂d₃… × 10^exponent` with no leading or trailing zero digit;
/// zero has no digits and is never negative (-0 and 0 are one value here, as in PostgreSQL's
/// `numeric`).
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exponent: i64,
}

/// Exponents are saturated here: a value that far out is infinite or zero as a double anyway.
const EXPONENT_LIMIT: i64 = 1 << 60;

/// Whether `literal` is a JSON number (RFC 8259: `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`).
pub fn is_json_number(literal: &str) -> bool {
    let b = literal.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// The decimal value of a JSON number literal (`None` when it is not one).
fn decimal(literal: &str) -> Option<Decimal> {
    if !is_json_number(literal) {
        return None;
    }
    let (negative, rest) = match literal.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, literal),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], parse_exponent(&rest[i + 1..])),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = int.bytes().chain(frac.bytes());
    let leading = all.clone().take_while(|&d| d == b'0').count();
    let mut digits: Vec<u8> = all.skip(leading).collect();
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits.is_empty() {
        return Some(Decimal { negative: false, digits, exponent: 0 });
    }
    let exponent = (int.len() as i64 - leading as i64 + exponent).clamp(-EXPONENT_LIMIT, EXPONENT_LIMIT);
    Some(Decimal { negative, digits, exponent })
}

/// `[+-]?[0-9]+` as an i64, saturated at ±[`EXPONENT_LIMIT`].
fn parse_exponent(text: &str) -> i64 {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = digits
        .bytes()
        .fold(0i64, |acc, d| acc.saturating_mul(10).saturating_add(i64::from(d - b'0')))
        .min(EXPONENT_LIMIT);
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

/// The double `JSON.parse` reads for `literal` (correctly rounded), if it is a JSON number
/// and finite. Literals that underflow read as 0.
pub fn nearest_double(literal: &str) -> Option<f64> {
    if !is_json_number(literal) {
        return None;
    }
    literal.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// The double for `literal` when it survives the trip exactly (the rule above), else `None`.
pub fn exact_double(literal: &str) -> Option<f64> {
    let value = nearest_double(literal)?;
    // serde_json prints a double with ryu: the shortest digits that read back as the same
    // double, the closest when several are as short, the even one on a tie, exactly as
    // JavaScript's Number::toString (checked on 200,000 random doubles against Node 20). Rust's
    // own `{:e}` differs on ties (`-1256103804129999.3` where JavaScript prints `.2`).
    let shortest = serde_json::to_string(&value).ok()?;
    (decimal(&shortest)? == decimal(literal)?).then_some(if value == 0.0 { 0.0 } else { value })
}

/// Whether two JSON number literals denote the same decimal value (`1e2` and `100.0` do).
pub fn same_value(a: &str, b: &str) -> bool {
    matches!((decimal(a), decimal(b)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_a_double_holds_exactly_as_printed_are_accepted() {
        for literal in [
            "0",
            "-0",
            "-0.0",
            "0e99999999999999999999",
            "1",
            "1.0",
            "1e2",
            "1E+2",
            "100",
            "0.1",
            "-0.1",
            "0.30000000000000004",
            "9007199254740992",
            "1152921504606847000",
            "1e300",
            "1.7976931348623157e308",
            "-1.7976931348623157e308",
            "2.2250738585072014e-308",
            "5e-324",
            "123.456e-2",
            "-1256103804129999.2",
        ] {
            assert!(exact_double(literal).is_some(), "{literal}");
        }
    }

    #[test]
    fn values_a_double_would_change_are_refused() {
        for literal in [
            "123456789012345678901234567890",
            "1.000000000000000000001",
            "9007199254740993",
            "18446744073709551615",
            "1152921504606846976",
            "1e400",
            "-1e400",
            "1e-400",
            "1e-99999999999999999999",
            "4.9406564584124654e-324",
            "1.7976931348623158e308",
            "0.10000000000000001",
            "-1256103804129999.3",
        ] {
            assert_eq!(exact_double(literal), None, "{literal}");
        }
    }

    #[test]
    fn negative_zero_becomes_zero() {
        assert_eq!(exact_double("-0").map(f64::is_sign_negative), Some(false));
        assert_eq!(exact_double("-0.0e5").map(f64::is_sign_negative), Some(false));
    }

    #[test]
    fn only_json_number_syntax_is_a_number() {
        for bad in ["", "-", "+1", ".5", "1.", "01", "1e", "1e+", "0x10", "inf", "NaN", "1 ", "--1"] {
            assert!(!is_json_number(bad), "{bad:?}");
            assert_eq!(nearest_double(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn values_compare_by_decimal_value_not_text() {
        assert!(same_value("1e2", "100.0"));
        assert!(same_value("-0", "0e7"));
        assert!(same_value("0.00123", "1.23e-3"));
        assert!(!same_value("1", "-1"));
        assert!(!same_value("1", "10"));
    }

    #[test]
    fn nearest_double_is_what_json_parse_reads() {
        assert_eq!(nearest_double("1e-400"), Some(0.0));
        assert_eq!(nearest_double("1e400"), None);
        assert_eq!(nearest_double("123456789012345678901234567890"), Some(1.2345678901234568e29));
        let max = format!("17976931348623157{}", "0".repeat(292));
        assert_eq!(nearest_double(&max), Some(f64::MAX));
    }
}
