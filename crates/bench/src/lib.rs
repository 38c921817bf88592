//! Benchmark harness: lmzip models beside classical codecs on the same chunks.
//!
//! Rates follow the paper's "header counted once" accounting for the classical codecs: each
//! chunk is compressed on its own, and the container overhead of all chunks but one is
//! subtracted, measured as the codec's output for a one-byte input (one pixel, one sample), as
//! the paper's `Σ|C(x_i)| − (n − 1)·|C(one byte)|`. An lmzip archive of all the
//! chunks already has one header, so its whole size is counted, chunk records included.
#![deny(missing_docs)]

#[cfg(feature = "candle")]
pub mod candle_ref;
pub mod plot;
pub mod report;
pub mod sample;
pub mod speed;

/// Result type of the commands: `Ok(false)` when some part failed (already reported).
pub type Outcome = anyhow::Result<bool>;

use std::io::{Read, Write};
use std::time::Instant;

/// A classical codec applied chunk by chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classic {
    /// gzip -9 (flate2).
    Gzip,
    /// xz -9, LZMA2 (liblzma).
    Xz,
    /// zstd -19 (libzstd).
    Zstd,
    /// bzip2 -9 (libbz2).
    Bzip2,
    /// brotli -q 11, window 2^22 (the brotli crate).
    Brotli,
    /// PNG, 8-bit grayscale, of a chunk read as `width × (len / width)` pixels (the paper
    /// reshapes a 32-row × 64-column patch to width 32; the true patch has width 64); every
    /// PNG filter strategy tried at deflate level 9, the smallest kept.
    Png {
        /// Image width in pixels.
        width: u32,
    },
    /// FLAC (flacenc, mono, 16 kHz) of a chunk read as 8-bit samples (the paper's audio bytes,
    /// `byte − 128`) or 16-bit little-endian samples.
    Flac {
        /// 8 or 16.
        bits: u32,
    },
}

impl Classic {
    /// The codecs that apply to a modality, general-purpose first.
    pub fn for_modality(modality: lmzip_data::Modality) -> Vec<Classic> {
        use lmzip_data::Modality;
        let mut out = vec![
            Classic::Gzip,
            Classic::Xz,
            Classic::Zstd,
            Classic::Bzip2,
            Classic::Brotli,
        ];
        match modality {
            Modality::Text => {}
            Modality::Images => {
                out.extend([Classic::Png { width: 32 }, Classic::Png { width: 64 }]);
            }
            Modality::Audio8 => out.push(Classic::Flac { bits: 8 }),
            Modality::Audio16 => out.push(Classic::Flac { bits: 16 }),
        }
        out
    }

    /// Every codec, for data of no particular kind (the paper's random bytes): the
    /// general-purpose ones, PNG both ways and 8-bit FLAC.
    pub fn all() -> Vec<Classic> {
        vec![
            Classic::Gzip,
            Classic::Xz,
            Classic::Zstd,
            Classic::Bzip2,
            Classic::Brotli,
            Classic::Png { width: 32 },
            Classic::Png { width: 64 },
            Classic::Flac { bits: 8 },
        ]
    }

    /// The codec's name.
    pub fn name(self) -> String {
        match self {
            Classic::Gzip => "gzip -9".into(),
            Classic::Xz => "xz -9".into(),
            Classic::Zstd => "zstd -19".into(),
            Classic::Bzip2 => "bzip2 -9".into(),
            Classic::Brotli => "brotli -q 11".into(),
            Classic::Png { width: 32 } => "PNG (paper's 32×64 reshape)".into(),
            Classic::Png { width: 64 } => "PNG (true 64×32 patch)".into(),
            Classic::Png { width } => format!("PNG (width {width})"),
            Classic::Flac { bits } => format!("FLAC {bits}-bit"),
        }
    }

