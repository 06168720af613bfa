//! Per-destination and per-service traffic counters (`ipvsadm --stats`).
//!
//! Counted per destination id, each remembering its service, so a packet costs one hash
//! probe. A service's figures are the sum over its destinations plus what destinations
//! removed since the last [`Traffic::prune`] had counted (kept in `retired`), so service
//! totals never go backwards when a destination leaves.

use std::collections::BTreeMap;

use hashbrown::HashMap;

use super::verdict::TrafficStats;
use crate::ipvs::Ipvs;
use crate::service::ServiceKey;
use crate::types::DestId;

#[derive(Debug, Default)]
pub(crate) struct Traffic {
    per_dest: HashMap<DestId, (ServiceKey, TrafficStats)>,
    retired: BTreeMap<ServiceKey, TrafficStats>,
}

impl Traffic {
    /// The counters of `dest`, creating them (service from `svc`, or looked up).
    #[inline]
    pub(crate) fn slot(
        &mut self,
        ipvs: &Ipvs,
        dest: DestId,
        svc: Option<ServiceKey>,
    ) -> Option<&mut TrafficStats> {
        if !self.per_dest.contains_key(&dest) {
            let key = svc.or_else(|| {
                ipvs.services()
                    .dest_with_service(dest)
                    .map(|(s, _)| s.key())
                    .or_else(|| {
                        ipvs.detached()
                            .find(|(id, _)| *id == dest)
                            .map(|(_, d)| d.service)
                    })
            })?;
            self.per_dest.insert(dest, (key, TrafficStats::default()));
        }
        self.per_dest.get_mut(&dest).map(|(_, s)| s)
    }

    pub(crate) fn dest(&self, dest: DestId) -> Option<TrafficStats> {
        self.per_dest.get(&dest).map(|(_, s)| *s)
    }

    pub(crate) fn service(&self, key: &ServiceKey) -> TrafficStats {
        let mut t = self.retired.get(key).copied().unwrap_or_default();
        for (k, s) in self.per_dest.values() {
            if k == key {
                t.add(s);
            }
        }
        t
    }

    /// Every service's figures in one pass over the destinations (listing a large table
    /// service by service would cost services × destinations).
    pub(crate) fn services(&self) -> HashMap<ServiceKey, TrafficStats> {
        let mut out: HashMap<ServiceKey, TrafficStats> =
            self.retired.iter().map(|(k, s)| (*k, *s)).collect();
        for (k, s) in self.per_dest.values() {
            out.entry(*k).or_default().add(s);
        }
        out
    }

    /// `ipvsadm -Z`: the counters of `service` (every service when `None`) back to zero.
    pub(crate) fn zero(&mut self, service: Option<&ServiceKey>) {
        let hit = |k: &ServiceKey| service.is_none_or(|s| s == k);
        for (k, s) in self.per_dest.values_mut() {
            if hit(k) {
                *s = TrafficStats::default();
            }
        }
        self.retired.retain(|k, _| !hit(k));
    }

    /// Folds the counters of destinations no longer in any service into their service's
    /// retired totals. A destination in the trash keeps its counters: re-added, it is the
    /// same destination with the same statistics, as in the kernel (`ip_vs_trash_get_dest`).
    pub(crate) fn prune(&mut self, ipvs: &Ipvs) {
        let table = ipvs.services();
        let gone: Vec<DestId> = self
            .per_dest
            .keys()
            .filter(|id| table.dest(**id).is_none() && table.trashed(**id).is_none())
            .copied()
            .collect();
        for id in gone {
            if let Some((k, s)) = self.per_dest.remove(&id) {
                self.retired.entry(k).or_default().add(&s);
            }
        }
    }
}
