//! Decompression as a `Read` adapter.

use crate::write::batch_chunks;
use crate::{Error, NUMERICS_VERSION, OLDEST_NUMERICS_VERSION, chunk, filter, memory, parallel};
use lmzip_format::{ChunkRecord, Header, Record, crc32c, crc32c_append, read_record};
use lmzip_models::Model;
use std::io::{self, Read};

/// Yields the original bytes of an lmzip archive read from `R`.
///
/// `read` returns `Ok(0)` only after the trailer and every checksum have passed. Bytes of a
/// batch of chunks are returned only after each chunk's CRC-32C has passed.
pub struct Decoder<R: Read, M: Model> {
    inner: R,
    model: M,
    header: Header,
    /// Per thread, one state per chunk of its share of a batch.
    states: Vec<Vec<M::State>>,
    batch_chunks: usize,
    out: Vec<u8>,
    out_pos: usize,
    chunks: u64,
    total: u64,
    crc: u32,
    /// A chunk shorter than the chunk size was read: only the end may follow.
    saw_partial: bool,
    done: bool,
}

impl<R: Read, M: Model> Decoder<R, M> {
    /// Read and check the header, then decode with `model` on `threads` threads.
    pub fn new(mut inner: R, model: M, threads: usize) -> Result<Decoder<R, M>, Error> {
        let header = Header::read(&mut inner)?;
        Decoder::with_header(inner, header, model, threads)
    }

    /// Decode the rest of an archive whose header was already read (to choose the model),
    /// within the default memory limit ([`memory::default_limit`]).
    pub fn with_header(
        inner: R,
        header: Header,
        model: M,
        threads: usize,
    ) -> Result<Decoder<R, M>, Error> {
        Decoder::with_limits(inner, header, model, threads, memory::default_limit())
    }

    /// [`Decoder::with_header`] within `memory_limit` bytes: what the header's chunk size and
    /// the model's states need per thread is checked against it before anything is made, the
    /// threads are lowered to fit, and a decoder that cannot fit on one thread is refused.
    pub fn with_limits(
        inner: R,
        header: Header,
        model: M,
        threads: usize,
        memory_limit: u64,
    ) -> Result<Decoder<R, M>, Error> {
        if threads == 0 {
            return Err(Error::Config("thread count must be at least 1".into()));
        }
        let numerics = header.numerics_version;
        if !(OLDEST_NUMERICS_VERSION..=NUMERICS_VERSION).contains(&numerics) {
            return Err(Error::Unsupported(format!(
                "numerics version {numerics} (this build reads {OLDEST_NUMERICS_VERSION} to \
                 {NUMERICS_VERSION})"
            )));
        }
        if let Some(computed) = model.numerics()
            && computed != numerics
        {
            return Err(Error::Unsupported(format!(
                "the archive was written under numerics version {numerics}, and the model given \
                 computes version {computed}"
            )));
        }
        let id = model.id();
        if id.name != header.model_name
            || id.sha256 != header.model_sha256
            || id.tokenizer_sha256 != header.tokenizer_sha256
            || id.mixer != header.mixer
        {
            return Err(Error::ModelMismatch {
                expected: crate::describe_model(&header.model_name, header.model_sha256.as_ref()),
                found: crate::describe_model(&id.name, id.sha256.as_ref()),
            });
        }
        if let Some(max) = model.max_chunk_len()
            && header.chunk_size as usize > max
        {
            return Err(Error::Unsupported(format!(
                "chunk size {} is longer than the model's context of {max} bytes",
                header.chunk_size
            )));
        }
        // Per thread: its states, and its share of a batch three times over (records read,
        // chunks decoded, bytes ready to be read).
        let chunks_per_thread = batch_chunks(1, header.chunk_size);
        let lockstep = model.lockstep_chunks().clamp(1, chunks_per_thread);
        let per_thread_bytes = lockstep as u64 * model.state_bytes() as u64
            + 3 * chunks_per_thread as u64 * u64::from(header.chunk_size);
        let what = match header.mixer {
            Some(level) => format!("level {level} in blocks of {} bytes", header.chunk_size),
            None => format!("chunks of {} bytes", header.chunk_size),
        };
        let threads = memory::threads_within(threads, per_thread_bytes, memory_limit, &what)?;
        let per_thread = batch_chunks(threads, header.chunk_size).div_ceil(threads);
        // States are made when first needed: a model's state can be large.
        let states = (0..threads)
            .map(|_| Vec::with_capacity(per_thread))
            .collect();
        Ok(Decoder {
            batch_chunks: batch_chunks(threads, header.chunk_size),
            inner,
            model,
            header,
            states,
            out: Vec::new(),
            out_pos: 0,
            chunks: 0,
            total: 0,
            crc: 0,
            saw_partial: false,
            done: false,
        })
    }

