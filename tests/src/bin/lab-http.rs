//! `lab-http`: a minimal HTTP/1.1 server for the network lab.
//!
//! ```text
//! lab-http --name NAME --listen ADDR:PORT [--listen ADDR:PORT ...]
//!          [--idle-ms 30000] [--max-conns 1024] [--lifetime-s 600]
//! ```
//!
//! Every request gets `server=NAME client=IP:PORT` (the peer as this server sees it) and an
//! `X-Server: NAME` header; `GET /bulk?bytes=N` streams N pattern bytes instead
//! (`tests::tools::http::bulk_byte`). Keep-alive as HTTP/1.1 says. Prints `ready` once every
//! listener is bound. Exit codes: 2 bad arguments, 1 cannot bind, 3 lifetime reached.

use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use tests::tools::args::{ArgError, Args};
use tests::tools::http::{bulk_byte, bulk_size, hello_body, read_head};
use tests::tools::{DEFAULT_LIFETIME, lifetime};

const USAGE: &str = "usage: lab-http --name NAME --listen ADDR:PORT [--listen ADDR:PORT ...] \
                     [--idle-ms N] [--max-conns N] [--lifetime-s N]";

#[derive(Debug)]
struct Config {
    name: String,
    listen: Vec<SocketAddr>,
    idle: Duration,
    max_conns: usize,
    lifetime: Duration,
}

fn parse() -> Result<Config, ArgError> {
    let mut a = Args::from_env();
    let c = Config {
        name: a.required("--name")?,
        listen: a.values("--listen")?,
        idle: Duration::from_millis(a.or("--idle-ms", 30_000)?),
        max_conns: a.or("--max-conns", 1024)?,
        lifetime: a
            .opt("--lifetime-s")?
            .map_or(DEFAULT_LIFETIME, Duration::from_secs),
    };
    a.finish()?;
    if c.listen.is_empty() {
        return Err(ArgError::Required("--listen".to_owned()));
    }
    Ok(c)
}

fn main() -> ExitCode {
    let cfg = match parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lab-http: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    lifetime("lab-http", cfg.lifetime);
    let mut listeners = Vec::new();
    for addr in &cfg.listen {
        match TcpListener::bind(addr) {
            Ok(l) => listeners.push(l),
            Err(e) => {
                eprintln!("lab-http: cannot listen on {addr}: {e}");
                return ExitCode::from(1);
            }
        }
        println!("lab-http {} listening on {addr}", cfg.name);
    }
    println!("ready");
    let cfg = Arc::new(cfg);
    let active = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for l in listeners {
        let (cfg, active) = (Arc::clone(&cfg), Arc::clone(&active));
        handles.push(thread::spawn(move || accept_loop(&l, &cfg, &active)));
    }
    for h in handles {
        let _ = h.join();
    }
    ExitCode::from(1)
}

fn accept_loop(l: &TcpListener, cfg: &Arc<Config>, active: &Arc<AtomicUsize>) {
    for stream in l.incoming() {
        let Ok(stream) = stream else { continue };
        if active.fetch_add(1, Ordering::SeqCst) >= cfg.max_conns {
            active.fetch_sub(1, Ordering::SeqCst);
            continue; // dropped: closes the connection
        }
        let (cfg, active) = (Arc::clone(cfg), Arc::clone(active));
        thread::spawn(move || {
            if let Err(e) = serve(stream, &cfg)
                && !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::BrokenPipe
                )
            {
                eprintln!("lab-http: connection: {e}");
            }
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// A pattern buffer whose length is a multiple of the pattern's period (251), so that
/// writing it again and again continues the pattern.
fn pattern() -> Vec<u8> {
    (0..251 * 256).map(bulk_byte).collect()
}

fn serve(stream: TcpStream, cfg: &Config) -> io::Result<()> {
    stream.set_read_timeout(Some(cfg.idle))?;
    stream.set_write_timeout(Some(cfg.idle))?;
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr()?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    let mut chunk: Option<Vec<u8>> = None;
    while let Some(head) = read_head(&mut reader)? {
        // A request body, if any, is read and thrown away.
        let len = head.content_length()?;
        io::copy(&mut io::Read::take(&mut reader, len), &mut io::sink())?;
        let keep = head.keep_alive(true);
        let conn = if keep { "keep-alive" } else { "close" };
        if let Some(n) = bulk_size(head.path()) {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                 Content-Length: {n}\r\nX-Server: {}\r\nConnection: {conn}\r\n\r\n",
                cfg.name
            )?;
            let buf = chunk.get_or_insert_with(pattern);
            let mut left = n;
            while left > 0 {
                let take = usize::try_from(left.min(buf.len() as u64))
                    .expect("bounded by the buffer length");
                out.write_all(&buf[..take])?;
                left -= take as u64;
            }
        } else {
            let body = hello_body(&cfg.name, &peer.to_string());
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                 X-Server: {}\r\nConnection: {conn}\r\n\r\n{body}",
                body.len(),
                cfg.name
            )?;
        }
        out.flush()?;
        if !keep {
            break;
        }
    }
    Ok(())
}
