//! What the user callback sees: a [`Frame`] (a mutable window into a UMEM chunk, with room
//! in front for encapsulation), the [`Ingress`] it came from, and the [`Verdict`] it returns.

use thiserror::Error;

/// Where a received frame came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingress {
    /// Interface index (in the data path's network namespace).
    pub ifindex: u32,
    /// Receive queue.
    pub queue: u32,
}

/// What to do with a frame after the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Free the frame.
    Drop,
    /// Transmit the frame (as it now is) on interface `ifindex`. The ingress interface reuses
    /// the frame in place; another interface gets a copy in its own UMEM.
    Transmit {
        /// Egress interface index; must be one of the data path's interfaces.
        ifindex: u32,
    },
    /// "Give it to the kernel". A frame the XDP program redirected cannot go back into the
    /// kernel stack from an AF_XDP socket, so this is counted (`passed`) and dropped. The
    /// program only steers service and NAT-reply traffic, so an engine should need it only
    /// for a packet of a deleted service that was still in flight.
    Pass,
}

/// An error from frame manipulation.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// Not enough headroom in front of the data.
    #[error("need {wanted} bytes of headroom, the frame has {available}")]
    Headroom {
        /// Requested bytes.
        wanted: usize,
        /// Available bytes.
        available: usize,
    },
    /// The requested length does not fit the frame.
    #[error("length {wanted} does not fit: at most {max}")]
    Length {
        /// Requested length.
        wanted: usize,
        /// Largest possible length.
        max: usize,
    },
}

/// A packet in a UMEM chunk: `chunk[start .. start + len]` is the Ethernet frame; bytes before
/// it are headroom (at least 256 on receive, the kernel's `XDP_PACKET_HEADROOM`), bytes after it
/// tailroom. Nothing a caller does with a `Frame` can panic or reach outside its chunk.
#[derive(Debug)]
pub struct Frame<'a> {
    chunk: &'a mut [u8],
    start: usize,
    len: usize,
}

impl<'a> Frame<'a> {
    /// A frame over `chunk[start .. start + len]`, clamped to the chunk.
    pub fn new(chunk: &'a mut [u8], start: usize, len: usize) -> Frame<'a> {
        let start = start.min(chunk.len());
        let len = len.min(chunk.len() - start);
        Frame { chunk, start, len }
    }

    /// The frame bytes.
    pub fn data(&self) -> &[u8] {
        &self.chunk[self.start..self.start + self.len]
    }

    /// The frame bytes, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.chunk[self.start..self.start + self.len]
    }

    /// Length of the frame.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes free in front of the frame.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Bytes free after the frame.
    pub fn tailroom(&self) -> usize {
        self.chunk.len() - self.start - self.len
    }

    /// Offset of the frame's first byte inside its chunk.
    pub fn offset(&self) -> usize {
        self.start
    }

    /// Grows the frame by `n` bytes at the front (e.g. to insert an outer IPv4 header after
    /// moving the Ethernet header forward). The new bytes hold stale data.
    pub fn push_front(&mut self, n: usize) -> Result<(), FrameError> {
        if n > self.start {
            return Err(FrameError::Headroom {
                wanted: n,
                available: self.start,
            });
        }
        self.start -= n;
        self.len += n;
        Ok(())
    }

    /// Removes `n` bytes from the front (decapsulation).
    pub fn pull_front(&mut self, n: usize) -> Result<(), FrameError> {
        if n > self.len {
            return Err(FrameError::Length {
                wanted: n,
                max: self.len,
            });
        }
        self.start += n;
        self.len -= n;
        Ok(())
    }

    /// Sets the length (shrinks, or grows into the tailroom; grown bytes hold stale data).
    pub fn set_len(&mut self, len: usize) -> Result<(), FrameError> {
        let max = self.chunk.len() - self.start;
        if len > max {
            return Err(FrameError::Length { wanted: len, max });
        }
        self.len = len;
        Ok(())
    }

    /// Lends the frame to the sans-IO engine as a [`crate::engine::FrameBuf`] over the whole
    /// chunk, and keeps the start and length the engine leaves (it may prepend an IP-in-IP
    /// header into the headroom or turn the frame into an ICMP error).
    pub fn with_engine_buf<R>(
        &mut self,
        f: impl FnOnce(&mut crate::engine::FrameBuf<'_>) -> R,
    ) -> R {
        let (result, start, len) = {
            let mut buf = crate::engine::FrameBuf::new(&mut *self.chunk, self.start, self.len)
                .expect("a Frame keeps start + len inside its chunk (clamped in Frame::new)");
            let result = f(&mut buf);
            (result, buf.start(), buf.len())
        };
        self.start = start;
        self.len = len;
        result
    }

    /// Replaces the frame's content with `bytes` (keeping its start).
    pub fn replace(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        self.set_len(bytes.len())?;
        self.data_mut().copy_from_slice(bytes);
        Ok(())
    }
}

/// The per-frame callback of the data path. Any `FnMut(Ingress, &mut Frame) -> Verdict`
/// implements it.
pub trait FrameHandler {
    /// Decides what happens to one received frame; may rewrite it in place.
    fn handle(&mut self, ingress: Ingress, frame: &mut Frame<'_>) -> Verdict;
}

impl<F: FnMut(Ingress, &mut Frame<'_>) -> Verdict> FrameHandler for F {
    fn handle(&mut self, ingress: Ingress, frame: &mut Frame<'_>) -> Verdict {
        self(ingress, frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_pull_and_lengths_stay_inside_the_chunk() {
        let mut chunk = [0u8; 64];
        let mut f = Frame::new(&mut chunk, 20, 30);
        assert_eq!((f.headroom(), f.len(), f.tailroom()), (20, 30, 14));
        f.push_front(20).unwrap();
        assert_eq!(f.headroom(), 0);
        assert_eq!(
            f.push_front(1),
            Err(FrameError::Headroom {
                wanted: 1,
                available: 0
            })
        );
        f.pull_front(20).unwrap();
        assert!(f.set_len(45).is_err());
        f.set_len(44).unwrap();
        assert_eq!(f.tailroom(), 0);
        f.replace(b"abc").unwrap();
        assert_eq!(f.data(), b"abc");
        assert!(f.pull_front(4).is_err());
        let mut small = [0u8; 4];
        let f = Frame::new(&mut small, 10, 10);
        assert_eq!((f.headroom(), f.len()), (4, 0));
    }
}
