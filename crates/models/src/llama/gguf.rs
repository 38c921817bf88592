//! Llama-family models from GGUF files: [`llama`] maps a `llama`-architecture file to a
//! [`LlamaConfig`] and the tensors in [`LlamaConfig::tensor_shapes`] order, undoing the row
//! order that llama.cpp's converter gives the query and key projections (its rotary pairs are
//! adjacent, Hugging Face's are half a head apart); [`tokenizer`] builds the vocabulary the file
//! embeds. [`write_llama`] is the converse (Hugging Face tensors to GGUF), for tests and tools.

use super::config::LlamaConfig;
use super::network::Llama;
use crate::gguf::{self, Gguf, TensorType, Value, quantize_q8_0};
use crate::weights::{Error, read_limited};
use lmzip_tokens::Tokenizer;
use sha2::{Digest, Sha256};
use std::path::Path;

/// The largest GGUF file read (guards memory against a foreign file).
pub const MAX_FILE_BYTES: u64 = 64 << 30;

/// The GGUF name of a Hugging Face tensor of the Llama architecture.
fn gguf_name(hf: &str) -> String {
    let simple = [
        ("model.embed_tokens.weight", "token_embd.weight"),
        ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ];
    if let Some((_, g)) = simple.iter().find(|(h, _)| *h == hf) {
        return g.to_string();
    }
    let rest = hf.strip_prefix("model.layers.").expect("a layer tensor");
    let (layer, part) = rest.split_once('.').expect("layer.part");
    let part = match part {
        "input_layernorm.weight" => "attn_norm.weight",
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.o_proj.weight" => "attn_output.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        "mlp.gate_proj.weight" => "ffn_gate.weight",
        "mlp.up_proj.weight" => "ffn_up.weight",
        "mlp.down_proj.weight" => "ffn_down.weight",
        other => panic!("unknown tensor part {other}"),
    };
    format!("blk.{layer}.{part}")
}

/// Reorder the rows of a query or key projection (`heads × hd` rows of `cols`): llama.cpp's
/// order (row `2k + j` of a head) to Hugging Face's (row `j·hd/2 + k`), or back.
fn permute_rows(m: &[f32], heads: usize, hd: usize, cols: usize, to_hf: bool) -> Vec<f32> {
    let mut out = vec![0.0; m.len()];
    for h in 0..heads {
        for k in 0..hd / 2 {
            for j in 0..2 {
                let (gguf, hf) = (h * hd + 2 * k + j, h * hd + j * hd / 2 + k);
                let (from, to) = if to_hf { (gguf, hf) } else { (hf, gguf) };
                out[to * cols..(to + 1) * cols].copy_from_slice(&m[from * cols..(from + 1) * cols]);
            }
        }
    }
    out
}

/// The config and tensors ([`LlamaConfig::tensor_shapes`] order) of a `llama`-architecture
/// GGUF file.
pub fn llama(gguf: &Gguf, bytes: &[u8]) -> Result<(LlamaConfig, Vec<Vec<f32>>), String> {
    let arch = gguf
        .get("general.architecture")
        .and_then(Value::as_str)
        .unwrap_or("");
    if arch != "llama" {
        return Err(format!(
            "architecture '{arch}': only 'llama' (Llama, Mistral, SmolLM…) is supported"
        ));
    }
    let uint = |key: &str| gguf.get(&format!("llama.{key}")).and_then(Value::as_u64);
    let need = |key: &str| uint(key).ok_or_else(|| format!("metadata 'llama.{key}' is missing"));
    let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    let vocab = uint("vocab_size")
        .or_else(|| {
            gguf.get("tokenizer.ggml.tokens")
                .and_then(Value::as_array)
                .map(|t| t.len() as u64)
        })
        .ok_or("no vocabulary size")?;
    if let Some(kind) = gguf
        .get("llama.rope.scaling.type")
        .and_then(Value::as_str)
        .filter(|k| *k != "none")
    {
        return Err(format!("rope scaling '{kind}' is not supported yet"));
    }
    let token = |key: &str| {
        gguf.get(&format!("tokenizer.ggml.{key}"))
            .and_then(Value::as_u64)
            .map(serde_json::Value::from)
    };
    let config = LlamaConfig {
        hidden_size: size(need("embedding_length")?),
        intermediate_size: size(need("feed_forward_length")?),
        num_hidden_layers: size(need("block_count")?),
        num_attention_heads: size(need("attention.head_count")?),
        num_key_value_heads: uint("attention.head_count_kv").map(size),
        head_dim: uint("attention.key_length").map(size),
        rms_norm_eps: gguf
            .get("llama.attention.layer_norm_rms_epsilon")
            .and_then(Value::as_f64)
            .ok_or("metadata 'llama.attention.layer_norm_rms_epsilon' is missing")?
            as f32,
        rope_theta: gguf
            .get("llama.rope.freq_base")
            .and_then(Value::as_f64)
            .unwrap_or(10_000.0),
        rope_scaling: None,
        vocab_size: size(vocab),
        tie_word_embeddings: !gguf.tensors.iter().any(|t| t.name == "output.weight"),
        max_position_embeddings: size(need("context_length")?),
        bos_token_id: token("bos_token_id"),
        eos_token_id: token("eos_token_id"),
    };
    config.validate()?;
    let hd = config.head_width();
    let mut tensors = Vec::new();
    for (hf, shape) in config.tensor_shapes() {
        let name = gguf_name(&hf);
        let (got, mut values) = gguf
            .tensor(bytes, &name)
            .ok_or_else(|| format!("tensor '{name}' is missing"))??;
        if got != shape {
            return Err(format!(
                "tensor '{name}' has shape {got:?}, expected {shape:?}"
            ));
        }
        if name.ends_with("attn_q.weight") {
            values = permute_rows(&values, config.num_attention_heads, hd, shape[1], true);
        } else if name.ends_with("attn_k.weight") {
            values = permute_rows(&values, config.kv_heads(), hd, shape[1], true);
        }
        tensors.push(values);
    }
    Ok((config, tensors))
}

