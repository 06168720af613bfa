//! The command line: Piranha's form and the friendly one, resolved into an [`Invocation`].
//!
//! ```text
//! send-arp [-i DEV] SRC_IP SRC_MAC TARG_IP TARG_MAC     Piranha's send_arp: one frame
//! send-arp [-i DEV] IP [--count N] [--interval SECS] [--request|--reply]
//! ```
//!
//! Parsing is pure: nothing here touches the network.

use std::net::Ipv4Addr;
use std::time::Duration;

use clap::Parser;
use ipvs_core::wire::EthernetAddress;

use crate::announce::Announce;
use crate::frame::Kind;
use crate::mac::{MacError, parse_mac};

/// Sends gratuitous ARP for a floating address; accepts Piranha's send_arp arguments.
///
/// Piranha's form `send-arp [-i DEV] SRC_IP SRC_MAC TARG_IP TARG_MAC` sends one ARP reply
/// announcing SRC_IP at SRC_MAC to the Ethernet destination TARG_MAC (TARG_IP is checked but,
/// as in Piranha, not used). The short form `send-arp -i DEV IP` announces IP at DEV's own
/// MAC address to the broadcast address.
///
/// Exit status: 0 frames sent, 1 failure (interface, socket, send), 2 usage error.
#[derive(Debug, Parser)]
#[command(name = "send-arp", version)]
pub struct Cli {
    /// Interface to send on; an alias label such as eth0:1 means eth0.
    #[arg(short = 'i', value_name = "DEV", default_value = "eth0")]
    pub interface: String,

    /// Frames to send, one interval apart (short form only) [default: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub count: Option<u32>,

    /// Seconds between frames, fractions allowed (short form only) [default: 1].
    #[arg(long, value_name = "SECS", value_parser = parse_interval)]
    pub interval: Option<Duration>,

    /// Send ARP requests (RFC 5227 announcements) instead of replies (short form only).
    #[arg(long, conflicts_with = "reply")]
    pub request: bool,

    /// Send ARP replies, Piranha's frame (the default; short form only).
    #[arg(long)]
    pub reply: bool,

    /// IP, or SRC_IP SRC_MAC TARG_IP TARG_MAC (Piranha's form).
    #[arg(value_name = "ARGS", required = true, num_args = 1..=4)]
    pub positional: Vec<String>,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Piranha's form: one frame, exactly as given.
    Piranha {
        /// Interface as given (alias label stripped when sending).
        ifname: String,
        /// SRC_IP: sender and target IP of the ARP packet.
        src_ip: Ipv4Addr,
        /// SRC_MAC: Ethernet source, sender and target MAC of the ARP packet.
        src_mac: EthernetAddress,
        /// TARG_IP: validated, not used in the frame (Piranha never read it).
        targ_ip: Ipv4Addr,
        /// TARG_MAC: the Ethernet destination.
        targ_mac: EthernetAddress,
    },
    /// The short form: announce `ip` at the interface's own MAC.
    Announce {
        /// Interface as given.
        ifname: String,
        /// The address announced.
        ip: Ipv4Addr,
        /// Count, interval and kind.
        opts: Announce,
    },
}

/// A command line that does not say something `send-arp` can do (exit status 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// Two or three positional arguments.
    #[error("expected IP, or SRC_IP SRC_MAC TARG_IP TARG_MAC; got {0} arguments")]
    Positionals(usize),
    /// An option of the short form with Piranha's form.
    #[error("--{0} applies to the short form `send-arp -i DEV IP`, not to Piranha's form")]
    OptionWithPiranhaForm(&'static str),
    /// Not a dotted-quad IPv4 address.
    #[error("{what} {text:?} is not an IPv4 address (a.b.c.d)")]
    Ip {
        /// Which argument.
        what: &'static str,
        /// Its text.
        text: String,
    },
    /// Not a MAC address.
    #[error("{what}: {source}")]
    Mac {
        /// Which argument.
        what: &'static str,
        /// Why.
        #[source]
        source: MacError,
    },
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.0..=3600.0).contains(&secs) {
        return Err(format!("{text:?}: the interval must be 0 to 3600 seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{text:?}: {e}"))
}

fn ip(what: &'static str, text: &str) -> Result<Ipv4Addr, UsageError> {
    text.parse().map_err(|_| UsageError::Ip {
        what,
        text: text.to_owned(),
    })
}

fn mac(what: &'static str, text: &str) -> Result<EthernetAddress, UsageError> {
    parse_mac(text).map_err(|source| UsageError::Mac { what, source })
}

