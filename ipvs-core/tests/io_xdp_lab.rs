//! The AF_XDP data path in a throwaway two-namespace lab (client ⇄ director over a veth
//! pair, 198.18.0.0/24). Needs root; skips with a message otherwise. Every wait is bounded,
//! and the namespaces are deleted by a guard even when an assertion fails.

#![allow(clippy::unwrap_used)] // test code: helpers outside #[test] fns unwrap too

mod io_util;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use io_util::*;
use ipvs_core::engine::DropReason;
use ipvs_core::io::lab::{self, Netns, PacketSocket, VethPair};
use ipvs_core::io::{Datapath, DatapathConfig, IoError, Verdict, XdpMode};
use ipvs_core::types::Protocol;

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const DIRECTOR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn can_run() -> bool {
    if !lab::is_root() {
        eprintln!("SKIPPED: io_xdp_lab needs root (network namespaces, XDP, AF_XDP)");
        return false;
    }
    if lab::run("ip", &["-V"]).is_err() {
        eprintln!("SKIPPED: io_xdp_lab needs iproute2's `ip` (apt-get install iproute2)");
        return false;
    }
    true
}

/// The two-namespace pair of `io::lab` (client `vc` ↔ director `vd`).
struct Lab(VethPair);

impl std::ops::Deref for Lab {
    type Target = VethPair;
    fn deref(&self) -> &VethPair {
        &self.0
    }
}

impl Lab {
    fn new() -> Lab {
        let k = COUNTER.fetch_add(1, Ordering::Relaxed);
        Lab(VethPair::new(&format!("io{}x{}", std::process::id(), k)).expect("veth pair lab"))
    }

