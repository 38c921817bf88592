//! Weight files shared by the model families: safetensors tensors read as checked f32, the
//! model identity hash, bounded file reads, and the seeded values of random test models.
//!
//! A model's identity is the SHA-256 of its config and weights files ([`model_sha256`]);
//! archives record it, so a model whose config or any weight bit changed is refused when
//! decoding.

use safetensors::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

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

/// `SHA-256(len(config) as u64 LE || config || len(weights) as u64 LE || weights)`.
pub fn model_sha256(config: &[u8], weights: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((config.len() as u64).to_le_bytes());
    h.update(config);
    h.update((weights.len() as u64).to_le_bytes());
    h.update(weights);
    h.finalize().into()
}

/// Read a whole regular file of at most `limit` bytes. Anything else — a directory, a FIFO (which
/// would block), a device such as `/dev/zero` (which never ends), a file that grows past the
/// limit while it is read — is an error, and no more than `limit + 1` bytes are ever read.
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    let io = |e| Error::Io(path.to_path_buf(), e);
    let invalid = |why: String| Error::Invalid(path.to_path_buf(), why);
    // Checked before opening: opening a FIFO for reading blocks until a writer comes.
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    if meta.len() > limit {
        return Err(invalid(format!(
            "{} bytes is more than the {limit} allowed",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(invalid(format!("more than the {limit} bytes allowed")));
    }
    Ok(bytes)
}

/// The tensors `shapes` names, in that order, from a safetensors file, as f32 (from F32, F16 or
/// BF16), every value checked finite. With `exact`, the file may hold no other tensor.
pub fn read_tensors(
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
pub fn f16_to_f32(h: u16) -> f32 {
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

/// Seeded values uniform in [-1, 1) (SplitMix64's top 24 bits), the source of every random
/// model the engine writes.
pub fn uniform_values(seed: u64) -> impl FnMut() -> f32 {
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
