//! `lvsadm`: ipvsadm's command language and output, against a running lvsd's API.
//!
//! Parsing, rendering and the mapping to and from the API live in `lvsd::lvsadm`; this
//! binary only talks to lvsd (`LVSD_SOCKET`, default `/run/lvsd/lvsd.sock`) and prints.
//! Exit codes are ipvsadm's: 0, 2 for a refused command line, 255 for a refused change or a
//! popt error, 1 for a refused listing or lvsd not reachable. docs/lvsadm.md has the rest.

use std::io::{Read, Write};
use std::process::ExitCode;

use lvsd::control::api::{self, ConnectionsView, ServiceView, SyncView, TimeoutsView, ZeroRequest};
use lvsd::control::client::{Client, ClientError};
use lvsd::lvsadm::api::{self as conv, Verb};
use lvsd::lvsadm::{CliError, Command, ListMode, ListOptions, OpError, format};

/// Why a command did not complete.
enum Failure {
    /// lvsd refused it (ipvsadm's words).
    Refused(OpError),
    /// lvsd could not be asked.
    Unreachable(ClientError),
}

type Outcome = Result<(), Failure>;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let program = argv.first().cloned().unwrap_or_else(|| "lvsadm".into());
    let cmd = match lvsd::lvsadm::parse_args(&argv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let client = Client::from_env();
    match cmd {
        Command::Help => {
            print!("{}", usage(&program));
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!(
                "lvsadm {} (ipvsadm 1.31 command language, lvsd's engine)",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Command::Restore => restore(&client, &program),
        cmd => {
            let listing = matches!(cmd, Command::List(_) | Command::Save { .. });
            finish(run(&client, cmd), listing)
        }
    }
}

/// Prints a failure as ipvsadm would and returns its exit status.
fn finish(outcome: Outcome, listing: bool) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Refused(e)) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code(listing))
        }
        Err(Failure::Unreachable(e)) => {
            // ipvsadm's words when it cannot reach IPVS, then what to do about it.
            eprintln!("Can't initialize ipvs: {e}");
            eprintln!(
                "pulse starts lvsd on both directors; LVSD_SOCKET names another control socket."
            );
            ExitCode::from(1)
        }
    }
}

/// Maps a client error of `verb` to ipvsadm's refusal, keeping "unreachable" apart.
fn refused(verb: Verb) -> impl Fn(ClientError) -> Failure {
    move |e| match e {
        ClientError::Refused { status, message } => {
            Failure::Refused(conv::refusal(verb, status, &message))
        }
        ClientError::Connect { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            Failure::Refused(OpError::PermissionDenied)
        }
        e @ (ClientError::Connect { .. } | ClientError::Io { .. }) => Failure::Unreachable(e),
        ClientError::BadAnswer(m) => Failure::Refused(OpError::Other(format!(
            "lvsd sent an answer that cannot be read: {m}"
        ))),
    }
}

fn call<B: serde::Serialize, T: serde::de::DeserializeOwned>(
    client: &Client,
    verb: Verb,
    method: &str,
    path: &str,
    body: Option<&B>,
) -> Result<T, Failure> {
    client.call(method, path, body).map_err(refused(verb))
}

/// `{}` answers.
#[derive(serde::Deserialize)]
struct Empty {}

fn services_path() -> String {
    format!("/{}/services", api::VERSION)
}

fn service_path(id: &api::ServiceId) -> String {
    format!("/{}/services/{id}", api::VERSION)
}

/// Runs one command other than `-R`, `-h`, `-v`.
fn run(client: &Client, cmd: Command) -> Outcome {
    let refuse = |e: OpError| Failure::Refused(e);
    match cmd {
        Command::List(opts) => list(client, &opts),
        Command::Save { .. } => {
            let table = table(client, Verb::List, false)?;
            print_out(&format::save(&table));
            Ok(())
        }
        Command::AddService(spec) => {
            let body = conv::service_spec(&spec).map_err(refuse)?;
            call::<_, ServiceView>(
                client,
                Verb::AddService,
                "POST",
                &services_path(),
                Some(&body),
            )
            .map(drop)
        }
        Command::EditService(spec) => {
            let body = conv::service_spec(&spec).map_err(refuse)?;
            let path = service_path(&body.id);
            call::<_, ServiceView>(client, Verb::EditService, "PUT", &path, Some(&body)).map(drop)
        }
        Command::DeleteService(key) => {
            let id = conv::service_id(&key).map_err(refuse)?;
            call::<(), Empty>(
                client,
                Verb::DeleteService,
                "DELETE",
                &service_path(&id),
                None,
            )
            .map(drop)
        }
        Command::Clear => {
            call::<(), Empty>(client, Verb::Clear, "DELETE", &services_path(), None).map(drop)
        }
        Command::AddDest { service, dest } => {
            let id = conv::service_id(&service).map_err(refuse)?;
            let body = conv::server_spec(&dest).map_err(refuse)?;
            let path = format!("{}/servers", service_path(&id));
            call::<_, api::ServerView>(client, Verb::AddDest, "POST", &path, Some(&body)).map(drop)
        }
        Command::EditDest { service, dest } => {
            let id = conv::service_id(&service).map_err(refuse)?;
            let body = conv::server_spec(&dest).map_err(refuse)?;
            let path = api::server_path(&id, body.address);
            call::<_, api::ServerView>(client, Verb::EditDest, "PUT", &path, Some(&body)).map(drop)
        }
        Command::DeleteDest {
            service,
            addr,
            port,
        } => {
            let id = conv::service_id(&service).map_err(refuse)?;
            let std::net::IpAddr::V4(addr) = addr else {
                return Err(refuse(OpError::FamilyNotSupported));
            };
            let path = api::server_path(&id, std::net::SocketAddrV4::new(addr, port));
            call::<(), Empty>(client, Verb::DeleteDest, "DELETE", &path, None).map(drop)
        }
        Command::Zero(service) => {
            let body = ZeroRequest {
                service: service
                    .as_ref()
                    .map(conv::service_id)
                    .transpose()
                    .map_err(refuse)?,
            };
            let path = format!("/{}/zero", api::VERSION);
            call::<_, Empty>(client, Verb::Zero, "POST", &path, Some(&body)).map(drop)
        }
        Command::SetTimeouts { tcp, tcpfin, udp } => {
            let body = TimeoutsView { tcp, tcpfin, udp };
            let path = format!("/{}/timeouts", api::VERSION);
            call::<_, TimeoutsView>(client, Verb::SetTimeouts, "PUT", &path, Some(&body)).map(drop)
        }
        Command::StartDaemon(_) | Command::StopDaemon { .. } => Err(refuse(OpError::Other(
            "lvsd's connection sync is set in lvs.cf (syncdaemon, syncd_iface, syncd_id, \
             sync_peer) and runs with lvsd; it is not started or stopped at run time"
                .into(),
        ))),
        Command::Restore | Command::Help | Command::Version => Ok(()),
    }
}

