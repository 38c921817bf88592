//! `lmzip speed`: the Transformer engine's throughput on the paper's shapes, where the time
//! goes, and candle's forward of the same model in the same run (when built with
//! `--features candle`).

use crate::Outcome;
use anyhow::{Context, Result};
use clap::Args;
use lmzip_coder::{Cdf, Encoder};
use lmzip_data::Modality;
use lmzip_engine::quantize::{FREQUENCY_BITS, frequencies};
use lmzip_engine::{Cache, Isa, kernels};
use lmzip_models::transformer::config::OUTPUT_VOCAB;
use lmzip_models::transformer::{
    Config, Profile, Scratch, Transformer, chunk_inputs, file, inputs_at,
};
use lmzip_models::{Model, TransformerModel};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `lmzip speed`.
#[derive(Args, Debug)]
pub struct SpeedArgs {
    /// Presets to measure (200k, 800k, 3.2m), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "200k,800k,3.2m")]
    preset: Vec<String>,
    /// Text chunks (2048 bytes) from the data folder to code per preset.
    #[arg(long, default_value_t = 8)]
    chunks: usize,
    /// The data folder, with text/ inside.
    #[arg(long, default_value = "../shared/data")]
    data: PathBuf,
    /// Measure training instead: our trainer against candle's autograd on the same model and
    /// batch (8 windows of 512 bytes).
    #[arg(long)]
    train: bool,
    /// Threads for the end-to-end runs; 0 means one per core.
    #[arg(short = 'T', long, default_value_t = 0)]
    threads: usize,
    /// Measure this model (as for `lmzip --model`, e.g. lmzip-800k) instead of the presets: rate
    /// and speed both ways on `--chunks` held-out chunks of text, image patches and 8-bit
    /// speech, in the paper's independent chunks and in solid mode (the default level).
    #[arg(long)]
    model: Option<String>,
    /// With --model: the attention windows to run the model with, comma-separated (`full` or a
    /// number of positions); by default the window of this build's numerics only. Any other
    /// window is an experiment: an archive records only the numerics version.
    #[arg(long, value_delimiter = ',')]
    window: Vec<String>,
}

/// One preset's numbers.
struct Row {
    name: String,
    params: usize,
    flop_per_byte: f64,
    compress_bps: f64,
    decompress_bps: f64,
    rate: f64,
    candle_bps: Option<f64>,
}

