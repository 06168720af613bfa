//! Shortcuts that run this crate's lab tools (`lab-http`, `lab-udp`, `lab-client`) in a lab,
//! found with [`crate::bin`] (so they must be built: `cargo test -p tests` or
//! `cargo test --workspace` builds them).

use std::time::Duration;

use super::{Lab, LabError, Mode, Proc, Role};
use crate::tools::tally::Tally;

/// How long a server tool may take to print `ready`.
const READY: Duration = Duration::from_secs(10);

impl Lab {
    fn tool(name: &str) -> String {
        crate::bin(name).to_string_lossy().into_owned()
    }

    /// Starts `lab-http` on every real server, named after its role (`rs0`, `rs1`, ...),
    /// listening on `0.0.0.0:<port>` (TCP answers from the address it was reached at, so the
    /// wildcard serves the VIP on DR/TUN servers and the RIP alike). Waits until each is ready.
    pub fn start_http(&self, port: u16) -> Result<Vec<Proc<'_>>, LabError> {
        let http = Self::tool("lab-http");
        let listen = format!("0.0.0.0:{port}");
        self.real_servers()
            .into_iter()
            .map(|rs| {
                let name = rs.short();
                let mut p = self.spawn(rs, [&http, "--name", &name, "--listen", &listen])?;
                p.wait_for_log("ready", READY)?;
                Ok(p)
            })
            .collect()
    }

    /// Starts `lab-udp serve` on every real server, named after its role: on NAT servers on
    /// `0.0.0.0:<port>`; on DR/TUN servers on each VIP and on the server's own address (a UDP
    /// reply must leave from the address the request was sent to). Waits until each is ready.
    pub fn start_udp(&self, port: u16) -> Result<Vec<Proc<'_>>, LabError> {
        let udp = Self::tool("lab-udp");
        self.real_servers()
            .into_iter()
            .map(|rs| {
                let name = rs.short();
                let mut args = vec![udp.clone(), "serve".into(), "--name".into(), name];
                let addrs = match self.host(rs).mode {
                    Some(Mode::Nat) | None => vec!["0.0.0.0".to_owned()],
                    Some(Mode::Dr | Mode::Tun) => self
                        .vips()
                        .iter()
                        .chain([&self.addr(rs)])
                        .map(ToString::to_string)
                        .collect(),
                };
                for a in addrs {
                    args.push("--listen".into());
                    args.push(format!("{a}:{port}"));
                }
                let mut p = self.spawn(rs, &args)?;
                p.wait_for_log("ready", READY)?;
                Ok(p)
            })
            .collect()
    }

    /// Runs `lab-client ARGS` in `client` and returns its tally, failures included (check
    /// `tally.failed`). `timeout` bounds the whole run; give `--deadline-s` below it.
    pub fn http_client(
        &self,
        client: Role,
        args: &[&str],
        timeout: Duration,
    ) -> Result<Tally, LabError> {
        self.tool_tally(client, "lab-client", &[], args, timeout)
    }

    /// Runs `lab-udp send ARGS` in `client` and returns its tally, failures included.
    pub fn udp_client(
        &self,
        client: Role,
        args: &[&str],
        timeout: Duration,
    ) -> Result<Tally, LabError> {
        self.tool_tally(client, "lab-udp", &["send"], args, timeout)
    }

    fn tool_tally(
        &self,
        role: Role,
        tool: &str,
        pre: &[&str],
        args: &[&str],
        timeout: Duration,
    ) -> Result<Tally, LabError> {
        let bin = Self::tool(tool);
        let mut argv = vec![bin.as_str()];
        argv.extend(pre);
        argv.extend(args);
        let out = self.exec_timeout(role, &argv, timeout)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        Tally::parse(&stdout).map_err(|_| LabError::Parse {
            what: format!("{tool} tally"),
            text: format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
        })
    }
}
