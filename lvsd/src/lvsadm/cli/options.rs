//! ipvsadm.c's option tables: the popt table, `cmdnames[]`, `optnames[]` and
//! `commands_v_options`, transcribed.

use super::super::popt::{Arg, OptDef};

/// Option tags (popt `val`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum T {
    Cmd(u8),
    StartDaemon,
    StopDaemon,
    Help,
    Version,
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Sched,
    Persistent,
    Netmask,
    Real,
    Masq,
    Ipip,
    Gate,
    Weight,
    Upper,
    Lower,
    Numeric,
    Conn,
    McastIf,
    Syncid,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNoCsum,
    TunCsum,
    TunRemCsum,
}

// Command numbers, as CMD_* - 1 (index into CMDNAMES and LEGAL).
pub(super) const ADD: u8 = 0;
pub(super) const EDIT: u8 = 1;
pub(super) const DEL: u8 = 2;
pub(super) const FLUSH: u8 = 3;
pub(super) const LIST: u8 = 4;
pub(super) const ADDDEST: u8 = 5;
pub(super) const DELDEST: u8 = 6;
pub(super) const EDITDEST: u8 = 7;
pub(super) const TIMEOUT: u8 = 8;
pub(super) const STARTD: u8 = 9;
pub(super) const STOPD: u8 = 10;
pub(super) const RESTORE: u8 = 11;
pub(super) const SAVE: u8 = 12;
pub(super) const ZERO: u8 = 13;

pub(super) const CMDNAMES: [&str; 14] = [
    "add-service",
    "edit-service",
    "delete-service",
    "flush",
    "list",
    "add-server",
    "delete-server",
    "edit-server",
    "set",
    "start-daemon",
    "stop-daemon",
    "restore",
    "save",
    "zero",
];

/// `optnames[]`; the index is the option's bit (`OPTC_*`).
pub(super) const OPTNAMES: [&str; 34] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

/// `commands_v_options`, one string per command, one character per `OPTNAMES` entry:
/// `+` compulsory, `x` illegal, `1` exclusive, ` ` optional.
pub(super) const LEGAL: [&str; 14] = [
    "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // add-service
    "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // edit-service
    "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // delete-service
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // flush
    " 11xxxxxxxxx11       xxxxxxx xxxxx", // list
    "xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // add-server
    "xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx", // delete-server
    "xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // edit-server
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // set
    "xxxxxxxxxxx xxxxxxx xxxx    xxxxxx", // start-daemon
    "xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx", // stop-daemon
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // restore
    " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // save
    "xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // zero
];

pub(super) const O_NUMERIC: u32 = 0;
pub(super) const O_CONNECTION: u32 = 1;
pub(super) const O_SERVICE: u32 = 2;
pub(super) const O_SCHEDULER: u32 = 3;
pub(super) const O_PERSISTENT: u32 = 4;
pub(super) const O_NETMASK: u32 = 5;
pub(super) const O_SERVER: u32 = 6;
pub(super) const O_FORWARD: u32 = 7;
pub(super) const O_WEIGHT: u32 = 8;
pub(super) const O_UTHRESHOLD: u32 = 9;
pub(super) const O_LTHRESHOLD: u32 = 10;
pub(super) const O_MCAST: u32 = 11;
pub(super) const O_TIMEOUT: u32 = 12;
pub(super) const O_DAEMON: u32 = 13;
pub(super) const O_STATS: u32 = 14;
pub(super) const O_RATE: u32 = 15;
pub(super) const O_THRESHOLDS: u32 = 16;
pub(super) const O_PERSISTENTCONN: u32 = 17;
pub(super) const O_NOSORT: u32 = 18;
pub(super) const O_SYNCID: u32 = 19;
pub(super) const O_EXACT: u32 = 20;
pub(super) const O_ONEPACKET: u32 = 21;
pub(super) const O_PE: u32 = 22;
pub(super) const O_SCHED_FLAGS: u32 = 23;
pub(super) const O_MCAST_GROUP: u32 = 24;
pub(super) const O_MCAST_PORT: u32 = 25;
pub(super) const O_MCAST_TTL: u32 = 26;
pub(super) const O_SYNC_MAXLEN: u32 = 27;
pub(super) const O_TUN_INFO: u32 = 28;
pub(super) const O_TUN_TYPE: u32 = 29;
pub(super) const O_TUN_PORT: u32 = 30;
pub(super) const O_TUN_NOCSUM: u32 = 31;
pub(super) const O_TUN_CSUM: u32 = 32;
pub(super) const O_TUN_REMCSUM: u32 = 33;

