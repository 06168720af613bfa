//! Piranha's heartbeat: one 32-bit magic in the **sender's native byte order**.
//!
//! Layout (Piranha 0.8.6 `pulse.c`; reference `piranha-daemons.md` §1.3):
//!
//! ```text
//!  0               4
//! +---------------+-----------------------------+
//! | magic (u32)   | (ignored: Piranha reads 4)  |
//! +---------------+-----------------------------+
//! ```
//!
//! Piranha never calls `htonl`, so an x86 director sends the magic little-endian. A receiver
//! here accepts **both** byte orders (as Wireshark's dissector does); no known magic is another
//! known magic byte-swapped, so the order is unambiguous. Like Piranha, a datagram shorter than
//! 4 bytes is rejected and a longer one is judged by its first 4 bytes (Piranha receives into a
//! 4-byte buffer). We emit little-endian, which is what every deployed (x86) Piranha sends and
//! expects.
//!
//! Which magics are acceptable depends on the mode: see [`Repr::lvs_state`].

use super::PeerState;

/// A recognised magic value, or the raw value of an unknown one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Magic {
    /// `0xbdaddbda`: LVS mode, sender active ("running").
    LvsRunning,
    /// `0xadbddabd`: LVS mode, sender inactive ("stopped").
    LvsStopped,
    /// `0xBeefBabe`: FOS mode, running.
    FosRunning,
    /// `0xDeadBeef`: FOS mode, stopped.
    FosStopped,
    /// `0xDeadDaDa`: FOS "stop me"; accepted in both modes and handled as running.
    FosStopMe,
    /// `0xDeafBabe`: "hold"; accepted, handled as running (Piranha's hold logic is disabled).
    Hold,
    /// `0xDeafDaDa`: "held"; accepted, handled as running.
    Held,
    /// Any other value, in the byte order that the sender appears to use (little-endian when
    /// neither order is known).
    Unknown(u32),
}

impl Magic {
    /// The numeric value of a magic.
    pub const fn value(self) -> u32 {
        match self {
            Magic::LvsRunning => 0xbdad_dbda,
            Magic::LvsStopped => 0xadbd_dabd,
            Magic::FosRunning => 0xbeef_babe,
            Magic::FosStopped => 0xdead_beef,
            Magic::FosStopMe => 0xdead_dada,
            Magic::Hold => 0xdeaf_babe,
            Magic::Held => 0xdeaf_dada,
            Magic::Unknown(v) => v,
        }
    }

    fn known(value: u32) -> Option<Magic> {
        [
            Magic::LvsRunning,
            Magic::LvsStopped,
            Magic::FosRunning,
            Magic::FosStopped,
            Magic::FosStopMe,
            Magic::Hold,
            Magic::Held,
        ]
        .into_iter()
        .find(|m| m.value() == value)
    }
}

/// The byte order of a received or emitted magic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteOrder {
    /// What x86 Piranha directors send.
    Little,
    /// What a big-endian Piranha director would send.
    Big,
}

/// Why a Piranha datagram was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PiranhaError {
    /// Fewer than 4 bytes (Piranha: `bad heartbeat packet`).
    #[error("bad heartbeat packet: {len} bytes, need 4")]
    Truncated {
        /// Length received.
        len: usize,
    },
    /// A magic that this mode does not accept (Piranha: `Incompatible heartbeat received --
    /// other system not using identical services`).
    #[error("incompatible heartbeat {magic:#010x}: other system not using identical services")]
    Incompatible {
        /// The magic, little-endian reading.
        magic: u32,
    },
}

/// Length of a heartbeat as emitted.
pub const LEN: usize = 4;

mod field {
    pub const MAGIC: core::ops::Range<usize> = 0..4;
}