    /// Compress one buffer (for PNG, a whole number of rows; for 16-bit FLAC, an even length).
    pub fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Classic::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                e.write_all(data).expect("BUG: writing to a Vec");
                e.finish().expect("BUG: writing to a Vec")
            }
            Classic::Xz => {
                let mut e = xz2::write::XzEncoder::new(Vec::new(), 9);
                e.write_all(data).expect("BUG: writing to a Vec");
                e.finish().expect("BUG: writing to a Vec")
            }
            Classic::Zstd => zstd::bulk::compress(data, 19).expect("BUG: zstd into memory"),
            Classic::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
                e.write_all(data).expect("BUG: writing to a Vec");
                e.finish().expect("BUG: writing to a Vec")
            }
            Classic::Brotli => {
                let mut out = Vec::new();
                {
                    let mut e = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
                    e.write_all(data).expect("BUG: writing to a Vec");
                }
                out
            }
            Classic::Png { width } => png_best(data, width),
            Classic::Flac { bits } => flac(data, bits),
        }
    }

    /// Decompress one buffer made by [`Classic::compress`].
    pub fn decompress(self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        match self {
            Classic::Gzip => {
                flate2::read::GzDecoder::new(data).read_to_end(&mut out)?;
            }
            Classic::Xz => {
                xz2::read::XzDecoder::new(data).read_to_end(&mut out)?;
            }
            Classic::Zstd => {
                zstd::stream::read::Decoder::new(data)?.read_to_end(&mut out)?;
            }
            Classic::Bzip2 => {
                bzip2::read::BzDecoder::new(data).read_to_end(&mut out)?;
            }
            Classic::Brotli => {
                brotli::Decompressor::new(data, 4096).read_to_end(&mut out)?;
            }
            Classic::Png { .. } => {
                let mut reader = png::Decoder::new(std::io::Cursor::new(data))
                    .read_info()
                    .map_err(std::io::Error::other)?;
                out.resize(reader.output_buffer_size().unwrap_or(0), 0);
                let info = reader.next_frame(&mut out).map_err(std::io::Error::other)?;
                out.truncate(info.buffer_size());
            }
            Classic::Flac { bits } => {
                let mut reader = claxon::FlacReader::new(data).map_err(std::io::Error::other)?;
                for sample in reader.samples() {
                    let s = sample.map_err(std::io::Error::other)?;
                    match bits {
                        8 => out.push((s + 128) as u8),
                        _ => out.extend_from_slice(&(s as i16).to_le_bytes()),
                    }
                }
            }
        }
        Ok(out)
    }

    /// What a second chunk's container costs: the size for a one-byte (one-pixel, one-sample)
    /// input, subtracted for every chunk but one (the paper's "header counted once").
    fn header_cost(self) -> u64 {
        let one: &[u8] = match self {
            Classic::Flac { bits: 16 } => &[0, 0],
            _ => &[0],
        };
        let coded = match self {
            Classic::Png { .. } => png_best(one, 1),
            _ => self.compress(one),
        };
        coded.len() as u64
    }
}

fn png_best(data: &[u8], width: u32) -> Vec<u8> {
    let height = (data.len() as u32).div_ceil(width).max(1);
    let mut pixels = data.to_vec();
    pixels.resize((width * height) as usize, 0);
    let filters = [
        png::Filter::NoFilter,
        png::Filter::Sub,
        png::Filter::Up,
        png::Filter::Avg,
        png::Filter::Paeth,
        png::Filter::Adaptive,
        png::Filter::MinEntropy,
    ];
    filters
        .into_iter()
        .map(|filter| {
            let mut out = Vec::new();
            let mut enc = png::Encoder::new(&mut out, width, height);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_deflate_compression(png::DeflateCompression::Level(9));
            enc.set_filter(filter);
            let mut w = enc.write_header().expect("BUG: PNG header");
            w.write_image_data(&pixels).expect("BUG: PNG data");
            w.finish().expect("BUG: PNG finish");
            out
        })
        .min_by_key(Vec::len)
        .expect("filters tried")
}

