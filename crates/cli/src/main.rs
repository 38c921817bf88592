//! The `lmzip` command: compress and decompress files with a predictive model, with the
//! conventions of gzip, xz and zstd.
//!
//! Glue only: argument parsing here, file handling in `files`; the lab commands (bench, speed,
//! sample, train, dataset, tokenizer, init-model) are run by the `lmzip-bench` and
//! `lmzip-train` crates.

mod cleanup;
mod files;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
#[cfg(feature = "lab")]
use lmzip_bench::{plot, report, sample, speed};
#[cfg(feature = "lab")]
use lmzip_train::{command as train, dataset, init_model, tokenizer};
use std::path::PathBuf;

/// Lossless compression with a language model driving an arithmetic coder.
///
/// With no FILE, or when FILE is -, reads standard input and writes standard output.
#[derive(Parser, Debug)]
#[command(name = "lmzip", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    codec: CodecArgs,
}

/// Options of compression and decompression.
#[derive(Args, Debug, Clone)]
pub struct CodecArgs {
    /// Files to compress (or decompress with -d).
    files: Vec<PathBuf>,
    /// Decompress.
    #[arg(short = 'd', long = "decompress")]
    decompress: bool,
    /// Test archives: decompress and check, write nothing.
    #[arg(short = 't', long = "test")]
    test: bool,
    /// Write to standard output; keep input files.
    #[arg(short = 'c', long = "stdout")]
    stdout: bool,
    /// Keep input files.
    #[arg(short = 'k', long = "keep")]
    keep: bool,
    /// Overwrite existing outputs; write compressed data to a terminal.
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Write the output to this file (one input only; `-` is standard output).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "OUT",
        conflicts_with = "stdout"
    )]
    output: Option<PathBuf>,
    /// Threads; 0 means one per core. The archive is the same for any value.
    #[arg(short = 'T', long = "threads", value_name = "N", default_value_t = 0)]
    threads: usize,
    /// Decoding's memory limit (e.g. 800M, 2G, max): fewer threads are used to stay within
    /// it, and an archive that needs more on one thread is refused. Default: half the
    /// physical memory, and half of `ulimit -v` when set.
    #[arg(long = "memory", value_name = "SIZE", value_parser = parse_memory)]
    memory: Option<u64>,
    /// Print nothing but errors.
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Print the rate and speed of each file.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Model: `lmzip-800k-everyday` (the default, a byte Transformer compiled into lmzip),
    /// `lmzip-800k` (the previous default, also compiled in), `baseline`
    /// (the weightless context-mixing model; in solid mode: the adaptive models alone), a model
    /// directory (`config.json` + `model.safetensors`), or the name of one in the model search
    /// path. Decompression takes the model the archive names unless this is given.
    #[arg(long = "model", value_name = "NAME|PATH")]
    model: Option<String>,
    /// Compression level, 1 (fastest: adaptive models alone) to 9 (smallest); also `-1` … `-9`.
    /// Levels 1–3 run the adaptive models alone, 4–9 mix in the model.
    #[arg(long = "level", value_name = "N", value_parser = clap::value_parser!(u8).range(1..=9))]
    level: Option<u8>,
    /// Solid mode's block size (2 KiB to 16 MiB): every byte of a block is predicted from all
    /// bytes before it in the block; blocks are independent (and coded in parallel). 2048 codes
    /// the paper's chunks with the model mixed with adaptive models.
    #[arg(long = "block-size", value_name = "BYTES", conflicts_with_all = ["chunks", "chunk_size"])]
    block_size: Option<u32>,
    /// The paper's mode: code independent chunks (2048 bytes, or --chunk-size) with the model
    /// alone, each from a cold start.
    #[arg(long = "chunks")]
    chunks: bool,
    /// Bytes per independently coded chunk (1 to 16 MiB); implies --chunks. By default 2048, or
    /// the model's context when that is shorter.
    #[arg(long = "chunk-size", value_name = "BYTES")]
    chunk_size: Option<u32>,
}

impl CodecArgs {
    /// The thread count, with 0 resolved to the number of cores, at most 256.
    fn threads(&self) -> usize {
        lmzip::options::resolve_threads(self.threads)
    }

    /// Threads and memory for decoding.
    fn resources(&self) -> lmzip::options::Resources {
        lmzip::options::Resources {
            threads: self.threads(),
            memory: self.memory,
        }
    }
}

fn parse_memory(text: &str) -> Result<u64, String> {
    lmzip::memory::parse_size(text)
}

