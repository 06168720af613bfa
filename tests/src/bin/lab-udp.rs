//! `lab-udp`: UDP echo server and clients for the network lab.
//!
//! ```text
//! lab-udp serve --name NAME --listen ADDR:PORT [--listen ...] [--lifetime-s 600]
//! lab-udp send  --to ADDR:PORT [--count 1] [--timeout-ms 2000] [--new-socket]
//!               [--size BYTES] [--reply-size BYTES]
//! lab-udp recv  --listen ADDR:PORT [--count 1] [--timeout-ms 5000]
//! ```
//!
//! `serve` answers each datagram with `server=NAME client=IP:PORT data=PAYLOAD` from the
//! socket it arrived on: bind the VIP itself on DR/TUN real servers, so that replies leave
//! from the VIP (a wildcard socket would answer from the interface address). It prints
//! `ready` once bound.
//! `send` sends `ping <i>` datagrams one by one, waits for each echo, and prints the tally
//! (`tests::tools::tally`); `--new-socket` uses a new source port for each (all kept open
//! to the end, so none is reused). `--size` pads each datagram to that many bytes (IPv4
//! fragments beyond the MTU); `--reply-size` asks the server (with a `reply=N` word in the
//! datagram) to pad its echo to N bytes, and an echo shorter than that counts as a failure.
//! `recv` prints `{"from":"IP:PORT","data":"..."}` per datagram and exits 0 once `--count`
//! arrived, 1 if the timeout for one passes first.
//! Exit codes: 0 success, 1 failure, 2 bad arguments, 3 lifetime reached.

