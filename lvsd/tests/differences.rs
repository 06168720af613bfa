//! One test per deliberate difference from Piranha 0.8.6, as listed in `docs/lvs-cf.md`
//! ("Deliberate differences from Piranha"). The doc names each test.

mod common;

use std::time::Duration;

use common::{err, parse, vs};
use ipvs_core::types::{SchedFlag, SchedulerKind};
use lvsd::desired::desired_table;

#[test]
fn key_equals_value_without_spaces() {
    // Piranha: `port=80` → "unknown command", `port =80` → "equal (=) expected".
    for line in [
        "port=8080",
        "port =8080",
        "port= 8080",
        "port = 8080",
        "port\t=\t8080",
    ] {
        assert_eq!(
            parse(&vs(&format!("    {line}"))).virtuals[0].port,
            8080,
            "{line}"
        );
    }
    assert_eq!(
        parse("keepalive=3\n").global.keepalive,
        Duration::from_secs(3)
    );
    // Only the first `=` is special: later ones are part of the value.
    assert_eq!(
        parse(&vs("    expect=a=b")).virtuals[0].expect.as_deref(),
        Some("a=b")
    );
}

#[test]
fn sub_second_keepalive_and_deadtime() {
    let g = parse("keepalive = 0.2\ndeadtime = 1.5\n").global;
    assert_eq!(g.keepalive, Duration::from_millis(200));
    assert_eq!(g.deadtime, Duration::from_millis(1500));
}

#[test]
fn crlf_line_numbers_are_not_doubled() {
    let text = "service = lvs\r\n\r\nvirtual v {\r\n    address = 198.18.0.10 eth0:1\r\n    weight = 1\r\n}\r\n";
    assert_eq!(
        err(text),
        "t.cf:5: expected a keyword of virtual section \"v\", found unknown keyword \"weight\" (it belongs in a server section)"
    );
    // Mixed and lone-CR line endings count one line each too.
    assert_eq!(
        err("service = lvs\rkeepalive = x\n"),
        err("service = lvs\nkeepalive = x\n")
    );
    assert!(err("a = 1\r\nb = 2\nc = 3\r").starts_with("t.cf:1:"));
    assert!(err("service = lvs\r\nservice = fos\n").starts_with("t.cf:2:"));
    assert_eq!(parse("virtual v {\r\n}\r\n").virtuals[0].line, 1);
}

#[test]
fn eof_inside_a_section_is_an_error() {
    assert!(
        err("virtual v {\n    active = 0\n")
            .starts_with("t.cf:1: expected \"}\" to close virtual section \"v\"")
    );
}

#[test]
fn duplicates_are_errors() {
    let two = "virtual a {\n    active = 1\n    address = 198.18.0.10 eth0:1\n}\nvirtual b {\n    active = 1\n    address = 198.18.0.10 eth0:1\n}\n";
    assert!(err(two).contains("found tcp 198.18.0.10:80 again"));
    // Inactive sections (GUI drafts at 0.0.0.0) are not compared.
    let drafts = "virtual a {\n    address = 0.0.0.0 eth0:1\n}\nvirtual b {\n    address = 0.0.0.0 eth0:1\n}\n";
    assert_eq!(parse(drafts).virtuals.len(), 2);
    // Same VIP and port but different protocol: two services.
    let udp = two.replace(
        "virtual b {\n    active = 1\n",
        "virtual b {\n    active = 1\n    protocol = udp\n",
    );
    assert_eq!(parse(&udp).virtuals.len(), 2);
}

#[test]
fn repeated_keywords_are_errors() {
    // Piranha silently kept the last value.
    assert!(err("keepalive = 2\nkeepalive = 3\n").contains("at most once"));
}

#[test]
fn private_address_post_processing_is_kept_with_a_warning() {
    let c = parse("primary = 198.18.0.2\nbackup = 198.18.0.3\nbackup_private = 198.19.0.3\n");
    assert_eq!(c.global.primary_private.to_string(), "198.18.0.2");
    assert_eq!(c.global.backup_private.to_string(), "198.18.0.3");
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings); // + "no active virtual service"
}

