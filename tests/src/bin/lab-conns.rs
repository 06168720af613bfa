//! `lab-conns`: established connections that must survive a director failover, for the
//! connection-sync tests (`tests/tests/sync_failover.rs`).
//!
//! ```text
//! lab-conns hold --to ADDR:PORT --conns N [--trigger PATH] [--rounds 1]
//!                [--timeout-ms 3000] [--round-s 30] [--wait-s 300] [--lifetime-s 600]
//! lab-conns stream --to ADDR:PORT --bytes N [--rate-kbps 2048] [--timeout-ms 15000]
//!                  [--lifetime-s 600]
//! ```
//!
//! `hold` opens `--conns` (at most 5000) keep-alive connections to `lab-http` (source ports
//! as the kernel picks them), makes one request on each and prints round 0 (a
//! `tests::tools::conns::Round` line: who answered), then `ready`. Then, `--rounds` times, it
//! waits (at most `--wait-s`) for the file `--trigger` to appear, removes it, makes one more
//! request on every connection that is still alive (all requests written first, the answers
//! read within `--round-s`) and prints the round: answered, reset (RST or closed), timeout,
//! other failures, moved (answered by another real server than in round 0), dead (failed in
//! an earlier round). Exit 0 when every connection answered every round from its first real
//! server, 1 otherwise, 2 bad arguments, 3 lifetime reached.
//!
//! `stream` downloads `GET /bulk?bytes=N` on one connection, reading at most `--rate-kbps`
//! KiB/s (a small receive buffer keeps the flow going through the director for the whole
//! download) and checking every byte against the pattern. Prints `started server=NAME` when
//! the head arrived, a `progress BYTES` line a second, and a `tests::tools::conns::Stream`
//! line at the end. Each read waits at most `--timeout-ms`. Exit 0 when every byte arrived
//! intact, 1 otherwise, 2 bad arguments, 3 lifetime reached.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::sys::socket::{setsockopt, sockopt};
use tests::tools::args::{ArgError, Args};
use tests::tools::conns::{Round, Stream};
use tests::tools::http::{Head, bulk_byte, parse_hello, read_head};
use tests::tools::{DEFAULT_LIFETIME, lifetime};

const USAGE: &str = "usage: lab-conns hold --to ADDR:PORT --conns N [--trigger PATH] [--rounds N] \
                     [--timeout-ms N] [--round-s N] [--wait-s N] [--lifetime-s N]\n       \
                     lab-conns stream --to ADDR:PORT --bytes N [--rate-kbps N] \
                     [--timeout-ms N] [--lifetime-s N]";

/// Upper bound on `--conns`.
const MAX_CONNS: u64 = 5000;
/// Upper bound on `--rounds`.
const MAX_ROUNDS: u64 = 100;
/// Receive buffer of a `stream` connection.
const STREAM_RCVBUF: usize = 64 * 1024;