impl Cli {
    /// Resolves the parsed arguments into one of the two forms.
    pub fn invocation(&self) -> Result<Invocation, UsageError> {
        let ifname = self.interface.clone();
        match self.positional.as_slice() {
            [src_ip, src_mac, targ_ip, targ_mac] => {
                for (given, name) in [
                    (self.count.is_some(), "count"),
                    (self.interval.is_some(), "interval"),
                    (self.request, "request"),
                    (self.reply, "reply"),
                ] {
                    if given {
                        return Err(UsageError::OptionWithPiranhaForm(name));
                    }
                }
                Ok(Invocation::Piranha {
                    ifname,
                    src_ip: ip("SRC_IP", src_ip)?,
                    src_mac: mac("SRC_MAC", src_mac)?,
                    targ_ip: ip("TARG_IP", targ_ip)?,
                    targ_mac: mac("TARG_MAC", targ_mac)?,
                })
            }
            [addr] => {
                let defaults = Announce::default();
                Ok(Invocation::Announce {
                    ifname,
                    ip: ip("IP", addr)?,
                    opts: Announce {
                        count: self.count.unwrap_or(defaults.count),
                        interval: self.interval.unwrap_or(defaults.interval),
                        kind: if self.request {
                            Kind::Request
                        } else {
                            Kind::Reply
                        },
                    },
                })
            }
            other => Err(UsageError::Positionals(other.len())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Invocation, String> {
        let cli = Cli::try_parse_from(std::iter::once("send-arp").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.invocation().map_err(|e| e.to_string())
    }

    const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
    const MAC: EthernetAddress = EthernetAddress([0x02, 0, 0xc6, 0x12, 0, 0x02]);

    #[test]
    fn piranha_form_as_pulse_calls_it() {
        assert_eq!(
            parse(&[
                "-i",
                "eth0",
                "198.18.0.10",
                "0200C6120002",
                "198.18.0.255",
                "ffffffffffff"
            ]),
            Ok(Invocation::Piranha {
                ifname: "eth0".to_owned(),
                src_ip: VIP,
                src_mac: MAC,
                targ_ip: Ipv4Addr::new(198, 18, 0, 255),
                targ_mac: EthernetAddress::BROADCAST,
            })
        );
    }

    #[test]
    fn piranha_form_defaults_to_eth0() {
        let inv = parse(&[
            "198.18.0.10",
            "02:00:c6:12:00:02",
            "198.18.0.1",
            "ffffffffffff",
        ]);
        assert!(matches!(inv, Ok(Invocation::Piranha { ref ifname, .. }) if ifname == "eth0"));
    }

    #[test]
    fn piranha_form_checks_every_value() {
        let base = [
            "198.18.0.10",
            "0200C6120002",
            "198.18.0.255",
            "ffffffffffff",
        ];
        for (i, what) in ["SRC_IP", "SRC_MAC", "TARG_IP", "TARG_MAC"]
            .iter()
            .enumerate()
        {
            let mut args = base;
            args[i] = "bogus";
            let err = parse(&args).expect_err("bad value");
            assert!(err.starts_with(what), "{err}");
        }
    }

    #[test]
    fn piranha_form_takes_no_short_form_options() {
        for opt in [
            &["--count", "2"][..],
            &["--interval", "0.5"],
            &["--request"],
            &["--reply"],
        ] {
            let mut args = vec![
                "198.18.0.10",
                "0200C6120002",
                "198.18.0.255",
                "ffffffffffff",
            ];
            args.extend_from_slice(opt);
            assert!(parse(&args).is_err(), "{opt:?}");
        }
    }

    #[test]
    fn short_form_defaults() {
        assert_eq!(
            parse(&["-i", "eth0:1", "198.18.0.10"]),
            Ok(Invocation::Announce {
                ifname: "eth0:1".to_owned(),
                ip: VIP,
                opts: Announce::default(),
            })
        );
        assert_eq!(Announce::default().count, 1);
        assert_eq!(Announce::default().interval, Duration::from_secs(1));
        assert_eq!(Announce::default().kind, Kind::Reply);
    }

    #[test]
    fn short_form_options() {
        let inv = parse(&[
            "-i",
            "eth1",
            "198.18.0.10",
            "--count",
            "5",
            "--interval",
            "0.25",
            "--request",
        ]);
        assert_eq!(
            inv,
            Ok(Invocation::Announce {
                ifname: "eth1".to_owned(),
                ip: VIP,
                opts: Announce {
                    count: 5,
                    interval: Duration::from_millis(250),
                    kind: Kind::Request,
                },
            })
        );
        let inv = parse(&["198.18.0.10", "--reply"]).expect("valid");
        assert!(matches!(inv, Invocation::Announce { opts, .. } if opts.kind == Kind::Reply));
    }

    #[test]
    fn usage_errors() {
        for args in [
            &[][..],
            &["198.18.0.10", "0200C6120002"],
            &["198.18.0.10", "0200C6120002", "198.18.0.255"],
            &[
                "198.18.0.10",
                "0200C6120002",
                "198.18.0.255",
                "ffffffffffff",
                "x",
            ],
            &["198.18.0.10", "--count", "0"],
            &["198.18.0.10", "--interval", "-1"],
            &["198.18.0.10", "--interval", "nan"],
            &["198.18.0.10", "--request", "--reply"],
            &["vip.example"],
            &["-i"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }
}
