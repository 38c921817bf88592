//! Datasets with the preprocessing of *Language Modeling Is Compression* (Delétang et al.).
//!
//! Every loader returns whole chunks of `chunk_size` bytes, cut per file (per image, per
//! utterance) with the partial tail dropped, as the paper's data loaders do.
//!
//! - Text: any file, raw bytes.
//! - Images: decoded by the `image` crate, grey = ⌊(R+G+B)/3⌋, non-overlapping patches of
//!   32 rows × 64 columns in row-major patch order, each patch row-major; edges dropped. A
//!   patch is 2048 bytes, so images ignore `chunk_size`.
//! - Audio: FLAC or WAV, 16 kHz mono 16-bit; 8-bit as the paper (`((s >> 8) + 128) & 0xFF`)
//!   or 16-bit little-endian samples.
//!
//! # Example
//! ```
//! let gray = lmzip_data::grayscale(&[10, 20, 31, 255, 255, 255], 2, 1);
//! assert_eq!(gray, [20, 255]);
//! assert_eq!(lmzip_data::audio_byte(-32768), 0);
//! assert_eq!(lmzip_data::audio_byte(0), 128);
//! assert_eq!(lmzip_data::audio_byte(-1), 127);
//! ```
#![deny(missing_docs)]

use std::fmt;
use std::path::{Path, PathBuf};

/// Rows of an image patch.
pub const PATCH_ROWS: usize = 32;
/// Columns of an image patch.
pub const PATCH_COLS: usize = 64;

/// A kind of data, with its preprocessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modality {
    /// Raw bytes.
    Text,
    /// 32×64 grayscale patches.
    Images,
    /// 16 kHz audio, one byte per sample (the paper's).
    Audio8,
    /// 16 kHz audio, 16-bit little-endian samples.
    Audio16,
}

impl Modality {
    /// Every modality.
    pub const ALL: [Modality; 4] = [
        Modality::Text,
        Modality::Images,
        Modality::Audio8,
        Modality::Audio16,
    ];

    /// A short name: `text`, `images`, `audio8`, `audio16`.
    pub fn name(self) -> &'static str {
        match self {
            Modality::Text => "text",
            Modality::Images => "images",
            Modality::Audio8 => "audio8",
            Modality::Audio16 => "audio16",
        }
    }

    /// Parse [`Modality::name`].
    pub fn from_name(name: &str) -> Option<Modality> {
        Modality::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The folder of a data directory (such as `../shared/data`) that holds this modality's
    /// files: `text`, `images` or `audio`.
    pub fn folder(self) -> &'static str {
        match self {
            Modality::Text => "text",
            Modality::Images => "images",
            Modality::Audio8 | Modality::Audio16 => "audio",
        }
    }

    /// Whether `path` is a file this modality reads.
    pub fn accepts(self, path: &Path) -> bool {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        match self {
            Modality::Text => !matches!(ext.as_str(), "md" | "tsv") && !name.starts_with("SHA1SUM"),
            Modality::Images => matches!(ext.as_str(), "png" | "jpg" | "jpeg"),
            Modality::Audio8 | Modality::Audio16 => matches!(ext.as_str(), "flac" | "wav"),
        }
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors of loading data.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    Io(PathBuf, std::io::Error),
    /// A file could not be decoded.
    Decode(PathBuf, String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(p, e) => write!(f, "{}: {e}", p.display()),
            Error::Decode(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for Error {}

/// The files under `root` (or `root` itself) that `modality` reads, sorted by path.
pub fn list_files(root: &Path, modality: Modality) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::metadata(&p).map_err(|e| Error::Io(p.clone(), e))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&p).map_err(|e| Error::Io(p.clone(), e))? {
                stack.push(entry.map_err(|e| Error::Io(p.clone(), e))?.path());
            }
        } else if modality.accepts(&p) || p == root {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a file belongs to the fixed held-out split (about 5 % of files), by a hash of its
/// file name, so the split does not depend on where the data lies.
///
/// The hash is FNV-1a (64 bit) of [`HELD_OUT_SALT`] followed by the file name; a file is held
/// out when the hash is 0 mod 20. The salt was chosen, before any model was trained on this
/// split, so that the held-out text of `../shared/data` is natural text (the unsalted hash held
/// out `pi.txt`, a million random digits whose 41.5 % floor no model can beat, and
/// `alphabet.txt`, as 90 % of the held-out text bytes).
pub fn is_held_out(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.as_encoded_bytes())
        .unwrap_or(&[]);
    let h = HELD_OUT_SALT
        .iter()
        .chain(name)
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    h % 20 == 0
}

/// The kinds of everyday files in the training corpus that `scripts/corpus.py` builds, each a
/// folder of it: `source`, `markup`, `data` (JSON, CSV, TOML, configuration), `log` and `binary`.
pub const CORPUS_KINDS: [&str; 5] = ["source", "markup", "data", "log", "binary"];

/// The corpus kind a data-set name asks for: `corpus-source` → `source`.
pub fn corpus_kind(name: &str) -> Option<&'static str> {
    let kind = name.strip_prefix("corpus-")?;
    CORPUS_KINDS.into_iter().find(|&k| k == kind)
}

