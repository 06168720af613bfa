//! The pieces of libc and libpopt whose behaviour ipvsadm's parser inherits, re-done in safe
//! Rust: the popt option scanner (short clusters, `--long[=value]`, optional arguments,
//! leftovers), `strtol`-based `string_to_number`, and `inet_aton`.
//!
//! Nothing here allocates per character or can panic on any input; all indexing is by
//! `char`, so non-ASCII arguments are handled (and rejected) like any other text.

use std::net::Ipv4Addr;

use super::error::PoptError;

/// Whether an option takes an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arg {
    /// `POPT_ARG_NONE`.
    None,
    /// `POPT_ARG_STRING`: the rest of the cluster, `=value`, or the next word (any word).
    Required,
    /// `POPT_ARG_STRING|POPT_ARGFLAG_OPTIONAL`: the next word only if it does not start with `-`.
    Optional,
}

/// One row of the option table: long name, short letter, argument kind, tag.
pub(crate) type OptDef<T> = (&'static str, Option<char>, Arg, T);

/// What the scanner returns for each option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event<T> {
    /// A known option with its argument, and the word it came from (for messages).
    Opt {
        tag: T,
        arg: Option<String>,
        word: String,
    },
    /// popt refused a word.
    Error { word: String, error: PoptError },
}

/// A popt context over `args` (argv without argv\[0\]).
#[derive(Debug)]
pub(crate) struct Scanner<'a, T: Copy> {
    table: &'a [OptDef<T>],
    args: &'a [String],
    next: usize,
    /// Remaining characters of a short-option cluster, and the word it came from.
    cluster: Option<(Vec<char>, usize, String)>,
    only_args: bool,
    /// Non-option words, in order (`poptGetArg`).
    pub leftovers: Vec<String>,
}

impl<'a, T: Copy> Scanner<'a, T> {
    pub(crate) fn new(table: &'a [OptDef<T>], args: &'a [String]) -> Self {
        Scanner {
            table,
            args,
            next: 0,
            cluster: None,
            only_args: false,
            leftovers: Vec::new(),
        }
    }

    /// The next option (`poptGetNextOpt`), `None` at the end.
    pub(crate) fn next_event(&mut self) -> Option<Event<T>> {
        if let Some(ev) = self.next_in_cluster() {
            return Some(ev);
        }
        loop {
            let word = self.args.get(self.next)?.clone();
            self.next += 1;
            if self.only_args || !word.starts_with('-') || word == "-" {
                self.leftovers.push(word);
                continue;
            }
            if word == "--" {
                self.only_args = true;
                continue;
            }
            if let Some(long) = word.strip_prefix("--") {
                return Some(self.long(long, &word));
            }
            let chars: Vec<char> = word.chars().skip(1).collect();
            self.cluster = Some((chars, 0, word));
            if let Some(ev) = self.next_in_cluster() {
                return Some(ev);
            }
        }
    }

    fn long(&mut self, long: &str, word: &str) -> Event<T> {
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (long, None),
        };
        let Some(&(_, _, kind, tag)) = self.table.iter().find(|d| d.0 == name) else {
            return bad(word, PoptError::UnknownOption);
        };
        let arg = match (kind, inline) {
            (Arg::None, Some(_)) => return bad(word, PoptError::UnwantedArgument),
            (Arg::None, None) => None,
            (_, Some(v)) => Some(v),
            (kind, None) => match self.take_next(kind) {
                Ok(a) => a,
                Err(e) => return bad(word, e),
            },
        };
        Event::Opt {
            tag,
            arg,
            word: word.to_string(),
        }
    }

    fn next_in_cluster(&mut self) -> Option<Event<T>> {
        let (chars, pos, word) = self.cluster.take()?;
        let c = *chars.get(pos)?;
        let Some(&(_, _, kind, tag)) = self.table.iter().find(|d| d.1 == Some(c)) else {
            return Some(bad(&word, PoptError::UnknownOption));
        };
        let rest: String = chars.iter().skip(pos + 1).collect();
        let arg = match kind {
            Arg::None => {
                if pos + 1 < chars.len() {
                    self.cluster = Some((chars, pos + 1, word.clone()));
                }
                None
            }
            _ if !rest.is_empty() => Some(rest.strip_prefix('=').unwrap_or(&rest).to_string()),
            kind => match self.take_next(kind) {
                Ok(a) => a,
                Err(e) => return Some(bad(&word, e)),
            },
        };
        Some(Event::Opt { tag, arg, word })
    }

    fn take_next(&mut self, kind: Arg) -> Result<Option<String>, PoptError> {
        match self.args.get(self.next) {
            None if kind == Arg::Optional => Ok(None),
            None => Err(PoptError::MissingArgument),
            Some(w) if kind == Arg::Optional && w.starts_with('-') => Ok(None),
            Some(w) => {
                self.next += 1;
                Ok(Some(w.clone()))
            }
        }
    }
}

