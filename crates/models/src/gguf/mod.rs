//! GGUF, llama.cpp's model file: metadata, vocabulary and tensors in one file.
//!
//! [`Gguf::parse`] reads the header, the metadata and the tensor table of a GGUF file (version
//! 2 or 3) with every count and offset checked against the file's size; [`Gguf::tensor`]
//! dequantizes one tensor to f32 (types F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K and Q6_K — Q4_K_M files mix
//! the last two). Dequantization is plain scalar IEEE arithmetic done once at load, so the
//! weights, and therefore the engine's logits, are the same on every CPU.
//! [`write()`] is the converse, for tests and tools; the block formats are in `quants.rs`.
//!
//! This module knows no architecture: `crate::llama::gguf` maps a `llama` file to the Llama
//! network and its tokenizer.

mod quants;

use crate::weights::f16_to_f32;

pub use quants::quantize_q8_0;
use quants::{
    dequantize_q4_0, dequantize_q4_1, dequantize_q4_k, dequantize_q5_0, dequantize_q5_1,
    dequantize_q6_k, dequantize_q8_0,
};

/// GGUF's magic, `GGUF` read as a little-endian u32.
const MAGIC: u32 = 0x4655_4747;
/// Nesting limit for array values (GGUF allows arrays of arrays).
const MAX_DEPTH: usize = 4;
/// The most metadata array elements a file may hold, all arrays together (at most 128 MiB of
/// parsed values; Llama 3's vocabulary and merges are about 400,000).
const MAX_METADATA_ELEMENTS: u64 = 1 << 22;
/// The most elements one tensor may have (guards memory: 16 G f32 values).
const MAX_ELEMENTS: u64 = 1 << 34;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Any unsigned integer type.
    Uint(u64),
    /// Any signed integer type.
    Int(i64),
    /// f32 or f64.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A UTF-8 string.
    String(String),
    /// An array of values.
    Array(Vec<Value>),
}

impl Value {
    /// The value as a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Uint(v) => Some(v),
            Value::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(v) => Some(v),
            Value::Uint(v) => Some(v as f64),
            Value::Int(v) => Some(v as f64),
            _ => None,
        }
    }

    /// The value as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The GGUF type code [`write_llama`] writes this value with (integers as u64/i64, floats
    /// as f64).
    fn type_code(&self) -> u32 {
        match self {
            Value::Uint(_) => 10,
            Value::Int(_) => 11,
            Value::Float(_) => 12,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(_) => 9,
        }
    }

    /// The value as an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// How a tensor's elements are stored (the `ggml_type` values this reader knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    /// 32-bit floats.
    F32,
    /// 16-bit IEEE floats.
    F16,
    /// bfloat16.
    Bf16,
    /// Blocks of 32: an f16 scale and 32 signed bytes.
    Q8_0,
    /// Blocks of 32: an f16 scale and 32 4-bit values, offset by 8.
    Q4_0,
    /// Blocks of 32: an f16 scale and minimum and 32 4-bit values.
    Q4_1,
    /// Blocks of 32: an f16 scale and 32 5-bit values, offset by 16.
    Q5_0,
    /// Blocks of 32: an f16 scale and minimum and 32 5-bit values.
    Q5_1,
    /// Super-blocks of 256: 4-bit values, 6-bit scales and minimums per 32.
    Q4K,
    /// Super-blocks of 256: 6-bit values, 8-bit scales per 16.
    Q6K,
}

impl TensorType {
    fn from_code(code: u32) -> Option<TensorType> {
        Some(match code {
            0 => TensorType::F32,
            1 => TensorType::F16,
            2 => TensorType::Q4_0,
            3 => TensorType::Q4_1,
            6 => TensorType::Q5_0,
            7 => TensorType::Q5_1,
            8 => TensorType::Q8_0,
            12 => TensorType::Q4K,
            14 => TensorType::Q6K,
            30 => TensorType::Bf16,
            _ => return None,
        })
    }

