//! Every probe against real listeners on 127.0.0.1: servers that answer, stay silent, close,
//! or are absent; UDP echo; check programs in a temporary directory; HTTP and HTTPS with a
//! self-signed certificate.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nanny::probe::http::{BodyMatch, HttpProbe, TlsSettings};
use nanny::probe::program::ProgramProbe;
use nanny::probe::stream::StreamProbe;
use nanny::probe::{ChildSlot, ProbeError};
use nanny::text::{Expect, StatusList};

const T: Duration = Duration::from_secs(1);

/// A TCP server on 127.0.0.1 that runs `handle` for each connection, on its own thread.
fn serve(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handle = Arc::clone(&handle);
            std::thread::spawn(move || handle(stream));
        }
    });
    addr
}

fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn tcp(addr: SocketAddr, send: Option<&str>, expect: Option<(&str, bool)>) -> StreamProbe {
    StreamProbe {
        addr,
        send: send.map(|s| s.as_bytes().to_vec()),
        expect: expect.map(|(e, re)| Expect::new(e, re).expect("valid expect")),
        udp: false,
    }
}

/// Reads the request (until a blank line or 1 KiB) and writes `reply` in pieces.
fn answer(reply: &'static [&'static str]) -> impl Fn(TcpStream) + Send + Sync + 'static {
    move |mut s: TcpStream| {
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        for part in reply {
            let _ = s.write_all(part.as_bytes());
            let _ = s.flush();
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn tcp_connect_only() {
    let addr = serve(|_s| std::thread::sleep(Duration::from_secs(2)));
    tcp(addr, None, None).run(T).expect("connect-only passes");
    let e = tcp(closed_port(), None, None).run(T).expect_err("closed");
    assert!(matches!(e, ProbeError::Connect { .. }), "{e}");
    assert!(e.to_string().starts_with("CONNECT to 127.0.0.1:"), "{e}");
}

#[test]
fn send_expect_reads_past_a_short_first_segment() {
    let addr = serve(answer(&["HT", "TP/1.0 200 OK\r\n\r\n"]));
    tcp(
        addr,
        Some("GET / HTTP/1.0\r\n\r\n"),
        Some(("HTTP/1.0 200", false)),
    )
    .run(T)
    .expect("prefix arrives in two segments");
}

#[test]
fn send_expect_mismatch_and_too_short() {
    let addr = serve(answer(&["SSH-2.0-OpenSSH\r\n"]));
    let e = tcp(addr, Some("x"), Some(("HTTP", false)))
        .run(T)
        .expect_err("mismatch");
    assert!(
        e.to_string().starts_with("Trouble. Received results"),
        "{e}"
    );
    let addr = serve(answer(&["HT"]));
    let e = tcp(addr, Some("x"), Some(("HTTP", false)))
        .run(T)
        .expect_err("short");
    assert!(matches!(e, ProbeError::TooShort { .. }), "{e}");
}

#[test]
fn a_server_that_accepts_and_never_answers_fails_within_the_timeout() {
    let addr = serve(|s| {
        std::thread::sleep(Duration::from_secs(10));
        drop(s);
    });
    let start = Instant::now();
    let e = tcp(addr, Some("GET / HTTP/1.0\r\n\r\n"), Some(("HTTP", false)))
        .run(T)
        .expect_err("silent");
    assert!(matches!(e, ProbeError::ReadTimeout { .. }), "{e}");
    // Bounds are loose (a loaded CI machine): they only tell "at the timeout" from "when the
    // server gave up" (10 s).
    assert!(start.elapsed() < T + Duration::from_secs(3));
}

#[test]
fn an_attempt_never_blocks_and_fails_at_its_deadline() {
    let addr = serve(|s| {
        std::thread::sleep(Duration::from_secs(10));
        drop(s);
    });
    let probe = tcp(addr, Some("PING"), Some(("PONG", false)));
    let now = Instant::now();
    let mut attempt = probe.start(now, T);
    assert_eq!(attempt.deadline(), now + T);
    // Connected and written at once on loopback; then it waits to read, without blocking.
    let t = Instant::now();
    for _ in 0..3 {
        assert!(attempt.advance(&probe, true, Instant::now()).is_pending());
        assert!(attempt.waiting_on().is_some());
    }
    assert!(t.elapsed() < Duration::from_millis(500), "advance blocked");
    let late = attempt.deadline();
    match attempt.advance(&probe, false, late) {
        std::task::Poll::Ready(Err(ProbeError::ReadTimeout { got: 0, .. })) => {}
        other => panic!("expected a read timeout, got {other:?}"),
    }
}

#[test]
fn star_passes_on_any_byte_or_a_close() {
    let addr = serve(drop);
    tcp(addr, None, Some(("*", false)))
        .run(T)
        .expect("close passes");
    let addr = serve(answer(&["x"]));
    tcp(addr, Some("hi"), Some(("*", false)))
        .run(T)
        .expect("byte passes");
}

#[test]
fn regex_matches_anywhere() {
    let addr = serve(answer(&["HTTP/1.1 ", "204 No Content\r\n\r\n"]));
    tcp(
        addr,
        Some("GET /\r\n\r\n"),
        Some(("HTTP/1\\.[01] 2[0-9]{2}", true)),
    )
    .run(T)
    .expect("regex");
    let addr = serve(answer(&["HTTP/1.1 500 Oops\r\n\r\n"]));
    let e = tcp(addr, Some("GET /\r\n\r\n"), Some(("HTTP/1\\.[01] 2", true)))
        .run(T)
        .expect_err("500");
    assert!(matches!(e, ProbeError::Mismatch { .. }), "{e}");
}

#[test]
fn udp_echo_with_and_without_expect() {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = sock.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let _ = sock.send_to(&buf[..n], from);
        }
    });
    let udp = |send: Option<&str>, expect: Option<&str>| StreamProbe {
        addr,
        send: send.map(|s| s.as_bytes().to_vec()),
        expect: expect.map(|e| Expect::new(e, false).expect("plain")),
        udp: true,
    };
    udp(Some("ping"), Some("ping")).run(T).expect("echo");
    udp(Some("ping"), None).run(T).expect("any reply, no crash");
    let e = udp(Some("ping"), Some("pong"))
        .run(T)
        .expect_err("mismatch");
    assert!(matches!(e, ProbeError::Mismatch { .. }), "{e}");
    // Nobody there: port unreachable (or silence) is a failure within the timeout.
    let gone = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let gone_addr = gone.local_addr().expect("addr");
    drop(gone);
    let start = Instant::now();
    let probe = StreamProbe {
        addr: gone_addr,
        ..udp(Some("ping"), None)
    };
    probe.run(T).expect_err("nobody listens");
    assert!(start.elapsed() < T + Duration::from_secs(3));
}

fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.display().to_string()
}

#[test]
fn send_program_verdicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slot = ChildSlot::default();
    let run = |cmd: &str, expect: Option<&str>| {
        ProgramProbe::new(cmd, "127.0.0.1", 8080, expect.map(str::to_owned)).run(T, &slot)
    };
    let echo = script(dir.path(), "echo", "echo \"$1:$2\"");
    run(&format!("{echo} %h %p"), Some("127.0.0.1:8080")).expect("substituted and matched");
    let e = run(&format!("{echo} %h %p"), Some("OK")).expect_err("wrong output");
    assert!(matches!(e, ProbeError::ProgramOutput { .. }), "{e}");
    // Piranha counted a non-zero exit as healthy when an expect string was set.
    let fail = script(dir.path(), "fail", "echo OK; exit 3");
    let e = run(&fail, Some("OK")).expect_err("exit 3");
    assert!(e.to_string().contains("exit status 3"), "{e}");
    // Without expect: exit 0 and silence passes (Piranha: never), output fails.
    let quiet = script(dir.path(), "quiet", "exit 0");
    run(&quiet, None).expect("quiet success");
    let e = run(&echo, None).expect_err("output without expect");
    assert!(
        matches!(e, ProbeError::ProgramUnexpectedOutput { .. }),
        "{e}"
    );
    let e = run("/nonexistent/check %h", Some("OK")).expect_err("missing");
    assert!(matches!(e, ProbeError::ProgramSpawn { .. }), "{e}");
    assert!(e.to_string().contains("No such file"), "{e}");
}

