//! AF_XDP: the UMEM area, the socket and its four single-producer/single-consumer rings.
//!
//! Ring protocol (kernel `Documentation/networking/af_xdp.rst`): each ring has a producer and a
//! consumer index shared with the kernel. The side that produces writes descriptors, then
//! publishes the new producer index with a *release* store; the consuming side reads the
//! producer index with an *acquire* load before reading descriptors, and publishes its consumer
//! index with a release store after it is done with them. Slots between the consumer and the
//! producer index belong to the consumer, the others to the producer.
//!
//! Frame ownership (the invariant that makes [`UmemArea::frame_mut`] sound): a UMEM frame is
//! owned by the kernel from the moment its address is published on the fill or the tx ring
//! until it comes back on the rx or the completion ring. The caller (`io::xdp`) only touches
//! frames it owns; the kernel never writes a frame it does not own.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::cvt_int;

pub use libc::xdp_desc as XdpDesc;
pub use libc::xdp_statistics as XdpStatistics;

/// `XDP_COPY` bind flag.
pub const XDP_COPY: u16 = 1 << 1;
/// `XDP_USE_NEED_WAKEUP` bind flag.
pub const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;

/// An anonymous, page-aligned, populated memory mapping (UMEM or a ring).
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn anonymous(len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh anonymous private mapping: no file, no existing memory is touched;
        // the result is checked against MAP_FAILED below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        Self::from_raw(ptr, len)
    }

    fn ring(fd: BorrowedFd<'_>, len: usize, pgoff: u64) -> io::Result<Mapping> {
        // SAFETY: maps the kernel-owned ring of socket `fd` at its documented page offset;
        // a new mapping, so no existing Rust memory is aliased; checked for MAP_FAILED below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                pgoff as libc::off_t,
            )
        };
        Self::from_raw(ptr, len)
    }

    fn from_raw(ptr: *mut libc::c_void, len: usize) -> io::Result<Mapping> {
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(ptr.cast::<u8>())
            .map(|ptr| Mapping { ptr, len })
            .ok_or_else(|| io::Error::other("mmap returned NULL"))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly one mapping created by `Mapping::{anonymous,ring}`
        // and owned by `self`; no reference into it outlives `self` (borrows of frames and
        // ring slots are tied to `&self`/`&mut self`).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

// SAFETY: a `Mapping` is plain memory exclusively owned by its holder; moving it to another
// thread moves that ownership (the kernel side does not care which thread touches it).
unsafe impl Send for Mapping {}

/// The packet buffer shared with the kernel, split into `frame_count` frames of `frame_size`.
#[derive(Debug)]
pub struct UmemArea {
    map: Mapping,
    frame_size: usize,
}

impl UmemArea {
    /// Maps `frame_count * frame_size` bytes.
    pub fn new(frame_size: usize, frame_count: usize) -> io::Result<UmemArea> {
        let len = frame_size
            .checked_mul(frame_count)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "UMEM size overflows"))?;
        Ok(UmemArea {
            map: Mapping::anonymous(len)?,
            frame_size,
        })
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.map.len
    }

    /// The whole frame (chunk) that contains UMEM address `addr`, or `None` if out of range.
    /// The caller must own that frame (see the module doc); `io::xdp` keeps that accounting.
    pub fn frame_mut(&mut self, addr: u64) -> Option<&mut [u8]> {
        let base = (addr as usize / self.frame_size) * self.frame_size;
        if base + self.frame_size > self.map.len {
            return None;
        }
        // SAFETY: `base..base+frame_size` lies inside the mapping (checked above), the mapping
        // lives as long as `self`, and `&mut self` guarantees no other Rust reference into the
        // area exists. The kernel does not write this frame while userspace owns it (frame
        // ownership invariant in the module doc).
        Some(unsafe {
            std::slice::from_raw_parts_mut(self.map.ptr.as_ptr().add(base), self.frame_size)
        })
    }

    fn addr(&self) -> u64 {
        self.map.ptr.as_ptr() as u64
    }
}