    fn code(self) -> u32 {
        match self {
            TensorType::F32 => 0,
            TensorType::F16 => 1,
            TensorType::Q4_0 => 2,
            TensorType::Q4_1 => 3,
            TensorType::Q5_0 => 6,
            TensorType::Q5_1 => 7,
            TensorType::Q8_0 => 8,
            TensorType::Q4K => 12,
            TensorType::Q6K => 14,
            TensorType::Bf16 => 30,
        }
    }

    /// Elements per block and bytes per block.
    fn block(self) -> (u64, u64) {
        match self {
            TensorType::F32 => (1, 4),
            TensorType::F16 | TensorType::Bf16 => (1, 2),
            TensorType::Q8_0 => (32, 34),
            TensorType::Q4_0 => (32, 18),
            TensorType::Q4_1 => (32, 20),
            TensorType::Q5_0 => (32, 22),
            TensorType::Q5_1 => (32, 24),
            TensorType::Q4K => (256, 144),
            TensorType::Q6K => (256, 210),
        }
    }
}

/// One entry of the tensor table.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// The tensor's name.
    pub name: String,
    /// Its shape, row-major (GGUF lists dimensions fastest first; this is reversed).
    pub shape: Vec<usize>,
    /// The ggml type code.
    pub type_code: u32,
    offset: u64,
}

/// A dequantized tensor: its row-major shape and values.
pub type Tensor = (Vec<usize>, Vec<f32>);

/// A parsed GGUF file: metadata and tensor table (the tensors stay in the file's bytes).
#[derive(Debug, Clone)]
pub struct Gguf {
    /// The metadata, in file order.
    pub metadata: Vec<(String, Value)>,
    /// The tensor table.
    pub tensors: Vec<TensorInfo>,
    data_start: usize,
}

/// A bounds-checked cursor.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Array elements read so far, against [`MAX_METADATA_ELEMENTS`].
    elements: u64,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let left = (self.bytes.len() - self.pos) as u64;
        if n > left {
            return Err("the file ends inside its header".into());
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u64()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "a string is not UTF-8".into())
    }
    fn value(&mut self, kind: u32, depth: usize) -> Result<Value, String> {
        let mut int = |n: u64, signed: bool| -> Result<Value, String> {
            let b = self.take(n)?;
            let mut raw = [0u8; 8];
            raw[..b.len()].copy_from_slice(b);
            let v = u64::from_le_bytes(raw);
            Ok(if signed {
                let shift = 64 - 8 * n as u32;
                Value::Int(((v << shift) as i64) >> shift)
            } else {
                Value::Uint(v)
            })
        };
        Ok(match kind {
            0 => int(1, false)?,
            1 => int(1, true)?,
            2 => int(2, false)?,
            3 => int(2, true)?,
            4 => int(4, false)?,
            5 => int(4, true)?,
            10 => int(8, false)?,
            11 => int(8, true)?,
            6 => Value::Float(f64::from(f32::from_bits(self.u32()?))),
            12 => Value::Float(f64::from_bits(self.u64()?)),
            7 => Value::Bool(self.take(1)?[0] != 0),
            8 => Value::String(self.string()?),
            9 => {
                if depth >= MAX_DEPTH {
                    return Err("arrays nested too deeply".into());
                }
                let inner = self.u32()?;
                let n = self.u64()?;
                // Every element takes at least one byte: a count past the file is a lie.
                if n > (self.bytes.len() - self.pos) as u64 {
                    return Err("an array is longer than the file".into());
                }
                // Each element is a 32-byte `Value` in memory: a budget keeps a small file from
                // taking gigabytes (a real vocabulary and its merges stay far below it).
                self.elements += n;
                if self.elements > MAX_METADATA_ELEMENTS {
                    return Err(format!(
                        "more than {MAX_METADATA_ELEMENTS} metadata array elements"
                    ));
                }
                let mut items = Vec::with_capacity(n.min(1 << 16) as usize);
                for _ in 0..n {
                    items.push(self.value(inner, depth + 1)?);
                }
                Value::Array(items)
            }
            other => return Err(format!("unknown metadata type {other}")),
        })
    }
}

