//! The command entry being built (`struct ipvs_command_entry` plus the option bits), and
//! the checks `process_options` runs once all options are read.

use std::net::{IpAddr, Ipv4Addr};

use super::super::table::{DaemonState, Method, Netmask, Protocol, SchedFlags, ServiceKey};
use super::super::table::{TunCsum, Tunnel};
use super::*;

/// `-M` as typed: an IPv4 mask, or an IPv6 prefix length (`atoi`).
#[derive(Debug, Clone, Copy)]
enum Mask {
    V4(Ipv4Addr),
    Prefix(u8),
}

/// Everything the options set, with ipvsadm's initial values.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) cmd: u8,
    options: u64,
    proto: Option<Protocol>,
    svc_v6: bool,
    addr: IpAddr,
    port: u16,
    fwmark: u32,
    sched: String,
    persistent: Option<u32>,
    mask: Mask,
    pe: Option<String>,
    ops: bool,
    sched_flags_arg: String,
    d_addr: IpAddr,
    d_port: u16,
    method: Method,
    weight: u16,
    upper: u32,
    lower: u32,
    tun_type: u8,
    tun_port: u16,
    tun_flags: u8,
    pub(super) daemon_state: DaemonState,
    mcast_ifn: String,
    syncid: u8,
    sync_maxlen: Option<u16>,
    mcast_group: Option<IpAddr>,
    mcast_port: Option<u16>,
    mcast_ttl: Option<u8>,
    pub(super) timeouts: [u32; 3],
}

/// `atoi`: optional whitespace and sign, then digits up to the first non-digit; 0 if none.
fn atoi(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, d) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut n: i64 = 0;
    for b in d.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg { -n } else { n }
}

fn number(arg: Option<&str>, min: i64, max: i64, err: CliError) -> Result<i64, CliError> {
    arg.and_then(|a| string_to_number(a, min, max)).ok_or(err)
}

impl Entry {
    pub(super) fn new() -> Entry {
        Entry {
            cmd: 0,
            options: 0,
            proto: None,
            svc_v6: false,
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            fwmark: 0,
            sched: String::new(),
            persistent: None,
            mask: Mask::V4(Ipv4Addr::BROADCAST),
            pe: None,
            ops: false,
            sched_flags_arg: String::new(),
            d_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            d_port: 0,
            method: Method::Route,
            weight: 1,
            upper: 0,
            lower: 0,
            tun_type: 0,
            tun_port: 0,
            tun_flags: 0,
            daemon_state: DaemonState::Master,
            mcast_ifn: String::new(),
            syncid: 0,
            sync_maxlen: None,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
            timeouts: [0; 3],
        }
    }

    fn has(&self, o: u32) -> bool {
        self.options & (1 << o) != 0
    }

    /// `set_option`: each option at most once.
    fn set(&mut self, o: u32) -> Result<(), CliError> {
        if self.has(o) {
            return Err(CliError::MultipleOptions(OPTNAMES[o as usize]));
        }
        self.options |= 1 << o;
        Ok(())
    }

