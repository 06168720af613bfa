//! Every error message, with its exact `FILE:LINE` and wording.

mod common;

use common::{err, vs};

#[test]
fn empty_file() {
    assert_eq!(
        err(""),
        "t.cf:1: expected at least one keyword, found an empty configuration"
    );
    assert_eq!(
        err("# only\n\n   \n"),
        "t.cf:1: expected at least one keyword, found an empty configuration"
    );
}

#[test]
fn io_error_names_the_file() {
    let e = lvsd::lvscf::load(
        std::path::Path::new("/nonexistent/lvs.cf"),
        &common::lookup(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/lvs.cf: cannot read the configuration: "),
        "{e}"
    );
    assert!(e.location().is_none());
}

#[test]
fn not_utf8() {
    let e = lvsd::lvscf::parse_bytes(
        "t.cf",
        b"service = lvs\r\nrsh_command = \xff\r\n",
        &common::lookup(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.cf:2: expected UTF-8 text, found an invalid byte sequence"
    );
}

#[test]
fn quotation_mismatch() {
    assert_eq!(
        err(&vs("    send = \"GET /")),
        "t.cf:4: expected a closing \" to end the quoted value, found the end of the line (quotation mismatch)"
    );
    assert_eq!(
        err("rsh_command = 'ssh\n"),
        "t.cf:1: expected a closing ' to end the quoted value, found the end of the line (quotation mismatch)"
    );
}

#[test]
fn unknown_keywords_name_the_section() {
    assert_eq!(
        err("service = lvs\nmode = nat\n"),
        "t.cf:2: expected a keyword of the global section, found unknown keyword \"mode\""
    );
    assert_eq!(
        err(&vs("    weight = 1")),
        "t.cf:4: expected a keyword of virtual section \"v\", found unknown keyword \"weight\" (it belongs in a server section)"
    );
    assert_eq!(
        err(&vs("    server s {\n        nmask = 255.255.255.0\n    }")),
        "t.cf:5: expected a keyword of server section \"s\", found unknown keyword \"nmask\""
    );
    assert_eq!(
        err(&vs("    server s {\n        scheduler = rr\n    }")),
        "t.cf:5: expected a keyword of server section \"s\", found unknown keyword \"scheduler\" (it belongs in a virtual section)"
    );
    assert_eq!(
        err(&vs("    keepalive = 6")),
        "t.cf:4: expected a keyword of virtual section \"v\", found unknown keyword \"keepalive\" (it is a global keyword)"
    );
    assert_eq!(
        err("server s {\n}\n"),
        "t.cf:1: expected a keyword of the global section, found unknown keyword \"server\" (server sections go inside a virtual section)"
    );
    assert_eq!(
        err(&vs("    virtual w {")),
        "t.cf:4: expected a keyword of virtual section \"v\", found unknown keyword \"virtual\" (sections do not nest here: is a \"}\" missing?)"
    );
    assert_eq!(
        err("failover f {\n    weight = 1\n}\n"),
        "t.cf:2: expected a keyword of failover section \"f\", found unknown keyword \"weight\" (it belongs in a server section)"
    );
    assert_eq!(
        err("\"service\" = lvs\n"),
        "t.cf:1: expected a keyword of the global section, found unknown keyword \"\\\"service\\\"\""
    );
}

#[test]
fn missing_equals() {
    assert_eq!(
        err("service lvs\n"),
        "t.cf:1: expected \"=\" after \"service\", found \"lvs\""
    );
    assert_eq!(
        err("service\n"),
        "t.cf:1: expected \"=\" after \"service\", found the end of the line"
    );
}

#[test]
fn value_counts() {
    assert_eq!(
        err("service =\n"),
        "t.cf:1: expected one value for \"service\", found none"
    );
    assert_eq!(
        err("service = lvs fos\n"),
        "t.cf:1: expected one value for \"service\", found 2: \"lvs\" \"fos\""
    );
    assert_eq!(
        err("service = lvs # trailing comment\n"),
        "t.cf:1: expected one value for \"service\", found 4: \"lvs\" \"#\" \"trailing\" \"comment\""
    );
    assert_eq!(
        err("virtual v {\n    address = 198.18.0.10\n}\n"),
        "t.cf:2: expected 2 values (IP DEVICE) for \"address\", found 1: \"198.18.0.10\""
    );
    assert_eq!(
        err("nat_router = 198.19.0.254 eth1:1 x\n"),
        "t.cf:1: expected 2 values (IP DEVICE) for \"nat_router\", found 3: \"198.19.0.254\" \"eth1:1\" \"x\""
    );
    assert_eq!(
        err(&vs(
            "    server s {\n        address = 198.19.0.1 eth0\n    }"
        )),
        "t.cf:5: expected one value for \"address\", found 2: \"198.19.0.1\" \"eth0\""
    );
}

#[test]
fn section_openers_and_closers() {
    assert_eq!(
        err("virtual v\n"),
        "t.cf:1: expected \"virtual NAME {\", found 1: \"v\""
    );
    assert_eq!(
        err("virtual {\n}\n"),
        "t.cf:1: expected \"virtual NAME {\", found 1: \"{\""
    );
    assert_eq!(
        err("failover a b {\n}\n"),
        "t.cf:1: expected \"failover NAME {\", found 3: \"a\" \"b\" \"{\""
    );
    assert_eq!(
        err(&vs("    server s{\n    }")),
        "t.cf:4: expected \"server NAME {\", found 1: \"s{\""
    );
    assert_eq!(
        err("service = lvs\n}\n"),
        "t.cf:2: expected a keyword, found \"}\" with no open section"
    );
    assert_eq!(
        err("virtual v {\n} junk\n"),
        "t.cf:2: expected nothing after \"}\", found 1: \"junk\""
    );
}

#[test]
fn unterminated_sections_name_the_opening_line() {
    assert_eq!(
        err("service = lvs\nvirtual v {\n    active = 0\n"),
        "t.cf:2: expected \"}\" to close virtual section \"v\" opened on this line, found the end of the file (line 3)"
    );
    assert_eq!(
        err("virtual v {\n    server s {\n        active = 0\n}\n\n"),
        "t.cf:1: expected \"}\" to close virtual section \"v\" opened on this line, found the end of the file (line 5)"
    );
    assert_eq!(
        err("virtual v {\n    server s {\n        active = 0\n"),
        "t.cf:2: expected \"}\" to close server section \"s\" opened on this line, found the end of the file (line 3)"
    );
    assert_eq!(
        err("failover f {\n"),
        "t.cf:1: expected \"}\" to close failover section \"f\" opened on this line, found the end of the file (line 1)"
    );
}

#[test]
fn repeated_keywords() {
    assert_eq!(
        err("keepalive = 2\nkeepalive = 3\n"),
        "t.cf:2: expected \"keepalive\" at most once in the global section, found it again (first on line 1)"
    );
    assert_eq!(
        err(&vs("    port = 80\n    port = 81")),
        "t.cf:5: expected \"port\" at most once in virtual section \"v\", found it again (first on line 4)"
    );
    assert_eq!(
        err(&vs(
            "    server s {\n        weight = 1\n        weight = 2\n    }"
        )),
        "t.cf:6: expected \"weight\" at most once in server section \"s\", found it again (first on line 5)"
    );
}

#[test]
fn lists() {
    assert_eq!(
        err(&vs("    dirs = a b")),
        "t.cf:4: expected a list \"[ a b ... ]\" for \"dirs\", found 2: \"a\" \"b\""
    );
    assert_eq!(
        err(&vs("    dirs = [ a b")),
        "t.cf:4: expected a list \"[ a b ... ]\" for \"dirs\", found 3: \"[\" \"a\" \"b\""
    );
    assert_eq!(
        err(&vs("    dirs =")),
        "t.cf:4: expected a list \"[ a b ... ]\" for \"dirs\", found none"
    );
}

#[test]
fn integers() {
    let weight = |v: &str| {
        err(&vs(&format!(
            "    server s {{\n        weight = {v}\n    }}"
        )))
    };
    assert_eq!(
        weight("abc"),
        "t.cf:5: expected an integer for \"weight\", found \"abc\""
    );
    assert_eq!(
        weight("08"),
        "t.cf:5: expected an integer for \"weight\", found \"08\""
    );
    assert_eq!(
        weight("0x"),
        "t.cf:5: expected an integer for \"weight\", found \"0x\""
    );
    assert_eq!(
        weight("1.5"),
        "t.cf:5: expected an integer for \"weight\", found \"1.5\""
    );
    assert_eq!(
        weight("-1"),
        "t.cf:5: expected an integer in 0..=65535 for \"weight\", found \"-1\""
    );
    assert_eq!(
        weight("65536"),
        "t.cf:5: expected an integer in 0..=65535 for \"weight\", found \"65536\""
    );
    assert_eq!(
        weight("0x10000"),
        "t.cf:5: expected an integer in 0..=65535 for \"weight\", found \"0x10000\""
    );
    assert_eq!(
        weight("99999999999999999999"),
        "t.cf:5: expected an integer in 0..=65535 for \"weight\", found \"99999999999999999999\""
    );
    assert_eq!(
        err("serial_no = -1\n"),
        "t.cf:1: expected a non-negative integer for \"serial_no\", found \"-1\""
    );
    assert_eq!(
        err("syncd_id = 256\n"),
        "t.cf:1: expected an integer in 0..=255 for \"syncd_id\", found \"256\""
    );
    assert_eq!(
        err("monitor_links = yes\n"),
        "t.cf:1: expected an integer for \"monitor_links\", found \"yes\""
    );
    assert_eq!(
        err(&vs("    fwmark = -1")),
        "t.cf:4: expected a firewall mark in 0..=4294967295 (0 = off) for \"fwmark\", found \"-1\""
    );
    assert_eq!(
        err(&vs("    fwmark = 4294967296")),
        "t.cf:4: expected a firewall mark in 0..=4294967295 (0 = off) for \"fwmark\", found \"4294967296\""
    );
}

#[test]
fn time_ranges() {
    assert_eq!(
        err(&vs("    persistent = 2678401")),
        "t.cf:4: expected 0 or seconds in 1..=2678400 for \"persistent\", found \"2678401\""
    );
    assert_eq!(
        err(&vs("    persistent = -1")),
        "t.cf:4: expected 0 or seconds in 1..=2678400 for \"persistent\", found \"-1\""
    );
    assert_eq!(
        err(&vs("    timeout = 0")),
        "t.cf:4: expected seconds in 1..=2678400 for \"timeout\", found \"0\""
    );
    assert_eq!(
        err(&vs("    reentry = 2678401")),
        "t.cf:4: expected seconds in 0..=2678400 for \"reentry\", found \"2678401\""
    );
    for kw in ["tcp_timeout", "tcpfin_timeout", "udp_timeout"] {
        assert_eq!(
            err(&format!("{kw} = 2678401\n")),
            format!(
                "t.cf:1: expected seconds in 0..=2678400 (0 = unchanged) for \"{kw}\", found \"2678401\""
            )
        );
    }
    for (kw, v) in [
        ("keepalive", "0"),
        ("deadtime", "-1"),
        ("keepalive", "2678401"),
        ("deadtime", "1.2.3"),
        ("keepalive", "abc"),
    ] {
        assert_eq!(
            err(&format!("{kw} = {v}\n")),
            format!(
                "t.cf:1: expected seconds greater than 0 and at most 2678400, such as 6 or 0.5 for \"{kw}\", found \"{v}\""
            )
        );
    }
}

#[test]
fn booleans() {
    assert_eq!(
        err(&vs("    active = 2")),
        "t.cf:4: expected 0 or 1 for \"active\", found \"2\""
    );
    assert_eq!(
        err(&vs("    active = yes")),
        "t.cf:4: expected an integer for \"active\", found \"yes\""
    );
    for kw in [
        "backup_active",
        "heartbeat",
        "syncdaemon",
        "hard_shutdown",
        "sync",
    ] {
        assert_eq!(
            err(&format!("{kw} = -1\n")),
            format!("t.cf:1: expected 0 or 1 for \"{kw}\", found \"-1\"")
        );
    }
    for kw in ["use_regex", "quiesce_server"] {
        assert_eq!(
            err(&vs(&format!("    {kw} = 0x2"))),
            format!("t.cf:4: expected 0 or 1 for \"{kw}\", found \"0x2\"")
        );
    }
}

#[test]
fn hosts_and_addresses() {
    assert_eq!(
        err("primary = nosuch.example\n"),
        "t.cf:1: expected an IPv4 address or a resolvable host name for \"primary\", found \"nosuch.example\""
    );
    assert_eq!(
        err("nat_router = 300.1.1.1 eth1:1\n"),
        "t.cf:1: expected an IPv4 address or a resolvable host name for \"nat_router\", found \"300.1.1.1\""
    );
    assert_eq!(
        err(&vs("    server s {\n        address = nosuch\n    }")),
        "t.cf:5: expected an IPv4 address or a resolvable host name for \"address\", found \"nosuch\""
    );
    assert_eq!(
        err(&vs("    sorry_server = rs1.example")),
        "t.cf:4: expected a dotted-quad IPv4 address for \"sorry_server\", found \"rs1.example\""
    );
}

#[test]
fn netmasks() {
    for kw in ["vip_nmask", "pmask"] {
        assert_eq!(
            err(&vs(&format!("    {kw} = 255.0.255.0"))),
            format!(
                "t.cf:4: expected a contiguous dotted-quad netmask for \"{kw}\", found \"255.0.255.0\""
            )
        );
    }
    assert_eq!(
        err("nat_nmask = 24\n"),
        "t.cf:1: expected a contiguous dotted-quad netmask for \"nat_nmask\", found \"24\""
    );
}

#[test]
fn ports() {
    assert_eq!(
        err(&vs("    port = 65536")),
        "t.cf:4: expected a port number 0..=65535 or a tcp service name for \"port\", found \"65536\""
    );
    assert_eq!(
        err(&vs("    port = nosuchservice")),
        "t.cf:4: expected a port number 0..=65535 or a tcp service name for \"port\", found \"nosuchservice\""
    );
    assert_eq!(
        err("heartbeat_port = -1\n"),
        "t.cf:1: expected a port number 0..=65535 or a tcp service name for \"heartbeat_port\", found \"-1\""
    );
    assert_eq!(
        err(&vs("    server s {\n        port = http\n    }")),
        "t.cf:5: expected a port number 0..=65535 for \"port\", found \"http\""
    );
}

#[test]
fn choices() {
    assert_eq!(
        err("service = both\n"),
        "t.cf:1: expected one of lvs, fos for \"service\", found \"both\""
    );
    assert_eq!(
        err("network = NAT\n"),
        "t.cf:1: expected one of direct, nat, tunnel for \"network\", found \"NAT\""
    );
    assert_eq!(
        err("reservation_conflict_action = fight\n"),
        "t.cf:1: expected one of nothing, preempt for \"reservation_conflict_action\", found \"fight\""
    );
    assert_eq!(
        err(&vs("    protocol = sctp")),
        "t.cf:4: expected one of tcp, udp for \"protocol\", found \"sctp\""
    );
    assert_eq!(
        err(&vs("    scheduler = random")),
        "t.cf:4: expected one of rr, wrr, lc, wlc, sed, nq, lblc, lblcr, dh, sh, mh, fo, ovf, twos for \"scheduler\", found \"random\""
    );
}

#[test]
fn scheduler_flags() {
    assert_eq!(
        err(&vs("    scheduler = sh\n    sched_flags = sh-port,bogus")),
        "t.cf:5: expected scheduler flags from sh-fallback, sh-port, mh-fallback, mh-port, flag-1, flag-2, flag-3 for \"sched_flags\", found \"bogus\""
    );
    assert_eq!(
        err(&vs("    sched_flags = sh-port")),
        "t.cf:4: expected a flag that scheduler \"wlc\" accepts, found \"sh-port\": incompatible scheduler flag"
    );
    // The check uses the scheduler of the whole section, whatever the line order.
    assert_eq!(
        err(&vs("    sched_flags = mh-port\n    scheduler = sh")),
        "t.cf:4: expected a flag that scheduler \"sh\" accepts, found \"mh-port\": incompatible scheduler flag"
    );
}

#[test]
fn active_sections_need_an_address() {
    assert_eq!(
        err("virtual v {\n    active = 1\n}\n"),
        "t.cf:1: expected \"address = IP DEVICE\" in active virtual section \"v\", found no address (or 0.0.0.0)"
    );
    assert_eq!(
        err("virtual v {\n    active = 1\n    address = 0.0.0.0 eth0:1\n}\n"),
        "t.cf:1: expected \"address = IP DEVICE\" in active virtual section \"v\", found no address (or 0.0.0.0)"
    );
    assert_eq!(
        err(&vs("    server s {\n        active = 1\n    }")),
        "t.cf:4: expected \"address = IP\" in active server section \"s\", found no address (or 0.0.0.0)"
    );
}

#[test]
fn zero_port_needs_persistence_or_fwmark() {
    assert_eq!(
        err(&vs("    active = 1\n    port = 0")),
        "t.cf:5: expected a non-zero port for non-persistent virtual section \"v\" (port 0 needs persistent > 0 or fwmark), found 0"
    );
}

#[test]
fn duplicate_virtual_services() {
    let text = "virtual a {\n    active = 1\n    address = 198.18.0.10 eth0:1\n}\nvirtual b {\n    active = 1\n    address = vip.example eth0:2\n    port = http\n}\n";
    assert_eq!(
        err(text),
        "t.cf:5: expected each virtual service once, found tcp 198.18.0.10:80 again in virtual section \"b\" (first in section \"a\" on line 1)"
    );
    let text = "virtual a {\n    active = 1\n    address = 198.18.0.10 eth0:1\n    fwmark = 5\n}\nvirtual b {\n    active = 1\n    address = 198.18.0.11 eth0:2\n    fwmark = 5\n}\n";
    assert_eq!(
        err(text),
        "t.cf:6: expected each virtual service once, found fwmark 5 again in virtual section \"b\" (first in section \"a\" on line 1)"
    );
}

#[test]
fn duplicate_real_servers() {
    let body = "    server a {\n        address = 198.19.0.1\n        active = 1\n    }\n    server b {\n        address = 198.19.0.1\n        active = 1\n    }";
    assert_eq!(
        err(&vs(body)),
        "t.cf:8: expected each real server once in virtual section \"v\", found 198.19.0.1:80 again in server \"b\" (first in server \"a\" on line 4)"
    );
    // Direct routing forces both to the virtual port: a collision ipvsadm would refuse.
    let body = "    server a {\n        address = 198.19.0.1\n        active = 1\n        port = 8080\n    }\n    server b {\n        address = 198.19.0.1\n        active = 1\n        port = 8081\n    }";
    let text = vs(body).replace("network = nat", "network = direct");
    assert_eq!(
        err(&text),
        "t.cf:9: expected each real server once in virtual section \"v\", found 198.19.0.1:80 again in server \"b\" (first in server \"a\" on line 4) (direct routing and tunnelling give every real server the virtual port)"
    );
}
