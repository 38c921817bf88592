//! Benchmark harness: lmzip models beside classical codecs on the same chunks.
//!
//! Rates follow the paper's "header counted once" accounting for the classical codecs: each
//! chunk is compressed on its own, and the container overhead of all chunks but one is
//! subtracted, measured as the codec's output for an empty input. An lmzip archive of all the
//! chunks already has one header, so its whole size is counted, chunk records included.
#![deny(missing_docs)]

#[cfg(feature = "candle")]
pub mod candle_ref;

use std::io::{Read, Write};
use std::time::Instant;

/// A classical codec applied chunk by chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classic {
    /// gzip -9 (flate2).
    Gzip,
    /// xz -9, LZMA2 (liblzma).
    Xz,
}

impl Classic {
    /// Every classical codec.
    pub const ALL: [Classic; 2] = [Classic::Gzip, Classic::Xz];

    /// The codec's name.
    pub fn name(self) -> &'static str {
        match self {
            Classic::Gzip => "gzip -9",
            Classic::Xz => "xz -9",
        }
    }

    /// Compress one buffer.
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
        }
    }

    /// Decompress one buffer made by [`Classic::compress`].
    pub fn decompress(self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        match self {
            Classic::Gzip => flate2::read::GzDecoder::new(data).read_to_end(&mut out)?,
            Classic::Xz => xz2::read::XzDecoder::new(data).read_to_end(&mut out)?,
        };
        Ok(out)
    }
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
    /// Compression throughput, bytes of input per second.
    pub compress_bps: f64,
    /// Decompression throughput, bytes of output per second.
    pub decompress_bps: f64,
}

impl Measurement {
    /// Compressed over original.
    pub fn rate(&self) -> f64 {
        self.compressed as f64 / self.original.max(1) as f64
    }
}

/// Measure a classical codec on `chunks`, each compressed on its own; every chunk is
/// decompressed and checked.
pub fn measure_classic(codec: Classic, chunks: &[Vec<u8>]) -> Measurement {
    let header = codec.compress(&[]).len() as u64;
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
        compressor: codec.name().to_string(),
        original,
        compressed,
        compress_bps: original as f64 / ct,
        decompress_bps: original as f64 / dt,
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
    Ok(Measurement {
        compressor: name.to_string(),
        original: data.len() as u64,
        compressed: archive.len() as u64,
        compress_bps: data.len() as f64 / ct,
        decompress_bps: data.len() as f64 / dt,
    })
}
