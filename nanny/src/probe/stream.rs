//! TCP and UDP probes (Piranha `pinger`): connect, optionally send, optionally read and match.
//!
//! TCP: connect within the timeout; write the send string if one is set (an empty one too);
//! without an expect string that is all (connect-only). With one, read until the expect
//! string can be judged ([`Expect::judge`]): a plain string needs exactly its length in bytes
//! (Piranha compared one `read()`, so a short first segment was a false failure), `*` one byte
//! or a close, a regex up to 254 bytes. Everything shares one deadline.
//!
//! UDP: send the send string (an empty datagram when none is set, which provokes a reply or a
//! port-unreachable from most services) and wait for one datagram; without an expect string
//! any reply passes (Piranha crashed here, dereferencing the missing expect string).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use super::ProbeError;
use crate::text::{Expect, Verdict};

/// A TCP or UDP probe.
#[derive(Debug)]
pub struct StreamProbe {
    /// Real server address and port.
    pub addr: SocketAddr,
    /// Bytes written after connecting (`-s`, escapes translated).
    pub send: Option<Vec<u8>>,
    /// How the reply is judged (`-x`).
    pub expect: Option<Expect>,
    /// UDP instead of TCP (`-u`).
    pub udp: bool,
}

impl StreamProbe {
    /// Runs once within `timeout`.
    pub fn run(&self, timeout: Duration) -> Result<(), ProbeError> {
        let deadline = Instant::now() + timeout;
        if self.udp {
            self.udp(deadline)
        } else {
            self.tcp(timeout, deadline)
        }
    }

    fn tcp(&self, timeout: Duration, deadline: Instant) -> Result<(), ProbeError> {
        let addr = self.addr;
        let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|source| {
            if matches!(source.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) {
                ProbeError::ConnectTimeout { addr }
            } else {
                ProbeError::Connect { addr, source }
            }
        })?;
        if let Some(send) = &self.send {
            let remaining = remaining(deadline).ok_or(ProbeError::Write {
                addr,
                source: ErrorKind::TimedOut.into(),
            })?;
            stream
                .set_write_timeout(Some(remaining))
                .and_then(|()| stream.write_all(send))
                .map_err(|source| ProbeError::Write { addr, source })?;
        }
        let Some(expect) = &self.expect else {
            return Ok(());
        };
        let mut got = Vec::with_capacity(expect.window().min(256));
        let mut chunk = [0u8; 256];
        loop {
            match expect.judge(&got, false) {
                Verdict::Pass => return Ok(()),
                Verdict::Fail => return Err(mismatch(addr, &got)),
                Verdict::More => {}
            }
            let Some(remaining) = remaining(deadline) else {
                return Err(ProbeError::ReadTimeout {
                    addr,
                    got: got.len(),
                });
            };
            let want = expect
                .window()
                .saturating_sub(got.len())
                .clamp(1, chunk.len());
            let read = stream
                .set_read_timeout(Some(remaining))
                .and_then(|()| stream.read(&mut chunk[..want]));
            match read {
                Ok(0) => {
                    return match expect.judge(&got, true) {
                        Verdict::Pass => Ok(()),
                        _ if matches!(expect, Expect::Prefix(_)) => Err(ProbeError::TooShort {
                            addr,
                            got: lossy(&got),
                        }),
                        _ => Err(mismatch(addr, &got)),
                    };
                }
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(ProbeError::ReadTimeout {
                        addr,
                        got: got.len(),
                    });
                }
                Err(source) => return Err(ProbeError::Read { addr, source }),
            }
        }
    }

    fn udp(&self, deadline: Instant) -> Result<(), ProbeError> {
        let addr = self.addr;
        let local: SocketAddr = if addr.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)
            .and_then(|s| s.connect(addr).map(|()| s))
            .map_err(|source| ProbeError::Connect { addr, source })?;
        socket
            .send(self.send.as_deref().unwrap_or_default())
            .map_err(|source| ProbeError::Write { addr, source })?;
        let mut buf = [0u8; 1500];
        loop {
            let Some(remaining) = remaining(deadline) else {
                return Err(ProbeError::ReadTimeout { addr, got: 0 });
            };
            let read = socket
                .set_read_timeout(Some(remaining))
                .and_then(|()| socket.recv(&mut buf));
            match read {
                Ok(n) => {
                    let got = &buf[..n];
                    return match &self.expect {
                        None => Ok(()),
                        Some(e) if e.judge(got, true) == Verdict::Pass => Ok(()),
                        Some(_) => Err(mismatch(addr, got)),
                    };
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(ProbeError::ReadTimeout { addr, got: 0 });
                }
                Err(source) => return Err(ProbeError::Read { addr, source }),
            }
        }
    }
}

/// Time left before `deadline`, `None` when it has passed.
fn remaining(deadline: Instant) -> Option<Duration> {
    Some(deadline.saturating_duration_since(Instant::now())).filter(|d| !d.is_zero())
}

fn lossy(got: &[u8]) -> String {
    String::from_utf8_lossy(&got[..got.len().min(crate::text::REGEX_WINDOW)]).into_owned()
}

fn mismatch(addr: SocketAddr, got: &[u8]) -> ProbeError {
    ProbeError::Mismatch {
        addr,
        got: lossy(got),
    }
}
