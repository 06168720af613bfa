//! The command line lvsd gives each nanny: Piranha 0.8.6's exact order (`lvsd.c`
//! `startClientMonitor`), so a nanny started by lvsd looks like one an operator would start
//! by hand, followed by this project's extension options when their keywords are set.
//!
//! ```text
//! -c -h RIP -p VPORT -r RPORT [-f FWMARK] [-u] [-e SEND_PROGRAM] [-s SEND] [-x EXPECT] [-q]
//!    [--regex] [-v] -a REENTRY -I IPVSADM -t TIMEOUT -w WEIGHT -V VIP -M m|g|i [-U LOADCMD]
//!    [--nodaemon] --lvs
//!    [--rise N] [--fall N] [--probe-timeout S] [--http-get PATH] [--https] [--http-host H]
//!    [--http-status LIST] [--tls-ca FILE] [--tls-no-verify]
//! ```
//!
//! The program itself (`client_monitor`, default `/usr/sbin/nanny`) is not in the vector.
//! Differences from Piranha, each deliberate:
//! - `-r` is the port IPVS uses for the server ([`effective_port`]): with direct routing or
//!   tunnelling on a non-fwmark service that is the virtual port (ipvsadm forced it too), so
//!   nanny probes and reports the server lvsd actually has.
//! - `-I` is passed for compatibility (the `ipvsadm` keyword); nanny ignores it.
//! - `--nodaemon` is passed when `nodaemon` is asked for or the service has a `sorry_server`,
//!   as Piranha did (it scraped nanny's stdout for the sorry server; lvsd now learns health
//!   from nanny's reports, and nanny never forks, so the flag changes nothing).
//! - Values come from the parser with their quotes already removed (Piranha stripped one pair
//!   of double quotes here).

use ipvs_core::types::{ForwardMethod, Protocol};

use crate::lvscf::validate::effective_port;
use crate::lvscf::{Config, RealServer, VirtualService};

/// The `-M` letter of a forwarding method.
fn method_letter(m: ForwardMethod) -> &'static str {
    match m {
        ForwardMethod::Masq => "m",
        ForwardMethod::Route => "g",
        ForwardMethod::Tunnel => "i",
    }
}

/// nanny's arguments for `server` of `virt` (see the module documentation for the order).
/// `verbose` adds `-v`; `nodaemon` (lvsd in the foreground) adds `--nodaemon`.
pub fn nanny_args(
    cfg: &Config,
    virt: &VirtualService,
    server: &RealServer,
    verbose: bool,
    nodaemon: bool,
) -> Vec<String> {
    let mut a: Vec<String> = Vec::with_capacity(40);
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| (*s).to_owned()));
    let network = cfg.global.network;
    let rport = effective_port(virt, server, network).to_string();
    push(&["-c", "-h", &server.address.to_string()]);
    push(&["-p", &virt.port.to_string(), "-r", &rport]);
    if let Some(mark) = virt.fwmark {
        push(&["-f", &mark.to_string()]);
    }
    if virt.protocol == Protocol::Udp {
        push(&["-u"]);
    }
    if let Some(program) = &virt.send_program {
        push(&["-e", program]);
    }
    if let Some(send) = &virt.send {
        push(&["-s", send]);
    }
    if let Some(expect) = &virt.expect {
        push(&["-x", expect]);
    }
    if virt.quiesce_server {
        push(&["-q"]);
    }
    if virt.use_regex {
        push(&["--regex"]);
    }
    if verbose {
        push(&["-v"]);
    }
    push(&["-a", &virt.reentry.as_secs().to_string()]);
    push(&["-I", &cfg.global.ipvsadm.display().to_string()]);
    push(&["-t", &virt.timeout.as_secs().to_string()]);
    push(&["-w", &server.weight.to_string()]);
    let vip = virt
        .address
        .as_ref()
        .map_or_else(|| "0.0.0.0".to_owned(), |a| a.addr.to_string());
    push(&["-V", &vip, "-M", method_letter(network)]);
    if let Some(load) = &virt.load_monitor {
        let load = if load == "uptime" {
            cfg.global.rsh_command.as_str()
        } else {
            load.as_str()
        };
        push(&["-U", load]);
    }
    if nodaemon || virt.sorry_server.is_some() {
        push(&["--nodaemon"]);
    }
    push(&["--lvs"]);

    let h = &virt.health;
    if let Some(rise) = h.rise {
        push(&["--rise", &rise.to_string()]);
    }
    if let Some(fall) = h.fall {
        push(&["--fall", &fall.to_string()]);
    }
    if let Some(t) = h.probe_timeout {
        push(&["--probe-timeout", &t.as_secs().to_string()]);
    }
    if let Some(path) = &h.http_path {
        push(&["--http-get", path]);
    }
    if h.https {
        push(&["--https"]);
    }
    if let Some(host) = &h.http_host {
        push(&["--http-host", host]);
    }
    if let Some(list) = &h.http_status {
        push(&["--http-status", list]);
    }
    if let Some(ca) = &h.tls_ca {
        push(&["--tls-ca", &ca.display().to_string()]);
    }
    if !h.tls_verify {
        push(&["--tls-no-verify"]);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvscf::{StaticLookup, parse_str};

    fn args_of(text: &str) -> Vec<Vec<String>> {
        let cfg = parse_str("t.cf", text, &StaticLookup::new()).expect("parses");
        cfg.active_virtuals()
            .flat_map(|v| {
                v.active_servers()
                    .map(|s| nanny_args(&cfg, v, s, false, false))
            })
            .collect()
    }

    #[test]
    fn minimal_service_and_flags() {
        let text = "network = direct\nrsh_command = ssh\nvirtual v {\n active = 1\n address = 198.18.0.10 eth0:1\n port = 80\n quiesce_server = 1\n use_regex = 1\n expect = \"HTTP/1.[01]\"\n load_monitor = uptime\n server a {\n  address = 198.19.0.1\n  active = 1\n  port = 8080\n  weight = 5\n }\n}\n";
        assert_eq!(
            args_of(text)[0].join(" "),
            "-c -h 198.19.0.1 -p 80 -r 80 -x HTTP/1.[01] -q --regex -a 180 -I /sbin/ipvsadm -t 10 -w 5 -V 198.18.0.10 -M g -U ssh --lvs"
        );
    }

    #[test]
    fn extensions_follow_piranhas_arguments() {
        let text = "virtual v {\n active = 1\n address = 198.18.0.10 eth0:1\n port = 443\n rise = 3\n fall = 2\n probe_timeout = 4\n http_path = /health\n https = 1\n http_host = www.example\n http_status = 200,204\n tls_ca = /etc/pki/ca.pem\n tls_verify = 0\n server a {\n  address = 198.19.0.1\n  active = 1\n }\n}\n";
        let cfg = parse_str("t.cf", text, &StaticLookup::new()).expect("parses");
        let v = &cfg.virtuals[0];
        assert_eq!(
            nanny_args(&cfg, v, &v.servers[0], true, true).join(" "),
            "-c -h 198.19.0.1 -p 443 -r 443 -v -a 180 -I /sbin/ipvsadm -t 10 -w 1 -V 198.18.0.10 -M m --nodaemon --lvs --rise 3 --fall 2 --probe-timeout 4 --http-get /health --https --http-host www.example --http-status 200,204 --tls-ca /etc/pki/ca.pem --tls-no-verify"
        );
    }
}
