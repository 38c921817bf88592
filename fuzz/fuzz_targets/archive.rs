//! Any bytes as an archive of the weightless baseline, or of the adaptive models alone in solid
//! mode when the header asks for a mixer: an error or the original, never a panic, a hang or
//! unbounded memory.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lmzip_models::{ContextMixing, Level, Mixed};
use std::io::Read;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    let Ok(header) = lmzip::Header::read(&mut input) else {
        return;
    };
    let mut out = Vec::new();
    match header.mixer.and_then(Level::new) {
        Some(level) => {
            let block = header.chunk_size;
            let Ok(model) = Mixed::new(ContextMixing::new(), level, block) else {
                return;
            };
            if let Ok(mut dec) = lmzip::read::Decoder::with_header(input, header, model, 2) {
                let _ = dec.read_to_end(&mut out);
            }
        }
        None => {
            let _ = lmzip::decompress(data, ContextMixing::new());
        }
    }
});
