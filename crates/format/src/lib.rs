//! The lmzip archive format: header, chunk records and trailer (`docs/FORMAT.md`).
//!
//! This crate only frames bytes: it knows nothing of models or coding. Every length read from
//! an archive is checked against a limit before any allocation is sized by it, so a hostile
//! archive costs at most [`MAX_CHUNK_SIZE`] bytes of memory per record.
//!
//! # Example
//! ```
//! use lmzip_format::{Header, Record, Trailer, read_record, write_chunk, write_end};
//!
//! let header = Header {
//!     numerics_version: 1,
//!     chunk_size: 4,
//!     original_len: Some(6),
//!     model_name: "baseline".into(),
//!     model_sha256: None,
//!     tokenizer_sha256: None,
//!     mixer: None,
//! };
//! let mut archive = Vec::new();
//! header.write(&mut archive).unwrap();
//! write_chunk(&mut archive, &header, b"abcd", None).unwrap();
//! write_chunk(&mut archive, &header, b"ef", Some(&[0x42])).unwrap();
//! write_end(&mut archive, &Trailer { original_len: 6, chunks: 2, crc32c: lmzip_format::crc32c(b"abcdef") }).unwrap();
//!
//! let mut r = &archive[..];
//! let read = Header::read(&mut r).unwrap();
//! assert_eq!(read, header);
//! let Record::Chunk(first) = read_record(&mut r, &read).unwrap() else { panic!() };
//! assert_eq!((first.original_len, first.stored, &first.payload[..]), (4, true, &b"abcd"[..]));
//! let Record::Chunk(second) = read_record(&mut r, &read).unwrap() else { panic!() };
//! assert_eq!((second.original_len, second.stored, &second.payload[..]), (2, false, &[0x42][..]));
//! assert!(matches!(read_record(&mut r, &read).unwrap(), Record::End(t) if t.chunks == 2));
//! ```
#![deny(missing_docs)]

use std::io::{self, Read, Write};

/// The first 8 bytes of every archive. The `0x89` and line-ending bytes catch 7-bit and
/// text-mode transfers, as PNG's signature does.
pub const MAGIC: [u8; 8] = [0x89, b'L', b'M', b'Z', 0x0D, 0x0A, 0x1A, 0x0A];
/// The newest version of this format, which this crate reads and writes: version 2 adds the
/// solid-mode mixer level (header flag [`FLAG_MIXER`]). An archive without a mixer is written as
/// version 1, byte for byte what earlier builds wrote; both versions are read.
pub const FORMAT_VERSION: u8 = 2;
/// The largest chunk size an archive may declare (16 MiB).
pub const MAX_CHUNK_SIZE: u32 = 1 << 24;
/// The longest model name an archive may record.
pub const MAX_MODEL_NAME_LEN: usize = 64;

const TAG_END: u8 = 0x00;
const TAG_CODED_FULL: u8 = 0x01;
const TAG_STORED_FULL: u8 = 0x02;
const TAG_CODED_PART: u8 = 0x03;
const TAG_STORED_PART: u8 = 0x04;
const TAG_CODED_FULL_X86: u8 = 0x05;
const TAG_CODED_PART_X86: u8 = 0x06;

/// CRC-32C (Castagnoli) of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Extend a CRC-32C over more data.
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// The CRC-32C of two byte strings one after the other, from their CRCs and the second's
/// length: an archive's whole-data checksum from blocks coded apart.
pub fn crc32c_combine(first: u32, second: u32, second_len: usize) -> u32 {
    crc32c::crc32c_combine(first, second, second_len)
}

/// Errors from reading or writing an archive.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error of the underlying reader or writer.
    Io(io::Error),
    /// The input does not start with the lmzip magic.
    NotAnArchive,
    /// The archive ends before its trailer.
    Truncated,
    /// The archive's bytes are inconsistent.
    Corrupt(String),
    /// The trailer (the end marker and whole-data totals) is inconsistent.
    CorruptTrailer(String),
    /// A format version or flag this build does not know.
    Unsupported(String),
    /// A field asks for more than the format allows.
    Limit(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::NotAnArchive => write!(f, "not an lmzip archive (bad magic)"),
            Error::Truncated => write!(f, "archive is truncated"),
            Error::Corrupt(why) | Error::CorruptTrailer(why) => {
                write!(f, "archive is corrupt: {why}")
            }
            Error::Unsupported(why) => write!(f, "unsupported archive: {why}"),
            Error::Limit(why) => write!(f, "archive exceeds a limit: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => e.source(),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Error::Truncated
        } else {
            Error::Io(e)
        }
    }
}

