//! The README's demo (`sudo ./demo`, `src/bin/lab-demo.rs`) in the mode CI runs, `--quick`:
//! it exits 0 and tells the takeover, the surviving download and the daemons' story; and a
//! SIGINT in the middle of it (Ctrl-C) leaves no namespace and no process behind. The two
//! tests take turns (two director pairs at once would load a 2-core machine for nothing).
//! They skip (and pass) when not root.

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tests::lab::privileged;

const DEMO: &str = env!("CARGO_BIN_EXE_lab-demo");
/// The file the demo runs (its default too).
const CF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/demo.cf");
/// Far more than the demo takes (`--quick`: about 25 s on a built 2-core machine).
const LIMIT: Duration = Duration::from_secs(180);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn spawn() -> Child {
    Command::new(DEMO)
        .args(["--quick", "--cf", CF])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lab-demo starts")
}

/// Waits for `child` at most `LIMIT` (killed after that); its status and output.
fn finish(mut child: Child) -> (std::process::ExitStatus, String, String) {
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let end = Instant::now() + LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = reader.join().expect("stdout reader");
    let stderr = err_reader.join().expect("stderr reader");
    (status, stdout, stderr)
}

/// Namespaces in /run/netns whose names start with `prefix`.
fn namespaces(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Processes (not zombies) whose network namespace is one of `names`' (by inode of
/// /run/netns/NAME), found before the lab goes away.
fn netns_inodes(names: &[String]) -> Vec<u64> {
    use std::os::unix::fs::MetadataExt as _;
    names
        .iter()
        .filter_map(|n| std::fs::metadata(format!("/run/netns/{n}")).ok())
        .map(|m| m.ino())
        .collect()
}

fn processes_in(inodes: &[u64]) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::metadata(format!("/proc/{p}/ns/net")).is_ok_and(|m| inodes.contains(&m.ino()))
                && !std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                    s.rsplit_once(')')
                        .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
                })
        })
        .collect()
}

#[test]
fn quick_demo_shows_the_takeover_and_the_surviving_connection() {
    if !privileged("demo_quick") {
        return;
    }
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let child = spawn();
    let pid = child.id();
    let (status, out, err) = finish(child);
    eprintln!("--- stdout\n{out}--- stderr\n{err}");
    assert!(status.success(), "lab-demo --quick: {status}");
    for needle in [
        "lvsd --check -c",
        "director 0 is ACTIVE",
        "SYNCED: director 1 (standby) holds the download's connection",
        "KILL: SIGKILL to director 0's pulse",
        "TAKEOVER: director 1 holds the VIP",
        "requests answered again",
        "the download survived",
        "no reset",
        "torn down",
    ] {
        assert!(out.contains(needle), "no {needle:?} in the demo's output");
    }
    // The story: director 1's pulse activating, and its addresses.
    let story = out
        .split("the story in the daemons' logs")
        .nth(1)
        .expect("the story is printed");
    assert!(story.contains("d1 pulse  partner dead after"), "{story}");
    assert!(
        story.contains("d1 pulse  floating address added vip=198.18.0.10"),
        "{story}"
    );
    assert!(story.contains("d1 lvsd   lvsd is now active"), "{story}");
    assert!(
        namespaces(&format!("lvs-{pid}-")).is_empty(),
        "the demo left namespaces behind"
    );
}

#[test]
fn ctrl_c_in_the_middle_tears_the_lab_down() {
    if !privileged("demo_ctrl_c") {
        return;
    }
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let child = spawn();
    let pid = child.id();
    let prefix = format!("lvs-{pid}-");
    // Until the pair runs (its pulses are up: the lab and its daemons exist), then SIGINT.
    let end = Instant::now() + LIMIT;
    let mut inodes = Vec::new();
    while Instant::now() < end {
        let names = namespaces(&prefix);
        inodes = netns_inodes(&names);
        if processes_in(&inodes).iter().any(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "pulse")
        }) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!inodes.is_empty(), "the demo built no lab");
    std::thread::sleep(Duration::from_secs(2));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid")),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let started = Instant::now();
    let (status, out, err) = finish(child);
    eprintln!("--- stdout\n{out}--- stderr\n{err}");
    assert!(!status.success(), "an interrupted demo exits 1: {status}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the demo took {:?} to stop",
        started.elapsed()
    );
    assert!(err.contains("SIGINT: stopping"), "{err}");
    assert!(out.contains("torn down"), "{out}");
    assert_eq!(namespaces(&prefix), Vec::<String>::new(), "namespaces left");
    assert_eq!(processes_in(&inodes), Vec::<u32>::new(), "processes left");
}
