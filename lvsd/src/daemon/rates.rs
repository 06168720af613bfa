//! `ipvsadm --rate` figures: the kernel's two-second estimator for every service and real
//! server the engine holds.
//!
//! Every [`PERIOD_MS`] a pass samples every estimator once, as the kernel's
//! `estimation_timer` does: a service's counters come from one snapshot of all services'
//! totals taken when the pass starts, a real server's are read when its service's turn
//! comes. The worker calls [`RateBook::tick`] between batches, and one call samples at most
//! [`DESTS_PER_TICK`] real servers, so a director with ten thousand real servers spreads a
//! pass over several calls instead of stalling forwarding for a millisecond and more (the
//! whole pass took ~1.5 ms on 10 000 servers). An estimator starts when its service or
//! server first appears and is dropped when it leaves the engine, as the kernel starts and
//! stops estimators with the objects.

use hashbrown::HashMap;
use ipvs_core::engine::{Engine, TrafficStats};
use ipvs_core::service::ServiceKey;
use ipvs_core::time::Instant;
use ipvs_core::types::DestId;

use crate::lvsadm::rate::{PERIOD_MS, RateEstimator};
use crate::lvsadm::table::{Rates, Stats};

/// Most real servers one [`RateBook::tick`] samples.
pub const DESTS_PER_TICK: usize = 1000;

/// The estimators of one engine. See the module docs.
// hashbrown's hasher: these maps are read once per real server on every listing and on
// every pass; std's SipHash showed in `lvsadm -L` profiles of 10 000 servers.
#[derive(Debug, Default)]
pub struct RateBook {
    services: HashMap<ServiceKey, RateEstimator>,
    dests: HashMap<DestId, RateEstimator>,
    pass: Option<Pass>,
    next_ms: u64,
}

/// A pass under way.
#[derive(Debug)]
struct Pass {
    keys: Vec<ServiceKey>,
    totals: HashMap<ServiceKey, TrafficStats>,
    at: usize,
}

/// The estimator's view of the engine's counters.
pub fn stats(t: &TrafficStats) -> Stats {
    Stats {
        conns: t.conns,
        inpkts: t.in_pkts,
        outpkts: t.out_pkts,
        inbytes: t.in_bytes,
        outbytes: t.out_bytes,
    }
}

impl RateBook {
    /// Starts a pass when one is due and samples the next services of the pass, at most
    /// [`DESTS_PER_TICK`] real servers (a service's servers are never split).
    pub fn tick(&mut self, engine: &Engine, now: Instant) {
        let now_ms = now.as_millis();
        let table = engine.ipvs().services();
        if self.pass.is_none() {
            if now_ms < self.next_ms {
                return;
            }
            // Every PERIOD_MS from the last start, unless far behind.
            self.next_ms = self.next_ms.saturating_add(PERIOD_MS);
            if self.next_ms <= now_ms {
                self.next_ms = now_ms.saturating_add(PERIOD_MS);
            }
            let keys: Vec<ServiceKey> = table.iter().map(|s| s.key()).collect();
            let live_dests: usize = table.iter().map(|s| s.dests().len()).sum();
            if self.services.len() > keys.len() {
                self.services.retain(|k, _| table.get(k).is_some());
            }
            if self.dests.len() > live_dests {
                self.dests.retain(|id, _| table.dest(*id).is_some());
            }
            self.pass = Some(Pass {
                keys,
                totals: engine.services_stats(),
                at: 0,
            });
        }
        let Some(pass) = self.pass.as_mut() else {
            return;
        };
        let mut sampled = 0usize;
        while sampled < DESTS_PER_TICK && pass.at < pass.keys.len() {
            let key = pass.keys[pass.at];
            pass.at += 1;
            let Some(svc) = table.get(&key) else {
                continue;
            };
            let st = stats(&pass.totals.get(&key).copied().unwrap_or_default());
            sample(&mut self.services, key, &st);
            for d in svc.dests() {
                let st = stats(&engine.dest_stats(d.id()).unwrap_or_default());
                sample(&mut self.dests, d.id(), &st);
            }
            sampled += svc.dests().len() + 1;
        }
        if pass.at >= pass.keys.len() {
            self.pass = None;
        }
    }

