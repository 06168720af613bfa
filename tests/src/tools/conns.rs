//! The reports of `lab-conns` (`src/bin/lab-conns.rs`) and their parsers: one flat JSON
//! object per line, so that a test reads them from the tool's log.
//!
//! ```text
//! {"round":0,"conns":1000,"answered":1000,"reset":0,"timeout":0,"failed":0,"moved":0,"dead":0,"servers":"rs0=500 rs1=500"}
//! {"stream":"done","bytes":16777216,"want":16777216,"server":"rs1","error":"","corrupt_at":-1,"max_stall_ms":1830}
//! ```

use std::collections::BTreeMap;

use super::tally::{escape, field};

/// One round of `lab-conns hold`: a request on every held connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    /// 0 for the opening round (connect and first request), then 1, 2, ...
    pub round: u64,
    /// Connections opened in round 0 (the same number in every round).
    pub conns: u64,
    /// Requests answered (status 200) in this round.
    pub answered: u64,
    /// Requests that met a reset, or a connection closed by the peer.
    pub reset: u64,
    /// Requests without an answer before the round's deadline.
    pub timeout: u64,
    /// Requests that failed in any other way (connect errors in round 0, bad answers).
    pub failed: u64,
    /// Answers from another real server than the one that answered in round 0.
    pub moved: u64,
    /// Connections not tried because they had failed in an earlier round.
    pub dead: u64,
    /// Answers per real server in this round.
    pub servers: BTreeMap<String, u64>,
}

impl Round {
    /// Every connection answered, none moved, nothing failed.
    pub fn all_answered_unmoved(&self) -> bool {
        self.answered == self.conns
            && self.reset + self.timeout + self.failed + self.moved + self.dead == 0
    }

    /// The report line.
    pub fn render(&self) -> String {
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|(s, n)| format!("{}={n}", escape(s)))
            .collect();
        format!(
            "{{\"round\":{},\"conns\":{},\"answered\":{},\"reset\":{},\"timeout\":{},\
             \"failed\":{},\"moved\":{},\"dead\":{},\"servers\":\"{}\"}}",
            self.round,
            self.conns,
            self.answered,
            self.reset,
            self.timeout,
            self.failed,
            self.moved,
            self.dead,
            servers.join(" ")
        )
    }

    /// Parses one report line; `None` for any other line.
    pub fn parse(line: &str) -> Option<Round> {
        let line = line.trim();
        if !line.starts_with("{\"round\":") {
            return None;
        }
        let n = |k: &str| field(line, k)?.parse::<u64>().ok();
        let servers = field(line, "servers")?
            .split_whitespace()
            .filter_map(|kv| {
                let (s, c) = kv.rsplit_once('=')?;
                Some((s.to_owned(), c.parse().ok()?))
            })
            .collect();
        Some(Round {
            round: n("round")?,
            conns: n("conns")?,
            answered: n("answered")?,
            reset: n("reset")?,
            timeout: n("timeout")?,
            failed: n("failed")?,
            moved: n("moved")?,
            dead: n("dead")?,
            servers,
        })
    }

    /// Every round report in `log`, in order.
    pub fn all(log: &str) -> Vec<Round> {
        log.lines().filter_map(Round::parse).collect()
    }
}

/// The final report of `lab-conns stream`: one long download.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stream {
    /// Body bytes received and checked.
    pub bytes: u64,
    /// Body bytes asked for.
    pub want: u64,
    /// The real server that answered (`X-Server`).
    pub server: String,
    /// Why the download stopped early, empty when it did not.
    pub error: String,
    /// The first body offset that did not match the pattern, if any.
    pub corrupt_at: Option<u64>,
    /// The longest wait for data in the body, in milliseconds (a failover's gap).
    pub max_stall_ms: u64,
}

impl Stream {
    /// Every byte arrived, in order and intact, without an error.
    pub fn complete(&self) -> bool {
        self.bytes == self.want && self.error.is_empty() && self.corrupt_at.is_none()
    }

    /// The report line.
    pub fn render(&self) -> String {
        let corrupt = self
            .corrupt_at
            .map_or(-1, |c| i64::try_from(c).unwrap_or(-1));
        format!(
            "{{\"stream\":\"done\",\"bytes\":{},\"want\":{},\"server\":\"{}\",\"error\":\"{}\",\
             \"corrupt_at\":{corrupt},\"max_stall_ms\":{}}}",
            self.bytes,
            self.want,
            escape(&self.server),
            escape(&self.error),
            self.max_stall_ms
        )
    }

    /// Parses the report line out of `log`; `None` if there is none (yet).
    pub fn parse(log: &str) -> Option<Stream> {
        let line = log
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("{\"stream\":\"done\""))?;
        let n = |k: &str| field(line, k)?.parse::<u64>().ok();
        let corrupt: i64 = field(line, "corrupt_at")?.parse().ok()?;
        Some(Stream {
            bytes: n("bytes")?,
            want: n("want")?,
            server: field(line, "server")?,
            error: field(line, "error")?,
            corrupt_at: u64::try_from(corrupt).ok(),
            max_stall_ms: n("max_stall_ms")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_round_trips() {
        let r = Round {
            round: 2,
            conns: 10,
            answered: 8,
            reset: 1,
            timeout: 0,
            failed: 0,
            moved: 1,
            dead: 1,
            servers: [("rs0".to_owned(), 5), ("rs1".to_owned(), 3)].into(),
        };
        let line = r.render();
        assert_eq!(Round::parse(&line), Some(r.clone()));
        assert!(!r.all_answered_unmoved());
        assert_eq!(Round::all(&format!("ready\n{line}\nx\n{line}\n")).len(), 2);
        assert_eq!(Round::parse("{\"stream\":\"done\"}"), None);
    }

    #[test]
    fn stream_round_trips() {
        let mut s = Stream {
            bytes: 5,
            want: 5,
            server: "rs1".to_owned(),
            error: String::new(),
            corrupt_at: None,
            max_stall_ms: 12,
        };
        assert!(s.complete());
        assert_eq!(
            Stream::parse(&format!("progress\n{}\n", s.render())),
            Some(s.clone())
        );
        s.error = "read: \"reset\"".to_owned();
        s.corrupt_at = Some(3);
        assert_eq!(Stream::parse(&s.render()), Some(s.clone()));
        assert!(!s.complete());
        assert_eq!(Stream::parse("nothing"), None);
    }
}
