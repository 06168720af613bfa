//! What the user callback sees: a [`FrameBuf`] over a UMEM chunk (with room in front for
//! encapsulation), the [`Ingress`] it came from; it returns the engine's [`Verdict`]. These
//! are the same types the engine takes and returns, so an engine plugs in without mapping.
//!
//! What the data path does with each verdict: [`Verdict::Tx`] and [`Verdict::Reply`] —
//! transmit `frame()` on `ifindex` (the ingress interface reuses the chunk in place, another
//! interface gets a copy in its own UMEM); [`Verdict::Drop`] and [`Verdict::Stolen`] — free
//! the chunk (counted as `dropped` and `stolen`); [`Verdict::NotMine`] — "give it to the kernel": a frame
//! the XDP program redirected cannot go back into the kernel stack from an AF_XDP socket, so
//! it is counted (`passed`) and freed. The program only steers service and NAT-reply
//! traffic, so an engine should need it only for a packet of a deleted service that was
//! still in flight.

pub use crate::engine::Verdict;
pub use crate::frame::FrameBuf;

/// Where a received frame came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingress {
    /// Interface index (in the data path's network namespace).
    pub ifindex: u32,
    /// Receive queue.
    pub queue: u32,
}

/// The per-frame callback of the data path. Any `FnMut(Ingress, &mut FrameBuf) -> Verdict`
/// implements it.
pub trait FrameHandler {
    /// Decides what happens to one received frame; may rewrite it in place.
    fn handle(&mut self, ingress: Ingress, frame: &mut FrameBuf<'_>) -> Verdict;
}

impl<F: FnMut(Ingress, &mut FrameBuf<'_>) -> Verdict> FrameHandler for F {
    fn handle(&mut self, ingress: Ingress, frame: &mut FrameBuf<'_>) -> Verdict {
        self(ingress, frame)
    }
}
