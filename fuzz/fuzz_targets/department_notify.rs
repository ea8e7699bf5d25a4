//! Any bytes as a request body: the parser answers Ok or a field error, never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shared::dialects::department::parse(data);
});