/// One mmapped ring of `T` (`u64` addresses for fill/completion, [`XdpDesc`] for rx/tx).
#[derive(Debug)]
struct Ring<T> {
    // Owns the memory the pointers below point into; unmapped on drop.
    _map: Mapping,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    descs: NonNull<T>,
    mask: u32,
    size: u32,
    cached_prod: u32,
    cached_cons: u32,
}

// SAFETY: the ring's memory is owned by this value (its mapping) and the kernel; the pointers
// are derived from that mapping, so moving the value to another thread is moving ownership.
unsafe impl<T: Send> Send for Ring<T> {}

impl<T: Copy> Ring<T> {
    fn map(
        fd: BorrowedFd<'_>,
        off: &libc::xdp_ring_offset,
        size: u32,
        pgoff: u64,
    ) -> io::Result<Ring<T>> {
        let len = off.desc as usize + size as usize * size_of::<T>();
        let map = Mapping::ring(fd, len, pgoff)?;
        let at = |o: u64| -> io::Result<NonNull<u8>> {
            if o as usize + 4 > len {
                return Err(io::Error::other("ring offset outside its mapping"));
            }
            // SAFETY: `o + 4 <= len` (checked), so the result points inside the mapping.
            Ok(unsafe { map.ptr.add(o as usize) })
        };
        let producer = at(off.producer)?.cast();
        let consumer = at(off.consumer)?.cast();
        let descs = at(off.desc)?.cast();
        let mut ring = Ring {
            _map: map,
            producer,
            consumer,
            descs,
            mask: size - 1,
            size,
            cached_prod: 0,
            cached_cons: 0,
        };
        ring.cached_prod = ring.prod().load(Ordering::Acquire);
        ring.cached_cons = ring.cons().load(Ordering::Acquire);
        Ok(ring)
    }

    fn prod(&self) -> &AtomicU32 {
        // SAFETY: points into `self.map` (checked in `map`), 4-aligned by the kernel's layout,
        // only ever accessed atomically by both sides, and lives as long as `self`.
        unsafe { self.producer.as_ref() }
    }

    fn cons(&self) -> &AtomicU32 {
        // SAFETY: as in `prod`.
        unsafe { self.consumer.as_ref() }
    }

    fn slot(&self, idx: u32) -> *mut T {
        // SAFETY: `idx & mask < size`, and the mapping holds `size` descriptors after
        // `off.desc` (its length was computed that way in `map`).
        unsafe { self.descs.as_ptr().add((idx & self.mask) as usize) }
    }

    // Producer side (fill, tx).

    /// Free slots, refreshing the consumer index only when the cached view is short of `want`.
    fn prod_free(&mut self, want: u32) -> u32 {
        let free = self.size - self.cached_prod.wrapping_sub(self.cached_cons);
        if free >= want {
            return free;
        }
        self.cached_cons = self.cons().load(Ordering::Acquire);
        self.size - self.cached_prod.wrapping_sub(self.cached_cons)
    }

    fn push(&mut self, item: T) -> bool {
        if self.prod_free(1) == 0 {
            return false;
        }
        // SAFETY: the slot at `cached_prod` is free (between the consumer index, read with
        // acquire, and producer + size), so the kernel does not read it until we publish it.
        unsafe { self.slot(self.cached_prod).write_volatile(item) };
        self.cached_prod = self.cached_prod.wrapping_add(1);
        true
    }

    fn submit(&mut self) {
        self.prod().store(self.cached_prod, Ordering::Release);
    }

    /// Entries the kernel has not consumed yet (producer side).
    fn outstanding(&mut self) -> u32 {
        self.cached_cons = self.cons().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }

    // Consumer side (rx, completion).

    fn cons_avail(&mut self) -> u32 {
        if self.cached_prod == self.cached_cons {
            self.cached_prod = self.prod().load(Ordering::Acquire);
        }
        self.cached_prod.wrapping_sub(self.cached_cons)
    }

