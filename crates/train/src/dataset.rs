//! `lmzip dataset`: the training and held-out chunks that `lmzip train` uses, written to flat
//! files for trainers outside lmzip (such as `scripts/train_gpu.py`), so that every trainer
//! sees the same preprocessing and the same held-out split.

use crate::Outcome;
use anyhow::{Context, bail};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

/// Options of `lmzip dataset`.
#[derive(Args, Debug)]
pub struct DatasetArgs {
    /// Output folder (created): `MODALITY.train` and `MODALITY.held-out` per modality, each
    /// the concatenation of 2048-byte chunks.
    out: PathBuf,
    /// The data folder (text/, images/, audio/ inside).
    #[arg(long, default_value = "../shared/data")]
    data: PathBuf,
    /// Modalities, comma-separated: text, images, audio8, audio16 (from --data) and
    /// corpus-source, corpus-markup, corpus-data, corpus-log, corpus-binary (from --corpus).
    #[arg(long, value_delimiter = ',', default_value = "text,images,audio8")]
    modality: Vec<String>,
    /// The corpus of everyday files that `scripts/corpus.py` builds (by default
    /// ~/.cache/lmzip/corpus).
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// Also write each split as tokens of this `tokenizer.json` (`MODALITY.SPLIT.tokens`: per
    /// chunk a u32 count, then that many u32 token ids, little-endian), cut exactly as
    /// `lmzip --model` cuts them.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Overwrite existing files.
    #[arg(short = 'f', long)]
    force: bool,
}

/// Write `path` through a temporary file, renamed when complete.
fn write_atomically(
    path: &std::path::Path,
    force: bool,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    if path.exists() && !force {
        bail!("{} already exists (use -f to overwrite)", path.display());
    }
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    let tmp = PathBuf::from(name);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    fill(&mut file)?;
    file.into_inner()?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Write each modality's chunks.
pub fn run(args: &DatasetArgs) -> Outcome {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let tokenizer = match &args.tokenizer {
        Some(path) => {
            let json =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some(lmzip_tokens::Tokenizer::from_json(&json, None)?)
        }
        None => None,
    };
    let corpus = args
        .corpus
        .clone()
        .unwrap_or_else(lmzip_data::default_corpus_dir);
    for name in &args.modality {
        let split = crate::command::split(&args.data, &corpus, name)?;
        for (suffix, chunks) in [("train", &split.train), ("held-out", &split.held_out)] {
            let path = args.out.join(format!("{}.{suffix}", split.name));
            write_atomically(&path, args.force, |file| {
                chunks.iter().try_for_each(|chunk| file.write_all(chunk))
            })?;
            eprintln!("{}: {} chunks", path.display(), chunks.len());
            if let Some(tokenizer) = &tokenizer {
                let path = args.out.join(format!("{}.{suffix}.tokens", split.name));
                let mut count = 0;
                write_atomically(&path, args.force, |file| {
                    for chunk in chunks.iter() {
                        let ids = tokenizer.encode(chunk);
                        count += ids.len();
                        file.write_all(&(ids.len() as u32).to_le_bytes())?;
                        for id in ids {
                            file.write_all(&id.to_le_bytes())?;
                        }
                    }
                    Ok(())
                })?;
                eprintln!("{}: {count} tokens", path.display());
            }
        }
    }
    Ok(true)
}
