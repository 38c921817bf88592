//! The choices behind an archive — model, level, solid blocks or the paper's chunks — made in
//! one place for every front end (the command line, the Python package, Ray), so that all of
//! them write the same archive for the same input and options.
//!
//! ```
//! let mut options = lmzip::options::Options::new();
//! options.level(1).threads(2);
//! let plan = options.plan().unwrap();
//! let data = b"to be or not to be, that is the question".repeat(20);
//! let archive = plan.compress(&data[..], Some(data.len() as u64), Vec::new()).unwrap();
//! let mut back = Vec::new();
//! lmzip::options::decompress(&archive[..], None, 2, &mut back).unwrap();
//! assert_eq!(back, data);
//! ```
//!
//! Solid mode is the default: blocks ([`block_size_for`] the level) coded by the model mixed
//! with adaptive models. [`Options::chunks`] selects the paper's mode: independent chunks of
//! 2048 bytes (or the model's context, when shorter) coded by the model alone. A token-level LLM
//! always codes chunks.

use crate::{Error, chunk, filter, write};
use lmzip_format::{Header, Trailer, crc32c_append, write_end};
use lmzip_models::mix::{Level, Mixed};
use lmzip_models::registry::{self, AnyModel, ArchiveModel};
use lmzip_models::{Budget, Model, with_model};
use std::io::{self, Read, Write};

/// The level when none is given: the default model mixed with adaptive models, 1 MiB blocks.
pub const DEFAULT_LEVEL: u8 = 6;
/// Levels up to this one run the adaptive models alone (unless a model is named).
pub const LAST_ADAPTIVE_LEVEL: u8 = 3;
/// The smallest solid block: the paper's chunk, so that `--block-size 2048` codes the paper's
/// independent chunks with the model mixed with adaptive models.
pub const MIN_BLOCK_SIZE: u32 = 2048;

/// Solid mode's block size at each level: with the byte model (levels 4–9), smaller blocks
/// decode on more threads at once, larger ones see more context.
pub fn block_size_for(level: u8) -> u32 {
    match level {
        1 | 2 => 1 << 20,
        3 => 4 << 20,
        4 => 256 << 10,
        5 => 512 << 10,
        6 => 1 << 20,
        7 => 2 << 20,
        _ => 4 << 20,
    }
}

/// What to compress with, before the model is loaded. Every field has the command line's
/// default.
#[derive(Debug, Clone, Default)]
pub struct Options {
    model: Option<String>,
    level: Option<u8>,
    block_size: Option<u32>,
    chunks: bool,
    chunk_size: Option<u32>,
    threads: usize,
}

impl Options {
    /// The defaults: level 6, solid mode, one thread per core.
    pub fn new() -> Options {
        Options::default()
    }

    /// The model, as `--model` takes it: `baseline`, the default's name, a model directory, a
    /// GGUF file, or a name in the model search path. By default the compiled-in model (the
    /// adaptive models alone at levels 1–3 of solid mode).
    pub fn model(&mut self, name: Option<&str>) -> &mut Self {
        self.model = name.map(str::to_string);
        self
    }

    /// The level, 1 to 9.
    pub fn level(&mut self, level: u8) -> &mut Self {
        self.level = Some(level);
        self
    }

    /// Solid mode's block size, 2 KiB to 16 MiB (by default [`block_size_for`] the level).
    pub fn block_size(&mut self, bytes: u32) -> &mut Self {
        self.block_size = Some(bytes);
        self
    }

    /// The paper's mode: independent chunks coded by the model alone.
    pub fn chunks(&mut self, chunks: bool) -> &mut Self {
        self.chunks = chunks;
        self
    }

    /// Bytes per independent chunk (implies [`Options::chunks`]).
    pub fn chunk_size(&mut self, bytes: u32) -> &mut Self {
        self.chunk_size = Some(bytes);
        self
    }

    /// Threads; 0 (the default) means one per core. Archives do not depend on it.
    pub fn threads(&mut self, threads: usize) -> &mut Self {
        self.threads = threads;
        self
    }

