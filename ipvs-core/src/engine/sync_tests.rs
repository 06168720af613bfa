//! Connection sync at the frame level: connections opened on one lab engine, exported,
//! imported into a second lab engine, which then forwards the flows' next frames (and the
//! real servers' replies) exactly as the first did, without scheduling anything.

use core::net::Ipv4Addr;

use super::fuzzing::lab_engine;
use super::tests::{CLIENT, Pkt, VIP_NAT, run, verify_l4};
use super::*;
use crate::sync::SyncRecord;
use crate::wire::tcp::{FLAG_ACK, FLAG_SYN};

/// The real server (address) the NAT output frame goes to.
fn rip_of(out: &[u8]) -> Ipv4Addr {
    let f = ethernet::Frame::new_checked(out).expect("frame");
    verify_l4(f.payload()).2
}

#[test]
fn imported_connections_forward_to_the_same_real_server() {
    let mut a = lab_engine();
    let mut on_a = Vec::new();
    for port in [51000, 51001, 51002] {
        let syn = Pkt::tcp(CLIENT, port, VIP_NAT, 80, FLAG_SYN, b"").frame();
        let (v, out) = run(&mut a, 1, 1, &syn);
        assert_eq!(v, Verdict::Tx { ifindex: 2 });
        let ack = Pkt::tcp(CLIENT, port, VIP_NAT, 80, FLAG_ACK, b"").frame();
        assert_eq!(run(&mut a, 2, 1, &ack).0, Verdict::Tx { ifindex: 2 });
        on_a.push((port, rip_of(&out)));
    }
    let now = Instant::from_millis(1000);
    let records: Vec<SyncRecord> = a.ipvs().sync_export(now).collect();
    assert_eq!(records.len(), 3);

    let mut b = lab_engine();
    for r in &records {
        b.ipvs_mut().sync_import(now, r).expect("imported");
    }
    // In another order than they were opened: a scheduler would pick differently.
    for &(port, rip) in on_a.iter().rev() {
        let data = Pkt::tcp(CLIENT, port, VIP_NAT, 80, FLAG_ACK, b"more data").frame();
        let (v, out) = run(&mut b, 1001, 1, &data);
        assert_eq!(v, Verdict::Tx { ifindex: 2 });
        assert_eq!(rip_of(&out), rip, "port {port}");
        // The real server's reply is translated back to the VIP.
        let reply = Pkt::tcp(rip, 8080, CLIENT, port, FLAG_ACK, b"ok").via_rs();
        let (v, out) = run(&mut b, 1002, 2, &reply.frame());
        assert_eq!(v, Verdict::Tx { ifindex: 1 });
        let f = ethernet::Frame::new_checked(&out[..]).expect("frame");
        assert_eq!(verify_l4(f.payload()), (VIP_NAT, 80, CLIENT, port));
    }
    assert_eq!(b.ipvs().stats().conns_created, 0, "nothing was scheduled");
    b.ipvs()
        .check_invariants()
        .expect("counters follow imports");
}
