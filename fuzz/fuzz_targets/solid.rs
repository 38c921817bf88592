//! Any bytes after a solid-mode header (format 2, a mixer level) as an archive of the adaptive
//! models alone: an error or the original, never a panic, a hang or unbounded memory. The
//! header comes from the input, so block sizes and levels are fuzzed too; blocks are capped at
//! 64 KiB here to keep each run short (the coding is the same at any size).
#![no_main]
use libfuzzer_sys::fuzz_target;
use lmzip_models::{ContextMixing, Level, Mixed};
use std::io::Read;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    let Ok(header) = lmzip::Header::read(&mut input) else {
        return;
    };
    let (Some(level), true) = (header.mixer.and_then(Level::new), header.chunk_size <= 1 << 16)
    else {
        return;
    };
    let Ok(model) = Mixed::new(ContextMixing::new(), level, header.chunk_size) else {
        return;
    };
    if let Ok(mut dec) = lmzip::read::Decoder::with_header(input, header, model, 2) {
        let mut out = Vec::new();
        let _ = dec.read_to_end(&mut out);
    }
});