/// Run the measurements and print markdown tables.
pub fn run(args: &SpeedArgs) -> Outcome {
    let threads = if args.threads == 0 {
        lmzip::write::default_threads()
    } else {
        args.threads
    };
    if let Some(name) = &args.model {
        return model_speed(args, name, threads);
    }
    let root = args.data.join("text");
    let all = lmzip_data::load(&root, lmzip_data::Modality::Text, 2048)
        .with_context(|| format!("cannot load text from {}", root.display()))?;
    let chunks = lmzip_data::sample(&all, args.chunks.max(1), 0);
    if args.train {
        return train_speed(args, &chunks, threads);
    }
    let isa = Isa::detect();
    let peak = peak_flops(isa, threads);
    println!(
        "kernels: {}; {threads} threads; measured FMA peak {:.1} GFLOP/s ({:.1} per thread); \
         {} text chunks of 2048 bytes; random weights (seed 1)\n",
        isa.name(),
        peak / 1e9,
        peak / 1e9 / threads as f64,
        chunks.len()
    );
    let mut rows = Vec::new();
    let mut breakdowns = Vec::new();
    for preset in &args.preset {
        let config =
            Config::preset(preset).with_context(|| format!("unknown preset '{preset}'"))?;
        let weights = file::random_weights(&config, 1);
        let (json, tensors) = file::to_bytes(&config, &weights);
        let model = TransformerModel::new(
            preset,
            file::model_sha256(&json, &tensors),
            Transformer::new(config.clone(), weights),
        );
        // The network as this build's numerics run it (its attention window).
        let net = model.network().clone();
        let m = crate::measure_lmzip(preset, &model, &chunks, 2048, threads)?;
        let flop_per_byte = (0..2048).map(|p| config.flops_at(p)).sum::<f64>() / 2048.0;
        rows.push(Row {
            name: preset.clone(),
            params: config.parameters(),
            flop_per_byte,
            compress_bps: m.compress_bps,
            decompress_bps: m.decompress_bps,
            rate: m.rate(),
            candle_bps: candle_speed(&net, &chunks)?,
        });
        breakdowns.push((
            preset.clone(),
            breakdown(&net, &chunks, model.lockstep_chunks()),
        ));
    }
    println!(
        "| model | parameters | MFLOP/byte | compress KB/s | GFLOP/s | % of peak | decompress KB/s | GFLOP/s | % of peak | candle forward KB/s | compress / candle |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let gf = |bps: f64| bps * r.flop_per_byte / 1e9;
        let candle = r
            .candle_bps
            .map_or("not built".into(), |c| format!("{:.2}", c / 1e3));
        let ratio = r
            .candle_bps
            .map_or("–".into(), |c| format!("{:.1}×", r.compress_bps / c));
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.1} | {:.0} % | {:.2} | {:.1} | {:.0} % | {candle} | {ratio} |",
            r.name,
            r.params,
            r.flop_per_byte / 1e6,
            r.compress_bps / 1e3,
            gf(r.compress_bps),
            100.0 * gf(r.compress_bps) * 1e9 / peak,
            r.decompress_bps / 1e3,
            gf(r.decompress_bps),
            100.0 * gf(r.decompress_bps) * 1e9 / peak,
        );
    }
    println!("\n(rates of these random models on the text: {})", {
        let v: Vec<String> = rows
            .iter()
            .map(|r| format!("{} {:.1} %", r.name, 100.0 * r.rate))
            .collect();
        v.join(", ")
    });
    println!(
        "\nWhere one thread's time goes (teacher-forced forward of 2 chunks; lockstep decode of \
         as many chunks as the model asks, 2048 steps):\n"
    );
    println!(
        "| model | path | KB/s per thread | matrix products | attention | norms, GELU, rotary, other | logits → tables + coder |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, b) in &breakdowns {
        for (path, p, bytes) in [
            ("teacher-forced", b.forward, b.forward_bytes),
            (
                &*format!("decode, {} in lockstep", b.lockstep),
                b.decode,
                b.decode_bytes,
            ),
        ] {
            let tables = b.tables_per_byte.mul_f64(bytes as f64);
            let total = p.total + tables;
            let pct = |d: Duration| 100.0 * d.as_secs_f64() / total.as_secs_f64();
            println!(
                "| {name} | {path} | {:.2} | {:.0} % | {:.0} % | {:.0} % | {:.0} % |",
                bytes as f64 / total.as_secs_f64() / 1e3,
                pct(p.matmul),
                pct(p.attention),
                pct(p.total.saturating_sub(p.matmul + p.attention)),
                pct(tables),
            );
        }
    }
    Ok(true)
}

