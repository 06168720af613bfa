//! HTTP/1.1 framing for the lab tools: just enough for GET with keep-alive and a
//! `Content-Length` body. Not a general HTTP implementation.

use std::io::{self, BufRead, Read};

/// Longest request or response head accepted.
pub const MAX_HEAD: u64 = 16 * 1024;

/// A request or response head: the start line and the headers (names lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// `GET /x HTTP/1.1` or `HTTP/1.1 200 OK`.
    pub start: String,
    /// Headers in order, names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `Content-Length`, 0 when absent.
    pub fn content_length(&self) -> io::Result<u64> {
        self.header("content-length")
            .map_or(Ok(0), |v| v.parse().map_err(|_| bad("bad Content-Length")))
    }

    fn version(&self, request: bool) -> &str {
        let mut parts = self.start.split_whitespace();
        if request {
            parts.nth(2).unwrap_or("")
        } else {
            parts.next().unwrap_or("")
        }
    }

    /// Whether the connection stays open after this message (request: `true`, response:
    /// `false` for the start line's position of the version).
    pub fn keep_alive(&self, request: bool) -> bool {
        let conn = self.header("connection").map(str::to_ascii_lowercase);
        match self.version(request) {
            "HTTP/1.1" => conn.as_deref() != Some("close"),
            _ => conn.as_deref() == Some("keep-alive"),
        }
    }

    /// Path of a request (`/bulk?bytes=10`).
    pub fn path(&self) -> &str {
        self.start.split_whitespace().nth(1).unwrap_or("/")
    }

    /// Status code of a response.
    pub fn status(&self) -> Option<u16> {
        self.start.split_whitespace().nth(1)?.parse().ok()
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// Reads one head. `Ok(None)` on a clean end of stream before the first byte (the peer closed
/// an idle keep-alive connection).
pub fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut limited = r.take(MAX_HEAD);
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = limited.read_until(b'\n', &mut line)?;
        if n == 0 {
            if lines.is_empty() {
                return Ok(None);
            }
            return Err(bad("end of stream inside a head"));
        }
        if !line.ends_with(b"\n") {
            return Err(bad("head too long"));
        }
        let text = String::from_utf8(line).map_err(|_| bad("head is not UTF-8"))?;
        let text = text.trim_end_matches(['\r', '\n']).to_owned();
        if text.is_empty() {
            if lines.is_empty() {
                continue; // tolerate a stray CRLF between messages
            }
            break;
        }
        lines.push(text);
    }
    let start = lines.remove(0);
    let mut headers = Vec::new();
    for l in lines {
        let (n, v) = l.split_once(':').ok_or_else(|| bad("header without ':'"))?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    Ok(Some(Head { start, headers }))
}

/// The body `lab-http` answers with: `server=<name> client=<ip:port>\n`.
pub fn hello_body(server: &str, client: &str) -> String {
    format!("server={server} client={client}\n")
}

/// Parses a [`hello_body`] into (server, client).
pub fn parse_hello(body: &str) -> Option<(String, String)> {
    let mut server = None;
    let mut client = None;
    for word in body.split_whitespace() {
        if let Some(v) = word.strip_prefix("server=") {
            server = Some(v.to_owned());
        } else if let Some(v) = word.strip_prefix("client=") {
            client = Some(v.to_owned());
        }
    }
    Some((server?, client?))
}

/// `Some(n)` for a path `/bulk?bytes=n`.
pub fn bulk_size(path: &str) -> Option<u64> {
    let query = path.strip_prefix("/bulk")?.strip_prefix('?')?;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("bytes="))?
        .parse()
        .ok()
}

/// Byte `i` of a bulk body: a pattern that a truncated or shifted stream would not match.
pub fn bulk_byte(i: u64) -> u8 {
    // Truncation to the low byte is the pattern.
    (i % 251) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_request_head() {
        let mut r =
            &b"\r\nGET /bulk?bytes=5 HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\nrest"[..];
        let h = read_head(&mut r).unwrap().unwrap();
        assert_eq!(h.path(), "/bulk?bytes=5");
        assert_eq!(h.header("host"), Some("x"));
        assert!(!h.keep_alive(true));
        assert_eq!(bulk_size(h.path()), Some(5));
        assert_eq!(r, b"rest");
    }

    #[test]
    fn keep_alive_defaults_by_version() {
        let h = |s: &str| read_head(&mut s.as_bytes()).unwrap().unwrap();
        assert!(h("GET / HTTP/1.1\r\n\r\n").keep_alive(true));
        assert!(!h("GET / HTTP/1.0\r\n\r\n").keep_alive(true));
        assert!(h("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive(true));
        let resp = h("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n");
        assert_eq!(resp.status(), Some(200));
        assert_eq!(resp.content_length().unwrap(), 12);
        assert!(resp.keep_alive(false));
    }

    #[test]
    fn clean_eof_is_none_and_garbage_is_an_error() {
        assert!(read_head(&mut &b""[..]).unwrap().is_none());
        assert!(read_head(&mut &b"GET / HTTP/1.1\r\nHost"[..]).is_err());
        assert!(read_head(&mut &b"GET / HTTP/1.1\r\nnocolon\r\n\r\n"[..]).is_err());
        let long = vec![b'a'; MAX_HEAD as usize + 10];
        assert!(read_head(&mut &long[..]).is_err());
    }

    #[test]
    fn hello_round_trips() {
        let b = hello_body("rs1", "198.18.0.200:40000");
        assert_eq!(
            parse_hello(&b),
            Some(("rs1".to_owned(), "198.18.0.200:40000".to_owned()))
        );
        assert_eq!(parse_hello("nothing"), None);
        assert_eq!(bulk_size("/bulk"), None);
        assert_eq!(bulk_size("/"), None);
    }
}
