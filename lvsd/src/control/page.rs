//! The status page: one self-refreshing HTML page of the director, rendered from the API's
//! views (pure: the caller passes the views and the time).
//!
//! No script, no external asset: the page reloads itself every [`REFRESH_S`] seconds with a
//! `<meta http-equiv="refresh">`, so it works from a text browser or a locked-down
//! operator's workstation. Every text that came from lvs.cf, a probe or pulse is escaped.

use std::fmt::Write;

use super::api::{EventView, EventsView, Role, ServerState, ServiceView, StatusView, SyncView};

/// Seconds between reloads of the page.
pub const REFRESH_S: u32 = 2;

/// Everything the page shows.
#[derive(Debug, Clone, Copy)]
pub struct PageData<'a> {
    /// `/v1/status`.
    pub status: &'a StatusView,
    /// `/v1/services`.
    pub services: &'a [ServiceView],
    /// `/v1/sync`.
    pub sync: &'a SyncView,
    /// `/v1/events`.
    pub events: &'a EventsView,
    /// Now, milliseconds since the Unix epoch (for "5 s ago").
    pub now_unix_ms: u64,
}

/// Now, wall-clock milliseconds since the Unix epoch: when an event happened and how long
/// ago, as the page shows it.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// "12 s ago", "3 min ago", "2 h ago".
fn ago(now: u64, at: u64) -> String {
    let s = now.saturating_sub(at) / 1000;
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

fn event_line(out: &mut String, now: u64, e: &EventView) {
    let _ = writeln!(
        out,
        "<li class=\"ev-{}\"><span class=\"when\">{}</span> {}</li>",
        escape(&e.kind),
        ago(now, e.at_unix_ms),
        escape(&e.text)
    );
}

const STYLE: &str = "body{font-family:sans-serif;margin:1em;color:#222}\
table{border-collapse:collapse;margin-bottom:1em}\
th,td{border:1px solid #bbb;padding:2px 8px;text-align:right}\
th{background:#eee}td.l,th.l{text-align:left}\
.up{background:#dfd}.down{background:#fdd}.quiesced{background:#ffd}\
.active{color:#070;font-weight:bold}.standby{color:#555;font-weight:bold}\
.when{color:#777;font-size:90%}";

/// The whole page.
pub fn render(d: &PageData<'_>) -> String {
    let mut o = String::with_capacity(4096 + d.services.len() * 1024);
    let role = match d.status.role {
        Role::Active => "active",
        Role::Standby => "standby",
    };
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_S}\">\
         <title>lvsd {role}</title><style>{STYLE}</style></head><body>\n"
    );
    let _ = writeln!(
        o,
        "<h1>lvsd <span id=\"role\" class=\"{role}\">{role}</span></h1>\n<p>{} services, {} \
         connections (of {}), {} nannies running, configuration <code>{}</code>, lvsd {}.</p>",
        d.status.services,
        d.status.connections,
        d.status.conn_capacity,
        d.status.nannies_running,
        escape(&d.status.config),
        escape(&d.status.version)
    );
    match &d.events.last_takeover {
        Some(e) => {
            let _ = writeln!(
                o,
                "<p id=\"takeover\">Last takeover: {} ({}).</p>",
                escape(&e.text),
                ago(d.now_unix_ms, e.at_unix_ms)
            );
        }
        None => o.push_str("<p id=\"takeover\">No takeover since lvsd started.</p>\n"),
    }
    sync_line(&mut o, d.sync);
    o.push_str("<h2>Virtual services</h2>\n");
    for s in d.services {
        service_table(&mut o, s);
    }
    o.push_str("<h2>Recent events</h2>\n<ul id=\"events\">\n");
    for e in &d.events.events {
        event_line(&mut o, d.now_unix_ms, e);
    }
    o.push_str("</ul>\n</body></html>\n");
    o
}

fn sync_line(o: &mut String, s: &SyncView) {
    if s.enabled {
        let _ = writeln!(
            o,
            "<p id=\"sync\">Connection sync: {} to {}, {}; {} entries sent, {} received, {} \
             datagrams dropped.</p>",
            escape(s.transport.as_deref().unwrap_or("")),
            s.peer.map(|p| p.to_string()).unwrap_or_default(),
            if s.streaming {
                "streaming"
            } else {
                "receiving"
            },
            s.sent.entries,
            s.received.entries,
            s.received.bad_mac
                + s.received.replayed
                + s.received.wrong_source
                + s.received.truncated
                + s.received.stale
        );
    } else {
        let _ = writeln!(
            o,
            "<p id=\"sync\">Connection sync is off{}.</p>",
            s.off_reason
                .as_deref()
                .map(|r| format!(": {}", escape(r)))
                .unwrap_or_default()
        );
    }
}