/// The archive header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The engine's numerics version that produced the archive; a decoder refuses another.
    pub numerics_version: u16,
    /// Bytes per chunk (the last chunk may be shorter), 1 to [`MAX_CHUNK_SIZE`].
    pub chunk_size: u32,
    /// The original length, when known before compressing (not for a stream).
    pub original_len: Option<u64>,
    /// The model's name, at most [`MAX_MODEL_NAME_LEN`] bytes.
    pub model_name: String,
    /// The SHA-256 of the model's weights; `None` for a model without weights.
    pub model_sha256: Option<[u8; 32]>,
    /// The SHA-256 of the model's tokenizer, for a token-level model (header flag
    /// [`FLAG_TOKENIZER`]).
    pub tokenizer_sha256: Option<[u8; 32]>,
    /// The solid-mode mixer level, 1 to 9, when the chunks are blocks coded by the named model
    /// mixed with adaptive models (header flag [`FLAG_MIXER`], format version 2).
    pub mixer: Option<u8>,
}

/// Header flag: a tokenizer SHA-256 follows the model hash.
pub const FLAG_TOKENIZER: u8 = 0x01;
/// Header flag (format version 2): a mixer level byte follows the hashes.
pub const FLAG_MIXER: u8 = 0x02;

impl Header {
    /// Write the header.
    pub fn write<W: Write>(&self, w: &mut W) -> Result<(), Error> {
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return Err(Error::Limit(format!("chunk size {}", self.chunk_size)));
        }
        if self.model_name.len() > MAX_MODEL_NAME_LEN {
            return Err(Error::Limit("model name longer than 64 bytes".into()));
        }
        let mut b = Vec::with_capacity(64 + MAX_MODEL_NAME_LEN);
        if self.mixer.is_some_and(|level| !(1..=9).contains(&level)) {
            return Err(Error::Limit("mixer level outside 1 to 9".into()));
        }
        b.extend_from_slice(&MAGIC);
        b.push(if self.mixer.is_some() { 2 } else { 1 });
        let mut flags = 0;
        if self.tokenizer_sha256.is_some() {
            flags |= FLAG_TOKENIZER;
        }
        if self.mixer.is_some() {
            flags |= FLAG_MIXER;
        }
        b.push(flags);
        b.extend_from_slice(&self.numerics_version.to_le_bytes());
        b.extend_from_slice(&self.chunk_size.to_le_bytes());
        b.extend_from_slice(&self.original_len.unwrap_or(u64::MAX).to_le_bytes());
        b.push(self.model_name.len() as u8);
        b.extend_from_slice(self.model_name.as_bytes());
        match &self.model_sha256 {
            Some(h) => {
                b.push(32);
                b.extend_from_slice(h);
            }
            None => b.push(0),
        }
        if let Some(h) = &self.tokenizer_sha256 {
            b.extend_from_slice(h);
        }
        if let Some(level) = self.mixer {
            b.push(level);
        }
        let crc = crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        w.write_all(&b)?;
        Ok(())
    }

    /// Read and check a header.
    pub fn read<R: Read>(r: &mut R) -> Result<Header, Error> {
        let mut fixed = [0u8; 25];
        let got = read_up_to(r, &mut fixed)?;
        if got < MAGIC.len() {
            return Err(if fixed[..got] == MAGIC[..got] {
                Error::Truncated
            } else {
                Error::NotAnArchive
            });
        }
        if fixed[..8] != MAGIC {
            return Err(Error::NotAnArchive);
        }
        if got < fixed.len() {
            return Err(Error::Truncated);
        }
        let version = fixed[8];
        if !(1..=FORMAT_VERSION).contains(&version) {
            return Err(Error::Unsupported(format!(
                "format version {version} (this build reads 1 to {FORMAT_VERSION})"
            )));
        }
        let known = match version {
            1 => FLAG_TOKENIZER,
            _ => FLAG_TOKENIZER | FLAG_MIXER,
        };
        if fixed[9] & !known != 0 || (version == 2) != (fixed[9] & FLAG_MIXER != 0) {
            return Err(Error::Unsupported(format!(
                "header flags {:#04x}",
                fixed[9]
            )));
        }
        let numerics_version = u16::from_le_bytes([fixed[10], fixed[11]]);
        let chunk_size = u32::from_le_bytes(fixed[12..16].try_into().expect("BUG: 4 bytes"));
        let original_len = u64::from_le_bytes(fixed[16..24].try_into().expect("BUG: 8 bytes"));
        let name_len = usize::from(fixed[24]);
        if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
            return Err(Error::Limit(format!("chunk size {chunk_size}")));
        }
        if name_len > MAX_MODEL_NAME_LEN {
            return Err(Error::Limit(format!("model name of {name_len} bytes")));
        }
        let mut name = vec![0u8; name_len + 1];
        r.read_exact(&mut name)?;
        let hash_len = name.pop().expect("BUG: nonempty");
        let sha = match hash_len {
            0 => None,
            32 => {
                let mut h = [0u8; 32];
                r.read_exact(&mut h)?;
                Some(h)
            }
            n => return Err(Error::Corrupt(format!("model hash of {n} bytes"))),
        };
        let tokenizer_sha = if fixed[9] & FLAG_TOKENIZER != 0 {
            let mut h = [0u8; 32];
            r.read_exact(&mut h)?;
            Some(h)
        } else {
            None
        };
        let mixer = if fixed[9] & FLAG_MIXER != 0 {
            let mut level = [0u8; 1];
            r.read_exact(&mut level)?;
            Some(level[0])
        } else {
            None
        };
        let mut crc_bytes = [0u8; 4];
        r.read_exact(&mut crc_bytes)?;
        let mut crc = crc32c(&fixed);
        crc = crc32c_append(crc, &name);
        crc = crc32c_append(crc, &[hash_len]);
        if let Some(h) = &sha {
            crc = crc32c_append(crc, h);
        }
        if let Some(h) = &tokenizer_sha {
            crc = crc32c_append(crc, h);
        }
        if let Some(level) = mixer {
            crc = crc32c_append(crc, &[level]);
        }
        if crc != u32::from_le_bytes(crc_bytes) {
            return Err(Error::Corrupt("header checksum mismatch".into()));
        }
        if mixer.is_some_and(|level| !(1..=9).contains(&level)) {
            return Err(Error::Unsupported(format!(
                "mixer level {} (this build has 1 to 9)",
                mixer.unwrap_or(0)
            )));
        }
        let model_name = String::from_utf8(name)
            .map_err(|_| Error::Corrupt("model name is not UTF-8".into()))?;
        Ok(Header {
            numerics_version,
            chunk_size,
            original_len: (original_len != u64::MAX).then_some(original_len),
            model_name,
            model_sha256: sha,
            tokenizer_sha256: tokenizer_sha,
            mixer,
        })
    }

    /// The header's size in bytes when written.
    pub fn encoded_len(&self) -> usize {
        let hashes = 32
            * (usize::from(self.model_sha256.is_some())
                + usize::from(self.tokenizer_sha256.is_some()));
        8 + 17 + self.model_name.len() + 1 + hashes + usize::from(self.mixer.is_some()) + 4
    }
}

