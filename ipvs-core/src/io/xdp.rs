//! The AF_XDP data path: per (interface, queue) one AF_XDP socket with its own UMEM, driven by
//! one worker that calls [`Datapath::poll`] in a loop.
//!
//! Frame accounting per port (the invariant behind `sys::xsk`'s frame ownership): each UMEM
//! frame is in exactly one place: the kernel (fill ring, rx in flight, tx ring), or the
//! port's `free` list, or — for the duration of one callback — the [`FrameBuf`] handed to it.
//! At start every frame is free; the fill ring is topped up from `free` (at most `ring_size`
//! frames, so with `frame_count = 2 * ring_size` half the UMEM stays available for
//! transmission). A received frame goes back to `free` (drop, pass), onto the tx ring of the
//! same port (in place), or is copied into a free frame of another port. Completed tx frames
//! return to `free`.

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use crate::io::IoError;
use crate::io::bpf::{Steering, XdpAttachment, XdpMode, XdpModeChoice};
use crate::io::frame::{FrameBuf, FrameHandler, Ingress, Verdict};
use crate::io::sys::{net, xsk};

/// Which receive queues to serve.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Queues {
    /// Every rx queue the driver reports (ethtool channels), queue 0 if it reports none.
    #[default]
    All,
    /// These queues.
    List(Vec<u32>),
}

/// How to build a [`Datapath`].
#[derive(Debug, Clone)]
pub struct DatapathConfig {
    /// Interface names, in the calling thread's network namespace.
    pub interfaces: Vec<String>,
    /// Queues per interface.
    pub queues: Queues,
    /// UMEM frame size: 2048 (MTU ≤ 1500 + VLAN + one IP-in-IP header) or 4096.
    pub frame_size: u32,
    /// Size of each ring; the UMEM has `2 * ring_size` frames.
    pub ring_size: u32,
    /// Frames taken from an rx ring per port per round.
    pub batch: usize,
    /// XDP attach mode.
    pub mode: XdpModeChoice,
    /// Capacity of the `services` and `replies` maps.
    pub map_capacity: u32,
}

impl DatapathConfig {
    /// Defaults for `interfaces`: all queues, 2048-byte frames, 2048-entry rings, batches of
    /// 64, native mode with generic fallback, 65536 map entries.
    pub fn new<S: Into<String>>(interfaces: impl IntoIterator<Item = S>) -> DatapathConfig {
        DatapathConfig {
            interfaces: interfaces.into_iter().map(Into::into).collect(),
            queues: Queues::All,
            frame_size: 2048,
            ring_size: 2048,
            batch: 64,
            mode: XdpModeChoice::Auto,
            map_capacity: 65536,
        }
    }
}

/// Counters since the data path was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatapathStats {
    /// Frames received from AF_XDP sockets.
    pub rx: u64,
    /// Frames queued for transmission (forwarded and [`Datapath::send`]).
    pub tx: u64,
    /// Frames the callback dropped ([`Verdict::Drop`]).
    pub dropped: u64,
    /// Frames the callback kept the content of ([`Verdict::Stolen`]: a fragment held for
    /// reassembly, or a packet whose output went to the engine's outbox); freed.
    pub stolen: u64,
    /// Frames the callback wanted to pass to the kernel (dropped, see [`Verdict::NotMine`]).
    pub passed: u64,
    /// Transmissions lost: unknown egress interface, no free frame, full tx ring, frame too
    /// large for the egress UMEM.
    pub tx_failed: u64,
    /// Rx descriptors outside the UMEM (never expected; counted and skipped).
    pub bad_desc: u64,
}

/// One AF_XDP socket and the frames of its UMEM that userspace holds.
#[derive(Debug)]
struct Port {
    ifindex: u32,
    queue: u32,
    xsk: xsk::XskSocket,
    free: Vec<u64>,
    frame_size: u64,
    tx_queued: bool,
}

impl Port {
    fn base(&self, addr: u64) -> u64 {
        addr - addr % self.frame_size
    }

    fn reap_and_refill(&mut self) {
        while let Some(addr) = self.xsk.comp_pop() {
            self.free.push(self.base(addr));
        }
        self.xsk.comp_release();
        let room = self.xsk.fill_free(self.free.len() as u32);
        let mut pushed = false;
        for _ in 0..room {
            let Some(addr) = self.free.pop() else { break };
            if !self.xsk.fill_push(addr) {
                self.free.push(addr);
                break;
            }
            pushed = true;
        }
        if pushed {
            self.xsk.fill_submit();
        }
    }

