//! `lmzip bench`: lmzip models beside classical codecs on the same chunks of real data, and the
//! report that regenerates docs/RESULTS.md (the paper's Table 1, rate by position, adjusted
//! rate against model size, rate against speed).

use crate::Outcome;
use crate::{Classic, Measurement, measure_classic, measure_classic_unchunked, measure_lmzip};
use anyhow::{Context, Result, bail};
use clap::Args;
use lmzip::Model;
use lmzip_data::Modality;
use lmzip_models::mix::{Level, MAX_LEVEL, Mixed};
use lmzip_models::registry as models;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options of `lmzip bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The data folder, with text/, images/ and audio/ inside.
    #[arg(long, default_value = "../shared/data")]
    data: PathBuf,
    /// Data sets, comma-separated: text, images, audio8, audio16 (from --data), random
    /// (seeded random bytes), text:PATH (the files under PATH as raw bytes), or an everyday
    /// kind of the corpus (from --corpus): corpus-source, corpus-markup, corpus-data,
    /// corpus-log, corpus-binary.
    #[arg(long, value_delimiter = ',', default_value = "text,images,audio8")]
    modality: Vec<String>,
    /// The corpus of everyday files that `scripts/corpus.py` builds (by default
    /// ~/.cache/lmzip/corpus).
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// Chunks sampled per data set.
    #[arg(long, default_value_t = 500)]
    chunks: usize,
    /// Sample text, images, audio and the corpus kinds only from the held-out 5 % of files
    /// (never trained on); text:PATH sets are taken whole.
    #[arg(long)]
    held_out: bool,
    /// Seed of the chunk sample (and of the random data set).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// lmzip models to measure (as for --model), comma-separated. NAME@LEVEL measures NAME mixed
    /// with the adaptive models of that level (as solid mode codes), each chunk its own block.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "baseline,lmzip-800k-everyday,lmzip-800k-everyday@6"
    )]
    model: Vec<String>,
    /// Threads for lmzip; 0 means one per core.
    #[arg(short = 'T', long, default_value_t = 0)]
    threads: usize,
    /// Also compress each data set's sampled chunks as one input (the paper's unchunked rows):
    /// the classical codecs and the baseline.
    #[arg(long)]
    unchunked: bool,
    /// Write results.json, results.csv and the plots (SVG) into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write a markdown report (Table 1, every measurement, plots, computed observations) to
    /// this file; its data and plots go to --out, by default `results/` beside it.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Chunks per data set scored for the rate-by-position plot (with --out or --report).
    #[arg(long, default_value_t = 32)]
    position_chunks: usize,
}

/// One row of the results.
#[derive(Debug, serde::Serialize)]
pub struct Row {
    /// The data set.
    pub modality: String,
    /// Chunks measured.
    pub chunks: usize,
    /// `2048` (chunks coded independently) or `whole` (all chunks as one input).
    pub chunking: String,
    /// The compressor.
    pub compressor: String,
    /// The model's parameters (0 for codecs and the baseline).
    pub parameters: usize,
    /// Compressed / original, header counted once.
    pub rate: f64,
    /// Compressed / original with each chunk a file of its own (header counted per chunk).
    pub rate_per_chunk: f64,
    /// The rate with 2 bytes per model parameter added.
    pub adjusted_rate: f64,
    /// Compression throughput, bytes per second.
    pub compress_bps: f64,
    /// Decompression throughput, bytes per second.
    pub decompress_bps: f64,
}

/// Mean bits per byte by position within the chunk, in buckets of [`POSITION_BUCKET`] bytes.
#[derive(Debug, serde::Serialize)]
pub struct PositionCurve {
    /// The data set.
    pub modality: String,
    /// The compressor.
    pub compressor: String,
    /// Bits per byte of each bucket, from the chunk's start.
    pub bits_per_byte: Vec<f64>,
}

/// Positions per point of the rate-by-position curves.
pub const POSITION_BUCKET: usize = 64;

/// A data set of the benchmark.
enum DataSet {
    Files(Modality),
    Random,
    Path(PathBuf),
    /// A kind of the everyday corpus: its files joined into one stream, then chunked.
    Corpus(&'static str),
}

impl DataSet {
    fn parse(name: &str) -> Result<DataSet> {
        if name == "random" {
            return Ok(DataSet::Random);
        }
        if let Some(path) = name.strip_prefix("text:") {
            return Ok(DataSet::Path(PathBuf::from(path)));
        }
        if let Some(kind) = lmzip_data::corpus_kind(name) {
            return Ok(DataSet::Corpus(kind));
        }
        Modality::from_name(name)
            .map(DataSet::Files)
            .with_context(|| format!("unknown data set '{name}'"))
    }

    fn label(&self) -> String {
        match self {
            DataSet::Files(m) => m.to_string(),
            DataSet::Random => "random".into(),
            DataSet::Path(p) => p
                .file_name()
                .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into()),
            DataSet::Corpus(kind) => format!("corpus-{kind}"),
        }
    }

    fn codecs(&self) -> Vec<Classic> {
        match self {
            DataSet::Files(m) => Classic::for_modality(*m),
            DataSet::Random => Classic::all(),
            DataSet::Path(_) | DataSet::Corpus(_) => Classic::for_modality(Modality::Text),
        }
    }
}

/// Split a `--model` entry, `NAME` or `NAME@LEVEL`, into the model's name and the mixer's level.
fn parse_model_spec(spec: &str) -> anyhow::Result<(&str, Option<Level>)> {
    let Some((name, level)) = spec.split_once('@') else {
        return Ok((spec, None));
    };
    match level.parse::<u8>().ok().and_then(Level::new) {
        Some(level) => Ok((name, Some(level))),
        None => bail!("{spec}: the level after '@' must be 1 to {MAX_LEVEL}"),
    }
}

/// Run the benchmark, print a markdown table, and write what `--out` and `--report` ask for.
pub fn run(args: &BenchArgs) -> Outcome {
    let started = Instant::now();
    let threads = if args.threads == 0 {
        lmzip::write::default_threads()
    } else {
        args.threads
    };
    let out_dir = match (&args.out, &args.report) {
        (Some(dir), _) => Some(dir.clone()),
        (None, Some(report)) => Some(report.with_file_name("results")),
        (None, None) => None,
    };
    println!(
        "| data | chunks | chunk size | compressor | rate % | header per chunk % | adjusted % | compress MB/s | decompress MB/s |\n|---|---|---|---|---|---|---|---|---|"
    );
    let (mut results, mut curves) = (Vec::new(), Vec::new());
    for name in &args.modality {
        let set = DataSet::parse(name)?;
        let label = set.label();
        let chunks = load(args, &set)?;
        if chunks.is_empty() {
            bail!("{label}: no chunks to measure");
        }
        let mut rows: Vec<(Measurement, usize, &str)> = Vec::new();
        if args.unchunked {
            for &c in &set.codecs() {
                rows.push((measure_classic_unchunked(c, &chunks), 0, "whole"));
            }
            if args.model.iter().any(|m| m == "baseline") {
                let whole: usize = chunks.iter().map(Vec::len).sum();
                let size = (whole as u32).clamp(1, lmzip::MAX_CHUNK_SIZE);
                let m = lmzip_models::ContextMixing::new();
                rows.push((
                    measure_lmzip("lmzip baseline", &m, &chunks, size, threads)?,
                    0,
                    "whole",
                ));
            }
        }
        for &c in &set.codecs() {
            rows.push((measure_classic(c, &chunks), 0, "2048"));
        }
        for spec in &args.model {
            let (model_name, level) = parse_model_spec(spec)?;
            let compressor = if spec.starts_with("lmzip") {
                spec.clone()
            } else {
                format!("lmzip {spec}")
            };
            let model = models::by_name(model_name)?;
            let params = model.parameters();
            let (m, curve) = lmzip_models::with_model!(model, m => {
                // A model with a shorter context codes each 2048-byte chunk in pieces.
                let chunk_size = m
                    .max_chunk_len()
                    .map_or(lmzip::DEFAULT_CHUNK_SIZE, |c| lmzip::DEFAULT_CHUNK_SIZE.min(c as u32));
                let curve_chunks = &chunks[..args.position_chunks.min(chunks.len())];
                let curve_chunks = out_dir.is_some().then_some(curve_chunks);
                match level {
                    None => measure_model(&compressor, &m, &chunks, curve_chunks, chunk_size, threads)?,
                    Some(level) => {
                        let mixed = Mixed::new(&m, level, chunk_size)
                            .map_err(|e| anyhow::anyhow!(e))?;
                        measure_model(&compressor, &mixed, &chunks, curve_chunks, chunk_size, threads)?
                    }
                }
            });
            if let Some(bits_per_byte) = curve {
                curves.push(PositionCurve {
                    modality: label.clone(),
                    compressor: compressor.clone(),
                    bits_per_byte,
                });
            }
            rows.push((m, params, "2048"));
        }
        for (m, params, chunking) in rows {
            let row = Row {
                modality: label.clone(),
                chunks: chunks.len(),
                chunking: chunking.into(),
                compressor: m.compressor.clone(),
                parameters: params,
                rate: m.rate(),
                rate_per_chunk: m.rate_per_chunk(),
                adjusted_rate: (m.compressed as f64 + 2.0 * params as f64) / m.original as f64,
                compress_bps: m.compress_bps,
                decompress_bps: m.decompress_bps,
            };
            println!("{}", table_line(&row));
            results.push(row);
        }
    }
    if let Some(dir) = &out_dir {
        write_outputs(dir, &results, &curves)?;
    }
    if let Some(report) = &args.report {
        let dir = out_dir
            .as_deref()
            .expect("a report has an output directory");
        let text = report_markdown(args, &results, report, dir, started.elapsed().as_secs_f64());
        std::fs::write(report, text).with_context(|| format!("writing {}", report.display()))?;
        eprintln!("report written to {}", report.display());
    }
    Ok(true)
}

fn table_line(row: &Row) -> String {
    format!(
        "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {} |",
        row.modality,
        row.chunks,
        row.chunking,
        row.compressor,
        100.0 * row.rate,
        100.0 * row.rate_per_chunk,
        100.0 * row.adjusted_rate,
        megabytes(row.compress_bps),
        megabytes(row.decompress_bps)
    )
}

/// Bytes per second in MB/s: three decimals, or three significant digits below 0.1 MB/s (an
/// LLM's few KB/s stay readable).
fn megabytes(bps: f64) -> String {
    let mb = bps / 1e6;
    if mb >= 0.1 || mb == 0.0 {
        format!("{mb:.3}")
    } else {
        let decimals = (2.0 - mb.log10().floor()).clamp(3.0, 9.0) as usize;
        format!("{mb:.decimals$}")
    }
}

/// Measure `m` on `chunks` coded in pieces of `chunk_size` bytes, and its code length by
/// position over `curve_chunks` when given.
fn measure_model<M: Model + Copy>(
    compressor: &str,
    m: M,
    chunks: &[Vec<u8>],
    curve_chunks: Option<&[Vec<u8>]>,
    chunk_size: u32,
    threads: usize,
) -> Result<(Measurement, Option<Vec<f64>>)> {
    let measured = measure_lmzip(compressor, m, chunks, chunk_size, threads)?;
    let curve = curve_chunks.map(|c| position_curve(&m, c, chunk_size as usize, threads));
    Ok((measured, curve))
}

/// Mean code length by position over `chunks`, each cut into pieces of `piece` bytes (the
/// model's chunk size), on `threads` threads.
fn position_curve<M: Model>(m: &M, chunks: &[Vec<u8>], piece: usize, threads: usize) -> Vec<f64> {
    let per_thread = chunks.len().div_ceil(threads.max(1)).max(1);
    let partial: Vec<Vec<f64>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .chunks(per_thread)
            .map(|group| {
                s.spawn(move || {
                    let mut state = m.new_state();
                    let mut sums = vec![0.0; lmzip::DEFAULT_CHUNK_SIZE as usize];
                    for chunk in group {
                        for (p, part) in chunk.chunks(piece).enumerate() {
                            let bits = lmzip::chunk::code_lengths(
                                m,
                                &mut state,
                                part,
                                &lmzip::Budget::spare(0),
                            );
                            for (i, b) in bits.into_iter().enumerate() {
                                sums[p * piece + i] += b;
                            }
                        }
                    }
                    sums
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a scoring thread panicked"))
            .collect()
    });
    let len = chunks.iter().map(Vec::len).max().unwrap_or(0);
    let mut sums = vec![0.0; len];
    for p in &partial {
        for (s, v) in sums.iter_mut().zip(p) {
            *s += v;
        }
    }
    sums.chunks(POSITION_BUCKET)
        .map(|b| b.iter().sum::<f64>() / (b.len() * chunks.len()) as f64)
        .collect()
}

fn write_outputs(dir: &Path, results: &[Row], curves: &[PositionCurve]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "results": results,
            "rate_by_position": curves,
        }))?,
    )?;
    let mut csv = String::from(
        "modality,chunks,chunking,compressor,parameters,rate,rate_per_chunk,adjusted_rate,compress_bps,decompress_bps\n",
    );
    for r in results {
        writeln!(
            csv,
            "{},{},{},\"{}\",{},{:.6},{:.6},{:.6},{:.1},{:.1}",
            r.modality,
            r.chunks,
            r.chunking,
            r.compressor,
            r.parameters,
            r.rate,
            r.rate_per_chunk,
            r.adjusted_rate,
            r.compress_bps,
            r.decompress_bps
        )?;
    }
    std::fs::write(dir.join("results.csv"), csv)?;
    let chunked: Vec<&Row> = results.iter().filter(|r| r.chunking == "2048").collect();
    crate::plot::rate_vs_speed(&chunked, &dir.join("rate_vs_speed.svg"))?;
    let mut sets: Vec<&str> = curves.iter().map(|c| c.modality.as_str()).collect();
    sets.dedup();
    for set in sets {
        let of_set: Vec<&PositionCurve> = curves.iter().filter(|c| c.modality == set).collect();
        crate::plot::rate_by_position(&of_set, &dir.join(format!("position_{set}.svg")))?;
    }
    if let Some(first) = results.first() {
        let models: Vec<(String, usize, f64)> = chunked
            .iter()
            .filter(|r| r.modality == first.modality && r.parameters > 0)
            .map(|r| (r.compressor.clone(), r.parameters, r.rate))
            .collect();
        crate::plot::adjusted_vs_size(&first.modality, &models, &dir.join("scaling.svg"))?;
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "svg") {
            crate::plot::to_png(&path)?;
        }
    }
    Ok(())
}

/// Data sizes of the adjusted-rate-against-model-size plot (the paper's enwik6 … enwik9).
pub const SCALING_SIZES: [f64; 4] = [1e6, 1e7, 1e8, 1e9];

fn report_markdown(
    args: &BenchArgs,
    results: &[Row],
    report: &Path,
    dir: &Path,
    seconds: f64,
) -> String {
    let rel = pathdiff(dir, report.parent().unwrap_or(Path::new("")));
    let mut sets: Vec<&str> = results.iter().map(|r| r.modality.as_str()).collect();
    sets.dedup();
    let mut md = String::new();
    let command = std::env::args()
        .skip(1)
        .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
        .collect::<Vec<_>>()
        .join(" ");
    let _ = writeln!(
        md,
        "# Results\n\nGenerated by `cargo run --release -- {command}` on {} ({}, {} threads for \
         lmzip) in {:.1} minutes. This file is written by that command: rerun it rather than \
         editing. Engine and trainer speed: [SPEED.md](SPEED.md); the shipped models and their \
         training: [../models/README.md](../models/README.md); sampling: [SAMPLES.md](SAMPLES.md).\n",
        today(),
        cpu_name(),
        if args.threads == 0 {
            lmzip::write::default_threads()
        } else {
            args.threads
        },
        seconds / 60.0
    );
    let _ = writeln!(
        md,
        "Data: `{}`; {} chunks of 2048 bytes per set sampled with seed {}{}; `random` is \
         seeded random bytes. Rates are compressed / original with the header counted once \
         (classical codecs: each chunk alone, the container cost of a one-byte input subtracted \
         for all chunks but one, as the paper; lmzip: the whole archive); \"header per chunk\" \
         counts every chunk as a file of its own (lmzip: plus an empty archive's size per \
         chunk). Adjusted rates add 2 bytes per model parameter. Every result was decompressed and checked.\n",
        args.data.display(),
        args.chunks,
        args.seed,
        if args.held_out {
            ", text / images / audio from the held-out files only (never trained on; a text:PATH \
             set is taken whole and may overlap the training data)"
        } else {
            ""
        }
    );
    // Table 1: compressors as rows, raw and adjusted rates per data set as columns.
    let _ = writeln!(md, "## Table 1, the paper's layout\n");
    let mut head = String::from("| chunk size | compressor |");
    let mut rule = String::from("|---|---|");
    for s in &sets {
        let _ = write!(head, " raw {s} |");
        rule.push_str("---|");
    }
    for s in &sets {
        let _ = write!(head, " adjusted {s} |");
        rule.push_str("---|");
    }
    let _ = writeln!(md, "{head}\n{rule}");
    for chunking in ["whole", "2048"] {
        let mut names: Vec<&str> = results
            .iter()
            .filter(|r| r.chunking == chunking)
            .map(|r| r.compressor.as_str())
            .collect();
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| seen.insert(*n));
        // Classical codecs first, then lmzip's models, each in order of appearance.
        names.sort_by_key(|n| n.starts_with("lmzip"));
        for name in names {
            let find = |s: &str| {
                results
                    .iter()
                    .find(|r| r.chunking == chunking && r.compressor == name && r.modality == s)
            };
            let size = if chunking == "whole" { "∞" } else { "2048" };
            let mut line = format!("| {size} | {name} |");
            for s in &sets {
                let cell = find(s).map_or("–".into(), |r| format!("{:.1}", 100.0 * r.rate));
                let _ = write!(line, " {cell} |");
            }
            for s in &sets {
                let cell =
                    find(s).map_or("–".into(), |r| format!("{:.1}", 100.0 * r.adjusted_rate));
                let _ = write!(line, " {cell} |");
            }
            let _ = writeln!(md, "{line}");
        }
    }
    let _ = writeln!(
        md,
        "\n∞: the {} sampled chunks of a set concatenated and compressed as one input (the \
         paper compresses whole data sets here; ours are the samples).\n",
        args.chunks
    );
    let _ = writeln!(md, "## What the numbers say (computed from the table)\n");
    for s in &sets {
        let best = |lmzip: bool| {
            results
                .iter()
                .filter(|r| {
                    r.modality == *s
                        && r.chunking == "2048"
                        && r.compressor.starts_with("lmzip") == lmzip
                })
                .min_by(|a, b| a.rate.total_cmp(&b.rate))
        };
        if let (Some(c), Some(l)) = (best(false), best(true)) {
            let _ = writeln!(
                md,
                "- {s}: best classical codec {} at {:.2} %, best lmzip model {} at {:.2} % \
                 ({:+.2} points); adjusted, {} is at {:.2} %.",
                c.compressor,
                100.0 * c.rate,
                l.compressor,
                100.0 * l.rate,
                100.0 * (l.rate - c.rate),
                l.compressor,
                100.0 * l.adjusted_rate
            );
        }
    }
    let _ = writeln!(md, "\n## Every measurement\n");
    let _ = writeln!(
        md,
        "| data | chunks | chunk size | compressor | rate % | header per chunk % | adjusted % | compress MB/s | decompress MB/s |\n|---|---|---|---|---|---|---|---|---|"
    );
    for r in results {
        let _ = writeln!(md, "{}", table_line(r));
    }
    let _ = writeln!(
        md,
        "\nSpeeds are of this run on a shared machine (± 20 % between runs); lmzip's include \
         the model's whole work on {} threads.\n\n## Plots\n",
        args.threads.max(1)
    );
    let _ = writeln!(
        md,
        "Rate against compression speed, every compressor and data set (2048-byte chunks):\n\n\
         ![rate against speed]({rel}/rate_vs_speed.svg)\n"
    );
    if results.iter().any(|r| r.parameters > 0) {
        let _ = writeln!(
            md,
            "Adjusted rate against model size (the paper's Fig. 2) for data sets of 10^6 … \
             10^9 bytes: the raw rate each model reached on the `{}` sample, plus 2 bytes per \
             parameter spread over the data size:\n\n\
             ![adjusted rate against model size]({rel}/scaling.svg)\n",
            sets.first().copied().unwrap_or("")
        );
    }
    let _ = writeln!(
        md,
        "Rate by position within the chunk (the paper's Fig. 4): mean bits per byte over the \
         first {} sampled chunks, in buckets of {POSITION_BUCKET} bytes; the models learn in \
         context as the chunk goes on:\n",
        args.position_chunks
    );
    for s in &sets {
        let _ = writeln!(md, "![rate by position, {s}]({rel}/position_{s}.svg)\n");
    }
    let _ = writeln!(
        md,
        "Data: [{rel}/results.json]({rel}/results.json) (also the position curves), \
         [{rel}/results.csv]({rel}/results.csv)."
    );
    md
}

/// `dir` relative to `base` when it lies inside it, else as given.
fn pathdiff(dir: &Path, base: &Path) -> String {
    let rel = if base.as_os_str().is_empty() {
        Some(dir)
    } else {
        dir.strip_prefix(base).ok()
    };
    rel.unwrap_or(dir).display().to_string()
}

fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn cpu_name() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let name = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|n| n.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{name}, {cores} cores")
}

fn load(args: &BenchArgs, set: &DataSet) -> Result<Vec<Vec<u8>>> {
    let size = lmzip::DEFAULT_CHUNK_SIZE as usize;
    let (root, modality) = match set {
        DataSet::Random => return Ok(lmzip_data::random_chunks(args.chunks, size, args.seed)),
        DataSet::Path(p) => (p.clone(), Modality::Text),
        DataSet::Files(m) => (args.data.join(m.folder()), *m),
        DataSet::Corpus(kind) => {
            let root = args
                .corpus
                .clone()
                .unwrap_or_else(lmzip_data::default_corpus_dir)
                .join(kind);
            if !root.is_dir() {
                bail!(
                    "corpus-{kind}: {} is missing (scripts/corpus.py builds the corpus)",
                    root.display()
                );
            }
            let files: Vec<PathBuf> = lmzip_data::list_files(&root, Modality::Text)?
                .into_iter()
                .filter(|p| !args.held_out || lmzip_data::is_held_out(p))
                .collect();
            let all = lmzip_data::joined_chunks(&files, size)?;
            return Ok(lmzip_data::sample(&all, args.chunks, args.seed));
        }
    };
    let files = lmzip_data::list_files(&root, modality)
        .with_context(|| format!("cannot list {modality} files in {}", root.display()))?;
    // --held-out applies to the standard data sets; a path the user names is taken whole.
    let held_out_only = args.held_out && matches!(set, DataSet::Files(_));
    let mut all = Vec::new();
    for path in files
        .iter()
        .filter(|p| !held_out_only || lmzip_data::is_held_out(p))
    {
        all.extend(lmzip_data::file_chunks(path, modality, size)?);
    }
    Ok(lmzip_data::sample(&all, args.chunks, args.seed))
}