/// Read as many bytes as are available, up to `buf.len()`.
fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, Error> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
    Ok(got)
}

/// One chunk as stored in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRecord {
    /// The chunk's original length.
    pub original_len: u32,
    /// Whether the payload is the original bytes (the model would have expanded them).
    pub stored: bool,
    /// Whether the coded bytes are of the block after the x86 branch transform (solid mode
    /// only; `docs/FORMAT.md`).
    pub x86: bool,
    /// CRC-32C of the original bytes.
    pub crc32c: u32,
    /// The coded bytes, or the original bytes if `stored`.
    pub payload: Vec<u8>,
}

/// The trailer: totals and a checksum over the whole original data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Total original length.
    pub original_len: u64,
    /// Number of chunks.
    pub chunks: u64,
    /// CRC-32C of all the original bytes.
    pub crc32c: u32,
}

/// What follows the header: a chunk or the end of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A chunk record.
    Chunk(ChunkRecord),
    /// The end marker and trailer.
    End(Trailer),
}

/// Write one chunk: `coded` is the model's output, or `None` to store `original` as is.
///
/// A coded chunk must be shorter than the original (the caller stores the chunk otherwise).
pub fn write_chunk<W: Write>(
    w: &mut W,
    header: &Header,
    original: &[u8],
    coded: Option<&[u8]>,
) -> Result<(), Error> {
    write_block(w, header, original, coded, false)
}

