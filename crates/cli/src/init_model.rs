//! `lmzip init-model`: a model directory with seeded random weights.
//!
//! Random models predict poorly (they favour English bytes a little, see
//! [`lmzip_engine::file::random_weights`]); they exist to test the engine and to measure its
//! speed on the paper's shapes without a trained model.

use crate::Outcome;
use anyhow::{Context, bail};
use clap::Args;
use lmzip_engine::{Config, Norm, file};
use std::path::PathBuf;

/// Options of `lmzip init-model`.
#[derive(Args, Debug)]
pub struct InitModelArgs {
    /// The directory to write (`config.json` and `model.safetensors`); must not hold a model.
    dir: PathBuf,
    /// The paper's shapes: 200k, 800k or 3.2m. Without it, give --d-model, --layers, --heads.
    #[arg(long)]
    preset: Option<String>,
    /// Model width.
    #[arg(long)]
    d_model: Option<usize>,
    /// Number of blocks.
    #[arg(long)]
    layers: Option<usize>,
    /// Attention heads.
    #[arg(long)]
    heads: Option<usize>,
    /// Context in bytes (the longest chunk the model codes).
    #[arg(long)]
    context: Option<usize>,
    /// Post-LN blocks (as the paper's code) instead of pre-LN.
    #[arg(long)]
    post_ln: bool,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Write the model and print its hash.
pub fn run(args: &InitModelArgs) -> Outcome {
    let mut config = match &args.preset {
        Some(name) => Config::preset(name).with_context(|| {
            format!(
                "unknown preset '{name}' (known: {})",
                Config::PRESETS.join(", ")
            )
        })?,
        None => match (args.d_model, args.layers, args.heads) {
            (Some(d), Some(l), Some(h)) => Config::new(d, l, h, 2048),
            _ => bail!("give --preset, or --d-model, --layers and --heads"),
        },
    };
    if let Some(d) = args.d_model {
        config.d_model = d;
        config.d_ff = 4 * d;
    }
    if let Some(l) = args.layers {
        config.n_layers = l;
    }
    if let Some(h) = args.heads {
        config.n_heads = h;
    }
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
    println!(
        "{}: {} parameters, sha256 {}",
        args.dir.display(),
        config.parameters(),
        lmzip::hex(&sha)
    );
    Ok(true)
}