/// `lmzip speed --model`: a shipped model at each attention window on held-out data, in
/// independent chunks and in solid mode.
fn model_speed(args: &SpeedArgs, name: &str, threads: usize) -> Outcome {
    let model = match lmzip_models::registry::by_name(name).map_err(|e| anyhow::anyhow!(e))? {
        lmzip_models::registry::AnyModel::Transformer(t) => *t,
        _ => anyhow::bail!("--model: '{name}' is not a byte Transformer"),
    };
    let windows: Vec<usize> = if args.window.is_empty() {
        vec![model.network().window()]
    } else {
        args.window
            .iter()
            .map(|w| match w.as_str() {
                "full" => Ok(usize::MAX),
                n => n
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n >= 1)
                    .with_context(|| format!("--window: '{n}' is neither 'full' nor a count")),
            })
            .collect::<Result<_>>()?
    };
    let level = lmzip_models::mix::Level::new(lmzip::options::DEFAULT_LEVEL).context("level")?;
    let block_size = lmzip::options::block_size_for(level.number);
    let isa = Isa::detect();
    let peak = peak_flops(isa, threads);
    println!(
        "kernels: {}; {threads} threads; measured FMA peak {:.1} GFLOP/s; model {name}; {} \
         held-out chunks of 2048 bytes per set (seed 0); solid: the chunks concatenated, level \
         {}, blocks of {block_size} bytes; weights {:?}; GOP/s counts the Transformer's \
         multiply-adds × 2, integer (int8 products) and f32 (attention) alike, against the f32 \
         FMA peak (the mixer's integer work is not counted)\n",
        isa.name(),
        peak / 1e9,
        args.chunks,
        level.number,
        model.network().weight_storage(),
    );
    println!(
        "| window | data | mode | rate % | MOP/byte | compress KB/s | GOP/s | decompress KB/s | GOP/s | decompress / compress |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let config = model.network().config().clone();
    for modality in [Modality::Text, Modality::Images, Modality::Audio8] {
        let root = args.data.join(modality.folder());
        let mut all = Vec::new();
        for path in lmzip_data::list_files(&root, modality)
            .with_context(|| format!("cannot list {}", root.display()))?
            .iter()
            .filter(|p| lmzip_data::is_held_out(p))
        {
            all.extend(lmzip_data::file_chunks(path, modality, 2048)?);
        }
        let chunks = lmzip_data::sample(&all, args.chunks.max(1), 0);
        for &window in &windows {
            let windowed = model.clone().with_attention_window(window);
            let mixed = lmzip_models::mix::Mixed::new(&windowed, level, block_size)
                .map_err(|e| anyhow::anyhow!(e))?;
            let chunked = crate::measure_lmzip(name, &windowed, &chunks, 2048, threads)?;
            let solid = crate::measure_lmzip(name, &mixed, &chunks, block_size, threads)?;
            let label = match window {
                usize::MAX => "full".to_string(),
                w => w.to_string(),
            };
            let positions = config.context.min(2048);
            let flop_per_byte = (0..positions)
                .map(|p| config.flops_at_with_window(p, window))
                .sum::<f64>()
                / positions as f64;
            let gflops = |bps: f64| {
                let g = bps * flop_per_byte / 1e9;
                format!("{g:.1} ({:.0} %)", 100.0 * g * 1e9 / peak)
            };
            for (mode, m) in [("chunks", chunked), ("solid", solid)] {
                println!(
                    "| {label} | {modality} | {mode} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {} | {:.2} |",
                    100.0 * m.rate(),
                    flop_per_byte / 1e6,
                    m.compress_bps / 1e3,
                    gflops(m.compress_bps),
                    m.decompress_bps / 1e3,
                    gflops(m.decompress_bps),
                    m.decompress_bps / m.compress_bps,
                );
            }
        }
    }
    Ok(true)
}

/// Training throughput, ours and candle's, on 8 windows of 512 bytes per step.
fn train_speed(args: &SpeedArgs, chunks: &[Vec<u8>], threads: usize) -> Outcome {
    println!("| model | context | batch | lmzip train tokens/s | candle tokens/s | ratio |");
    println!("|---|---|---|---|---|---|");
    let batch: Vec<&[u8]> = chunks.iter().cycle().take(8).map(|c| &c[..512]).collect();
    for preset in &args.preset {
        let mut config =
            Config::preset(preset).with_context(|| format!("unknown preset '{preset}'"))?;
        config.context = 512;
        let weights = file::random_weights(&config, 1);
        let net = Transformer::new(config.clone(), weights.clone());
        let mut trainer = lmzip_train::Trainer::new(config, weights, threads);
        let schedule = lmzip_train::Schedule::default();
        trainer.train_step(&batch, &schedule);
        let steps = 3;
        let t = Instant::now();
        for _ in 0..steps {
            trainer.train_step(&batch, &schedule);
        }
        let ours = (512 * batch.len() * steps) as f64 / t.elapsed().as_secs_f64();
        let candle = candle_train_speed(&net, &batch, steps)?;
        println!(
            "| {preset} | 512 | {} | {ours:.0} | {} | {} |",
            batch.len(),
            candle.map_or("not built".into(), |c| format!("{c:.0}")),
            candle.map_or("–".into(), |c| format!("{:.1}×", ours / c)),
        );
    }
    Ok(true)
}

#[cfg(feature = "candle")]
fn candle_train_speed(net: &Transformer, batch: &[&[u8]], steps: usize) -> Result<Option<f64>> {
    let model = crate::candle_ref::CandleModel::new(net)?;
    Ok(Some(model.train_speed(batch, steps)?))
}

