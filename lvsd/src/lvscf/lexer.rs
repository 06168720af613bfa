//! Stage 0: bytes → lines of tokens.
//!
//! Contract:
//! - Lines end at `\r\n`, `\n` or a lone `\r`; each counts as **one** line, so line numbers of
//!   CRLF files are right (Piranha doubled them).
//! - Blanks are space and tab only. A line whose first non-blank character is `#` is a comment;
//!   a `#` later in a line is an ordinary character (Piranha compatible).
//! - A token starting with `"` or `'` runs to the matching quote on the same line and may hold
//!   blanks; inside it a backslash makes the next character ordinary, so `\"` does not close a
//!   double-quoted token. Nothing is unescaped: the token text is kept verbatim, quotes
//!   included ([`Token::value`] strips the pair). A quoted token ends at its closing quote;
//!   characters right after it start a new token.
//! - Extension: the first `=` of a statement may touch its neighbours (`port=80`,
//!   `port =80`, `port= 80`): a `=` right after the first word is its own token. Any other
//!   `=` is an ordinary character (`expect = a=b` is one value).
//!
//! Never panics on any input.

use super::error::{Location, LvsCfError};
use std::borrow::Cow;

/// One token of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The text as written, quotes included.
    pub text: String,
    /// The quote character if the token was quoted.
    pub quote: Option<char>,
}

impl Token {
    /// The token without its surrounding quotes (escapes untouched).
    pub fn value(&self) -> &str {
        match self.quote {
            Some(q) => self
                .text
                .strip_prefix(q)
                .and_then(|t| t.strip_suffix(q))
                .unwrap_or(&self.text),
            None => &self.text,
        }
    }

    /// Whether this is the bare `=` separator (a quoted `"="` is not).
    pub fn is_equals(&self) -> bool {
        self.quote.is_none() && self.text == "="
    }
}

/// A non-blank, non-comment line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number.
    pub number: usize,
    /// Its tokens (never empty).
    pub tokens: Vec<Token>,
}

/// The lexed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexed {
    /// The statement lines, in order.
    pub lines: Vec<Line>,
    /// Number of the last line of the file (at least 1).
    pub last_line: usize,
}

/// Converts raw bytes to text. Invalid UTF-8 inside a comment line (Latin-1 accents written
/// by an old editor, say) is replaced with U+FFFD, since comments carry no meaning; anywhere
/// else it is an error naming the line.
pub fn decode<'a>(file: &str, bytes: &'a [u8]) -> Result<Cow<'a, str>, LvsCfError> {
    let mut text = String::new();
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) if text.is_empty() && rest.len() == bytes.len() => {
                return Ok(Cow::Borrowed(valid));
            }
            Ok(valid) => {
                text.push_str(valid);
                return Ok(Cow::Owned(text));
            }
            Err(e) => {
                let (valid, bad) = rest.split_at(e.valid_up_to());
                text.push_str(std::str::from_utf8(valid).expect("checked by valid_up_to"));
                let line_start = text.rfind(['\n', '\r']).map_or(0, |i| i + 1);
                if !text[line_start..]
                    .trim_start_matches([' ', '\t'])
                    .starts_with('#')
                {
                    let before = bytes.len() - rest.len() + e.valid_up_to();
                    return Err(LvsCfError::NotUtf8 {
                        at: Location {
                            file: file.to_owned(),
                            line: count_terminators(bytes.get(..before).unwrap_or_default()) + 1,
                        },
                    });
                }
                text.push(char::REPLACEMENT_CHARACTER);
                let skip = e.error_len().unwrap_or(bad.len());
                rest = bad.get(skip..).unwrap_or_default();
            }
        }
    }
}

/// Counts line terminators (`\r\n` once, lone `\r`, `\n`) in raw bytes.
fn count_terminators(bytes: &[u8]) -> usize {
    let mut n = 0;
    let mut prev_cr = false;
    for &b in bytes {
        match b {
            b'\n' if prev_cr => {}
            b'\n' | b'\r' => n += 1,
            _ => {}
        }
        prev_cr = b == b'\r';
    }
    n
}