/// The default place of the corpus: `$XDG_CACHE_HOME/lmzip/corpus`, else
/// `~/.cache/lmzip/corpus`.
pub fn default_corpus_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("lmzip").join("corpus")
}

/// The chunks of `paths` read one after another as one stream, so that files shorter than a
/// chunk (most source files) are not dropped; only the stream's partial tail is.
pub fn joined_chunks(paths: &[PathBuf], chunk_size: usize) -> Result<Vec<Vec<u8>>, Error> {
    let mut stream = Vec::new();
    for path in paths {
        stream.extend(std::fs::read(path).map_err(|e| Error::Io(path.clone(), e))?);
    }
    Ok(stream
        .chunks_exact(chunk_size)
        .map(<[u8]>::to_vec)
        .collect())
}

/// The prefix hashed before a file name by [`is_held_out`].
pub const HELD_OUT_SALT: &[u8] = b"lmzip-held-out-14:";

/// The chunks of one file.
pub fn file_chunks(
    path: &Path,
    modality: Modality,
    chunk_size: usize,
) -> Result<Vec<Vec<u8>>, Error> {
    let bytes = match modality {
        Modality::Text => std::fs::read(path).map_err(|e| Error::Io(path.to_path_buf(), e))?,
        Modality::Images => return image_patches(path),
        Modality::Audio8 => read_audio(path)?.into_iter().map(audio_byte).collect(),
        Modality::Audio16 => read_audio(path)?
            .into_iter()
            .flat_map(i16::to_le_bytes)
            .collect(),
    };
    Ok(bytes.chunks_exact(chunk_size).map(<[u8]>::to_vec).collect())
}

/// The chunks of every file of `modality` under `root`, in path order.
pub fn load(root: &Path, modality: Modality, chunk_size: usize) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = Vec::new();
    for path in list_files(root, modality)? {
        out.extend(file_chunks(&path, modality, chunk_size)?);
    }
    Ok(out)
}

/// SplitMix64 (Steele, Lea, Flood 2014): the seeded generator of every sample in lmzip.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `n` items chosen without replacement by a seeded generator, in their original order.
pub fn sample<T: Clone>(items: &[T], n: usize, seed: u64) -> Vec<T> {
    if n >= items.len() {
        return items.to_vec();
    }
    // Partial Fisher–Yates over indices.
    let mut idx: Vec<usize> = (0..items.len()).collect();
    let mut rng = SplitMix64(seed);
    for i in 0..n {
        let j = i + (rng.next_u64() % (items.len() - i) as u64) as usize;
        idx.swap(i, j);
    }
    let mut chosen = idx[..n].to_vec();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| items[i].clone()).collect()
}

/// `n` chunks of `chunk_size` uniformly random bytes from `seed` (the paper's random data set).
pub fn random_chunks(n: usize, chunk_size: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = SplitMix64(seed);
    (0..n)
        .map(|_| (0..chunk_size).map(|_| rng.next_u64() as u8).collect())
        .collect()
}

/// Grayscale as the paper: the truncated mean of R, G and B.
pub fn grayscale(rgb: &[u8], width: usize, height: usize) -> Vec<u8> {
    rgb.chunks_exact(3)
        .take(width * height)
        .map(|p| ((u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2])) / 3) as u8)
        .collect()
}

/// Cut a grayscale image into 32×64 patches, row-major over the grid, edges dropped.
pub fn patches(gray: &[u8], width: usize, height: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for py in 0..height / PATCH_ROWS {
        for px in 0..width / PATCH_COLS {
            let mut patch = Vec::with_capacity(PATCH_ROWS * PATCH_COLS);
            for row in 0..PATCH_ROWS {
                let start = (py * PATCH_ROWS + row) * width + px * PATCH_COLS;
                patch.extend_from_slice(&gray[start..start + PATCH_COLS]);
            }
            out.push(patch);
        }
    }
    out
}

/// An image file's patches.
pub fn image_patches(path: &Path) -> Result<Vec<Vec<u8>>, Error> {
    let img = image::open(path).map_err(|e| Error::Decode(path.to_path_buf(), e.to_string()))?;
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    Ok(patches(&grayscale(rgb.as_raw(), w, h), w, h))
}

/// One 16-bit sample as the paper's byte: its high byte, shifted to unsigned.
pub fn audio_byte(sample: i16) -> u8 {
    (((sample >> 8) + 128) & 0xFF) as u8
}