fn bad<T>(word: &str, error: PoptError) -> Event<T> {
    Event::Error {
        word: word.to_string(),
        error,
    }
}

/// ipvsadm's `string_to_number`: `strtol(s, &end, 10)`, the whole string consumed, no
/// overflow, `min <= n <= max`.
pub(crate) fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    let n = strtol_whole(s)?;
    (min..=max).contains(&n).then_some(n)
}

/// `strtol(s, &end, 10)` requiring `*end == '\0'` and at least one digit; `None` on ERANGE.
pub(crate) fn strtol_whole(s: &str) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: i64 = 0;
    for b in digits.bytes() {
        let d = i64::from(b - b'0');
        n = n.checked_mul(10)?;
        n = if neg {
            n.checked_sub(d)?
        } else {
            n.checked_add(d)?
        };
    }
    Some(n)
}

/// glibc's `inet_aton`: 1 to 4 parts in decimal, octal (`0…`) or hex (`0x…`); the last part
/// fills the remaining bytes; trailing text after whitespace is ignored.
pub(crate) fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let s = s.split([' ', '\t', '\n', '\r', '\x0b', '\x0c']).next()?;
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut vals = Vec::with_capacity(4);
    for p in &parts {
        vals.push(aton_part(p)?);
    }
    let (last, head) = vals.split_last()?;
    if head.iter().any(|&v| v > 0xff) {
        return None;
    }
    let bits = 8 * (4 - head.len() as u32);
    if bits < 32 && *last >> bits != 0 {
        return None;
    }
    let mut addr: u32 = 0;
    for (i, v) in head.iter().enumerate() {
        addr |= (*v as u32) << (24 - 8 * i as u32);
    }
    addr |= *last as u32;
    Some(Ipv4Addr::from(addr))
}

/// One `inet_aton` part: must start with a digit; `0x` hex, `0` octal, else decimal.
fn aton_part(p: &str) -> Option<u64> {
    if !p.as_bytes().first()?.is_ascii_digit() {
        return None;
    }
    let (radix, digits) = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
        (16, h)
    } else if p.len() > 1 && p.starts_with('0') {
        (8, &p[1..])
    } else {
        (10, p)
    };
    let mut v: u64 = 0;
    for c in digits.chars() {
        v = v * u64::from(radix) + u64::from(c.to_digit(radix)?);
        if v > u64::from(u32::MAX) {
            return None;
        }
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_aton_forms() {
        let a = |s| inet_aton(s).map(|a| a.to_string());
        assert_eq!(a("10.1.2.3").as_deref(), Some("10.1.2.3"));
        assert_eq!(a("10.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(a("0x0a000001").as_deref(), Some("10.0.0.1"));
        assert_eq!(a("010.0.0.1").as_deref(), Some("8.0.0.1"));
        assert_eq!(a("1234").as_deref(), Some("0.0.4.210"));
        assert_eq!(a("24").as_deref(), Some("0.0.0.24"));
        assert_eq!(a("256.0.0.1"), None);
        assert_eq!(a("1.2.3.4.5"), None);
        assert_eq!(a("1.2.3."), None);
        assert_eq!(a("08.1.1.1"), None);
        assert_eq!(a("host.example"), None);
        assert_eq!(a(""), None);
        assert_eq!(a("é"), None);
    }

    #[test]
    fn strtol_like_libc() {
        assert_eq!(string_to_number("  +7", 0, 10), Some(7));
        assert_eq!(string_to_number("-0", 0, 10), Some(0));
        assert_eq!(string_to_number("7x", 0, 10), None);
        assert_eq!(string_to_number("", 0, 10), None);
        assert_eq!(string_to_number("99999999999999999999", 0, 10), None);
        assert_eq!(string_to_number("11", 0, 10), None);
    }
}