fn service_table(o: &mut String, s: &ServiceView) {
    let _ = writeln!(
        o,
        "<h3>{} <code>{}</code> {}{}{}</h3>",
        escape(&s.name),
        s.id,
        escape(&s.scheduler),
        s.persistent
            .map(|p| format!(", persistent {p} s"))
            .unwrap_or_default(),
        if s.sorry_active {
            ", <b>sorry server in use</b>"
        } else {
            ""
        }
    );
    let _ = writeln!(
        o,
        "<table class=\"service\" data-service=\"{}\"><tr><th class=\"l\">real server</th>\
         <th class=\"l\">address</th><th class=\"l\">health</th><th class=\"l\">why</th>\
         <th>weight</th><th>active</th><th>inactive</th><th>conns</th><th>conn/s</th>\
         <th>in pkt/s</th><th>out pkt/s</th></tr>",
        s.id
    );
    for v in &s.servers {
        let state = match v.state {
            ServerState::Up => "up",
            ServerState::Down => "down",
            ServerState::Quiesced => "quiesced",
        };
        let name = if v.sorry {
            "sorry server".to_owned()
        } else {
            escape(&v.name)
        };
        let _ = writeln!(
            o,
            "<tr class=\"{state}\" data-server=\"{}\"><td class=\"l\">{name}</td>\
             <td class=\"l\">{}</td><td class=\"l state\">{state}</td><td class=\"l\">{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            v.address,
            v.address,
            escape(&v.reason),
            v.table_weight
                .map_or_else(|| "-".to_owned(), |w| w.to_string()),
            v.active_conns,
            v.inactive_conns,
            v.stats.conns,
            v.rates.cps,
            v.rates.in_pps,
            v.rates.out_pps
        );
    }
    o.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::api::{RatesView, ServerView, ServiceId, StatsView};

    fn status() -> StatusView {
        StatusView {
            version: "0.1.0".into(),
            config: "/etc/sysconfig/ha/lvs.cf".into(),
            services: 1,
            connections: 3,
            nannies_running: 2,
            api_errors: 0,
            role: Role::Active,
            conn_capacity: 1000,
        }
    }

    fn server(name: &str, state: ServerState, reason: &str) -> ServerView {
        ServerView {
            address: "198.19.0.11:80".parse().expect("addr"),
            name: name.into(),
            method: "masq".into(),
            config_weight: 1,
            weight: 1,
            state,
            reason: reason.into(),
            sorry: false,
            in_table: state != ServerState::Down,
            table_weight: (state != ServerState::Down).then_some(1),
            active_conns: 2,
            inactive_conns: 1,
            persistent_conns: 0,
            upper: 0,
            lower: 0,
            stats: StatsView {
                conns: 7,
                in_pkts: 0,
                out_pkts: 0,
                in_bytes: 0,
                out_bytes: 0,
            },
            rates: RatesView::default(),
        }
    }

    #[test]
    fn shows_role_servers_and_events_and_escapes_what_came_from_outside() {
        let id: ServiceId = "tcp:198.18.0.10:80".parse().expect("id");
        let services = vec![ServiceView {
            id,
            name: "web<script>".into(),
            vip: "198.18.0.10".parse().expect("vip"),
            scheduler: "wlc".into(),
            flags: vec![],
            persistent: None,
            netmask: None,
            sorry_active: false,
            servers: vec![
                server("rs0", ServerState::Up, "probe ok"),
                server("rs1", ServerState::Down, "connect: refused <&>"),
            ],
            stats: StatsView {
                conns: 7,
                in_pkts: 0,
                out_pkts: 0,
                in_bytes: 0,
                out_bytes: 0,
            },
            rates: RatesView::default(),
        }];
        let events = EventsView {
            events: vec![EventView {
                at_unix_ms: 10_000,
                kind: "server".into(),
                text: "real server 198.19.0.12:80 of web is down: refused".into(),
            }],
            last_takeover: Some(EventView {
                at_unix_ms: 5_000,
                kind: "role".into(),
                text: "active: partner dead after 0.15 s".into(),
            }),
        };
        let page = render(&PageData {
            status: &status(),
            services: &services,
            sync: &SyncView::default(),
            events: &events,
            now_unix_ms: 15_000,
        });
        assert!(page.contains("<meta http-equiv=\"refresh\" content=\"2\">"));
        assert!(page.contains("<span id=\"role\" class=\"active\">active</span>"));
        assert!(page.contains("Last takeover: active: partner dead after 0.15 s (10 s ago)"));
        assert!(page.contains("web&lt;script&gt;"), "names are escaped");
        assert!(!page.contains("<script>"));
        assert!(page.contains(
            "<td class=\"l state\">down</td><td class=\"l\">connect: refused &lt;&amp;&gt;</td>"
        ));
        assert!(page.contains("is down: refused</li>"));
        assert!(page.contains("Connection sync is off"));
    }
}
