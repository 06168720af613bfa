//! Prometheus `/metrics`: the director's state and counters in the OpenMetrics text format,
//! rendered from the API's views with the `prometheus-client` crate (pure: the caller passes
//! the views).
//!
//! Names follow Prometheus' conventions (`lvs_` prefix, base units, `_total` on counters);
//! the per-service and per-server families carry the labels operators already use with the
//! node exporter's IPVS collector: the service as lvsd names it (`tcp:VIP:PORT`), its
//! `virtual` section `name`, the real `server` as `RIP:PORT` and its `server_name`. A fresh
//! registry is filled on every scrape: the values live in lvsd's worker, not here.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::api::{Role, ServerState, ServiceView, StatusView, SyncView};

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    service: String,
    name: String,
    server: String,
    server_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

fn gauge(registry: &mut Registry, name: &str, help: &str, v: i64) {
    let g = Gauge::<i64>::default();
    g.set(v);
    registry.register(name, help, g);
}

fn counter(registry: &mut Registry, name: &str, help: &str, v: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(v);
    registry.register(name, help, c);
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// One family per figure of a service or a server.
struct Families<L> {
    conns: Family<L, Counter>,
    in_pkts: Family<L, Counter>,
    out_pkts: Family<L, Counter>,
    in_bytes: Family<L, Counter>,
    out_bytes: Family<L, Counter>,
    cps: Family<L, Gauge>,
    in_bps: Family<L, Gauge>,
    out_bps: Family<L, Gauge>,
}

impl<L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static>
    Families<L>
{
    fn new(registry: &mut Registry, what: &str) -> Families<L> {
        let f = Families {
            conns: Family::default(),
            in_pkts: Family::default(),
            out_pkts: Family::default(),
            in_bytes: Family::default(),
            out_bytes: Family::default(),
            cps: Family::default(),
            in_bps: Family::default(),
            out_bps: Family::default(),
        };
        let n = |s: &str| format!("lvs_{what}_{s}");
        registry.register(n("connections"), "Connections scheduled", f.conns.clone());
        registry.register(
            n("incoming_packets"),
            "Packets from clients",
            f.in_pkts.clone(),
        );
        registry.register(
            n("outgoing_packets"),
            "Packets to clients (NAT only)",
            f.out_pkts.clone(),
        );
        registry.register(
            n("incoming_bytes"),
            "Bytes from clients",
            f.in_bytes.clone(),
        );
        registry.register(
            n("outgoing_bytes"),
            "Bytes to clients (NAT only)",
            f.out_bytes.clone(),
        );
        registry.register(
            n("connections_per_second"),
            "New connections per second, the kernel's 2 s estimator",
            f.cps.clone(),
        );
        registry.register(
            n("incoming_bytes_per_second"),
            "Bytes per second from clients, the kernel's 2 s estimator",
            f.in_bps.clone(),
        );
        registry.register(
            n("outgoing_bytes_per_second"),
            "Bytes per second to clients, the kernel's 2 s estimator",
            f.out_bps.clone(),
        );
        f
    }

    fn set(&self, l: &L, s: &super::api::StatsView, r: &super::api::RatesView) {
        self.conns.get_or_create(l).inc_by(s.conns);
        self.in_pkts.get_or_create(l).inc_by(s.in_pkts);
        self.out_pkts.get_or_create(l).inc_by(s.out_pkts);
        self.in_bytes.get_or_create(l).inc_by(s.in_bytes);
        self.out_bytes.get_or_create(l).inc_by(s.out_bytes);
        self.cps.get_or_create(l).set(int(r.cps));
        self.in_bps.get_or_create(l).set(int(r.in_bps));
        self.out_bps.get_or_create(l).set(int(r.out_bps));
    }
}

/// The exposition of the director.
pub fn render(status: &StatusView, services: &[ServiceView], sync: &SyncView) -> String {
    let mut r = Registry::default();
    gauge(
        &mut r,
        "lvs_director_active",
        "1 while this director forwards (pulse made it active), 0 on standby",
        i64::from(status.role == Role::Active),
    );
    gauge(
        &mut r,
        "lvs_connection_table_entries",
        "Connections and persistence templates in the table",
        int(status.connections as u64),
    );
    gauge(
        &mut r,
        "lvs_connection_table_capacity",
        "Most entries the connection table holds",
        int(status.conn_capacity as u64),
    );
    gauge(
        &mut r,
        "lvs_nannies_running",
        "Health checkers running",
        int(status.nannies_running as u64),
    );
    counter(
        &mut r,
        "lvs_api_errors",
        "Control API requests refused",
        status.api_errors,
    );

    let svc = Families::<ServiceLabels>::new(&mut r, "service");
    let sorry = Family::<ServiceLabels, Gauge>::default();
    r.register(
        "lvs_service_sorry_server_active",
        "1 while the sorry server stands in for a service",
        sorry.clone(),
    );
    let srv = Families::<ServerLabels>::new(&mut r, "server");
    let up = Family::<ServerLabels, Gauge>::default();
    r.register(
        "lvs_server_up",
        "1 when health checks pass (up or quiesced), 0 when the server is down",
        up.clone(),
    );
    let weight = Family::<ServerLabels, Gauge>::default();
    r.register(
        "lvs_server_weight",
        "Weight in the table (0 when quiesced or out of the table)",
        weight.clone(),
    );
    let active = Family::<ServerLabels, Gauge>::default();
    r.register(
        "lvs_server_connections_active",
        "Established connections (ActiveConn)",
        active.clone(),
    );
    let inactive = Family::<ServerLabels, Gauge>::default();
    r.register(
        "lvs_server_connections_inactive",
        "Other connections (InActConn)",
        inactive.clone(),
    );
    for s in services {
        let l = ServiceLabels {
            service: s.id.to_string(),
            name: s.name.clone(),
        };
        svc.set(&l, &s.stats, &s.rates);
        sorry.get_or_create(&l).set(i64::from(s.sorry_active));
        for v in &s.servers {
            let l = ServerLabels {
                service: l.service.clone(),
                name: l.name.clone(),
                server: v.address.to_string(),
                server_name: if v.sorry {
                    "sorry_server".to_owned()
                } else {
                    v.name.clone()
                },
            };
            srv.set(&l, &v.stats, &v.rates);
            up.get_or_create(&l)
                .set(i64::from(v.state != ServerState::Down));
            weight
                .get_or_create(&l)
                .set(i64::from(v.table_weight.unwrap_or(0)));
            active.get_or_create(&l).set(i64::from(v.active_conns));
            inactive.get_or_create(&l).set(i64::from(v.inactive_conns));
        }
    }

    gauge(
        &mut r,
        "lvs_sync_enabled",
        "1 when connection sync runs",
        i64::from(sync.enabled),
    );
    gauge(
        &mut r,
        "lvs_sync_streaming",
        "1 while this director streams its connections to the partner",
        i64::from(sync.streaming),
    );
    counter(
        &mut r,
        "lvs_sync_sent_entries",
        "Connection entries sent to the partner",
        sync.sent.entries,
    );
    counter(
        &mut r,
        "lvs_sync_received_entries",
        "Connection entries received from the partner",
        sync.received.entries,
    );
    let dropped = Family::<ReasonLabels, Counter>::default();
    r.register(
        "lvs_sync_dropped_datagrams",
        "Sync datagrams dropped, by reason",
        dropped.clone(),
    );
    let rx = &sync.received;
    for (reason, n) in [
        ("wrong_source", rx.wrong_source),
        ("truncated", rx.truncated),
        ("bad_magic", rx.bad_magic),
        ("bad_version", rx.bad_version),
        ("oversized", rx.oversized),
        ("bad_kind", rx.bad_kind),
        ("length_mismatch", rx.length_mismatch),
        ("wrong_id", rx.wrong_id),
        ("bad_mac", rx.bad_mac),
        ("reserved", rx.reserved),
        ("bad_entry", rx.bad_entry),
        ("stale", rx.stale),
        ("reordered", rx.reordered),
        ("replayed", rx.replayed),
    ] {
        dropped
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc_by(n);
    }

    let mut out = String::new();
    // Writing to a String cannot fail; an encoder error would be a bug in the crate.
    if let Err(e) = encode(&mut out, &r) {
        out = format!("# lvsd: metrics could not be encoded: {e}\n# EOF\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::api::{RatesView, ServerView, ServiceId, StatsView};

    #[test]
    fn conventional_names_types_and_labels() {
        let stats = StatsView {
            conns: 42,
            in_pkts: 100,
            out_pkts: 90,
            in_bytes: 5000,
            out_bytes: 80000,
        };
        let id: ServiceId = "tcp:198.18.0.10:80".parse().expect("id");
        let server = |name: &str, state| ServerView {
            address: "198.19.0.11:80".parse().expect("addr"),
            name: name.into(),
            method: "masq".into(),
            config_weight: 3,
            weight: 3,
            state,
            reason: String::new(),
            sorry: false,
            in_table: true,
            table_weight: Some(3),
            active_conns: 5,
            inactive_conns: 2,
            persistent_conns: 0,
            upper: 0,
            lower: 0,
            stats,
            rates: RatesView {
                cps: 7,
                ..RatesView::default()
            },
        };
        let services = vec![ServiceView {
            id,
            name: "web".into(),
            vip: "198.18.0.10".parse().expect("vip"),
            scheduler: "wlc".into(),
            flags: vec![],
            persistent: None,
            netmask: None,
            sorry_active: false,
            servers: vec![server("rs0", ServerState::Up)],
            stats,
            rates: RatesView::default(),
        }];
        let status = StatusView {
            version: "0.1.0".into(),
            config: "lvs.cf".into(),
            services: 1,
            connections: 7,
            nannies_running: 1,
            api_errors: 0,
            role: Role::Active,
            conn_capacity: 1000,
        };
        let text = render(&status, &services, &SyncView::default());
        for want in [
            "# TYPE lvs_director_active gauge\n",
            "lvs_director_active 1\n",
            "# TYPE lvs_service_connections counter\n",
            "lvs_service_connections_total{service=\"tcp:198.18.0.10:80\",name=\"web\"} 42\n",
            "lvs_server_up{service=\"tcp:198.18.0.10:80\",name=\"web\",server=\"198.19.0.11:80\",server_name=\"rs0\"} 1\n",
            "lvs_server_connections_per_second{service=\"tcp:198.18.0.10:80\",name=\"web\",server=\"198.19.0.11:80\",server_name=\"rs0\"} 7\n",
            "lvs_server_weight{service=\"tcp:198.18.0.10:80\",name=\"web\",server=\"198.19.0.11:80\",server_name=\"rs0\"} 3\n",
            "lvs_sync_dropped_datagrams_total{reason=\"bad_mac\"} 0\n",
            "# EOF\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }
}