impl Gguf {
    /// Parse the header, metadata and tensor table of a GGUF file.
    pub fn parse(bytes: &[u8]) -> Result<Gguf, String> {
        let mut r = Reader {
            bytes,
            pos: 0,
            elements: 0,
        };
        if bytes.len() < 4 || r.u32()? != MAGIC {
            return Err("not a GGUF file (bad magic)".into());
        }
        let version = r.u32()?;
        if !(2..=3).contains(&version) {
            return Err(format!("GGUF version {version} (2 and 3 are read)"));
        }
        let tensor_count = r.u64()?;
        let kv_count = r.u64()?;
        if tensor_count > bytes.len() as u64 || kv_count > bytes.len() as u64 {
            return Err("counts larger than the file".into());
        }
        let mut metadata = Vec::with_capacity(kv_count.min(1 << 10) as usize);
        for _ in 0..kv_count {
            let key = r.string()?;
            let kind = r.u32()?;
            metadata.push((key, r.value(kind, 0)?));
        }
        let mut tensors = Vec::with_capacity(tensor_count.min(1 << 12) as usize);
        for _ in 0..tensor_count {
            let name = r.string()?;
            let n_dims = r.u32()?;
            if !(1..=4).contains(&n_dims) {
                return Err(format!("tensor '{name}' has {n_dims} dimensions"));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(r.u64()?);
            }
            let count = dims
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .filter(|&n| n <= MAX_ELEMENTS)
                .ok_or_else(|| format!("tensor '{name}' is too large"))?;
            let _ = count;
            let type_code = r.u32()?;
            let offset = r.u64()?;
            let shape = dims.iter().rev().map(|&d| d as usize).collect();
            tensors.push(TensorInfo {
                name,
                shape,
                type_code,
                offset,
            });
        }
        let alignment = metadata
            .iter()
            .find(|(k, _)| k == "general.alignment")
            .and_then(|(_, v)| v.as_u64())
            .unwrap_or(32);
        if alignment == 0 || !alignment.is_power_of_two() || alignment > 1 << 20 {
            return Err(format!("alignment {alignment}"));
        }
        let data_start = (r.pos as u64).next_multiple_of(alignment);
        if data_start > bytes.len() as u64 {
            return Err("the file ends before its tensor data".into());
        }
        Ok(Gguf {
            metadata,
            tensors,
            data_start: data_start as usize,
        })
    }

    /// The metadata value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The tensor called `name`, dequantized to f32, with its row-major shape; `None` when the
    /// file has no such tensor. `bytes` must be the file [`Gguf::parse`] read.
    pub fn tensor(&self, bytes: &[u8], name: &str) -> Option<Result<Tensor, String>> {
        let info = self.tensors.iter().find(|t| t.name == name)?;
        Some(self.read(bytes, info))
    }

