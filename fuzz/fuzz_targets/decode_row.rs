#![no_main]
// The body lives in the library (sagascope::fuzzing), so `cargo test`
// replays this target's corpus on stable too.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sagascope::fuzzing::decode_row(data));
