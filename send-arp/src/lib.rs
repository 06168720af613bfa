//! `send-arp`: gratuitous ARP for a floating address, as Piranha's `send_arp` sent it; a
//! library pulse calls directly and a command-line tool.
//!
//! Map:
//! - [`frame`]: the 60-byte frame, built with `ipvs_core::wire` (sans-IO, pure).
//! - [`mac`]: MAC addresses as Piranha parsed them.
//! - [`announce`](mod@announce): the I/O shell: interface look-up in `/sys/class/net`, a send-only
//!   AF_PACKET socket ([`ArpSender`]), and [`announce()`] (N frames, an interval apart).
//! - [`cli`]: the command line (Piranha's form and the short one) and [`run`], which the
//!   binary calls.
//!
//! For pulse: `announce("eth0:1", vip, &Announce::PULSE)` on takeover does what Piranha's
//! pulse did with five `send_arp` runs; it blocks for the intervals, so call it from a thread.
#![forbid(unsafe_code)]

pub mod announce;
pub mod cli;
pub mod frame;
pub mod mac;

pub use announce::{Announce, ArpSender, Interface, SendArpError, Sent, announce};
pub use cli::{Cli, Invocation, UsageError};
pub use frame::{FRAME_LEN, Kind, gratuitous_frame};

/// Carries out an invocation of the binary; returns what was sent.
pub fn run(invocation: &Invocation) -> Result<Sent, SendArpError> {
    match invocation {
        Invocation::Piranha {
            ifname,
            src_ip,
            src_mac,
            targ_ip: _,
            targ_mac,
        } => {
            // Piranha sent SRC_MAC whatever the interface's own address: so do we.
            let sender = ArpSender::open(ifname)?;
            sender.send(&gratuitous_frame(Kind::Reply, *src_ip, *src_mac, *targ_mac))?;
            Ok(Sent {
                ifname: sender.interface().name.clone(),
                mac: *src_mac,
                frames: 1,
            })
        }
        Invocation::Announce { ifname, ip, opts } => announce(ifname, *ip, opts),
    }
}
