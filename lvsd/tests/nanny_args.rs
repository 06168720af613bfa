//! `lvsd::nanny_args::nanny_args` on every `etc/*.cf` sample: the exact argument vector of each
//! active real server's nanny, in Piranha's order.

mod common;

use std::path::Path;

use lvsd::lvscf::parse_str;
use lvsd::nanny_args::nanny_args;

/// `SERVICE/SERVER: ARGS` for every active server of every active service in `etc/NAME`.
fn vectors(name: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../etc")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("sample readable");
    let cfg = parse_str(name, &text, &common::lookup()).unwrap_or_else(|e| panic!("{e}"));
    cfg.active_virtuals()
        .flat_map(|v| {
            let cfg = &cfg;
            v.active_servers().map(move |s| {
                format!(
                    "{}/{}: {}",
                    v.name,
                    s.name,
                    nanny_args(cfg, v, s, false, false).join(" ")
                )
            })
        })
        .collect()
}

/// Pinned vectors. Notes: `send = ""` is passed as an empty `-s` value (connect only);
/// `load_monitor = none` is passed as `-U none` (Piranha passes any value but `uptime` as is);
/// under direct routing `-r` is the virtual port, the port IPVS uses.
#[test]
fn every_sample_gives_piranhas_argument_order() {
    assert_eq!(
        vectors("direct-routing.cf"),
        [
            r#"web/web1: -c -h 198.18.1.21 -p 80 -r 80 -s GET /health HTTP/1.0\r\n\r\n -x HTTP/1.0 200 -a 20 -I /sbin/ipvsadm -t 5 -w 3 -V 198.18.0.20 -M g --lvs"#,
            r#"web/web2: -c -h 198.18.1.22 -p 80 -r 80 -s GET /health HTTP/1.0\r\n\r\n -x HTTP/1.0 200 -a 20 -I /sbin/ipvsadm -t 5 -w 1 -V 198.18.0.20 -M g --lvs"#,
            "tls/web1: -c -h 198.18.1.21 -p 443 -r 443 -s  -a 180 -I /sbin/ipvsadm -t 10 -w 1 -V 198.18.0.20 -M g --lvs",
            "tls/web2: -c -h 198.18.1.22 -p 443 -r 443 -s  -a 180 -I /sbin/ipvsadm -t 10 -w 1 -V 198.18.0.20 -M g --lvs",
        ]
    );
    assert_eq!(
        vectors("nat.cf"),
        [
            r#"www/web1: -c -h 198.19.0.11 -p 80 -r 8080 -s GET / HTTP/1.0\r\n\r\n -x HTTP -a 15 -I /sbin/ipvsadm -t 6 -w 2 -V 198.18.0.10 -M m --lvs"#,
            r#"www/web2: -c -h 198.19.0.12 -p 80 -r 8081 -s GET / HTTP/1.0\r\n\r\n -x HTTP -a 15 -I /sbin/ipvsadm -t 6 -w 1 -V 198.18.0.10 -M m --lvs"#,
        ]
    );
    assert_eq!(
        vectors("persistent-fwmark.cf"),
        [
            r#"shop/shop1: -c -h 198.18.2.1 -p 80 -r 80 -f 80 -s GET / HTTP/1.0\r\n\r\n -x HTTP -a 180 -I /sbin/ipvsadm -t 10 -w 1 -V 198.18.0.40 -M g --lvs"#,
            r#"shop/shop2: -c -h 198.18.2.2 -p 80 -r 80 -f 80 -s GET / HTTP/1.0\r\n\r\n -x HTTP -a 180 -I /sbin/ipvsadm -t 10 -w 1 -V 198.18.0.40 -M g --lvs"#,
        ]
    );
    assert_eq!(
        vectors("piranha-gui.cf"),
        [
            r#"http/node1: -c -h 198.19.122.224 -p 80 -r 80 -s GET / HTTP/1.0\r\n\r\n -x HTTP -a 15 -I /sbin/ipvsadm -t 6 -w 1 -V 198.18.0.100 -M g -U none --lvs"#,
        ]
    );
    assert_eq!(
        vectors("sorry-server.cf"),
        [
            r#"app/app1: -c -h 198.19.0.61 -p 80 -r 80 -s GET /ping HTTP/1.0\r\n\r\n -x HTTP/1.[01] 200 -q --regex -a 180 -I /sbin/ipvsadm -t 10 -w 1 -V 198.18.0.60 -M m --nodaemon --lvs"#,
            r#"app/app2: -c -h 198.19.0.62 -p 80 -r 80 -s GET /ping HTTP/1.0\r\n\r\n -x HTTP/1.[01] 200 -q --regex -a 180 -I /sbin/ipvsadm -t 10 -w 1 -V 198.18.0.60 -M m --nodaemon --lvs"#,
        ]
    );
    assert_eq!(
        vectors("source-hash.cf"),
        [
            "imap/imap1: -c -h 198.18.3.1 -p 143 -r 143 -s  -a 180 -I /sbin/ipvsadm -t 10 -w 1 -V 198.18.0.143 -M g --lvs",
            "imap/imap2: -c -h 198.18.3.2 -p 143 -r 143 -s  -a 180 -I /sbin/ipvsadm -t 10 -w 1 -V 198.18.0.143 -M g --lvs",
        ]
    );
    assert_eq!(
        vectors("tunnel.cf"),
        [
            "mail/mx1: -c -h 198.19.10.1 -p 25 -r 25 -s  -a 60 -I /sbin/ipvsadm -t 10 -w 10 -V 198.18.0.30 -M i --lvs",
            "mail/mx2: -c -h 198.19.20.1 -p 25 -r 25 -s  -a 60 -I /sbin/ipvsadm -t 10 -w 5 -V 198.18.0.30 -M i --lvs",
        ]
    );
    assert_eq!(
        vectors("udp.cf"),
        [
            r"dns/ns1: -c -h 198.19.53.1 -p 53 -r 53 -u -s \x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x01 -x * -a 9 -I /sbin/ipvsadm -t 3 -w 1 -V 198.18.0.53 -M m --lvs",
            r"dns/ns2: -c -h 198.19.53.2 -p 53 -r 53 -u -s \x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x01 -x * -a 9 -I /sbin/ipvsadm -t 3 -w 1 -V 198.18.0.53 -M m --lvs",
        ]
    );
}

