//! Every keyword of `docs/lvs-cf.md`: its default when absent and its value when given.

mod common;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use common::{parse, vs};
use ipvs_core::types::{ForwardMethod, Protocol, SchedFlag, SchedulerKind};
use lvsd::lvscf::{AddressOnDevice, ReservationConflictAction, ServiceMode};

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("a valid address in the test")
}

#[test]
fn global_defaults() {
    let g = parse("serial_no = 0\n").global;
    assert_eq!(g.serial_no, 0);
    assert_eq!(g.service, ServiceMode::Lvs);
    assert_eq!(g.primary, Ipv4Addr::UNSPECIFIED);
    assert_eq!(g.primary_private, Ipv4Addr::UNSPECIFIED);
    assert_eq!(g.primary_shared, None);
    assert!(!g.backup_active);
    assert_eq!(g.backup, Ipv4Addr::UNSPECIFIED);
    assert_eq!(g.backup_private, Ipv4Addr::UNSPECIFIED);
    assert_eq!(g.backup_shared, None);
    assert!(!g.heartbeat);
    assert_eq!(g.heartbeat_port, 539);
    assert_eq!(g.keepalive, Duration::from_secs(2));
    assert_eq!(g.deadtime, Duration::from_secs(5));
    assert_eq!(g.network, ForwardMethod::Masq);
    assert_eq!(g.nat_router, None);
    assert_eq!(g.nat_nmask, Ipv4Addr::UNSPECIFIED);
    assert_eq!(g.debug_level, "NONE");
    assert_eq!(g.rsh_command, "rsh");
    assert!(!g.monitor_links);
    assert!(!g.syncdaemon);
    assert_eq!(g.syncd_iface, "eth0");
    assert_eq!(g.syncd_id, 0);
    assert_eq!((g.tcp_timeout, g.tcpfin_timeout, g.udp_timeout), (0, 0, 0));
    assert_eq!(g.active_cmd, None);
    assert_eq!(g.inactive_cmd, None);
    assert!(g.hard_shutdown);
    assert_eq!(g.ipvsadm, PathBuf::from("/sbin/ipvsadm"));
    assert_eq!(g.reservation_conflict_action, None);
    assert!(!g.sync);
}

#[test]
fn every_global_keyword_is_parsed() {
    let c = parse(
        r#"serial_no = 0x19
service = fos
primary = director1
primary_private = 198.19.0.2
primary_shared = /dev/sdb
backup_active = 1
backup = director2
backup_private = 198.19.0.3
backup_shared = "/dev/sdc"
heartbeat = 1
heartbeat_port = 1050
keepalive = 6
deadtime = 18
network = tunnel
nat_router = 198.19.0.254 eth1:1
nat_nmask = 255.255.255.0
debug_level = LOW
rsh_command = ssh
monitor_links = 7
syncdaemon = 1
syncd_iface = eth2
syncd_id = 255
tcp_timeout = 900
tcpfin_timeout = 120
udp_timeout = 300
active_cmd = "/usr/local/bin/became-active --quiet"
inactive_cmd = /usr/local/bin/became-inactive
hard_shutdown = 0
ipvsadm = /usr/sbin/ipvsadm
reservation_conflict_action = preempt
sync = 1
"#,
    );
    let g = c.global;
    assert_eq!(g.serial_no, 25);
    assert_eq!(g.service, ServiceMode::Fos);
    assert_eq!(g.primary, ip("198.18.0.2"));
    assert_eq!(g.primary_private, ip("198.19.0.2"));
    assert_eq!(g.primary_shared.as_deref(), Some("/dev/sdb"));
    assert!(g.backup_active);
    assert_eq!(g.backup, ip("198.18.0.3"));
    assert_eq!(g.backup_private, ip("198.19.0.3"));
    assert_eq!(g.backup_shared.as_deref(), Some("/dev/sdc"));
    assert!(g.heartbeat);
    assert_eq!(g.heartbeat_port, 1050);
    assert_eq!(g.keepalive, Duration::from_secs(6));
    assert_eq!(g.deadtime, Duration::from_secs(18));
    assert_eq!(g.network, ForwardMethod::Tunnel);
    assert_eq!(
        g.nat_router,
        Some(AddressOnDevice {
            addr: ip("198.19.0.254"),
            device: "eth1:1".into()
        })
    );
    assert_eq!(g.nat_nmask, ip("255.255.255.0"));
    assert_eq!(g.debug_level, "LOW");
    assert_eq!(g.rsh_command, "ssh");
    assert!(g.monitor_links);
    assert!(g.syncdaemon);
    assert_eq!(g.syncd_iface, "eth2");
    assert_eq!(g.syncd_id, 255);
    assert_eq!(
        (g.tcp_timeout, g.tcpfin_timeout, g.udp_timeout),
        (900, 120, 300)
    );
    assert_eq!(
        g.active_cmd.as_deref(),
        Some("/usr/local/bin/became-active --quiet")
    );
    assert_eq!(
        g.inactive_cmd.as_deref(),
        Some("/usr/local/bin/became-inactive")
    );
    assert!(!g.hard_shutdown);
    assert_eq!(g.ipvsadm, PathBuf::from("/usr/sbin/ipvsadm"));
    assert_eq!(
        g.reservation_conflict_action,
        Some(ReservationConflictAction::Preempt)
    );
    assert!(g.sync);
    assert_eq!(g.lines["syncd_id"], 22);
    let g = parse("reservation_conflict_action = nothing\nnetwork = direct\nmonitor_links = 0\n")
        .global;
    assert_eq!(
        g.reservation_conflict_action,
        Some(ReservationConflictAction::Nothing)
    );
    assert_eq!(g.network, ForwardMethod::Route);
    assert!(!g.monitor_links);
}

