//! The nanny command line lvsd builds for one real server, in Piranha's exact order
//! (`lvsd.c` `startClientMonitor`):
//!
//! ```text
//! -c -h RIP -p VPORT -r RPORT [-f FWMARK] [-u] [-e SEND_PROGRAM] [-s SEND] [-x EXPECT] [-q]
//!    [--regex] [-v] -a REENTRY -I IPVSADM -t TIMEOUT -w WEIGHT -V VIP -M m|g|i [-U LOADCMD]
//!    [--nodaemon] --lvs
//! ```
//!
//! Pure.

use ipvs_core::types::{ForwardMethod, Protocol};

use crate::lvscf::validate::effective_port;
use crate::lvscf::{Config, RealServer, VirtualService};

/// The arguments (without the program name) of the nanny for `rs` in `v`.
pub fn nanny_args(
    cfg: &Config,
    v: &VirtualService,
    rs: &RealServer,
    verbose: bool,
    nodaemon: bool,
) -> Vec<String> {
    let method = cfg.global.network;
    let mut a: Vec<String> = vec!["-c".into(), "-h".into(), rs.address.to_string()];
    a.extend(["-p".into(), v.port.to_string()]);
    a.extend(["-r".into(), effective_port(v, rs, method).to_string()]);
    if let Some(m) = v.fwmark {
        a.extend(["-f".into(), m.to_string()]);
    }
    if v.protocol == Protocol::Udp {
        a.push("-u".into());
    }
    if let Some(p) = &v.send_program {
        a.extend(["-e".into(), p.clone()]);
    }
    if let Some(s) = &v.send {
        a.extend(["-s".into(), s.clone()]);
    }
    if let Some(x) = &v.expect {
        a.extend(["-x".into(), x.clone()]);
    }
    if v.quiesce_server {
        a.push("-q".into());
    }
    if v.use_regex {
        a.push("--regex".into());
    }
    if verbose {
        a.push("-v".into());
    }
    a.extend(["-a".into(), v.reentry.as_secs().to_string()]);
    a.extend(["-I".into(), "/sbin/ipvsadm".into()]);
    a.extend(["-t".into(), v.timeout.as_secs().to_string()]);
    a.extend(["-w".into(), rs.weight.to_string()]);
    let vip = v
        .address
        .as_ref()
        .map(|x| x.addr.to_string())
        .unwrap_or_default();
    a.extend(["-V".into(), vip]);
    let m = match method {
        ForwardMethod::Masq => "m",
        ForwardMethod::Route => "g",
        ForwardMethod::Tunnel => "i",
    };
    a.extend(["-M".into(), m.into()]);
    if let Some(l) = &v.load_monitor {
        let cmd = if l == "uptime" {
            cfg.global.rsh_command.clone()
        } else {
            l.clone()
        };
        a.extend(["-U".into(), cmd]);
    }
    if nodaemon || v.sorry_server.is_some() {
        a.push("--nodaemon".into());
    }
    a.push("--lvs".into());
    a
}
