//! `lmzip bench`: lmzip models beside classical codecs on the same chunks of real data.

use crate::{Outcome, models};
use anyhow::{Context, Result};
use clap::Args;
use lmzip::Model;
use lmzip_bench::{Classic, Measurement, measure_classic, measure_lmzip};
use lmzip_data::Modality;
use std::path::PathBuf;

/// Options of `lmzip bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The data folder, with text/, images/ and audio/ inside.
    #[arg(long, default_value = "../shared/data")]
    data: PathBuf,
    /// Modalities to measure (text, images, audio8, audio16), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "text,images,audio8")]
    modality: Vec<String>,
    /// Chunks sampled per modality.
    #[arg(long, default_value_t = 500)]
    chunks: usize,
    /// Sample only from the held-out 5 % of files (never trained on).
    #[arg(long)]
    held_out: bool,
    /// Seed of the chunk sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// lmzip models to measure (as for --model), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "baseline")]
    model: Vec<String>,
    /// Threads for lmzip; 0 means one per core.
    #[arg(short = 'T', long, default_value_t = 0)]
    threads: usize,
}

/// Run the benchmark and print a markdown table.
pub fn run(args: &BenchArgs) -> Outcome {
    let threads = if args.threads == 0 {
        lmzip::write::default_threads()
    } else {
        args.threads
    };
    println!(
        "| data | chunks | compressor | rate % | adjusted % | compress MB/s | decompress MB/s |\n|---|---|---|---|---|---|---|"
    );
    for name in &args.modality {
        let modality =
            Modality::from_name(name).with_context(|| format!("unknown modality '{name}'"))?;
        let chunks = load(args, modality)?;
        // (measurement, parameters): classical codecs have none to count.
        let mut rows: Vec<(Measurement, usize)> = Classic::for_modality(modality)
            .iter()
            .map(|&c| (measure_classic(c, &chunks), 0))
            .collect();
        for name in &args.model {
            let label = format!("lmzip {name}");
            let model = models::by_name(name)?;
            let params = match &model {
                models::AnyModel::Transformer(t) => t.network().config().parameters(),
                models::AnyModel::Baseline(_) => 0,
            };
            // A model with a shorter context codes each 2048-byte chunk as several chunks.
            let m = models::with_model!(model, m => {
                let chunk_size = m
                    .max_chunk_len()
                    .map_or(lmzip::DEFAULT_CHUNK_SIZE, |c| lmzip::DEFAULT_CHUNK_SIZE.min(c as u32));
                measure_lmzip(&label, &m, &chunks, chunk_size, threads)?
            });
            rows.push((m, params));
        }
        for (m, params) in rows {
            println!(
                "| {modality} | {} | {} | {:.2} | {:.2} | {:.3} | {:.3} |",
                chunks.len(),
                m.compressor,
                100.0 * m.rate(),
                100.0 * (m.compressed as f64 + 2.0 * params as f64) / m.original as f64,
                m.compress_bps / 1e6,
                m.decompress_bps / 1e6
            );
        }
    }
    Ok(true)
}

fn load(args: &BenchArgs, modality: Modality) -> Result<Vec<Vec<u8>>> {
    let folder = match modality {
        Modality::Text => "text",
        Modality::Images => "images",
        Modality::Audio8 | Modality::Audio16 => "audio",
    };
    let root = args.data.join(folder);
    let mut all = Vec::new();
    let files = lmzip_data::list_files(&root, modality)
        .with_context(|| format!("cannot list {modality} files in {}", root.display()))?;
    for path in files
        .iter()
        .filter(|p| !args.held_out || lmzip_data::is_held_out(p))
    {
        all.extend(lmzip_data::file_chunks(
            path,
            modality,
            lmzip::DEFAULT_CHUNK_SIZE as usize,
        )?);
    }
    Ok(lmzip_data::sample(&all, args.chunks, args.seed))
}
