//! `lmzip train`: train a byte Transformer on the paper's preprocessed data.
//!
//! The output directory is a model directory at every checkpoint (`config.json`,
//! `model.safetensors`, usable with `--model DIR`), plus `checkpoint/` (optimizer state, to
//! resume) and `train.csv` / `loss.svg` (the loss curve with held-out bits per byte).

use crate::Outcome;
use crate::init_model::Shape;
use crate::{Schedule, Trainer};
use anyhow::{Context, Result, bail};
use clap::Args;
use lmzip_data::Modality;
use lmzip_models::transformer::{Config, Weights, file};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options of `lmzip train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Output model directory (created; with --resume, continued).
    out: PathBuf,
    /// Shape: 200k, 800k or 3.2m (the paper's); --d-model/--layers/--heads override.
    #[arg(long, default_value = "800k")]
    preset: String,
    #[command(flatten)]
    shape: Shape,
    /// Context: the training window and the longest chunk the model will code.
    #[arg(long, default_value_t = 512)]
    context: usize,
    /// The data folder (text/, images/, audio/ inside).
    #[arg(long, default_value = "../shared/data")]
    data: PathBuf,
    /// Modalities to train on, comma-separated: text, images, audio8, audio16 (from --data) and
    /// the everyday kinds corpus-source, corpus-markup, corpus-data, corpus-log, corpus-binary
    /// (from --corpus).
    #[arg(long, value_delimiter = ',', default_value = "text,images,audio8")]
    modality: Vec<String>,
    /// The corpus of everyday files that `scripts/corpus.py` builds (by default
    /// ~/.cache/lmzip/corpus).
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// Sampling weights of the modalities, comma-separated integers in --modality's order: a
    /// training window comes from a modality with probability weight / sum. By default equal.
    #[arg(long, value_delimiter = ',')]
    weights: Vec<u32>,
    /// Optimizer steps.
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// Windows per step.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-3)]
    lr: f32,
    /// Warm-up steps.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Score the held-out files every this many steps (and write a checkpoint).
    #[arg(long, default_value_t = 200)]
    eval_every: usize,
    /// Held-out chunks scored per modality.
    #[arg(long, default_value_t = 32)]
    eval_chunks: usize,
    /// Seed of the initial weights and of the window sampling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Threads; 0 means one per core.
    #[arg(short = 'T', long, default_value_t = 0)]
    threads: usize,
    /// Continue from the checkpoint in the output directory.
    #[arg(long)]
    resume: bool,
}

const CHECKPOINT: &str = "checkpoint";

/// Draws the loss curve: `(loss.csv, loss.svg, last)`; at the last call a PNG beside it too.
/// The caller supplies the plotting (the training crate draws nothing itself).
pub type PlotLoss<'a> = &'a dyn Fn(&Path, &Path, bool) -> Result<()>;

/// Train, checkpointing and scoring as asked, plotting the loss with `plot_loss`.
pub fn run(args: &TrainArgs, plot_loss: PlotLoss) -> Outcome {
    let threads = if args.threads == 0 {
        lmzip::write::default_threads()
    } else {
        args.threads
    };
    let mut config = Config::preset(&args.preset)
        .with_context(|| format!("unknown preset '{}'", args.preset))?;
    args.shape.apply(&mut config);
    config.context = args.context;
    config.trained_on = args.modality.join("+");
    if let Err(why) = config.validate() {
        bail!("invalid model shape: {why}");
    }
    let (train, held_out) = load_data(args)?;
    let total_train: usize = train.chunks.iter().map(|(_, c)| c.len()).sum();
    eprintln!(
        "{} parameters; {} training chunks; held out: {}",
        config.parameters(),
        total_train,
        held_out
            .iter()
            .map(|(m, c)| format!("{m} {}", c.len()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut trainer = if args.resume {
        load_checkpoint(&args.out, threads)?
    } else {
        if args.out.join(file::WEIGHTS_FILE).exists() {
            bail!(
                "{} already holds a model (use --resume to continue it)",
                args.out.display()
            );
        }
        Trainer::new(
            config.clone(),
            file::random_weights(&config, args.seed),
            threads,
        )
    };
    let config = trainer.config().clone();
    let schedule = Schedule {
        steps: args.steps,
        warmup: args.warmup,
        lr: args.lr,
        ..Schedule::default()
    };
    std::fs::create_dir_all(args.out.join(CHECKPOINT))?;
    let csv_path = args.out.join("train.csv");
    let fresh_csv = !args.resume || !csv_path.exists();
    let mut csv = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&csv_path)?;
    if fresh_csv {
        let names: Vec<String> = held_out
            .iter()
            .map(|(m, _)| format!("heldout_{m}_bpb"))
            .collect();
        writeln!(
            csv,
            "step,bytes,seconds,train_bpb,lr,grad_norm,{}",
            names.join(",")
        )?;
    }
    let bar = indicatif::ProgressBar::new(args.steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  ETA {eta}")
            .expect("valid template"),
    );
    bar.set_position(trainer.steps_done() as u64);
    let mut rng = lmzip_data::SplitMix64(
        trainer.steps_done() as u64 ^ args.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let started = Instant::now();
    let mut bytes_seen = 0usize;
    let mut recent = Vec::new();
    while trainer.steps_done() < args.steps {
        let batch: Vec<&[u8]> = (0..args.batch)
            .map(|_| window(&train, config.context, &mut rng))
            .collect();
        let stats = trainer.train_step(&batch, &schedule);
        bytes_seen += batch.iter().map(|w| w.len()).sum::<usize>();
        recent.push(stats.bits_per_byte);
        let step = trainer.steps_done();
        let rate = bytes_seen as f64 / started.elapsed().as_secs_f64();
        bar.set_position(step as u64);
        bar.set_message(format!(
            "{:.3} bits/byte  {:.0} bytes/s",
            stats.bits_per_byte, rate
        ));
        if step.is_multiple_of(args.eval_every) || step == args.steps {
            let scores: Vec<f64> = held_out
                .iter()
                .map(|(_, chunks)| {
                    let windows: Vec<&[u8]> = chunks
                        .iter()
                        .flat_map(|c| c.chunks(config.context))
                        .collect();
                    trainer.evaluate(&windows)
                })
                .collect();
            let mean_train = recent.iter().sum::<f64>() / recent.len().max(1) as f64;
            recent.clear();
            writeln!(
                csv,
                "{step},{bytes_seen},{:.1},{mean_train:.4},{:.6},{:.4},{}",
                started.elapsed().as_secs_f64(),
                stats.lr,
                stats.grad_norm,
                scores
                    .iter()
                    .map(|s| format!("{s:.4}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )?;
            csv.flush()?;
            let line = format!(
                "step {step}: train {mean_train:.3} bits/byte; held out {}",
                held_out
                    .iter()
                    .zip(&scores)
                    .map(|((m, _), s)| format!("{m} {s:.3} ({:.1} %)", 100.0 * s / 8.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            // A hidden bar (no terminal) drops its printed lines: print them directly.
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
            save_checkpoint(&args.out, &trainer)?;
            plot_loss(&csv_path, &args.out.join("loss.svg"), false)?;
        }
    }
    bar.finish_and_clear();
    plot_loss(&csv_path, &args.out.join("loss.svg"), true)?;
    eprintln!(
        "trained {} steps, {bytes_seen} bytes in {:.0} s ({:.0} bytes/s); model in {}",
        trainer.steps_done(),
        started.elapsed().as_secs_f64(),
        bytes_seen as f64 / started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(true)
}

/// Training chunks and held-out chunks per modality: the data module's fixed 5 % of files is
/// held out and never trained on.
type Chunks = Vec<(String, Vec<Vec<u8>>)>;

/// The training chunks with their sampling weights, and the held-out chunks.
fn load_data(args: &TrainArgs) -> Result<(Training, Chunks)> {
    let weights = match args.weights.len() {
        0 => vec![1; args.modality.len()],
        n if n == args.modality.len() => args.weights.clone(),
        n => bail!(
            "{n} weights for {} modalities: give one per modality",
            args.modality.len()
        ),
    };
    if weights.iter().all(|&w| w == 0) {
        bail!("every sampling weight is 0");
    }
    let corpus = args
        .corpus
        .clone()
        .unwrap_or_else(lmzip_data::default_corpus_dir);
    let (mut chunks, mut held) = (Vec::new(), Vec::new());
    for name in &args.modality {
        let s = split(&args.data, &corpus, name)?;
        chunks.push((s.name.clone(), s.train));
        held.push((s.name, lmzip_data::sample(&s.held_out, args.eval_chunks, 0)));
    }
    Ok((Training { chunks, weights }, held))
}

/// The training chunks per modality and how often each modality is drawn.
struct Training {
    chunks: Chunks,
    weights: Vec<u32>,
}

/// One modality's training chunks and its held-out files' chunks.
pub struct Split {
    /// The modality's name (`text`, …, `corpus-source`, …).
    pub name: String,
    /// Chunks of the files trained on.
    pub train: Vec<Vec<u8>>,
    /// Chunks of the held-out files.
    pub held_out: Vec<Vec<u8>>,
}

/// One modality's 2048-byte chunks, split into training chunks and the held-out files' chunks
/// (both must be non-empty): a standard modality from its folder of `data` (`text/`, `images/`
/// or `audio/`), cut per file; a corpus kind (`corpus-KIND`) from its folder of `corpus`, raw
/// bytes, the files of each split joined into one stream (most are shorter than a chunk).
pub fn split(data: &Path, corpus: &Path, name: &str) -> Result<Split> {
    let (root, modality) = match lmzip_data::corpus_kind(name) {
        Some(kind) => (corpus.join(kind), None),
        None => {
            let m = Modality::from_name(name).with_context(|| {
                format!(
                    "unknown modality '{name}' (text, images, audio8, audio16, corpus-{})",
                    lmzip_data::CORPUS_KINDS.join("|corpus-")
                )
            })?;
            (data.join(m.folder()), Some(m))
        }
    };
    if modality.is_none() && !root.is_dir() {
        bail!(
            "{name}: {} is missing (scripts/corpus.py builds the corpus)",
            root.display()
        );
    }
    let files = lmzip_data::list_files(&root, modality.unwrap_or(Modality::Text))?;
    let (held_files, train_files): (Vec<_>, Vec<_>) =
        files.into_iter().partition(|p| lmzip_data::is_held_out(p));
    let (train, held) = match modality {
        None => (
            lmzip_data::joined_chunks(&train_files, 2048)?,
            lmzip_data::joined_chunks(&held_files, 2048)?,
        ),
        Some(m) => {
            let chunks = |files: &[PathBuf]| -> Result<Vec<Vec<u8>>> {
                let mut out = Vec::new();
                for path in files {
                    out.extend(lmzip_data::file_chunks(path, m, 2048)?);
                }
                Ok(out)
            };
            (chunks(&train_files)?, chunks(&held_files)?)
        }
    };
    if train.is_empty() || held.is_empty() {
        bail!(
            "{name}: no training or no held-out chunks under {}",
            root.display()
        );
    }
    Ok(Split {
        name: name.to_string(),
        train,
        held_out: held,
    })
}

/// A random window of `len` bytes: a modality by its weight, a chunk, an offset.
fn window<'a>(data: &'a Training, len: usize, rng: &mut lmzip_data::SplitMix64) -> &'a [u8] {
    let mut next = || rng.next_u64();
    let total: u64 = data.weights.iter().map(|&w| u64::from(w)).sum();
    let mut pick = next() % total;
    let index = data
        .weights
        .iter()
        .position(|&w| {
            let hit = pick < u64::from(w);
            pick = pick.saturating_sub(u64::from(w));
            hit
        })
        .expect("BUG: the pick is below the sum of the weights");
    let (_, chunks) = &data.chunks[index];
    let chunk = &chunks[next() as usize % chunks.len()];
    let len = len.min(chunk.len());
    let start = next() as usize % (chunk.len() - len + 1);
    &chunk[start..start + len]
}

fn save_checkpoint(out: &Path, trainer: &Trainer) -> Result<()> {
    file::save(out, trainer.config(), trainer.weights())?;
    let (m, v) = trainer.moments();
    let dir = out.join(CHECKPOINT);
    file::save(&dir.join("adam_m"), trainer.config(), m)?;
    file::save(&dir.join("adam_v"), trainer.config(), v)?;
    std::fs::write(dir.join("step"), trainer.steps_done().to_string())?;
    Ok(())
}

fn load_checkpoint(out: &Path, threads: usize) -> Result<Trainer> {
    let load = |dir: &Path| -> Result<(Config, Weights)> {
        let loaded = file::load(dir)?;
        Ok((
            loaded.transformer.config().clone(),
            loaded.transformer.weights().clone(),
        ))
    };
    let (config, weights) = load(out)?;
    let dir = out.join(CHECKPOINT);
    let (_, m) = load(&dir.join("adam_m"))?;
    let (_, v) = load(&dir.join("adam_v"))?;
    let step: usize = std::fs::read_to_string(dir.join("step"))?.trim().parse()?;
    Ok(Trainer::resume(config, weights, m, v, step, threads))
}
