//! Heartbeats from a third party, for pulse's lab tests: frames built with pulse's own wire
//! module (`pulse::wire`), and `lab-heartbeat` (`src/bin/lab-heartbeat.rs`) run in a lab
//! namespace to send them with a forged source address or to capture real ones.
//!
//! Pure helpers (frames, hex, finding a UDP payload) and two shortcuts that run the tool in
//! a lab: [`send_spoofed`] and [`start_capture`] (read its frames with [`captured`]).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use pulse::wire::auth::{self, AuthKey};
use pulse::wire::{PeerState, Role, piranha};

use crate::lab::{Lab, LabError, Proc, Role as LabRole};
use crate::tools::ipip::PROTO_UDP;

/// pulse's default heartbeat port (lvs.cf `heartbeat_port`).
pub const PORT: u16 = 539;

/// Piranha's 4-byte LVS heartbeat for `state` (running / stopped), as a Piranha director
/// sends it.
pub fn piranha(state: PeerState) -> Vec<u8> {
    piranha::Repr::lvs(state).to_bytes().to_vec()
}

/// An authenticated heartbeat signed with `key`.
///
/// # Panics
/// If `key` is shorter than pulse accepts (a bug in the test).
pub fn authenticated(
    key: &[u8],
    role: Role,
    state: PeerState,
    cluster_id: u32,
    boot_id: u64,
    sequence: u64,
) -> Vec<u8> {
    let key = AuthKey::new(key).expect("the test's key is long enough");
    auth::Repr {
        role,
        state,
        cluster_id,
        boot_id,
        sequence,
    }
    .to_bytes(&key)
    .to_vec()
}

/// What an authenticated frame announces, read without the key (no check of its MAC):
/// `(state, boot id, sequence)`. `None` for anything else.
pub fn announced(frame: &[u8]) -> Option<(PeerState, u64, u64)> {
    let p = auth::Packet::new_checked(frame).ok()?;
    let state = match p.state() {
        1 => PeerState::Active,
        2 => PeerState::Standby,
        _ => return None,
    };
    Some((state, p.boot_id(), p.sequence()))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of a hex string (either case); `None` if it is not one.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let t = text.as_bytes();
    if !t.len().is_multiple_of(2) {
        return None;
    }
    t.chunks_exact(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

/// The UDP payload of the IPv4 packet `packet` if it is a datagram `from -> to` (addresses
/// and ports); `None` for anything else or a packet too short for its own lengths.
pub fn udp_payload(packet: &[u8], from: SocketAddrV4, to: SocketAddrV4) -> Option<&[u8]> {
    let (&vihl, _) = packet.split_first()?;
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < 20 || *packet.get(9)? != PROTO_UDP {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
    let ip = packet.get(..total)?;
    let addr = |at: usize| Some(Ipv4Addr::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3]));
    let udp = ip.get(ihl..)?;
    let port = |at: usize| Some(u16::from_be_bytes([*udp.get(at)?, *udp.get(at + 1)?]));
    let src = SocketAddrV4::new(addr(12)?, port(0)?);
    let dst = SocketAddrV4::new(addr(16)?, port(2)?);
    let len = usize::from(port(4)?);
    if src != from || dst != to || len < 8 {
        return None;
    }
    udp.get(8..len)
}

/// Runs `lab-heartbeat send` in `role`'s namespace: each of `frames`, `count` times,
/// `interval` apart, from the forged source `from` to `to`.
pub fn send_spoofed(
    lab: &Lab,
    role: LabRole,
    from: SocketAddrV4,
    to: SocketAddrV4,
    frames: &[Vec<u8>],
    count: u16,
    interval: Duration,
) -> Result<(), LabError> {
    let bin = crate::bin("lab-heartbeat").to_string_lossy().into_owned();
    let mut args = vec![
        bin,
        "send".to_owned(),
        "--from".to_owned(),
        from.to_string(),
        "--to".to_owned(),
        to.to_string(),
        "--count".to_owned(),
        count.to_string(),
        "--interval-ms".to_owned(),
        interval.as_millis().to_string(),
    ];
    for f in frames {
        args.push("--hex".to_owned());
        args.push(hex(f));
    }
    lab.run(role, &args).map(drop)
}

/// Starts `lab-heartbeat capture` in `role`'s namespace for datagrams `from -> to` (at most
/// `count`), and waits until it listens.
pub fn start_capture(
    lab: &Lab,
    role: LabRole,
    from: SocketAddrV4,
    to: SocketAddrV4,
    count: u32,
) -> Result<Proc<'_>, LabError> {
    let bin = crate::bin("lab-heartbeat").to_string_lossy().into_owned();
    let args = [
        bin,
        "capture".to_owned(),
        "--from".to_owned(),
        from.to_string(),
        "--to".to_owned(),
        to.to_string(),
        "--count".to_owned(),
        count.to_string(),
        "--lifetime-s".to_owned(),
        "120".to_owned(),
    ];
    let mut p = lab.spawn(role, args)?;
    p.wait_for_log("ready", Duration::from_secs(10))?;
    Ok(p)
}

/// The frames a capture has printed so far, in order.
pub fn captured(capture: &Proc<'_>) -> Vec<Vec<u8>> {
    capture
        .log()
        .lines()
        .filter_map(|l| l.strip_prefix("frame "))
        .filter_map(|h| unhex(h.trim()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::ipip::udp_datagram;

    #[test]
    fn hex_round_trips() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex(&b), "0001abff");
        assert_eq!(unhex("0001ABff"), Some(b.to_vec()));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn finds_the_payload_of_a_matching_datagram_only() {
        let a = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), PORT);
        let b = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 3), PORT);
        let p = udp_datagram(a, b, 1, b"beat").expect("fits");
        assert_eq!(udp_payload(&p, a, b), Some(&b"beat"[..]));
        assert_eq!(udp_payload(&p, b, a), None);
        assert_eq!(udp_payload(&p[..p.len() - 1], a, b), None);
        assert_eq!(udp_payload(&[], a, b), None);
    }

    #[test]
    fn frames_say_what_they_announce() {
        let key = [7u8; 32];
        let f = authenticated(&key, Role::Primary, PeerState::Standby, 3, 9, 4);
        assert_eq!(f.len(), auth::LEN);
        assert_eq!(announced(&f), Some((PeerState::Standby, 9, 4)));
        assert_eq!(announced(&piranha(PeerState::Active)), None);
        assert_eq!(piranha(PeerState::Active).len(), 4);
    }
}
