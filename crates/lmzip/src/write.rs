//! Compression as a `Write` adapter.

use crate::{Error, NUMERICS_VERSION, chunk, filter, parallel};
use lmzip_format::{Header, MAX_CHUNK_SIZE, Trailer, crc32c_append, write_block, write_end};
use lmzip_models::{Budget, Model};
use std::io::{self, Write};

/// Options for an [`Encoder`].
#[derive(Debug, Clone)]
pub struct EncoderBuilder {
    chunk_size: u32,
    threads: usize,
    original_len: Option<u64>,
}

impl Default for EncoderBuilder {
    fn default() -> Self {
        EncoderBuilder::new()
    }
}

impl EncoderBuilder {
    /// Default options.
    pub fn new() -> EncoderBuilder {
        EncoderBuilder {
            chunk_size: crate::DEFAULT_CHUNK_SIZE,
            threads: default_threads(),
            original_len: None,
        }
    }

    /// Bytes per independently coded chunk, 1 to 16 MiB.
    ///
    /// By default, 2048 bytes, the paper's chunk size.
    pub fn chunk_size(&mut self, bytes: u32) -> &mut Self {
        self.chunk_size = bytes;
        self
    }

    /// Threads that code chunks in parallel. The archive does not depend on it.
    ///
    /// By default, the number of available cores.
    pub fn threads(&mut self, threads: usize) -> &mut Self {
        self.threads = threads;
        self
    }

    /// Record the original length in the header (checked against the data at the end).
    ///
    /// By default, unknown (a stream).
    pub fn original_len(&mut self, len: Option<u64>) -> &mut Self {
        self.original_len = len;
        self
    }

    /// An encoder writing to `w` with `model`. Writes the header at once.
    pub fn build<W: Write, M: Model>(&self, mut w: W, model: M) -> Result<Encoder<W, M>, Error> {
        check_chunk_size(self.chunk_size, model.max_chunk_len())?;
        if self.threads == 0 {
            return Err(Error::Config("thread count must be at least 1".into()));
        }
        let header = header_for(&model, self.chunk_size, self.original_len);
        header.write(&mut w)?;
        let batch_chunks = batch_chunks(self.threads, self.chunk_size);
        Ok(Encoder {
            inner: w,
            model,
            header,
            threads: self.threads,
            states: Vec::new(),
            buf: Vec::with_capacity(batch_chunks * self.chunk_size as usize),
            batch_chunks,
            trailer: Trailer {
                original_len: 0,
                chunks: 0,
                crc32c: 0,
            },
        })
    }
}

/// Check a chunk size against the format's limit and a model's context (its `max_chunk_len`).
pub(crate) fn check_chunk_size(chunk_size: u32, context: Option<usize>) -> Result<(), Error> {
    if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
        return Err(Error::Config(format!(
            "chunk size must be 1 to {MAX_CHUNK_SIZE} bytes, not {chunk_size}"
        )));
    }
    if let Some(max) = context
        && chunk_size as usize > max
    {
        return Err(Error::Config(format!(
            "chunk size {chunk_size} is longer than the model's context of {max} bytes"
        )));
    }
    Ok(())
}

/// The header of an archive coded by `model` in chunks of `chunk_size` bytes, under the numerics
/// the model computes ([`Model::numerics`], else this build's).
pub(crate) fn header_for<M: Model>(
    model: &M,
    chunk_size: u32,
    original_len: Option<u64>,
) -> Header {
    let id = model.id();
    Header {
        numerics_version: model.numerics().unwrap_or(NUMERICS_VERSION),
        chunk_size,
        original_len,
        model_name: id.name,
        model_sha256: id.sha256,
        tokenizer_sha256: id.tokenizer_sha256,
        mixer: id.mixer,
    }
}

/// Code one chunk as an archive holds it, with helper threads for the model taken from
/// `threads`: a solid block that looks like x86 code is coded after the x86 branch transform.
/// Returns the coded bytes and whether the transform was applied.
pub(crate) fn encode_chunk<M: Model>(
    model: &M,
    state: &mut M::State,
    data: &[u8],
    solid: bool,
    threads: &Budget,
) -> (Vec<u8>, bool) {
    if solid && filter::looks_like_x86(data) {
        let filtered = filter::x86_forward(data);
        (chunk::encode(model, state, &filtered, threads), true)
    } else {
        (chunk::encode(model, state, data, threads), false)
    }
}

