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

/// Runs data through every coding path with one model and checks each gives the same archive
/// and the original back.
#[derive(Debug, Clone)]
pub struct RoundTrip {
    chunk_size: u32,
    threads: Vec<usize>,
    write_sizes: Vec<usize>,
}

impl Default for RoundTrip {
    fn default() -> RoundTrip {
        RoundTrip {
            chunk_size: lmzip::DEFAULT_CHUNK_SIZE,
            threads: vec![1, 2, 3],
            write_sizes: vec![usize::MAX, 1000],
        }
    }
}

impl RoundTrip {
    /// The default: 2048-byte chunks, 1, 2 and 3 threads, whole and 1000-byte writes.
    pub fn new() -> RoundTrip {
        RoundTrip::default()
    }

    /// Chunks of `bytes`.
    pub fn chunk_size(mut self, bytes: u32) -> RoundTrip {
        self.chunk_size = bytes;
        self
    }

    /// The thread counts to encode and decode with.
    pub fn threads(mut self, threads: &[usize]) -> RoundTrip {
        self.threads = threads.to_vec();
        self
    }

    /// The sizes of the writes into the streaming encoder.
    pub fn write_sizes(mut self, sizes: &[usize]) -> RoundTrip {
        self.write_sizes = sizes.to_vec();
        self
    }

    /// Encode `data` with `model` at every thread count and write size (the archives must be
    /// identical), decode the archive at every thread count and chunk by chunk (the bytes must
    /// be `data`), and return the archive.
    ///
    /// # Panics
    /// On any difference, with a message that names the path.
    pub fn check<M: Model>(&self, model: &M, data: &[u8]) -> Vec<u8> {
        let mut reference: Option<Vec<u8>> = None;
        for &threads in &self.threads {
            for &piece in &self.write_sizes {
                let archive = self.encode(model, data, threads, piece);
                match &reference {
                    None => reference = Some(archive),
                    Some(r) => assert!(
                        *r == archive,
                        "archive differs at {threads} threads, writes of {piece} bytes"
                    ),
                }
            }
        }
        let archive = reference.expect("at least one thread count");
        for &threads in &self.threads {
            let mut dec = lmzip::read::Decoder::new(&archive[..], model, threads)
                .unwrap_or_else(|e| panic!("header at {threads} threads: {e}"));
            let mut back = Vec::new();
            dec.read_to_end(&mut back)
                .unwrap_or_else(|e| panic!("decoding at {threads} threads: {e}"));
            assert!(back == data, "decoded bytes differ at {threads} threads");
        }
        self.check_chunks(model, data);
        archive
    }

    fn encode<M: Model>(&self, model: &M, data: &[u8], threads: usize, piece: usize) -> Vec<u8> {
        let mut enc = lmzip::write::EncoderBuilder::new()
            .threads(threads)
            .chunk_size(self.chunk_size)
            .original_len(Some(data.len() as u64))
            .build(Vec::new(), model)
            .expect("encoder");
        for part in data.chunks(piece.max(1)) {
            enc.write_all(part).expect("write");
        }
        enc.finish().expect("finish")
    }

    /// Every chunk alone through `chunk::encode`/`decode`, and all in one lockstep batch.
    fn check_chunks<M: Model>(&self, model: &M, data: &[u8]) {
        let chunks: Vec<&[u8]> = data.chunks(self.chunk_size as usize).collect();
        let mut state = model.new_state();
        let coded: Vec<Vec<u8>> = chunks
            .iter()
            .map(|c| chunk::encode(model, &mut state, c))
            .collect();
        for (c, code) in chunks.iter().zip(&coded) {
            let back = chunk::decode(model, &mut state, code, c.len()).expect("chunk decode");
            assert!(back == *c, "chunk::decode differs");
        }
        let mut states: Vec<M::State> = chunks.iter().map(|_| model.new_state()).collect();
        let jobs: Vec<(&[u8], usize)> = coded
            .iter()
            .zip(&chunks)
            .map(|(code, c)| (&code[..], c.len()))
            .collect();
        for (result, c) in chunk::decode_batch(model, &mut states, &jobs)
            .into_iter()
            .zip(&chunks)
        {
            assert!(result.expect("batch decode") == *c, "decode_batch differs");
        }
    }
}
