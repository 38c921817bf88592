//! Throughput of a ~125M-parameter Llama-shaped model with random weights on this machine:
//! teacher-forced and incremental tokens per second on 2 threads (one sequence each), with
//! f32 weights (numerics 1-4) and int8 ones (numerics 5), and the cost of turning one token's
//! logits into an integer frequency table.
//!
//! `cargo run --release -p lmzip-engine --example llama_speed [-- TOKENS]`

use lmzip_engine::quantize;
use lmzip_models::llama::{Llama, LlamaConfig, LlamaScratch};
use std::time::Instant;

fn main() {
    let tokens: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(256);
    let config: LlamaConfig = serde_json::from_str(
        r#"{"hidden_size": 768, "intermediate_size": 2048, "num_hidden_layers": 12,
            "num_attention_heads": 12, "num_key_value_heads": 4, "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0, "vocab_size": 32000, "tie_word_embeddings": false,
            "max_position_embeddings": 2048}"#,
    )
    .expect("a valid config");
    let tensors = lmzip_testkit::random_llama_tensors(&config, 1, 0.025);
    let params: usize = tensors.iter().map(Vec::len).sum();
    let f32_model = Llama::new(config.clone(), tensors);
    let vocab = config.vocab_size;
    println!("{params} parameters, {tokens} tokens per sequence, 2 threads");
    for (weights, model) in [("f32", f32_model.clone()), ("int8", f32_model.into_int8())] {
        measure(&model, weights, tokens, vocab);
    }

    let logits: Vec<f32> = (0..vocab).map(|i| ((i * 31 % 977) as f32) * 0.01).collect();
    let mut freqs = vec![0u32; vocab];
    let reps = 200;
    let t = Instant::now();
    for _ in 0..reps {
        quantize::frequencies(&logits, &mut freqs);
    }
    let per = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "frequency table over {vocab} symbols: {:.1} µs per token",
        per * 1e6
    );
}

/// Teacher-forced and incremental tokens per second of `model` on two threads.
fn measure(model: &Llama, weights: &str, tokens: usize, vocab: usize) {
    let seq = |s: usize| -> Vec<u32> {
        (0..tokens)
            .map(|i| ((i * 7919 + s * 104_729) % vocab) as u32)
            .collect()
    };
    let tf = 2.0 * tokens as f64
        / on_two_threads(|id| {
            let toks = seq(id);
            let mut logits = vec![0.0; toks.len() * vocab];
            model.forward(&toks, &mut logits, &mut LlamaScratch::default());
        });
    println!("{weights}: teacher-forced: {tf:.1} tokens/s");

    let steps = tokens.min(64);
    let inc = 2.0 * steps as f64
        / on_two_threads(|id| {
            let mut cache = model.new_cache();
            let mut row = vec![0.0; vocab];
            let mut scratch = LlamaScratch::default();
            for &tok in &seq(id)[..steps] {
                model.step(&mut [&mut cache], &[tok], &mut row, &mut scratch);
            }
        });
    println!("{weights}: incremental ({steps} steps): {inc:.1} tokens/s");
}

/// Seconds to run `work(0)` and `work(1)` on two threads at once.
fn on_two_threads(work: impl Fn(usize) + Sync) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for id in 0..2 {
            let work = &work;
            s.spawn(move || work(id));
        }
    });
    t.elapsed().as_secs_f64()
}
