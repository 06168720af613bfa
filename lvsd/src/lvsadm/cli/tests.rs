//! Parser tests: ipvsadm's classic command lines, its defaults, and its refusals with the
//! exact text and exit status ipvsadm 1.31 gives (read from `parse_options`,
//! `process_options`, `generic_opt_check`).

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;
use crate::lvsadm::table::{Protocol, TunCsum};

fn parse(line: &str) -> Result<Command, CliError> {
    let mut argv = vec!["ipvsadm"];
    argv.extend(line.split_whitespace());
    parse_args(&argv)
}

fn err(line: &str) -> (String, u8) {
    match parse(line) {
        Ok(c) => panic!("{line:?} parsed as {c:?}"),
        Err(e) => (e.to_string(), e.exit_code()),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Inet {
        proto: Protocol::Tcp,
        addr: ip(addr),
        port,
    }
}

#[test]
fn add_service_defaults() {
    let spec = ServiceSpec {
        key: tcp("198.18.0.10", 80),
        scheduler: "wlc".into(),
        sched_flags: SchedFlags::default(),
        persistent: None,
        netmask: Netmask::V4(std::net::Ipv4Addr::BROADCAST),
        pe_name: None,
        ops: false,
    };
    assert_eq!(
        parse("-A -t 198.18.0.10:80 -s wlc"),
        Ok(Command::AddService(spec.clone()))
    );
    assert_eq!(
        parse("-A -t 198.18.0.10:80"),
        Ok(Command::AddService(spec.clone()))
    );
    assert_eq!(
        parse("-At198.18.0.10:80"),
        Ok(Command::AddService(spec.clone()))
    );
    assert_eq!(
        parse("--add-service --tcp-service=198.18.0.10:80 --scheduler wlc"),
        Ok(Command::AddService(spec))
    );
}

#[test]
fn add_service_persistence_and_flags() {
    let Ok(Command::EditService(s)) = parse("-E -t 10.0.0.1:0 -s sh -p -b sh-port,sh-fallback")
    else {
        panic!("not an edit");
    };
    assert_eq!(s.persistent, Some(360));
    assert_eq!(s.scheduler, "sh");
    assert_eq!(s.sched_flags, SchedFlags(3));
    let Ok(Command::AddService(s)) = parse("-A -f 7 -p 600 -M 255.255.255.0 -s rr") else {
        panic!("not an add");
    };
    assert_eq!(
        s.key,
        ServiceKey::Fwmark {
            mark: 7,
            ipv6: false
        }
    );
    assert_eq!(s.persistent, Some(600));
    assert_eq!(
        s.netmask,
        Netmask::V4("255.255.255.0".parse().expect("mask"))
    );
    // No prefix-length form for IPv4: `-M 24` is the mask 0.0.0.24.
    let Ok(Command::AddService(s)) = parse("-A -t 10.0.0.1:80 -p -M 24") else {
        panic!("not an add");
    };
    assert_eq!(s.netmask, Netmask::V4("0.0.0.24".parse().expect("mask")));
    let Ok(Command::AddService(s)) = parse("-A -f 9 -6 -p 60 -M 64") else {
        panic!("not an add");
    };
    assert_eq!(
        s.key,
        ServiceKey::Fwmark {
            mark: 9,
            ipv6: true
        }
    );
    assert_eq!(s.netmask, Netmask::V6(64));
    let Ok(Command::AddService(s)) = parse("-A -u 10.0.0.1:53 -o -s rr") else {
        panic!("not an add");
    };
    assert!(s.ops);
    let Ok(Command::AddService(s)) = parse("-A -t [2001:db8::1]:443") else {
        panic!("not an add");
    };
    assert_eq!(s.key, tcp("2001:db8::1", 443));
    assert_eq!(s.netmask, Netmask::V6(128));
}

#[test]
fn add_server_classic() {
    let dest = |addr: &str, port, method, weight| DestSpec {
        addr: ip(addr),
        port,
        method,
        tunnel: Tunnel::Ipip,
        weight,
        upper: 0,
        lower: 0,
    };
    assert_eq!(
        parse("-a -t 198.18.0.10:80 -r 198.19.0.11:8000 -m -w 2"),
        Ok(Command::AddDest {
            service: tcp("198.18.0.10", 80),
            dest: dest("198.19.0.11", 8000, Method::Masq, 2),
        })
    );
    // -g is the default, and forces the service port.
    assert_eq!(
        parse("-a -t 198.18.0.10:80 -r 198.19.0.11:8000"),
        Ok(Command::AddDest {
            service: tcp("198.18.0.10", 80),
            dest: dest("198.19.0.11", 80, Method::Route, 1),
        })
    );
    assert_eq!(
        parse("-e -t 198.18.0.10:80 -r 198.19.0.12 -i -w 0 -x 100 -y 50"),
        Ok(Command::EditDest {
            service: tcp("198.18.0.10", 80),
            dest: DestSpec {
                upper: 100,
                lower: 50,
                ..dest("198.19.0.12", 80, Method::Tunnel, 0)
            },
        })
    );
    // -r before the service copies the port parsed so far (0); -m keeps it.
    let Ok(Command::AddDest { dest: d, .. }) = parse("-a -r 10.1.1.1 -t 10.0.0.1:80 -m") else {
        panic!("not an add");
    };
    assert_eq!(d.port, 0);
    let Ok(Command::AddDest { dest: d, .. }) =
        parse("-a -t 10.0.0.1:80 -r 10.1.1.1 -i --tun-type gue --tun-port 6080 --tun-csum")
    else {
        panic!("not an add");
    };
    assert_eq!(
        d.tunnel,
        Tunnel::Gue {
            port: 6080,
            csum: TunCsum::Csum
        }
    );
    // fwmark services keep the server port, 0 by default.
    let Ok(Command::AddDest { dest: d, .. }) = parse("-a -f 7 -r 10.1.1.1") else {
        panic!("not an add");
    };
    assert_eq!(d.port, 0);
}

#[test]
fn delete_zero_set_daemon() {
    assert_eq!(
        parse("-D -t 198.18.0.10:80"),
        Ok(Command::DeleteService(tcp("198.18.0.10", 80)))
    );
    assert_eq!(
        parse("-d -t 198.18.0.10:80 -r 198.19.0.11"),
        Ok(Command::DeleteDest {
            service: tcp("198.18.0.10", 80),
            addr: ip("198.19.0.11"),
            port: 80
        })
    );
    assert_eq!(parse("-Z"), Ok(Command::Zero(None)));
    assert_eq!(
        parse("-Z -t 198.18.0.10:80"),
        Ok(Command::Zero(Some(tcp("198.18.0.10", 80))))
    );
    assert_eq!(parse("-C"), Ok(Command::Clear));
    assert_eq!(parse("-R"), Ok(Command::Restore));
    assert_eq!(parse("-S -n"), Ok(Command::Save { numeric: true }));
    assert_eq!(
        parse("--set 900 120 300"),
        Ok(Command::SetTimeouts {
            tcp: 900,
            tcpfin: 120,
            udp: 300
        })
    );
    let Ok(Command::StartDaemon(d)) = parse("--start-daemon backup --syncid 5") else {
        panic!("not a daemon");
    };
    assert_eq!(
        (d.state, d.mcast_ifn.as_str(), d.syncid),
        (DaemonState::Backup, "eth0", 5)
    );
    assert_eq!(
        parse("--stop-daemon master"),
        Ok(Command::StopDaemon {
            state: DaemonState::Master,
            syncid: None
        })
    );
    assert_eq!(parse("-h"), Ok(Command::Help));
    assert_eq!(parse("--version"), Ok(Command::Version));
}

#[test]
fn list_options() {
    let Ok(Command::List(o)) = parse("-Ln --stats --exact --sort") else {
        panic!("not a list");
    };
    assert!(o.numeric && o.stats && o.exact && !o.nosort);
    assert_eq!(o.mode(), ListMode::All);
    let Ok(Command::List(o)) = parse("-Lnc") else {
        panic!("not a list");
    };
    assert_eq!(o.mode(), ListMode::Connections);
    let Ok(Command::List(o)) = parse("-l -n -t 10.0.0.1:80") else {
        panic!("not a list");
    };
    assert_eq!(o.mode(), ListMode::Service(tcp("10.0.0.1", 80)));
    let Ok(Command::List(o)) = parse("-L --timeout") else {
        panic!("not a list");
    };
    assert_eq!(o.mode(), ListMode::Timeout);
    assert_eq!(
        parse_args(&["ipvsadm"]),
        Ok(Command::List(ListOptions::default()))
    );
}

#[test]
fn refusals_with_ipvsadm_text_and_status() {
    let cases: &[(&str, &str, u8)] = &[
        (
            "-n -L",
            "Try `ipvsadm -h' or 'ipvsadm --help' for more information.",
            255,
        ),
        (
            "10.0.0.1",
            "Try `ipvsadm -h' or 'ipvsadm --help' for more information.",
            255,
        ),
        (
            "--bogus",
            "Try `ipvsadm -h' or 'ipvsadm --help' for more information.",
            255,
        ),
        ("-A -t 10.0.0.1:80 --bogus", "--bogus: unknown option", 255),
        ("-A -t", "-t: missing argument", 255),
        ("--set 1 2 -1", "-1: unknown option", 255),
        ("-A -t 10.0.0.1:80 -L", "invalid option `-L'", 2),
        ("-L -h", "invalid option `-h'", 2),
        (
            "-A -t 10.0.0.1",
            "Zero port specified for non-persistent service",
            2,
        ),
        (
            "-A -t 10.0.0.1:80 -s rr -s wlc",
            "multiple 'scheduler' options specified",
            2,
        ),
        (
            "-A -t 10.0.0.1:80 -f 3",
            "multiple 'service-address' options specified",
            2,
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.1.1.1 -m -g",
            "multiple 'forwarding-method' options specified",
            2,
        ),
        (
            "-A -t 1234",
            "illegal virtual server address[:port] specified",
            2,
        ),
        (
            "-A -t www.example.com:80",
            "illegal virtual server address[:port] specified",
            2,
        ),
        (
            "-A -t 10.0.0.1:http",
            "illegal virtual server address[:port] specified",
            2,
        ),
        (
            "-A -t 10.0.0.1:65536",
            "illegal virtual server address[:port] specified",
            2,
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.1.1",
            "Different address family is allowed only for tunneling servers",
            0,
        ),
        (
            "-a -t 10.0.0.1:80 -r 300.1.1.1",
            "illegal real server address[:port] specified",
            2,
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.1.1.1 -w 65536",
            "illegal weight specified",
            2,
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.1.1.1 -x -1",
            "illegal u_threshold specified",
            2,
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.1.1.1 -y x",
            "illegal l_threshold specified",
            2,
        ),
        (
            "-A -t 10.0.0.1:80 -p 0",
            "invalid timeout value `0' specified",
            2,
        ),
        ("-A -f 0", "invalid fwmark value `0' specified", 2),
        (
            "-A -f 4294967296",
            "invalid fwmark value `4294967296' specified",
            2,
        ),
        (
            "-A -t 10.0.0.1:80 -p -M 300.0.0.0",
            "illegal virtual server persistent mask specified",
            2,
        ),
        (
            "-A -t [::1]:80 -p -M 129",
            "illegal ipv6 netmask specified",
            2,
        ),
        ("-A -t 10.0.0.1:80 -6", "-6 used before -f\n", 2),
        (
            "-A -t 10.0.0.1:80 -b sh-port",
            "incompatible scheduler flag `sh-port'",
            2,
        ),
        (
            "-A -t 10.0.0.1:80 -s sh -b sh-port,nope",
            "invalid scheduler flag `nope'",
            2,
        ),
        (
            "-A -t 10.0.0.1:80 -o",
            "One-Packet Scheduling is only for UDP virtual services",
            2,
        ),
        (
            "-A -t 10.0.0.1:80 -r 10.1.1.1",
            "Illegal 'real-server' option with the 'add-service' command",
            2,
        ),
        (
            "-a -t 10.0.0.1:80",
            "You need to supply the 'real-server' option for the 'add-server' command",
            2,
        ),
        (
            "-a -r 10.1.1.1",
            "You need to supply the 'service-address' option for the 'add-server' command",
            2,
        ),
        (
            "-D",
            "You need to supply the 'service-address' option for the 'delete-service' command",
            2,
        ),
        (
            "-C -n",
            "Illegal 'numeric' option with the 'flush' command",
            2,
        ),
        (
            "-L -c -t 10.0.0.1:80",
            "The option 'service-address' conflicts with the 'connection' option in the 'list' command",
            2,
        ),
        (
            "-L --timeout --daemon",
            "The option 'daemon' conflicts with the 'timeout' option in the 'list' command",
            2,
        ),
        ("-L -c --stats", "options conflicts in the list command", 2),
        (
            "-L --daemon --persistent-conn",
            "options conflicts in the list command",
            2,
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.1.1.1 -m --tun-csum",
            "Tunnel options conflict with forward method",
            2,
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.1.1.1 -i --tun-type gue",
            "You need to supply the 'tun-port' option for the 'gue' tunnel type",
            2,
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.1.1.1 -i --tun-csum",
            "Illegal 'tun-csum' option with the 'ipip' tunnel type",
            2,
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.1.1.1 -i --tun-type gue --tun-port 1 --tun-csum --tun-remcsum",
            "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type",
            2,
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.1.1.1 -i --tun-type vxlan",
            "illegal tunnel type specified",
            2,
        ),
        (
            "-a -t [2001:db8::1]:80 -r 10.1.1.1",
            "Different address family is allowed only for tunneling servers",
            2,
        ),
        ("--set 1 2", "--set option requires 3 timeout values", 2),
        ("--set 1 2 3 4", "unexpected argument 4", 2),
        (
            "--set 1 2 2678401",
            "invalid timeout value `2678401' specified",
            2,
        ),
        ("-L extra", "unexpected argument extra", 2),
        (
            "--start-daemon slave",
            "illegal start-daemon parameter specified",
            2,
        ),
        ("--stop-daemon slave", "illegal start_daemon specified", 2),
        (
            "--start-daemon master --syncid 256",
            "illegal syncid specified",
            2,
        ),
        (
            "--start-daemon master --mcast-group 10.0.0.1",
            "invalid IPv4 mcast-group `10.0.0.1'",
            2,
        ),
        (
            "--start-daemon master --mcast-group ::1",
            "invalid IPv6 mcast-group `::1'",
            2,
        ),
        (
            "--start-daemon master --mcast-port 0",
            "illegal mcast-port specified",
            2,
        ),
        (
            "--stop-daemon master --mcast-interface eth1",
            "Illegal 'mcast-interface' option with the 'stop-daemon' command",
            2,
        ),
    ];
    for (line, text, code) in cases {
        if *code == 0 {
            // `10.1.1` is a valid short IPv4 form (10.1.0.1): this one parses.
            assert!(parse(line).is_ok(), "{line}");
            continue;
        }
        assert_eq!(err(line), (text.to_string(), *code), "{line}");
    }
}

#[test]
fn restore_lines() {
    let text =
        "ipvsadm -A -t 10.0.0.1:80 -s rr\n\n  \r\n-a -t 10.0.0.1:80 -r 10.1.1.1:80 -m -w 3\r\n";
    let cmds = parse_restore(text).expect("valid input");
    assert_eq!(cmds.len(), 2);
    assert!(matches!(cmds[1], Command::AddDest { .. }));
    let (line, e) = parse_restore("-C\n# a comment\n").expect_err("# is no comment");
    assert_eq!((line, e.exit_code()), (2, 255));
    let (line, e) = parse_restore("-A -t 10.0.0.1:80\n-R\n").expect_err("nested");
    assert_eq!(line, 2);
    assert!(matches!(e, CliError::TryHelp { .. }));
    let all = parse_restore_lines("-A -t 10.0.0.1:80 --x\n-C\n", "ipvsadm");
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[0].1.clone().map_err(|e| e.to_string()),
        Err("--x: unknown option".into())
    );
    assert_eq!(all[1].1, Ok(Command::Clear));
}