/// A Llama loaded from a GGUF file.
#[derive(Debug)]
pub struct LoadedLlama {
    /// The network.
    pub llama: Llama,
    /// The file's metadata and tensor table (the vocabulary is in the metadata).
    pub gguf: Gguf,
    /// The SHA-256 of the whole file, the model's identity.
    pub sha256: [u8; 32],
}

/// Load a `llama`-architecture GGUF file.
pub fn load_llama(path: &Path) -> Result<LoadedLlama, Error> {
    let bytes = read_limited(path, MAX_FILE_BYTES)?;
    let invalid = |why: String| Error::Invalid(path.into(), why);
    let gguf = Gguf::parse(&bytes).map_err(invalid)?;
    let (config, tensors) = llama(&gguf, &bytes).map_err(invalid)?;
    Ok(LoadedLlama {
        llama: Llama::new(config, tensors),
        gguf,
        sha256: Sha256::digest(&bytes).into(),
    })
}

/// A `llama`-architecture GGUF file (version 3) for `config` and its tensors in
/// [`LlamaConfig::tensor_shapes`] order: matrices in `matrix_type` (F32 or Q8_0), vectors in
/// F32, plus `extra` metadata (a vocabulary, for example). The converse of [`llama`].
pub fn write_llama(
    config: &LlamaConfig,
    tensors: &[Vec<f32>],
    matrix_type: TensorType,
    extra: &[(String, Value)],
) -> Vec<u8> {
    assert!(matches!(matrix_type, TensorType::F32 | TensorType::Q8_0));
    let u = |v: usize| Value::Uint(v as u64);
    let mut metadata = vec![
        (
            "general.architecture".to_string(),
            Value::String("llama".into()),
        ),
        ("llama.embedding_length".into(), u(config.hidden_size)),
        (
            "llama.feed_forward_length".into(),
            u(config.intermediate_size),
        ),
        ("llama.block_count".into(), u(config.num_hidden_layers)),
        (
            "llama.attention.head_count".into(),
            u(config.num_attention_heads),
        ),
        ("llama.attention.head_count_kv".into(), u(config.kv_heads())),
        ("llama.attention.key_length".into(), u(config.head_width())),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::Float(f64::from(config.rms_norm_eps)),
        ),
        (
            "llama.rope.freq_base".into(),
            Value::Float(config.rope_theta),
        ),
        (
            "llama.context_length".into(),
            u(config.max_position_embeddings),
        ),
        ("llama.vocab_size".into(), u(config.vocab_size)),
    ];
    if let Some(bos) = config.start_token() {
        metadata.push((
            "tokenizer.ggml.bos_token_id".into(),
            Value::Uint(u64::from(bos)),
        ));
    }
    metadata.extend_from_slice(extra);
    let hd = config.head_width();
    let mut table = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    for ((hf, shape), values) in config.tensor_shapes().into_iter().zip(tensors) {
        let name = gguf_name(&hf);
        let values = if name.ends_with("attn_q.weight") {
            permute_rows(values, config.num_attention_heads, hd, shape[1], false)
        } else if name.ends_with("attn_k.weight") {
            permute_rows(values, config.kv_heads(), hd, shape[1], false)
        } else {
            values.clone()
        };
        let kind = if shape.len() == 2 && values.len().is_multiple_of(32) {
            matrix_type
        } else {
            TensorType::F32
        };
        data.resize(data.len().next_multiple_of(32), 0);
        let offset = data.len() as u64;
        match kind {
            TensorType::Q8_0 => data.extend(quantize_q8_0(&values)),
            _ => data.extend(values.iter().flat_map(|v| v.to_le_bytes())),
        }
        table.push((name, shape, kind, offset));
    }
    gguf::write(&metadata, &table, &data)
}

/// The tokenizer a GGUF file embeds (`tokenizer.ggml.*`).
pub fn tokenizer(file: &Gguf, model_vocab: usize) -> Result<Tokenizer, String> {
    let array = |key: &str| {
        file.get(&format!("tokenizer.ggml.{key}"))
            .and_then(Value::as_array)
            .unwrap_or(&[])
    };
    let strings = |key: &str| -> Vec<String> {
        array(key)
            .iter()
            .map(|v| v.as_str().unwrap_or("").to_string())
            .collect()
    };
    let kind = file
        .get("tokenizer.ggml.model")
        .and_then(Value::as_str)
        .ok_or("the GGUF file embeds no tokenizer (tokenizer.ggml.model)")?;
    let tokens = strings("tokens");
    let types: Vec<i64> = array("token_type")
        .iter()
        .map(|v| v.as_f64().unwrap_or(1.0) as i64)
        .collect();
    let scores: Vec<f64> = array("scores")
        .iter()
        .map(|v| v.as_f64().unwrap_or(0.0))
        .collect();
    Tokenizer::from_gguf_vocabulary(
        kind,
        &tokens,
        &types,
        &scores,
        &strings("merges"),
        model_vocab,
    )
    .map_err(|e| e.to_string())
}