    /// Copies `bytes` into a free frame (at the receive headroom) and queues it for tx.
    fn queue_copy(&mut self, bytes: &[u8], headroom: usize) -> bool {
        if headroom + bytes.len() > self.frame_size as usize || self.xsk.tx_free(1) == 0 {
            return false;
        }
        let Some(addr) = self.free.pop() else {
            return false;
        };
        let Some(chunk) = self.xsk.umem().frame_mut(addr) else {
            return false;
        };
        chunk[headroom..headroom + bytes.len()].copy_from_slice(bytes);
        if self.xsk.tx_push(addr + headroom as u64, bytes.len() as u32) {
            self.tx_queued = true;
            true
        } else {
            self.free.push(addr);
            false
        }
    }

    /// Publishes queued tx descriptors and kicks the kernel until it took them (bounded).
    fn flush_tx(&mut self) -> Result<(), IoError> {
        if !self.tx_queued {
            return Ok(());
        }
        self.tx_queued = false;
        self.xsk.tx_submit();
        // Copy mode transmits synchronously, up to 32 frames per sendto.
        for _ in 0..256 {
            self.xsk.kick_tx().map_err(|source| IoError::Sys {
                op: "sendto (AF_XDP tx kick)",
                source,
            })?;
            if self.xsk.tx_outstanding() == 0 {
                break;
            }
        }
        Ok(())
    }
}

/// Headroom left in front of frames that the data path writes itself.
const TX_HEADROOM: usize = 256;

/// The AF_XDP data path for a set of interfaces. Dropping it detaches the XDP programs
/// (closing their links), then closes the sockets and unmaps the UMEMs.
#[derive(Debug)]
pub struct Datapath {
    // Field order is drop order: detach first so nothing is redirected to a closing socket.
    attachments: Vec<XdpAttachment>,
    ports: Vec<Port>,
    steering: Steering,
    stats: DatapathStats,
    batch: usize,
    descs: Vec<(u64, u32)>,
    wake: Arc<OwnedFd>,
}

/// Wakes a [`Datapath::poll`] that is blocked in `poll(2)`, from any thread: the control
/// plane pushes a command onto its channel, then calls [`Waker::wake`], and the worker sees
/// the command at once instead of at its next timeout. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Waker(Arc<OwnedFd>);

impl Waker {
    /// A waker of its own, not tied to a [`Datapath`]: for a loop that waits on
    /// [`Waker::as_fd`] with `poll(2)` itself (a benchmark, a test harness) and calls
    /// [`Waker::drain`] once woken.
    pub fn new() -> std::io::Result<Waker> {
        Ok(Waker(Arc::new(net::eventfd()?)))
    }

    /// Makes the current or next [`Datapath::poll`] return without waiting.
    pub fn wake(&self) {
        net::eventfd_signal(self.0.as_fd());
    }

    /// Forgets the wake-ups so far: the descriptor is not readable until the next
    /// [`Waker::wake`]. Never blocks. ([`Datapath::poll`] does this itself.)
    pub fn drain(&self) {
        net::eventfd_drain(self.0.as_fd());
    }
}

/// The eventfd, readable while a wake-up is pending.
impl AsFd for Waker {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Datapath {
    /// Creates the maps, attaches one program per interface, and binds one AF_XDP socket
    /// (copy mode) per (interface, queue). Everything lives in the calling thread's network
    /// namespace.
    pub fn new(cfg: &DatapathConfig) -> Result<Datapath, IoError> {
        if cfg.interfaces.is_empty() {
            return Err(IoError::Config("no interface given".into()));
        }
        if !matches!(cfg.frame_size, 2048 | 4096) || !cfg.ring_size.is_power_of_two() {
            return Err(IoError::Config(
                "frame size must be 2048 or 4096 and ring size a power of two".into(),
            ));
        }
        let steering = Steering::new(cfg.map_capacity)?;
        let mut attachments = Vec::new();
        let mut ports = Vec::new();
        for ifname in &cfg.interfaces {
            let ifindex = net::ifindex(ifname).ok_or_else(|| IoError::NoSuchInterface {
                ifname: ifname.clone(),
            })?;
            let queues = match &cfg.queues {
                Queues::List(q) => q.clone(),
                Queues::All => (0..net::rx_queue_count(ifname).unwrap_or(1)).collect(),
            };
            let max_queue = queues.iter().copied().max().unwrap_or(0);
            let att = XdpAttachment::attach(&steering, ifname, ifindex, max_queue + 1, cfg.mode)?;
            for &queue in &queues {
                let params = xsk::XskParams {
                    ifindex,
                    queue,
                    frame_size: cfg.frame_size,
                    frame_count: cfg.ring_size * 2,
                    ring_size: cfg.ring_size,
                    bind_flags: xsk::XDP_COPY | xsk::XDP_USE_NEED_WAKEUP,
                };
                let sock = xsk::XskSocket::new(&params).map_err(|source| IoError::Xsk {
                    ifname: ifname.clone(),
                    queue,
                    source,
                })?;
                att.register_socket(queue, sock.fd())?;
                let fs = u64::from(cfg.frame_size);
                let mut port = Port {
                    ifindex,
                    queue,
                    xsk: sock,
                    free: (0..u64::from(params.frame_count))
                        .rev()
                        .map(|i| i * fs)
                        .collect(),
                    frame_size: fs,
                    tx_queued: false,
                };
                port.reap_and_refill();
                ports.push(port);
            }
            attachments.push(att);
        }
        Ok(Datapath {
            attachments,
            ports,
            steering,
            stats: DatapathStats::default(),
            batch: cfg.batch.max(1),
            descs: Vec::with_capacity(cfg.batch.max(1)),
            wake: Arc::new(net::eventfd().map_err(|source| IoError::Sys {
                op: "eventfd",
                source,
            })?),
        })
    }