/// A read-only (or, with `T: AsMut<[u8]>`, writable) view over a Piranha heartbeat.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic if it is shorter than 4 bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps untrusted bytes; after this no accessor can panic.
    pub fn new_checked(buffer: T) -> Result<Self, PiranhaError> {
        let len = buffer.as_ref().len();
        if len < LEN {
            return Err(PiranhaError::Truncated { len });
        }
        Ok(Packet { buffer })
    }

    /// The raw magic bytes.
    pub fn magic_bytes(&self) -> [u8; 4] {
        let mut b = [0; 4];
        b.copy_from_slice(&self.buffer.as_ref()[field::MAGIC]);
        b
    }

    /// The magic and the byte order it was sent in; an unknown value reads little-endian.
    pub fn magic(&self) -> (Magic, ByteOrder) {
        let b = self.magic_bytes();
        if let Some(m) = Magic::known(u32::from_le_bytes(b)) {
            (m, ByteOrder::Little)
        } else if let Some(m) = Magic::known(u32::from_be_bytes(b)) {
            (m, ByteOrder::Big)
        } else {
            (Magic::Unknown(u32::from_le_bytes(b)), ByteOrder::Little)
        }
    }

    /// Consumes the view.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes `magic` in `order`.
    pub fn set_magic(&mut self, magic: Magic, order: ByteOrder) {
        let bytes = match order {
            ByteOrder::Little => magic.value().to_le_bytes(),
            ByteOrder::Big => magic.value().to_be_bytes(),
        };
        self.buffer.as_mut()[field::MAGIC].copy_from_slice(&bytes);
    }
}

/// A parsed Piranha heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    /// The magic.
    pub magic: Magic,
    /// The byte order it came in (or is to be emitted in).
    pub order: ByteOrder,
}

impl Repr {
    /// The LVS-mode heartbeat for `state`, little-endian.
    pub const fn lvs(state: PeerState) -> Self {
        let magic = match state {
            PeerState::Active => Magic::LvsRunning,
            PeerState::Standby => Magic::LvsStopped,
        };
        Repr {
            magic,
            order: ByteOrder::Little,
        }
    }

    /// Parses a checked packet; unknown magics survive as [`Magic::Unknown`].
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Self {
        let (magic, order) = packet.magic();
        Repr { magic, order }
    }

    /// Parses untrusted bytes straight into what an LVS-mode receiver must act on.
    pub fn parse_lvs(datagram: &[u8]) -> Result<PeerState, PiranhaError> {
        Repr::parse(&Packet::new_checked(datagram)?).lvs_state()
    }

    /// What an LVS-mode pulse makes of this heartbeat (Piranha's receive validation):
    /// its own running/stopped pair, and the FOS "stop me", "hold" and "held" magics, which
    /// Piranha accepts in both modes and then treats as "running". FOS running/stopped and
    /// unknown values are [`PiranhaError::Incompatible`].
    ///
    /// Deliberate difference: an LVS-mode Piranha that is active and master reacts to
    /// `0xDeadDaDa` with a half-done FOS "go inactive" (reference §1.3); we treat it as
    /// plain "running". LVS-mode Piranha never sends it.
    pub fn lvs_state(&self) -> Result<PeerState, PiranhaError> {
        match self.magic {
            Magic::LvsRunning | Magic::FosStopMe | Magic::Hold | Magic::Held => {
                Ok(PeerState::Active)
            }
            Magic::LvsStopped => Ok(PeerState::Standby),
            other => Err(PiranhaError::Incompatible {
                magic: other.value(),
            }),
        }
    }

    /// Bytes needed by [`Repr::emit`].
    pub const fn buffer_len(&self) -> usize {
        LEN
    }

