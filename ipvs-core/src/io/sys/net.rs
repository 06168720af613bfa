//! Small networking syscalls: interface index, poll(2), setns(2), effective uid, and a raw
//! AF_PACKET socket (used by the lab tests to inject and capture frames).

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;
#[cfg(any(test, feature = "testing"))]
use std::{fs::File, path::Path};

use super::cvt_int;

/// `if_nametoindex(3)`; `None` when no interface of that name exists in this thread's netns.
pub fn ifindex(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string that lives across the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (idx != 0).then_some(idx)
}

#[cfg(any(test, feature = "testing"))]
/// `if_indextoname(3)`.
pub fn ifname(index: u32) -> Option<String> {
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: `buf` has IF_NAMESIZE bytes, the size if_indextoname writes at most.
    let ret = unsafe { libc::if_indextoname(index, buf.as_mut_ptr().cast()) };
    if ret.is_null() {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

#[cfg(any(test, feature = "testing"))]
/// The effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(any(test, feature = "testing"))]
/// Moves the *calling thread* into the network namespace at `path` (e.g.
/// `/run/netns/NAME`). Sockets, BPF links and ifindex look-ups made afterwards by this thread
/// belong to that namespace. Use a dedicated thread: there is no way back other than another
/// `setns` to a saved handle.
pub fn enter_netns(path: &Path) -> io::Result<()> {
    let f = File::open(path)?;
    // SAFETY: `f` is an open namespace file; setns only changes this thread's namespace.
    let ret = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    cvt_int(ret).map(drop)
}

/// Puts the calling process (every thread created afterwards too) under the real-time
/// round-robin policy (`SCHED_RR`) at `priority` (1..=99), as keepalived's
/// `vrrp_rt_priority` does for VRRP: a heartbeat loop that sleeps in poll(2) almost always
/// is then never delayed by busy normal-priority work such as forwarding. Children forked
/// afterwards (lvsd, `active_cmd`) start with the normal policy (`SCHED_RESET_ON_FORK`).
/// EPERM without `CAP_SYS_NICE`; EINVAL for a priority out of range.
pub fn set_realtime(priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a live sched_param the kernel only reads; pid 0 is this process.
    let ret = unsafe {
        libc::sched_setscheduler(
            0,
            libc::SCHED_RR | libc::SCHED_RESET_ON_FORK,
            &raw const param,
        )
    };
    cvt_int(ret).map(drop)
}

/// A non-blocking eventfd(2): a counter another thread bumps to wake a `poll(2)`.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd(2) takes no pointers; a non-negative return is a new descriptor that
    // nothing else owns, so wrapping it in an OwnedFd is sound.
    let fd = cvt_int(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    // SAFETY: `fd` was just returned by eventfd(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds one to the eventfd's counter (wakes its poller). Never blocks; a full counter
/// (2^64 - 2 pending wake-ups) already means "wake up", so EAGAIN is ignored.
pub fn eventfd_signal(fd: BorrowedFd<'_>) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to an eventfd, as eventfd(2) requires.
    let _ = unsafe { libc::write(fd.as_raw_fd(), (&raw const one).cast(), size_of::<u64>()) };
}

/// Resets the eventfd's counter to zero. Never blocks (the fd is non-blocking).
pub fn eventfd_drain(fd: BorrowedFd<'_>) {
    let mut v: u64 = 0;
    // SAFETY: reads at most 8 bytes into a live u64, as eventfd(2) requires.
    let _ = unsafe { libc::read(fd.as_raw_fd(), (&raw mut v).cast(), size_of::<u64>()) };
}

/// poll(2) for readability on `fds`; returns which of them are readable (POLLIN or an error
/// condition). `None` timeout blocks indefinitely. EINTR is reported as "nothing ready".
pub fn poll_readable(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = match timeout {
        None => -1,
        // Round up so that a 100 µs deadline does not turn into a busy loop of 0 ms polls.
        Some(d) => d.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int,
    };
    // SAFETY: `pfds` is a live array of `pfds.len()` pollfd structs.
    let ret = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if ret < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EINTR) {
            return Ok(vec![false; fds.len()]);
        }
        return Err(err);
    }
    Ok(pfds.iter().map(|p| p.revents != 0).collect())
}

/// A raw AF_PACKET socket bound to one interface: all protocols ([`PacketSocket::bind`], for
/// capture and injection) or none ([`PacketSocket::sender`], for sending only).
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();

impl PacketSocket {
    /// socket(AF_PACKET, SOCK_RAW) bound to `ifindex`, receiving every protocol.
    pub fn bind(ifindex: u32) -> io::Result<PacketSocket> {
        Self::open(ifindex, ETH_P_ALL_BE)
    }

    /// socket(AF_PACKET, SOCK_RAW) bound to `ifindex` with protocol 0: it sends complete
    /// Ethernet frames and receives nothing, so no traffic queues up on it.
    pub fn sender(ifindex: u32) -> io::Result<PacketSocket> {
        Self::open(ifindex, 0)
    }

    /// `protocol_be`: an ethertype in network byte order, or 0 for "receive nothing".
    fn open(ifindex: u32, protocol_be: u16) -> io::Result<PacketSocket> {
        // SAFETY: plain socket(2) call; checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::c_int::from(protocol_be),
            )
        };
        cvt_int(raw)?;
        // SAFETY: `raw` is a fresh valid fd owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sll = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: protocol_be,
            sll_ifindex: ifindex as libc::c_int,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        // SAFETY: `sll` is a valid sockaddr_ll and the length is its size.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        cvt_int(ret)?;
        Ok(PacketSocket { fd })
    }

    /// Sends one complete Ethernet frame.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: `frame` is a live buffer of `frame.len()` bytes.
        let ret = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receives one frame into `buf`, waiting at most `timeout`; `Ok(None)` on timeout.
    /// Frames the socket itself sent (PACKET_OUTGOING) are skipped.
    pub fn recv(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        let ready = poll_readable(&[self.fd.as_fd()], Some(timeout))?;
        if !ready.first().copied().unwrap_or(false) {
            return Ok(None);
        }
        let mut sll = libc::sockaddr_ll {
            sll_family: 0,
            sll_protocol: 0,
            sll_ifindex: 0,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `buf` is writable for `buf.len()` bytes, `sll`/`len` describe a writable
        // sockaddr_ll; MSG_DONTWAIT keeps the call from blocking.
        let ret = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
                (&mut sll as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EAGAIN) {
                return Ok(None);
            }
            return Err(err);
        }
        if sll.sll_pkttype == libc::PACKET_OUTGOING {
            return Ok(Some(0));
        }
        Ok(Some(ret as usize))
    }

    /// The socket fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[repr(C)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