    /// The archive's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The underlying reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The underlying reader, mutably. Reading from it corrupts the decoding.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Read and decode the next batch of chunks into `self.out`.
    fn next_batch(&mut self) -> Result<(), Error> {
        let mut records: Vec<ChunkRecord> = Vec::with_capacity(self.batch_chunks);
        let mut end = None;
        while records.len() < self.batch_chunks {
            let index = self.chunks + records.len() as u64;
            match read_record(&mut self.inner, &self.header).map_err(|e| match e {
                lmzip_format::Error::CorruptTrailer(_) => e.into(),
                e => self.at(index, e.into()),
            })? {
                Record::Chunk(record) => {
                    if self.saw_partial {
                        return Err(self.at(
                            index,
                            Error::Corrupt("a chunk follows a partial chunk".into()),
                        ));
                    }
                    self.saw_partial = record.original_len < self.header.chunk_size;
                    records.push(record);
                }
                Record::End(trailer) => {
                    end = Some(trailer);
                    break;
                }
            }
        }
        let model = &self.model;
        // Each thread decodes a contiguous run of chunks in lockstep (one model step for all of
        // them); stored chunks need no model: they are checked and copied out of their records.
        let decoded = parallel::map_runs(&mut self.states, &records, |states, run| {
            let coded: Vec<(&[u8], usize)> = run
                .iter()
                .filter(|r| !r.stored)
                .map(|r| (r.payload.as_slice(), r.original_len as usize))
                .collect();
            let lockstep = model.lockstep_chunks();
            let results: Vec<Result<Vec<u8>, Error>> = if lockstep > 1 {
                while states.len() < lockstep.min(coded.len()) {
                    states.push(model.new_state());
                }
                coded
                    .chunks(lockstep)
                    .flat_map(|group| chunk::decode_batch(model, states, group))
                    .collect()
            } else {
                if states.is_empty() {
                    states.push(model.new_state());
                }
                coded
                    .iter()
                    .map(|&(c, len)| chunk::decode(model, &mut states[0], c, len))
                    .collect()
            };
            let mut results = results.into_iter();
            run.iter()
                .map(|r| match r.stored {
                    true => Ok(None),
                    false => results
                        .next()
                        .expect("one result per coded chunk")
                        .map(Some),
                })
                .collect::<Vec<_>>()
        });
        self.out.clear();
        self.out_pos = 0;
        for (record, decoded) in records.iter().zip(decoded) {
            let mut decoded = decoded.map_err(|e| self.at(self.chunks, e))?;
            if let Some(block) = decoded.as_mut().filter(|_| record.x86) {
                filter::x86_inverse(block);
            }
            let data: &[u8] = decoded.as_deref().unwrap_or(&record.payload);
            if crc32c(data) != record.crc32c {
                return Err(self.at(self.chunks, Error::Corrupt("crc32c mismatch".into())));
            }
            self.crc = crc32c_append(self.crc, data);
            self.total += data.len() as u64;
            self.chunks += 1;
            self.out.extend_from_slice(data);
        }
        if let Some(trailer) = end {
            if trailer.chunks != self.chunks || trailer.original_len != self.total {
                return Err(Error::Corrupt(format!(
                    "trailer says {} bytes in {} chunks, archive holds {} bytes in {} chunks",
                    trailer.original_len, trailer.chunks, self.total, self.chunks
                )));
            }
            if trailer.crc32c != self.crc {
                return Err(Error::Corrupt("whole-data crc32c mismatch".into()));
            }
            if let Some(expected) = self.header.original_len
                && expected != self.total
            {
                return Err(Error::Corrupt(format!(
                    "header says {expected} bytes, archive holds {}",
                    self.total
                )));
            }
            let mut probe = [0u8; 1];
            if read_some(&mut self.inner, &mut probe)? != 0 {
                return Err(Error::Corrupt("data after the trailer".into()));
            }
            self.done = true;
        }
        Ok(())
    }

    /// Wrap `e` with the chunk's index and offset.
    fn at(&self, index: u64, e: Error) -> Error {
        match e {
            Error::Truncated | Error::Io(_) => e,
            e => Error::Chunk {
                index,
                offset: index * u64::from(self.header.chunk_size),
                source: Box::new(e),
            },
        }
    }
}

fn read_some<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

impl<R: Read, M: Model> Read for Decoder<R, M> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_pos == self.out.len() {
            if self.done {
                return Ok(0);
            }
            self.next_batch()?;
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..][..n]);
        self.out_pos += n;
        Ok(n)
    }
}