    fn pop(&mut self) -> Option<T> {
        if self.cons_avail() == 0 {
            return None;
        }
        // SAFETY: the slot at `cached_cons` lies before the producer index (read with
        // acquire), so the kernel has finished writing it and will not reuse it until we
        // publish a consumer index past it.
        let item = unsafe { self.slot(self.cached_cons).read_volatile() };
        self.cached_cons = self.cached_cons.wrapping_add(1);
        Some(item)
    }

    fn release(&mut self) {
        self.cons().store(self.cached_cons, Ordering::Release);
    }
}

/// Sizes and binding of one AF_XDP socket.
#[derive(Debug, Clone, Copy)]
pub struct XskParams {
    /// Interface index to bind to.
    pub ifindex: u32,
    /// Rx queue to bind to.
    pub queue: u32,
    /// Frame (chunk) size: 2048 or 4096.
    pub frame_size: u32,
    /// Frames in the UMEM.
    pub frame_count: u32,
    /// Size of each of the four rings (a power of two).
    pub ring_size: u32,
    /// Bind flags (`XDP_COPY`, `XDP_USE_NEED_WAKEUP`).
    pub bind_flags: u16,
}

/// An AF_XDP socket bound to one (interface, queue), with its own UMEM and rings.
#[derive(Debug)]
pub struct XskSocket {
    // Field order is drop order: rings and UMEM are unmapped before the socket is closed
    // (either order is fine for the kernel; this one never leaves a dangling view).
    fill: Ring<u64>,
    comp: Ring<u64>,
    rx: Ring<XdpDesc>,
    tx: Ring<XdpDesc>,
    umem: UmemArea,
    fd: OwnedFd,
}

fn setsockopt<T>(fd: BorrowedFd<'_>, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` is a live value of the exact type the option expects (callers pair them)
    // and the length passed is its size.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    cvt_int(ret).map(drop)
}

fn getsockopt<T>(fd: BorrowedFd<'_>, name: libc::c_int, mut val: T) -> io::Result<T> {
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `val` is a writable `T` and `len` its size; the kernel writes at most `len`.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            name,
            (&mut val as *mut T).cast(),
            &mut len,
        )
    };
    cvt_int(ret)?;
    if len as usize != size_of::<T>() {
        return Err(io::Error::other(
            "AF_XDP socket option of an unexpected size (old kernel?)",
        ));
    }
    Ok(val)
}

fn zero_ring_offset() -> libc::xdp_ring_offset {
    libc::xdp_ring_offset {
        producer: 0,
        consumer: 0,
        desc: 0,
        flags: 0,
    }
}

