//! `lmzip init-model`: a model directory with seeded random weights.
//!
//! Random models predict poorly (they favour English bytes a little, see
//! [`lmzip_models::transformer::file::random_weights`]); they exist to test the engine and to measure its
//! speed on the paper's shapes without a trained model. With `--tokenizer`, the directory is a
//! Hugging Face Llama (`config.json`, `model.safetensors`, `tokenizer.json`) that `--model DIR`
//! runs as a token-level LLM.

use crate::Outcome;
use anyhow::{Context, bail};
use clap::Args;
use lmzip_models::transformer::{Config, Norm, file};
use std::path::PathBuf;

/// Options of `lmzip init-model`.
#[derive(Args, Debug)]
pub struct InitModelArgs {
    /// The directory to write (`config.json` and `model.safetensors`); must not hold a model.
    dir: PathBuf,
    /// The paper's shapes: 200k, 800k or 3.2m. Without it, give --d-model, --layers, --heads.
    #[arg(long)]
    preset: Option<String>,
    #[command(flatten)]
    shape: Shape,
    /// Context in bytes (the longest chunk the model codes).
    #[arg(long)]
    context: Option<usize>,
    /// Post-LN blocks (as the paper's code) instead of pre-LN.
    #[arg(long)]
    post_ln: bool,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write a Llama-shaped LLM for this `tokenizer.json` instead (presets: llama-125m,
    /// llama-tiny; key/value heads a third of the heads where they divide).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
}

/// Width, depth and heads that override a preset (`--d-model`, `--layers`, `--heads`).
#[derive(Args, Debug, Clone, Default)]
pub struct Shape {
    /// Model width.
    #[arg(long)]
    pub d_model: Option<usize>,
    /// Number of blocks.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Attention heads.
    #[arg(long)]
    pub heads: Option<usize>,
}

impl Shape {
    /// Apply the overrides to a byte Transformer's config (`d_ff` follows the width).
    pub fn apply(&self, config: &mut Config) {
        if let Some(d) = self.d_model {
            (config.d_model, config.d_ff) = (d, 4 * d);
        }
        if let Some(l) = self.layers {
            config.n_layers = l;
        }
        if let Some(h) = self.heads {
            config.n_heads = h;
        }
    }
}

/// A Llama-shaped random model with `tokenizer`'s vocabulary.
fn init_llama(args: &InitModelArgs, tokenizer: &std::path::Path) -> Outcome {
    let (d, layers, heads) = match args.preset.as_deref() {
        Some("llama-125m") => (768, 12, 12),
        Some("llama-tiny") => (64, 2, 4),
        Some(other) => bail!("unknown LLM preset '{other}' (known: llama-125m, llama-tiny)"),
        None => match (args.shape.d_model, args.shape.layers, args.shape.heads) {
            (Some(d), Some(l), Some(h)) => (d, l, h),
            _ => bail!("give --preset, or --d-model, --layers and --heads"),
        },
    };
    let (d, layers, heads) = (
        args.shape.d_model.unwrap_or(d),
        args.shape.layers.unwrap_or(layers),
        args.shape.heads.unwrap_or(heads),
    );
    let kv = if heads % 3 == 0 { heads / 3 } else { heads };
    let json =
        std::fs::read(tokenizer).with_context(|| format!("cannot read {}", tokenizer.display()))?;
    let vocab = lmzip_tokens::Tokenizer::from_json(&json, None)?.model_vocab();
    let value: serde_json::Value = serde_json::from_slice(&json)?;
    // Start from the first special token (<|endoftext|>, <s>), else token 0.
    let start = value["added_tokens"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["special"].as_bool() == Some(true)))
        .and_then(|t| t["id"].as_u64())
        .unwrap_or(0);
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": d, "intermediate_size": (8 * d / 3).div_ceil(64) * 64,
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "vocab_size": vocab,
        "tie_word_embeddings": false, "max_position_embeddings": args.context.unwrap_or(2048),
        "bos_token_id": start, "eos_token_id": start,
        "lmzip_note": format!("random weights, seed {}", args.seed)
    });
    if args.dir.join("config.json").exists() {
        bail!("{} already holds a model", args.dir.display());
    }
    let sha = lmzip_models::llama::file::write_random(&args.dir, &config.to_string(), args.seed)?;
    std::fs::write(args.dir.join("tokenizer.json"), &json)?;
    let parsed: lmzip_models::llama::LlamaConfig = serde_json::from_value(config)?;
    let what = format!(
        "Llama-shaped, {} parameters, vocabulary {vocab}",
        parsed.parameters()
    );
    written(args, &what, &sha)
}

/// Write the model and print its hash.
pub fn run(args: &InitModelArgs) -> Outcome {
    if let Some(tokenizer) = &args.tokenizer {
        return init_llama(args, tokenizer);
    }
    let mut config = match &args.preset {
        Some(name) => Config::preset(name).with_context(|| {
            format!(
                "unknown preset '{name}' (known: {})",
                Config::PRESETS.join(", ")
            )
        })?,
        None => match (args.shape.d_model, args.shape.layers, args.shape.heads) {
            (Some(d), Some(l), Some(h)) => Config::new(d, l, h, 2048),
            _ => bail!("give --preset, or --d-model, --layers and --heads"),
        },
    };
    args.shape.apply(&mut config);
    if let Some(c) = args.context {
        config.context = c;
    }
    if args.post_ln {
        config.norm = Norm::Post;
    }
    config.trained_on = format!("nothing (random weights, seed {})", args.seed);
    if let Err(why) = config.validate() {
        bail!("invalid model shape: {why}");
    }
    if args.dir.join(file::WEIGHTS_FILE).exists() || args.dir.join(file::CONFIG_FILE).exists() {
        bail!("{} already holds a model", args.dir.display());
    }
    let sha = file::save(
        &args.dir,
        &config,
        &file::random_weights(&config, args.seed),
    )?;
    written(args, &format!("{} parameters", config.parameters()), &sha)
}

/// Say what was written, with its hash.
fn written(args: &InitModelArgs, what: &str, sha: &[u8; 32]) -> Outcome {
    println!("{}: {what}, sha256 {}", args.dir.display(), lmzip::hex(sha));
    Ok(true)
}