    /// One option after the command, in argv order (the body of `parse_options`' loop).
    pub(super) fn option(
        &mut self,
        tag: T,
        arg: Option<String>,
        word: String,
    ) -> Result<(), CliError> {
        let a = arg.as_deref();
        match tag {
            T::Tcp | T::Udp | T::Sctp => {
                self.set(O_SERVICE)?;
                self.proto = Some(match tag {
                    T::Tcp => Protocol::Tcp,
                    T::Udp => Protocol::Udp,
                    _ => Protocol::Sctp,
                });
                let p = a
                    .and_then(parse_service)
                    .ok_or(CliError::IllegalVirtualAddress)?;
                self.addr = p.addr;
                self.svc_v6 = p.addr.is_ipv6();
                if self.svc_v6 {
                    self.mask = Mask::Prefix(128);
                }
                if let Some(port) = p.port {
                    self.port = port;
                }
            }
            T::Fwmark => {
                self.set(O_SERVICE)?;
                self.svc_v6 = false;
                self.proto = Some(Protocol::Tcp);
                self.fwmark = fwmark(a.unwrap_or_default())?;
            }
            T::Sched => {
                self.set(O_SCHEDULER)?;
                self.sched = cut(a.unwrap_or_default(), 15);
            }
            T::Persistent => {
                self.set(O_PERSISTENT)?;
                self.persistent = Some(match a {
                    None => DEFAULT_PERSISTENT_TIMEOUT,
                    Some(s) => timeout(s, 1)?,
                });
            }
            T::Netmask => {
                self.set(O_NETMASK)?;
                let s = a.unwrap_or_default();
                self.mask = if self.svc_v6 {
                    let n = atoi(s);
                    Mask::Prefix(
                        u8::try_from(n)
                            .ok()
                            .filter(|n| (1..=128).contains(n))
                            .ok_or(CliError::IllegalIpv6Netmask)?,
                    )
                } else {
                    Mask::V4(parse_netmask(s).ok_or(CliError::IllegalNetmask)?)
                };
            }
            T::Real => {
                self.set(O_SERVER)?;
                let p = a
                    .and_then(parse_service)
                    .ok_or(CliError::IllegalRealAddress)?;
                self.d_addr = p.addr;
                // Without a port, the service port as parsed so far.
                self.d_port = p.port.unwrap_or(self.port);
            }
            T::Masq | T::Ipip | T::Gate => {
                self.set(O_FORWARD)?;
                self.method = match tag {
                    T::Masq => Method::Masq,
                    T::Ipip => Method::Tunnel,
                    _ => Method::Route,
                };
            }
            T::Weight => {
                self.set(O_WEIGHT)?;
                let n = number(a, 0, 65535, CliError::IllegalWeight)?;
                self.weight = u16::try_from(n).map_err(|_| CliError::IllegalWeight)?;
            }
            T::Upper => {
                self.set(O_UTHRESHOLD)?;
                let n = number(a, 0, i64::from(i32::MAX), CliError::IllegalUThreshold)?;
                self.upper = u32::try_from(n).map_err(|_| CliError::IllegalUThreshold)?;
            }
            T::Lower => {
                self.set(O_LTHRESHOLD)?;
                let n = number(a, 0, i64::from(i32::MAX), CliError::IllegalLThreshold)?;
                self.lower = u32::try_from(n).map_err(|_| CliError::IllegalLThreshold)?;
            }
            T::Conn => self.set(O_CONNECTION)?,
            T::Numeric => self.set(O_NUMERIC)?,
            T::McastIf => {
                self.set(O_MCAST)?;
                self.mcast_ifn = cut(a.unwrap_or_default(), 15);
            }
            T::Syncid => {
                self.set(O_SYNCID)?;
                let n = number(a, 0, 255, CliError::IllegalSyncid)?;
                self.syncid = u8::try_from(n).map_err(|_| CliError::IllegalSyncid)?;
            }
            T::Timeout => self.set(O_TIMEOUT)?,
            T::Daemon => self.set(O_DAEMON)?,
            T::Stats => self.set(O_STATS)?,
            T::Rate => self.set(O_RATE)?,
            T::Thresholds => self.set(O_THRESHOLDS)?,
            T::PersistConn => self.set(O_PERSISTENTCONN)?,
            T::NoSort => self.set(O_NOSORT)?,
            T::Sort => {} // a no-op kept for compatibility
            T::Exact => self.set(O_EXACT)?,
            T::Ipv6 => {
                if self.fwmark == 0 {
                    return Err(CliError::Ipv6BeforeFwmark);
                }
                self.svc_v6 = true;
                self.mask = Mask::Prefix(128);
            }
            T::Ops => {
                self.set(O_ONEPACKET)?;
                self.ops = true;
            }
            T::Pe => {
                self.set(O_PE)?;
                self.pe = Some(cut(a.unwrap_or_default(), 16));
            }
            T::SchedFlags => {
                self.set(O_SCHED_FLAGS)?;
                self.sched_flags_arg = cut(a.unwrap_or_default(), 127);
            }
            T::McastGroup => {
                self.set(O_MCAST_GROUP)?;
                let s = a.unwrap_or_default();
                let group: Option<IpAddr> = if s.contains(':') {
                    s.parse::<std::net::Ipv6Addr>()
                        .ok()
                        .filter(|g| g.is_multicast())
                        .map(IpAddr::V6)
                } else {
                    s.parse::<Ipv4Addr>()
                        .ok()
                        .filter(|g| g.is_multicast())
                        .map(IpAddr::V4)
                };
                self.mcast_group = Some(group.ok_or_else(|| {
                    if s.contains(':') {
                        CliError::InvalidMcastGroup6(s.to_string())
                    } else {
                        CliError::InvalidMcastGroup4(s.to_string())
                    }
                })?);
            }
            T::McastPort => {
                self.set(O_MCAST_PORT)?;
                let n = number(a, 1, 65535, CliError::IllegalMcastPort)?;
                self.mcast_port = u16::try_from(n).ok();
            }
            T::McastTtl => {
                self.set(O_MCAST_TTL)?;
                let n = number(a, 1, 255, CliError::IllegalMcastTtl)?;
                self.mcast_ttl = u8::try_from(n).ok();
            }
            T::SyncMaxlen => {
                self.set(O_SYNC_MAXLEN)?;
                let n = number(a, 1, 65535 - 20 - 8, CliError::IllegalSyncMaxlen)?;
                self.sync_maxlen = u16::try_from(n).ok();
            }
            T::TunInfo => self.set(O_TUN_INFO)?,
            T::TunType => {
                self.set(O_TUN_TYPE)?;
                self.tun_type = match a {
                    Some("ipip") => 0,
                    Some("gue") => 1,
                    Some("gre") => 2,
                    _ => return Err(CliError::IllegalTunnelType),
                };
            }
            T::TunPort => {
                self.set(O_TUN_PORT)?;
                let n = number(a, 1, 65535, CliError::IllegalTunnelPort)?;
                self.tun_port = u16::try_from(n).map_err(|_| CliError::IllegalTunnelPort)?;
            }
            T::TunNoCsum => self.set(O_TUN_NOCSUM)?,
            T::TunCsum => {
                self.set(O_TUN_CSUM)?;
                self.tun_flags |= 1;
            }
            T::TunRemCsum => {
                self.set(O_TUN_REMCSUM)?;
                self.tun_flags |= 2;
            }
            T::Cmd(_) | T::StartDaemon | T::StopDaemon | T::Help | T::Version => {
                return Err(CliError::InvalidOption(word));
            }
        }
        Ok(())
    }

