//! Golden tests for lvsadm's renderers: each file under `tests/golden/lvsadm/` is what
//! ipvsadm 1.31 prints for the table built by [`golden_table`].
//!
//! The goldens were written from ipvsadm.c's printf formats, not from lvsadm's output:
//! `golden/lvsadm/gen.py` feeds the same data through the format strings copied verbatim
//! from ipvsadm.c (Python's `%` is C printf for these conversions). Which format each golden
//! follows:
//! - `list_n.txt` (`-L -n`, also `-L -n --sort`): `list_all`'s
//!   `"IP Virtual Server version %d.%d.%d (size=%d)\n"`, `print_title`'s default two lines,
//!   `print_service_entry`'s `"%s %s"` + `" (%s)"` flags + `" persistent %u"` + `" mask %s"`,
//!   svc_name `"%-4s %s"` / `"FWM  %d"`, dest `"  -> %-28s %-7s %-6d %-10u %-10u\n"`.
//! - `list_n_stats.txt` (`--stats`), `list_n_stats_exact.txt` (`--stats --exact`):
//!   title `"%-33s %8s %8s %8s %8s %8s\n"`, service `"%-33s"` + five `print_largenum`,
//!   dest `"  -> %-28s"` + five `print_largenum` (`"%9llu"`, `"%8lluK"`, `"%8lluM"`,
//!   `"%8lluG"`, `"%8lluT"`; exact `"%*llu"` with width 9 or len+1).
//! - `list_n_rate.txt` (`--rate`): same title with CPS..OutBPS, dest
//!   `"  -> %-28s %8llu %8llu %8llu"` + two `print_largenum`.
//! - `list_n_thresholds.txt`: title `"%-33s %-10s %-10s %-10s %-10s\n"`, dest
//!   `"  -> %-28s %-10u %-10u %-10u %-10u\n"`.
//! - `list_n_persistent_conn.txt`: title `"%-33s %-9s %-11s %-10s %-10s\n"`, dest
//!   `"  -> %-28s %-9u %-11u %-10u %-10u\n"`.
//! - `list_nc.txt` (`-L -n -c`): `list_conn`'s `"IPVS connection entries\n"` and
//!   `"pro expire %-11s %-18s %-18s %s\n"`, `print_conn`'s `"%02d:%02d"` and
//!   `"%-3s %-6s %-11s %-18s %-18s %s\n"`.
//! - `save_n.txt` (`-S -n`): `"-A %s -s %s"` + `" -p %u"` + `" -M %s"` + `" -b "`, dests
//!   `"-a %s -r %s %s -w %d\n"` and `print_tunnel_rule`'s `"... --tun-type %s\n"` (ipip).
//! - `timeout.txt`: `list_timeout`'s `"Timeout (tcp tcpfin udp): %d %d %d\n"`.

use std::net::{IpAddr, SocketAddr};

use lvsd::lvsadm::cli::{self, Command, ListOptions};
use lvsd::lvsadm::format;
use lvsd::lvsadm::table::{
    Conn, ConnProto, DaemonInfo, DaemonState, Dest, Method, Netmask, Protocol, Rates, SchedFlags,
    Service, ServiceKey, Stats, Table, Timeouts,
};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("test socket address")
}

