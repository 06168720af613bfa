//! Rate-limited reporting of dropped frames, refused connections and IPv4 fragments that
//! never made a datagram.
//!
//! The engine counts every dropped frame by reason and every refused connection (a full
//! connection table among them) without logging: a flood must not become a flood of log
//! lines. Every [`EVERY`] the worker calls [`Reporter::tick`], which logs one warning per
//! counter that grew since the last report, with the increase: at most one line per reason
//! per interval.

use std::time::Duration;

use ipvs_core::engine::{Engine, FragCounters};
use ipvs_core::ipvs::RefusalCounts;
use ipvs_core::time::Instant;
use tracing::warn;

/// Interval between reports.
pub const EVERY: Duration = Duration::from_secs(10);

/// See the module docs.
#[derive(Debug)]
pub struct Reporter {
    drops: Vec<u64>,
    refusals: RefusalCounts,
    frags: FragCounters,
    next: Instant,
}

impl Reporter {
    /// Starts from the engine's current counters.
    pub fn new(engine: &Engine, now: Instant) -> Reporter {
        Reporter {
            drops: engine.drop_counts().iter().map(|(_, n)| n).collect(),
            refusals: engine.ipvs().refusals(),
            frags: *engine.frag_counters(),
            next: now + EVERY,
        }
    }

    /// Logs what grew since the last report, at most once per [`EVERY`].
    pub fn tick(&mut self, engine: &Engine, now: Instant) {
        if now < self.next {
            return;
        }
        self.next = now + EVERY;
        for ((reason, n), last) in engine.drop_counts().iter().zip(self.drops.iter_mut()) {
            if n > *last {
                warn!(reason, dropped = n - *last, total = n, "frames dropped");
                *last = n;
            }
        }
        let r = engine.ipvs().refusals();
        let pairs = [
            (
                "connection table full",
                r.table_full,
                self.refusals.table_full,
            ),
            (
                "no destination available",
                r.no_destination,
                self.refusals.no_destination,
            ),
            (
                "template slots exhausted",
                r.template_slots_exhausted,
                self.refusals.template_slots_exhausted,
            ),
            ("unexpected", r.unexpected, self.refusals.unexpected),
        ];
        for (reason, n, last) in pairs {
            if n > last {
                warn!(
                    reason,
                    refused = n - last,
                    total = n,
                    "new connections refused"
                );
            }
        }
        self.refusals = r;
        // Fragments that never made a datagram (a flood of fragments, a lossy path).
        let f = *engine.frag_counters();
        let was = &self.frags;
        let pairs = [
            ("reassembly timed out", f.timeouts, was.timeouts),
            ("reassembly memory full", f.over_budget, was.over_budget),
            ("overlapping fragments", f.overlaps, was.overlaps),
            ("malformed fragments", f.bad, was.bad),
        ];
        for (reason, n, last) in pairs {
            if n > last {
                warn!(
                    reason,
                    fragments = n - last,
                    total = n,
                    "IPv4 fragments dropped"
                );
            }
        }
        self.frags = f;
    }
}