use std::io::{self, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use tests::tools::args::{ArgError, Args};
use tests::tools::http::parse_hello;
use tests::tools::tally::Tally;
use tests::tools::{DEFAULT_LIFETIME, lifetime};

const USAGE: &str = "usage: lab-udp serve --name NAME --listen ADDR:PORT [--listen ...]\n       \
                     lab-udp send --to ADDR:PORT [--count N] [--timeout-ms N] [--new-socket] \
                     [--size BYTES] [--reply-size BYTES]\n       \
                     lab-udp recv --listen ADDR:PORT [--count N] [--timeout-ms N]";

/// Upper bound on `--count`.
const MAX_COUNT: u64 = 1_000_000;
/// Upper bound on `--size` and `--reply-size` (a UDP datagram in IPv4).
const MAX_SIZE: usize = 65_000;

fn main() -> ExitCode {
    let mut a = Args::from_env();
    let result = match a.subcommand().as_deref() {
        Some("serve") => serve(a),
        Some("send") => send(a),
        Some("recv") => recv(a),
        _ => Err(ArgError::Unknown(
            "subcommand (serve, send or recv)".to_owned(),
        )),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("lab-udp: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn count(a: &mut Args) -> Result<u64, ArgError> {
    let n: u64 = a.or("--count", 1)?;
    if n > MAX_COUNT {
        return Err(ArgError::BadValue {
            name: "--count".to_owned(),
            value: n.to_string(),
        });
    }
    Ok(n)
}

fn serve(mut a: Args) -> Result<bool, ArgError> {
    let name: String = a.required("--name")?;
    let listen: Vec<SocketAddr> = a.values("--listen")?;
    let life = a
        .opt("--lifetime-s")?
        .map_or(DEFAULT_LIFETIME, Duration::from_secs);
    a.finish()?;
    if listen.is_empty() {
        return Err(ArgError::Required("--listen".to_owned()));
    }
    lifetime("lab-udp", life);
    let mut sockets = Vec::new();
    for addr in &listen {
        match UdpSocket::bind(addr) {
            Ok(s) => sockets.push(s),
            Err(e) => {
                eprintln!("lab-udp: cannot bind {addr}: {e}");
                return Ok(false);
            }
        }
        println!("lab-udp {name} listening on {addr}");
    }
    println!("ready");
    let handles: Vec<_> = sockets
        .into_iter()
        .map(|s| {
            let name = name.clone();
            thread::spawn(move || echo_loop(&s, &name))
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    Ok(false)
}

fn echo_loop(s: &UdpSocket, name: &str) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, peer)) = s.recv_from(&mut buf) else {
            continue;
        };
        let data = String::from_utf8_lossy(&buf[..n]);
        let mut reply = format!("server={name} client={peer} data={data}");
        let want = data
            .split_whitespace()
            .find_map(|w| w.strip_prefix("reply="))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
            .min(MAX_SIZE);
        pad(&mut reply, want);
        if let Err(e) = s.send_to(reply.as_bytes(), peer) {
            eprintln!("lab-udp: reply to {peer}: {e}");
        }
    }
}

/// Pads `text` with a space and dots to `len` bytes (nothing if it is that long already).
fn pad(text: &mut String, len: usize) {
    if text.len() < len {
        text.push(' ');
        while text.len() < len {
            text.push('.');
        }
    }
}

fn size(a: &mut Args, name: &str) -> Result<usize, ArgError> {
    let n: usize = a.or(name, 0)?;
    if n > MAX_SIZE {
        return Err(ArgError::BadValue {
            name: name.to_owned(),
            value: n.to_string(),
        });
    }
    Ok(n)
}

fn send(mut a: Args) -> Result<bool, ArgError> {
    let to: SocketAddr = a.required("--to")?;
    let n = count(&mut a)?;
    let timeout = Duration::from_millis(a.or("--timeout-ms", 2000)?);
    let new_socket = a.flag("--new-socket");
    let req_size = size(&mut a, "--size")?;
    let reply_size = size(&mut a, "--reply-size")?;
    a.finish()?;
    let mut tally = Tally::default();
    let mut shared: Option<UdpSocket> = None;
    // `--new-socket`: every socket stays open until the end, so that no two datagrams share
    // a source port (a port freed and reused would be the same UDP connection to the
    // director, the same real server, and a scheduler split off by one).
    let mut fresh: Vec<UdpSocket> = Vec::new();
    for i in 0..n {
        if new_socket {
            match UdpSocket::bind("0.0.0.0:0") {
                Ok(s) => fresh.push(s),
                Err(e) => {
                    tally.fail(format!("datagram {i}: bind: {e}"));
                    continue;
                }
            }
        }
        let result = (|| -> io::Result<(String, String)> {
            let s = if new_socket {
                fresh.last().ok_or_else(|| io::Error::other("no socket"))?
            } else {
                match &shared {
                    Some(s) => s,
                    None => shared.insert(UdpSocket::bind("0.0.0.0:0")?),
                }
            };
            let mut ping = format!("ping {i}");
            if reply_size > 0 {
                ping.push_str(&format!(" reply={reply_size}"));
            }
            pad(&mut ping, req_size);
            s.send_to(ping.as_bytes(), to)?;
            let deadline = Instant::now() + timeout;
            let mut buf = vec![0u8; 65536];
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "no echo"));
                }
                s.set_read_timeout(Some(left))?;
                let (len, _) = s.recv_from(&mut buf)?;
                let text = String::from_utf8_lossy(&buf[..len]).into_owned();
                // A late echo of an earlier ping is skipped.
                if text.contains(&format!("data={ping}")) {
                    if len < reply_size {
                        return Err(io::Error::other(format!(
                            "echo of {len} bytes, asked for {reply_size}"
                        )));
                    }
                    return parse_hello(&text)
                        .ok_or_else(|| io::Error::other(format!("unexpected echo {text:?}")));
                }
            }
        })();
        match result {
            Ok((server, client)) => tally.ok(&server, &client),
            Err(e) => tally.fail(format!("datagram {i}: {e}")),
        }
    }
    print!("{}", tally.render());
    let _ = io::stdout().flush();
    Ok(tally.failed == 0)
}

fn recv(mut a: Args) -> Result<bool, ArgError> {
    let listen: SocketAddr = a.required("--listen")?;
    let n = count(&mut a)?;
    let timeout = Duration::from_millis(a.or("--timeout-ms", 5000)?);
    a.finish()?;
    let s = match UdpSocket::bind(listen) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("lab-udp: cannot bind {listen}: {e}");
            return Ok(false);
        }
    };
    println!("ready");
    let mut buf = vec![0u8; 65536];
    for _ in 0..n {
        if s.set_read_timeout(Some(timeout)).is_err() {
            return Ok(false);
        }
        match s.recv_from(&mut buf) {
            Ok((len, from)) => {
                let data = String::from_utf8_lossy(&buf[..len]);
                let data = data.replace('\\', "\\\\").replace('"', "\\\"");
                println!("{{\"from\":\"{from}\",\"data\":\"{data}\"}}");
            }
            Err(e) => {
                eprintln!("lab-udp: nothing within {timeout:?}: {e}");
                return Ok(false);
            }
        }
    }
    Ok(true)
}
