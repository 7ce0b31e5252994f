//! cargo-fuzz target: the whole scanner under arbitrary input scripts (body in the library).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| iacscope_shared::fuzzing::fuzz_scan(data));
