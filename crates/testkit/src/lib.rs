//! Test helpers shared by lmzip's crates (a dev-dependency only): one seeded generator
//! ([`Rng`]), random model tensors ([`random_llama_tensors`]), and one round-trip tester over any
//! [`Model`] ([`RoundTrip`]), as ripgrep's `SearcherTester` runs every search path through one
//! helper.
#![deny(missing_docs)]

use lmzip::chunk;
use lmzip_models::Model;
use lmzip_models::llama::LlamaConfig;
use std::io::{Read, Write};

/// The seeded generator of every test: SplitMix64.
#[derive(Debug, Clone)]
pub struct Rng(lmzip_data::SplitMix64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(lmzip_data::SplitMix64(seed))
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A value uniform in [-1, 1) (24 bits).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 56) as u8).collect()
    }

    /// `n` bytes of word salad: a small vocabulary of English words and punctuation, which
    /// every model compresses.
    pub fn text(&mut self, n: usize) -> Vec<u8> {
        const WORDS: [&str; 12] = [
            "the ", "cat ", "sat ", "on ", "a ", "mat", ". ", "and ", "dog ", "ran ", "far", ", ",
        ];
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(WORDS[(self.next_u64() % 12) as usize].as_bytes());
        }
        out.truncate(n);
        out
    }
}

/// Seeded tensors for `config` in [`LlamaConfig::tensor_shapes`] order: norms near 1
/// (`1 + 0.1 u`), everything else `scale × u`, with `u` uniform in [-1, 1).
pub fn random_llama_tensors(config: &LlamaConfig, seed: u64, scale: f32) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(seed);
    config
        .tensor_shapes()
        .iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            (0..n)
                .map(|_| {
                    let x = rng.uniform();
                    if name.ends_with("norm.weight") {
                        1.0 + 0.1 * x
                    } else {
                        scale * x
                    }
                })
                .collect()
        })
        .collect()
}

/// Compress `data` with `model` through the streaming encoder: `threads`, chunks of
/// `chunk_size`, writes of `write_size` bytes.
pub fn compress<M: Model>(
    data: &[u8],
    model: M,
    threads: usize,
    chunk_size: u32,
    write_size: usize,
) -> Vec<u8> {
    let mut enc = lmzip::write::EncoderBuilder::new()
        .threads(threads)
        .chunk_size(chunk_size)
        .original_len(Some(data.len() as u64))
        .build(Vec::new(), model)
        .expect("encoder");
    for part in data.chunks(write_size.max(1)) {
        enc.write_all(part).expect("write");
    }
    enc.finish().expect("finish")
}

