//! The real `nanny` binary: exit codes of bad input, and down → up transitions with real
//! timing against a real server and a fake lvsd (a Unix-socket HTTP server in the test that
//! records every request).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn nanny() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nanny"))
}

#[test]
fn version_and_help_succeed() {
    for flag in ["--version", "--help", "--usage"] {
        let out = nanny().arg(flag).output().expect("runs");
        assert!(out.status.success(), "nanny {flag}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("nanny"));
    }
}

fn status_and_stderr(args: &[&str]) -> (i32, String) {
    let out = nanny().args(args).output().expect("runs");
    (
        out.status.code().expect("exited"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_input_gets_a_clear_message_and_the_documented_status() {
    let base = ["-h", "127.0.0.1", "-V", "10.0.0.80", "-p", "80"];
    let with = |extra: &[&'static str]| {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(extra);
        status_and_stderr(&v)
    };
    let (code, err) = with(&["-t", "0", "--lvs"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("-t 0"), "{err}");
    let (code, err) = with(&[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown service type"), "{err}");
    let (code, err) = with(&["--fos"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not implemented"), "{err}");
    let (code, err) = with(&["--lvs", "-x", "HTTP/1.[01", "--regex"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("\"HTTP/1.[01\" does not compile"), "{err}");
    let (code, err) = with(&["--lvs", "--http-get", "/", "--http-status", "2xx"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--http-status"), "{err}");
    let (code, err) = status_and_stderr(&["-h", "nosuchhost", "--lvs", "-V", "10.0.0.80"]);
    assert_eq!(code, 2, "{err}");
    let (code, _) = status_and_stderr(&["--no-such-option"]);
    assert_eq!(code, 2);
}

/// One request seen by the fake lvsd.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    body: String,
    at: Instant,
}

/// A fake lvsd on a Unix socket: records requests, answers 200.
fn fake_lvsd(socket: &Path) -> Arc<Mutex<Vec<Seen>>> {
    let listener = UnixListener::bind(socket).expect("bind unix socket");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or("").to_owned();
            let path = parts.next().unwrap_or("").to_owned();
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                    break;
                }
                if let Some(v) = header.to_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            record.lock().expect("lock").push(Seen {
                method,
                path,
                body: String::from_utf8_lossy(&body).into_owned(),
                at: Instant::now(),
            });
            let mut stream = reader.into_inner();
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            );
        }
    });
    seen
}

/// A real server whose health the test switches: healthy = answers `HTTP/1.0 200 OK`,
/// unhealthy = accepts and closes at once.
fn switchable_server() -> (SocketAddr, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let healthy = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&healthy);
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            if flag.load(Ordering::SeqCst) {
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"HTTP/1.0 200 OK\r\n\r\n");
            }
        }
    });
    (addr, healthy)
}

fn wait_for(seen: &Arc<Mutex<Vec<Seen>>>, n: usize, limit: Duration) -> Vec<Seen> {
    let start = Instant::now();
    loop {
        let now = seen.lock().expect("lock").clone();
        if now.len() >= n || start.elapsed() > limit {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: Signal) {
    let pid = i32::try_from(child.id()).expect("pid fits");
    kill(Pid::from_raw(pid), sig).expect("signal nanny");
}

fn start(socket: &PathBuf, args: &[String]) -> Running {
    Running(
        nanny()
            .args(args)
            .arg("--socket")
            .arg(socket)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nanny"),
    )
}

#[test]
fn down_and_up_against_a_fake_lvsd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("lvsd.sock");
    let seen = fake_lvsd(&socket);
    let (addr, healthy) = switchable_server();
    let port = addr.port().to_string();
    // Piranha's argument list as lvsd builds it; -a 2 / -t 1 = two good probes to re-enter.
    let args: Vec<String> = [
        "-c",
        "-h",
        "127.0.0.1",
        "-p",
        "80",
        "-r",
        &port,
        "-s",
        r"GET / HTTP/1.0\r\n\r\n",
        "-x",
        "HTTP",
        "-a",
        "2",
        "-I",
        "/sbin/ipvsadm",
        "-t",
        "1",
        "-w",
        "64",
        "-V",
        "10.0.0.80",
        "-M",
        "m",
        "--lvs",
    ]
    .map(String::from)
    .to_vec();
    let mut nanny = start(&socket, &args);
    let path = format!("/v1/services/tcp:10.0.0.80:80/servers/127.0.0.1:{port}");

    // Healthy at start: admitted at once with weight 64 >> 5 = 2.
    let s = wait_for(&seen, 1, Duration::from_secs(5));
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(
        (s[0].method.as_str(), s[0].path.as_str()),
        ("PATCH", path.as_str())
    );
    assert_eq!(
        s[0].body,
        r#"{"state":"up","weight":2,"reason":"probe ok"}"#
    );

    // Fails: out within one interval plus the timeout (2 s), with the reason.
    healthy.store(false, Ordering::SeqCst);
    let failed_at = Instant::now();
    let s = wait_for(&seen, 2, Duration::from_secs(5));
    assert_eq!(s.len(), 2, "{s:?}");
    assert!(s[1].body.contains(r#""state":"down""#), "{}", s[1].body);
    assert!(s[1].body.contains(r#""reason":"READ"#), "{}", s[1].body);
    // Nominally within 2 s; the bound is loose for loaded CI machines.
    assert!(s[1].at - failed_at < Duration::from_secs(4));

    // Healthy again: back after two good probes (about 1-2 s).
    healthy.store(true, Ordering::SeqCst);
    let back_at = Instant::now();
    let s = wait_for(&seen, 3, Duration::from_secs(5));
    assert_eq!(s.len(), 3, "{s:?}");
    assert_eq!(
        s[2].body,
        r#"{"state":"up","weight":2,"reason":"probe ok"}"#
    );
    assert!(
        s[2].at - back_at >= Duration::from_millis(900),
        "rise of 2 honoured"
    );

    // SIGUSR1: forced down at once, no probes; SIGHUP: probing again, re-admitted at once.
    signal(&nanny.0, Signal::SIGUSR1);
    let s = wait_for(&seen, 4, Duration::from_secs(3));
    assert_eq!(s.len(), 4, "{s:?}");
    assert!(s[3].body.contains(r#""state":"down""#), "{}", s[3].body);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        seen.lock().expect("lock").len(),
        4,
        "no report while forced"
    );
    signal(&nanny.0, Signal::SIGHUP);
    let s = wait_for(&seen, 5, Duration::from_secs(3));
    assert_eq!(s.len(), 5, "{s:?}");
    assert_eq!(
        s[4].body,
        r#"{"state":"up","weight":2,"reason":"probe ok"}"#
    );

    // SIGTERM: exit 0 without removing the server.
    signal(&nanny.0, Signal::SIGTERM);
    let status = nanny.0.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    nanny
        .0
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert_eq!(seen.lock().expect("lock").len(), 5, "SIGTERM sends nothing");
    for line in [
        "starting LVS client monitor for 10.0.0.80:80 -> 127.0.0.1:",
        "[ active ] making 127.0.0.1:",
        "[inactive] shutting down 127.0.0.1:",
        "opaque glasses on",
        "DEBUG -- removing glasses",
        "Terminating due to signal 15",
    ] {
        assert!(stderr.contains(line), "missing {line:?} in:\n{stderr}");
    }
}

#[test]
fn sigterm_kills_a_hanging_check_program_and_lvsd_may_be_absent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("absent.sock");
    let args: Vec<String> = [
        "-h",
        "127.0.0.1",
        "-p",
        "80",
        "-e",
        "/bin/sleep 30 %p",
        "-x",
        "OK",
        "-t",
        "20",
        "-V",
        "10.0.0.80",
        "--lvs",
    ]
    .map(String::from)
    .to_vec();
    let mut nanny = start(&socket, &args);
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    signal(&nanny.0, Signal::SIGTERM);
    let status = nanny.0.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "prompt exit, not after the 20 s probe timeout"
    );
    let mut stderr = String::new();
    nanny
        .0
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert!(stderr.contains("Killing child"), "{stderr}");
}

#[test]
fn sigterm_ends_a_tcp_probe_that_waits_for_a_silent_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("absent.sock");
    // Accepts and keeps every connection open without a word.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let port = addr.port().to_string();
    let args: Vec<String> = [
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-s",
        "PING",
        "-x",
        "PONG",
        "-t",
        "20",
        "-V",
        "10.0.0.80",
        "--lvs",
    ]
    .map(String::from)
    .to_vec();
    let mut nanny = start(&socket, &args);
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    signal(&nanny.0, Signal::SIGTERM);
    let status = nanny.0.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "prompt exit, not after the 20 s probe timeout"
    );
}

#[test]
fn test_start_logs_instead_of_calling_lvsd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("absent.sock");
    let (addr, _healthy) = switchable_server();
    let args: Vec<String> = [
        "-h",
        "127.0.0.1",
        "-p",
        "80",
        "-r",
        &addr.port().to_string(),
        "-t",
        "1",
        "-V",
        "10.0.0.80",
        "--lvs",
        "--norun",
    ]
    .map(String::from)
    .to_vec();
    let mut nanny = start(&socket, &args);
    std::thread::sleep(Duration::from_millis(700));
    signal(&nanny.0, Signal::SIGINT);
    assert_eq!(nanny.0.wait().expect("wait").code(), Some(0));
    let mut stderr = String::new();
    nanny
        .0
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert!(
        stderr.contains("no monitor configured, assuming web service on port 80"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            r#"test-start: would PATCH /v1/services/tcp:10.0.0.80:80/servers/127.0.0.1:"#
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("unreachable"), "{stderr}");
}

#[test]
fn an_unreadable_tls_ca_fails_the_probes_instead_of_ending_nanny() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("absent.sock");
    let (addr, _healthy) = switchable_server();
    let args: Vec<String> = [
        "-h",
        "127.0.0.1",
        "-p",
        "443",
        "-r",
        &addr.port().to_string(),
        "-t",
        "1",
        "-V",
        "10.0.0.80",
        "--lvs",
        "--norun",
        "--http-get",
        "/health",
        "--https",
        "--tls-ca",
        "/nonexistent/ca.pem",
    ]
    .map(String::from)
    .to_vec();
    let mut nanny = start(&socket, &args);
    std::thread::sleep(Duration::from_millis(700));
    signal(&nanny.0, Signal::SIGTERM);
    assert_eq!(
        nanny.0.wait().expect("wait").code(),
        Some(0),
        "still running"
    );
    let mut stderr = String::new();
    nanny
        .0
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert!(
        stderr.contains("--tls-ca /nonexistent/ca.pem: No such file or directory"),
        "{stderr}"
    );
    assert!(
        stderr.contains(r#"{"state":"down","reason":"GET https://127.0.0.1:"#),
        "{stderr}"
    );
}
