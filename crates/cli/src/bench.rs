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
    #[arg(long, value_delimiter = ',', default_value = "baseline,lmzip-800k")]
    model: Vec<String>,
    /// Threads for lmzip; 0 means one per core.
    #[arg(short = 'T', long, default_value_t = 0)]
    threads: usize,
    /// Also write results.json, results.csv and rate_vs_speed.svg into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// One row of the results.
#[derive(Debug, serde::Serialize)]
pub struct Row {
    /// The data set.
    pub modality: String,
    /// Chunks measured.
    pub chunks: usize,
    /// The compressor.
    pub compressor: String,
    /// Compressed / original, header counted once.
    pub rate: f64,
    /// The rate with 2 bytes per model parameter added.
    pub adjusted_rate: f64,
    /// Compression throughput, bytes per second.
    pub compress_bps: f64,
    /// Decompression throughput, bytes per second.
    pub decompress_bps: f64,
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
    let mut results = Vec::new();
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
            let row = Row {
                modality: modality.to_string(),
                chunks: chunks.len(),
                compressor: m.compressor.clone(),
                rate: m.rate(),
                adjusted_rate: (m.compressed as f64 + 2.0 * params as f64) / m.original as f64,
                compress_bps: m.compress_bps,
                decompress_bps: m.decompress_bps,
            };
            println!(
                "| {} | {} | {} | {:.2} | {:.2} | {:.3} | {:.3} |",
                row.modality,
                row.chunks,
                row.compressor,
                100.0 * row.rate,
                100.0 * row.adjusted_rate,
                row.compress_bps / 1e6,
                row.decompress_bps / 1e6
            );
            results.push(row);
        }
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("results.json"),
            serde_json::to_string_pretty(&results)?,
        )?;
        let mut csv = String::from(
            "modality,chunks,compressor,rate,adjusted_rate,compress_bps,decompress_bps\n",
        );
        for r in &results {
            csv += &format!(
                "{},{},\"{}\",{:.6},{:.6},{:.1},{:.1}\n",
                r.modality,
                r.chunks,
                r.compressor,
                r.rate,
                r.adjusted_rate,
                r.compress_bps,
                r.decompress_bps
            );
        }
        std::fs::write(dir.join("results.csv"), csv)?;
        crate::plot::rate_vs_speed(&results, &dir.join("rate_vs_speed.svg"))?;
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