    /// Check the options and load the model.
    pub fn plan(&self) -> Result<Plan, Error> {
        let threads = resolve_threads(self.threads);
        let level = self.level.unwrap_or(DEFAULT_LEVEL);
        if Level::new(level).is_none() {
            return Err(Error::Config(format!(
                "the level must be 1 to 9, not {level}"
            )));
        }
        let chunked = self.chunks || self.chunk_size.is_some();
        if chunked && self.block_size.is_some() {
            return Err(Error::Config(
                "a block size is for solid mode; the paper's mode takes a chunk size".into(),
            ));
        }
        let default_model = if !chunked && level <= LAST_ADAPTIVE_LEVEL {
            "baseline"
        } else {
            registry::DEFAULT_MODEL
        };
        let model = load(self.model.as_deref().unwrap_or(default_model))?;
        let is_llm = matches!(model, AnyModel::Llm(_));
        if is_llm && self.block_size.is_some() {
            return Err(Error::Config(
                "solid mode (a block size) mixes byte models only; an LLM codes chunks".into(),
            ));
        }
        if chunked || is_llm {
            let model =
                model.for_chunks(self.chunk_size.unwrap_or(crate::DEFAULT_CHUNK_SIZE) as usize);
            let context = with_model_ref!(&model, m => m.max_chunk_len());
            let chunk_size =
                self.chunk_size
                    .unwrap_or(context.map_or(crate::DEFAULT_CHUNK_SIZE, |c| {
                        crate::DEFAULT_CHUNK_SIZE.min(c.min(u32::MAX as usize) as u32)
                    }));
            write::check_chunk_size(chunk_size, context)?;
            return Ok(Plan {
                model,
                chunk_size,
                level: None,
                threads,
            });
        }
        let block_size = self.block_size.unwrap_or(block_size_for(level));
        if !(MIN_BLOCK_SIZE..=crate::MAX_CHUNK_SIZE).contains(&block_size) {
            return Err(Error::Config(format!(
                "block size must be {MIN_BLOCK_SIZE} to {} bytes, not {block_size}",
                crate::MAX_CHUNK_SIZE
            )));
        }
        let level = Level::new(level).expect("BUG: checked above");
        // Refuse a model solid mode cannot mix (a bit model other than the baseline) now.
        with_model_ref!(&model, m => Mixed::new(m, level, block_size).map(|_| ()))
            .map_err(Error::Config)?;
        Ok(Plan {
            model,
            chunk_size: block_size,
            level: Some(level),
            threads,
        })
    }
}

/// The number of cores for 0, else `threads`; at most 256 (more only costs memory; zstd caps
/// at 200).
pub fn resolve_threads(threads: usize) -> usize {
    let threads = if threads == 0 {
        write::default_threads()
    } else {
        threads
    };
    threads.min(256)
}

fn load(name: &str) -> Result<AnyModel, Error> {
    registry::by_name(name).map_err(|e| Error::Model(e.0))
}

/// Run `$body` with `$m` bound to a reference to the concrete model inside `&AnyModel`.
macro_rules! with_model_ref {
    ($any:expr, $m:ident => $body:expr) => {
        match $any {
            AnyModel::Baseline($m) => $body,
            AnyModel::Transformer($m) => {
                let $m = &**$m;
                $body
            }
            AnyModel::Llm($m) => {
                let $m = &**$m;
                $body
            }
        }
    };
}
use with_model_ref;

/// Run `$body` with `$m` bound to the model a plan codes with: the mixed model in solid mode,
/// the model itself in chunks (by reference).
macro_rules! with_coding_model {
    ($plan:expr, $m:ident => $body:expr) => {{
        let plan: &Plan = $plan;
        with_model_ref!(&plan.model, inner => match plan.level {
            Some(level) => {
                let $m = Mixed::new(inner, level, plan.chunk_size)
                    .expect("BUG: the plan checked the model");
                $body
            }
            None => {
                let $m = inner;
                $body
            }
        })
    }};
}

/// Options checked and the model loaded: ready to code.
pub struct Plan {
    model: AnyModel,
    /// The block size in solid mode, else the chunk size.
    chunk_size: u32,
    /// The mixer's level in solid mode.
    level: Option<Level>,
    threads: usize,
}

impl Plan {
    /// Bytes per block (solid mode) or chunk.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Whether blocks are coded by the mixer (solid mode), not chunks by the model alone.
    pub fn is_solid(&self) -> bool {
        self.level.is_some()
    }

    /// The loaded model.
    pub fn model(&self) -> &AnyModel {
        &self.model
    }

    /// Compress all of `input` into `out`. `original_len`, when given, is recorded in the
    /// header and checked at the end (the command line gives a file's size).
    pub fn compress<R: Read, W: Write>(
        &self,
        mut input: R,
        original_len: Option<u64>,
        out: W,
    ) -> Result<W, Error> {
        let builder = self.builder(original_len);
        with_coding_model!(self, m => {
            let mut enc = builder.build(out, m)?;
            io::copy(&mut input, &mut enc)?;
            enc.finish()
        })
    }