#[test]
fn a_hanging_send_program_is_killed_at_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("pid");
    let hang = script(
        dir.path(),
        "hang",
        &format!("sleep 30 & echo $! > {}; wait", pidfile.display()),
    );
    let slot = ChildSlot::default();
    let start = Instant::now();
    let e = ProgramProbe::new(&hang, "127.0.0.1", 80, Some("OK".into()))
        .run(T, &slot)
        .expect_err("hangs");
    assert!(matches!(e, ProbeError::ProgramTimeout { .. }), "{e}");
    assert!(
        start.elapsed() < T + Duration::from_secs(3),
        "killed at the timeout, not after 30 s"
    );
    // The grandchild (sleep) went with its process group.
    let pid = std::fs::read_to_string(&pidfile).expect("pid written");
    std::thread::sleep(Duration::from_millis(100));
    let alive = Path::new(&format!("/proc/{}", pid.trim())).exists()
        && !std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
            .unwrap_or_default()
            .contains(") Z ");
    assert!(!alive, "sleep {pid} survived");
}

/// A one-shot HTTP/1.0-style responder: status line and body fixed, records nothing.
fn http_reply(status: &'static str, body: &'static str) -> SocketAddr {
    serve(move |mut s| {
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
        let req = String::from_utf8_lossy(&req).to_lowercase();
        // Echo the Host header in a header so the test can check it.
        let host = req
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .unwrap_or("")
            .to_owned();
        let body = body.replace("{host}", &host);
        let _ = write!(
            s,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    })
}

fn http(url: String, statuses: &str, body: Option<BodyMatch>) -> HttpProbe {
    HttpProbe::new(
        url,
        Some("www.example".into()),
        StatusList::parse(statuses).expect("list"),
        body,
        TlsSettings::default(),
    )
}

#[test]
fn http_status_and_body() {
    let addr = http_reply("200 OK", "hello from {host}");
    let url = format!("http://{addr}/health");
    http(url.clone(), "200", None).run(T).expect("200");
    http(
        url.clone(),
        "200",
        Some(BodyMatch::Substring("from www.example".into())),
    )
    .run(T)
    .expect("Host header sent, body matched");
    let re = regex::bytes::Regex::new("^hello .*example$").expect("re");
    http(url.clone(), "200", Some(BodyMatch::Regex(re)))
        .run(T)
        .expect("regex body");
    let e = http(
        url.clone(),
        "200",
        Some(BodyMatch::Substring("nope".into())),
    )
    .run(T)
    .expect_err("body");
    assert!(matches!(e, ProbeError::HttpBody { .. }), "{e}");
    let addr = http_reply("503 Service Unavailable", "");
    let e = http(format!("http://{addr}/"), "200-399", None)
        .run(T)
        .expect_err("503");
    assert_eq!(
        e.to_string(),
        format!("GET http://{addr}/ returned status 503, expected 200-399")
    );
    let e = http(format!("http://{}/", closed_port()), "200", None)
        .run(T)
        .expect_err("closed");
    assert!(matches!(e, ProbeError::Http { .. }), "{e}");
}

/// An HTTPS server with a fresh self-signed certificate for 127.0.0.1; returns its address
/// and the certificate in PEM.
fn https_server() -> (SocketAddr, String) {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("rcgen");
    let pem = ck.cert.pem();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    // The ring provider is deprecated only in favour of post-quantum key exchange, which a
    // local test server does not need; ring is what reqwest uses here.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .expect("server config");
    let config = Arc::new(config);
    let addr = serve(move |tcp| {
        let Ok(conn) = rustls::ServerConnection::new(Arc::clone(&config)) else {
            return;
        };
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            match tls.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tls
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecure");
        tls.conn.send_close_notify();
        let _ = tls.flush();
    });
    (addr, pem)
}

#[test]
fn https_verifies_the_certificate() {
    let (addr, pem) = https_server();
    let url = format!("https://{addr}/");
    let probe = |tls: TlsSettings| {
        HttpProbe::new(
            url.clone(),
            None,
            StatusList::default(),
            Some(BodyMatch::Substring("secure".into())),
            tls,
        )
    };
    let e = probe(TlsSettings::default())
        .run(T)
        .expect_err("self-signed is not trusted by default");
    assert!(
        e.to_string().to_lowercase().contains("certificate"),
        "reason names the certificate: {e}"
    );
    let roots = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).expect("pem");
    probe(TlsSettings {
        extra_roots: roots,
        ..TlsSettings::default()
    })
    .run(T)
    .expect("trusted with --tls-ca");
    probe(TlsSettings {
        no_verify: true,
        ..TlsSettings::default()
    })
    .run(T)
    .expect("--tls-no-verify");
}