/// Write a chunk record whose coded bytes are of the chunk after the x86 branch transform when
/// `x86` is set (solid mode only: the header must have a mixer).
pub fn write_block<W: Write>(
    w: &mut W,
    header: &Header,
    original: &[u8],
    coded: Option<&[u8]>,
    x86: bool,
) -> Result<(), Error> {
    if x86 && (coded.is_none() || header.mixer.is_none()) {
        return Err(Error::Limit(
            "only coded blocks of solid archives take the x86 transform".into(),
        ));
    }
    let len = original.len();
    if len == 0 || len > header.chunk_size as usize {
        return Err(Error::Limit(format!("chunk of {len} bytes")));
    }
    let full = len == header.chunk_size as usize;
    let mut b = Vec::with_capacity(16);
    b.push(match (coded.is_some(), full) {
        (true, true) if x86 => TAG_CODED_FULL_X86,
        (true, false) if x86 => TAG_CODED_PART_X86,
        (true, true) => TAG_CODED_FULL,
        (false, true) => TAG_STORED_FULL,
        (true, false) => TAG_CODED_PART,
        (false, false) => TAG_STORED_PART,
    });
    if !full {
        put_varint(&mut b, len as u32);
    }
    if let Some(c) = coded {
        if c.len() >= len {
            return Err(Error::Limit(
                "coded chunk not shorter than its original".into(),
            ));
        }
        put_varint(&mut b, c.len() as u32);
    }
    b.extend_from_slice(&crc32c(original).to_le_bytes());
    w.write_all(&b)?;
    w.write_all(coded.unwrap_or(original))?;
    Ok(())
}

/// Write the end marker and trailer.
pub fn write_end<W: Write>(w: &mut W, trailer: &Trailer) -> Result<(), Error> {
    let mut b = Vec::with_capacity(25);
    b.push(TAG_END);
    b.extend_from_slice(&trailer.original_len.to_le_bytes());
    b.extend_from_slice(&trailer.chunks.to_le_bytes());
    b.extend_from_slice(&trailer.crc32c.to_le_bytes());
    let crc = crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    w.write_all(&b)?;
    Ok(())
}

/// Size of the end marker and trailer.
pub const TRAILER_LEN: usize = 25;

