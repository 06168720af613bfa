//! `lab-client`: HTTP requests against an address, with a tally of who answered.
//!
//! ```text
//! lab-client --to ADDR:PORT [--requests 1] [--keep-alive] [--timeout-ms 2000]
//!            [--path /] [--interval-ms 0] [--deadline-s 60] [--bulk BYTES] [--verbose]
//!            [--until-file PATH]
//! ```
//!
//! Makes `--requests` sequential GETs, each on a new connection unless `--keep-alive`.
//! With `--until-file PATH` it stops early, after the request during which `PATH` appeared
//! (load that runs while a test does something else; `--requests` and `--deadline-s` still
//! bound it, and a deadline reached before the file appeared fails the remaining requests).
//! The output ends with `{"connects":N}`: TCP connections opened (1 for a keep-alive run
//! whose connection was never lost).
//! Every request is bounded by `--timeout-ms` (connect and each read/write), the whole run by
//! `--deadline-s`. With `--bulk N` each request is `GET /bulk?bytes=N` and the body is counted
//! and checked against the pattern. Prints the tally (`tests::tools::tally`) on stdout; with
//! `--verbose` one `{"req":..}` line per request too. Exit codes: 0 every request answered,
//! 1 any failure, 2 bad arguments.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tests::tools::args::{ArgError, Args};
use tests::tools::http::{bulk_byte, parse_hello, read_head};
use tests::tools::tally::Tally;

const USAGE: &str = "usage: lab-client --to ADDR:PORT [--requests N] [--keep-alive] \
                     [--timeout-ms N] [--path P] [--interval-ms N] [--deadline-s N] \
                     [--bulk BYTES] [--verbose] [--until-file PATH]";

/// Upper bound on `--requests`.
const MAX_REQUESTS: u64 = 1_000_000;

#[derive(Debug)]
struct Config {
    to: SocketAddr,
    requests: u64,
    keep_alive: bool,
    timeout: Duration,
    path: String,
    interval: Duration,
    deadline: Duration,
    bulk: Option<u64>,
    verbose: bool,
    until: Option<std::path::PathBuf>,
}

fn parse() -> Result<Config, ArgError> {
    let mut a = Args::from_env();
    let bulk: Option<u64> = a.opt("--bulk")?;
    let c = Config {
        to: a.required("--to")?,
        requests: a.or("--requests", 1)?,
        keep_alive: a.flag("--keep-alive"),
        timeout: Duration::from_millis(a.or("--timeout-ms", 2000)?),
        path: a.or(
            "--path",
            bulk.map_or_else(|| "/".to_owned(), |n| format!("/bulk?bytes={n}")),
        )?,
        interval: Duration::from_millis(a.or("--interval-ms", 0)?),
        deadline: Duration::from_secs(a.or("--deadline-s", 60)?),
        bulk,
        verbose: a.flag("--verbose"),
        until: a.opt("--until-file")?,
    };
    a.finish()?;
    if c.requests > MAX_REQUESTS {
        return Err(ArgError::BadValue {
            name: "--requests".to_owned(),
            value: format!("{} (at most {MAX_REQUESTS})", c.requests),
        });
    }
    Ok(c)
}

#[derive(Debug)]
struct Answer {
    server: String,
    client: String,
    bytes: u64,
    keep: bool,
}

