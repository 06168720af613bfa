//! `lab-demo`: the project's demo, run as root with `cargo run -p tests --bin lab-demo`.
//!
//! Builds a throwaway network-namespace lab (a client, a director, two NAT real servers;
//! addresses from 198.18.0.0/15, nothing touched outside the lab), validates
//! `etc/nat.cf` with `lvsd --check`, starts the real `lvsd -c etc/nat.cf` on the director
//! (with its nannies, the kernel's default veth offloads, the VIP on its alias label),
//! sends 30 HTTP requests from the client to the VIP, shows which real server answered each
//! share and the client address the servers saw, shows lvsd's view through its control API
//! (health, weights, connections), prints lvsd's log and stops it. The lab is torn down at
//! the end, also on failure.

use std::process::{Command, ExitCode};
use std::time::Duration;

use tests::lab::{Lab, Mode, Role};

fn main() -> ExitCode {
    if !tests::lab::privileged("lab-demo") {
        eprintln!("lab-demo builds network namespaces: run it as root");
        return ExitCode::FAILURE;
    }
    let cf = concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/nat.cf");
    let lvsd = tests::bin("lvsd");

    println!("== lvsd --check -c etc/nat.cf  (the table lvsd programs)");
    match Command::new(&lvsd).args(["--check", "-c", cf]).output() {
        Ok(out) if out.status.success() => print!("{}", String::from_utf8_lossy(&out.stdout)),
        Ok(out) => {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("cannot run {}: {e}", lvsd.display());
            return ExitCode::FAILURE;
        }
    }

    let result = Lab::builder()
        .real_servers(Mode::Nat, 2)
        .run(|lab| -> Result<(), String> {
            println!(
                "\n== lab {}: client {}, director {} / {}, VIP {}",
                lab.id(),
                lab.addr(Role::Client(0)),
                lab.addr(Role::Director(0)),
                tests::lab::NAT_ROUTER,
                lab.vip()
            );
            // etc/nat.cf maps VIP:80 to 8080 on web1 and 8081 on web2.
            let http = tests::bin("lab-http");
            let mut servers = Vec::new();
            for (rs, port) in [(Role::Real(0), 8080), (Role::Real(1), 8081)] {
                let name = if port == 8080 { "web1" } else { "web2" };
                let listen = format!("0.0.0.0:{port}");
                let mut p = lab
                    .spawn(
                        rs,
                        [
                            http.as_os_str(),
                            "--name".as_ref(),
                            name.as_ref(),
                            "--listen".as_ref(),
                            listen.as_ref(),
                        ],
                    )
                    .map_err(|e| e.to_string())?;
                p.wait_for_log("ready", Duration::from_secs(10))
                    .map_err(|e| e.to_string())?;
                println!("   real server {name} at {}:{port}", lab.addr(rs));
                servers.push(p);
            }
            println!("\n== starting lvsd -c etc/nat.cf on the director");
            // The lab's own control socket, so that nothing is created under /run.
            let socket = tests::lvsd::socket_path(lab);
            let mut d = lab
                .spawn(
                    Role::Director(0),
                    [
                        lvsd.as_os_str(),
                        "-c".as_ref(),
                        cf.as_ref(),
                        "--nodaemon".as_ref(),
                        "--socket".as_ref(),
                        socket.as_os_str(),
                    ],
                )
                .map_err(|e| e.to_string())?;
            d.wait_for_log(tests::lvsd::READY, Duration::from_secs(20))
                .map_err(|e| e.to_string())?;

            let to = format!("{}:80", lab.vip());
            println!(
                "== 30 HTTP requests from the client to {to} (wlc, weights 2:1; each nanny \
                 admits its server at weight/32, at least 1, and doubles it every ~20 s, as \
                 Piranha's nanny does, so the first requests split evenly)"
            );
            let t = lab
                .http_client(
                    Role::Client(0),
                    &["--to", &to, "--requests", "30"],
                    Duration::from_secs(60),
                )
                .map_err(|e| e.to_string())?;
            for (server, n) in &t.servers {
                let seen: Vec<&String> = t
                    .clients
                    .get(server)
                    .map(|c| c.iter().collect())
                    .unwrap_or_default();
                println!("   {server}: {n} answers; it saw the client as {seen:?}");
            }
            println!("   failed: {}", t.failed);

            println!(
                "\n== lvsd's view (GET /v1/services on {})",
                socket.display()
            );
            let api = lvsd::control::client::Client::new(&socket);
            for svc in api.services().map_err(|e| e.to_string())? {
                println!("   {} ({}, {}):", svc.id, svc.name, svc.scheduler);
                for rs in &svc.servers {
                    println!(
                        "     {:<20} {:<8} weight {} (lvs.cf {}), {} connections seen, {}",
                        rs.address.to_string(),
                        rs.state.to_string(),
                        rs.table_weight.map_or("-".to_owned(), |w| w.to_string()),
                        rs.config_weight,
                        rs.stats.conns,
                        rs.reason
                    );
                }
            }

            d.signal("TERM").map_err(|e| e.to_string())?;
            let status = d.wait(Duration::from_secs(10)).map_err(|e| e.to_string())?;
            println!("\n== lvsd's log (exit: {status})");
            print!("{}", d.log());
            drop(servers);
            if t.failed == 0 {
                Ok(())
            } else {
                Err(format!("{} requests failed", t.failed))
            }
        });
    match result {
        Ok(()) => {
            println!("\n== lab torn down; nothing was left on this machine");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lab-demo: {e}");
            ExitCode::FAILURE
        }
    }
}
