//! Fuzzes the forwarding engine: the input is split into frames
//! (`[len_hi, len_lo, interface selector, bytes...]`) fed to the lab engine after a NAT SYN;
//! every `Tx`/`Reply` output and every outbox frame must be a well-formed frame. The same
//! input is then read as fragment descriptions (`fragments_body`: fragments of UDP
//! datagrams through the NAT service both ways, with valid headers, in any order, with
//! overlaps, gaps and timeouts) for the reassembly path. `ipvs-core`'s
//! `engine::tests::fuzz_seeds_do_not_panic` runs both bodies over `seeds/engine/`.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run engine corpus/engine` after copying
//! `seeds/engine/*` into `corpus/engine/`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ipvs_core::engine::fuzzing::frames_body(data);
    ipvs_core::engine::fuzzing::fragments_body(data);
});
