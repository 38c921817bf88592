//! Model files: a directory with `config.json` and `model.safetensors`.
//!
//! The model's identity is the SHA-256 of both files ([`model_sha256`]); archives record it, so
//! a model whose config or any weight bit changed is refused when decoding.

use super::config::Config;
use super::network::{Transformer, Weights, tensor_shapes, weights_from_tensors};
pub use crate::weights::{Error, model_sha256};
use crate::weights::{read_limited, read_tensors, uniform_values};
use safetensors::{Dtype, tensor::TensorView};
use std::path::Path;

/// The config file's name inside a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// The weights file's name inside a model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The largest weights file [`load`] reads (guards memory against a foreign file).
const MAX_WEIGHTS_BYTES: u64 = 4 << 30;

/// A loaded model and its identity.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The runnable model.
    pub transformer: Transformer,
    /// [`model_sha256`] of its files.
    pub sha256: [u8; 32],
}

/// Load the model in directory `dir`.
pub fn load(dir: &Path) -> Result<Loaded, Error> {
    let config_path = dir.join(CONFIG_FILE);
    let weights_path = dir.join(WEIGHTS_FILE);
    let config_bytes = read_limited(&config_path, 1 << 20)?;
    let weights_bytes = read_limited(&weights_path, MAX_WEIGHTS_BYTES)?;
    parse(&config_bytes, &weights_bytes).map_err(|(file, why)| Error::Invalid(dir.join(file), why))
}

/// The model whose `config.json` and `model.safetensors` are these bytes (a model compiled
/// into a program, say); the error names the file at fault.
pub fn from_bytes(config_bytes: &[u8], weights_bytes: &[u8]) -> Result<Loaded, String> {
    parse(config_bytes, weights_bytes).map_err(|(file, why)| format!("{file}: {why}"))
}

fn parse(config_bytes: &[u8], weights_bytes: &[u8]) -> Result<Loaded, (&'static str, String)> {
    let config: Config =
        serde_json::from_slice(config_bytes).map_err(|e| (CONFIG_FILE, e.to_string()))?;
    config.validate().map_err(|e| (CONFIG_FILE, e))?;
    let weights = parse_weights(&config, weights_bytes).map_err(|e| (WEIGHTS_FILE, e))?;
    Ok(Loaded {
        transformer: Transformer::new(config, weights),
        sha256: model_sha256(config_bytes, weights_bytes),
    })
}

/// Check and convert the tensors of a safetensors file for `config` (F32, F16 or BF16; every
/// value finite).
pub fn parse_weights(config: &Config, bytes: &[u8]) -> Result<Weights, String> {
    let shapes = tensor_shapes(config);
    let tensors = read_tensors(bytes, &shapes, true)?;
    Ok(weights_from_tensors(config, tensors))
}

/// The bytes of `config.json` and `model.safetensors` (F32) for a config and weights.
pub fn to_bytes(config: &Config, weights: &Weights) -> (Vec<u8>, Vec<u8>) {
    let mut config_json = serde_json::to_vec_pretty(config).expect("a config serializes");
    config_json.push(b'\n');
    let shapes = tensor_shapes(config);
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = weights
        .tensors()
        .into_iter()
        .zip(shapes)
        .map(|((name, _, values), (_, shape))| {
            (
                name,
                shape,
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = bytes.iter().map(|(name, shape, data)| {
        (
            name.as_str(),
            TensorView::new(Dtype::F32, shape.clone(), data).expect("shape matches data"),
        )
    });
    let safetensors = safetensors::serialize(views, None).expect("tensors serialize");
    (config_json, safetensors)
}

/// Write a model directory (created if needed) and return the model's SHA-256.
pub fn save(dir: &Path, config: &Config, weights: &Weights) -> Result<[u8; 32], Error> {
    let (config_json, safetensors) = to_bytes(config, weights);
    std::fs::create_dir_all(dir).map_err(|e| Error::Io(dir.to_path_buf(), e))?;
    for (name, bytes) in [(CONFIG_FILE, &config_json), (WEIGHTS_FILE, &safetensors)] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::Io(path, e))?;
    }
    Ok(model_sha256(&config_json, &safetensors))
}

/// Seeded random weights for `config` (for tests and benchmarks): matrices uniform in
/// `±sqrt(3 / fan_in)` (the output head a quarter of that), embeddings in `±1`, norms near 1,
/// small biases, and an output bias that favours the bytes of English text, so that even a
/// random model compresses text a little and the coded path is exercised.
pub fn random_weights(config: &Config, seed: u64) -> Weights {
    let mut next = uniform_values(seed);
    let tensors = tensor_shapes(config)
        .into_iter()
        .map(|(name, shape)| {
            let len: usize = shape.iter().product();
            let noise: Vec<f32> = (0..len).map(|_| next()).collect();
            if name.ends_with("norm.weight")
                || name.ends_with("ln1.weight")
                || name.ends_with("ln2.weight")
                || name == "ln_f.weight"
            {
                noise.iter().map(|x| 1.0 + 0.1 * x).collect()
            } else if name == "embed" {
                noise
            } else if name == "head.bias" {
                noise
                    .iter()
                    .enumerate()
                    .map(|(b, x)| 0.1 * x + text_prior(b as u8))
                    .collect()
            } else if shape.len() == 2 {
                let scale =
                    (3.0 / shape[0] as f32).sqrt() * if name == "head.weight" { 0.25 } else { 1.0 };
                noise.iter().map(|x| scale * x).collect()
            } else {
                noise.iter().map(|x| 0.1 * x).collect()
            }
        })
        .collect();
    weights_from_tensors(config, tensors)
}

/// A rough log-frequency of byte `b` in English text.
fn text_prior(b: u8) -> f32 {
    match b {
        b' ' => 5.0,
        b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'h' | b'r' => 4.0,
        b'a'..=b'z' => 3.0,
        b'A'..=b'Z' | b'0'..=b'9' | b'.' | b',' | b'\n' => 2.0,
        0x21..=0x7e => 1.0,
        _ => 0.0,
    }
}