    /// A streaming compressor writing to `out`; call [`ArchiveWriter::finish`] at the end.
    pub fn writer<W: Write + Send + 'static>(
        self,
        out: W,
        original_len: Option<u64>,
    ) -> Result<Box<dyn ArchiveWriter<W>>, Error> {
        let builder = self.builder(original_len);
        let (level, chunk_size) = (self.level, self.chunk_size);
        with_model!(self.model, m => match level {
            Some(level) => {
                let mixed = Mixed::new(m, level, chunk_size).map_err(Error::Config)?;
                Ok(Box::new(builder.build(out, mixed)?) as Box<dyn ArchiveWriter<W>>)
            }
            None => Ok(Box::new(builder.build(out, m)?) as Box<dyn ArchiveWriter<W>>),
        })
    }

    fn builder(&self, original_len: Option<u64>) -> write::EncoderBuilder {
        let mut builder = write::EncoderBuilder::new();
        builder
            .threads(self.threads)
            .original_len(original_len)
            .chunk_size(self.chunk_size);
        builder
    }

    /// The archive's header, as [`Plan::compress`] writes it.
    pub fn header(&self, original_len: Option<u64>) -> Header {
        with_coding_model!(self, m => write::header_for(&m, self.chunk_size, original_len))
    }

    /// Code one block (or chunk) of at most [`Plan::chunk_size`] bytes into its record, as the
    /// archive holds it: the pieces of one archive coded apart, on other threads or machines,
    /// and joined by an [`Assembler`]. Only the last block of an archive may be shorter.
    pub fn code_block(&self, data: &[u8]) -> Result<Block, Error> {
        if data.is_empty() || data.len() > self.chunk_size as usize {
            return Err(Error::Config(format!(
                "a block holds 1 to {} bytes, not {}",
                self.chunk_size,
                data.len()
            )));
        }
        let (coded, x86) = with_coding_model!(self, m => {
            let mut state = m.new_state();
            let spare = Budget::spare(self.threads - 1);
            write::encode_chunk(&m, &mut state, data, self.is_solid(), &spare)
        });
        let mut record = Vec::with_capacity(data.len().min(coded.len()) + 16);
        write::write_record(&mut record, &self.header(None), data, &coded, x86)?;
        Ok(Block {
            record,
            original_len: data.len() as u64,
            crc32c: crc32c_append(0, data),
        })
    }

    /// The bits each byte of `data` costs under this plan's model: −log2 of the probability of
    /// each symbol, spread over its bytes, with every block or chunk coded from a fresh state as
    /// in the archive. The archive's coded payloads spend this plus a few bytes of coder
    /// overhead per chunk (a chunk that would grow is stored instead, at 8 bits a byte).
    pub fn code_lengths(&self, data: &[u8]) -> Vec<f64> {
        let size = self.chunk_size as usize;
        let pieces: Vec<&[u8]> = data.chunks(size).collect();
        let solid = self.is_solid();
        let mut bits = Vec::with_capacity(data.len());
        with_coding_model!(self, m => {
            let mut states: Vec<_> = (0..self.threads.min(pieces.len()).max(1))
                .map(|_| m.new_state())
                .collect();
            let spare = crate::parallel::spare_threads(self.threads, pieces.len());
            let scored = crate::parallel::map_ordered(&mut states, &pieces, &spare, |state, piece| {
                if solid && filter::looks_like_x86(piece) {
                    chunk::code_lengths(&m, state, &filter::x86_forward(piece), &spare)
                } else {
                    chunk::code_lengths(&m, state, piece, &spare)
                }
            });
            for s in scored {
                bits.extend(s);
            }
        });
        bits
    }
}

/// One coded block of an archive: its record and what the trailer needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The record's bytes.
    pub record: Vec<u8>,
    /// The block's original length.
    pub original_len: u64,
    /// CRC-32C of the block's original bytes.
    pub crc32c: u32,
}

/// Joins blocks coded apart ([`Plan::code_block`]) into one archive: the same bytes as
/// [`Plan::compress`] of the blocks' data concatenated. The whole data's CRC-32C is combined
/// from the blocks' ones, without their data.
pub struct Assembler<W: Write> {
    out: W,
    header: Header,
    trailer: Trailer,
    saw_partial: bool,
}

impl<W: Write> Assembler<W> {
    /// Write `header` ([`Plan::header`]) to `out`.
    pub fn new(mut out: W, header: Header) -> Result<Assembler<W>, Error> {
        header.write(&mut out)?;
        Ok(Assembler {
            out,
            header,
            trailer: Trailer {
                original_len: 0,
                chunks: 0,
                crc32c: 0,
            },
            saw_partial: false,
        })
    }

