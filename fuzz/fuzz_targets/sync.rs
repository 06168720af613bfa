//! Fuzz target: connection-sync datagrams as a receiving lvsd meets them, and the records
//! they carry applied to the lab engine (`ipvs_core::sync::fuzzing::body`: raw datagrams
//! through the receiver, the input's entries signed with the pair's key and imported,
//! structured records imported then exported into a second engine). Contract: no panic,
//! nothing accepted that the key did not sign, the accounting invariants hold.
//! `ipvs-core`'s `sync::tests::fuzz_seeds_do_not_panic` runs the body over `seeds/sync/`.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run sync corpus/sync` after copying `seeds/sync/*` into
//! `corpus/sync/`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ipvs_core::sync::fuzzing::body(data);
});
