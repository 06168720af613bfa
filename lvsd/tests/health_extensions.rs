//! The health-check extension keywords of a `virtual` section (`rise`, `fall`,
//! `probe_timeout`, `http_path`, `https`, `http_host`, `http_status`, `tls_ca`,
//! `tls_verify`): defaults, values, and `FILE:LINE` errors.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{err, parse, vs};
use lvsd::lvscf::HealthExtensions;

#[test]
fn defaults_keep_piranhas_behaviour() {
    let c = parse(&vs("    active = 0"));
    let h = &c.virtuals[0].health;
    assert_eq!(*h, HealthExtensions::default());
    assert_eq!((h.rise, h.fall, h.probe_timeout), (None, None, None));
    assert!(h.http_path.is_none() && !h.https && h.tls_verify);
}

#[test]
fn every_extension_is_parsed() {
    let c = parse(&vs(r#"    rise = 3
    fall = 0x2
    probe_timeout = 4
    http_path = "/health?full=1"
    https = 1
    http_host = www.example
    http_status = 200,204,300-399
    tls_ca = /etc/pki/lvs-ca.pem
    tls_verify = 0"#));
    let v = &c.virtuals[0];
    let h = &v.health;
    assert_eq!(h.rise, Some(3));
    assert_eq!(h.fall, Some(2));
    assert_eq!(h.probe_timeout, Some(Duration::from_secs(4)));
    assert_eq!(h.http_path.as_deref(), Some("/health?full=1"));
    assert!(h.https);
    assert_eq!(h.http_host.as_deref(), Some("www.example"));
    assert_eq!(h.http_status.as_deref(), Some("200,204,300-399"));
    assert_eq!(h.tls_ca, Some(PathBuf::from("/etc/pki/lvs-ca.pem")));
    assert!(!h.tls_verify);
    assert_eq!(v.lines["tls_verify"], 12);
}

#[test]
fn bad_values_name_file_and_line() {
    assert_eq!(
        err(&vs("    rise = 0")),
        "t.cf:4: expected an integer in 1..=65535 for \"rise\", found \"0\""
    );
    assert_eq!(
        err(&vs("    fall = x")),
        "t.cf:4: expected an integer for \"fall\", found \"x\""
    );
    assert_eq!(
        err(&vs("    probe_timeout = 0")),
        "t.cf:4: expected seconds in 1..=2678400 for \"probe_timeout\", found \"0\""
    );
    assert_eq!(
        err(&vs("    http_path = health")),
        "t.cf:4: expected a URL path starting with \"/\" without blanks, such as /health for \"http_path\", found \"health\""
    );
    assert_eq!(
        err(&vs("    http_path = /\n    http_status = 2xx")),
        "t.cf:5: expected HTTP status codes 100-599 as CODE or LOW-HIGH separated by commas, such as 200,300-399 for \"http_status\", found \"2xx\""
    );
    assert_eq!(
        err(&vs("    http_path = /\n    http_status = 399-200")),
        "t.cf:5: expected HTTP status codes 100-599 as CODE or LOW-HIGH separated by commas, such as 200,300-399 for \"http_status\", found \"399-200\""
    );
    assert_eq!(
        err(&vs("    http_path = /\n    https = 2")),
        "t.cf:5: expected 0 or 1 for \"https\", found \"2\""
    );
    assert_eq!(
        err(&vs("    http_path = /\n    http_host = \"a b\"")),
        "t.cf:5: expected a host name without blanks for \"http_host\", found \"a b\""
    );
}

#[test]
fn http_keywords_need_http_path_and_exclude_other_probes() {
    assert_eq!(
        err(&vs("    https = 1")),
        "t.cf:4: expected \"http_path\" in the same section (it applies to the HTTP probe) for \"https\", found \"1\""
    );
    assert_eq!(
        err(&vs("    tls_ca = /ca.pem")),
        "t.cf:4: expected \"http_path\" in the same section (it applies to the HTTP probe) for \"tls_ca\", found \"/ca.pem\""
    );
    assert_eq!(
        err(&vs("    send = \"x\"\n    http_path = /")),
        "t.cf:4: expected no send, send_program or protocol = udp with \"http_path\" (the HTTP probe replaces them) for \"send\", found \"x\""
    );
    assert_eq!(
        err(&vs("    protocol = udp\n    http_path = /")),
        "t.cf:4: expected no send, send_program or protocol = udp with \"http_path\" (the HTTP probe replaces them) for \"protocol\", found \"udp\""
    );
    // expect is the body match of the HTTP probe, so it is allowed.
    let c = parse(&vs(
        "    http_path = /\n    expect = \"ok\"\n    use_regex = 1",
    ));
    assert_eq!(c.virtuals[0].expect.as_deref(), Some("ok"));
}

#[test]
fn extensions_are_virtual_keywords_only() {
    assert_eq!(
        err("rise = 2\n"),
        "t.cf:1: expected a keyword of the global section, found unknown keyword \"rise\" (it belongs in a virtual section)"
    );
}

#[test]
fn an_expect_regex_must_compile() {
    assert_eq!(
        err(&vs("    use_regex = 1\n    expect = \"HTTP/1.[01\"")),
        "t.cf:5: expected a regular expression, as use_regex = 1 (error: unclosed character class) for \"expect\", found \"HTTP/1.[01\""
    );
    // Escapes are translated first, as nanny does: \\. is an escaped dot.
    let c = parse(&vs(r#"    use_regex = 1
    expect = "HTTP/1\\.[01] 200\r\n""#));
    assert!(c.virtuals[0].use_regex);
    // Without use_regex the same text is a plain prefix.
    parse(&vs("    expect = \"HTTP/1.[01\""));
}

#[test]
fn send_program_needs_a_command() {
    assert_eq!(
        err(&vs("    send_program = \"  \"")),
        "t.cf:4: expected a command such as \"/usr/local/bin/check %h %p\" for \"send_program\", found \"  \""
    );
}
