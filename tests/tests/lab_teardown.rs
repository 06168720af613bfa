//! The lab cleans up after itself: no namespace and no process survives a dropped lab, even
//! when the test panicked inside it; two labs side by side do not see each other.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tests::lab::{Lab, Mode, Role, ns_exists, privileged};
use tests::tools::tally::Tally;

const HTTP: &str = env!("CARGO_BIN_EXE_lab-http");
const CLIENT: &str = env!("CARGO_BIN_EXE_lab-client");
const DECAP: &str = env!("CARGO_BIN_EXE_lab-decap");

fn names(lab: &Lab) -> Vec<String> {
    lab.hosts().iter().map(|h| h.ns.clone()).collect()
}

/// Alive means: exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            !s.lines()
                .any(|l| l.starts_with("State:") && (l.contains('Z') || l.contains('X')))
        })
        .unwrap_or(false)
}

#[test]
fn namespaces_and_processes_are_gone_after_drop() {
    if !privileged("namespaces_and_processes_are_gone_after_drop") {
        return;
    }
    let lab = Lab::builder()
        .directors(2)
        .real_servers(Mode::Nat, 1)
        .real_servers(Mode::Dr, 1)
        .real_servers(Mode::Tun, 1)
        .decap_bin(DECAP)
        .build()
        .expect("lab builds");
    let ns = names(&lab);
    assert_eq!(ns.len(), 1 + 1 + 2 + 3);
    assert!(ns.iter().all(|n| ns_exists(n)), "{ns:?}");
    assert!(ns.iter().all(|n| n.starts_with(lab.id())));
    let dir = lab.dir().to_owned();

    // A daemon that leaves a child behind when it is killed: the teardown must find the
    // orphan by its namespace.
    let mut orphaner = lab
        .spawn(
            Role::Real(0),
            ["sh", "-c", "sleep 300 & echo child=$!; wait"],
        )
        .expect("spawn");
    orphaner
        .wait_for_log("child=", Duration::from_secs(5))
        .expect("the shell reports its child");
    let child: u32 = orphaner
        .log()
        .split("child=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("a pid");
    let parent = orphaner.pid();
    assert!(alive(child) && alive(parent));
    drop(orphaner);
    assert!(!alive(parent));
    assert!(
        alive(child),
        "the orphan outlives its parent until the lab goes"
    );

    drop(lab);
    for n in &ns {
        assert!(!ns_exists(n), "{n} survived the lab");
    }
    assert!(
        tests::lab::wait_until(
            Duration::from_secs(2),
            Duration::from_millis(20),
            || !alive(child)
        ),
        "process {child} survived the lab"
    );
    assert!(!dir.exists(), "the lab's directory was left behind");
}

#[test]
fn namespaces_are_gone_after_a_panic_inside_the_lab() {
    if !privileged("namespaces_are_gone_after_a_panic_inside_the_lab") {
        return;
    }
    let seen = Arc::new(Mutex::new((Vec::new(), None)));
    let inside = Arc::clone(&seen);
    let result = std::panic::catch_unwind(move || {
        Lab::builder().real_servers(Mode::Nat, 1).run(|lab| {
            let mut http = lab
                .spawn(
                    Role::Real(0),
                    [HTTP, "--name", "rs0", "--listen", "0.0.0.0:80"],
                )
                .expect("spawn");
            http.wait_for_log("ready", Duration::from_secs(5))
                .expect("ready");
            *inside.lock().expect("not poisoned") = (names(lab), Some(lab.dir().to_owned()));
            panic!("deliberate failure inside the lab");
        })
    });
    assert!(result.is_err(), "the panic propagates out of Lab::run");
    let (ns, dir) = seen
        .lock()
        .map(|g| g.clone())
        .unwrap_or_else(|e| e.into_inner().clone());
    assert!(!ns.is_empty());
    for n in &ns {
        assert!(!ns_exists(n), "{n} survived a panicking test");
    }
    // A failed test keeps its logs for debugging; this failure was on purpose.
    let dir = dir.expect("the closure ran");
    assert!(dir.exists(), "logs of a failed lab are kept");
    std::fs::remove_dir_all(dir).expect("remove the kept logs");
}

#[test]
fn two_labs_side_by_side_use_the_same_addresses_without_collision() {
    if !privileged("two_labs_side_by_side_use_the_same_addresses_without_collision") {
        return;
    }
    let a = Lab::builder()
        .real_servers(Mode::Dr, 1)
        .build()
        .expect("lab a");
    let b = Lab::builder()
        .real_servers(Mode::Dr, 1)
        .build()
        .expect("lab b");
    assert_ne!(a.id(), b.id());
    assert_eq!(a.addr(Role::Real(0)), b.addr(Role::Real(0)));
    let target = format!("{}:80", a.addr(Role::Real(0)));
    let mut servers = Vec::new();
    for (lab, name) in [(&a, "in-a"), (&b, "in-b")] {
        let mut p = lab
            .spawn(Role::Real(0), [HTTP, "--name", name, "--listen", &target])
            .expect("spawn");
        p.wait_for_log("ready", Duration::from_secs(5))
            .expect("ready");
        servers.push(p);
    }
    for (lab, name) in [(&a, "in-a"), (&b, "in-b")] {
        let out = lab
            .run(
                Role::Client(0),
                [CLIENT, "--to", &target, "--requests", "3"],
            )
            .expect("requests answered");
        let t = Tally::parse(&out).expect("tally");
        assert_eq!(t.count(name), 3, "{out}");
    }
}
