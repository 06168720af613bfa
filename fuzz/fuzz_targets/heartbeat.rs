//! Fuzz target: arbitrary datagrams through pulse's heartbeat parsers, as a receiving pulse
//! meets them: Piranha's 4-byte format and the authenticated one (with a replay window that
//! the input also drives: several datagrams per input, split on the first byte's count).
//! Contract: no panic, and nothing accepted that the key did not sign.
#![no_main]

use pulse::wire::auth::{AuthKey, Receiver};
use pulse::wire::piranha::{Packet, Repr};
use pulse::wire::{Format, Role, classify};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(key) = AuthKey::new(b"fuzzing-key-0123456789") else {
        return;
    };
    let mut rx = Receiver::new(key, 7, Role::Primary);
    let (n, rest) = data
        .split_first()
        .map_or((1, data), |(n, r)| (*n as usize % 8 + 1, r));
    let chunk = rest.len().div_ceil(n).max(1);
    for datagram in rest.chunks(chunk) {
        match classify(datagram) {
            Format::Authenticated => {
                // Random bytes cannot carry a valid HMAC under this key.
                assert!(rx.receive(datagram).is_err());
            }
            Format::Piranha => {
                if let Ok(p) = Packet::new_checked(datagram) {
                    let _ = Repr::parse(&p);
                }
            }
        }
    }
});