    /// Writes the heartbeat into the first 4 bytes of `packet`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_magic(self.magic, self.order);
    }

    /// The 4 bytes on the wire.
    pub fn to_bytes(&self) -> [u8; LEN] {
        let mut p = Packet::new_unchecked([0u8; LEN]);
        self.emit(&mut p);
        p.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Frames built byte for byte from reference §1.3: the magic as an x86 director sends it.
    const RUNNING_X86: [u8; 4] = [0xda, 0xdb, 0xad, 0xbd];
    const STOPPED_X86: [u8; 4] = [0xbd, 0xda, 0xbd, 0xad];
    const RUNNING_BE: [u8; 4] = [0xbd, 0xad, 0xdb, 0xda];
    const STOPPED_BE: [u8; 4] = [0xad, 0xbd, 0xda, 0xbd];

    #[test]
    fn parses_both_byte_orders() {
        let p = |b: &[u8]| Repr::parse(&Packet::new_checked(b).expect("4 bytes"));
        assert_eq!(
            p(&RUNNING_X86),
            Repr {
                magic: Magic::LvsRunning,
                order: ByteOrder::Little
            }
        );
        assert_eq!(
            p(&STOPPED_X86),
            Repr {
                magic: Magic::LvsStopped,
                order: ByteOrder::Little
            }
        );
        assert_eq!(
            p(&RUNNING_BE),
            Repr {
                magic: Magic::LvsRunning,
                order: ByteOrder::Big
            }
        );
        assert_eq!(
            p(&STOPPED_BE),
            Repr {
                magic: Magic::LvsStopped,
                order: ByteOrder::Big
            }
        );
        assert_eq!(Repr::parse_lvs(&RUNNING_X86), Ok(PeerState::Active));
        assert_eq!(Repr::parse_lvs(&STOPPED_BE), Ok(PeerState::Standby));
    }

    #[test]
    fn emits_what_x86_piranha_sends() {
        assert_eq!(Repr::lvs(PeerState::Active).to_bytes(), RUNNING_X86);
        assert_eq!(Repr::lvs(PeerState::Standby).to_bytes(), STOPPED_X86);
        let big = Repr {
            magic: Magic::LvsRunning,
            order: ByteOrder::Big,
        };
        assert_eq!(big.to_bytes(), RUNNING_BE);
        let mut buf = [0u8; 6];
        let mut pkt = Packet::new_checked(&mut buf[..]).expect("long enough");
        Repr::lvs(PeerState::Standby).emit(&mut pkt);
        assert_eq!(buf, [0xbd, 0xda, 0xbd, 0xad, 0, 0]);
    }

    #[test]
    fn short_rejected_long_truncated_like_piranha() {
        for len in 0..4 {
            assert_eq!(
                Repr::parse_lvs(&RUNNING_X86[..len]),
                Err(PiranhaError::Truncated { len })
            );
        }
        let long = [0xbd, 0xda, 0xbd, 0xad, 0xff, 0xff, 0xff];
        assert_eq!(Repr::parse_lvs(&long), Ok(PeerState::Standby));
    }

    #[test]
    fn fos_hold_and_stop_me_count_as_running_fos_pair_incompatible() {
        for m in [Magic::FosStopMe, Magic::Hold, Magic::Held] {
            let b = m.value().to_le_bytes();
            assert_eq!(Repr::parse_lvs(&b), Ok(PeerState::Active), "{m:?}");
        }
        for m in [Magic::FosRunning, Magic::FosStopped] {
            let b = m.value().to_le_bytes();
            assert_eq!(
                Repr::parse_lvs(&b),
                Err(PiranhaError::Incompatible { magic: m.value() })
            );
        }
        assert_eq!(
            Repr::parse_lvs(&[1, 2, 3, 4]),
            Err(PiranhaError::Incompatible { magic: 0x0403_0201 })
        );
    }

    #[test]
    fn no_magic_is_another_byte_swapped() {
        for a in [
            0xbdad_dbdau32,
            0xadbd_dabd,
            0xbeef_babe,
            0xdead_beef,
            0xdead_dada,
            0xdeaf_babe,
            0xdeaf_dada,
        ] {
            assert!(Magic::known(a.swap_bytes()).is_none(), "{a:#x}");
        }
    }
}
