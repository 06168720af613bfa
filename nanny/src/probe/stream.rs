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
//!
//! A probe runs as an [`Attempt`]: a non-blocking state machine whose socket the caller waits
//! on (with `poll(2)`, beside its other descriptors) so that nanny's main loop probes without a
//! thread of its own. [`StreamProbe::run`] drives one attempt to the end, blocking.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::task::Poll;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrStorage, connect, getsockopt, socket, sockopt,
};
use nix::sys::time::TimeSpec;

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

/// What an unfinished [`Attempt`] waits for on its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Readable (a reply, or an error).
    Read,
    /// Writable (connected, or room to send).
    Write,
}

impl Interest {
    /// The `poll(2)` events for this interest.
    pub fn poll_flags(self) -> PollFlags {
        match self {
            Interest::Read => PollFlags::POLLIN,
            Interest::Write => PollFlags::POLLOUT,
        }
    }
}

/// One run of a [`StreamProbe`], started by [`StreamProbe::start`].
///
/// Contract: call [`Attempt::advance`] once after starting, then each time the socket of
/// [`Attempt::waiting_on`] is ready (any `revents`, errors included) or the
/// [`Attempt::deadline`] has passed, until it returns `Poll::Ready`. `advance` never blocks.
#[derive(Debug)]
pub struct Attempt {
    deadline: Instant,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Failed before there was anything to wait for.
    Failed(ProbeError),
    /// TCP connect in progress.
    Connecting(OwnedFd),
    /// TCP connected; `sent` bytes of the send string written.
    Writing { stream: TcpStream, sent: usize },
    /// TCP connected, send string written; reading towards a verdict.
    Reading { stream: TcpStream, got: Vec<u8> },
    /// UDP datagram sent; waiting for one back.
    Udp(UdpSocket),
    /// Finished; the result has been returned.
    Done,
}

impl StreamProbe {
    /// Runs once within `timeout`, blocking.
    pub fn run(&self, timeout: Duration) -> Result<(), ProbeError> {
        let mut attempt = self.start(Instant::now(), timeout);
        let mut ready = false;
        loop {
            if let Poll::Ready(result) = attempt.advance(self, ready, Instant::now()) {
                return result;
            }
            let Some((fd, interest)) = attempt.waiting_on() else {
                continue;
            };
            let mut fds = [PollFd::new(fd, interest.poll_flags())];
            let left = attempt.deadline().saturating_duration_since(Instant::now());
            ready = match ppoll(&mut fds, Some(TimeSpec::from_duration(left)), None) {
                Ok(n) => n > 0,
                Err(Errno::EINTR) => false,
                Err(e) => {
                    return Err(ProbeError::Read {
                        addr: self.addr,
                        source: e.into(),
                    });
                }
            };
        }
    }

    /// Opens the socket and starts connecting (TCP) or sends the datagram (UDP); the attempt
    /// ends at `now + timeout`.
    pub fn start(&self, now: Instant, timeout: Duration) -> Attempt {
        let state = if self.udp {
            self.start_udp()
        } else {
            self.start_tcp()
        };
        Attempt {
            deadline: now + timeout,
            state: state.unwrap_or_else(State::Failed),
        }
    }

    fn start_tcp(&self) -> Result<State, ProbeError> {
        let addr = self.addr;
        let family = if addr.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let fd = socket(
            family,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| connect_error(addr, e.into()))?;
        let peer = SockaddrStorage::from(addr);
        match connect(fd.as_raw_fd(), &peer) {
            Ok(()) => return Ok(self.connected(TcpStream::from(fd))),
            Err(Errno::EINPROGRESS | Errno::EINTR) => {}
            Err(e) => return Err(connect_error(addr, e.into())),
        }
        // Over loopback or a veth pair the handshake has completed by the time connect(2)
        // returns EINPROGRESS; asking again saves a round through poll(2) and SO_ERROR.
        match connect(fd.as_raw_fd(), &peer) {
            Ok(()) | Err(Errno::EISCONN) => Ok(self.connected(TcpStream::from(fd))),
            Err(Errno::EALREADY | Errno::EINPROGRESS | Errno::EINTR) => Ok(State::Connecting(fd)),
            Err(e) => Err(connect_error(addr, e.into())),
        }
    }

    fn start_udp(&self) -> Result<State, ProbeError> {
        let addr = self.addr;
        let local: SocketAddr = if addr.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)
            .and_then(|s| s.connect(addr).map(|()| s))
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|source| ProbeError::Connect { addr, source })?;
        socket
            .send(self.send.as_deref().unwrap_or_default())
            .map_err(|source| ProbeError::Write { addr, source })?;
        Ok(State::Udp(socket))
    }

    /// The state after the TCP connection is up.
    fn connected(&self, stream: TcpStream) -> State {
        if self.send.is_some() {
            State::Writing { stream, sent: 0 }
        } else {
            self.reading(stream)
        }
    }

    /// The state after the send string (if any) is written: reading, or done when there is
    /// nothing to read for.
    fn reading(&self, stream: TcpStream) -> State {
        match &self.expect {
            Some(expect) => State::Reading {
                stream,
                got: Vec::with_capacity(expect.window().min(256)),
            },
            None => State::Done,
        }
    }
}

impl Attempt {
    /// When the attempt fails with a timeout.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The socket and readiness to wait for; `None` when [`Attempt::advance`] need not wait.
    pub fn waiting_on(&self) -> Option<(BorrowedFd<'_>, Interest)> {
        match &self.state {
            State::Connecting(fd) => Some((fd.as_fd(), Interest::Write)),
            State::Writing { stream, .. } => Some((stream.as_fd(), Interest::Write)),
            State::Reading { stream, .. } => Some((stream.as_fd(), Interest::Read)),
            State::Udp(socket) => Some((socket.as_fd(), Interest::Read)),
            State::Failed(_) | State::Done => None,
        }
    }

