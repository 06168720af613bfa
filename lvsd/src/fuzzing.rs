//! The fuzz body for `lvs.cf`, shared by `fuzz/fuzz_targets/lvscf.rs` and the seed-corpus
//! test so that `cargo test` exercises it on stable.
//!
//! Contract checked on every input: parsing never panics; every error but I/O has a
//! `FILE:LINE` location with a line inside the file; an accepted file yields a desired table
//! whose rendering has one `-A` line per service and one `-a` line per destination.

use crate::check::render_ipvsadm_save;
use crate::desired::desired_table;
use crate::lvscf::{StaticLookup, parse_bytes};

/// Runs one input. Panics (on purpose) when a contract above is broken.
pub fn lvscf_body(data: &[u8]) {
    let lookup = StaticLookup::new().host("rs.example", std::net::Ipv4Addr::new(198, 18, 0, 1));
    match parse_bytes("fuzz.cf", data, &lookup) {
        Ok(cfg) => {
            let table = desired_table("fuzz.cf", &cfg);
            let text = render_ipvsadm_save(&table);
            let services = text.lines().filter(|l| l.starts_with("-A ")).count();
            let dests = text.lines().filter(|l| l.starts_with("-a ")).count();
            assert_eq!(services, table.services.len());
            assert_eq!(
                dests,
                table.services.iter().map(|s| s.dests.len()).sum::<usize>()
            );
        }
        Err(e) => {
            let at = e.location().expect("parsing bytes does no I/O");
            let lines = data.iter().filter(|&&b| b == b'\n' || b == b'\r').count() + 1;
            assert!(
                at.line >= 1 && at.line <= lines,
                "line {} of {lines}: {e}",
                at.line
            );
            assert!(e.to_string().starts_with(&format!("fuzz.cf:{}: ", at.line)));
        }
    }
}
