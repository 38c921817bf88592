//! `lmzip tokenizer`: train a byte-level BPE tokenizer on the training split of a text folder
//! (the tokenizers of the tokenization study, and for random LLMs made by `init-model`).

use crate::Outcome;
use anyhow::{Context, bail};
use clap::Args;
use lmzip_data::Modality;
use std::path::PathBuf;

/// Options of `lmzip tokenizer`.
#[derive(Args, Debug)]
pub struct TokenizerArgs {
    /// The `tokenizer.json` to write (refused if it exists, unless -f).
    out: PathBuf,
    /// Vocabulary size: 256 bytes, `<|endoftext|>`, then merges.
    #[arg(long, default_value_t = 1024)]
    vocab: usize,
    /// The data folder; its text files outside the held-out split are the training text.
    #[arg(long, default_value = "../shared/data")]
    data: PathBuf,
    /// Train on these files instead of the data folder.
    #[arg(long = "from", value_name = "FILE")]
    from: Vec<PathBuf>,
    /// Overwrite the output.
    #[arg(short, long)]
    force: bool,
}

/// Train and write the tokenizer.
pub fn run(args: &TokenizerArgs) -> Outcome {
    if args.out.exists() && !args.force {
        bail!(
            "{} already exists (use -f to overwrite)",
            args.out.display()
        );
    }
    if args.vocab < 257 {
        bail!("--vocab must be at least 257 (the 256 bytes and <|endoftext|>)");
    }
    let root = args.data.join(Modality::Text.folder());
    let files: Vec<PathBuf> = if args.from.is_empty() {
        lmzip_data::list_files(&root, Modality::Text)?
            .into_iter()
            .filter(|p| !lmzip_data::is_held_out(p))
            .collect()
    } else {
        args.from.clone()
    };
    if files.is_empty() {
        bail!("no training text under {}", root.display());
    }
    let json = lmzip_tokens::train_byte_level_bpe(&files, args.vocab)?;
    let tokenizer = lmzip_tokens::Tokenizer::from_json(&json, None)?;
    std::fs::write(&args.out, &json)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!(
        "{}: {} tokens, trained on {} files, sha256 {}",
        args.out.display(),
        tokenizer.model_vocab(),
        files.len(),
        lmzip::hex(&tokenizer.sha256())
    );
    Ok(true)
}