impl XskSocket {
    /// socket(AF_XDP) + UMEM registration + rings + bind, in that order.
    pub fn new(p: &XskParams) -> io::Result<XskSocket> {
        if !p.ring_size.is_power_of_two() || !p.frame_size.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "ring and frame sizes must be powers of two",
            ));
        }
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        cvt_int(raw)?;
        // SAFETY: `raw` is a fresh, valid fd that nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let umem = UmemArea::new(p.frame_size as usize, p.frame_count as usize)?;
        let reg = libc::xdp_umem_reg {
            addr: umem.addr(),
            len: umem.len() as u64,
            chunk_size: p.frame_size,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        // The UMEM mapping outlives the registration: it is dropped together with the socket.
        setsockopt(fd.as_fd(), libc::XDP_UMEM_REG, &reg)?;
        for opt in [
            libc::XDP_UMEM_FILL_RING,
            libc::XDP_UMEM_COMPLETION_RING,
            libc::XDP_RX_RING,
            libc::XDP_TX_RING,
        ] {
            setsockopt(fd.as_fd(), opt, &p.ring_size)?;
        }
        let zero = libc::xdp_mmap_offsets {
            rx: zero_ring_offset(),
            tx: zero_ring_offset(),
            fr: zero_ring_offset(),
            cr: zero_ring_offset(),
        };
        let off = getsockopt(fd.as_fd(), libc::XDP_MMAP_OFFSETS, zero)?;
        let fill = Ring::map(
            fd.as_fd(),
            &off.fr,
            p.ring_size,
            libc::XDP_UMEM_PGOFF_FILL_RING,
        )?;
        let comp = Ring::map(
            fd.as_fd(),
            &off.cr,
            p.ring_size,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
        )?;
        let rx = Ring::map(
            fd.as_fd(),
            &off.rx,
            p.ring_size,
            libc::XDP_PGOFF_RX_RING as u64,
        )?;
        let tx = Ring::map(
            fd.as_fd(),
            &off.tx,
            p.ring_size,
            libc::XDP_PGOFF_TX_RING as u64,
        )?;
        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: p.bind_flags,
            sxdp_ifindex: p.ifindex,
            sxdp_queue_id: p.queue,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: `sa` is a valid `sockaddr_xdp` and the length is its size.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_xdp).cast(),
                size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        cvt_int(ret)?;
        Ok(XskSocket {
            fill,
            comp,
            rx,
            tx,
            umem,
            fd,
        })
    }

    /// The socket fd (for the XSKMAP and for poll).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The UMEM.
    pub fn umem(&mut self) -> &mut UmemArea {
        &mut self.umem
    }

    /// Free fill-ring slots.
    pub fn fill_free(&mut self, want: u32) -> u32 {
        self.fill.prod_free(want)
    }

    /// Queues a frame address on the fill ring (not visible to the kernel before
    /// [`XskSocket::fill_submit`]); false if the ring is full.
    pub fn fill_push(&mut self, addr: u64) -> bool {
        self.fill.push(addr)
    }

    /// Publishes queued fill entries.
    pub fn fill_submit(&mut self) {
        self.fill.submit();
    }

    /// Next received descriptor, if any (released to the kernel by [`XskSocket::rx_release`]).
    pub fn rx_pop(&mut self) -> Option<XdpDesc> {
        self.rx.pop()
    }

    /// Publishes the rx consumer index.
    pub fn rx_release(&mut self) {
        self.rx.release();
    }

    /// Queues a tx descriptor; false if the ring is full.
    pub fn tx_push(&mut self, addr: u64, len: u32) -> bool {
        self.tx.push(XdpDesc {
            addr,
            len,
            options: 0,
        })
    }

    /// Publishes queued tx descriptors.
    pub fn tx_submit(&mut self) {
        self.tx.submit();
    }

    /// Free tx-ring slots.
    pub fn tx_free(&mut self, want: u32) -> u32 {
        self.tx.prod_free(want)
    }

    /// Tx descriptors the kernel has not picked up yet.
    pub fn tx_outstanding(&mut self) -> u32 {
        self.tx.outstanding()
    }

    /// Next completed tx frame address.
    pub fn comp_pop(&mut self) -> Option<u64> {
        self.comp.pop()
    }

    /// Publishes the completion consumer index.
    pub fn comp_release(&mut self) {
        self.comp.release();
    }

    /// `sendto(MSG_DONTWAIT)`: makes the kernel transmit queued tx descriptors (copy mode
    /// transmits synchronously, a batch per call). Transient errors are `Ok(false)`.
    pub fn kick_tx(&self) -> io::Result<bool> {
        // SAFETY: a zero-length sendto with no buffer and no address on our own socket.
        let ret = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if ret >= 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN) => Ok(false),
            _ => Err(err),
        }
    }

    /// `XDP_STATISTICS`.
    pub fn statistics(&self) -> io::Result<XdpStatistics> {
        let zero = XdpStatistics {
            rx_dropped: 0,
            rx_invalid_descs: 0,
            tx_invalid_descs: 0,
            rx_ring_full: 0,
            rx_fill_ring_empty_descs: 0,
            tx_ring_empty_descs: 0,
        };
        getsockopt(self.fd.as_fd(), libc::XDP_STATISTICS, zero)
    }
}