    fn xdp_shown(&self) -> String {
        let out = self
            .director
            .exec(&["ip", "-d", "link", "show", "dev", "vd"])
            .unwrap();
        out.lines()
            .filter(|l| l.contains("xdp"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

enum Event {
    Ready {
        modes: Vec<(String, XdpMode)>,
        second: Result<(), IoError>,
        queues: u32,
    },
    Seen(Summary, usize),
}

/// The director worker: builds the data path in the director namespace, steers VIP:80/tcp,
/// echoes SYNs from port 40001 back as SYN|ACK, drops everything else, until told to stop.
fn spawn_director(
    ns: String,
) -> (
    mpsc::Sender<()>,
    mpsc::Receiver<Event>,
    thread::JoinHandle<Result<ipvs_core::io::DatapathStats, String>>,
) {
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (ev_tx, ev_rx) = mpsc::channel::<Event>();
    let h = thread::spawn(move || {
        lab::enter_netns(&ns).map_err(|e| e.to_string())?;
        let mut dp = Datapath::new(&DatapathConfig::new(["vd"])).map_err(|e| e.to_string())?;
        dp.steering()
            .add_service(VIP, 80, Protocol::Tcp)
            .map_err(|e| e.to_string())?;
        let second = Datapath::new(&DatapathConfig::new(["vd"])).map(drop);
        let queues = lab::rx_queue_count("vd").unwrap_or(1);
        let _ = ev_tx.send(Event::Ready {
            modes: dp.modes(),
            second,
            queues,
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut handler = |ing: ipvs_core::io::Ingress, frame: &mut ipvs_core::io::FrameBuf<'_>| {
            let Some(s) = summarize(frame.frame()) else {
                return Verdict::NotMine;
            };
            let _ = ev_tx.send(Event::Seen(s, frame.headroom()));
            if s.dport == 80
                && s.sport == 40001
                && s.tcp_flags == SYN
                && turn_around(frame.frame_mut(), SYN | ACK)
                // Prepend and strip 20 bytes (what IP-in-IP encapsulation needs).
                && frame.push_front(20).is_ok()
                && frame.pull_front(20).is_ok()
            {
                return Verdict::Tx {
                    ifindex: ing.ifindex,
                };
            }
            Verdict::Drop(DropReason::Refused)
        };
        while Instant::now() < deadline && stop_rx.try_recv().is_err() {
            dp.poll(Some(Duration::from_millis(20)), &mut handler)
                .map_err(|e| e.to_string())?;
        }
        Ok(dp.stats())
    });
    (stop_tx, ev_rx, h)
}

/// Sends `frame` from the client and collects the IPv4 frames it receives for `wait`.
fn client_exchange(lab: &Lab, frame: Vec<u8>, wait: Duration) -> Vec<Summary> {
    lab::in_netns(lab.client.name(), move || {
        let idx = lab::ifindex("vc").expect("vc");
        let sock = PacketSocket::bind(idx).expect("packet socket");
        sock.send(&frame).expect("send");
        let mut got = Vec::new();
        let mut buf = vec![0u8; 2048];
        let end = Instant::now() + wait;
        for _ in 0..10_000 {
            let now = Instant::now();
            if now >= end {
                break;
            }
            match sock.recv(&mut buf, end - now).expect("recv") {
                Some(n) if n > 0 => got.extend(summarize(&buf[..n])),
                Some(_) => {}
                None => break,
            }
        }
        got
    })
    .expect("client thread")
}

fn from(lab: &Lab, src: SocketAddrV4, dst: SocketAddrV4, flags: u8) -> Vec<u8> {
    eth(
        lab.director_mac,
        lab.client_mac,
        None,
        ETH_IP,
        &ipv4(
            *src.ip(),
            *dst.ip(),
            6,
            0x4000,
            &tcp(src, dst, flags, 1, &[]),
        ),
    )
}

#[test]
fn af_xdp_steers_service_traffic_passes_the_rest_and_detaches_on_drop() {
    if !can_run() {
        return;
    }
    let lab = Lab::new();
    let (stop, events, worker) = spawn_director(lab.director.name().to_owned());
    let ready = events.recv_timeout(Duration::from_secs(10));
    let Ok(Event::Ready {
        modes,
        second,
        queues,
    }) = ready
    else {
        let _ = stop.send(());
        panic!("director did not start: {:?}", worker.join());
    };
    eprintln!("xdp modes: {modes:?}, rx queues of vd: {queues}");
    assert_eq!(modes.len(), 1);
    match second {
        Err(IoError::AlreadyAttached { ifname }) => assert_eq!(ifname, "vd"),
        other => panic!("second instance must be refused, got {other:?}"),
    }
    let shown = lab.xdp_shown();
    assert!(
        shown.contains("prog/xdp"),
        "ip link shows no program while attached: {shown}"
    );

    let vip80 = SocketAddrV4::new(VIP, 80);
    // (i) SYN to VIP:80 reaches the callback; the kernel never sees it, so no RST.
    let got = client_exchange(
        &lab,
        from(&lab, SocketAddrV4::new(CLIENT, 40000), vip80, SYN),
        Duration::from_millis(700),
    );
    assert!(
        !got.iter().any(|s| s.src == VIP && s.tcp_flags & RST != 0),
        "client got a RST: {got:?}"
    );
    let seen: Vec<(Summary, usize)> = events
        .try_iter()
        .filter_map(|e| match e {
            Event::Seen(s, headroom) => Some((s, headroom)),
            Event::Ready { .. } => None,
        })
        .collect();
    assert!(
        seen.iter()
            .any(|(s, _)| s.sport == 40000 && s.dport == 80 && s.tcp_flags == SYN),
        "callback did not see the SYN: {seen:?}"
    );
    // Room in front for an IP-in-IP header (the kernel leaves XDP_PACKET_HEADROOM = 256).
    assert!(seen.iter().all(|&(_, h)| h >= 20), "headroom: {seen:?}");
    // Control: port 81 is not a service, the kernel answers with a RST (so the check above
    // can see one).
    let got = client_exchange(
        &lab,
        from(
            &lab,
            SocketAddrV4::new(CLIENT, 40002),
            SocketAddrV4::new(VIP, 81),
            SYN,
        ),
        Duration::from_millis(1500),
    );
    assert!(
        got.iter()
            .any(|s| s.src == VIP && s.sport == 81 && s.tcp_flags & RST != 0),
        "kernel did not RST a non-service port: {got:?}"
    );
    // (ii) ping to the director's own address: XDP_PASS, the kernel replies.
    let echo = eth(
        lab.director_mac,
        lab.client_mac,
        None,
        ETH_IP,
        &ipv4(
            CLIENT,
            DIRECTOR,
            1,
            0x4000,
            &icmp(8, 0, [0x12, 0x34, 0, 1], b"io-lab-ping"),
        ),
    );
    let got = client_exchange(&lab, echo, Duration::from_millis(1500));
    assert!(
        got.iter()
            .any(|s| s.src == DIRECTOR && s.proto == 1 && s.icmp_type == 0),
        "no echo reply from the director: {got:?}"
    );
    // (iii) a frame the callback transmits (SYN turned into SYN|ACK) reaches the client.
    let got = client_exchange(
        &lab,
        from(&lab, SocketAddrV4::new(CLIENT, 40001), vip80, SYN),
        Duration::from_millis(1500),
    );
    assert!(
        got.iter()
            .any(|s| s.src == VIP && s.sport == 80 && s.dport == 40001 && s.tcp_flags == SYN | ACK),
        "echoed frame did not arrive: {got:?}"
    );

    let _ = stop.send(());
    let stats = worker
        .join()
        .expect("worker panicked")
        .expect("worker failed");
    eprintln!("datapath stats: {stats:?}");
    // SYN 40000, SYN 40001 (echoed), the client's RST to the echo: nothing else.
    assert!((3..=6).contains(&stats.rx) && stats.tx == 1, "{stats:?}");
    // (iv) the data path is gone: no program on the interface.
    let shown = lab.xdp_shown();
    assert!(shown.is_empty(), "xdp still attached after drop: {shown}");
}

/// Generic (SKB) mode on two director interfaces; a SYN received on `vd` is sent out of `ve`
/// (copied into `ve`'s UMEM) and arrives in a third namespace.
#[test]
fn generic_mode_and_transmit_on_another_interface() {
    if !can_run() {
        return;
    }
    let lab = Lab::new();
    let k = COUNTER.fetch_add(1, Ordering::Relaxed);
    let server = Netns::new(&format!("io{}x{}s", std::process::id(), k)).expect("netns");
    lab.director
        .exec(&[
            "ip",
            "link",
            "add",
            "ve",
            "type",
            "veth",
            "peer",
            "name",
            "vs",
            "netns",
            server.name(),
        ])
        .unwrap();
    lab.director
        .exec(&["ip", "addr", "add", "198.18.1.1/24", "dev", "ve"])
        .unwrap();
    lab.director
        .exec(&["ip", "link", "set", "ve", "up"])
        .unwrap();
    server.exec(&["ip", "link", "set", "vs", "up"]).unwrap();
    let server_mac =
        lab::parse_mac(&server.exec(&["cat", "/sys/class/net/vs/address"]).unwrap()).unwrap();

    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (ready_tx, ready_rx) = mpsc::channel();
    let ns = lab.director.name().to_owned();
    let worker = thread::spawn(move || -> Result<ipvs_core::io::DatapathStats, String> {
        lab::enter_netns(&ns).map_err(|e| e.to_string())?;
        let mut cfg = DatapathConfig::new(["vd", "ve"]);
        cfg.mode = ipvs_core::io::XdpModeChoice::Generic;
        let mut dp = Datapath::new(&cfg).map_err(|e| e.to_string())?;
        dp.steering()
            .add_service(VIP, 80, Protocol::Tcp)
            .map_err(|e| e.to_string())?;
        let ve = lab::ifindex("ve").ok_or("no ve")?;
        let ve_mac = [0x02, 0, 0, 0, 0, 0xee];
        let _ = ready_tx.send(dp.modes());
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut handler = |ing: ipvs_core::io::Ingress, frame: &mut ipvs_core::io::FrameBuf<'_>| {
            if ing.ifindex == ve {
                return Verdict::Drop(DropReason::Refused);
            }
            let d = frame.frame_mut();
            d[0..6].copy_from_slice(&server_mac);
            d[6..12].copy_from_slice(&ve_mac);
            Verdict::Tx { ifindex: ve }
        };
        while Instant::now() < deadline && stop_rx.try_recv().is_err() {
            dp.poll(Some(Duration::from_millis(20)), &mut handler)
                .map_err(|e| e.to_string())?;
        }
        Ok(dp.stats())
    });
    let modes = ready_rx.recv_timeout(Duration::from_secs(10));
    let Ok(modes) = modes else {
        let _ = stop_tx.send(());
        panic!("director did not start: {:?}", worker.join());
    };
    assert_eq!(
        modes,
        vec![
            ("vd".to_owned(), XdpMode::Generic),
            ("ve".to_owned(), XdpMode::Generic)
        ]
    );
    assert!(
        lab.xdp_shown().contains("xdpgeneric"),
        "{}",
        lab.xdp_shown()
    );

    // Listen in the server namespace while the client sends.
    let (lready_tx, lready_rx) = mpsc::channel();
    let listener = lab::in_netns_spawn(server.name(), move || {
        let sock = PacketSocket::bind(lab::ifindex("vs").expect("vs")).expect("packet socket");
        let _ = lready_tx.send(());
        let mut buf = vec![0u8; 2048];
        let end = Instant::now() + Duration::from_secs(3);
        let mut got = Vec::new();
        while Instant::now() < end && got.len() < 100 {
            if let Ok(Some(n)) = sock.recv(&mut buf, Duration::from_millis(100)) {
                got.extend(summarize(&buf[..n]));
            }
        }
        got
    });
    lready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("listener ready");
    let syn = from(
        &lab,
        SocketAddrV4::new(CLIENT, 40005),
        SocketAddrV4::new(VIP, 80),
        SYN,
    );
    let _ = client_exchange(&lab, syn, Duration::from_millis(200));
    let got = listener.join().expect("listener").expect("listener ns");
    let _ = stop_tx.send(());
    let stats = worker
        .join()
        .expect("worker panicked")
        .expect("worker failed");
    eprintln!("datapath stats: {stats:?}");
    assert!(
        got.iter()
            .any(|s| s.sport == 40005 && s.dst == VIP && s.tcp_flags == SYN),
        "SYN did not come out of ve: {got:?}"
    );
    assert!(stats.tx >= 1 && stats.tx_failed == 0, "{stats:?}");
}

/// `Waker::wake` from another thread ends a `poll` that would otherwise sleep its whole
/// timeout (what lvsd's control thread does for every API command), and a wake-up given
/// before the poll is not lost.
#[test]
fn a_waker_ends_a_sleeping_poll() {
    if !can_run() {
        return;
    }
    let lab = Lab::new();
    let ns = lab.director.name().to_owned();
    let worker = thread::spawn(move || -> Result<(Duration, Duration), String> {
        lab::enter_netns(&ns).map_err(|e| e.to_string())?;
        let mut dp = Datapath::new(&DatapathConfig::new(["vd"])).map_err(|e| e.to_string())?;
        let mut handler =
            |_: ipvs_core::io::Ingress, _: &mut ipvs_core::io::FrameBuf<'_>| Verdict::NotMine;
        // Woken from another thread while asleep.
        let waker = dp.waker();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            waker.wake();
        });
        let t0 = Instant::now();
        dp.poll(Some(Duration::from_secs(20)), &mut handler)
            .map_err(|e| e.to_string())?;
        let woken = t0.elapsed();
        t.join().map_err(|_| "waker thread")?;
        // Woken before the poll: it returns at once instead of sleeping.
        dp.waker().wake();
        let t0 = Instant::now();
        dp.poll(Some(Duration::from_secs(20)), &mut handler)
            .map_err(|e| e.to_string())?;
        Ok((woken, t0.elapsed()))
    });
    let (woken, early) = worker.join().expect("worker").expect("data path");
    // Not timing assertions: without the waker each poll sleeps its full 20 s.
    assert!(woken < Duration::from_secs(10), "woken after {woken:?}");
    assert!(early < Duration::from_secs(10), "returned after {early:?}");
}
