//! Fuzz target: arbitrary bytes through the `lvs.cf` parser, desired table and renderer.
//! The body and its contracts live in `lvsd::fuzzing::lvscf_body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lvsd::fuzzing::lvscf_body(data);
});
