//! `lab-heartbeat`: a third party on the heartbeat path, for pulse's lab tests
//! (`tests/tests/pulse_ha.rs`). It sends datagrams with a forged source and captures real
//! heartbeats; it knows nothing of their format (the tests build and read frames with
//! `tests::heartbeat`, which uses pulse's wire module).
//! It serves `sync_failover.rs` the same way for lvsd's connection-sync datagrams (UDP port
//! 8848): any UDP payload, any ports.
//!
//! ```text
//! lab-heartbeat send --from IP:PORT --to IP:PORT --hex PAYLOAD [--hex PAYLOAD ...]
//!                    [--count 1] [--interval-ms 0]
//! lab-heartbeat capture --from IP:PORT --to IP:PORT [--count 100] [--lifetime-s 600]
//! ```
//!
//! `send` sends each payload (hex), in order, `--count` times, as an IPv4/UDP datagram
//! `from -> to` built by hand and sent on an `IPPROTO_RAW` socket, so the source address
//! need not be local (a spoofed heartbeat). Prints `sent N datagram(s)`.
//!
//! `capture` opens an `AF_PACKET` socket for IPv4 (link header removed: the kernel hands it
//! every IPv4 packet this namespace receives, before the IP stack judges it) and prints
//! `ready`, then one line `frame HEX` per UDP payload of a datagram `from -> to`, until
//! `--count` frames or its lifetime.
//!
//! Exit codes: 0 done, 1 system error, 2 bad arguments, 3 lifetime reached.

use std::io::Read;
use std::net::SocketAddrV4;
use std::process::ExitCode;
use std::time::Duration;

use tests::heartbeat::{hex, udp_payload, unhex};
use tests::tools::args::{ArgError, Args};
use tests::tools::ipip::udp_datagram;
use tests::tools::{DEFAULT_LIFETIME, lifetime};

const USAGE: &str = "usage: lab-heartbeat send --from IP:PORT --to IP:PORT --hex PAYLOAD \
                     [--hex PAYLOAD ...] [--count N] [--interval-ms MS]\n       \
                     lab-heartbeat capture --from IP:PORT --to IP:PORT [--count N] \
                     [--lifetime-s N]";

/// Most datagrams `send` sends per payload in one run.
const MAX_COUNT: u16 = 10_000;

/// Raw sockets have no safe std API. The crate's library keeps `#![forbid(unsafe_code)]`;
/// the workspace's `unsafe_code = "deny"` is lifted for this module alone (as in
/// `lab-decap`).
#[allow(unsafe_code)]
mod sys {
    use std::fs::File;
    use std::io;
    use std::net::Ipv4Addr;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    fn socket(domain: libc::c_int, kind: libc::c_int, proto: libc::c_int) -> io::Result<File> {
        // SAFETY: socket(2) takes no pointers; its result is checked before use.
        let fd = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, proto) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by socket(2): it is open and owned by nobody else.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// `socket(AF_INET, SOCK_RAW, IPPROTO_RAW)`: whole IPv4 packets, header included.
    pub fn raw_ip() -> io::Result<File> {
        socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW)
    }

    /// `socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP))`: every IPv4 packet received, without
    /// its link header (read(2) returns one packet).
    pub fn packet_ipv4() -> io::Result<File> {
        let proto = libc::c_int::from(
            u16::try_from(libc::ETH_P_IP)
                .expect("ETH_P_IP fits 16 bits")
                .to_be(),
        );
        socket(libc::AF_PACKET, libc::SOCK_DGRAM, proto)
    }

    /// `sendto(2)` of a whole IPv4 packet on a raw socket, to `dst`.
    pub fn send_to(sock: &File, packet: &[u8], dst: Ipv4Addr) -> io::Result<usize> {
        let addr = libc::sockaddr_in {
            sin_family: libc::sa_family_t::try_from(libc::AF_INET).expect("AF_INET fits"),
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(dst.octets()),
            },
            sin_zero: [0; 8],
        };
        let len = libc::socklen_t::try_from(size_of::<libc::sockaddr_in>())
            .expect("sockaddr_in size fits socklen_t");
        // SAFETY: the buffer pointer and length come from a live slice; `addr` is an
        // initialised sockaddr_in that outlives the call and `len` is its size; the
        // descriptor is open (owned by `sock`).
        let n = unsafe {
            libc::sendto(
                sock.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&raw const addr).cast(),
                len,
            )
        };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }
}

fn main() -> ExitCode {
    let mut a = Args::from_env();
    let result = match a.subcommand().as_deref() {
        Some("send") => send(a),
        Some("capture") => capture(a),
        Some(other) => Err(ArgError::Unknown(other.to_owned())),
        None => Err(ArgError::Required(
            "a subcommand (send, capture)".to_owned(),
        )),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lab-heartbeat: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn send(mut a: Args) -> Result<ExitCode, ArgError> {
    let from: SocketAddrV4 = a.required("--from")?;
    let to: SocketAddrV4 = a.required("--to")?;
    let payloads: Vec<String> = a.values("--hex")?;
    let count: u16 = a.or("--count", 1)?;
    let interval = Duration::from_millis(a.or("--interval-ms", 0)?);
    a.finish()?;
    if count > MAX_COUNT {
        return Err(ArgError::BadValue {
            name: "--count".to_owned(),
            value: count.to_string(),
        });
    }
    let payloads = payloads
        .into_iter()
        .map(|h| {
            unhex(&h).ok_or(ArgError::BadValue {
                name: "--hex".to_owned(),
                value: h,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if payloads.is_empty() {
        return Err(ArgError::Required("--hex".to_owned()));
    }
    let sock = match sys::raw_ip() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("lab-heartbeat: raw socket: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let mut sent = 0u32;
    for round in 0..count {
        if round > 0 {
            std::thread::sleep(interval);
        }
        for p in &payloads {
            // The IP id only needs to vary; it wraps harmlessly.
            let id = u16::try_from(sent & 0xffff).expect("masked to 16 bits");
            let Some(packet) = udp_datagram(from, to, id, p) else {
                eprintln!("lab-heartbeat: payload too large");
                return Ok(ExitCode::from(2));
            };
            if let Err(e) = sys::send_to(&sock, &packet, *to.ip()) {
                eprintln!("lab-heartbeat: send to {to}: {e}");
                return Ok(ExitCode::from(1));
            }
            sent += 1;
        }
    }
    println!("sent {sent} datagram(s) {from} -> {to}");
    Ok(ExitCode::SUCCESS)
}

fn capture(mut a: Args) -> Result<ExitCode, ArgError> {
    let from: SocketAddrV4 = a.required("--from")?;
    let to: SocketAddrV4 = a.required("--to")?;
    let count: u32 = a.or("--count", 100)?;
    let life = a
        .opt("--lifetime-s")?
        .map_or(DEFAULT_LIFETIME, Duration::from_secs);
    a.finish()?;
    lifetime("lab-heartbeat", life);
    let mut sock = match sys::packet_ipv4() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("lab-heartbeat: packet socket: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    println!("ready: capturing {from} -> {to}");
    let mut buf = vec![0u8; 65536];
    let mut seen = 0;
    while seen < count {
        let n = match sock.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("lab-heartbeat: receive: {e}");
                return Ok(ExitCode::from(1));
            }
        };
        if let Some(payload) = udp_payload(&buf[..n], from, to) {
            println!("frame {}", hex(payload));
            seen += 1;
        }
    }
    Ok(ExitCode::SUCCESS)
}
