//! Model files: a directory with `config.json` and `model.safetensors`.
//!
//! The model's identity is the SHA-256 of both files ([`model_sha256`]); archives record it, so
//! a model whose config or any weight bit changed is refused when decoding.

use crate::config::Config;
use crate::transformer::{Transformer, Weights, tensor_shapes, weights_from_tensors};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

/// The config file's name inside a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// The weights file's name inside a model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The largest weights file [`load`] reads (guards memory against a foreign file).
const MAX_WEIGHTS_BYTES: u64 = 4 << 30;

/// Why a model could not be loaded or saved.
#[derive(Debug)]
pub enum Error {
    /// A file could not be read or written.
    Io(PathBuf, std::io::Error),
    /// A file is not a valid model file; the message says why.
    Invalid(PathBuf, String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(path, e) => write!(f, "{}: {e}", path.display()),
            Error::Invalid(path, why) => {
                write!(f, "{}: not a valid lmzip model: {why}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {}

/// A loaded model and its identity.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The runnable model.
    pub transformer: Transformer,
    /// [`model_sha256`] of its files.
    pub sha256: [u8; 32],
}

/// `SHA-256(len(config) as u64 LE || config || len(weights) as u64 LE || weights)`.
pub fn model_sha256(config: &[u8], weights: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((config.len() as u64).to_le_bytes());
    h.update(config);
    h.update((weights.len() as u64).to_le_bytes());
    h.update(weights);
    h.finalize().into()
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

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    let io = |e| Error::Io(path.to_path_buf(), e);
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > limit {
        return Err(Error::Invalid(
            path.to_path_buf(),
            format!("{len} bytes is more than the {limit} allowed"),
        ));
    }
    std::fs::read(path).map_err(io)
}

/// Check and convert the tensors of a safetensors file for `config` (F32, F16 or BF16; every
/// value finite).
pub fn parse_weights(config: &Config, bytes: &[u8]) -> Result<Weights, String> {
    let shapes = tensor_shapes(config);
    let tensors = read_tensors(bytes, &shapes, true)?;
    Ok(weights_from_tensors(config, tensors))
}

/// The tensors `shapes` names, in that order, from a safetensors file, as f32 (from F32, F16 or
/// BF16), every value checked finite. With `exact`, the file may hold no other tensor.
pub(crate) fn read_tensors(
    bytes: &[u8],
    shapes: &[(String, Vec<usize>)],
    exact: bool,
) -> Result<Vec<Vec<f32>>, String> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    if exact && file.len() != shapes.len() {
        return Err(format!(
            "{} tensors, the config needs {}",
            file.len(),
            shapes.len()
        ));
    }
    let mut tensors = Vec::with_capacity(shapes.len());
    for (name, shape) in shapes {
        let view = file
            .tensor(name)
            .map_err(|_| format!("tensor '{name}' is missing"))?;
        if view.shape() != shape.as_slice() {
            return Err(format!(
                "tensor '{name}' has shape {:?}, expected {shape:?}",
                view.shape()
            ));
        }
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
                .collect(),
            other => {
                return Err(format!(
                    "tensor '{name}' has type {other:?}; F32, F16 or BF16 expected"
                ));
            }
        };
        if values.iter().any(|v| !v.is_finite()) {
            return Err(format!("tensor '{name}' holds a value that is not finite"));
        }
        tensors.push(values);
    }
    Ok(tensors)
}

/// IEEE half precision to single (exact).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: value = man × 2^-24, exactly representable in f32.
            let v = man as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
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

/// Seeded values uniform in [-1, 1) (SplitMix64's top 24 bits), the source of every random
/// model the engine writes.
pub(crate) fn uniform_values(seed: u64) -> impl FnMut() -> f32 {
    let mut state = seed;
    move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_converts_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
    }
}