fn golden(name: &str) -> String {
    let path = format!("{}/tests/golden/lvsadm/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).expect("golden file")
}

fn stats(v: [u64; 5]) -> Stats {
    Stats {
        conns: v[0],
        inpkts: v[1],
        outpkts: v[2],
        inbytes: v[3],
        outbytes: v[4],
    }
}

fn rates(v: [u64; 5]) -> Rates {
    Rates {
        cps: v[0],
        inpps: v[1],
        outpps: v[2],
        inbps: v[3],
        outbps: v[4],
    }
}

fn dest(addr: &str, port: u16, method: Method, weight: i32, active: u32, inactive: u32) -> Dest {
    Dest {
        method,
        weight,
        active,
        inactive,
        ..Dest::new(ip(addr), port)
    }
}

/// The golden table, in an order the listings must sort: fwmark first, dests unsorted.
fn golden_table() -> Table {
    let tcp = ServiceKey::Inet {
        proto: Protocol::Tcp,
        addr: ip("198.18.0.10"),
        port: 80,
    };
    let udp = ServiceKey::Inet {
        proto: Protocol::Udp,
        addr: ip("198.18.0.10"),
        port: 53,
    };
    let fwm = ServiceKey::Fwmark {
        mark: 7,
        ipv6: false,
    };
    let mut masq = dest("198.19.0.11", 8000, Method::Masq, 2, 12, 3);
    masq.upper = 100;
    masq.lower = 50;
    masq.stats = stats([1000, 100_000_000, 5, 999_999_999, 1_000_000_000]);
    masq.rates = rates([20, 200, 100, 100_000_000, 1000]);
    let mut route = dest("198.19.0.12", 80, Method::Route, 1, 1, 200);
    route.stats.conns = 234;
    let web = Service {
        stats: stats([
            1234,
            123_456_789,
            98_765_432_109,
            123_456_789_012_345,
            99_999_999,
        ]),
        rates: rates([25, 250, 125, 123_456_789, 12_500]),
        dests: vec![
            dest("198.19.0.13", 80, Method::Tunnel, 0, 0, 0),
            masq,
            route,
        ],
        ..Service::new(tcp)
    };
    let dns = Service {
        scheduler: "rr".into(),
        dests: vec![
            dest("198.19.0.14", 53, Method::Local, 1, 0, 0),
            dest("198.19.0.11", 53, Method::Masq, 1, 0, 4),
        ],
        ..Service::new(udp)
    };
    let mut p1 = dest("198.19.0.22", 0, Method::Tunnel, 1, 0, 0);
    p1.persistent = 2;
    let mut p2 = dest("198.19.0.21", 0, Method::Route, 1, 3, 0);
    p2.persistent = 5;
    let mark = Service {
        scheduler: "sh".into(),
        sched_flags: SchedFlags(SchedFlags::SCHED1 | SchedFlags::SCHED2),
        persistent: Some(600),
        netmask: Netmask::V4("255.255.255.0".parse().expect("mask")),
        dests: vec![p1, p2],
        ..Service::new(fwm)
    };
    Table {
        services: vec![mark, dns, web],
        ..Table::default()
    }
}

fn list(args: &str) -> String {
    let mut argv = vec!["ipvsadm"];
    argv.extend(args.split_whitespace());
    let Ok(Command::List(opts)) = cli::parse_args(&argv) else {
        panic!("{args} is not a listing");
    };
    format::list(&golden_table(), &opts).expect("all services exist")
}

#[test]
fn list_numeric() {
    assert_eq!(list("-L -n"), golden("list_n.txt"));
    assert_eq!(list("-Ln --sort"), golden("list_n.txt"));
    // lvsadm resolves no names: -L prints what -L -n prints.
    assert_eq!(list("-L"), golden("list_n.txt"));
}

#[test]
fn list_stats_rate_exact() {
    assert_eq!(list("-L -n --stats"), golden("list_n_stats.txt"));
    assert_eq!(
        list("-L -n --exact --stats"),
        golden("list_n_stats_exact.txt")
    );
    assert_eq!(list("-L -n --rate"), golden("list_n_rate.txt"));
    // --stats wins over --rate (print_title's order).
    assert_eq!(list("-L -n --rate --stats"), golden("list_n_stats.txt"));
}

#[test]
fn list_thresholds_persistent_conn() {
    assert_eq!(list("-L -n --thresholds"), golden("list_n_thresholds.txt"));
    assert_eq!(
        list("-L -n --persistent-conn"),
        golden("list_n_persistent_conn.txt")
    );
}

#[test]
fn list_one_service_has_no_version_line() {
    // Title lines (2-3) and the TCP block (4-7) of `-L -n`, without line 1.
    let all = golden("list_n.txt");
    let expected: String = all
        .lines()
        .skip(1)
        .take(6)
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(list("-L -n -t 198.18.0.10:80"), expected);
    let Ok(Command::List(opts)) = cli::parse_args(&["ipvsadm", "-L", "-t", "10.9.9.9:1"]) else {
        panic!("not a listing");
    };
    let e = format::list(&golden_table(), &opts).expect_err("no such service");
    assert_eq!(
        (e.to_string(), e.exit_code(true)),
        ("No such service".into(), 1)
    );
}

#[test]
fn list_connections() {
    let conn = |proto, secs: u64, state: &str, c: &str, v: &str, d: &str| Conn {
        proto,
        client: sa(c),
        vaddr: sa(v),
        daddr: sa(d),
        state: state.into(),
        expires_ms: secs * 1000 + 999,
        pe: None,
    };
    let conns = [
        conn(
            ConnProto::Tcp,
            899,
            "ESTABLISHED",
            "203.0.113.7:51234",
            "198.18.0.10:80",
            "198.19.0.11:8000",
        ),
        conn(
            ConnProto::Tcp,
            119,
            "FIN_WAIT",
            "203.0.113.8:40000",
            "198.18.0.10:80",
            "198.19.0.12:80",
        ),
        conn(
            ConnProto::Udp,
            3725,
            "UDP",
            "203.0.113.9:5353",
            "198.18.0.10:53",
            "198.19.0.14:53",
        ),
        conn(
            ConnProto::Ip,
            599,
            "NONE",
            "203.0.113.0:0",
            "0.0.0.7:0",
            "198.19.0.21:0",
        ),
    ];
    let Ok(Command::List(opts)) = cli::parse_args(&["ipvsadm", "-Lnc"]) else {
        panic!("not a listing");
    };
    assert_eq!(format::list_conns(&conns, &opts), golden("list_nc.txt"));
}

#[test]
fn timeout_and_daemon() {
    assert_eq!(
        format::list_timeout(&Timeouts::default()),
        golden("timeout.txt")
    );
    let d = DaemonInfo {
        state: DaemonState::Backup,
        mcast_ifn: "eth1".into(),
        syncid: 3,
        sync_maxlen: 1472,
        mcast_group: Some(ip("224.0.0.81")),
        mcast_port: 8848,
        mcast_ttl: 1,
    };
    let m = DaemonInfo {
        state: DaemonState::Master,
        mcast_group: None,
        mcast_port: 0,
        ..d.clone()
    };
    assert_eq!(
        format::list_daemon(&[d, m]),
        "master sync daemon (mcast=eth1, syncid=3, maxlen=1472, ttl=1)\n\
         backup sync daemon (mcast=eth1, syncid=3, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
    );
    assert_eq!(format::list_daemon(&[]), "");
}

#[test]
fn save_numeric() {
    assert_eq!(format::save(&golden_table()), golden("save_n.txt"));
}

/// `-S` output restores with `-R`: the commands rebuild the table (without counters,
/// thresholds, or Local, which ipvsadm saves as `-g`), and saving again gives the same text.
#[test]
fn save_restore_round_trip() {
    let original = golden_table();
    let saved = format::save(&original);
    let cmds = cli::parse_restore(&saved).expect("-S output parses");
    assert_eq!(cmds.len(), saved.lines().count());
    let mut rebuilt = Table::default();
    for c in &cmds {
        rebuilt.apply(c).expect("-S output applies");
    }
    assert_eq!(format::save(&rebuilt), saved);
    for (a, b) in format::sorted_services(&original, false)
        .into_iter()
        .zip(format::sorted_services(&rebuilt, false))
    {
        assert_eq!(
            (a.key, &a.scheduler, a.persistent, a.netmask),
            (b.key, &b.scheduler, b.persistent, b.netmask)
        );
        assert_eq!(a.sched_flags, b.sched_flags);
        let da: Vec<_> = format::sorted_dests(a, false)
            .into_iter()
            .map(|d| {
                (
                    d.addr,
                    d.port,
                    if d.method == Method::Local {
                        Method::Route
                    } else {
                        d.method
                    },
                    d.weight,
                )
            })
            .collect();
        let db: Vec<_> = format::sorted_dests(b, false)
            .into_iter()
            .map(|d| (d.addr, d.port, d.method, d.weight))
            .collect();
        assert_eq!(da, db);
    }
}

/// The seeds' classic command lines build the expected table, and the kernel's refusals
/// come back with ipvsadm's words.
#[test]
fn classic_lines_build_the_table() {
    let mut t = Table::default();
    let script = "\
        -A -t 198.18.0.10:80 -s wlc\n\
        -a -t 198.18.0.10:80 -r 198.19.0.11:8000 -m -w 2\n\
        -a -t 198.18.0.10:80 -r 198.19.0.12:8000 -m -w 1\n\
        -e -t 198.18.0.10:80 -r 198.19.0.12:8000 -m -w 3\n\
        -E -t 198.18.0.10:80 -s rr\n\
        -A -u 198.18.0.10:53 -s rr\n\
        -d -t 198.18.0.10:80 -r 198.19.0.11:8000\n\
        -D -u 198.18.0.10:53\n\
        -Z\n";
    for c in cli::parse_restore(script).expect("classic lines parse") {
        t.apply(&c).expect("classic lines apply");
    }
    let opts = ListOptions {
        numeric: true,
        ..ListOptions::default()
    };
    assert_eq!(
        format::list(&t, &opts).expect("list"),
        "IP Virtual Server version 1.2.1 (size=4096)\n\
         Prot LocalAddress:Port Scheduler Flags\n  \
         -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
         TCP  198.18.0.10:80 rr\n  \
         -> 198.19.0.12:8000             Masq    3      0          0         \n"
    );
    let refuse = |line: &str| {
        let c = cli::parse_restore(line).expect("parses").remove(0);
        let e = t.clone().apply(&c).expect_err("refused");
        (e.to_string(), e.exit_code(false))
    };
    assert_eq!(
        refuse("-A -t 198.18.0.10:80"),
        ("Service already exists".into(), 255)
    );
    assert_eq!(
        refuse("-a -t 198.18.0.10:81 -r 1.1.1.1"),
        ("Service not defined".into(), 255)
    );
    assert_eq!(
        refuse("-e -t 198.18.0.10:80 -r 1.1.1.1"),
        ("No such destination".into(), 255)
    );
    assert_eq!(
        refuse("-D -t 198.18.0.10:81"),
        ("No such service".into(), 255)
    );
    assert_eq!(
        refuse("-A -t 198.18.0.10:81 -s nope"),
        ("Scheduler or persistence engine not found".into(), 255)
    );
}
