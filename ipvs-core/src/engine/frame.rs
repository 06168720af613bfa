//! [`FrameBuf`]: one frame inside a larger buffer, with headroom in front (for the 20-byte
//! IP-in-IP header or a VLAN tag) and tailroom behind (for a generated ICMP error that
//! quotes a short packet).

/// `buf[start..start + len]` is the frame; the rest of `buf` is free room the engine may
/// use. After a [`super::Verdict::Tx`] or [`super::Verdict::Reply`] the frame to send is
/// again `buf[start..start + len]` — `start` and `len` may have changed.
#[derive(Debug)]
pub struct FrameBuf<'a> {
    buf: &'a mut [u8],
    start: usize,
    len: usize,
}

/// A frame range that does not fit its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame {start}+{len} does not fit a {cap}-byte buffer")]
pub struct FrameBufError {
    /// Requested start.
    pub start: usize,
    /// Requested length.
    pub len: usize,
    /// Buffer size.
    pub cap: usize,
}

impl<'a> FrameBuf<'a> {
    /// The frame `buf[start..start + len]`.
    pub fn new(buf: &'a mut [u8], start: usize, len: usize) -> Result<Self, FrameBufError> {
        match start.checked_add(len) {
            Some(end) if end <= buf.len() => Ok(FrameBuf { buf, start, len }),
            _ => Err(FrameBufError {
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
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Free bytes in front of the frame.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Free bytes behind the frame.
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.start - self.len
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
}
