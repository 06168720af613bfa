//! Throughput and idle cost of the AF_XDP data path, in a throwaway two-namespace lab.
//!
//! Run as root: `cargo run --release -p ipvs-core --example xdp_bench [-- generic] [xskgen]`.
//! A client thread blasts minimum-size UDP frames to VIP:9 over a veth pair for 3 s, with an
//! AF_PACKET socket (one `send` per frame), or with `xskgen` through a second `Datapath` on the
//! client side (AF_XDP tx, batches of 64); the director worker receives them through XDP → AF_XDP and drops them in
//! the callback. Then the worker idles for 5 s in `Datapath::poll` with a 100 ms timeout (an
//! engine deadline) and its CPU time over that window is read from
//! `/proc/self/task/TID/stat`. Bounded in time; namespaces deleted on exit.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ipvs_core::engine::DropReason;
use ipvs_core::io::lab::{self, PacketSocket};
use ipvs_core::io::{Datapath, DatapathConfig, FrameBuf, Ingress, Verdict, XdpModeChoice};
use ipvs_core::types::Protocol;

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// 60-byte Ethernet/IPv4/UDP frame (UDP checksum 0) to VIP:9.
fn udp_frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let s = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 40000);
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&46u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&s.ip().octets());
    ip[16..20].copy_from_slice(&VIP.octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&s.port().to_be_bytes());
    f.extend_from_slice(&9u16.to_be_bytes());
    f.extend_from_slice(&26u16.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.resize(60, 0xab);
    f
}

fn main() -> Result<(), String> {
    if !lab::is_root() {
        println!("xdp_bench: SKIPPED, needs root (network namespaces, XDP, AF_XDP)");
        return Ok(());
    }
    let mode = if std::env::args().any(|a| a == "generic") {
        XdpModeChoice::Generic
    } else {
        XdpModeChoice::Native
    };
    let id = format!("iob{}", std::process::id());
    let pair = lab::VethPair::new(&id).map_err(|e| e.to_string())?;
    let (client, director) = (&pair.client, &pair.director);
    let (cmac, dmac) = (pair.client_mac, pair.director_mac);

    let received = Arc::new(AtomicU64::new(0));
    let idle = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (r, i) = (received.clone(), idle.clone());
    let worker = lab::in_netns_spawn(director.name(), move || -> Result<String, String> {
        let mut cfg = DatapathConfig::new(["vd"]);
        cfg.mode = mode;
        let mut dp = Datapath::new(&cfg).map_err(|e| e.to_string())?;
        dp.steering()
            .add_service(VIP, 9, Protocol::Udp)
            .map_err(|e| e.to_string())?;
        let _ = ready_tx.send(dp.modes());
        let mut handler = |_: Ingress, f: &mut FrameBuf<'_>| {
            std::hint::black_box(f.frame().first());
            Verdict::Drop(DropReason::Refused)
        };
        let end = Instant::now() + Duration::from_secs(60);
        while !i.load(Ordering::Relaxed) && Instant::now() < end {
            let n = dp
                .poll(Some(Duration::from_millis(100)), &mut handler)
                .map_err(|e| e.to_string())?;
            r.fetch_add(n as u64, Ordering::Relaxed);
        }
        let tid = lab::gettid();
        let t0 = lab::thread_cpu_time(tid).map_err(|e| e.to_string())?;
        let start = Instant::now();
        let mut wakeups = 0u32;
        while start.elapsed() < Duration::from_secs(5) {
            dp.poll(Some(Duration::from_millis(100)), &mut handler)
                .map_err(|e| e.to_string())?;
            wakeups += 1;
        }
        let t1 = lab::thread_cpu_time(tid).map_err(|e| e.to_string())?;
        let (kdrop, kfull, kfill) = dp.kernel_drops().map_err(|e| e.to_string())?;
        Ok(format!(
            "idle 5 s: worker CPU {:?} ({} poll wake-ups); stats {:?}; kernel: rx_dropped {kdrop}, \
             rx_ring_full {kfull}, fill_ring_empty {kfill}",
            t1 - t0,
            wakeups,
            dp.stats()
        ))
    });
    let modes = ready_rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| "director did not start".to_owned())?;
    println!("xdp modes: {modes:?}, copy-mode AF_XDP socket on queue 0");

    let frame = udp_frame(dmac, cmac);
    let xskgen = std::env::args().any(|a| a == "xskgen");
    let blast = lab::in_netns_spawn(client.name(), move || -> Result<(u64, Duration), String> {
        if xskgen {
            let idx = lab::ifindex("vc").ok_or("no vc")?;
            let mut txdp =
                Datapath::new(&DatapathConfig::new(["vc"])).map_err(|e| e.to_string())?;
            let start = Instant::now();
            let mut sent = 0u64;
            while start.elapsed() < Duration::from_secs(3) && sent < 50_000_000 {
                for _ in 0..64 {
                    if txdp.send(idx, &frame) {
                        sent += 1;
                    }
                }
                txdp.flush().map_err(|e| e.to_string())?;
            }
            return Ok((sent, start.elapsed()));
        }
        let sock =
            PacketSocket::bind(lab::ifindex("vc").ok_or("no vc")?).map_err(|e| e.to_string())?;
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < Duration::from_secs(3) && sent < 50_000_000 {
            for _ in 0..256 {
                if sock.send(&frame).is_ok() {
                    sent += 1;
                }
            }
        }
        Ok((sent, start.elapsed()))
    });
    let before = received.load(Ordering::Relaxed);
    let (sent, took) = blast
        .join()
        .map_err(|_| "blaster panicked".to_owned())?
        .map_err(|e| e.to_string())??;
    thread::sleep(Duration::from_millis(300));
    let got = received.load(Ordering::Relaxed) - before;
    let secs = took.as_secs_f64();
    println!(
        "blast: sent {sent} frames in {secs:.2} s ({:.0} pps offered); received in callback {got} ({:.0} pps, {:.1}%)",
        sent as f64 / secs,
        got as f64 / secs,
        100.0 * got as f64 / sent.max(1) as f64
    );
    idle.store(true, Ordering::Relaxed);
    let report = worker
        .join()
        .map_err(|_| "worker panicked".to_owned())?
        .map_err(|e| e.to_string())??;
    println!("{report}");
    Ok(())
}
