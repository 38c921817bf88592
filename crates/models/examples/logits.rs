//! Print a model's teacher-forced logits for one chunk as little-endian f32 on standard
//! output (`chunk length × 256` values), to compare the engine with another implementation,
//! such as `scripts/train_gpu.py --check`.
//!
//! `cargo run --release -p lmzip-engine --example logits -- MODEL_DIR CHUNK_FILE > logits.f32`

use lmzip_models::transformer::{Scratch, chunk_inputs, config::OUTPUT_VOCAB, file};
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, chunk] = args.as_slice() else {
        return Err("usage: logits MODEL_DIR CHUNK_FILE".into());
    };
    let model = file::load(model.as_ref())?.transformer;
    let chunk = std::fs::read(chunk)?;
    if chunk.len() > model.config().context {
        return Err(format!(
            "the chunk is longer than the context {}",
            model.config().context
        )
        .into());
    }
    let mut logits = vec![0.0f32; chunk.len() * OUTPUT_VOCAB];
    model.forward(&chunk_inputs(&chunk), &mut logits, &mut Scratch::default());
    let bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::io::stdout().write_all(&bytes)?;
    Ok(())
}
