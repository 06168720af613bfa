//! `ipvsadm --rate` figures: the kernel's two-second estimator for every service and real
//! server the engine holds.
//!
//! The worker calls [`RateBook::tick`] between batches; every [`PERIOD_MS`] it reads the
//! engine's counters once (one pass over the per-destination counters for all services
//! together) and folds them into one [`RateEstimator`] per service and per destination. An
//! estimator starts when its service or destination first appears and is dropped when it
//! leaves the engine, as the kernel starts and stops estimators with the objects.

// hashbrown's hasher: these maps are read once per real server on every listing and
// sampled every 2 s; std's SipHash showed up in `lvsadm -L` profiles of 10 000 servers.
use hashbrown::HashMap;
use ipvs_core::engine::{Engine, TrafficStats};
use ipvs_core::service::ServiceKey;
use ipvs_core::time::Instant;
use ipvs_core::types::DestId;

use crate::lvsadm::rate::{PERIOD_MS, RateEstimator};
use crate::lvsadm::table::{Rates, Stats};

/// The estimators of one engine. See the module docs.
#[derive(Debug, Default)]
pub struct RateBook {
    services: HashMap<ServiceKey, RateEstimator>,
    dests: HashMap<DestId, RateEstimator>,
    next_ms: u64,
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
    /// Samples every estimator when a period has passed since the last sample.
    pub fn tick(&mut self, engine: &Engine, now: Instant) {
        let now_ms = now.as_millis();
        if now_ms < self.next_ms {
            return;
        }
        self.next_ms = now_ms.saturating_add(PERIOD_MS);
        let totals = engine.services_stats();
        let table = engine.ipvs().services();
        let mut live_services = 0usize;
        let mut live_dests = 0usize;
        for svc in table.iter() {
            live_services += 1;
            let st = stats(&totals.get(&svc.key()).copied().unwrap_or_default());
            poll(&mut self.services, svc.key(), now_ms, &st);
            for d in svc.dests() {
                live_dests += 1;
                let st = stats(&engine.dest_stats(d.id()).unwrap_or_default());
                poll(&mut self.dests, d.id(), now_ms, &st);
            }
        }
        if self.services.len() > live_services {
            self.services.retain(|k, _| table.get(k).is_some());
        }
        if self.dests.len() > live_dests {
            self.dests.retain(|id, _| table.dest(*id).is_some());
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

/// Samples the estimator of `key`, starting one when there is none.
fn poll<K: std::hash::Hash + Eq>(
    book: &mut HashMap<K, RateEstimator>,
    key: K,
    now_ms: u64,
    st: &Stats,
) {
    book.entry(key)
        .and_modify(|e| {
            e.poll(now_ms, st);
        })
        .or_insert_with(|| RateEstimator::new(now_ms, st));
}
