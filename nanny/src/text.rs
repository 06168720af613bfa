//! Small parsers and matchers: escape translation, expect matching, HTTP status lists and the
//! load-average line. Pure functions, no I/O.

use std::ops::RangeInclusive;

/// Most bytes a regex expect is matched against (Piranha's 254-byte read buffer).
pub const REGEX_WINDOW: usize = 254;

/// Translates Piranha's escapes `\n \r \t \\ \' \"` (nanny `-T` turns this off). Any other
/// backslash sequence is kept as written.
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

/// The bytes of a `send` string: Piranha's escapes as [`translate_escapes`], plus the
/// extension `\xHH` (one byte, two hex digits), so that binary protocols such as DNS can
/// be probed with a real request. A `\x` not followed by two hex digits is kept as written.
pub fn translate_send(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\\x") {
        let (head, tail) = rest.split_at(i);
        // An escaped backslash before the x (`\\x`) is not a hex escape: let the plain
        // translation see it.
        let backslashes = head.bytes().rev().take_while(|b| *b == b'\\').count();
        let hex = tail.get(2..4).and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) if backslashes % 2 == 0 => {
                out.extend_from_slice(translate_escapes(head).as_bytes());
                out.push(b);
                rest = &tail[4..];
            }
            _ => {
                out.extend_from_slice(translate_escapes(&rest[..i + 2]).as_bytes());
                rest = &tail[2..];
            }
        }
    }
    out.extend_from_slice(translate_escapes(rest).as_bytes());
    out
}

/// How a reply is judged (`-x`, with `--regex`).
#[derive(Debug, Clone)]
pub enum Expect {
    /// `*`: any reply, or the server closing the connection (Piranha).
    Any,
    /// The reply must start with exactly these bytes.
    Prefix(Vec<u8>),
    /// The regex must match somewhere in the first [`REGEX_WINDOW`] bytes.
    Regex(regex::bytes::Regex),
}

/// The verdict on the bytes read so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Matches.
    Pass,
    /// Cannot match whatever comes next.
    Fail,
    /// Needs more bytes.
    More,
}

impl Expect {
    /// Builds the matcher for an (already escape-translated) expect string.
    pub fn new(expect: &str, regex: bool) -> Result<Self, regex::Error> {
        if regex {
            return Ok(Expect::Regex(regex::bytes::Regex::new(expect)?));
        }
        if expect == "*" {
            return Ok(Expect::Any);
        }
        Ok(Expect::Prefix(expect.as_bytes().to_vec()))
    }

    /// Judges `got`, the reply so far; `complete` = no more bytes will come (end of stream,
    /// a whole datagram, or the window is full).
    pub fn judge(&self, got: &[u8], complete: bool) -> Verdict {
        match self {
            Expect::Any if !got.is_empty() || complete => Verdict::Pass,
            Expect::Any => Verdict::More,
            Expect::Prefix(p) if got.len() >= p.len() => {
                if got.starts_with(p) {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                }
            }
            Expect::Prefix(p) if !p.starts_with(got) || complete => Verdict::Fail,
            Expect::Prefix(_) => Verdict::More,
            Expect::Regex(r) => {
                let window = &got[..got.len().min(REGEX_WINDOW)];
                if r.is_match(window) {
                    Verdict::Pass
                } else if complete || got.len() >= REGEX_WINDOW {
                    Verdict::Fail
                } else {
                    Verdict::More
                }
            }
        }
    }

    /// How many bytes to read at most.
    pub fn window(&self) -> usize {
        match self {
            Expect::Any => 1,
            Expect::Prefix(p) => p.len(),
            Expect::Regex(_) => REGEX_WINDOW,
        }
    }
}

/// A list of accepted HTTP status codes such as `200,204,300-399`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusList(Vec<RangeInclusive<u16>>);

impl Default for StatusList {
    /// `200-399`: success and redirects (redirects are not followed).
    fn default() -> Self {
        StatusList(vec![200..=399])
    }
}

impl StatusList {
    /// Parses `CODE` or `LOW-HIGH` items separated by commas, each within 100..=599.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for item in s.split(',').map(str::trim) {
            let code = |t: &str| {
                t.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .ok_or_else(|| format!("{t:?} is not an HTTP status code (100-599)"))
            };
            let range = match item.split_once('-') {
                Some((lo, hi)) => {
                    let (lo, hi) = (code(lo)?, code(hi)?);
                    if lo > hi {
                        return Err(format!("range {item:?} runs backwards"));
                    }
                    lo..=hi
                }
                None => {
                    let c = code(item)?;
                    c..=c
                }
            };
            out.push(range);
        }
        Ok(StatusList(out))
    }

    /// Whether `code` is accepted.
    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|r| r.contains(&code))
    }
}

impl std::fmt::Display for StatusList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if r.start() == r.end() {
                write!(f, "{}", r.start())?;
            } else {
                write!(f, "{}-{}", r.start(), r.end())?;
            }
        }
        Ok(())
    }
}

/// Why a load-monitor output was not usable (Piranha's two messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadParseError {
    /// No `load` in the output.
    #[error("failed to read remote load")]
    NoLoad,
    /// `load` found but no figure after it.
    #[error("bad load average returned")]
    BadFigure,
}

