//! The authenticated heartbeat (format version 1), used whenever a key is configured.
//!
//! Layout, all integers big-endian (network order), 60 bytes exactly:
//!
//! ```text
//! offset size field
//!  0      4   magic      "LVSH" (0x4c 0x56 0x53 0x48)
//!  4      1   version    1
//!  5      1   role       1 = primary, 2 = backup (the sender's configured role)
//!  6      1   state      1 = active, 2 = standby
//!  7      1   flags      0 (reserved; a non-zero value is rejected as garbled)
//!  8      4   cluster id shared by both directors of one pair
//! 12      8   boot id    a value the sender picks at start and that grows across restarts
//! 20      8   sequence   starts at 0 for each boot id, +1 per heartbeat
//! 28     32   HMAC-SHA256(key, bytes 0..28)
//! ```
//!
//! Receive checks, in order, each with its own [`AuthError`] variant: length below 8 →
//! `Truncated`; magic → `Garbled`; version → `UnsupportedVersion` (so a future, longer version is
//! not reported as oversized); length ≠ 60 → `Truncated`/`Oversized`; cluster id →
//! `WrongCluster` (checked before the MAC, from unauthenticated bytes, only to tell an operator
//! "another pair's heartbeat" apart from "wrong key": both are dropped); MAC (constant-time) →
//! `BadMac`; role, state, flags → `Garbled`; the partner's role → `WrongRole`; freshness → `Stale`, `Replayed` or `Reordered`.
//!
//! Freshness is judged on `(boot id, sequence)`: a higher boot id starts a new window; a lower
//! one is `Stale`. Within a boot id a [`ReplayWindow`] of [`WINDOW`] sequence numbers accepts
//! reordered heartbeats once each (RFC 4303 §3.4.3), but the [`Receiver`] passes on only a
//! heartbeat newer than all before it (an older one is `Reordered`: a late "active" must not
//! undo a newer "standby"). The boot id must grow across restarts of the sender: the shell
//! uses a counter kept on disk or the wall-clock time in microseconds at start-up. A partner whose boot id went backwards is rejected as `Stale`
//! until [`Receiver::reset`] is called (an operator action, e.g. restarting pulse).

use ring::hmac;

use super::{PeerState, Role};

/// The first four bytes of every authenticated heartbeat.
pub const MAGIC: [u8; 4] = *b"LVSH";
/// The format version this module reads and writes.
pub const VERSION: u8 = 1;
/// Length of a version-1 heartbeat.
pub const LEN: usize = 60;
/// Length of the HMAC-SHA256 tag.
pub const TAG_LEN: usize = 32;
/// Width of the replay window, in sequence numbers.
pub const WINDOW: u64 = 64;
/// Shortest key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 16;

mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const VERSION: usize = 4;
    pub const ROLE: usize = 5;
    pub const STATE: usize = 6;
    pub const FLAGS: usize = 7;
    pub const CLUSTER: Range<usize> = 8..12;
    pub const BOOT: Range<usize> = 12..20;
    pub const SEQ: Range<usize> = 20..28;
    pub const SIGNED: Range<usize> = 0..28;
    pub const TAG: Range<usize> = 28..60;
}

/// Why an authenticated heartbeat was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Shorter than the format requires.
    #[error("heartbeat truncated: {len} bytes, need {need}")]
    Truncated {
        /// Length received.
        len: usize,
        /// Length required.
        need: usize,
    },
    /// Longer than the format allows.
    #[error("heartbeat oversized: {len} bytes, expected {LEN}")]
    Oversized {
        /// Length received.
        len: usize,
    },
    /// Bad magic, or an undefined role, state or flag value (after the MAC checked out).
    #[error("garbled heartbeat: {what}")]
    Garbled {
        /// Which field.
        what: &'static str,
    },
    /// A version this build does not speak.
    #[error("unsupported heartbeat version {version} (this pulse speaks {VERSION})")]
    UnsupportedVersion {
        /// Version received.
        version: u8,
    },
    /// Another pair's heartbeat.
    #[error("heartbeat for cluster {got}, this pair is cluster {want}")]
    WrongCluster {
        /// Cluster id received.
        got: u32,
        /// Cluster id configured.
        want: u32,
    },
    /// The MAC does not verify: wrong key or tampered bytes.
    #[error("heartbeat authentication failed (wrong key or tampered)")]
    BadMac,
    /// Older than the replay window, or from an earlier boot of the sender.
    #[error("stale heartbeat: boot {boot_id} sequence {sequence}")]
    Stale {
        /// Boot id received.
        boot_id: u64,
        /// Sequence received.
        sequence: u64,
    },
    /// Authentic, but the sender claims our own role: both directors are configured as
    /// primary (or both as backup), which would defeat the split-brain rule.
    #[error("partner announces role {got:?}, expected {want:?}: check primary/backup in lvs.cf")]
    WrongRole {
        /// Role announced.
        got: Role,
        /// The partner's role from our configuration.
        want: Role,
    },
    /// Authentic and not seen before, but older than a heartbeat already accepted: it carries
    /// no news and acting on its state would undo the newer one. Recorded in the window (a
    /// second copy is `Replayed`) and dropped.
    #[error("reordered heartbeat: boot {boot_id} sequence {sequence} arrived after a newer one")]
    Reordered {
        /// Boot id received.
        boot_id: u64,
        /// Sequence received.
        sequence: u64,
    },
    /// Already received once.
    #[error("replayed heartbeat: boot {boot_id} sequence {sequence}")]
    Replayed {
        /// Boot id received.
        boot_id: u64,
        /// Sequence received.
        sequence: u64,
    },
}