#[repr(C)]
struct IfReqData {
    name: [libc::c_char; libc::IF_NAMESIZE],
    data: *mut libc::c_void,
    // `struct ifreq` is 40 bytes on 64-bit targets; the union tail is unused here.
    _pad: [u8; 16],
}

const ETHTOOL_GCHANNELS: u32 = 0x3c;
const SIOCETHTOOL: libc::Ioctl = 0x8946;

/// Number of receive queues of `ifname` (ethtool `ETHTOOL_GCHANNELS`: the larger of the rx
/// and combined counts), or `None` when the driver does not say.
pub fn rx_queue_count(ifname: &str) -> Option<u32> {
    let name = ifname.as_bytes();
    if name.len() >= libc::IF_NAMESIZE {
        return None;
    }
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        max_rx: 0,
        max_tx: 0,
        max_other: 0,
        max_combined: 0,
        rx_count: 0,
        tx_count: 0,
        other_count: 0,
        combined_count: 0,
    };
    let mut req = IfReqData {
        name: [0; libc::IF_NAMESIZE],
        data: (&mut ch as *mut EthtoolChannels).cast(),
        _pad: [0; 16],
    };
    for (d, &s) in req.name.iter_mut().zip(name) {
        *d = s as libc::c_char;
    }
    // SAFETY: plain socket(2); checked below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return None;
    }
    // SAFETY: `raw` is a fresh valid fd owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: `req` is an ifreq-layout struct with a NUL-terminated name whose data pointer
    // refers to `ch`, an ethtool_channels that outlives the call; the kernel writes only `ch`.
    let ret = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL, &mut req as *mut IfReqData) };
    if ret < 0 {
        return None;
    }
    let n = ch.rx_count.max(ch.combined_count);
    (n > 0).then_some(n)
}