    fn read(&self, bytes: &[u8], info: &TensorInfo) -> Result<Tensor, String> {
        let name = &info.name;
        let kind = TensorType::from_code(info.type_code).ok_or_else(|| {
            format!(
                "tensor '{name}' has ggml type {}; F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, \
                 Q4_K or Q6_K are read",
                info.type_code
            )
        })?;
        let n: u64 = info.shape.iter().map(|&d| d as u64).product();
        let (per_block, block_bytes) = kind.block();
        if !n.is_multiple_of(per_block) {
            return Err(format!("tensor '{name}' is not a whole number of blocks"));
        }
        let size = n / per_block * block_bytes;
        let start = (self.data_start as u64).checked_add(info.offset);
        let end = start.and_then(|s| s.checked_add(size));
        let (Some(start), Some(end)) = (start, end) else {
            return Err(format!("tensor '{name}' lies outside the file"));
        };
        if end > bytes.len() as u64 {
            return Err(format!("tensor '{name}' lies outside the file"));
        }
        let data = &bytes[start as usize..end as usize];
        let mut out = Vec::with_capacity(n as usize);
        match kind {
            TensorType::F32 => out.extend(
                data.chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().expect("4"))),
            ),
            TensorType::F16 => out.extend(
                data.chunks_exact(2)
                    .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))),
            ),
            TensorType::Bf16 => out.extend(
                data.chunks_exact(2)
                    .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16)),
            ),
            TensorType::Q8_0
            | TensorType::Q4_0
            | TensorType::Q4_1
            | TensorType::Q5_0
            | TensorType::Q5_1
            | TensorType::Q4K
            | TensorType::Q6K => {
                let dequantize = match kind {
                    TensorType::Q8_0 => dequantize_q8_0,
                    TensorType::Q4_0 => dequantize_q4_0,
                    TensorType::Q4_1 => dequantize_q4_1,
                    TensorType::Q5_0 => dequantize_q5_0,
                    TensorType::Q5_1 => dequantize_q5_1,
                    TensorType::Q4K => dequantize_q4_k,
                    TensorType::Q6K => dequantize_q6_k,
                    _ => unreachable!("BUG: the arm takes quantized types only"),
                };
                data.chunks_exact(block_bytes as usize)
                    .for_each(|b| dequantize(b, &mut out));
            }
        }
        if out.iter().any(|v| !v.is_finite()) {
            return Err(format!("tensor '{name}' holds a value that is not finite"));
        }
        Ok((info.shape.clone(), out))
    }
}

/// One tensor of a file [`write()`] makes: name, shape (outermost first, as Hugging Face gives
/// it), type and offset in the data section.
pub type TableEntry = (String, Vec<usize>, TensorType, u64);

/// A GGUF file (version 3) of `metadata`, a tensor `table` and the tensor `data` (offsets in
/// the table are into `data`, 32-byte aligned).
pub fn write(metadata: &[(String, Value)], table: &[TableEntry], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(table.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (key, value) in metadata {
        put_string(&mut out, key);
        put_value(&mut out, value, true);
    }
    for (name, shape, kind, offset) in table {
        put_string(&mut out, name);
        out.extend_from_slice(&(shape.len() as u32).to_le_bytes());
        for &d in shape.iter().rev() {
            out.extend_from_slice(&(d as u64).to_le_bytes());
        }
        out.extend_from_slice(&kind.code().to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
    }
    out.resize(out.len().next_multiple_of(32), 0);
    out.extend_from_slice(data);
    out
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Write a value (with its type code when `typed`): integers as u64/i64, floats as f64.
fn put_value(out: &mut Vec<u8>, value: &Value, typed: bool) {
    if typed {
        out.extend_from_slice(&value.type_code().to_le_bytes());
    }
    match value {
        Value::Uint(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Int(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Float(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Bool(v) => out.push(u8::from(*v)),
        Value::String(s) => put_string(out, s),
        Value::Array(items) => {
            let inner = items.first().map_or(8, Value::type_code);
            out.extend_from_slice(&inner.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                put_value(out, item, false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of no tensors and one metadata key, `k`, an array of `n` elements of type `inner`
    /// (the elements themselves not written).
    fn array_header(inner: u32, n: u64) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        put_string(&mut b, "k");
        b.extend_from_slice(&9u32.to_le_bytes()); // array
        b.extend_from_slice(&inner.to_le_bytes());
        b.extend_from_slice(&n.to_le_bytes());
        b
    }

    /// One metadata array of 4 Mi + 1 one-byte elements (a 4 MiB file that would take 128 MiB
    /// parsed): refused by the element budget.
    #[test]
    fn huge_metadata_arrays_are_refused() {
        let n = MAX_METADATA_ELEMENTS + 1;
        let mut b = array_header(0, n); // of u8
        b.resize(b.len() + n as usize, 7);
        let err = Gguf::parse(&b).unwrap_err();
        assert!(err.contains("metadata array elements"), "{err}");
    }

    #[test]
    fn hostile_headers_are_errors() {
        assert!(Gguf::parse(b"").is_err());
        assert!(Gguf::parse(b"GGUF").is_err());
        let b = array_header(8, u64::MAX); // of strings, 2^64 - 1 claimed
        assert!(Gguf::parse(&b).is_err());
    }
}