#[test]
fn uptime_becomes_the_rsh_command_and_flags_are_appended() {
    let text = "rsh_command = ssh\nvirtual v {\n active = 1\n address = 198.18.0.10 eth0:1\n protocol = udp\n port = 53\n fwmark = 7\n send_program = \"/usr/local/bin/check %h %p\"\n send = \"x\"\n expect = \"OK\"\n load_monitor = uptime\n reentry = 0\n rise = 2\n fall = 3\n server a {\n  address = 198.19.0.1\n  active = 1\n  port = 5353\n  weight = 0\n }\n}\n";
    let cfg = parse_str("t.cf", text, &common::lookup()).unwrap_or_else(|e| panic!("{e}"));
    let v = &cfg.virtuals[0];
    assert_eq!(
        nanny_args(&cfg, v, &v.servers[0], true, true),
        [
            "-c",
            "-h",
            "198.19.0.1",
            "-p",
            "53",
            "-r",
            "5353",
            "-f",
            "7",
            "-u",
            "-e",
            "/usr/local/bin/check %h %p",
            "-s",
            "x",
            "-x",
            "OK",
            "-v",
            "-a",
            "0",
            "-I",
            "/sbin/ipvsadm",
            "-t",
            "10",
            "-w",
            "0",
            "-V",
            "198.18.0.10",
            "-M",
            "m",
            "-U",
            "ssh",
            "--nodaemon",
            "--lvs",
            "--rise",
            "2",
            "--fall",
            "3",
        ]
    );
}
