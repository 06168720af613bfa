//! One destination (real server) and its connection accounting.
//!
//! This module sits below both [`crate::sched`] (every scheduler reads [`Dest`]) and
//! [`crate::service`] (which owns the destinations and re-exports these types), so neither
//! of those depends on the other for it.
//!
//! The accounting mirrors the kernel's `ip_vs_bind_dest` / `ip_vs_unbind_dest`
//! (`ip_vs_conn.c`) and the TCP state handler's active/inactive moves: counters change
//! only through [`Dest::bind`], [`Dest::unbind`] and [`Dest::state_changed`], and the
//! OVERLOAD flag follows the upper/lower thresholds exactly like the kernel (see
//! [`Dest::bind`] and [`Dest::unbind`]).
//!
//! Nothing here panics. Counter underflow (an `unbind` without a matching `bind`) is
//! reported as an error and leaves the counters untouched.

use std::net::Ipv4Addr;

use crate::time::Instant;
use crate::types::{DestId, ForwardMethod};

/// Errors from one destination's configuration or accounting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestError {
    /// Weight above 65535.
    #[error("weight {weight} out of range 0..=65535")]
    WeightOutOfRange {
        /// The weight given.
        weight: u32,
    },
    /// Lower threshold above the upper one (kernel `ERANGE`).
    #[error("lower threshold {lower} is higher than upper threshold {upper}")]
    ThresholdsInverted {
        /// Upper threshold given.
        upper: u32,
        /// Lower threshold given.
        lower: u32,
    },
    /// `unbind`/`state_changed` would take a counter below zero.
    #[error("connection counter underflow on {id:?} ({class:?})")]
    CounterUnderflow {
        /// Destination.
        id: DestId,
        /// Counter that would underflow.
        class: ConnClass,
    },
}

/// Largest weight ipvsadm accepts (`-w 0..65535`).
pub const MAX_WEIGHT: u32 = 65_535;

/// What an operator sets on a destination (`ipvsadm -a/-e -r addr:port -w -x -y -m/-g/-i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DestConfig {
    /// Real server address.
    pub addr: Ipv4Addr,
    /// Real server port (0 keeps the packet's port in fwmark services).
    pub port: u16,
    /// Weight, `0..=65535`; 0 quiesces the destination (no new connections).
    pub weight: u32,
    /// Upper connection threshold `-x`; 0 disables it.
    pub u_threshold: u32,
    /// Lower connection threshold `-y`; 0 means "3/4 of the upper threshold".
    pub l_threshold: u32,
    /// Forwarding method.
    pub method: ForwardMethod,
}

impl DestConfig {
    /// A destination with weight 1, no thresholds, and the given method.
    pub const fn new(addr: Ipv4Addr, port: u16, method: ForwardMethod) -> Self {
        DestConfig {
            addr,
            port,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            method,
        }
    }

    /// Same config with another weight.
    pub const fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Same config with other thresholds (`upper`, `lower`).
    pub const fn with_thresholds(mut self, upper: u32, lower: u32) -> Self {
        self.u_threshold = upper;
        self.l_threshold = lower;
        self
    }

    /// Checks the ranges the kernel and ipvsadm enforce.
    pub fn validate(&self) -> Result<(), DestError> {
        if self.weight > MAX_WEIGHT {
            return Err(DestError::WeightOutOfRange {
                weight: self.weight,
            });
        }
        // ip_vs_add_dest / ip_vs_edit_dest refuse l > u with ERANGE.
        if self.l_threshold > self.u_threshold {
            return Err(DestError::ThresholdsInverted {
                upper: self.u_threshold,
                lower: self.l_threshold,
            });
        }
        Ok(())
    }
}

pub use crate::types::ConnClass;

/// One destination of a virtual service.
///
/// Fields are read through getters; the connection counters and the OVERLOAD flag change
/// only through the accounting methods so that the flag stays consistent with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    pub(crate) id: DestId,
    pub(crate) addr: Ipv4Addr,
    pub(crate) port: u16,
    pub(crate) weight: u32,
    /// Latest non-zero weight (kernel `last_weight`), used by `mh` so that quiescing a
    /// destination does not reshuffle the Maglev table.
    pub(crate) last_weight: u32,
    pub(crate) u_threshold: u32,
    pub(crate) l_threshold: u32,
    pub(crate) method: ForwardMethod,
    pub(crate) overloaded: bool,
    pub(crate) active_conns: u32,
    pub(crate) inactive_conns: u32,
    pub(crate) persist_conns: u32,
    /// While removed (in the trash): when the trash sweep first found nothing referring to
    /// it (kernel `idle_start`); `None` while live or still referenced.
    pub(crate) idle_start: Option<Instant>,
}

