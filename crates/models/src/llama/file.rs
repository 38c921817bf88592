//! Llama-family weights from a Hugging Face model directory (`config.json` and one
//! `model.safetensors`, F32, F16 or BF16, with the usual tensor names:
//! `model.embed_tokens.weight`, `model.layers.{l}.self_attn.q_proj.weight`, …, `lm_head.weight`
//! unless tied), and seeded random directories for tests and benchmarks.

use super::config::LlamaConfig;
use super::network::Llama;
use crate::weights::{Error, model_sha256, read_limited, read_tensors, uniform_values};
use std::path::Path;

/// The largest `config.json` read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// The largest `model.safetensors` read (guards memory against a foreign file).
const MAX_WEIGHTS_BYTES: u64 = 64 << 30;

/// Load a Hugging Face model directory (`config.json`, `model.safetensors`); also returns
/// the SHA-256 of the two files ([`model_sha256`]), the model's identity.
pub fn load(dir: &Path) -> Result<(Llama, [u8; 32]), Error> {
    let invalid = |file: &str, why: String| Error::Invalid(dir.join(file), why);
    let config_bytes = read_limited(&dir.join("config.json"), MAX_CONFIG_BYTES)?;
    let config: LlamaConfig =
        serde_json::from_slice(&config_bytes).map_err(|e| invalid("config.json", e.to_string()))?;
    config.validate().map_err(|e| invalid("config.json", e))?;
    let bytes = read_limited(&dir.join("model.safetensors"), MAX_WEIGHTS_BYTES)?;
    let tensors = read_tensors(&bytes, &config.tensor_shapes(), false)
        .map_err(|e| invalid("model.safetensors", e))?;
    // Tensors the architecture has no place for would be silently dropped: refuse those
    // that change the function (Qwen 2's attention biases), not the unused extras.
    let file = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| invalid("model.safetensors", e.to_string()))?;
    if let Some(name) = file.names().into_iter().find(|n| n.ends_with("_proj.bias")) {
        return Err(invalid(
            "model.safetensors",
            format!("'{name}': projection biases (Qwen 2) are not supported yet"),
        ));
    }
    let sha256 = model_sha256(&config_bytes, &bytes);
    Ok((Llama::new(config, tensors), sha256))
}

/// Write a Hugging Face directory (`config.json` from `config_json`, `model.safetensors` in
/// F32) holding seeded random weights for that config: matrices uniform in `±sqrt(3 / fan_in)`,
/// embeddings in `±1`, norms near 1. For tests and benchmarks; returns the model's SHA-256.
pub fn write_random(dir: &Path, config_json: &str, seed: u64) -> Result<[u8; 32], Error> {
    let path = dir.join("config.json");
    let config: LlamaConfig = serde_json::from_str(config_json)
        .map_err(|e| Error::Invalid(path.clone(), e.to_string()))?;
    config
        .validate()
        .map_err(|e| Error::Invalid(path.clone(), e))?;
    let mut next = uniform_values(seed);
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = config
        .tensor_shapes()
        .into_iter()
        .map(|(name, shape)| {
            let scale = match shape.as_slice() {
                [_] => 0.0,
                [_, fan_in] if !name.contains("embed") => (3.0 / *fan_in as f32).sqrt(),
                _ => 1.0,
            };
            let bytes = (0..shape.iter().product::<usize>())
                .flat_map(|_| {
                    let x = next();
                    let v = if scale == 0.0 {
                        1.0 + 0.1 * x
                    } else {
                        scale * x
                    };
                    v.to_le_bytes()
                })
                .collect();
            (name, shape, bytes)
        })
        .collect();
    let views = tensors.iter().map(|(name, shape, data)| {
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                .expect("BUG: shape matches data");
        (name.as_str(), view)
    });
    let weights = safetensors::serialize(views, None)
        .map_err(|e| Error::Invalid(dir.join("model.safetensors"), e.to_string()))?;
    let io = |file: &str, e| Error::Io(dir.join(file), e);
    std::fs::create_dir_all(dir).map_err(|e| io("", e))?;
    std::fs::write(&path, config_json).map_err(|e| io("config.json", e))?;
    std::fs::write(dir.join("model.safetensors"), &weights)
        .map_err(|e| io("model.safetensors", e))?;
    Ok(model_sha256(config_json.as_bytes(), &weights))
}