/// A key too short to be configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("heartbeat key too short: {len} bytes, need at least {MIN_KEY_LEN}")]
pub struct KeyTooShort {
    /// Length given.
    pub len: usize,
}

/// The shared HMAC-SHA256 key. Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct AuthKey(hmac::Key);

impl AuthKey {
    /// A key from raw bytes (at least [`MIN_KEY_LEN`]).
    pub fn new(bytes: &[u8]) -> Result<Self, KeyTooShort> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(KeyTooShort { len: bytes.len() });
        }
        Ok(AuthKey(hmac::Key::new(hmac::HMAC_SHA256, bytes)))
    }
}

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthKey(..)")
    }
}

/// A view over an authenticated heartbeat.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors panic if it is shorter than [`LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps untrusted bytes: checks length, magic and version. After this no accessor panics.
    pub fn new_checked(buffer: T) -> Result<Self, AuthError> {
        let b = buffer.as_ref();
        if b.len() <= field::VERSION {
            return Err(AuthError::Truncated {
                len: b.len(),
                need: LEN,
            });
        }
        if b[field::MAGIC] != MAGIC {
            return Err(AuthError::Garbled { what: "magic" });
        }
        if b[field::VERSION] != VERSION {
            return Err(AuthError::UnsupportedVersion {
                version: b[field::VERSION],
            });
        }
        if b.len() < LEN {
            return Err(AuthError::Truncated {
                len: b.len(),
                need: LEN,
            });
        }
        if b.len() > LEN {
            return Err(AuthError::Oversized { len: b.len() });
        }
        Ok(Packet { buffer })
    }

    fn u64_at(&self, r: core::ops::Range<usize>) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.buffer.as_ref()[r]);
        u64::from_be_bytes(a)
    }

    /// The version byte.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }
    /// The raw role byte.
    pub fn role(&self) -> u8 {
        self.buffer.as_ref()[field::ROLE]
    }
    /// The raw state byte.
    pub fn state(&self) -> u8 {
        self.buffer.as_ref()[field::STATE]
    }
    /// The flags byte.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }
    /// The cluster id.
    pub fn cluster_id(&self) -> u32 {
        let mut a = [0u8; 4];
        a.copy_from_slice(&self.buffer.as_ref()[field::CLUSTER]);
        u32::from_be_bytes(a)
    }
    /// The boot id.
    pub fn boot_id(&self) -> u64 {
        self.u64_at(field::BOOT)
    }
    /// The sequence number.
    pub fn sequence(&self) -> u64 {
        self.u64_at(field::SEQ)
    }
    /// The bytes covered by the MAC.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SIGNED]
    }
    /// The MAC.
    pub fn tag(&self) -> &[u8] {
        &self.buffer.as_ref()[field::TAG]
    }
    /// Verifies the MAC in constant time.
    pub fn verify(&self, key: &AuthKey) -> Result<(), AuthError> {
        hmac::verify(&key.0, self.signed_bytes(), self.tag()).map_err(|_| AuthError::BadMac)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes magic, version and all header fields, then signs them.
    fn fill(&mut self, repr: &Repr, key: &AuthKey) {
        let b = self.buffer.as_mut();
        b[field::MAGIC].copy_from_slice(&MAGIC);
        b[field::VERSION] = VERSION;
        b[field::ROLE] = match repr.role {
            Role::Primary => 1,
            Role::Backup => 2,
        };
        b[field::STATE] = match repr.state {
            PeerState::Active => 1,
            PeerState::Standby => 2,
        };
        b[field::FLAGS] = 0;
        b[field::CLUSTER].copy_from_slice(&repr.cluster_id.to_be_bytes());
        b[field::BOOT].copy_from_slice(&repr.boot_id.to_be_bytes());
        b[field::SEQ].copy_from_slice(&repr.sequence.to_be_bytes());
        let tag = hmac::sign(&key.0, &b[field::SIGNED]);
        b[field::TAG].copy_from_slice(tag.as_ref());
    }
}

