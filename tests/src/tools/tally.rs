//! Which server answered how often: the report of `lab-client` and `lab-udp send`, one
//! JSON object per line, and its parser for tests.
//!
//! ```text
//! {"server":"rs0","count":3,"clients":"198.18.0.200"}
//! {"server":"rs1","count":2,"clients":"198.18.0.200"}
//! {"error":"request 4: connection refused"}
//! {"total":6,"ok":5,"failed":1}
//! ```
//!
//! `clients` lists the client IPs that the server reported seeing (space-separated).

use std::collections::{BTreeMap, BTreeSet};

/// At most this many `error` lines are printed; the counts stay exact.
pub const MAX_ERROR_LINES: usize = 20;

/// Answers per server, and failures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Answers per server name.
    pub servers: BTreeMap<String, u64>,
    /// Client IPs each server reported.
    pub clients: BTreeMap<String, BTreeSet<String>>,
    /// Requests made.
    pub total: u64,
    /// Requests answered.
    pub ok: u64,
    /// Requests that failed.
    pub failed: u64,
    /// The first failures' messages.
    pub errors: Vec<String>,
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The string or number value of `"key":` in a one-line JSON object.
pub(crate) fn field(line: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\":");
    let rest = &line[line.find(&pat)? + pat.len()..];
    if let Some(s) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?),
                '"' => return Some(out),
                c => out.push(c),
            }
        }
        None
    } else {
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Some(rest[..end].trim().to_owned())
    }
}

impl Tally {
    /// Counts an answer from `server`, which saw the client as `client` (`ip:port` or `ip`).
    pub fn ok(&mut self, server: &str, client: &str) {
        self.total += 1;
        self.ok += 1;
        *self.servers.entry(server.to_owned()).or_default() += 1;
        let ip = client.rsplit_once(':').map_or(client, |(ip, _)| ip);
        self.clients
            .entry(server.to_owned())
            .or_default()
            .insert(ip.to_owned());
    }

    /// Counts a failure.
    pub fn fail(&mut self, message: impl Into<String>) {
        self.total += 1;
        self.failed += 1;
        if self.errors.len() < MAX_ERROR_LINES {
            self.errors.push(message.into());
        }
    }

    /// The report, one object per line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (server, count) in &self.servers {
            let clients: Vec<&str> = self
                .clients
                .get(server)
                .map(|s| s.iter().map(String::as_str).collect())
                .unwrap_or_default();
            out.push_str(&format!(
                "{{\"server\":\"{}\",\"count\":{count},\"clients\":\"{}\"}}\n",
                escape(server),
                escape(&clients.join(" "))
            ));
        }
        for e in &self.errors {
            out.push_str(&format!("{{\"error\":\"{}\"}}\n", escape(e)));
        }
        out.push_str(&format!(
            "{{\"total\":{},\"ok\":{},\"failed\":{}}}\n",
            self.total, self.ok, self.failed
        ));
        out
    }

    /// Parses a report; other lines are ignored. Fails if the summary line is missing.
    pub fn parse(text: &str) -> Result<Tally, String> {
        let mut t = Tally::default();
        let mut summary = false;
        let num = |line: &str, k: &str| -> Result<u64, String> {
            field(line, k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("no number {k:?} in {line:?}"))
        };
        for line in text.lines().map(str::trim).filter(|l| l.starts_with('{')) {
            if let Some(server) = field(line, "server") {
                if let Ok(count) = num(line, "count") {
                    t.servers.insert(server.clone(), count);
                    let ips = field(line, "clients").unwrap_or_default();
                    t.clients
                        .insert(server, ips.split_whitespace().map(str::to_owned).collect());
                }
            } else if let Some(e) = field(line, "error") {
                t.errors.push(e);
            } else if line.contains("\"total\":") {
                t.total = num(line, "total")?;
                t.ok = num(line, "ok")?;
                t.failed = num(line, "failed")?;
                summary = true;
            }
        }
        if summary {
            Ok(t)
        } else {
            Err(format!("no summary line in {text:?}"))
        }
    }

    /// Answers from `server` (0 if none).
    pub fn count(&self, server: &str) -> u64 {
        self.servers.get(server).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_parse_round_trip() {
        let mut t = Tally::default();
        t.ok("rs0", "198.18.0.200:4000");
        t.ok("rs0", "198.18.0.201:4001");
        t.ok("rs1", "198.18.0.200");
        t.fail("request 4: \"refused\"");
        let text = t.render();
        assert!(
            text.ends_with("{\"total\":4,\"ok\":3,\"failed\":1}\n"),
            "{text}"
        );
        let back = Tally::parse(&format!("noise\n{text}")).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.count("rs0"), 2);
        assert_eq!(back.count("rs9"), 0);
    }

    #[test]
    fn a_report_without_summary_is_an_error() {
        assert!(Tally::parse("{\"server\":\"rs0\",\"count\":1,\"clients\":\"\"}").is_err());
    }

    #[test]
    fn error_lines_are_capped() {
        let mut t = Tally::default();
        for i in 0..100 {
            t.fail(format!("e{i}"));
        }
        assert_eq!(t.failed, 100);
        assert_eq!(t.errors.len(), MAX_ERROR_LINES);
    }
}