    /// `parse_sched_flags`, checked against `-s` or `wlc`.
    fn sched_flags(&self) -> Result<SchedFlags, CliError> {
        let sched = if self.sched.is_empty() {
            DEFAULT_SCHEDULER
        } else {
            self.sched.as_str()
        };
        let mut bits = 0;
        let mut any = false;
        for flag in self.sched_flags_arg.split(',').filter(|f| !f.is_empty()) {
            any = true;
            let (bit, only) = match flag {
                "flag-1" => (SchedFlags::SCHED1, None),
                "flag-2" => (SchedFlags::SCHED2, None),
                "flag-3" => (SchedFlags::SCHED3, None),
                "sh-fallback" => (SchedFlags::SCHED1, Some("sh")),
                "sh-port" => (SchedFlags::SCHED2, Some("sh")),
                "mh-fallback" => (SchedFlags::SCHED1, Some("mh")),
                "mh-port" => (SchedFlags::SCHED2, Some("mh")),
                _ => return Err(CliError::InvalidSchedFlag(flag.to_string())),
            };
            if only.is_some_and(|s| s != sched) {
                return Err(CliError::IncompatibleSchedFlag(flag.to_string()));
            }
            bits |= bit;
        }
        if !any {
            // ipvsadm crashes on a `-b` made only of commas; lvsadm refuses it.
            return Err(CliError::InvalidSchedFlag(self.sched_flags_arg.clone()));
        }
        Ok(SchedFlags(bits))
    }