/// The authenticated contents of a heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    /// The sender's configured role.
    pub role: Role,
    /// What the sender announces.
    pub state: PeerState,
    /// The pair's cluster id.
    pub cluster_id: u32,
    /// The sender's boot id.
    pub boot_id: u64,
    /// The sender's sequence number.
    pub sequence: u64,
}

impl Repr {
    /// Checks cluster id and MAC, then decodes. Freshness is the [`Receiver`]'s business.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Packet<T>,
        key: &AuthKey,
        cluster_id: u32,
    ) -> Result<Repr, AuthError> {
        if packet.cluster_id() != cluster_id {
            return Err(AuthError::WrongCluster {
                got: packet.cluster_id(),
                want: cluster_id,
            });
        }
        packet.verify(key)?;
        let role = match packet.role() {
            1 => Role::Primary,
            2 => Role::Backup,
            _ => return Err(AuthError::Garbled { what: "role" }),
        };
        let state = match packet.state() {
            1 => PeerState::Active,
            2 => PeerState::Standby,
            _ => return Err(AuthError::Garbled { what: "state" }),
        };
        if packet.flags() != 0 {
            return Err(AuthError::Garbled { what: "flags" });
        }
        Ok(Repr {
            role,
            state,
            cluster_id,
            boot_id: packet.boot_id(),
            sequence: packet.sequence(),
        })
    }

    /// Writes and signs the heartbeat into a buffer of exactly [`LEN`] bytes or more (the
    /// first [`LEN`] are used).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>, key: &AuthKey) {
        packet.fill(self, key);
    }

    /// The signed heartbeat as bytes.
    pub fn to_bytes(&self, key: &AuthKey) -> [u8; LEN] {
        let mut p = Packet::new_unchecked([0u8; LEN]);
        self.emit(&mut p, key);
        p.buffer
    }
}

/// A sliding window over `(boot id, sequence)`, like IPsec's anti-replay window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Boot id and highest sequence accepted so far; `None` before the first heartbeat.
    top: Option<(u64, u64)>,
    /// Bit `i` set: sequence `highest - i` was accepted.
    seen: u64,
}

impl ReplayWindow {
    /// Whether `(boot_id, sequence)` would be accepted; changes nothing.
    pub fn check(&self, boot_id: u64, sequence: u64) -> Result<(), AuthError> {
        let Some((boot, highest)) = self.top else {
            return Ok(());
        };
        if boot_id > boot || (boot_id == boot && sequence > highest) {
            return Ok(());
        }
        let stale = AuthError::Stale { boot_id, sequence };
        if boot_id < boot || highest - sequence >= WINDOW {
            return Err(stale);
        }
        if self.seen & (1u64 << (highest - sequence)) != 0 {
            return Err(AuthError::Replayed { boot_id, sequence });
        }
        Ok(())
    }

    /// Whether `(boot_id, sequence)` is newer than everything accepted so far.
    pub fn is_newest(&self, boot_id: u64, sequence: u64) -> bool {
        match self.top {
            None => true,
            Some((boot, highest)) => boot_id > boot || (boot_id == boot && sequence > highest),
        }
    }

    /// Checks, then records `(boot_id, sequence)` as received.
    pub fn accept(&mut self, boot_id: u64, sequence: u64) -> Result<(), AuthError> {
        self.check(boot_id, sequence)?;
        match self.top {
            Some((boot, highest)) if boot == boot_id && sequence <= highest => {
                self.seen |= 1u64 << (highest - sequence);
            }
            Some((boot, highest)) if boot == boot_id => {
                let shift = sequence - highest;
                self.seen = if shift >= WINDOW {
                    0
                } else {
                    self.seen << shift
                } | 1;
                self.top = Some((boot_id, sequence));
            }
            _ => {
                self.top = Some((boot_id, sequence));
                self.seen = 1;
            }
        }
        Ok(())
    }
}

/// Builds this node's heartbeats: one per call, with the next sequence number.
#[derive(Debug, Clone)]
pub struct Sender {
    key: AuthKey,
    role: Role,
    cluster_id: u32,
    boot_id: u64,
    next_sequence: u64,
}