fn flac(data: &[u8], bits: u32) -> Vec<u8> {
    use flacenc::component::BitRepr;
    use flacenc::error::Verify;
    let samples: Vec<i32> = match bits {
        8 => data.iter().map(|&b| i32::from(b) - 128).collect(),
        _ => data
            .chunks_exact(2)
            .map(|p| i32::from(i16::from_le_bytes([p[0], p[1]])))
            .collect(),
    };
    let mut config = flacenc::config::Encoder::default();
    config.block_size = samples.len().clamp(32, 4096);
    config.multithread = false;
    let config = config.into_verified().expect("BUG: FLAC config");
    let source = flacenc::source::MemSource::from_samples(&samples, 1, bits as usize, 16_000);
    let stream = flacenc::encode_with_fixed_block_size(&config, source, config.block_size)
        .expect("BUG: FLAC encoding");
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream.write(&mut sink).expect("BUG: FLAC write");
    sink.as_slice().to_vec()
}

/// One compressor's result on a set of chunks.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// The compressor.
    pub compressor: String,
    /// Original bytes.
    pub original: u64,
    /// Compressed bytes, header counted once.
    pub compressed: u64,
    /// What each chunk but one would add if every chunk were its own file: the codec's
    /// container (header, trailer); 0 for one input.
    pub container_per_chunk: u64,
    /// Chunks measured (1 for one input).
    pub chunks: u64,
    /// Compression throughput, bytes of input per second.
    pub compress_bps: f64,
    /// Decompression throughput, bytes of output per second.
    pub decompress_bps: f64,
}

impl Measurement {
    /// Compressed over original, header counted once.
    pub fn rate(&self) -> f64 {
        self.compressed as f64 / self.original.max(1) as f64
    }

    /// Compressed over original with every chunk a file of its own (header counted per chunk).
    pub fn rate_per_chunk(&self) -> f64 {
        let extra = self.container_per_chunk * self.chunks.saturating_sub(1);
        (self.compressed + extra) as f64 / self.original.max(1) as f64
    }
}

/// Measure a classical codec on `chunks`, each compressed on its own; every chunk is
/// decompressed and checked.
pub fn measure_classic(codec: Classic, chunks: &[Vec<u8>]) -> Measurement {
    let header = codec.header_cost();
    let t = Instant::now();
    let coded: Vec<Vec<u8>> = chunks.iter().map(|c| codec.compress(c)).collect();
    let ct = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for (c, original) in coded.iter().zip(chunks) {
        let d = codec
            .decompress(c)
            .expect("BUG: a classical codec failed its round trip");
        assert_eq!(&d, original, "BUG: {} round trip", codec.name());
    }
    let dt = t.elapsed().as_secs_f64();
    let original: u64 = chunks.iter().map(|c| c.len() as u64).sum();
    let total: u64 = coded.iter().map(|c| c.len() as u64).sum();
    let compressed = total - header * (chunks.len() as u64).saturating_sub(1);
    Measurement {
        compressor: codec.name(),
        original,
        compressed,
        container_per_chunk: header,
        chunks: chunks.len() as u64,
        compress_bps: original as f64 / ct,
        decompress_bps: original as f64 / dt,
    }
}

/// Measure a classical codec on `chunks` concatenated and compressed as one input (the
/// paper's unchunked rows); decompressed and checked.
pub fn measure_classic_unchunked(codec: Classic, chunks: &[Vec<u8>]) -> Measurement {
    let data = chunks.concat();
    let t = Instant::now();
    let coded = codec.compress(&data);
    let ct = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let back = codec
        .decompress(&coded)
        .expect("BUG: a classical codec failed its round trip");
    let dt = t.elapsed().as_secs_f64();
    assert_eq!(back, data, "BUG: {} round trip", codec.name());
    Measurement {
        compressor: codec.name(),
        original: data.len() as u64,
        compressed: coded.len() as u64,
        container_per_chunk: 0,
        chunks: 1,
        compress_bps: data.len() as f64 / ct,
        decompress_bps: data.len() as f64 / dt,
    }
}