impl Dest {
    /// A fresh destination: counters zero, not overloaded, `last_weight = weight`
    /// (the kernel sets `last_weight` unconditionally on add).
    ///
    /// Does not validate `cfg`; [`crate::service::Service::add_dest`] does.
    pub fn new(id: DestId, cfg: &DestConfig) -> Self {
        Dest {
            id,
            addr: cfg.addr,
            port: cfg.port,
            weight: cfg.weight,
            last_weight: cfg.weight,
            u_threshold: cfg.u_threshold,
            l_threshold: cfg.l_threshold,
            method: cfg.method,
            overloaded: false,
            active_conns: 0,
            inactive_conns: 0,
            persist_conns: 0,
            idle_start: None,
        }
    }

    /// Applies an edit the way `__ip_vs_update_dest` does: weight and thresholds change,
    /// `last_weight` keeps the latest non-zero weight, and OVERLOAD is cleared when the
    /// upper threshold is removed or raised. Counters are kept. Address and port are the
    /// lookup key and do not change.
    pub(crate) fn apply_edit(&mut self, cfg: &DestConfig) {
        self.update(cfg, false);
    }

    /// Brings a removed destination back (kernel `ip_vs_add_dest` finding it with
    /// `ip_vs_trash_get_dest`, then `__ip_vs_update_dest(.., add = 1)`): the same object,
    /// so its id, its connection counters and its OVERLOAD flag are kept, except that
    /// OVERLOAD is cleared when the new upper threshold is 0 or higher than the old one;
    /// `last_weight` takes the new weight even when it is 0 (as on any add).
    pub(crate) fn revive(&mut self, cfg: &DestConfig) {
        self.update(cfg, true);
        self.idle_start = None;
    }

    /// `__ip_vs_update_dest`: `add` is true for an add (new or from the trash).
    fn update(&mut self, cfg: &DestConfig, add: bool) {
        if add || cfg.weight != 0 {
            self.last_weight = cfg.weight;
        }
        self.weight = cfg.weight;
        if cfg.u_threshold == 0 || cfg.u_threshold > self.u_threshold {
            self.overloaded = false;
        }
        self.u_threshold = cfg.u_threshold;
        self.l_threshold = cfg.l_threshold;
        self.method = cfg.method;
    }

    /// Stable identifier (what the connection table stores).
    pub fn id(&self) -> DestId {
        self.id
    }
    /// Real server address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }
    /// Real server port.
    pub fn port(&self) -> u16 {
        self.port
    }
    /// Current weight (0 = quiesced).
    pub fn weight(&self) -> u32 {
        self.weight
    }
    /// Latest non-zero weight (the weight given at add time if it has always been 0).
    pub fn last_weight(&self) -> u32 {
        self.last_weight
    }
    /// Upper threshold (0 = none).
    pub fn u_threshold(&self) -> u32 {
        self.u_threshold
    }
    /// Lower threshold (0 = derived from the upper one).
    pub fn l_threshold(&self) -> u32 {
        self.l_threshold
    }
    /// Forwarding method.
    pub fn method(&self) -> ForwardMethod {
        self.method
    }
    /// Whether the OVERLOAD flag is set (no new connections until it clears).
    pub fn is_overloaded(&self) -> bool {
        self.overloaded
    }
    /// `ActiveConn` column.
    pub fn active_conns(&self) -> u32 {
        self.active_conns
    }
    /// `InActConn` column.
    pub fn inactive_conns(&self) -> u32 {
        self.inactive_conns
    }
    /// Persistence templates bound to this destination.
    pub fn persist_conns(&self) -> u32 {
        self.persist_conns
    }

    /// `active + inactive` (kernel `ip_vs_dest_totalconns`; templates excluded).
    pub fn total_conns(&self) -> u64 {
        u64::from(self.active_conns) + u64::from(self.inactive_conns)
    }

    /// Kernel `ip_vs_dest_conn_overhead`: `active * 256 + inactive`.
    #[inline]
    pub fn overhead(&self) -> u64 {
        (u64::from(self.active_conns) << 8) + u64::from(self.inactive_conns)
    }

    /// Whether a scheduler may give this destination a new connection:
    /// weight > 0 and OVERLOAD clear.
    #[inline]
    pub fn is_eligible(&self) -> bool {
        self.weight > 0 && !self.overloaded
    }

    /// Counts a new connection (kernel `ip_vs_bind_dest`): bumps the counter for `class`,
    /// then sets OVERLOAD when `u_threshold != 0` and `active + inactive >= u_threshold`.
    pub fn bind(&mut self, class: ConnClass) {
        let counter = match class {
            ConnClass::Active => &mut self.active_conns,
            ConnClass::Inactive => &mut self.inactive_conns,
            ConnClass::Template => &mut self.persist_conns,
        };
        *counter = counter.saturating_add(1);
        if self.u_threshold != 0 && self.total_conns() >= u64::from(self.u_threshold) {
            self.overloaded = true;
        }
    }