fn main() -> ExitCode {
    let cfg = match parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lab-client: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    let mut tally = Tally::default();
    let mut conn: Option<BufReader<TcpStream>> = None;
    let mut connects: u64 = 0;
    for i in 0..cfg.requests {
        if cfg.until.as_ref().is_some_and(|p| p.exists()) {
            break;
        }
        if start.elapsed() >= cfg.deadline {
            for j in i..cfg.requests {
                tally.fail(format!(
                    "request {j}: deadline of {:?} passed",
                    cfg.deadline
                ));
            }
            break;
        }
        if i > 0 && !cfg.interval.is_zero() {
            std::thread::sleep(cfg.interval);
        }
        let t0 = Instant::now();
        match request(&cfg, &mut conn, &mut connects) {
            Ok(a) => {
                if cfg.verbose {
                    println!(
                        "{{\"req\":{i},\"server\":\"{}\",\"client\":\"{}\",\"bytes\":{},\"ms\":{}}}",
                        a.server,
                        a.client,
                        a.bytes,
                        t0.elapsed().as_millis()
                    );
                }
                if let Some(n) = cfg.bulk {
                    let secs = t0.elapsed().as_secs_f64().max(1e-9);
                    // Precision loss is irrelevant for a rate shown to people.
                    #[allow(clippy::cast_precision_loss)]
                    let mbit = n as f64 * 8.0 / secs / 1e6;
                    println!(
                        "{{\"bulk_bytes\":{},\"server\":\"{}\",\"mbit_s\":{mbit:.0}}}",
                        a.bytes, a.server
                    );
                }
                tally.ok(&a.server, &a.client);
                if !(cfg.keep_alive && a.keep) {
                    conn = None;
                }
            }
            Err(e) => {
                tally.fail(format!("request {i}: {e}"));
                conn = None;
            }
        }
    }
    print!("{}", tally.render());
    println!("{{\"connects\":{connects}}}");
    let _ = io::stdout().flush();
    let all = if cfg.until.is_some() {
        tally.total
    } else {
        cfg.requests
    };
    if tally.failed == 0 && tally.ok == all {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn request(
    cfg: &Config,
    conn: &mut Option<BufReader<TcpStream>>,
    connects: &mut u64,
) -> io::Result<Answer> {
    let r = match conn {
        Some(r) => r,
        None => {
            *connects += 1;
            let s = TcpStream::connect_timeout(&cfg.to, cfg.timeout)?;
            s.set_read_timeout(Some(cfg.timeout))?;
            s.set_write_timeout(Some(cfg.timeout))?;
            s.set_nodelay(true)?;
            conn.insert(BufReader::with_capacity(256 * 1024, s))
        }
    };
    let c = if cfg.keep_alive {
        "keep-alive"
    } else {
        "close"
    };
    write!(
        r.get_mut(),
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: {c}\r\n\r\n",
        cfg.path,
        cfg.to
    )?;
    let head = read_head(r)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a response",
        )
    })?;
    if head.status() != Some(200) {
        return Err(io::Error::other(format!("response {:?}", head.start)));
    }
    let len = head.content_length()?;
    let server = head.header("x-server").unwrap_or("?").to_owned();
    let keep = head.keep_alive(false);
    if let Some(want) = cfg.bulk {
        let got = read_pattern(r, len)?;
        if got != want {
            return Err(io::Error::other(format!(
                "bulk body of {got} bytes, wanted {want}"
            )));
        }
        return Ok(Answer {
            server,
            client: "-".to_owned(),
            bytes: got,
            keep,
        });
    }
    let mut body = Vec::new();
    r.take(len).read_to_end(&mut body)?;
    if body.len() as u64 != len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short body"));
    }
    let text = String::from_utf8_lossy(&body);
    let (server, client) =
        parse_hello(&text).ok_or_else(|| io::Error::other(format!("unexpected body {text:?}")))?;
    Ok(Answer {
        server,
        client,
        bytes: len,
        keep,
    })
}

/// Reads `len` body bytes, checking the bulk pattern; returns how many were read.
fn read_pattern(r: &mut BufReader<TcpStream>, len: u64) -> io::Result<u64> {
    let pattern: Vec<u8> = (0..251 * 2).map(bulk_byte).collect();
    let mut pos: u64 = 0;
    while pos < len {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let take = buf
            .len()
            .min(usize::try_from(len - pos).unwrap_or(usize::MAX));
        for piece in buf[..take].chunks(251) {
            let off = usize::try_from(pos % 251).expect("below 251");
            if piece != &pattern[off..off + piece.len()] {
                return Err(io::Error::other(format!(
                    "bulk body corrupt near byte {pos}"
                )));
            }
            pos += piece.len() as u64;
        }
        r.consume(take);
    }
    Ok(pos)
}