/// Read the next record. Lengths are checked against the header's chunk size before the
/// payload is allocated.
pub fn read_record<R: Read>(r: &mut R, header: &Header) -> Result<Record, Error> {
    let mut tag = [0u8; 1];
    r.read_exact(&mut tag)?;
    let chunk_size = header.chunk_size;
    let (coded, full) = match tag[0] {
        TAG_END => {
            let mut b = [0u8; TRAILER_LEN];
            b[0] = TAG_END;
            r.read_exact(&mut b[1..])?;
            let crc = u32::from_le_bytes(b[21..25].try_into().expect("BUG: 4 bytes"));
            if crc != crc32c(&b[..21]) {
                return Err(Error::CorruptTrailer("trailer checksum mismatch".into()));
            }
            return Ok(Record::End(Trailer {
                original_len: u64::from_le_bytes(b[1..9].try_into().expect("BUG: 8 bytes")),
                chunks: u64::from_le_bytes(b[9..17].try_into().expect("BUG: 8 bytes")),
                crc32c: u32::from_le_bytes(b[17..21].try_into().expect("BUG: 4 bytes")),
            }));
        }
        TAG_CODED_FULL => (true, true),
        TAG_STORED_FULL => (false, true),
        TAG_CODED_PART => (true, false),
        TAG_STORED_PART => (false, false),
        TAG_CODED_FULL_X86 | TAG_CODED_PART_X86 if header.mixer.is_some() => {
            (true, tag[0] == TAG_CODED_FULL_X86)
        }
        t => return Err(Error::Corrupt(format!("unknown record tag {t:#04x}"))),
    };
    let x86 = matches!(tag[0], TAG_CODED_FULL_X86 | TAG_CODED_PART_X86);
    let original_len = if full {
        chunk_size
    } else {
        let n = get_varint(r)?;
        if n == 0 || n >= chunk_size {
            return Err(Error::Corrupt(format!(
                "partial chunk of {n} bytes with chunk size {chunk_size}"
            )));
        }
        n
    };
    let payload_len = if coded {
        let n = get_varint(r)?;
        if n >= original_len {
            return Err(Error::Corrupt(format!(
                "coded chunk of {n} bytes for {original_len} original bytes"
            )));
        }
        n
    } else {
        original_len
    };
    let mut crc = [0u8; 4];
    r.read_exact(&mut crc)?;
    // Bounded: payload_len < chunk_size <= MAX_CHUNK_SIZE, checked by Header::read; and
    // grown only as the bytes arrive, so a truncated archive's claim costs nothing.
    let mut payload = Vec::with_capacity((payload_len as usize).min(1 << 16));
    r.take(u64::from(payload_len)).read_to_end(&mut payload)?;
    if payload.len() != payload_len as usize {
        return Err(Error::Truncated);
    }
    Ok(Record::Chunk(ChunkRecord {
        original_len,
        stored: !coded,
        x86,
        crc32c: u32::from_le_bytes(crc),
        payload,
    }))
}