#[test]
fn option_tables_are_consistent() {
    for row in LEGAL {
        assert_eq!(row.len(), OPTNAMES.len());
    }
    assert_eq!(cut("wlcwlcwlcwlcwlcwlc", 15), "wlcwlcwlcwlcwlc");
    assert_eq!(cut("ééééééééé", 15), "ééééééé");
}

const WORDS: &[&str] = &[
    "-A",
    "-E",
    "-D",
    "-C",
    "-R",
    "-S",
    "-a",
    "-e",
    "-d",
    "-L",
    "-l",
    "-Z",
    "-h",
    "-v",
    "--set",
    "-t",
    "-u",
    "-f",
    "-s",
    "-p",
    "-M",
    "-b",
    "-r",
    "-g",
    "-i",
    "-m",
    "-w",
    "-x",
    "-y",
    "-n",
    "-c",
    "-6",
    "-o",
    "--stats",
    "--rate",
    "--exact",
    "--thresholds",
    "--persistent-conn",
    "--timeout",
    "--daemon",
    "--sort",
    "--nosort",
    "--start-daemon",
    "--stop-daemon",
    "--syncid",
    "--mcast-group",
    "--tun-type",
    "--tun-port",
    "--tun-csum",
    "--pe",
    "master",
    "10.0.0.1:80",
    "[::1]:80",
    "::1",
    "0",
    "1",
    "65536",
    "sh-port,flag-3",
    ",",
    "",
    "-",
    "--",
    "-Ln",
    "-pé",
    "--weight=3",
    "é",
];

proptest! {
    #[test]
    fn never_panics(picks in proptest::collection::vec((0..WORDS.len(), ".{0,6}"), 0..10)) {
        let mut argv = vec!["ipvsadm".to_string()];
        for (i, junk) in picks {
            argv.push(if i % 7 == 0 { junk } else { WORDS[i].to_string() });
        }
        let _ = parse_args(&argv);
        let _ = parse_restore(&argv[1..].join(" "));
    }
}
