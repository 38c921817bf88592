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
    /// Modalities, comma-separated (text, images, audio8, audio16).
    #[arg(long, value_delimiter = ',', default_value = "text,images,audio8")]
    modality: Vec<String>,
    /// Overwrite existing files.
    #[arg(short = 'f', long)]
    force: bool,
}

/// Write each modality's chunks.
pub fn run(args: &DatasetArgs) -> Outcome {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    for name in &args.modality {
        let split = crate::train::split(&args.data, name)?;
        for (suffix, chunks) in [("train", &split.train), ("held-out", &split.held_out)] {
            let path = args.out.join(format!("{}.{suffix}", split.modality));
            if path.exists() && !args.force {
                bail!("{} already exists (use -f to overwrite)", path.display());
            }
            let tmp = path.with_extension(format!("{suffix}.tmp"));
            let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            for chunk in chunks.iter() {
                file.write_all(chunk)?;
            }
            file.into_inner()?.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            eprintln!("{}: {} chunks", path.display(), chunks.len());
        }
    }
    Ok(true)
}