fn put_varint(b: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn get_varint<R: Read>(r: &mut R) -> Result<u32, Error> {
    let mut v: u64 = 0;
    for i in 0..5 {
        let mut byte = [0u8; 1];
        r.read_exact(&mut byte)?;
        v |= u64::from(byte[0] & 0x7F) << (7 * i);
        if byte[0] & 0x80 == 0 {
            if (i > 0 && byte[0] == 0) || v > u64::from(u32::MAX) {
                return Err(Error::Corrupt("malformed length".into()));
            }
            return Ok(v as u32);
        }
    }
    Err(Error::Corrupt("malformed length".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lengths and counts past 2^32 (a 4 GiB-plus input) survive the header and the trailer.
    #[test]
    fn totals_past_four_gibibytes_round_trip() {
        let header = Header {
            numerics_version: 1,
            chunk_size: MAX_CHUNK_SIZE,
            original_len: Some((5 << 32) + 7),
            model_name: "baseline".into(),
            model_sha256: None,
            tokenizer_sha256: None,
            mixer: None,
        };
        let trailer = Trailer {
            original_len: (5 << 32) + 7,
            chunks: (3 << 32) + 1,
            crc32c: 0xdead_beef,
        };
        let mut bytes = Vec::new();
        header.write(&mut bytes).unwrap();
        write_end(&mut bytes, &trailer).unwrap();
        let mut r = &bytes[..];
        assert_eq!(Header::read(&mut r).unwrap(), header);
        match read_record(&mut r, &header).unwrap() {
            Record::End(t) => assert_eq!(t, trailer),
            other => panic!("{other:?}"),
        }
    }

    fn header() -> Header {
        Header {
            numerics_version: 3,
            chunk_size: 2048,
            original_len: None,
            model_name: "m".into(),
            model_sha256: Some([7; 32]),
            tokenizer_sha256: None,
            mixer: None,
        }
    }

    fn token_header() -> Header {
        Header {
            tokenizer_sha256: Some([9; 32]),
            ..header()
        }
    }

    fn mixer_header() -> Header {
        Header {
            mixer: Some(6),
            ..header()
        }
    }

    #[test]
    fn header_round_trip_and_len() {
        for h in [header(), token_header(), mixer_header()] {
            let mut b = Vec::new();
            h.write(&mut b).unwrap();
            assert_eq!(b.len(), h.encoded_len());
            assert_eq!(Header::read(&mut &b[..]).unwrap(), h);
        }
    }

    /// x86-transformed blocks: tags 05/06, in solid archives only.
    #[test]
    fn x86_blocks_need_a_mixer() {
        let (plain, solid) = (header(), mixer_header());
        let mut b = Vec::new();
        assert!(write_block(&mut b, &plain, b"abcdef", Some(b"x"), true).is_err());
        assert!(write_block(&mut b, &solid, b"abcdef", None, true).is_err());
        write_block(&mut b, &solid, b"abcdef", Some(b"xy"), true).unwrap();
        assert_eq!(b[0], TAG_CODED_PART_X86);
        let Record::Chunk(c) = read_record(&mut &b[..], &solid).unwrap() else {
            panic!("not a chunk")
        };
        assert!(c.x86 && !c.stored && c.payload == b"xy");
        assert!(matches!(
            read_record(&mut &b[..], &plain),
            Err(Error::Corrupt(_))
        ));
    }

    /// Version 1 stays what earlier builds wrote; the mixer makes version 2, and the version
    /// and the flag must agree.
    #[test]
    fn versions_follow_the_mixer() {
        let (mut v1, mut v2) = (Vec::new(), Vec::new());
        header().write(&mut v1).unwrap();
        mixer_header().write(&mut v2).unwrap();
        assert_eq!((v1[8], v1[9]), (1, 0));
        assert_eq!((v2[8], v2[9]), (2, FLAG_MIXER));
        for (bytes, version, flags) in [(&v1, 2, 0), (&v2, 1, FLAG_MIXER), (&v2, 3, FLAG_MIXER)] {
            let mut b = bytes.clone();
            (b[8], b[9]) = (version, flags);
            let n = b.len();
            let crc = crc32c(&b[..n - 4]);
            b[n - 4..].copy_from_slice(&crc.to_le_bytes());
            assert!(matches!(
                Header::read(&mut &b[..]),
                Err(Error::Unsupported(_))
            ));
        }
        let mut bad = v2.clone();
        let n = bad.len();
        bad[n - 5] = 10;
        let crc = crc32c(&bad[..n - 4]);
        bad[n - 4..].copy_from_slice(&crc.to_le_bytes());
        let err = Header::read(&mut &bad[..]).unwrap_err();
        assert!(err.to_string().contains("mixer level 10"), "{err}");
        let too_high = Header {
            mixer: Some(10),
            ..header()
        };
        assert!(too_high.write(&mut Vec::new()).is_err());
    }

    #[test]
    fn header_corruption_is_detected() {
        let mut b = Vec::new();
        header().write(&mut b).unwrap();
        let mut t = Vec::new();
        token_header().write(&mut t).unwrap();
        for b in [b, t] {
            for i in 0..b.len() {
                for bit in 0..8 {
                    let mut c = b.clone();
                    c[i] ^= 1 << bit;
                    assert!(Header::read(&mut &c[..]).is_err(), "byte {i} bit {bit}");
                }
            }
            for n in 0..b.len() {
                assert!(Header::read(&mut &b[..n]).is_err());
            }
        }
    }

    #[test]
    fn foreign_data_is_not_an_archive() {
        assert!(matches!(
            Header::read(&mut &b"\x1f\x8b\x08\x00 gzip data here, not lmzip"[..]),
            Err(Error::NotAnArchive)
        ));
        assert!(matches!(Header::read(&mut &b""[..]), Err(Error::Truncated)));
    }

    #[test]
    fn varints_round_trip_and_reject_overlong() {
        for v in [0u32, 1, 127, 128, 300, 1 << 21, u32::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(get_varint(&mut &b[..]).unwrap(), v);
        }
        assert!(get_varint(&mut &[0x80u8, 0x00][..]).is_err());
        assert!(get_varint(&mut &[0xFFu8, 0xFF, 0xFF, 0xFF, 0x7F][..]).is_err());
    }

    #[test]
    fn oversized_lengths_are_rejected_before_allocation() {
        let h = header();
        let mut b = vec![TAG_CODED_PART];
        put_varint(&mut b, 10);
        put_varint(&mut b, 4000);
        assert!(matches!(
            read_record(&mut &b[..], &h),
            Err(Error::Corrupt(_))
        ));
    }
}