/// ipvsadm's popt option table.
pub(super) const OPTIONS: [OptDef<T>; 58] = [
    ("add-service", Some('A'), Arg::None, T::Cmd(ADD)),
    ("edit-service", Some('E'), Arg::None, T::Cmd(EDIT)),
    ("delete-service", Some('D'), Arg::None, T::Cmd(DEL)),
    ("clear", Some('C'), Arg::None, T::Cmd(FLUSH)),
    ("list", Some('L'), Arg::None, T::Cmd(LIST)),
    ("list", Some('l'), Arg::None, T::Cmd(LIST)),
    ("zero", Some('Z'), Arg::None, T::Cmd(ZERO)),
    ("add-server", Some('a'), Arg::None, T::Cmd(ADDDEST)),
    ("edit-server", Some('e'), Arg::None, T::Cmd(EDITDEST)),
    ("delete-server", Some('d'), Arg::None, T::Cmd(DELDEST)),
    ("set", None, Arg::None, T::Cmd(TIMEOUT)),
    ("help", Some('h'), Arg::None, T::Help),
    ("version", Some('v'), Arg::None, T::Version),
    ("restore", Some('R'), Arg::None, T::Cmd(RESTORE)),
    ("save", Some('S'), Arg::None, T::Cmd(SAVE)),
    ("start-daemon", None, Arg::Required, T::StartDaemon),
    ("stop-daemon", None, Arg::Required, T::StopDaemon),
    ("tcp-service", Some('t'), Arg::Required, T::Tcp),
    ("udp-service", Some('u'), Arg::Required, T::Udp),
    ("sctp-service", None, Arg::Required, T::Sctp),
    ("fwmark-service", Some('f'), Arg::Required, T::Fwmark),
    ("scheduler", Some('s'), Arg::Required, T::Sched),
    ("persistent", Some('p'), Arg::Optional, T::Persistent),
    ("netmask", Some('M'), Arg::Required, T::Netmask),
    ("real-server", Some('r'), Arg::Required, T::Real),
    ("masquerading", Some('m'), Arg::None, T::Masq),
    ("ipip", Some('i'), Arg::None, T::Ipip),
    ("gatewaying", Some('g'), Arg::None, T::Gate),
    ("weight", Some('w'), Arg::Required, T::Weight),
    ("u-threshold", Some('x'), Arg::Required, T::Upper),
    ("l-threshold", Some('y'), Arg::Required, T::Lower),
    ("numeric", Some('n'), Arg::None, T::Numeric),
    ("connection", Some('c'), Arg::None, T::Conn),
    ("mcast-interface", None, Arg::Required, T::McastIf),
    ("syncid", None, Arg::Required, T::Syncid),
    ("timeout", None, Arg::None, T::Timeout),
    ("daemon", None, Arg::None, T::Daemon),
    ("stats", None, Arg::None, T::Stats),
    ("rate", None, Arg::None, T::Rate),
    ("thresholds", None, Arg::None, T::Thresholds),
    ("persistent-conn", None, Arg::None, T::PersistConn),
    ("nosort", None, Arg::None, T::NoSort),
    ("sort", None, Arg::None, T::Sort),
    ("exact", Some('X'), Arg::None, T::Exact),
    ("ipv6", Some('6'), Arg::None, T::Ipv6),
    ("ops", Some('o'), Arg::None, T::Ops),
    ("pe", None, Arg::Required, T::Pe),
    ("sched-flags", Some('b'), Arg::Required, T::SchedFlags),
    ("mcast-group", None, Arg::Required, T::McastGroup),
    ("mcast-port", None, Arg::Required, T::McastPort),
    ("mcast-ttl", None, Arg::Required, T::McastTtl),
    ("sync-maxlen", None, Arg::Required, T::SyncMaxlen),
    ("tun-info", None, Arg::None, T::TunInfo),
    ("tun-type", None, Arg::Required, T::TunType),
    ("tun-port", None, Arg::Required, T::TunPort),
    ("tun-nocsum", None, Arg::None, T::TunNoCsum),
    ("tun-csum", None, Arg::None, T::TunCsum),
    ("tun-remcsum", None, Arg::None, T::TunRemCsum),
];