/// Write a chunk's record from [`encode_chunk`]'s result: coded, or stored where coding would
/// not shrink it.
pub(crate) fn write_record<W: Write>(
    w: &mut W,
    header: &Header,
    data: &[u8],
    coded: &[u8],
    x86: bool,
) -> Result<(), Error> {
    let payload = (coded.len() < data.len()).then_some(coded);
    write_block(w, header, data, payload, x86 && payload.is_some())?;
    Ok(())
}

/// The number of cores, or 1 if unknown.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Chunks per parallel batch: enough to keep every thread busy, about 1 MiB per thread at most.
pub(crate) fn batch_chunks(threads: usize, chunk_size: u32) -> usize {
    threads * ((1 << 20) / chunk_size as usize).clamp(1, 8)
}

/// Compresses what is written to it into an lmzip archive on `W`.
///
/// Call [`Encoder::finish`]: without it the archive has no trailer, and decoders reject it as
/// truncated.
pub struct Encoder<W: Write, M: Model> {
    inner: W,
    model: M,
    header: Header,
    threads: usize,
    /// One model state per thread, made when a batch first needs it.
    states: Vec<M::State>,
    /// Input not yet coded: fewer than `batch_chunks` chunks.
    buf: Vec<u8>,
    batch_chunks: usize,
    trailer: Trailer,
}

impl<W: Write, M: Model> Encoder<W, M> {
    /// An encoder with default options; see [`EncoderBuilder`].
    pub fn new(w: W, model: M) -> Result<Encoder<W, M>, Error> {
        EncoderBuilder::new().build(w, model)
    }

    /// The header written at the start of the archive.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Code the chunks in `self.buf[..len]` (a whole number of chunks, or the final rest).
    fn code_buffered(&mut self, len: usize) -> Result<(), Error> {
        if len == 0 {
            return Ok(());
        }
        let chunk_size = self.header.chunk_size as usize;
        let solid = self.header.mixer.is_some();
        let chunks: Vec<&[u8]> = self.buf[..len].chunks(chunk_size).collect();
        let model = &self.model;
        let wanted = self.threads.min(chunks.len());
        while self.states.len() < wanted {
            self.states.push(model.new_state());
        }
        // The thread budget: chunks on as many threads as there are chunks, the rest spare
        // for the model's helpers, and a thread whose chunks are done spare too.
        let spare = parallel::spare_threads(self.threads, chunks.len());
        let coded = parallel::map_ordered(&mut self.states, &chunks, &spare, |state, data| {
            encode_chunk(model, state, data, solid, &spare)
        });
        for (data, (coded, x86)) in chunks.iter().zip(&coded) {
            write_record(&mut self.inner, &self.header, data, coded, *x86)?;
            self.trailer.crc32c = crc32c_append(self.trailer.crc32c, data);
            self.trailer.original_len += data.len() as u64;
            self.trailer.chunks += 1;
        }
        self.buf.drain(..len);
        Ok(())
    }

    /// Code everything left, write the trailer, and return the writer.
    pub fn finish(mut self) -> Result<W, Error> {
        let len = self.buf.len();
        self.code_buffered(len)?;
        if let Some(expected) = self.header.original_len
            && expected != self.trailer.original_len
        {
            return Err(Error::InputChanged {
                announced: expected,
                read: self.trailer.original_len,
            });
        }
        write_end(&mut self.inner, &self.trailer)?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The underlying writer, mutably. Writing to it corrupts the archive.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The underlying writer, without finishing the archive.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write, M: Model> Write for Encoder<W, M> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let chunk_size = self.header.chunk_size as usize;
        let capacity = self.batch_chunks * chunk_size;
        let n = data.len().min(capacity - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == capacity {
            self.code_buffered(capacity)?;
        }
        Ok(n)
    }

    /// Flushes the underlying writer. Buffered input stays buffered until a whole batch of
    /// chunks is available, because cutting a chunk early would change the archive.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
