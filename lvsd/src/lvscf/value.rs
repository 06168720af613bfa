//! Value syntaxes of `lvs.cf`, independent of keywords and locations.
//!
//! All functions are total: they return `None`/`Err` on bad input and never panic.

use std::net::Ipv4Addr;
use std::time::Duration;

/// Why a string is not an acceptable C integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntError {
    /// Empty, no digits, or trailing junk (`strtol` would leave characters unread).
    Syntax,
    /// Does not fit in an `i64` (`strtol` would clamp and set `ERANGE`).
    Overflow,
}

/// nanny's escape translation of `send`/`expect` (`\n \r \t \\ \' \"`; any other backslash
/// sequence stays), so lvs.cf validation sees an `expect` regex as nanny will compile it.
pub fn translate_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(q @ ('\\' | '\'' | '"')) => out.push(q),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Parses an integer like C `strtol(s, &end, 0)` with `*end == '\0'` required: optional sign,
/// then `0x`/`0X` hexadecimal, a leading `0` for octal, or decimal. Leading blanks are not
/// accepted (tokens never have them). Unlike `strtol`, overflow is an error, not a clamp.
pub fn parse_c_long(s: &str) -> Result<i64, IntError> {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, body) = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, hex)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return Err(IntError::Syntax);
    }
    let mut value: i64 = 0;
    for c in body.chars() {
        let d = i64::from(c.to_digit(radix).ok_or(IntError::Syntax)?);
        value = value
            .checked_mul(i64::from(radix))
            .and_then(|v| {
                if negative {
                    v.checked_sub(d)
                } else {
                    v.checked_add(d)
                }
            })
            .ok_or(IntError::Overflow)?;
    }
    Ok(value)
}

/// A strict dotted quad `a.b.c.d` (each 0..=255, no leading zeros), as Rust's parser reads it.
pub fn parse_dotted_quad(s: &str) -> Option<Ipv4Addr> {
    s.parse().ok()
}

/// Whether `mask` is contiguous ones followed by zeros (0.0.0.0 and 255.255.255.255 included).
pub fn is_contiguous_mask(mask: Ipv4Addr) -> bool {
    let m = u32::from(mask);
    m.leading_ones() + m.trailing_zeros() == 32
}

/// Seconds as written for `keepalive`/`deadtime`: a C integer, or a decimal fraction
/// `D.D` with up to nine fractional digits (`0.2`, `1.5`, `.5`). Sign not accepted.
pub fn parse_seconds(s: &str) -> Option<Duration> {
    if let Some((int, frac)) = s.split_once('.') {
        let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty())
            || !all_digits(int)
            || !all_digits(frac)
            || frac.len() > 9
        {
            return None;
        }
        let secs: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let nanos: u32 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<9}").parse().ok()?
        };
        return Some(Duration::new(secs, nanos));
    }
    let n = parse_c_long(s).ok()?;
    u64::try_from(n).ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_integers() {
        assert_eq!(parse_c_long("0"), Ok(0));
        assert_eq!(parse_c_long("42"), Ok(42));
        assert_eq!(parse_c_long("0x1F"), Ok(31));
        assert_eq!(parse_c_long("0X1f"), Ok(31));
        assert_eq!(parse_c_long("017"), Ok(15));
        assert_eq!(parse_c_long("-5"), Ok(-5));
        assert_eq!(parse_c_long("+5"), Ok(5));
        assert_eq!(parse_c_long("-0x10"), Ok(-16));
        assert_eq!(parse_c_long("00"), Ok(0));
        for bad in [
            "", "-", "0x", "08", "09", "1a", "abc", " 1", "1 ", "0x1g", "--1", "1.0",
        ] {
            assert_eq!(parse_c_long(bad), Err(IntError::Syntax), "{bad:?}");
        }
        assert_eq!(parse_c_long("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_c_long("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_c_long("9223372036854775808"), Err(IntError::Overflow));
    }

    #[test]
    fn masks() {
        for ok in ["0.0.0.0", "255.255.255.255", "255.255.255.0", "255.128.0.0"] {
            assert!(is_contiguous_mask(ok.parse().unwrap()), "{ok}");
        }
        for bad in [
            "255.0.255.0",
            "0.0.0.255",
            "255.255.255.254.".trim_end_matches('.'),
        ] {
            let m: Ipv4Addr = bad.parse().unwrap();
            assert_eq!(is_contiguous_mask(m), bad == "255.255.255.254", "{bad}");
        }
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_seconds("0x10"), Some(Duration::from_secs(16)));
        assert_eq!(parse_seconds("0.2"), Some(Duration::from_millis(200)));
        assert_eq!(parse_seconds(".5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_seconds("1."), Some(Duration::from_secs(1)));
        assert_eq!(parse_seconds("1.000000001"), Some(Duration::new(1, 1)));
        for bad in [".", "1.0000000001", "-1", "1.-5", "a.b", "1e3", "1.2.3"] {
            assert_eq!(parse_seconds(bad), None, "{bad:?}");
        }
    }
}