    /// Rates of a service (zero before its first sample).
    pub fn service(&self, key: &ServiceKey) -> Rates {
        self.services
            .get(key)
            .map(RateEstimator::rates)
            .unwrap_or_default()
    }

    /// Rates of a destination (zero before its first sample).
    pub fn dest(&self, id: DestId) -> Rates {
        self.dests
            .get(&id)
            .map(RateEstimator::rates)
            .unwrap_or_default()
    }

    /// `-Z`: the estimators of `service` (every service when `None`) and its destinations
    /// forget their averages (`ip_vs_zero_estimator`). Call after zeroing the counters.
    pub fn zero(&mut self, engine: &Engine, service: Option<&ServiceKey>) {
        let totals = engine.services_stats();
        for svc in engine.ipvs().services().iter() {
            if service.is_some_and(|s| *s != svc.key()) {
                continue;
            }
            if let Some(e) = self.services.get_mut(&svc.key()) {
                e.zero(&stats(&totals.get(&svc.key()).copied().unwrap_or_default()));
            }
            for d in svc.dests() {
                if let Some(e) = self.dests.get_mut(&d.id()) {
                    e.zero(&stats(&engine.dest_stats(d.id()).unwrap_or_default()));
                }
            }
        }
    }
}

/// Samples the estimator of `key`, starting one (averages 0, first sample in the next
/// pass) when there is none.
fn sample<K: std::hash::Hash + Eq>(book: &mut HashMap<K, RateEstimator>, key: K, st: &Stats) {
    book.entry(key)
        .and_modify(|e| e.sample(st))
        .or_insert_with(|| RateEstimator::new(st));
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use ipvs_core::dest::DestConfig;
    use ipvs_core::engine::EngineConfig;
    use ipvs_core::ipvs::{Ipvs, IpvsConfig};
    use ipvs_core::types::{ForwardMethod, SchedulerKind};

    use super::*;

    fn engine(services: u16, dests: u8) -> Engine {
        let mut ipvs = Ipvs::new(IpvsConfig::default());
        for s in 0..services {
            let key = ServiceKey::tcp(Ipv4Addr::new(198, 18, 0, 10), 1000 + s);
            ipvs.add_service(key, SchedulerKind::Rr, &[], None)
                .expect("service");
            for d in 0..dests {
                let cfg = DestConfig::new(Ipv4Addr::new(198, 19, 0, d), 80, ForwardMethod::Route);
                ipvs.add_dest(&key, cfg).expect("dest");
            }
        }
        Engine::new(EngineConfig::default(), ipvs).expect("engine")
    }

    #[test]
    fn a_pass_is_spread_over_ticks_and_comes_every_period() {
        // 30 services of 100 servers: 3030 samples, at most DESTS_PER_TICK (+ one service)
        // per call, so the pass takes several ticks.
        let e = engine(30, 100);
        let mut book = RateBook::default();
        book.tick(&e, Instant::from_millis(0));
        assert!(
            book.pass.is_some(),
            "a pass of 3000 servers is not done in one tick"
        );
        let mut ticks = 1;
        while book.pass.is_some() {
            book.tick(&e, Instant::from_millis(10 * ticks));
            ticks += 1;
            assert!(ticks < 10, "the pass must end");
        }
        assert!(ticks >= 3, "{ticks} ticks");
        assert_eq!(book.dests.len(), 3000);
        assert_eq!(book.services.len(), 30);
        // No new pass before the period is over, one right after.
        book.tick(&e, Instant::from_millis(1999));
        assert!(book.pass.is_none());
        book.tick(&e, Instant::from_millis(2000));
        assert!(book.pass.is_some());
    }

    #[test]
    fn estimators_leave_with_their_service() {
        let mut e = engine(2, 3);
        let mut book = RateBook::default();
        book.tick(&e, Instant::from_millis(0));
        assert_eq!((book.services.len(), book.dests.len()), (2, 6));
        let gone = ServiceKey::tcp(Ipv4Addr::new(198, 18, 0, 10), 1000);
        e.ipvs_mut().remove_service(&gone).expect("removed");
        book.tick(&e, Instant::from_millis(2000));
        assert_eq!((book.services.len(), book.dests.len()), (1, 3));
        assert_eq!(book.service(&gone), Rates::default());
    }
}