    /// Makes what progress the socket allows. `ready`: `poll(2)` reported the socket of
    /// [`Attempt::waiting_on`]. `probe` must be the one that started the attempt.
    pub fn advance(
        &mut self,
        probe: &StreamProbe,
        ready: bool,
        now: Instant,
    ) -> Poll<Result<(), ProbeError>> {
        let addr = probe.addr;
        let late = now >= self.deadline;
        loop {
            self.state = match std::mem::replace(&mut self.state, State::Done) {
                State::Failed(e) => return Poll::Ready(Err(e)),
                State::Done => return Poll::Ready(Ok(())),
                State::Connecting(fd) if !ready => {
                    if late {
                        return Poll::Ready(Err(ProbeError::ConnectTimeout { addr }));
                    }
                    self.state = State::Connecting(fd);
                    return Poll::Pending;
                }
                State::Connecting(fd) => match getsockopt(&fd, sockopt::SocketError) {
                    Ok(0) => probe.connected(TcpStream::from(fd)),
                    Ok(errno) => {
                        let source = std::io::Error::from_raw_os_error(errno);
                        return Poll::Ready(Err(connect_error(addr, source)));
                    }
                    Err(e) => return Poll::Ready(Err(connect_error(addr, e.into()))),
                },
                State::Writing { stream, sent } => {
                    let send = probe.send.as_deref().unwrap_or_default();
                    if sent == send.len() {
                        probe.reading(stream)
                    } else {
                        match (&stream).write(&send[sent..]) {
                            Ok(0) => {
                                let source = ErrorKind::WriteZero.into();
                                return Poll::Ready(Err(ProbeError::Write { addr, source }));
                            }
                            Ok(n) => State::Writing {
                                stream,
                                sent: sent + n,
                            },
                            Err(e) if e.kind() == ErrorKind::Interrupted => {
                                State::Writing { stream, sent }
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock && !late => {
                                self.state = State::Writing { stream, sent };
                                return Poll::Pending;
                            }
                            Err(e) => {
                                let source = if e.kind() == ErrorKind::WouldBlock {
                                    ErrorKind::TimedOut.into()
                                } else {
                                    e
                                };
                                return Poll::Ready(Err(ProbeError::Write { addr, source }));
                            }
                        }
                    }
                }
                State::Reading {
                    mut stream,
                    mut got,
                } => {
                    let expect = probe
                        .expect
                        .as_ref()
                        .expect("only a probe with an expect string reads");
                    match read_step(&mut stream, expect, &mut got, addr) {
                        Poll::Ready(result) => return Poll::Ready(result),
                        Poll::Pending if late => {
                            return Poll::Ready(Err(ProbeError::ReadTimeout {
                                addr,
                                got: got.len(),
                            }));
                        }
                        Poll::Pending => {
                            self.state = State::Reading { stream, got };
                            return Poll::Pending;
                        }
                    }
                }
                State::Udp(socket) => match udp_step(&socket, probe) {
                    Poll::Ready(result) => return Poll::Ready(result),
                    Poll::Pending if late => {
                        return Poll::Ready(Err(ProbeError::ReadTimeout { addr, got: 0 }));
                    }
                    Poll::Pending => {
                        self.state = State::Udp(socket);
                        return Poll::Pending;
                    }
                },
            };
        }
    }
}

/// Reads what is there until the expect string can be judged; `Pending` when the socket has
/// nothing more for now.
fn read_step(
    stream: &mut TcpStream,
    expect: &Expect,
    got: &mut Vec<u8>,
    addr: SocketAddr,
) -> Poll<Result<(), ProbeError>> {
    let mut chunk = [0u8; 256];
    loop {
        match expect.judge(got, false) {
            Verdict::Pass => return Poll::Ready(Ok(())),
            Verdict::Fail => return Poll::Ready(Err(mismatch(addr, got))),
            Verdict::More => {}
        }
        let want = expect
            .window()
            .saturating_sub(got.len())
            .clamp(1, chunk.len());
        match stream.read(&mut chunk[..want]) {
            Ok(0) => {
                return Poll::Ready(match expect.judge(got, true) {
                    Verdict::Pass => Ok(()),
                    _ if matches!(expect, Expect::Prefix(_)) => Err(ProbeError::TooShort {
                        addr,
                        got: lossy(got),
                    }),
                    _ => Err(mismatch(addr, got)),
                });
            }
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Poll::Pending,
            Err(source) => return Poll::Ready(Err(ProbeError::Read { addr, source })),
        }
    }
}

/// Takes the reply datagram if one is there.
fn udp_step(socket: &UdpSocket, probe: &StreamProbe) -> Poll<Result<(), ProbeError>> {
    let addr = probe.addr;
    let mut buf = [0u8; 1500];
    loop {
        match socket.recv(&mut buf) {
            Ok(n) => {
                let got = &buf[..n];
                return Poll::Ready(match &probe.expect {
                    None => Ok(()),
                    Some(e) if e.judge(got, true) == Verdict::Pass => Ok(()),
                    Some(_) => Err(mismatch(addr, got)),
                });
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Poll::Pending,
            Err(source) => return Poll::Ready(Err(ProbeError::Read { addr, source })),
        }
    }
}

fn connect_error(addr: SocketAddr, source: std::io::Error) -> ProbeError {
    if source.kind() == ErrorKind::TimedOut {
        ProbeError::ConnectTimeout { addr }
    } else {
        ProbeError::Connect { addr, source }
    }
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
