//! [`FrameBuf`]: the one description of a frame buffer across the io/engine seam. The io
//! layer lends a UMEM chunk as a `FrameBuf`, the engine rewrites it in place and returns an
//! [`crate::engine::Verdict`]; the io layer then sends `frame()` (start and length may have
//! moved) or frees the chunk.
//!
//! `buf[start..start + len]` is the frame (an Ethernet frame); bytes in front are headroom
//! (for a 20-byte IP-in-IP header or a VLAN tag; AF_XDP gives 256), bytes behind it
//! tailroom (for a generated ICMP error that quotes a short packet). Nothing a caller does
//! with a `FrameBuf` can panic or reach outside its buffer.

/// A frame range or resize that does not fit the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// `start + len` past the buffer.
    #[error("frame {start}+{len} does not fit a {cap}-byte buffer")]
    Range {
        /// Requested start.
        start: usize,
        /// Requested length.
        len: usize,
        /// Buffer size.
        cap: usize,
    },
    /// Not enough headroom in front of the frame.
    #[error("need {wanted} bytes of headroom, the frame has {available}")]
    Headroom {
        /// Requested bytes.
        wanted: usize,
        /// Available bytes.
        available: usize,
    },
    /// The requested length does not fit.
    #[error("length {wanted} does not fit: at most {max}")]
    Length {
        /// Requested length.
        wanted: usize,
        /// Largest possible length.
        max: usize,
    },
}

/// One frame inside a larger buffer; see the [module docs](self).
#[derive(Debug)]
pub struct FrameBuf<'a> {
    buf: &'a mut [u8],
    start: usize,
    len: usize,
}

impl<'a> FrameBuf<'a> {
    /// The frame `buf[start..start + len]`.
    pub fn new(buf: &'a mut [u8], start: usize, len: usize) -> Result<Self, FrameError> {
        match start.checked_add(len) {
            Some(end) if end <= buf.len() => Ok(FrameBuf { buf, start, len }),
            _ => Err(FrameError::Range {
                start,
                len,
                cap: buf.len(),
            }),
        }
    }

    /// The frame's bytes.
    pub fn frame(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    /// The frame's bytes, mutable.
    pub fn frame_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }

    /// Where the frame starts in the buffer.
    pub fn start(&self) -> usize {
        self.start
    }

    /// The frame's length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free bytes in front of the frame.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Free bytes behind the frame.
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.start - self.len
    }

    /// Grows the frame by `n` bytes at the front (the new bytes hold stale data).
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
        let max = self.buf.len() - self.start;
        if len > max {
            return Err(FrameError::Length { wanted: len, max });
        }
        self.len = len;
        Ok(())
    }

    /// Replaces the frame's content with `bytes` (keeping its start).
    pub fn replace(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        self.set_len(bytes.len())?;
        self.frame_mut().copy_from_slice(bytes);
        Ok(())
    }

    /// The whole buffer, read-only.
    pub(crate) fn raw(&self) -> &[u8] {
        self.buf
    }

    /// The whole buffer (engine-internal rewrites).
    pub(crate) fn raw_mut(&mut self) -> &mut [u8] {
        self.buf
    }

    /// Size of the whole buffer.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Moves the frame window; callers keep it inside the buffer.
    pub(crate) fn set_window(&mut self, start: usize, len: usize) {
        debug_assert!(start + len <= self.buf.len());
        self.start = start;
        self.len = len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        let mut b = [0u8; 100];
        assert!(FrameBuf::new(&mut b, 90, 11).is_err());
        assert!(FrameBuf::new(&mut b, usize::MAX, 2).is_err());
        let f = FrameBuf::new(&mut b, 32, 60).expect("fits");
        assert_eq!((f.headroom(), f.len(), f.tailroom()), (32, 60, 8));
        assert_eq!(f.frame().len(), 60);
    }

    #[test]
    fn push_pull_and_lengths_stay_inside_the_buffer() {
        let mut chunk = [0u8; 64];
        let mut f = FrameBuf::new(&mut chunk, 20, 30).expect("fits");
        assert_eq!((f.headroom(), f.len(), f.tailroom()), (20, 30, 14));
        f.push_front(20).expect("headroom");
        assert_eq!(f.headroom(), 0);
        assert_eq!(
            f.push_front(1),
            Err(FrameError::Headroom {
                wanted: 1,
                available: 0
            })
        );
        f.pull_front(20).expect("length");
        assert!(f.set_len(45).is_err());
        f.set_len(44).expect("tailroom");
        assert_eq!(f.tailroom(), 0);
        f.replace(b"abc").expect("fits");
        assert_eq!(f.frame(), b"abc");
        assert!(f.pull_front(4).is_err());
    }
}