impl Sender {
    /// A sender for one boot of this node.
    pub fn new(key: AuthKey, role: Role, cluster_id: u32, boot_id: u64) -> Self {
        Sender {
            key,
            role,
            cluster_id,
            boot_id,
            next_sequence: 0,
        }
    }

    /// The signed heartbeat announcing `state`.
    pub fn heartbeat(&mut self, state: PeerState) -> [u8; LEN] {
        let repr = Repr {
            role: self.role,
            state,
            cluster_id: self.cluster_id,
            boot_id: self.boot_id,
            sequence: self.next_sequence,
        };
        self.next_sequence = self.next_sequence.wrapping_add(1);
        repr.to_bytes(&self.key)
    }
}

/// Validates the partner's heartbeats: format, cluster, key, role and freshness.
#[derive(Debug, Clone)]
pub struct Receiver {
    key: AuthKey,
    cluster_id: u32,
    partner: Role,
    window: ReplayWindow,
}

impl Receiver {
    /// A receiver for one pair, expecting heartbeats from a partner in role `partner`.
    pub fn new(key: AuthKey, cluster_id: u32, partner: Role) -> Self {
        Receiver {
            key,
            cluster_id,
            partner,
            window: ReplayWindow::default(),
        }
    }

    /// Forgets every boot id and sequence seen (operator action).
    pub fn reset(&mut self) {
        self.window = ReplayWindow::default();
    }

    /// Parses and authenticates a datagram; on success it is recorded in the replay window.
    /// Only the newest heartbeat so far is returned: an authentic older one that arrives late
    /// is recorded and reported as [`AuthError::Reordered`], so the machine never acts on a
    /// state the partner has since left.
    /// The window is checked before the MAC (cheap rejection) and updated only after it.
    pub fn receive(&mut self, datagram: &[u8]) -> Result<Repr, AuthError> {
        let packet = Packet::new_checked(datagram)?;
        self.window
            .check(packet.boot_id(), packet.sequence())
            .or_else(|e| {
                // A forged header must not be reported as a replay: verify first, then report.
                packet.verify(&self.key)?;
                Err(e)
            })?;
        let repr = Repr::parse(&packet, &self.key, self.cluster_id)?;
        if repr.role != self.partner {
            return Err(AuthError::WrongRole {
                got: repr.role,
                want: self.partner,
            });
        }
        let newest = self.window.is_newest(repr.boot_id, repr.sequence);
        self.window.accept(repr.boot_id, repr.sequence)?;
        if !newest {
            return Err(AuthError::Reordered {
                boot_id: repr.boot_id,
                sequence: repr.sequence,
            });
        }
        Ok(repr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> AuthKey {
        AuthKey::new(&[b; 32]).expect("32 bytes")
    }

    #[test]
    fn layout_byte_for_byte() {
        let repr = Repr {
            role: Role::Backup,
            state: PeerState::Active,
            cluster_id: 0x0102_0304,
            boot_id: 0x1112_1314_1516_1718,
            sequence: 0x2122_2324_2526_2728,
        };
        let b = repr.to_bytes(&key(7));
        let header: [u8; 28] = [
            b'L', b'V', b'S', b'H', 1, 2, 1, 0, 1, 2, 3, 4, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
            0x17, 0x18, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
        ];
        assert_eq!(b[..28], header);
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[7; 32]), &header);
        assert_eq!(&b[28..], tag.as_ref());
        let pkt = Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(Repr::parse(&pkt, &key(7), 0x0102_0304), Ok(repr));
    }

