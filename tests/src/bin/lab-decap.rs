//! `lab-decap`: userspace IP-in-IP for TUN-mode real servers (this kernel has no `ipip`
//! module), and a sender of test IP-in-IP packets.
//!
//! ```text
//! lab-decap [--tun tun0] [--verbose] [--lifetime-s 600]
//! lab-decap send --dst OUTER_DST --inner-src IP:PORT --inner-dst IP:PORT
//!                [--src OUTER_SRC] [--payload TEXT] [--count 1]
//! ```
//!
//! Decapsulating: a raw socket for IP protocol 4 receives every IP-in-IP packet addressed to
//! this namespace (the kernel hands raw sockets a copy, and without a protocol handler sends
//! no ICMP once a raw socket took it); the inner IPv4 packet is written to the TUN device
//! (`IFF_TUN | IFF_NO_PI`, which must exist and be up: the lab creates it with
//! `ip tuntap add mode tun dev tun0`), so the kernel receives it as if it came in on `tun0`
//! and delivers it locally. The real server needs the VIP on `lo` (or `tun0`) and
//! `rp_filter=0`. Prints `ready` once both are open.
//!
//! Sending: builds an IPv4/UDP datagram `inner-src -> inner-dst` carrying `--payload`, wraps
//! it in an outer IPv4 header (protocol 4) `src -> dst` and sends it with an `IPPROTO_RAW`
//! socket (header included). `--src` defaults to 0.0.0.0, which the kernel fills in.
//!
//! Exit codes: 0 done, 1 system error, 2 bad arguments, 3 lifetime reached.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::time::Duration;

use tests::tools::args::{ArgError, Args};
use tests::tools::ipip::{PROTO_IPIP, inner_packet, ipv4, udp_datagram};
use tests::tools::{DEFAULT_LIFETIME, lifetime};

const USAGE: &str = "usage: lab-decap [--tun NAME] [--verbose] [--lifetime-s N]\n       \
                     lab-decap send --dst IP --inner-src IP:PORT --inner-dst IP:PORT \
                     [--src IP] [--payload TEXT] [--count N]";

/// Most packets `send` sends in one run.
const MAX_COUNT: u16 = 10_000;
/// Packets logged one by one with `--verbose` before logging stops.
const VERBOSE_PACKETS: u64 = 100;

/// The only unsafe code of the tests crate: the raw sockets and the TUN ioctl have no safe
/// std API. The crate's library keeps `#![forbid(unsafe_code)]`; the workspace's
/// `unsafe_code = "deny"` is lifted for this module alone.
#[allow(unsafe_code)]
mod sys {
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::net::Ipv4Addr;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// `socket(AF_INET, SOCK_RAW, proto)` as a `File` (read/write are recv/send).
    pub fn raw_socket(proto: libc::c_int) -> io::Result<File> {
        // SAFETY: socket(2) takes no pointers; its result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by socket(2): it is open and owned by nobody else.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Attaches to TUN device `name` (created if missing) without packet information.
    pub fn tun_attach(name: &str) -> io::Result<File> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")?;
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad interface name {name:?}"),
            ));
        }
        let mut ifr_name = [0 as libc::c_char; libc::IFNAMSIZ];
        for (d, s) in ifr_name.iter_mut().zip(bytes) {
            *d = libc::c_char::from_ne_bytes([*s]);
        }
        let flags = libc::c_short::try_from(libc::IFF_TUN | libc::IFF_NO_PI)
            .expect("the TUN flags fit a short");
        let mut req = libc::ifreq {
            ifr_name,
            ifr_ifru: libc::__c_anonymous_ifr_ifru { ifru_flags: flags },
        };
        // SAFETY: TUNSETIFF reads and writes one `struct ifreq`; `req` is a fully initialised
        // ifreq (NUL-terminated name, flags) that lives across the call, and the descriptor
        // is an open /dev/net/tun handle owned by `file`.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &raw mut req) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(file)
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
        None => decap(a),
        Some("send") => send(a),
        Some(other) => Err(ArgError::Unknown(other.to_owned())),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lab-decap: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn decap(mut a: Args) -> Result<ExitCode, ArgError> {
    let tun_name: String = a.or("--tun", "tun0".to_owned())?;
    let verbose = a.flag("--verbose");
    let life = a
        .opt("--lifetime-s")?
        .map_or(DEFAULT_LIFETIME, Duration::from_secs);
    a.finish()?;
    lifetime("lab-decap", life);
    let opened = sys::raw_socket(libc::c_int::from(PROTO_IPIP))
        .map_err(|e| format!("raw socket for protocol 4: {e}"))
        .and_then(|raw| {
            sys::tun_attach(&tun_name)
                .map(|tun| (raw, tun))
                .map_err(|e| format!("attach to TUN device {tun_name}: {e}"))
        });
    let (mut raw, mut tun) = match opened {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("lab-decap: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    println!("ready: decapsulating IP-in-IP into {tun_name}");
    let mut buf = vec![0u8; 65536];
    let (mut good, mut bad) = (0u64, 0u64);
    loop {
        let n = match raw.read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("lab-decap: receive: {e}");
                return Ok(ExitCode::from(1));
            }
        };
        match inner_packet(&buf[..n]) {
            Some(inner) => {
                good += 1;
                if verbose && good <= VERBOSE_PACKETS {
                    println!(
                        "decap #{good}: {} bytes {} -> {}",
                        inner.len(),
                        Ipv4Addr::new(inner[12], inner[13], inner[14], inner[15]),
                        Ipv4Addr::new(inner[16], inner[17], inner[18], inner[19]),
                    );
                }
                if let Err(e) = tun.write_all(inner) {
                    eprintln!("lab-decap: write to {tun_name}: {e}");
                }
            }
            None => {
                bad += 1;
                if bad <= VERBOSE_PACKETS {
                    eprintln!("lab-decap: dropped a malformed IP-in-IP packet ({n} bytes)");
                }
            }
        }
    }
}

fn send(mut a: Args) -> Result<ExitCode, ArgError> {
    let src: Ipv4Addr = a.or("--src", Ipv4Addr::UNSPECIFIED)?;
    let dst: Ipv4Addr = a.required("--dst")?;
    let inner_src: SocketAddrV4 = a.required("--inner-src")?;
    let inner_dst: SocketAddrV4 = a.required("--inner-dst")?;
    let payload: String = a.or("--payload", "hello".to_owned())?;
    let count: u16 = a.or("--count", 1)?;
    a.finish()?;
    if count > MAX_COUNT {
        return Err(ArgError::BadValue {
            name: "--count".to_owned(),
            value: count.to_string(),
        });
    }
    let sock = match sys::raw_socket(libc::IPPROTO_RAW) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("lab-decap: raw socket: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    for i in 0..count {
        let packet = udp_datagram(inner_src, inner_dst, i, payload.as_bytes())
            .and_then(|inner| ipv4(src, dst, PROTO_IPIP, i, &inner));
        let Some(packet) = packet else {
            eprintln!("lab-decap: payload too large");
            return Ok(ExitCode::from(2));
        };
        if let Err(e) = sys::send_to(&sock, &packet, dst) {
            eprintln!("lab-decap: send to {dst}: {e}");
            return Ok(ExitCode::from(1));
        }
    }
    println!("sent {count} IP-in-IP packet(s) to {dst}: {inner_src} -> {inner_dst}");
    Ok(ExitCode::SUCCESS)
}
