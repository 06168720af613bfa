//! Prometheus `/metrics`: the director's state and counters in the OpenMetrics text format,
//! rendered from the API's views with the `prometheus-client` crate (pure: the caller passes
//! the views).
//!
//! Names follow Prometheus' conventions (`lvs_` prefix, base units, `_total` on counters);
//! the per-service and per-server families carry the labels operators already use with the
//! node exporter's IPVS collector: the service as lvsd names it (`tcp:VIP:PORT`), its
//! `virtual` section `name`, the real `server` as `RIP:PORT` and its `server_name`. Only
//! counters and states are exported, no per-second rates: Prometheus computes `rate()`
//! from the counters itself, and a director with ten thousand real servers would otherwise
//! double its exposition.
//!
//! The values live in lvsd's worker, so every scrape takes a snapshot of the views and a
//! [`Collector`] encodes it straight from the snapshot: no metric objects, no label hash
//! maps (building `Family`s per scrape cost ~150 ms on 10 000 servers).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::api::{Role, ServerState, ServiceView, StatsView, StatusView, SyncView};

/// The `Content-Type` of [`render`]'s output for a scraper that asks for OpenMetrics.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The labels of one server, formatted once per scrape.
#[derive(Debug)]
struct ServerRow {
    service: String,
    name: String,
    server: String,
    server_name: String,
    state: ServerState,
    weight: u32,
    active: u32,
    inactive: u32,
    stats: StatsView,
}

/// The labels of one service.
#[derive(Debug)]
struct ServiceRow {
    service: String,
    name: String,
    sorry_active: bool,
    stats: StatsView,
}

/// One scrape's values.
#[derive(Debug)]
struct Snapshot {
    gauges: Vec<(&'static str, &'static str, i64)>,
    counters: Vec<(&'static str, &'static str, u64)>,
    services: Vec<ServiceRow>,
    servers: Vec<ServerRow>,
    sync_drops: Vec<(&'static str, u64)>,
}

type Pick = fn(&StatsView) -> u64;
type ServerGauge = fn(&ServerRow) -> i64;

/// The traffic counters of services and servers: name suffix, help, value.
const TRAFFIC: [(&str, &str, Pick); 5] = [
    ("connections", "Connections scheduled", |s| s.conns),
    ("incoming_packets", "Packets from clients", |s| s.in_pkts),
    ("outgoing_packets", "Packets to clients (NAT only)", |s| {
        s.out_pkts
    }),
    ("incoming_bytes", "Bytes from clients", |s| s.in_bytes),
    ("outgoing_bytes", "Bytes to clients (NAT only)", |s| {
        s.out_bytes
    }),
];

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, v) in &self.gauges {
            e.encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(v)?;
        }
        for (name, help, v) in &self.counters {
            e.encode_descriptor(name, help, None, MetricType::Counter)?
                .encode_counter::<NoLabelSet, _, u64>(v, None)?;
        }
        for (suffix, help, pick) in TRAFFIC {
            let name = format!("lvs_service_{suffix}");
            let mut m = e.encode_descriptor(&name, help, None, MetricType::Counter)?;
            for s in &self.services {
                let l = [("service", s.service.as_str()), ("name", s.name.as_str())];
                m.encode_family(&l)?
                    .encode_counter::<NoLabelSet, _, u64>(&pick(&s.stats), None)?;
            }
        }
        let mut m = e.encode_descriptor(
            "lvs_service_sorry_server_active",
            "1 while the sorry server stands in for a service",
            None,
            MetricType::Gauge,
        )?;
        for s in &self.services {
            let l = [("service", s.service.as_str()), ("name", s.name.as_str())];
            m.encode_family(&l)?
                .encode_gauge(&i64::from(s.sorry_active))?;
        }
        for (suffix, help, pick) in TRAFFIC {
            let name = format!("lvs_server_{suffix}");
            let mut m = e.encode_descriptor(&name, help, None, MetricType::Counter)?;
            for r in &self.servers {
                m.encode_family(&labels(r))?
                    .encode_counter::<NoLabelSet, _, u64>(&pick(&r.stats), None)?;
            }
        }
        let gauges: [(&str, &str, ServerGauge); 4] = [
            (
                "lvs_server_up",
                "1 when health checks pass (up or quiesced), 0 when the server is down",
                |r| i64::from(r.state != ServerState::Down),
            ),
            (
                "lvs_server_weight",
                "Weight in the table (0 when quiesced or out of the table)",
                |r| i64::from(r.weight),
            ),
            (
                "lvs_server_connections_active",
                "Established connections (ActiveConn)",
                |r| i64::from(r.active),
            ),
            (
                "lvs_server_connections_inactive",
                "Other connections (InActConn)",
                |r| i64::from(r.inactive),
            ),
        ];
        for (name, help, value) in gauges {
            let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for r in &self.servers {
                m.encode_family(&labels(r))?.encode_gauge(&value(r))?;
            }
        }
        let mut m = e.encode_descriptor(
            "lvs_sync_dropped_datagrams",
            "Sync datagrams dropped, by reason",
            None,
            MetricType::Counter,
        )?;
        for (reason, n) in &self.sync_drops {
            m.encode_family(&[("reason", *reason)])?
                .encode_counter::<NoLabelSet, _, u64>(n, None)?;
        }
        Ok(())
    }
}