/// The samples of a 16 kHz mono 16-bit FLAC or WAV file.
pub fn read_audio(path: &Path) -> Result<Vec<i16>, Error> {
    let bad = |e: String| Error::Decode(path.to_path_buf(), e);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let (rate, channels, bits, samples): (u32, u16, u32, Vec<i32>) =
        if ext.as_deref() == Some("flac") {
            let mut r = claxon::FlacReader::open(path).map_err(|e| bad(e.to_string()))?;
            let info = r.streaminfo();
            let samples = r
                .samples()
                .collect::<Result<Vec<i32>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            (
                info.sample_rate,
                info.channels as u16,
                info.bits_per_sample,
                samples,
            )
        } else {
            let mut r = hound::WavReader::open(path).map_err(|e| bad(e.to_string()))?;
            let spec = r.spec();
            if spec.sample_format != hound::SampleFormat::Int {
                return Err(bad("float WAV is not supported".into()));
            }
            let samples = r
                .samples::<i32>()
                .collect::<Result<Vec<i32>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            (
                spec.sample_rate,
                spec.channels,
                u32::from(spec.bits_per_sample),
                samples,
            )
        };
    if rate != 16_000 || channels != 1 || bits != 16 {
        return Err(bad(format!(
            "expected 16 kHz mono 16-bit audio, found {rate} Hz, {channels} channels, {bits} bits"
        )));
    }
    Ok(samples.into_iter().map(|s| s as i16).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_are_row_major_and_drop_edges() {
        let (w, h) = (130, 70);
        let gray: Vec<u8> = (0..w * h).map(|i| (i % 251) as u8).collect();
        let p = patches(&gray, w, h);
        assert_eq!(p.len(), 2 * 2);
        assert!(p.iter().all(|x| x.len() == 2048));
        // Patch 1 is the second in the first row of patches: columns 64..128, rows 0..32.
        assert_eq!(p[1][0], gray[64]);
        assert_eq!(p[1][64], gray[w + 64]);
        // Patch 2 starts at row 32, column 0.
        assert_eq!(p[2][0], gray[32 * w]);
    }

    #[test]
    fn tiny_png_and_wav_are_preprocessed_exactly() {
        let dir = std::env::temp_dir().join(format!("lmzip-data-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A 64×32 RGB PNG: pixel (x, y) = (x, y, x + y).
        let png = dir.join("t.png");
        let img =
            image::RgbImage::from_fn(64, 32, |x, y| image::Rgb([x as u8, y as u8, (x + y) as u8]));
        img.save(&png).unwrap();
        let p = image_patches(&png).unwrap();
        assert_eq!(p.len(), 1);
        // (x + y + x + y) / 3 at x = 5, y = 2: 14 / 3 = 4.
        assert_eq!(p[0][2 * 64 + 5], 4);
        assert_eq!(p[0][31 * 64 + 63], ((63 + 31) * 2 / 3) as u8);
        // A WAV of 2049 samples: one whole chunk at 8 bits, tail dropped.
        let wav = dir.join("t.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&wav, spec).unwrap();
        for i in 0..2049i32 {
            w.write_sample(((i * 37) % 65536 - 32768) as i16).unwrap();
        }
        w.finalize().unwrap();
        let c8 = file_chunks(&wav, Modality::Audio8, 2048).unwrap();
        assert_eq!(c8.len(), 1);
        assert_eq!(c8[0][0], 0); // -32768 >> 8 = -128, + 128 = 0
        assert_eq!(c8[0][1000], audio_byte((37_000 - 32768) as i16));
        let c16 = file_chunks(&wav, Modality::Audio16, 2048).unwrap();
        assert_eq!(c16.len(), 2);
        assert_eq!(&c16[0][..2], &(-32768i16).to_le_bytes());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn held_out_split_is_fixed_by_file_name() {
        // Among ../shared/data's files: wikitext-2's test split and a held-out book, not the
        // random digits of pi.txt nor the validation split.
        for (name, held) in [
            ("test.txt", true),
            ("pg1342_pride_and_prejudice.txt", true),
            ("pi.txt", false),
            ("valid.txt", false),
        ] {
            let path = Path::new("anywhere").join(name);
            assert_eq!(is_held_out(&path), held, "{name}");
            assert_eq!(is_held_out(Path::new(name)), held, "{name}");
        }
    }

    #[test]
    fn corpus_kinds_and_joined_chunks() {
        assert_eq!(corpus_kind("corpus-source"), Some("source"));
        assert_eq!(corpus_kind("corpus-binary"), Some("binary"));
        assert_eq!(corpus_kind("corpus-images"), None);
        assert_eq!(corpus_kind("source"), None);
        let dir = std::env::temp_dir().join(format!("lmzip-joined-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::write(&a, [1u8; 3]).unwrap();
        std::fs::write(&b, [2u8; 6]).unwrap();
        // Files shorter than a chunk join; only the stream's tail is dropped.
        let chunks = joined_chunks(&[a, b], 4).unwrap();
        assert_eq!(chunks, [vec![1, 1, 1, 2], vec![2, 2, 2, 2]]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sampling_is_seeded_and_ordered() {
        let items: Vec<u32> = (0..100).collect();
        let a = sample(&items, 10, 42);
        assert_eq!(a, sample(&items, 10, 42));
        assert_ne!(a, sample(&items, 10, 43));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sample(&items, 200, 1).len(), 100);
    }
}