#[cfg(not(feature = "candle"))]
fn candle_train_speed(_: &Transformer, _: &[&[u8]], _: usize) -> Result<Option<f64>> {
    Ok(None)
}

/// Single-thread timings of the engine's parts.
struct Breakdown {
    forward: Profile,
    forward_bytes: usize,
    decode: Profile,
    decode_bytes: usize,
    /// Chunks decoded in lockstep.
    lockstep: usize,
    /// Time to turn one byte's logits into a table and code the byte.
    tables_per_byte: Duration,
}

fn breakdown(net: &Transformer, chunks: &[Vec<u8>], lockstep: usize) -> Breakdown {
    let mut scratch = Scratch::profiling();
    let take = chunks.len().min(2);
    let mut logits = vec![0.0; 2048 * OUTPUT_VOCAB];
    for c in &chunks[..take] {
        net.forward(&chunk_inputs(c), &mut logits, &mut scratch);
    }
    let forward = scratch.profile.take().unwrap_or_default();
    let forward_bytes: usize = chunks[..take].iter().map(Vec::len).sum();
    // Tables and coder for the last chunk's logits.
    let last = &chunks[take - 1];
    let t = Instant::now();
    let mut freqs = vec![0u32; OUTPUT_VOCAB];
    let mut cdf = Cdf::uniform(FREQUENCY_BITS, OUTPUT_VOCAB).expect("valid");
    let mut enc = Encoder::new();
    for (row, &b) in logits.chunks_exact(OUTPUT_VOCAB).zip(last) {
        frequencies(row, &mut freqs);
        cdf.set_frequencies(FREQUENCY_BITS, &freqs).expect("valid");
        enc.encode(u32::from(b), &cdf);
    }
    std::hint::black_box(enc.finish());
    let tables_per_byte = t.elapsed() / last.len() as u32;
    let batch: Vec<&Vec<u8>> = chunks.iter().take(lockstep).collect();
    let mut caches: Vec<Cache> = batch.iter().map(|_| net.new_cache()).collect();
    let mut scratch = Scratch::profiling();
    let mut out = vec![0.0; batch.len() * OUTPUT_VOCAB];
    for pos in 0..2048 {
        let mut refs: Vec<&mut Cache> = caches.iter_mut().collect();
        net.step(&mut refs, &inputs_at(&batch, pos), &mut out, &mut scratch);
    }
    let decode = scratch.profile.take().unwrap_or_default();
    let decode_bytes = batch.len() * 2048;
    Breakdown {
        forward,
        forward_bytes,
        decode,
        decode_bytes,
        lockstep: batch.len(),
        tables_per_byte,
    }
}

/// The FMA rate of `threads` threads running a register-resident loop at once.
fn peak_flops(isa: Isa, threads: usize) -> f64 {
    const ITERATIONS: usize = 20_000_000;
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut acc = [1.0f32; 96];
                kernels::fma_loop(isa, &mut acc, ITERATIONS);
                std::hint::black_box(acc);
            });
        }
    });
    (threads * 2 * 96 * ITERATIONS) as f64 / t.elapsed().as_secs_f64()
}

#[cfg(feature = "candle")]
fn candle_speed(net: &Transformer, chunks: &[Vec<u8>]) -> Result<Option<f64>> {
    let model = crate::candle_ref::CandleModel::new(net)?;
    let take = chunks.len().min(4);
    // Warm-up, and a check that both implement the same function.
    let theirs = model.forward(&chunks[0])?;
    let mut ours = vec![0.0; chunks[0].len() * OUTPUT_VOCAB];
    net.forward(&chunks[0], &mut ours, &mut Scratch::default());
    let diff = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    eprintln!(
        "candle vs engine, {}: max |Δlogit| = {diff:e}",
        net.config().d_model
    );
    let t = Instant::now();
    for c in &chunks[..take] {
        std::hint::black_box(model.forward(c)?);
    }
    let bytes: usize = chunks[..take].iter().map(Vec::len).sum();
    Ok(Some(bytes as f64 / t.elapsed().as_secs_f64()))
}

#[cfg(not(feature = "candle"))]
fn candle_speed(_: &Transformer, _: &[Vec<u8>]) -> Result<Option<f64>> {
    Ok(None)
}
