//! The kernel's two-second rate estimator (`net/netfilter/ipvs/ip_vs_est.c`), pure.
//!
//! Every 2 s the kernel takes the difference of each counter since the last sample, scales it
//! to a per-second rate in fixed point (`<< 9` = ×2¹⁰/2 for connections and packets, `<< 4` =
//! ×2⁵/2 for bytes) and folds it into an average with weight ¼:
//! `avg += (rate - avg) >> 2` (signed). Readers get `(avg + 0x1FF) >> 10` for cps/pps and
//! `(avg + 0xF) >> 5` for bps (`ip_vs_read_estimator`).
//!
//! The estimator reads no clock: the caller is the 2-second timer (lvsd's
//! `daemon::rates::RateBook` samples every estimator once per [`PERIOD_MS`], as the kernel's
//! `estimation_timer` does) and passes the current [`Stats`] to [`RateEstimator::sample`].
//! Nothing here panics; counter wrap-around is handled with wrapping arithmetic as the
//! kernel's unsigned subtraction does.

use serde::{Deserialize, Serialize};

use super::table::{Rates, Stats};

/// Sampling period of the kernel's estimator.
pub const PERIOD_MS: u64 = 2000;

/// Fixed-point averages and the last sample of one service or real server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateEstimator {
    last: Stats,
    cps: i64,
    inpps: i64,
    outpps: i64,
    inbps: i64,
    outbps: i64,
}

/// `avg += (rate - avg) >> 2`, in the kernel's signed 64-bit arithmetic.
fn fold(avg: &mut i64, now: u64, last: u64, shift: u32) {
    let rate = (now.wrapping_sub(last) << shift) as i64;
    *avg = avg.wrapping_add(rate.wrapping_sub(*avg) >> 2);
}

/// Decodes a fixed-point average: `(avg + round) >> shift`, negative averages read as 0.
fn decode(avg: i64, round: i64, shift: u32) -> u64 {
    u64::try_from(avg.saturating_add(round) >> shift).unwrap_or(0)
}

impl RateEstimator {
    /// Starts estimating from `stats` (`ip_vs_start_estimator`: averages 0, the current
    /// counters as the last sample); the caller's next sample is the first.
    pub fn new(stats: &Stats) -> RateEstimator {
        RateEstimator {
            last: *stats,
            ..RateEstimator::default()
        }
    }

    /// One 2-second sample (`estimation_timer`'s body for one estimator).
    pub fn sample(&mut self, stats: &Stats) {
        let last = self.last;
        fold(&mut self.cps, stats.conns, last.conns, 9);
        fold(&mut self.inpps, stats.inpkts, last.inpkts, 9);
        fold(&mut self.outpps, stats.outpkts, last.outpkts, 9);
        fold(&mut self.inbps, stats.inbytes, last.inbytes, 4);
        fold(&mut self.outbps, stats.outbytes, last.outbytes, 4);
        self.last = *stats;
    }

    /// Forgets the averages and restarts from `stats` (`-Z`, `ip_vs_zero_estimator`).
    pub fn zero(&mut self, stats: &Stats) {
        *self = RateEstimator::new(stats);
    }

    /// The rates as `ipvsadm --rate` shows them (`ip_vs_read_estimator`).
    pub fn rates(&self) -> Rates {
        Rates {
            cps: decode(self.cps, 0x1FF, 10),
            inpps: decode(self.inpps, 0x1FF, 10),
            outpps: decode(self.outpps, 0x1FF, 10),
            inbps: decode(self.inbps, 0xF, 5),
            outbps: decode(self.outbps, 0xF, 5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(conns: u64, pkts: u64, bytes: u64) -> Stats {
        Stats {
            conns,
            inpkts: pkts,
            outpkts: pkts / 2,
            inbytes: bytes,
            outbytes: bytes / 2,
        }
    }

    #[test]
    fn first_sample_is_a_quarter_of_the_rate() {
        let mut e = RateEstimator::new(&Stats::default());
        // 200 connections in 2 s = 100/s; after one sample the average is 25/s.
        e.sample(&stats(200, 2000, 200_000));
        let r = e.rates();
        assert_eq!(r.cps, 25);
        assert_eq!(r.inpps, 250);
        assert_eq!(r.outpps, 125);
        assert_eq!(r.inbps, 25_000);
        assert_eq!(r.outbps, 12_500);
    }

    #[test]
    fn converges_to_a_steady_rate() {
        let mut e = RateEstimator::new(&Stats::default());
        for i in 1..=40u64 {
            e.sample(&stats(100 * i, 1000 * i, 64_000 * i));
        }
        let r = e.rates();
        assert_eq!(r.cps, 50);
        assert_eq!(r.inpps, 500);
        assert_eq!(r.inbps, 32_000);
    }

    #[test]
    fn decays_and_never_goes_negative() {
        let mut e = RateEstimator::new(&Stats::default());
        e.sample(&stats(1000, 0, 0));
        for _ in 0..100 {
            e.sample(&stats(1000, 0, 0));
        }
        assert_eq!(e.rates().cps, 0);
        // A counter reset (zeroed elsewhere) wraps like the kernel's u64 subtraction.
        e.sample(&Stats::default());
        let _ = e.rates();
        e.zero(&Stats::default());
        assert_eq!(e.rates(), Rates::default());
    }
}