    /// `generic_opt_check`: options in `optnames[]` order, first fault wins.
    fn generic_opt_check(&self) -> Result<(), CliError> {
        let i = usize::from(self.cmd);
        let (Some(row), Some(&command)) = (LEGAL.get(i), CMDNAMES.get(i)) else {
            return Ok(());
        };
        let mut last: Option<&'static str> = None;
        for (j, rule) in row.bytes().enumerate() {
            let option = OPTNAMES[j];
            if !self.has(j as u32) {
                if rule == b'+' {
                    return Err(CliError::MissingOption { option, command });
                }
                continue;
            }
            match rule {
                b'x' => return Err(CliError::IllegalOption { option, command }),
                b'1' => match last {
                    None => last = Some(option),
                    Some(other) => {
                        return Err(CliError::ConflictingOptions {
                            option,
                            other,
                            command,
                        });
                    }
                },
                _ => {}
            }
        }
        Ok(())
    }

    /// `tunnel_opt_check` against `tunnel_types_v_options`.
    fn tunnel_opt_check(&self) -> Result<(), CliError> {
        const NAMES: [&str; 3] = ["ipip", "gue", "gre"];
        const RULES: [&[u8; 4]; 3] = [b"xxxx", b"+111", b"x11x"];
        const OPTS: [u32; 4] = [O_TUN_PORT, O_TUN_NOCSUM, O_TUN_CSUM, O_TUN_REMCSUM];
        let t = usize::from(self.tun_type.min(2));
        let tunnel = NAMES[t];
        let mut last: Option<&'static str> = None;
        for (j, &o) in OPTS.iter().enumerate() {
            let option = OPTNAMES[o as usize];
            let rule = RULES[t][j];
            if !self.has(o) {
                if rule == b'+' {
                    return Err(CliError::MissingTunnelOption { option, tunnel });
                }
                continue;
            }
            match rule {
                b'x' => return Err(CliError::IllegalTunnelOption { option, tunnel }),
                b'1' => match last {
                    None => last = Some(option),
                    Some(other) => {
                        return Err(CliError::ConflictingTunnelOptions {
                            option,
                            other,
                            tunnel,
                        });
                    }
                },
                _ => {}
            }
        }
        Ok(())
    }

    fn key(&self) -> Option<ServiceKey> {
        if !self.has(O_SERVICE) {
            return None;
        }
        if self.fwmark != 0 {
            return Some(ServiceKey::Fwmark {
                mark: self.fwmark,
                ipv6: self.svc_v6,
            });
        }
        Some(ServiceKey::Inet {
            proto: self.proto.unwrap_or(Protocol::Tcp),
            addr: self.addr,
            port: self.port,
        })
    }

    fn tunnel(&self) -> Tunnel {
        let csum = match self.tun_flags {
            0 => TunCsum::NoCsum,
            1 => TunCsum::Csum,
            _ => TunCsum::RemCsum,
        };
        match self.tun_type {
            1 => Tunnel::Gue {
                port: self.tun_port,
                csum,
            },
            2 => Tunnel::Gre { csum },
            _ => Tunnel::Ipip,
        }
    }