    /// A handle that interrupts this data path's `poll(2)` from another thread.
    pub fn waker(&self) -> Waker {
        Waker(Arc::clone(&self.wake))
    }

    /// The steering maps; clone it to add or remove entries from another thread.
    pub fn steering(&self) -> &Steering {
        &self.steering
    }

    /// Shorthand for [`Steering::add_service`].
    pub fn add_service(
        &self,
        vip: Ipv4Addr,
        port: u16,
        proto: crate::types::Protocol,
    ) -> Result<(), IoError> {
        self.steering.add_service(vip, port, proto)
    }

    /// `(interface name, mode)` of every attachment.
    pub fn modes(&self) -> Vec<(String, XdpMode)> {
        self.attachments
            .iter()
            .map(|a| (a.ifname().to_owned(), a.mode()))
            .collect()
    }

    /// Counters.
    pub fn stats(&self) -> DatapathStats {
        self.stats
    }

    /// Kernel-side AF_XDP counters, summed over the sockets: `(rx_dropped, rx_ring_full,
    /// rx_fill_ring_empty)`.
    pub fn kernel_drops(&self) -> Result<(u64, u64, u64), IoError> {
        let mut sum = (0, 0, 0);
        for p in &self.ports {
            let s = p.xsk.statistics().map_err(|source| IoError::Sys {
                op: "getsockopt(XDP_STATISTICS)",
                source,
            })?;
            sum.0 += s.rx_dropped;
            sum.1 += s.rx_ring_full;
            sum.2 += s.rx_fill_ring_empty_descs;
        }
        Ok(sum)
    }

    /// Queues `frame` (a complete Ethernet frame) for transmission on `ifindex`: for packets
    /// the engine originates (ICMP errors, ARP). It leaves at the next [`Datapath::poll`] or
    /// [`Datapath::flush`]. False if it could not be queued (counted in `tx_failed`).
    pub fn send(&mut self, ifindex: u32, frame: &[u8]) -> bool {
        let Some(p) = self.ports.iter_mut().find(|p| p.ifindex == ifindex) else {
            self.stats.tx_failed += 1;
            return false;
        };
        if p.free.is_empty() || p.xsk.tx_free(1) == 0 {
            p.reap_and_refill();
        }
        let ok = p.queue_copy(frame, TX_HEADROOM);
        if ok {
            self.stats.tx += 1;
        } else {
            self.stats.tx_failed += 1;
        }
        ok
    }

    /// Hands queued transmissions to the kernel and reaps completions.
    pub fn flush(&mut self) -> Result<(), IoError> {
        for p in &mut self.ports {
            p.flush_tx()?;
            p.reap_and_refill();
        }
        Ok(())
    }