    #[test]
    fn each_rejection_has_its_variant() {
        let mut tx = Sender::new(key(1), Role::Primary, 9, 100);
        let good = tx.heartbeat(PeerState::Standby);
        let mut rx = Receiver::new(key(1), 9, Role::Primary);

        assert_eq!(
            rx.receive(&good[..3]),
            Err(AuthError::Truncated { len: 3, need: LEN })
        );
        assert_eq!(
            rx.receive(&good[..59]),
            Err(AuthError::Truncated { len: 59, need: LEN })
        );
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(rx.receive(&long), Err(AuthError::Oversized { len: 61 }));
        let mut bad = good;
        bad[0] = b'X';
        assert_eq!(rx.receive(&bad), Err(AuthError::Garbled { what: "magic" }));
        let mut bad = good;
        bad[4] = 2;
        assert_eq!(
            rx.receive(&bad),
            Err(AuthError::UnsupportedVersion { version: 2 })
        );
        let mut bad = good;
        bad[11] = 8;
        assert_eq!(
            rx.receive(&bad),
            Err(AuthError::WrongCluster { got: 8, want: 9 })
        );
        let mut bad = good;
        bad[25] ^= 1;
        assert_eq!(rx.receive(&bad), Err(AuthError::BadMac));
        let mut other = Receiver::new(key(2), 9, Role::Primary);
        assert_eq!(other.receive(&good), Err(AuthError::BadMac));
        // Garbled fields behind a valid MAC (a buggy or future sender with our key).
        let mut bad = good;
        bad[6] = 7;
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[1; 32]), &bad[..28]);
        bad[28..].copy_from_slice(tag.as_ref());
        assert_eq!(rx.receive(&bad), Err(AuthError::Garbled { what: "state" }));

        let mut backup_rx = Receiver::new(key(1), 9, Role::Backup);
        assert_eq!(
            backup_rx.receive(&good),
            Err(AuthError::WrongRole {
                got: Role::Primary,
                want: Role::Backup
            })
        );

        assert_eq!(rx.receive(&good).map(|r| r.state), Ok(PeerState::Standby));
        assert_eq!(
            rx.receive(&good),
            Err(AuthError::Replayed {
                boot_id: 100,
                sequence: 0
            })
        );
    }

    #[test]
    fn window_records_reordering_once_and_drops_stale() {
        let mut tx = Sender::new(key(1), Role::Backup, 1, 5);
        let frames: Vec<_> = (0..100).map(|_| tx.heartbeat(PeerState::Active)).collect();
        let mut rx = Receiver::new(key(1), 1, Role::Backup);
        assert!(rx.receive(&frames[10]).is_ok());
        assert!(rx.receive(&frames[12]).is_ok());
        assert!(
            matches!(
                rx.receive(&frames[11]),
                Err(AuthError::Reordered { sequence: 11, .. })
            ),
            "authentic, inside the window, but older than 12"
        );
        assert!(matches!(
            rx.receive(&frames[11]),
            Err(AuthError::Replayed { sequence: 11, .. })
        ));
        assert!(rx.receive(&frames[90]).is_ok());
        assert!(matches!(
            rx.receive(&frames[12]),
            Err(AuthError::Stale { sequence: 12, .. })
        ));
        assert!(
            matches!(rx.receive(&frames[27]), Err(AuthError::Reordered { .. })),
            "90 - 27 = 63 < 64: inside the window"
        );
        assert!(matches!(
            rx.receive(&frames[27]),
            Err(AuthError::Replayed { .. })
        ));
        assert!(matches!(
            rx.receive(&frames[26]),
            Err(AuthError::Stale { .. })
        ));

        // A restart with a higher boot id starts over; the old boot is stale from then on.
        let mut tx2 = Sender::new(key(1), Role::Backup, 1, 6);
        assert!(rx.receive(&tx2.heartbeat(PeerState::Standby)).is_ok());
        assert!(matches!(
            rx.receive(&frames[99]),
            Err(AuthError::Stale { boot_id: 5, .. })
        ));
        rx.reset();
        assert!(rx.receive(&frames[99]).is_ok());
    }

    #[test]
    fn window_jumps_far_ahead() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.accept(1, 0), Ok(()));
        assert_eq!(w.accept(1, 1000), Ok(()));
        assert_eq!(w.accept(1, 999), Ok(()));
        assert_eq!(
            w.accept(1, 0),
            Err(AuthError::Stale {
                boot_id: 1,
                sequence: 0
            })
        );
        assert_eq!(w.accept(1, u64::MAX), Ok(()));
        assert_eq!(
            w.accept(1, u64::MAX),
            Err(AuthError::Replayed {
                boot_id: 1,
                sequence: u64::MAX
            })
        );
    }

    #[test]
    fn short_keys_refused_and_never_printed() {
        assert_eq!(AuthKey::new(&[0; 15]).err(), Some(KeyTooShort { len: 15 }));
        assert_eq!(format!("{:?}", key(0x41)), "AuthKey(..)");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..128)) {
            let mut rx = Receiver::new(key(3), 1, Role::Primary);
            let _ = rx.receive(&bytes);
            let _ = super::super::piranha::Repr::parse_lvs(&bytes);
            let _ = super::super::classify(&bytes);
        }

        #[test]
        fn mutated_valid_frames_never_panic(i in 0usize..LEN, x in 1u8..=255, seq in proptest::num::u64::ANY) {
            let repr = Repr { role: Role::Primary, state: PeerState::Active, cluster_id: 1, boot_id: 2, sequence: seq };
            let mut b = repr.to_bytes(&key(3));
            b[i] ^= x;
            let mut rx = Receiver::new(key(3), 1, Role::Primary);
            proptest::prop_assert!(rx.receive(&b).is_err());
        }
    }
}
