//! Lossless compression with a predictive model driving an arithmetic coder.
//!
//! lmzip cuts data into chunks (2048 bytes by default, as in *Language Modeling Is Compression*,
//! Delétang et al., ICLR 2024), codes each chunk independently with a model's next-symbol
//! probabilities and a range coder, and frames the result with checksums (`docs/FORMAT.md`).
//!
//! # Example
//! ```
//! use lmzip_models::ContextMixing;
//!
//! let data = b"It was the best of times, it was the worst of times.".repeat(10);
//! let archive = lmzip::compress(&data, &ContextMixing::new()).unwrap();
//! assert!(archive.len() < data.len() / 3);
//! assert_eq!(lmzip::decompress(&archive, &ContextMixing::new()).unwrap(), data);
//! ```
//!
//! Pinned: a tiny archive from the weightless model. A change in the model's numerics or the
//! format changes these bytes, and must come with a new numerics or format version.
//! ```
//! # use lmzip_models::ContextMixing;
//! let archive = lmzip::compress(b"abracadabra", &ContextMixing::new()).unwrap();
//! // The one chunk record: tag 03 (coded, partial), length 11, 8 coded bytes, CRC-32C, payload.
//! let record = &archive[archive.len() - 25 - 15..archive.len() - 25];
//! assert_eq!(record, [0x03, 0x0b, 0x08, 0xea, 0x58, 0x38, 0x2c, 0x61, 0x2a, 0xc2, 0xb4, 0xa2, 0x4e, 0x1e, 0x8b]);
//! assert_eq!(archive.len(), 78);
//! ```
//!
//! The streaming face follows flate2 and zstd-rs: [`write::Encoder`] compresses what is written
//! to it, [`read::Decoder`] yields the original bytes; [`chunk`] codes one chunk into a buffer.
#![deny(missing_docs)]

pub mod chunk;
mod error;
pub mod filter;
pub mod memory;
pub mod options;
mod parallel;
pub mod read;
pub mod write;

pub use error::Error;
pub use lmzip_format::{Header, MAX_CHUNK_SIZE};
use lmzip_format::{Record, read_record};
pub use lmzip_models::{Budget, Model, ModelId};
use std::io::{Read, Write};

/// The version of every numeric procedure on the coding path (the coder, the models'
/// arithmetic, the Transformer engine's kernels). Archives record it; a decoder reads
/// [`OLDEST_NUMERICS_VERSION`] to this one, with a model computing the archive's version
/// ([`Model::numerics`]).
pub const NUMERICS_VERSION: u16 = lmzip_engine::NUMERICS_VERSION;

/// The oldest numerics version this build decodes.
pub const OLDEST_NUMERICS_VERSION: u16 = lmzip_engine::OLDEST_NUMERICS_VERSION;

/// The default chunk size: 2048 bytes, the paper's.
pub const DEFAULT_CHUNK_SIZE: u32 = 2048;

/// Compress `data` with `model` and default options.
pub fn compress<M: Model>(data: &[u8], model: M) -> Result<Vec<u8>, Error> {
    let mut enc = write::EncoderBuilder::new()
        .original_len(Some(data.len() as u64))
        .build(Vec::new(), model)?;
    enc.write_all(data)?;
    enc.finish()
}

/// Decompress a whole archive made with `model`.
pub fn decompress<M: Model>(archive: &[u8], model: M) -> Result<Vec<u8>, Error> {
    let mut dec = read::Decoder::new(archive, model, write::default_threads())?;
    let mut out = Vec::new();
    dec.read_to_end(&mut out)?;
    Ok(out)
}

/// A model's name with its hash, for messages. The name is escaped (quotes, backslashes and
/// anything outside printable ASCII), since it may come from a hostile archive.
pub fn describe_model(name: &str, sha256: Option<&[u8; 32]>) -> String {
    lmzip_models::registry::describe(name, sha256)
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What an archive holds, found by reading its structure without decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveInfo {
    /// The header.
    pub header: Header,
    /// The archive's total size in bytes.
    pub archive_len: u64,
    /// The original data's size.
    pub original_len: u64,
    /// Number of chunks.
    pub chunks: u64,
    /// Chunks stored raw because the model would have expanded them.
    pub stored_chunks: u64,
    /// Blocks coded after the x86 branch transform.
    pub x86_chunks: u64,
    /// Bytes of coded (not stored) payload.
    pub coded_bytes: u64,
    /// Original bytes of the coded chunks.
    pub coded_original_bytes: u64,
}

impl ArchiveInfo {
    /// Archive size over original size (1.0 for an empty original).
    pub fn rate(&self) -> f64 {
        if self.original_len == 0 {
            1.0
        } else {
            self.archive_len as f64 / self.original_len as f64
        }
    }
}

/// Read an archive's header, records and trailer, checking that they fit together, without
/// decoding: the check after writing an archive, and `lmzip info`.
pub fn inspect<R: Read>(r: R) -> Result<ArchiveInfo, Error> {
    let mut r = CountingReader { inner: r, count: 0 };
    let header = Header::read(&mut r)?;
    let mut info = ArchiveInfo {
        header,
        archive_len: 0,
        original_len: 0,
        chunks: 0,
        stored_chunks: 0,
        x86_chunks: 0,
        coded_bytes: 0,
        coded_original_bytes: 0,
    };
    let mut saw_partial = false;
    loop {
        match read_record(&mut r, &info.header)? {
            Record::Chunk(c) => {
                if saw_partial {
                    return Err(Error::Corrupt("a chunk follows a partial chunk".into()));
                }
                saw_partial = c.original_len < info.header.chunk_size;
                info.chunks += 1;
                info.original_len += u64::from(c.original_len);
                info.x86_chunks += u64::from(c.x86);
                if c.stored {
                    info.stored_chunks += 1;
                } else {
                    info.coded_bytes += c.payload.len() as u64;
                    info.coded_original_bytes += u64::from(c.original_len);
                }
            }
            Record::End(t) => {
                if t.chunks != info.chunks || t.original_len != info.original_len {
                    return Err(Error::Corrupt(
                        "trailer totals do not match the chunks".into(),
                    ));
                }
                if info
                    .header
                    .original_len
                    .is_some_and(|n| n != info.original_len)
                {
                    return Err(Error::Corrupt(
                        "header length does not match the chunks".into(),
                    ));
                }
                break;
            }
        }
    }
    info.archive_len = r.count;
    if r.read(&mut [0u8; 1])? != 0 {
        return Err(Error::Corrupt("data after the trailer".into()));
    }
    Ok(info)
}

/// Counts the bytes read through it: the archive's size as read, not as recomputed.
struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    fn _assert_send_sync<T: Send + Sync>() {}
    #[allow(dead_code)]
    fn assert_send_sync() {
        _assert_send_sync::<crate::Error>();
        _assert_send_sync::<crate::write::EncoderBuilder>();
    }
}

/// The README's Rust example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme {}