    /// Forgets a connection (kernel `ip_vs_unbind_dest`): drops the counter for `class`,
    /// then clears OVERLOAD when
    /// - `l_threshold != 0`: `active + inactive < l_threshold`;
    /// - else `u_threshold != 0`: `(active + inactive) * 4 < u_threshold * 3`;
    /// - else always.
    pub fn unbind(&mut self, class: ConnClass) -> Result<(), DestError> {
        let counter = match class {
            ConnClass::Active => &mut self.active_conns,
            ConnClass::Inactive => &mut self.inactive_conns,
            ConnClass::Template => &mut self.persist_conns,
        };
        *counter = counter
            .checked_sub(1)
            .ok_or(DestError::CounterUnderflow { id: self.id, class })?;
        let total = self.total_conns();
        if self.l_threshold != 0 {
            if total < u64::from(self.l_threshold) {
                self.overloaded = false;
            }
        } else if self.u_threshold != 0 {
            if total * 4 < u64::from(self.u_threshold) * 3 {
                self.overloaded = false;
            }
        } else {
            self.overloaded = false;
        }
        Ok(())
    }

    /// A bound connection moved between active and inactive (TCP state change). The total
    /// does not change, so neither does OVERLOAD (as in the kernel).
    pub fn state_changed(&mut self, was_active: bool, is_active: bool) -> Result<(), DestError> {
        match (was_active, is_active) {
            (true, false) => {
                let class = ConnClass::Active;
                self.active_conns = self
                    .active_conns
                    .checked_sub(1)
                    .ok_or(DestError::CounterUnderflow { id: self.id, class })?;
                self.inactive_conns = self.inactive_conns.saturating_add(1);
            }
            (false, true) => {
                let class = ConnClass::Inactive;
                self.inactive_conns = self
                    .inactive_conns
                    .checked_sub(1)
                    .ok_or(DestError::CounterUnderflow { id: self.id, class })?;
                self.active_conns = self.active_conns.saturating_add(1);
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(u: u32, l: u32) -> Dest {
        let cfg = DestConfig::new(Ipv4Addr::new(10, 0, 0, 1), 80, ForwardMethod::Masq)
            .with_thresholds(u, l);
        Dest::new(DestId(1), &cfg)
    }

    #[test]
    fn overload_with_upper_only_clears_below_three_quarters() {
        // u = 8: set at total >= 8; clear when total*4 < 24, i.e. total <= 5.
        let mut d = dest(8, 0);
        for _ in 0..7 {
            d.bind(ConnClass::Inactive);
        }
        assert!(!d.is_overloaded(), "7 < 8");
        d.bind(ConnClass::Inactive);
        assert!(d.is_overloaded(), "8 >= 8");
        d.unbind(ConnClass::Inactive).expect("bound");
        assert!(d.is_overloaded(), "7*4=28 >= 24 keeps it");
        d.unbind(ConnClass::Inactive).expect("bound");
        assert!(d.is_overloaded(), "6*4=24 is not < 24");
        d.unbind(ConnClass::Inactive).expect("bound");
        assert!(!d.is_overloaded(), "5*4=20 < 24 clears");
    }

    #[test]
    fn overload_with_lower_threshold() {
        // u = 4, l = 2: set at 4, clear only below 2.
        let mut d = dest(4, 2);
        for _ in 0..2 {
            d.bind(ConnClass::Active);
            d.bind(ConnClass::Inactive);
        }
        assert!(d.is_overloaded());
        d.unbind(ConnClass::Active).expect("bound");
        d.unbind(ConnClass::Active).expect("bound");
        assert!(d.is_overloaded(), "total 2 is not < 2");
        d.unbind(ConnClass::Inactive).expect("bound");
        assert!(!d.is_overloaded(), "total 1 < 2");
    }

    #[test]
    fn templates_do_not_count_towards_thresholds() {
        let mut d = dest(2, 0);
        d.bind(ConnClass::Template);
        d.bind(ConnClass::Template);
        d.bind(ConnClass::Template);
        assert!(!d.is_overloaded());
        assert_eq!(d.persist_conns(), 3);
        d.bind(ConnClass::Inactive);
        d.bind(ConnClass::Inactive);
        assert!(d.is_overloaded());
        // Unbinding a template re-evaluates: total 2, 2*4=8 >= 6, stays.
        d.unbind(ConnClass::Template).expect("bound");
        assert!(d.is_overloaded());
    }

    #[test]
    fn no_thresholds_unbind_always_clears() {
        let mut d = dest(0, 0);
        d.overloaded = true; // e.g. left over from a threshold that was removed
        d.bind(ConnClass::Active);
        assert!(d.is_overloaded(), "bind never clears");
        d.unbind(ConnClass::Active).expect("bound");
        assert!(!d.is_overloaded());
    }

    #[test]
    fn state_changes_move_counters_and_keep_overload() {
        let mut d = dest(2, 0);
        d.bind(ConnClass::Inactive);
        d.bind(ConnClass::Inactive);
        assert!(d.is_overloaded());
        d.state_changed(false, true).expect("one inactive");
        assert_eq!((d.active_conns(), d.inactive_conns()), (1, 1));
        assert!(d.is_overloaded());
        d.state_changed(true, true).expect("no-op");
        assert_eq!((d.active_conns(), d.inactive_conns()), (1, 1));
        d.state_changed(true, false).expect("one active");
        assert_eq!((d.active_conns(), d.inactive_conns()), (0, 2));
        assert!(d.state_changed(true, false).is_err(), "no active left");
        assert_eq!((d.active_conns(), d.inactive_conns()), (0, 2));
    }

    #[test]
    fn unbind_underflow_is_an_error() {
        let mut d = dest(0, 0);
        assert_eq!(
            d.unbind(ConnClass::Template),
            Err(DestError::CounterUnderflow {
                id: DestId(1),
                class: ConnClass::Template
            })
        );
    }

    #[test]
    fn edit_clears_overload_when_upper_threshold_raised_or_removed() {
        let mut d = dest(1, 0);
        d.bind(ConnClass::Active);
        assert!(d.is_overloaded());
        let base = DestConfig::new(d.addr(), d.port(), ForwardMethod::Masq);
        d.apply_edit(&base.with_thresholds(1, 0));
        assert!(d.is_overloaded(), "same threshold keeps the flag");
        d.apply_edit(&base.with_thresholds(5, 0));
        assert!(!d.is_overloaded(), "raised threshold clears");
        d.bind(ConnClass::Active);
        d.apply_edit(&base.with_thresholds(1, 0));
        assert!(
            !d.is_overloaded(),
            "lowering never sets; the next bind does"
        );
        d.bind(ConnClass::Active);
        assert!(d.is_overloaded());
        d.apply_edit(&base.with_thresholds(0, 0));
        assert!(!d.is_overloaded(), "removed threshold clears");
    }

    /// `__ip_vs_update_dest` with `add = 1` on a destination from the trash: counters and
    /// OVERLOAD are kept unless the upper threshold is 0 or raised; `last_weight` follows
    /// the new weight even when it is 0.
    #[test]
    fn revive_keeps_counters_and_overload_unless_threshold_cleared_or_raised() {
        let mut d = dest(2, 0);
        d.bind(ConnClass::Active);
        d.bind(ConnClass::Inactive);
        assert!(d.is_overloaded());
        d.idle_start = Some(Instant::from_secs(5));
        let base = DestConfig::new(d.addr(), d.port(), ForwardMethod::Masq);
        d.revive(&base.with_thresholds(2, 0).with_weight(3));
        assert_eq!((d.active_conns(), d.inactive_conns()), (1, 1));
        assert!(d.is_overloaded(), "same upper threshold keeps OVERLOAD");
        assert_eq!((d.weight(), d.last_weight(), d.idle_start), (3, 3, None));
        d.revive(&base.with_thresholds(1, 0));
        assert!(d.is_overloaded(), "a lower threshold keeps it too");
        d.revive(&base.with_thresholds(4, 0).with_weight(0));
        assert!(!d.is_overloaded(), "a raised threshold clears it");
        assert_eq!(
            (d.weight(), d.last_weight()),
            (0, 0),
            "add sets last_weight"
        );
        d.bind(ConnClass::Active);
        d.bind(ConnClass::Active);
        assert!(d.is_overloaded());
        d.revive(&base.with_thresholds(0, 0));
        assert!(!d.is_overloaded(), "no threshold clears it");
    }

    #[test]
    fn last_weight_keeps_latest_non_zero() {
        let mut d = dest(0, 0);
        let base = DestConfig::new(d.addr(), d.port(), ForwardMethod::Masq);
        d.apply_edit(&base.with_weight(7));
        d.apply_edit(&base.with_weight(0));
        assert_eq!((d.weight(), d.last_weight()), (0, 7));
    }

    #[test]
    fn config_validation() {
        let base = DestConfig::new(Ipv4Addr::LOCALHOST, 1, ForwardMethod::Route);
        assert!(base.with_weight(65_535).validate().is_ok());
        assert!(base.with_weight(65_536).validate().is_err());
        assert!(base.with_thresholds(10, 11).validate().is_err());
        assert!(base.with_thresholds(10, 10).validate().is_ok());
    }
}