/// Measure an lmzip model on `chunks` concatenated, with chunk size `chunk_size` (so each
/// input chunk is one lmzip chunk) on `threads` threads. The archive is decoded and checked.
pub fn measure_lmzip<M: lmzip::Model + Copy>(
    name: &str,
    model: M,
    chunks: &[Vec<u8>],
    chunk_size: u32,
    threads: usize,
) -> Result<Measurement, lmzip::Error> {
    let data: Vec<u8> = chunks.concat();
    let t = Instant::now();
    let mut enc = lmzip::write::EncoderBuilder::new()
        .chunk_size(chunk_size)
        .threads(threads)
        .original_len(Some(data.len() as u64))
        .build(Vec::new(), model)?;
    enc.write_all(&data)?;
    let archive = enc.finish()?;
    let ct = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut dec = lmzip::read::Decoder::new(&archive[..], model, threads)?;
    let mut out = Vec::with_capacity(data.len());
    dec.read_to_end(&mut out)?;
    let dt = t.elapsed().as_secs_f64();
    if out != data {
        return Err(lmzip::Error::Corrupt("benchmark round trip differs".into()));
    }
    // An archive's container: the size of the archive of nothing.
    let empty = lmzip::write::EncoderBuilder::new()
        .original_len(Some(0))
        .build(Vec::new(), model)?
        .finish()?;
    Ok(Measurement {
        compressor: name.to_string(),
        original: data.len() as u64,
        compressed: archive.len() as u64,
        container_per_chunk: empty.len() as u64,
        chunks: data.len().div_ceil(chunk_size as usize) as u64,
        compress_bps: data.len() as f64 / ct,
        decompress_bps: data.len() as f64 / dt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_chunks(n: usize) -> Vec<Vec<u8>> {
        lmzip_data::random_chunks(n, 2048, 1)
    }

    #[test]
    fn random_data_rates_match_the_papers_table() {
        // Table 1, random data, header counted once: gzip 100.1 %, LZMA2 100.0 %, PNG 103.2 %.
        let chunks = random_chunks(40);
        let rate = |c| 100.0 * measure_classic(c, &chunks).rate();
        assert!(
            (99.8..100.4).contains(&rate(Classic::Gzip)),
            "gzip {}",
            rate(Classic::Gzip)
        );
        assert!(
            (99.8..100.6).contains(&rate(Classic::Xz)),
            "xz {}",
            rate(Classic::Xz)
        );
        let png = rate(Classic::Png { width: 32 });
        assert!((100.5..104.5).contains(&png), "png {png}");
        // Unchunked, one header in all: just above 100 %.
        let whole = measure_classic_unchunked(Classic::Xz, &chunks).rate();
        assert!((1.0..1.01).contains(&whole), "xz unchunked {whole}");
    }

    #[test]
    fn png_and_flac_round_trip_real_shapes() {
        let ramp: Vec<u8> = (0..2048u32)
            .map(|i| ((i % 64) * 3 + (i / 64)) as u8)
            .collect();
        for codec in [Classic::Png { width: 32 }, Classic::Png { width: 64 }] {
            let coded = codec.compress(&ramp);
            assert!(coded.len() < 1000, "{} {}", codec.name(), coded.len());
            assert_eq!(codec.decompress(&coded).unwrap(), ramp);
        }
        let tone: Vec<i16> = (0..1024)
            .map(|i| (8000.0 * (i as f32 / 9.0).sin()) as i16)
            .collect();
        let pcm16: Vec<u8> = tone.iter().flat_map(|s| s.to_le_bytes()).collect();
        let pcm8: Vec<u8> = tone.iter().map(|&s| lmzip_data::audio_byte(s)).collect();
        for (codec, data) in [
            (Classic::Flac { bits: 16 }, &pcm16),
            (Classic::Flac { bits: 8 }, &pcm8),
        ] {
            let coded = codec.compress(data);
            assert!(
                coded.len() < data.len() / 2,
                "{} {}",
                codec.name(),
                coded.len()
            );
            assert_eq!(&codec.decompress(&coded).unwrap(), data);
        }
    }
}