/// The table as `-L` and `-S` print it, with counters and rates when `counters`.
fn table(client: &Client, verb: Verb, counters: bool) -> Result<lvsd::lvsadm::Table, Failure> {
    let query = if counters { "?counters=1" } else { "" };
    let path = format!("/{}/table{query}", api::VERSION);
    let v: api::TableView = call::<(), _>(client, verb, "GET", &path, None)?;
    Ok(conv::table(&v))
}

fn list(client: &Client, opts: &ListOptions) -> Outcome {
    let text = match opts.mode() {
        ListMode::Connections => {
            let v: ConnectionsView = call::<(), _>(
                client,
                Verb::List,
                "GET",
                &format!("/{}/connections", api::VERSION),
                None,
            )?;
            format::list_conns(&conv::conns(&v.connections), opts)
        }
        ListMode::Timeout => {
            let v: TimeoutsView = call::<(), _>(
                client,
                Verb::List,
                "GET",
                &format!("/{}/timeouts", api::VERSION),
                None,
            )?;
            format::list_timeout(&conv::timeouts(&v))
        }
        ListMode::Daemon => {
            let v: SyncView = call::<(), _>(
                client,
                Verb::List,
                "GET",
                &format!("/{}/sync", api::VERSION),
                None,
            )?;
            format::list_daemon(&conv::daemons(&v))
        }
        _ => {
            let table = table(client, Verb::List, opts.stats || opts.rate)?;
            format::list(&table, opts).map_err(Failure::Refused)?
        }
    };
    print_out(&text);
    Ok(())
}

/// Writes to stdout; a closed pipe (`lvsadm -L | head`) is not an error.
fn print_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// `-R`: every line of stdin as a command, as ipvsadm's `restore_table`: a popt error or a
/// refused change is printed and the next line runs; any other refused command line stops
/// with its status. The exit status is the last line's.
fn restore(client: &Client, program: &str) -> ExitCode {
    let mut text = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut text) {
        eprintln!("{program}: reading standard input: {e}");
        return ExitCode::from(255);
    }
    let mut last = ExitCode::SUCCESS;
    for (_line, parsed) in lvsd::lvsadm::cli::parse_restore_lines(&text, program) {
        last = match parsed {
            Ok(cmd) => {
                let listing = matches!(cmd, Command::List(_) | Command::Save { .. });
                match run(client, cmd) {
                    Err(Failure::Unreachable(e)) => {
                        return finish(Err(Failure::Unreachable(e)), listing);
                    }
                    outcome => finish(outcome, listing),
                }
            }
            Err(e @ CliError::Popt { .. }) => {
                eprintln!("{e}");
                ExitCode::from(255)
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(e.exit_code());
            }
        };
    }
    last
}

fn usage(program: &str) -> String {
    format!(
        "lvsadm {version}: ipvsadm's command language against lvsd
Usage:
  {p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [-b sched-flags]
  {p} -D virtual-service
  {p} -C
  {p} -R
  {p} -S [-n]
  {p} -a|e virtual-service -r server-address [options]
  {p} -d virtual-service -r server-address
  {p} -L|l [virtual-service] [options]
  {p} -Z [virtual-service]
  {p} --set tcp tcpfin udp
  {p} -h

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
  --fwmark-service|-f fwmark          fwmark is an integer greater than zero

Commands:
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --help            -h        display this help message

Options:
  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh|twos,
                                      the default scheduler is wlc.
  --sched-flags  -b flags             scheduler flags (comma-separated)
  --persistent   -p [timeout]         persistent service
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of connection sync state
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --numeric      -n                   numeric output of addresses and ports

lvsd is reached at $LVSD_SOCKET (default {socket}). Changes made here are run-time
changes: the next reload of lvs.cf puts the file's table back (docs/lvsadm.md).
",
        version = env!("CARGO_PKG_VERSION"),
        p = program,
        socket = api::DEFAULT_SOCKET,
    )
}