fn main() -> ExitCode {
    let mut a = Args::from_env();
    let result = match a.subcommand().as_deref() {
        Some("hold") => hold(a),
        Some("stream") => stream(a),
        Some(other) => Err(ArgError::Unknown(other.to_owned())),
        None => Err(ArgError::Required("a subcommand (hold, stream)".to_owned())),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lab-conns: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn too_big(name: &str, value: u64, max: u64) -> ArgError {
    ArgError::BadValue {
        name: name.to_owned(),
        value: format!("{value} (at most {max})"),
    }
}

// ----- hold -----

struct Held {
    conn: Option<BufReader<TcpStream>>,
    /// The real server of round 0.
    server: String,
}

#[derive(Debug)]
enum Failure {
    Reset,
    Timeout,
    Other,
}

fn classify(e: &io::Error) -> Failure {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => Failure::Reset,
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Failure::Timeout,
        _ => Failure::Other,
    }
}

fn count(r: &mut Round, f: &Failure) {
    match f {
        Failure::Reset => r.reset += 1,
        Failure::Timeout => r.timeout += 1,
        Failure::Other => r.failed += 1,
    }
}

fn hold(mut a: Args) -> Result<ExitCode, ArgError> {
    let to: SocketAddr = a.required("--to")?;
    let conns: u64 = a.required("--conns")?;
    let trigger: Option<PathBuf> = a.opt("--trigger")?;
    let rounds: u64 = a.or("--rounds", 1)?;
    let timeout = Duration::from_millis(a.or("--timeout-ms", 3000)?);
    let round_time = Duration::from_secs(a.or("--round-s", 30)?);
    let wait = Duration::from_secs(a.or("--wait-s", 300)?);
    let life = a
        .opt("--lifetime-s")?
        .map_or(DEFAULT_LIFETIME, Duration::from_secs);
    a.finish()?;
    if conns > MAX_CONNS {
        return Err(too_big("--conns", conns, MAX_CONNS));
    }
    if rounds > MAX_ROUNDS {
        return Err(too_big("--rounds", rounds, MAX_ROUNDS));
    }
    let trigger = match (trigger, rounds) {
        (Some(t), _) => Some(t),
        (None, 0) => None,
        (None, _) => return Err(ArgError::Required("--trigger (with --rounds)".to_owned())),
    };
    lifetime("lab-conns", life);

    // Round 0: connect and ask, one connection after the other.
    let mut held = Vec::new();
    let mut r0 = Round {
        conns,
        ..Round::default()
    };
    for _ in 0..conns {
        let mut h = Held {
            conn: None,
            server: String::new(),
        };
        match open(to, timeout).and_then(|mut c| {
            let server = ask(&mut c, to, Instant::now() + timeout)?;
            Ok((c, server))
        }) {
            Ok((c, server)) => {
                r0.answered += 1;
                *r0.servers.entry(server.clone()).or_default() += 1;
                h.conn = Some(c);
                h.server = server;
            }
            Err(e) => count(&mut r0, &classify(&e)),
        }
        held.push(h);
    }
    let mut all_good = r0.all_answered_unmoved();
    println!("{}", r0.render());
    println!("ready");
    let _ = io::stdout().flush();

    let Some(trigger) = trigger else {
        return Ok(exit(all_good));
    };
    for round in 1..=rounds {
        if !wait_for_file(&trigger, wait) {
            eprintln!(
                "lab-conns: no trigger {} within {wait:?}",
                trigger.display()
            );
            return Ok(ExitCode::from(1));
        }
        let _ = std::fs::remove_file(&trigger);
        let r = one_round(&mut held, to, round, conns, round_time);
        all_good &= r.all_answered_unmoved();
        println!("{}", r.render());
        let _ = io::stdout().flush();
    }
    Ok(exit(all_good))
}

fn exit(good: bool) -> ExitCode {
    if good {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn wait_for_file(path: &std::path::Path, wait: Duration) -> bool {
    let end = Instant::now() + wait;
    while Instant::now() < end {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    path.exists()
}

/// Writes a request on every live connection, then reads every answer before `round_time`
/// has passed.
fn one_round(
    held: &mut [Held],
    to: SocketAddr,
    round: u64,
    conns: u64,
    round_time: Duration,
) -> Round {
    let mut r = Round {
        round,
        conns,
        ..Round::default()
    };
    let deadline = Instant::now() + round_time;
    let mut asked = vec![false; held.len()];
    for (h, asked) in held.iter_mut().zip(&mut asked) {
        let Some(c) = h.conn.as_mut() else {
            r.dead += 1;
            continue;
        };
        match write_request(c.get_mut(), to) {
            Ok(()) => *asked = true,
            Err(e) => {
                count(&mut r, &classify(&e));
                h.conn = None;
            }
        }
    }
    for (h, asked) in held.iter_mut().zip(asked) {
        if !asked {
            continue;
        }
        let Some(c) = h.conn.as_mut() else { continue };
        match read_answer(c, deadline) {
            Ok(server) => {
                r.answered += 1;
                if server != h.server {
                    r.moved += 1;
                }
                *r.servers.entry(server).or_default() += 1;
            }
            Err(e) => {
                count(&mut r, &classify(&e));
                h.conn = None;
            }
        }
    }
    r
}

fn open(to: SocketAddr, timeout: Duration) -> io::Result<BufReader<TcpStream>> {
    let s = TcpStream::connect_timeout(&to, timeout)?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    Ok(BufReader::new(s))
}

fn write_request(s: &mut TcpStream, to: SocketAddr) -> io::Result<()> {
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {to}\r\nConnection: keep-alive\r\n\r\n"
    )
}

fn ask(c: &mut BufReader<TcpStream>, to: SocketAddr, deadline: Instant) -> io::Result<String> {
    write_request(c.get_mut(), to)?;
    read_answer(c, deadline)
}

/// Reads one `lab-http` hello answer, waiting at most until `deadline` (at least 1 ms, so
/// that answers already received are still read after the deadline).
fn read_answer(c: &mut BufReader<TcpStream>, deadline: Instant) -> io::Result<String> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    c.get_ref().set_read_timeout(Some(left))?;
    let head = read_head(c)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "closed before an answer"))?;
    if head.status() != Some(200) {
        return Err(io::Error::other(format!("response {:?}", head.start)));
    }
    let len = head.content_length()?;
    let mut body = Vec::new();
    c.take(len).read_to_end(&mut body)?;
    if body.len() as u64 != len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short body"));
    }
    let text = String::from_utf8_lossy(&body);
    let (server, _client) =
        parse_hello(&text).ok_or_else(|| io::Error::other(format!("unexpected body {text:?}")))?;
    Ok(server)
}