    /// Append the next block's record.
    pub fn push(&mut self, block: &Block) -> Result<(), Error> {
        let size = u64::from(self.header.chunk_size);
        if self.saw_partial || block.original_len == 0 || block.original_len > size {
            return Err(Error::Config(
                "blocks hold 1 to the block size bytes, and only the last may be shorter".into(),
            ));
        }
        self.saw_partial = block.original_len < size;
        self.out.write_all(&block.record)?;
        self.trailer.crc32c = lmzip_format::crc32c_combine(
            self.trailer.crc32c,
            block.crc32c,
            block.original_len as usize,
        );
        self.trailer.original_len += block.original_len;
        self.trailer.chunks += 1;
        Ok(())
    }

    /// Write the trailer and return the writer.
    pub fn finish(mut self) -> Result<W, Error> {
        if let Some(expected) = self.header.original_len
            && expected != self.trailer.original_len
        {
            return Err(Error::InputChanged {
                announced: expected,
                read: self.trailer.original_len,
            });
        }
        write_end(&mut self.out, &self.trailer)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A streaming compressor whose model type is hidden: [`Plan::writer`].
pub trait ArchiveWriter<W>: Write + Send {
    /// Code everything left, write the trailer, and return the writer.
    fn finish(self: Box<Self>) -> Result<W, Error>;
}

impl<W: Write + Send, M: Model + Send> ArchiveWriter<W> for write::Encoder<W, M>
where
    M::State: Send,
{
    fn finish(self: Box<Self>) -> Result<W, Error> {
        write::Encoder::finish(*self)
    }
}

/// Read an archive's header and choose its model: `model` when given (as `--model` takes it),
/// else the one the header names, looked up in the model search path.
fn model_for(header: &Header, model: Option<&str>) -> Result<AnyModel, Error> {
    let named = ArchiveModel {
        name: &header.model_name,
        sha256: header.model_sha256,
    };
    let model = registry::for_header(&named, model)
        .and_then(|m| m.for_numerics(header.numerics_version))
        .map_err(|e| Error::Model(e.0))?;
    Ok(model.for_chunks(header.chunk_size as usize))
}

/// What a decoder may use: threads (0: one per core) and memory (`None`: the default limit,
/// [`crate::memory::default_limit`]). A count of threads alone converts into it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// Threads; 0 means one per core. Lowered when the memory limit needs it.
    pub threads: usize,
    /// The most bytes the decoder may take for its model states and buffers.
    pub memory: Option<u64>,
}

impl From<usize> for Resources {
    fn from(threads: usize) -> Resources {
        Resources {
            threads,
            memory: None,
        }
    }
}

/// Decompress the archive on `input` into `out` with the model its header names (or `model`),
/// with `resources` (threads, or [`Resources`]). Returns the original size.
pub fn decompress<R: Read, W: Write>(
    mut input: R,
    model: Option<&str>,
    resources: impl Into<Resources>,
    mut out: W,
) -> Result<u64, Error> {
    let header = Header::read(&mut input)?;
    with_decoder!(input, header, model, resources.into(), dec => Ok(io::copy(&mut dec, &mut out)?))
}

/// A streaming decompressor of the archive on `input`, with the model its header names (or
/// `model`), with `resources` (threads, or [`Resources`]).
pub fn reader<R: Read + Send + 'static>(
    mut input: R,
    model: Option<&str>,
    resources: impl Into<Resources>,
) -> Result<Box<dyn Read + Send>, Error> {
    let header = Header::read(&mut input)?;
    with_decoder!(input, header, model, resources.into(), dec => Ok(Box::new(dec) as Box<dyn Read + Send>))
}

/// Run `$body` with `$dec` bound to a [`crate::read::Decoder`] of the records after `$header`,
/// with the model the header names (or `$model`).
macro_rules! with_decoder {
    ($input:expr, $header:expr, $model:expr, $resources:expr, $dec:ident => $body:expr) => {{
        let header: Header = $header;
        let model = model_for(&header, $model)?;
        let resources: Resources = $resources;
        let threads = resolve_threads(resources.threads);
        let memory = resources
            .memory
            .unwrap_or_else(crate::memory::default_limit);
        match header.mixer {
            None => with_model!(model, m => {
                #[allow(unused_mut)]
                let mut $dec =
                    crate::read::Decoder::with_limits($input, header, m, threads, memory)?;
                $body
            }),
            Some(number) => {
                let level = Level::new(number).expect("BUG: the header checks the level");
                let block_size = header.chunk_size;
                with_model!(model, m => {
                    let mixed = Mixed::new(m, level, block_size).map_err(Error::Config)?;
                    #[allow(unused_mut)]
                    let mut $dec = crate::read::Decoder::with_limits(
                        $input, header, mixed, threads, memory,
                    )?;
                    $body
                })
            }
        }
    }};
}
use with_decoder;