#[derive(Subcommand, Debug)]
// Parsed once per run: the size of the lab commands' options costs nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Show an archive's header, model, chunk statistics and rate.
    Info {
        /// Archives to describe.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    #[cfg(feature = "lab")]
    #[command(flatten)]
    Lab(Lab),
}

/// The lab commands: the paper's experiments, training and tools (the `lab` feature).
#[cfg(feature = "lab")]
#[derive(Subcommand, Debug)]
enum Lab {
    /// Measure models beside gzip, xz, zstd, bzip2, brotli, PNG and FLAC on the paper's chunks.
    Bench(report::BenchArgs),
    /// Write a model directory with seeded random weights (for tests and benchmarks).
    InitModel(init_model::InitModelArgs),
    /// Measure the Transformer engine on the paper's model shapes (and candle, if built in).
    Speed(speed::SpeedArgs),
    /// Train a byte Transformer on a data folder (text, image patches, audio).
    Train(train::TrainArgs),
    /// Write the training and held-out chunks to flat files (for trainers outside lmzip).
    Dataset(dataset::DatasetArgs),
    /// Generate bytes from any compressor used as a model (gzip, xz, or an lmzip model).
    Sample(sample::SampleArgs),
    /// Train a byte-level BPE tokenizer on the training text.
    Tokenizer(tokenizer::TokenizerArgs),
}

#[cfg(feature = "lab")]
impl Lab {
    fn run(self) -> Outcome {
        match self {
            Lab::Bench(args) => report::run(&args),
            Lab::InitModel(args) => init_model::run(&args),
            Lab::Speed(args) => speed::run(&args),
            Lab::Train(args) => train::run(&args, &plot_loss),
            Lab::Sample(args) => sample::run(&args),
            Lab::Dataset(args) => dataset::run(&args),
            Lab::Tokenizer(args) => tokenizer::run(&args),
        }
    }
}

fn main() {
    let mut cli = Cli::parse_from(std::env::args_os().map(level_flag));
    if cli
        .codec
        .output
        .as_ref()
        .is_some_and(|o| o.as_os_str() == "-")
    {
        cli.codec.output = None;
        cli.codec.stdout = true;
    }
    if let Err(e) = cleanup::install() {
        eprintln!("lmzip: cannot install signal handlers: {e}");
        std::process::exit(1);
    }
    let result = match cli.command {
        Some(Command::Info { files }) => files::info(&files),
        #[cfg(feature = "lab")]
        Some(Command::Lab(lab)) => lab.run(),
        None => files::run(&cli.codec),
    };
    std::process::exit(match result {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            if !is_broken_pipe(&e) {
                eprintln!("lmzip: {}", escaped(&format!("{e:#}")));
            }
            1
        }
    });
}

/// The training curve as SVG, and at the end as PNG too.
#[cfg(feature = "lab")]
fn plot_loss(csv: &std::path::Path, svg: &std::path::Path, last: bool) -> Result<()> {
    plot::loss_curve(csv, svg)?;
    if last && svg.exists() {
        plot::to_png(svg)?;
    }
    Ok(())
}

/// `-1` … `-9`, as gzip, xz and zstd take them, become `--level=N` (standalone only: `-9k` is
/// not split).
fn level_flag(arg: std::ffi::OsString) -> std::ffi::OsString {
    match arg.to_str().map(str::as_bytes) {
        Some([b'-', digit @ b'1'..=b'9']) => format!("--level={}", *digit as char).into(),
        _ => arg,
    }
}

/// Whether an error is a closed pipe on the output (`lmzip -dc f.lmz | head`): exit quietly.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let broken = |io: &std::io::Error| io.kind() == std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(broken)
            || matches!(c.downcast_ref::<lmzip::Error>(), Some(lmzip::Error::Io(io)) if broken(io))
    })
}

/// `text` safe for a terminal: control characters (but newline and tab) and the characters
/// that reorder text on screen are written as escapes, so that a string from a file (a
/// model's config.json, GGUF metadata, an archive's model name, a file name) cannot send
/// escape sequences to the user's terminal.
pub fn escaped(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if !text.contains(unsafe_char) {
        return text.into();
    }
    text.chars()
        .map(|c| match c {
            c if unsafe_char(c) && (c as u32) < 0x100 => format!("\\x{:02x}", c as u32),
            c if unsafe_char(c) => format!("\\u{{{:04x}}}", c as u32),
            c => c.to_string(),
        })
        .collect::<String>()
        .into()
}

/// Result type of the commands: `Ok(false)` when some file failed (already reported).
pub type Outcome = Result<bool>;
