//! Any bytes as an archive of the weightless baseline: an error or the original, never a
//! panic, a hang or unbounded memory.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lmzip_models::ContextMixing;

fuzz_target!(|data: &[u8]| {
    let _ = lmzip::decompress(data, ContextMixing::new());
});
