//! The kernel's two-second rate estimator (`net/netfilter/ipvs/ip_vs_est.c`), pure.
//!
//! Every 2 s the kernel takes the difference of each counter since the last sample, scales it
//! to a per-second rate in fixed point (`<< 9` = ×2¹⁰/2 for connections and packets, `<< 4` =
//! ×2⁵/2 for bytes) and folds it into an average with weight ¼:
//! `avg += (rate - avg) >> 2` (signed). Readers get `(avg + 0x1FF) >> 10` for cps/pps and
//! `(avg + 0xF) >> 5` for bps (`ip_vs_read_estimator`).
//!
//! The estimator reads no clock: the caller passes `now` in milliseconds on any monotonic
//! scale and the current [`Stats`]; [`RateEstimator::poll_timeout`] says when the next sample
//! is due. Nothing here panics; counter wrap-around is handled with wrapping arithmetic as
//! the kernel's unsigned subtraction does.

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
    next_ms: u64,
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
    /// Starts estimating from `stats` at `now_ms` (`ip_vs_start_estimator`: averages 0, the
    /// current counters as the last sample); the first sample is due 2 s later.
    pub fn new(now_ms: u64, stats: &Stats) -> RateEstimator {
        RateEstimator {
            last: *stats,
            next_ms: now_ms.saturating_add(PERIOD_MS),
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

    /// Takes a sample if one is due at `now_ms`; returns whether it did. If the caller was
    /// late by more than a period, one sample covers the whole gap (the difference is still
    /// divided by 2 s, as the kernel does when its timer runs late) and the schedule resumes
    /// from `now_ms`.
    pub fn poll(&mut self, now_ms: u64, stats: &Stats) -> bool {
        if now_ms < self.next_ms {
            return false;
        }
        self.sample(stats);
        self.next_ms = self.next_ms.saturating_add(PERIOD_MS);
        if self.next_ms <= now_ms {
            self.next_ms = now_ms.saturating_add(PERIOD_MS);
        }
        true
    }

    /// When the next sample is due.
    pub fn poll_timeout(&self) -> u64 {
        self.next_ms
    }

    /// Forgets the averages and restarts from `stats` (`-Z`, `ip_vs_zero_estimator`).
    pub fn zero(&mut self, stats: &Stats) {
        *self = RateEstimator {
            last: *stats,
            next_ms: self.next_ms,
            ..RateEstimator::default()
        };
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
        let mut e = RateEstimator::new(0, &Stats::default());
        // 200 connections in 2 s = 100/s; after one sample the average is 25/s.
        assert!(e.poll(2000, &stats(200, 2000, 200_000)));
        let r = e.rates();
        assert_eq!(r.cps, 25);
        assert_eq!(r.inpps, 250);
        assert_eq!(r.outpps, 125);
        assert_eq!(r.inbps, 25_000);
        assert_eq!(r.outbps, 12_500);
    }

    #[test]
    fn converges_to_a_steady_rate() {
        let mut e = RateEstimator::new(0, &Stats::default());
        let mut now = 0;
        for i in 1..=40u64 {
            now += PERIOD_MS;
            assert!(e.poll(now, &stats(100 * i, 1000 * i, 64_000 * i)));
        }
        let r = e.rates();
        assert_eq!(r.cps, 50);
        assert_eq!(r.inpps, 500);
        assert_eq!(r.inbps, 32_000);
        assert_eq!(e.poll_timeout(), now + PERIOD_MS);
        assert!(!e.poll(now + 1999, &stats(0, 0, 0)));
    }

    #[test]
    fn decays_and_never_goes_negative() {
        let mut e = RateEstimator::new(0, &Stats::default());
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

    #[test]
    fn late_poll_resumes_from_now() {
        let mut e = RateEstimator::new(0, &Stats::default());
        assert!(e.poll(9000, &stats(10, 10, 10)));
        assert_eq!(e.poll_timeout(), 11_000);
    }
}