    /// One round of the worker loop: handles what is ready; if nothing is, blocks in poll(2)
    /// for at most `timeout` (`None`: until a frame arrives) and handles what arrived.
    /// Returns the number of frames handed to `handler`. A [`Waker::wake`] from another
    /// thread ends the wait early (the wake-up is consumed here).
    ///
    /// The engine loop around it: `timeout = engine.poll_timeout() - now`, then
    /// `datapath.poll(timeout, |ingress, frame| engine.handle(now, ingress, frame))`, then
    /// `engine.handle_timeout(now)` when the deadline passed.
    pub fn poll<H: FrameHandler>(
        &mut self,
        timeout: Option<Duration>,
        handler: &mut H,
    ) -> Result<usize, IoError> {
        let n = self.process(handler)?;
        if n > 0 || timeout == Some(Duration::ZERO) {
            return Ok(n);
        }
        let mut fds: Vec<BorrowedFd<'_>> = self.ports.iter().map(|p| p.xsk.fd()).collect();
        fds.push(self.wake.as_fd());
        let ready = net::poll_readable(&fds, timeout)
            .map_err(|source| IoError::Sys { op: "poll", source })?;
        if ready.last().copied().unwrap_or(false) {
            net::eventfd_drain(self.wake.as_fd());
        }
        self.process(handler)
    }

    fn process<H: FrameHandler>(&mut self, handler: &mut H) -> Result<usize, IoError> {
        let mut total = 0;
        for i in 0..self.ports.len() {
            self.ports[i].reap_and_refill();
            self.descs.clear();
            {
                let p = &mut self.ports[i];
                while self.descs.len() < self.batch {
                    let Some(d) = p.xsk.rx_pop() else { break };
                    self.descs.push((d.addr, d.len));
                }
                p.xsk.rx_release();
            }
            total += self.descs.len();
            self.stats.rx += self.descs.len() as u64;
            for k in 0..self.descs.len() {
                let (addr, len) = self.descs[k];
                self.one_frame(i, addr, len, handler);
            }
            if !self.descs.is_empty() {
                // Dropped frames go straight back to the kernel: keeps the fill ring full
                // under load (an empty fill ring is where AF_XDP drops).
                self.ports[i].reap_and_refill();
            }
        }
        for p in &mut self.ports {
            p.flush_tx()?;
        }
        Ok(total)
    }

    fn one_frame<H: FrameHandler>(&mut self, i: usize, addr: u64, len: u32, handler: &mut H) {
        let p = &mut self.ports[i];
        let base = p.base(addr);
        let ingress = Ingress {
            ifindex: p.ifindex,
            queue: p.queue,
        };
        let Some(chunk) = p.xsk.umem().frame_mut(addr) else {
            self.stats.bad_desc += 1;
            return;
        };
        let Ok(mut frame) = FrameBuf::new(chunk, (addr - base) as usize, len as usize) else {
            self.stats.bad_desc += 1;
            p.free.push(base);
            return;
        };
        let verdict = handler.handle(ingress, &mut frame);
        let (start, flen) = (frame.start(), frame.len());
        match verdict {
            Verdict::Drop(_) => {
                self.stats.dropped += 1;
                p.free.push(base);
            }
            Verdict::Stolen => {
                self.stats.stolen += 1;
                p.free.push(base);
            }
            Verdict::NotMine => {
                self.stats.passed += 1;
                p.free.push(base);
            }
            Verdict::Tx { ifindex } | Verdict::Reply { ifindex } if ifindex == p.ifindex => {
                if flen > 0 && p.xsk.tx_push(base + start as u64, flen as u32) {
                    p.tx_queued = true;
                    self.stats.tx += 1;
                } else {
                    self.stats.tx_failed += 1;
                    p.free.push(base);
                }
            }
            Verdict::Tx { ifindex } | Verdict::Reply { ifindex } => {
                let queue = p.queue;
                let j = self
                    .ports
                    .iter()
                    .position(|q| q.ifindex == ifindex && q.queue == queue)
                    .or_else(|| self.ports.iter().position(|q| q.ifindex == ifindex));
                let ok = match j {
                    Some(j) => {
                        let (src, dst) = two_mut(&mut self.ports, i, j);
                        let ok = match src.xsk.umem().frame_mut(base) {
                            Some(chunk) if flen > 0 => {
                                dst.queue_copy(&chunk[start..start + flen], start.min(TX_HEADROOM))
                            }
                            _ => false,
                        };
                        src.free.push(base);
                        ok
                    }
                    None => {
                        self.ports[i].free.push(base);
                        false
                    }
                };
                if ok {
                    self.stats.tx += 1;
                } else {
                    self.stats.tx_failed += 1;
                }
            }
        }
    }
}

/// Two distinct elements of a slice, mutably.
fn two_mut<T>(v: &mut [T], i: usize, j: usize) -> (&mut T, &mut T) {
    debug_assert_ne!(i, j);
    if i < j {
        let (a, b) = v.split_at_mut(j);
        (&mut a[i], &mut b[0])
    } else {
        let (a, b) = v.split_at_mut(i);
        (&mut b[0], &mut a[j])
    }
}
