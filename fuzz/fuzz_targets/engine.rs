//! Fuzzes the forwarding engine: the input is split into frames
//! (`[len_hi, len_lo, interface selector, bytes...]`) fed to the lab engine after a NAT SYN;
//! every `Tx`/`Reply` output must be a well-formed frame. `ipvs-core`'s
//! `engine::tests::fuzz_seeds_do_not_panic` runs the same body over `seeds/engine/`.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run engine corpus/engine` after copying
//! `seeds/engine/*` into `corpus/engine/`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ipvs_core::engine::fuzzing::frames_body(data);
});