    /// The checks after the option loop, in `process_options` order, and the command.
    pub(super) fn finish(mut self) -> Result<Command, CliError> {
        let sched_flags = if self.sched_flags_arg.is_empty() {
            SchedFlags::default()
        } else {
            self.sched_flags()?
        };
        self.generic_opt_check()?;
        let key = self.key();
        let need_key = || {
            key.ok_or(CliError::MissingOption {
                option: OPTNAMES[O_SERVICE as usize],
                command: CMDNAMES[usize::from(self.cmd)],
            })
        };
        match self.cmd {
            ADD | EDIT => {
                if self.fwmark == 0 && self.port == 0 && self.persistent.is_none() {
                    return Err(CliError::ZeroPort);
                }
                if self.ops && self.fwmark == 0 && self.proto != Some(Protocol::Udp) {
                    return Err(CliError::OpsNotUdp);
                }
                let key = need_key()?;
                let netmask = match (key.is_ipv6(), self.mask) {
                    (false, Mask::V4(m)) => Netmask::V4(m),
                    (true, Mask::Prefix(p)) => Netmask::V6(p),
                    (v6, _) => Netmask::full(v6),
                };
                let spec = ServiceSpec {
                    key,
                    scheduler: if self.sched.is_empty() {
                        DEFAULT_SCHEDULER.to_string()
                    } else {
                        self.sched.clone()
                    },
                    sched_flags,
                    persistent: self.persistent,
                    netmask,
                    pe_name: self.pe.clone(),
                    ops: self.ops,
                };
                Ok(if self.cmd == ADD {
                    Command::AddService(spec)
                } else {
                    Command::EditService(spec)
                })
            }
            ADDDEST | EDITDEST => {
                let service = need_key()?;
                if self.fwmark == 0 && matches!(self.method, Method::Tunnel | Method::Route) {
                    self.d_port = self.port;
                }
                if self.d_addr.is_ipv6() != self.svc_v6 && self.method != Method::Tunnel {
                    return Err(CliError::DifferentFamily);
                }
                let tun_opts = [
                    O_TUN_TYPE,
                    O_TUN_PORT,
                    O_TUN_NOCSUM,
                    O_TUN_CSUM,
                    O_TUN_REMCSUM,
                ];
                if tun_opts.iter().any(|&o| self.has(o)) && self.method != Method::Tunnel {
                    return Err(CliError::TunnelOptionsConflict);
                }
                self.tunnel_opt_check()?;
                let dest = DestSpec {
                    addr: self.d_addr,
                    port: self.d_port,
                    method: self.method,
                    tunnel: self.tunnel(),
                    weight: self.weight,
                    upper: self.upper,
                    lower: self.lower,
                };
                Ok(if self.cmd == ADDDEST {
                    Command::AddDest { service, dest }
                } else {
                    Command::EditDest { service, dest }
                })
            }
            LIST => {
                let conflict = (self.has(O_CONNECTION)
                    || self.has(O_TIMEOUT)
                    || self.has(O_DAEMON))
                    && (self.has(O_STATS) || self.has(O_RATE) || self.has(O_THRESHOLDS))
                    || (self.has(O_TIMEOUT) || self.has(O_DAEMON)) && self.has(O_PERSISTENTCONN);
                if conflict {
                    return Err(CliError::ListConflict);
                }
                Ok(Command::List(ListOptions {
                    numeric: self.has(O_NUMERIC),
                    connections: self.has(O_CONNECTION),
                    service: key,
                    timeout: self.has(O_TIMEOUT),
                    daemon: self.has(O_DAEMON),
                    stats: self.has(O_STATS),
                    rate: self.has(O_RATE),
                    thresholds: self.has(O_THRESHOLDS),
                    persistent_conn: self.has(O_PERSISTENTCONN),
                    nosort: self.has(O_NOSORT),
                    exact: self.has(O_EXACT),
                    tun_info: self.has(O_TUN_INFO),
                }))
            }
            DEL => Ok(Command::DeleteService(need_key()?)),
            DELDEST => Ok(Command::DeleteDest {
                service: need_key()?,
                addr: self.d_addr,
                port: self.d_port,
            }),
            FLUSH => Ok(Command::Clear),
            RESTORE => Ok(Command::Restore),
            SAVE => Ok(Command::Save {
                numeric: self.has(O_NUMERIC),
            }),
            ZERO => Ok(Command::Zero(key)),
            TIMEOUT => Ok(Command::SetTimeouts {
                tcp: self.timeouts[0],
                tcpfin: self.timeouts[1],
                udp: self.timeouts[2],
            }),
            STARTD => Ok(Command::StartDaemon(DaemonSpec {
                state: self.daemon_state,
                mcast_ifn: if self.mcast_ifn.is_empty() {
                    DEFAULT_MCAST_IFN.to_string()
                } else {
                    self.mcast_ifn.clone()
                },
                syncid: self.syncid,
                sync_maxlen: self.sync_maxlen,
                mcast_group: self.mcast_group,
                mcast_port: self.mcast_port,
                mcast_ttl: self.mcast_ttl,
            })),
            _ => Ok(Command::StopDaemon {
                state: self.daemon_state,
                syncid: self.has(O_SYNCID).then_some(self.syncid),
            }),
        }
    }
}
