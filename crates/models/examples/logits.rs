//! Print a model's teacher-forced logits for one chunk as little-endian f32 on standard
//! output (`chunk length × 256` values), to compare the engine with another implementation,
//! such as `scripts/train_gpu.py --check`. F32 weights and caches; with WINDOW, the sliding
//! attention window of numerics 2 (`train_gpu.py --check … --window WINDOW`).
//!
//! `cargo run --release -p lmzip-models --example logits -- MODEL_DIR CHUNK_FILE [WINDOW] > logits.f32`

use lmzip_models::transformer::{Scratch, WeightStorage, chunk_inputs, config::OUTPUT_VOCAB, file};
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (model, chunk, window) = match args.as_slice() {
        [_, model, chunk] => (model, chunk, usize::MAX),
        [_, model, chunk, window] => (model, chunk, window.parse()?),
        _ => return Err("usage: logits MODEL_DIR CHUNK_FILE [WINDOW]".into()),
    };
    let model = file::load(model.as_ref())?
        .transformer
        .with_weight_storage(WeightStorage::F32)
        .with_bf16_cache(false)
        .with_window(window);
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
