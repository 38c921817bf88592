//! `lmzip sample`: any compressor as a generative model (the paper's Section 3.4).
//!
//! A classical codec C defines `p(b | x) ∝ 2^(ℓ(x) − ℓ(xb))` over the 256 next bytes, with
//! `ℓ` the compressed length in bits; an lmzip model gives `p` directly (a byte model its 256
//! frequencies, the bitwise baseline one bit at a time). Temperature `t` raises every
//! probability to `1/t` before normalizing.

use crate::Classic;
use crate::Outcome;
use anyhow::{Context, Result, bail};
use clap::Args;
use lmzip::Model;
use lmzip_coder::Cdf;
use lmzip_models::Assembler;
use lmzip_models::registry as models;
use std::io::Write;
use std::path::PathBuf;

/// Options of `lmzip sample`.
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// The predictor: a classical codec (`gzip`, `xz`, `zstd`, `bzip2`, `brotli`) or an lmzip
    /// model (as for --model; by default lmzip's
    /// default model).
    #[arg(long, default_value = models::DEFAULT_MODEL)]
    model: String,
    /// Text the sample continues.
    #[arg(long, default_value = "")]
    prompt: String,
    /// A file whose bytes the sample continues (instead of --prompt).
    #[arg(long, value_name = "FILE")]
    prompt_file: Option<PathBuf>,
    /// Bytes to generate.
    #[arg(short = 'n', long, default_value_t = 200)]
    bytes: usize,
    /// Temperature: below 1 sharpens the distribution, above 1 flattens it.
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also draw the prompt and the sample as a grayscale PNG of --width pixels per row (for
    /// image patches).
    #[arg(long, value_name = "FILE")]
    png: Option<PathBuf>,
    /// Row width of --png.
    #[arg(long, default_value_t = 64)]
    width: u32,
}

/// Generate and write the prompt's continuation to standard output.
pub fn run(args: &SampleArgs) -> Outcome {
    if !(args.temperature.is_finite() && args.temperature > 0.0) {
        bail!("the temperature must be positive");
    }
    let prompt = match &args.prompt_file {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None => args.prompt.clone().into_bytes(),
    };
    let mut rng = Rng::new(args.seed);
    let out = match args.model.as_str() {
        "gzip" => sample_codec(Classic::Gzip, &prompt, args, &mut rng),
        "xz" => sample_codec(Classic::Xz, &prompt, args, &mut rng),
        "zstd" => sample_codec(Classic::Zstd, &prompt, args, &mut rng),
        "bzip2" => sample_codec(Classic::Bzip2, &prompt, args, &mut rng),
        "brotli" => sample_codec(Classic::Brotli, &prompt, args, &mut rng),
        name => {
            let model = models::by_name(name)?;
            lmzip_models::with_model!(model, m => sample_model(&m, &prompt, args, &mut rng))?
        }
    };
    if let Some(path) = &args.png {
        write_png(path, &[prompt.as_slice(), &out].concat(), args.width)?;
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()?;
    Ok(true)
}

/// `pixels` as a grayscale image `width` wide (the last row padded with black).
fn write_png(path: &std::path::Path, pixels: &[u8], width: u32) -> Result<()> {
    if width == 0 {
        bail!("the PNG width must be positive");
    }
    let height = (pixels.len() as u32).div_ceil(width).max(1);
    let mut rows = pixels.to_vec();
    rows.resize((width * height) as usize, 0);
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rows)?;
    writer.finish()?;
    Ok(())
}

/// The data module's SplitMix64, with uniform numbers in [0, 1) and weighted picks.
pub struct Rng(pub lmzip_data::SplitMix64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(lmzip_data::SplitMix64(seed))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn next(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An index drawn with probability proportional to `2^(log2_weights[i] / t)`.
    fn pick(&mut self, log2_weights: &[f64], t: f64) -> usize {
        let max = log2_weights
            .iter()
            .cloned()
            .fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = log2_weights
            .iter()
            .map(|l| ((l - max) / t).exp2())
            .collect();
        let mut u = self.next() * w.iter().sum::<f64>();
        for (i, w) in w.iter().enumerate() {
            if u < *w {
                return i;
            }
            u -= w;
        }
        w.len() - 1
    }
}

/// Sampling from a classical codec: 256 compressions per generated byte.
fn sample_codec(codec: Classic, prompt: &[u8], args: &SampleArgs, rng: &mut Rng) -> Vec<u8> {
    let mut text = prompt.to_vec();
    for _ in 0..args.bytes {
        let lengths: Vec<f64> = (0..=255u8)
            .map(|b| {
                text.push(b);
                let bits = 8 * codec.compress(&text).len();
                text.pop();
                -(bits as f64)
            })
            .collect();
        let b = rng.pick(&lengths, args.temperature) as u8;
        text.push(b);
    }
    text.split_off(prompt.len())
}

/// Sampling from an lmzip model: its own probabilities, symbol by symbol.
fn sample_model<M: Model>(
    m: &M,
    prompt: &[u8],
    args: &SampleArgs,
    rng: &mut Rng,
) -> Result<Vec<u8>> {
    if let Some(max) = m.max_chunk_len()
        && prompt.len() + args.bytes > max
    {
        bail!("prompt and sample must fit the model's context of {max} bytes");
    }
    let symbols = m.symbols();
    let mut state = m.new_state();
    let mut cdf = Cdf::uniform(m.precision(), symbols.alphabet_size())?;
    for s in lmzip_models::to_symbols(m, prompt) {
        m.predict(&mut state, &mut cdf);
        m.observe(&mut state, s);
    }
    // Symbols until `args.bytes` bytes are out (a token may stand for several; the last one
    // is cut), skipping tokens that stand for no bytes.
    let mut assembler = Assembler::new(m);
    while assembler.len() < args.bytes {
        m.predict(&mut state, &mut cdf);
        let log2: Vec<f64> = (0..symbols.alphabet_size() as u32)
            .map(|s| f64::from(cdf.frequency(s)).log2())
            .collect();
        let s = rng.pick(&log2, args.temperature) as u32;
        if assembler.push(s).is_ok() {
            m.observe(&mut state, s);
        }
    }
    let mut out = assembler.into_bytes();
    out.truncate(args.bytes);
    Ok(out)
}