/// Decompress `archive` with `model` through the streaming decoder: `threads`, reads of
/// `read_size` bytes.
pub fn decompress<M: Model>(
    archive: &[u8],
    model: M,
    threads: usize,
    read_size: usize,
) -> Result<Vec<u8>, lmzip::Error> {
    let mut dec = lmzip::read::Decoder::new(archive, model, threads)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_size.max(1)];
    loop {
        let n = dec.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Each piece coded alone by `chunk::encode` from one reused state, with the
/// `(coded, length)` jobs `chunk::decode_batch` takes.
pub struct CodedChunks {
    /// The coded bytes of each piece.
    pub coded: Vec<Vec<u8>>,
    /// Each piece's length.
    pub lens: Vec<usize>,
}

impl CodedChunks {
    /// Code every piece with `model`.
    pub fn new<M: Model>(model: &M, pieces: &[&[u8]]) -> CodedChunks {
        let mut state = model.new_state();
        CodedChunks {
            coded: pieces
                .iter()
                .map(|p| chunk::encode(model, &mut state, p, &lmzip::Budget::spare(0)))
                .collect(),
            lens: pieces.iter().map(|p| p.len()).collect(),
        }
    }

    /// The jobs of `chunk::decode_batch`.
    pub fn jobs(&self) -> Vec<(&[u8], usize)> {
        self.coded
            .iter()
            .zip(&self.lens)
            .map(|(c, &n)| (&c[..], n))
            .collect()
    }

    /// Decode every chunk in one lockstep batch.
    pub fn decode_batch<M: Model>(&self, model: &M) -> Vec<Result<Vec<u8>, lmzip::Error>> {
        let mut states: Vec<M::State> = self.lens.iter().map(|_| model.new_state()).collect();
        chunk::decode_batch(model, &mut states, &self.jobs())
    }
}

/// Runs data through every coding path with one model and checks each gives the same archive
/// and the original back: streaming encodes at several thread counts and write sizes (the
/// archives must be identical, and equal `lmzip::compress`'s at the default chunk size),
/// streaming decodes at several thread counts and read sizes, every chunk alone through
/// `chunk::decode`, and all chunks in one lockstep batch.
#[derive(Debug, Clone)]
pub struct RoundTrip {
    chunk_size: u32,
    threads: Vec<usize>,
    io_sizes: Vec<usize>,
}

impl Default for RoundTrip {
    fn default() -> RoundTrip {
        RoundTrip {
            chunk_size: lmzip::DEFAULT_CHUNK_SIZE,
            threads: vec![1, 2, 8],
            io_sizes: vec![usize::MAX, 7, 1 << 15],
        }
    }
}

impl RoundTrip {
    /// The default: 2048-byte chunks; 1, 2 and 8 threads paired with writes and reads of the
    /// whole input, 7 bytes and 32 KiB.
    pub fn new() -> RoundTrip {
        RoundTrip::default()
    }

    /// Chunks of `bytes`.
    pub fn chunk_size(mut self, bytes: u32) -> RoundTrip {
        self.chunk_size = bytes;
        self
    }

    /// The thread counts to encode and decode with (each paired with one I/O size in turn).
    pub fn threads(mut self, threads: &[usize]) -> RoundTrip {
        self.threads = threads.to_vec();
        self
    }

    /// Check every path (see [`RoundTrip`]) and return the archive.
    ///
    /// # Panics
    /// On any difference, with a message that names the path.
    pub fn check<M: Model>(&self, model: &M, data: &[u8]) -> Vec<u8> {
        let paths: Vec<(usize, usize)> = self
            .threads
            .iter()
            .zip(self.io_sizes.iter().cycle())
            .map(|(&t, &io)| (t, io))
            .collect();
        let (first_threads, first_io) = paths[0];
        let archive = compress(data, model, first_threads, self.chunk_size, first_io);
        for &(threads, io) in &paths[1..] {
            let other = compress(data, model, threads, self.chunk_size, io);
            assert!(
                other == archive,
                "archive differs at {threads} threads, writes of {io}"
            );
        }
        if self.chunk_size == lmzip::DEFAULT_CHUNK_SIZE {
            let one_shot = lmzip::compress(data, model).expect("compress");
            assert!(
                one_shot == archive,
                "lmzip::compress differs from the stream"
            );
        }
        for &(threads, io) in &paths {
            let back = decompress(&archive, model, threads, io.min(1 << 16))
                .unwrap_or_else(|e| panic!("decoding at {threads} threads: {e}"));
            assert!(back == data, "decoded bytes differ at {threads} threads");
        }
        self.check_chunks(model, data);
        archive
    }

    /// Up to 8 chunks alone through `chunk::decode`, and all in one lockstep batch.
    fn check_chunks<M: Model>(&self, model: &M, data: &[u8]) {
        let pieces: Vec<&[u8]> = data.chunks(self.chunk_size as usize).take(8).collect();
        let coded = CodedChunks::new(model, &pieces);
        let mut state = model.new_state();
        for ((piece, code), result) in pieces
            .iter()
            .zip(&coded.coded)
            .zip(coded.decode_batch(model))
        {
            let alone = chunk::decode(model, &mut state, code, piece.len()).expect("decode");
            assert!(alone == *piece, "chunk::decode differs");
            assert!(
                result.expect("batch decode") == *piece,
                "decode_batch differs"
            );
        }
    }
}

/// Causal attention of one query in f64, the tests' reference for the engine: the softmax of
/// `q · key(j) / sqrt(hd)` over `j < n`, weighting `value(j)`.
pub fn reference_attention(
    q: &[f64],
    n: usize,
    key: impl Fn(usize) -> Vec<f64>,
    value: impl Fn(usize) -> Vec<f64>,
) -> Vec<f64> {
    let hd = q.len();
    let scores: Vec<f64> = (0..n)
        .map(|j| q.iter().zip(key(j)).map(|(a, b)| a * b).sum::<f64>() / (hd as f64).sqrt())
        .collect();
    let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let z: f64 = e.iter().sum();
    let mut out = vec![0.0; hd];
    for (j, w) in e.iter().enumerate() {
        for (o, v) in out.iter_mut().zip(value(j)) {
            *o += w / z * v;
        }
    }
    out
}