fn labels(r: &ServerRow) -> [(&'static str, &str); 4] {
    [
        ("service", r.service.as_str()),
        ("name", r.name.as_str()),
        ("server", r.server.as_str()),
        ("server_name", r.server_name.as_str()),
    ]
}

fn int(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The exposition of the director.
pub fn render(status: &StatusView, services: &[ServiceView], sync: &SyncView) -> String {
    let mut rows = Vec::with_capacity(services.len());
    let mut servers = Vec::with_capacity(services.iter().map(|s| s.servers.len()).sum());
    for s in services {
        let service = s.id.to_string();
        for v in &s.servers {
            servers.push(ServerRow {
                service: service.clone(),
                name: s.name.clone(),
                server: v.address.to_string(),
                server_name: if v.sorry {
                    "sorry_server".to_owned()
                } else {
                    v.name.clone()
                },
                state: v.state,
                weight: v.table_weight.unwrap_or(0),
                active: v.active_conns,
                inactive: v.inactive_conns,
                stats: v.stats,
            });
        }
        rows.push(ServiceRow {
            service,
            name: s.name.clone(),
            sorry_active: s.sorry_active,
            stats: s.stats,
        });
    }
    let rx = &sync.received;
    let snapshot = Snapshot {
        gauges: vec![
            (
                "lvs_director_active",
                "1 while this director forwards (pulse made it active), 0 on standby",
                i64::from(status.role == Role::Active),
            ),
            (
                "lvs_connection_table_entries",
                "Connections and persistence templates in the table",
                int(status.connections),
            ),
            (
                "lvs_connection_table_capacity",
                "Most entries the connection table holds",
                int(status.conn_capacity),
            ),
            (
                "lvs_nannies_running",
                "Health checkers running",
                int(status.nannies_running),
            ),
            (
                "lvs_sync_enabled",
                "1 when connection sync runs",
                i64::from(sync.enabled),
            ),
            (
                "lvs_sync_streaming",
                "1 while this director streams its connections to the partner",
                i64::from(sync.streaming),
            ),
        ],
        counters: vec![
            (
                "lvs_api_errors",
                "Control API requests refused",
                status.api_errors,
            ),
            (
                "lvs_sync_sent_entries",
                "Connection entries sent to the partner",
                sync.sent.entries,
            ),
            (
                "lvs_sync_received_entries",
                "Connection entries received from the partner",
                sync.received.entries,
            ),
        ],
        services: rows,
        servers,
        sync_drops: vec![
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
        ],
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    let mut out = String::with_capacity(256 + services.len() * 4096);
    // Writing to a String cannot fail; an encoder error would be a bug in the crate.
    if let Err(e) = encode(&mut out, &registry) {
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
            "# TYPE lvs_server_incoming_bytes counter\n",
            "lvs_server_incoming_bytes_total{service=\"tcp:198.18.0.10:80\",name=\"web\",server=\"198.19.0.11:80\",server_name=\"rs0\"} 5000\n",
            "lvs_server_connections_active{service=\"tcp:198.18.0.10:80\",name=\"web\",server=\"198.19.0.11:80\",server_name=\"rs0\"} 5\n",
            "lvs_server_up{service=\"tcp:198.18.0.10:80\",name=\"web\",server=\"198.19.0.11:80\",server_name=\"rs0\"} 1\n",
            "lvs_server_weight{service=\"tcp:198.18.0.10:80\",name=\"web\",server=\"198.19.0.11:80\",server_name=\"rs0\"} 3\n",
            "lvs_sync_dropped_datagrams_total{reason=\"bad_mac\"} 0\n",
            "# EOF\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }
}