#[test]
fn heartbeat_port_takes_service_names() {
    assert_eq!(parse("heartbeat_port = ssh\n").global.heartbeat_port, 22);
}

#[test]
fn virtual_defaults() {
    let c = parse("virtual v {\n}\n");
    let v = &c.virtuals[0];
    assert_eq!((v.name.as_str(), v.line), ("v", 1));
    assert!(!v.active);
    assert_eq!(v.address, None);
    assert_eq!(v.vip_nmask, Ipv4Addr::UNSPECIFIED);
    assert_eq!(v.port, 80);
    assert_eq!(v.protocol, Protocol::Tcp);
    assert_eq!(v.fwmark, None);
    assert_eq!(v.scheduler, SchedulerKind::Wlc);
    assert!(v.sched_flags.is_empty());
    assert_eq!(v.persistent, 0);
    assert_eq!(v.pmask, Ipv4Addr::UNSPECIFIED);
    assert_eq!(v.send, None);
    assert_eq!(v.expect, None);
    assert!(!v.use_regex);
    assert_eq!(v.send_program, None);
    assert_eq!(v.load_monitor, None);
    assert_eq!(v.timeout, Duration::from_secs(10));
    assert_eq!(v.reentry, Duration::from_secs(180));
    assert!(!v.quiesce_server);
    assert_eq!(v.sorry_server, None);
    assert_eq!(v.client_monitor, PathBuf::from("/usr/sbin/nanny"));
    assert_eq!(v.start_cmd, None);
    assert_eq!(v.stop_cmd, None);
    assert_eq!(v.master, None);
    assert!(v.dirs.is_empty());
    assert!(v.servers.is_empty());
}