/// Splits text into lines at `\r\n`, `\n` or lone `\r`, without the terminators.
pub fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(['\r', '\n']) {
            Some(i) => {
                let line = &s[..i];
                let skip = if s[i..].starts_with("\r\n") { 2 } else { 1 };
                let after = &s[i + skip..];
                // A terminator at the very end does not start another line.
                rest = if after.is_empty() { None } else { Some(after) };
                Some(line)
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Lexes a whole file.
pub fn lex(file: &str, text: &str) -> Result<Lexed, LvsCfError> {
    let mut lines = Vec::new();
    let mut last_line = 1;
    for (i, raw) in split_lines(text).enumerate() {
        let number = i + 1;
        last_line = number;
        let trimmed = raw.trim_start_matches(is_blank);
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let tokens = lex_line(trimmed).map_err(|quote| LvsCfError::QuotationMismatch {
            at: Location {
                file: file.to_owned(),
                line: number,
            },
            quote,
        })?;
        if !tokens.is_empty() {
            lines.push(Line { number, tokens });
        }
    }
    Ok(Lexed { lines, last_line })
}

/// Lexes one line; `Err(quote)` on an unterminated quoted token.
fn lex_line(line: &str) -> Result<Vec<Token>, char> {
    let mut tokens: Vec<Token> = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if is_blank(c) {
            chars.next();
            continue;
        }
        if c == '"' || c == '\'' {
            chars.next();
            let mut end = None;
            while let Some((i, ch)) = chars.next() {
                if ch == '\\' {
                    chars.next();
                } else if ch == c {
                    end = Some(i + ch.len_utf8());
                    break;
                }
            }
            let end = end.ok_or(c)?;
            tokens.push(Token {
                text: line[start..end].to_owned(),
                quote: Some(c),
            });
            continue;
        }
        if c == '=' && tokens.len() <= 1 {
            chars.next();
            tokens.push(Token {
                text: "=".to_owned(),
                quote: None,
            });
            continue;
        }
        let first_word = tokens.is_empty();
        let mut end = line.len();
        while let Some(&(i, ch)) = chars.peek() {
            if is_blank(ch) || (first_word && ch == '=') {
                end = i;
                break;
            }
            chars.next();
        }
        tokens.push(Token {
            text: line[start..end].to_owned(),
            quote: None,
        });
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        lex_line(line)
            .unwrap()
            .into_iter()
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn splits_all_line_endings_once() {
        let v: Vec<_> = split_lines("a\r\nb\nc\rd\r\n").collect();
        assert_eq!(v, ["a", "b", "c", "d"]);
        let v: Vec<_> = split_lines("a\n\nb").collect();
        assert_eq!(v, ["a", "", "b"]);
        assert_eq!(split_lines("").collect::<Vec<_>>(), [""]);
    }

    #[test]
    fn tokens_and_equals_forms() {
        assert_eq!(texts("port = 80"), ["port", "=", "80"]);
        assert_eq!(texts("port=80"), ["port", "=", "80"]);
        assert_eq!(texts("port =80"), ["port", "=", "80"]);
        assert_eq!(texts("port= 80"), ["port", "=", "80"]);
        assert_eq!(texts("expect = a=b"), ["expect", "=", "a=b"]);
        assert_eq!(
            texts("address = 1.2.3.4\teth0:1"),
            ["address", "=", "1.2.3.4", "eth0:1"]
        );
        assert_eq!(texts("= 5"), ["=", "5"]);
        assert_eq!(texts("virtual http {"), ["virtual", "http", "{"]);
    }

    #[test]
    fn quoted_tokens_keep_text_and_escapes() {
        let t = lex_line(r#"send = "GET / HTTP/1.0\r\n\"x\"" tail"#).unwrap();
        assert_eq!(t[2].text, r#""GET / HTTP/1.0\r\n\"x\"""#);
        assert_eq!(t[2].value(), r#"GET / HTTP/1.0\r\n\"x\""#);
        assert_eq!(t[3].text, "tail");
        let t = lex_line("expect = 'a b'").unwrap();
        assert_eq!(t[2].value(), "a b");
        assert_eq!(lex_line(r#"send = "abc"#), Err('"'));
        assert_eq!(lex_line(r#"send = "abc\""#), Err('"'));
        assert_eq!(texts(r#"x = "a"b"#), ["x", "=", "\"a\"", "b"]);
        assert!(!lex_line(r#"x "=" 1"#).unwrap()[1].is_equals());
    }

    #[test]
    fn comments_and_blank_lines() {
        let l = lex("f", "# c\n   \n\t# c2\nport = 80 # not a comment\n").unwrap();
        assert_eq!(l.lines.len(), 1);
        assert_eq!(l.lines[0].number, 4);
        assert_eq!(l.lines[0].tokens.len(), 7);
        assert_eq!(l.last_line, 4);
    }

    #[test]
    fn not_utf8_names_the_line() {
        let e = decode("f.cf", b"a\nb\n\xff\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.cf:3: expected UTF-8 text, found an invalid byte sequence"
        );
    }
}