/// Reads the 1-minute load from `uptime`, `rup` or `ruptime` output: the text `load`, then
/// (optionally) `average`/`averages` and `:`, then a number ended by `,`, a blank or the end.
/// (`uptime`: `load average: 0.10, ...`; `rup`: `load average: 0.10, ...`; `ruptime`:
/// `load 0.10, ...`, Piranha #550126.)
pub fn parse_load(output: &str) -> Result<f64, LoadParseError> {
    let at = output.find("load").ok_or(LoadParseError::NoLoad)?;
    let mut rest = &output[at + "load".len()..];
    for word in ["s", " average", "s"] {
        rest = rest.strip_prefix(word).unwrap_or(rest);
    }
    let rest = rest.trim_start();
    let rest = rest.strip_prefix(':').unwrap_or(rest).trim_start();
    let end = rest
        .find(|c: char| c == ',' || c.is_whitespace())
        .unwrap_or(rest.len());
    rest[..end]
        .parse::<f64>()
        .ok()
        .filter(|l| l.is_finite() && *l >= 0.0)
        .ok_or(LoadParseError::BadFigure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            translate_escapes(r"GET / HTTP/1.0\r\n\r\n"),
            "GET / HTTP/1.0\r\n\r\n"
        );
        assert_eq!(translate_escapes(r#"\t\\\'\""#), "\t\\'\"");
        assert_eq!(translate_escapes(r"a\qb\"), "a\\qb\\");
        assert_eq!(translate_escapes("plain"), "plain");
    }

    #[test]
    fn prefix_expect() {
        let e = Expect::new("HTTP", false).expect("plain");
        assert_eq!(e.window(), 4);
        assert_eq!(e.judge(b"HT", false), Verdict::More);
        assert_eq!(e.judge(b"HT", true), Verdict::Fail);
        assert_eq!(e.judge(b"HTTP/1.0 200", false), Verdict::Pass);
        assert_eq!(e.judge(b"SSH-", false), Verdict::Fail);
        assert_eq!(e.judge(b"X", false), Verdict::Fail);
    }

    #[test]
    fn star_expect_passes_on_any_byte_or_close() {
        let e = Expect::new("*", false).expect("star");
        assert_eq!(e.judge(b"", false), Verdict::More);
        assert_eq!(e.judge(b"", true), Verdict::Pass);
        assert_eq!(e.judge(b"x", false), Verdict::Pass);
    }

    #[test]
    fn regex_expect_matches_anywhere_in_the_window() {
        let e = Expect::new("20[0-9] OK", true).expect("compiles");
        assert_eq!(e.judge(b"HTTP/1.1 200 OK\r\n", false), Verdict::Pass);
        assert_eq!(e.judge(b"HTTP/1.1 500", false), Verdict::More);
        assert_eq!(e.judge(b"HTTP/1.1 500", true), Verdict::Fail);
        let mut long = vec![b'x'; 300];
        long.extend_from_slice(b"200 OK");
        assert_eq!(e.judge(&long, false), Verdict::Fail);
        assert!(Expect::new("(", true).is_err());
    }

    #[test]
    fn status_lists() {
        let l = StatusList::parse("200,204,300-399").expect("valid");
        assert!(l.contains(200) && l.contains(204) && l.contains(302));
        assert!(!l.contains(201) && !l.contains(404));
        assert_eq!(l.to_string(), "200,204,300-399");
        assert_eq!(StatusList::default().to_string(), "200-399");
        assert!(StatusList::parse("").is_err());
        assert!(StatusList::parse("99").is_err());
        assert!(StatusList::parse("600").is_err());
        assert!(StatusList::parse("300-200").is_err());
        assert!(StatusList::parse("2xx").is_err());
    }

    #[test]
    fn load_lines() {
        let uptime = " 10:01:02 up 3 days,  2:03,  1 user,  load average: 0.52, 0.58, 0.59";
        assert_eq!(parse_load(uptime), Ok(0.52));
        let rup = "rs1    up  3 days,  2:03,   load average: 1.25, 0.58, 0.59";
        assert_eq!(parse_load(rup), Ok(1.25));
        let ruptime = "rs1  up  3+02:03,  1 user,   load 2.00, 0.58, 0.59";
        assert_eq!(parse_load(ruptime), Ok(2.0));
        let bsd = "10:01  up 3 days, 2 users, load averages: 0.30 0.20 0.10";
        assert_eq!(parse_load(bsd), Ok(0.3));
        assert_eq!(parse_load("load average: 7"), Ok(7.0));
        assert_eq!(parse_load("rs1 down"), Err(LoadParseError::NoLoad));
        assert_eq!(
            parse_load("load average: n/a"),
            Err(LoadParseError::BadFigure)
        );
    }

    #[test]
    fn send_strings_take_hex_bytes() {
        assert_eq!(translate_send(r"\x00\x01ab\n"), b"\x00\x01ab\n".to_vec());
        assert_eq!(translate_send(r"no\xzz"), br"no\xzz".to_vec());
        assert_eq!(translate_send(r"\\x41"), br"\x41".to_vec());
        assert_eq!(translate_send(r"\x4"), br"\x4".to_vec());
        assert_eq!(translate_send("plain"), b"plain".to_vec());
    }
}