#[test]
fn every_virtual_keyword_is_parsed() {
    let c = parse(&vs(r#"    active = 1
    vip_nmask = 255.255.255.0
    port = 8080
    protocol = udp
    fwmark = 0x10
    scheduler = sh
    sched_flags = sh-port,sh-fallback
    persistent = 300
    pmask = 255.255.0.0
    send = "GET / HTTP/1.0\r\n\r\n"
    expect = "HTTP"
    use_regex = 1
    send_program = "/usr/local/bin/check %h %p"
    load_monitor = uptime
    timeout = 6
    reentry = 15
    quiesce_server = 1
    sorry_server = 198.19.0.99
    client_monitor = /usr/local/sbin/nanny
    start_cmd = "/etc/rc.d/init.d/httpd start"
    stop_cmd = "/etc/rc.d/init.d/httpd stop"
    master = director1
    dirs = [ /etc:/etc /var/www:/var/www ]"#));
    let v = &c.virtuals[0];
    assert!(v.active);
    assert_eq!(
        v.address,
        Some(AddressOnDevice {
            addr: ip("198.18.0.10"),
            device: "eth0:1".into()
        })
    );
    assert_eq!(v.vip_nmask, ip("255.255.255.0"));
    assert_eq!(v.port, 8080);
    assert_eq!(v.protocol, Protocol::Udp);
    assert_eq!(v.fwmark, Some(16));
    assert_eq!(v.scheduler, SchedulerKind::Sh);
    assert_eq!(v.sched_flags, [SchedFlag::ShPort, SchedFlag::ShFallback]);
    assert_eq!(v.persistent, 300);
    assert_eq!(v.pmask, ip("255.255.0.0"));
    assert_eq!(
        v.send.as_deref(),
        Some(r"GET / HTTP/1.0\r\n\r\n"),
        "escapes stay verbatim"
    );
    assert_eq!(v.expect.as_deref(), Some("HTTP"));
    assert!(v.use_regex);
    assert_eq!(
        v.send_program.as_deref(),
        Some("/usr/local/bin/check %h %p")
    );
    assert_eq!(v.load_monitor.as_deref(), Some("uptime"));
    assert_eq!(v.timeout, Duration::from_secs(6));
    assert_eq!(v.reentry, Duration::from_secs(15));
    assert!(v.quiesce_server);
    assert_eq!(v.sorry_server, Some(ip("198.19.0.99")));
    assert_eq!(v.client_monitor, PathBuf::from("/usr/local/sbin/nanny"));
    assert_eq!(v.start_cmd.as_deref(), Some("/etc/rc.d/init.d/httpd start"));
    assert_eq!(v.stop_cmd.as_deref(), Some("/etc/rc.d/init.d/httpd stop"));
    assert_eq!(v.master, Some(ip("198.18.0.2")));
    assert_eq!(v.dirs, ["/etc:/etc", "/var/www:/var/www"]);
    assert_eq!(v.lines["dirs"], 26);
}

#[test]
fn all_fourteen_schedulers_are_accepted() {
    for k in SchedulerKind::ALL {
        let c = parse(&vs(&format!("    scheduler = {}", k.name())));
        assert_eq!(c.virtuals[0].scheduler, k);
    }
}

#[test]
fn sorry_server_zero_means_none_and_empty_send_is_kept() {
    let c = parse(&vs("    sorry_server = 0.0.0.0\n    send = \"\""));
    assert_eq!(c.virtuals[0].sorry_server, None);
    assert_eq!(c.virtuals[0].send.as_deref(), Some(""));
}

#[test]
fn server_defaults_and_keywords() {
    let c = parse(&vs(
        "    port = 443\n    server a {\n    }\n    server b {\n        address = rs1.example\n        active = 1\n        weight = 0x20\n        port = 8443\n    }",
    ));
    let [a, b] = c.virtuals[0].servers.as_slice() else {
        panic!("two servers")
    };
    assert_eq!(a.name, "a");
    assert_eq!(a.address, Ipv4Addr::UNSPECIFIED);
    assert!(!a.active);
    assert_eq!(a.weight, 1);
    assert_eq!(a.port, 443, "default: the virtual port");
    assert_eq!(b.address, ip("198.19.0.11"), "host name through the lookup");
    assert!(b.active);
    assert_eq!(b.weight, 32);
    assert_eq!(b.port, 8443);
    assert_eq!(b.line, 7);
}

#[test]
fn server_port_default_is_the_virtual_port_when_the_server_is_read() {
    // Piranha: a `port` line after the server block does not change the server's port.
    let c = parse(&vs(
        "    server a {\n        address = 198.19.0.1\n    }\n    port = 8080\n    server b {\n        address = 198.19.0.2\n    }",
    ));
    let v = &c.virtuals[0];
    assert_eq!(v.port, 8080);
    assert_eq!(v.servers[0].port, 80);
    assert_eq!(v.servers[1].port, 8080);
}

#[test]
fn failover_sections_go_to_their_own_list() {
    let c = parse(
        "service = fos\nfailover web1 {\n     active = 1\n     address = 198.18.0.80 eth0:1\n     port = 80\n     send = \"GET / HTTP/1.0\\r\\n\\r\\n\"\n     expect = \"HTTP\"\n     timeout = 6\n     start_cmd = \"/etc/rc.d/init.d/httpd start\"\n     stop_cmd = \"/etc/rc.d/init.d/httpd stop\"\n}\nvirtual v {\n}\n",
    );
    assert_eq!(c.failovers.len(), 1);
    assert_eq!(c.virtuals.len(), 1);
    let f = &c.failovers[0];
    assert_eq!((f.name.as_str(), f.line, f.active), ("web1", 2, true));
    assert_eq!(f.stop_cmd.as_deref(), Some("/etc/rc.d/init.d/httpd stop"));
}

#[test]
fn integer_forms_like_strtol_base_0() {
    let w = |v: &str| {
        parse(&vs(&format!(
            "    server s {{\n        weight = {v}\n    }}"
        )))
        .virtuals[0]
            .servers[0]
            .weight
    };
    assert_eq!(w("0x1F"), 31);
    assert_eq!(w("0X1f"), 31);
    assert_eq!(w("017"), 15);
    assert_eq!(w("0"), 0);
    assert_eq!(w("+7"), 7);
    assert_eq!(w("65535"), 65535);
    assert!(parse("backup_active = 0x1\n").global.backup_active);
    assert_eq!(parse("syncd_id = 0377\n").global.syncd_id, 255);
}

#[test]
fn private_addresses_follow_piranha_post_processing() {
    let g = parse("primary = 198.18.0.2\nbackup = 198.18.0.3\n").global;
    assert_eq!(g.primary_private, ip("198.18.0.2"));
    assert_eq!(g.backup_private, ip("198.18.0.3"));
    // backup_private given without primary_private is overwritten, with a warning.
    let c = parse("primary = 198.18.0.2\nbackup = 198.18.0.3\nbackup_private = 198.19.0.3\n");
    assert_eq!(c.global.backup_private, ip("198.18.0.3"));
    assert!(
        c.warnings.iter().any(|w| w
            .to_string()
            .starts_with("t.cf:3: backup_private 198.19.0.3 is replaced by backup 198.18.0.3")),
        "{:?}",
        c.warnings
    );
    // Without primary nothing is copied.
    let g = parse("backup = 198.18.0.3\n").global;
    assert_eq!(g.backup_private, Ipv4Addr::UNSPECIFIED);
}

#[test]
fn piranha_gui_file_is_accepted() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../etc/piranha-gui.cf"
    ))
    .unwrap();
    let c = parse(&text);
    assert_eq!(c.global.serial_no, 25);
    assert!(c.global.heartbeat);
    assert_eq!(c.global.debug_level, "NONE");
    assert_eq!(c.global.keepalive, Duration::from_secs(6));
    assert_eq!(c.global.primary_private, ip("198.19.122.246"));
    let v = &c.virtuals[0];
    assert_eq!(v.line, 16);
    assert_eq!(v.load_monitor.as_deref(), Some("none"));
    assert_eq!(v.servers[0].line, 30);
    assert_eq!(v.servers[0].lines["weight"], 34);
}

#[test]
fn quoted_strings_and_comments() {
    let c = parse(&vs(
        "# a comment\n    # an indented comment\n\n    expect = 'HTTP/1.1 200'\n    load_monitor = \"ruptime\"",
    ));
    assert_eq!(c.virtuals[0].expect.as_deref(), Some("HTTP/1.1 200"));
    assert_eq!(c.virtuals[0].load_monitor.as_deref(), Some("ruptime"));
    assert_eq!(c.virtuals[0].lines["expect"], 7);
}

#[test]
fn fwmark_zero_means_off_like_piranha() {
    let cfg = parse(&vs("    active = 1\n    fwmark = 0"));
    assert_eq!(cfg.virtuals[0].fwmark, None);
}