// ----- stream -----

fn stream(mut a: Args) -> Result<ExitCode, ArgError> {
    let to: SocketAddr = a.required("--to")?;
    let want: u64 = a.required("--bytes")?;
    let rate_kbps: u64 = a.or("--rate-kbps", 2048)?;
    let timeout = Duration::from_millis(a.or("--timeout-ms", 15_000)?);
    let life = a
        .opt("--lifetime-s")?
        .map_or(DEFAULT_LIFETIME, Duration::from_secs);
    a.finish()?;
    if rate_kbps == 0 {
        return Err(too_big("--rate-kbps", 0, u64::MAX));
    }
    lifetime("lab-conns", life);
    let mut report = Stream {
        want,
        ..Stream::default()
    };
    if let Err(e) = download(to, want, rate_kbps * 1024, timeout, &mut report) {
        report.error = e.to_string();
    }
    println!("{}", report.render());
    let _ = io::stdout().flush();
    Ok(exit(report.complete()))
}

fn download(
    to: SocketAddr,
    want: u64,
    rate: u64,
    timeout: Duration,
    report: &mut Stream,
) -> io::Result<()> {
    let s = TcpStream::connect_timeout(&to, timeout)?;
    setsockopt(&s, sockopt::RcvBuf, &STREAM_RCVBUF).map_err(io::Error::from)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut r = BufReader::with_capacity(16 * 1024, s);
    write!(
        r.get_mut(),
        "GET /bulk?bytes={want} HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\r\n"
    )?;
    let head: Head = read_head(&mut r)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "closed before a head"))?;
    if head.status() != Some(200) {
        return Err(io::Error::other(format!("response {:?}", head.start)));
    }
    report.server = head.header("x-server").unwrap_or("?").to_owned();
    let len = head.content_length()?;
    if len != want {
        return Err(io::Error::other(format!(
            "Content-Length {len}, wanted {want}"
        )));
    }
    println!("started server={}", report.server);
    let _ = io::stdout().flush();
    let start = Instant::now();
    let mut last_data = Instant::now();
    let mut last_progress = Instant::now();
    while report.bytes < want {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the end of the body",
            ));
        }
        let stall = last_data.elapsed();
        report.max_stall_ms = report
            .max_stall_ms
            .max(u64::try_from(stall.as_millis()).unwrap_or(u64::MAX));
        let take = buf
            .len()
            .min(usize::try_from(want - report.bytes).unwrap_or(usize::MAX));
        for (i, &b) in buf[..take].iter().enumerate() {
            let at = report.bytes + i as u64;
            if b != bulk_byte(at) {
                report.corrupt_at = Some(at);
                return Err(io::Error::other(format!(
                    "byte {at} is {b}, not the pattern's"
                )));
            }
        }
        r.consume(take);
        report.bytes += take as u64;
        if last_progress.elapsed() >= Duration::from_secs(1) {
            println!("progress {}", report.bytes);
            let _ = io::stdout().flush();
            last_progress = Instant::now();
        }
        // Pace: sleep until the bytes read so far match the rate.
        let due = Duration::from_secs_f64(report.bytes as f64 / rate as f64);
        if let Some(ahead) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(ahead);
        }
        last_data = Instant::now();
    }
    Ok(())
}