#[test]
fn all_fourteen_schedulers() {
    for k in ["sed", "nq", "mh", "fo", "ovf", "twos"] {
        assert_eq!(
            parse(&vs(&format!("    scheduler = {k}"))).virtuals[0]
                .scheduler
                .name(),
            k
        );
    }
}

#[test]
fn sched_flags_extension() {
    let c = parse(&vs(
        "    active = 1\n    scheduler = mh\n    sched_flags = mh-port,mh-fallback",
    ));
    assert_eq!(
        c.virtuals[0].sched_flags,
        [SchedFlag::MhPort, SchedFlag::MhFallback]
    );
    assert_eq!(c.virtuals[0].scheduler, SchedulerKind::Mh);
    let table = lvsd::check::render_ipvsadm_save(&desired_table("t.cf", &c));
    assert_eq!(table, "-A -t 198.18.0.10:80 -s mh -b mh-fallback,mh-port\n");
    assert!(err(&vs("    sched_flags = sh-port")).ends_with("incompatible scheduler flag"));
}

#[test]
fn values_are_range_checked() {
    // Piranha accepted all of these (no range checks, pmask silently ignored, syncd_id masked).
    assert!(err(&vs("    server s {\n        weight = -1\n    }")).contains("0..=65535"));
    assert!(err(&vs("    pmask = banana")).contains("netmask"));
    assert!(err(&vs("    vip_nmask = 255.0.255.0")).contains("contiguous"));
    assert!(err("syncd_id = 256\n").contains("0..=255"));
    assert!(err(&vs("    fwmark = -5")).contains("0..=4294967295"));
    assert!(err(&vs("    timeout = 0")).contains("1..=2678400"));
}

#[test]
fn single_quoted_values_are_unwrapped() {
    // Piranha kept single quotes on send/expect/... and passed them on to nanny.
    let c = parse(&vs(
        "    send = 'GET / HTTP/1.0\\r\\n\\r\\n'\n    expect = 'HTTP'",
    ));
    assert_eq!(
        c.virtuals[0].send.as_deref(),
        Some("GET / HTTP/1.0\\r\\n\\r\\n")
    );
    assert_eq!(c.virtuals[0].expect.as_deref(), Some("HTTP"));
}

#[test]
fn escaped_quote_does_not_close_a_quoted_value() {
    let c = parse(&vs("    expect = \"say \\\"hi\\\"\""));
    assert_eq!(c.virtuals[0].expect.as_deref(), Some("say \\\"hi\\\""));
}

#[test]
fn comment_only_file_is_empty() {
    assert!(err("# nothing here\n").ends_with("found an empty configuration"));
}

#[test]
fn active_sections_need_an_address() {
    assert!(err("virtual v {\n    active = 1\n}\n").contains("found no address"));
}

#[test]
fn zero_port_rule() {
    assert!(err(&vs("    active = 1\n    port = 0")).contains("non-zero port"));
    // Persistent port-0 ("all ports") and fwmark services are fine.
    let c = parse(&vs("    active = 1\n    port = 0\n    persistent = 60"));
    assert_eq!(
        lvsd::check::render_ipvsadm_save(&desired_table("t.cf", &c)),
        "-A -t 198.18.0.10:0 -s wlc -p 60\n"
    );
    parse(&vs("    active = 1\n    port = 0\n    fwmark = 3"));
}

#[test]
fn file_must_be_utf8() {
    // Latin-1 in a comment is harmless and accepted (replaced with U+FFFD)...
    let cfg = lvsd::lvscf::parse_bytes(
        "t.cf",
        b"# r\xe9seau du bureau\n  # caf\xe9\xe9\nkeepalive = 3\n",
        &common::lookup(),
    )
    .expect("invalid UTF-8 in comments is accepted");
    assert_eq!(cfg.global.keepalive, std::time::Duration::from_secs(3));
    // ...but not in a statement, where it would change a value.
    assert!(
        lvsd::lvscf::parse_bytes("t.cf", b"debug_level = \xe9\n", &common::lookup())
            .unwrap_err()
            .to_string()
            .contains("UTF-8")
    );
}
