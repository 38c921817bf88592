use std::io;

/// Errors of compression and decompression.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error of the underlying reader or writer.
    Io(io::Error),
    /// The input is not an lmzip archive.
    NotAnArchive,
    /// The archive ends early.
    Truncated,
    /// The archive's bytes are inconsistent: a checksum failed or a field is impossible.
    Corrupt(String),
    /// A format or numerics version this build does not read.
    Unsupported(String),
    /// The archive was made with another model than the one given.
    ModelMismatch {
        /// The model recorded in the archive.
        expected: String,
        /// The model given to the decoder.
        found: String,
    },
    /// A field asks for more than the format allows.
    Limit(String),
    /// Invalid options (builder misuse).
    Config(String),
    /// The input's length differs from the length announced in the header (a file that grew
    /// or shrank while it was read).
    InputChanged {
        /// The length announced (the file's size when it was opened).
        announced: u64,
        /// The bytes actually read.
        read: u64,
    },
    /// The model asked for cannot be had (unknown name, unreadable or invalid files).
    Model(String),
    /// An error in one chunk, with where it is.
    Chunk {
        /// Index of the chunk, from 0.
        index: u64,
        /// Offset of the chunk in the original data.
        offset: u64,
        /// What went wrong.
        source: Box<Error>,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::NotAnArchive => write!(f, "not an lmzip archive"),
            Error::Truncated => write!(f, "archive is truncated"),
            Error::Corrupt(why) => write!(f, "archive is corrupt: {why}"),
            Error::Unsupported(why) => write!(f, "unsupported archive: {why}"),
            Error::ModelMismatch { expected, found } => write!(
                f,
                "archive was made with model {expected}; the model at hand is {found}"
            ),
            Error::Limit(why) => write!(f, "limit exceeded: {why}"),
            Error::Config(why) => write!(f, "invalid options: {why}"),
            Error::InputChanged { announced, read } => write!(
                f,
                "the input changed while it was read: {announced} bytes when opened, {read} read"
            ),
            Error::Model(why) => write!(f, "{why}"),
            Error::Chunk {
                index,
                offset,
                source,
            } => write!(f, "chunk {index} at byte {offset}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // An I/O error's text, and a chunk's error, are already part of this error's text:
            // no source, or messages that print the chain would say them twice.
            Error::Io(e) => e.source(),
            _ => None,
        }
    }
}

impl From<lmzip_format::Error> for Error {
    fn from(e: lmzip_format::Error) -> Error {
        use lmzip_format::Error as F;
        match e {
            F::Io(e) => Error::Io(e),
            F::NotAnArchive => Error::NotAnArchive,
            F::Truncated => Error::Truncated,
            F::Corrupt(s) | F::CorruptTrailer(s) => Error::Corrupt(s),
            F::Unsupported(s) => Error::Unsupported(s),
            F::Limit(s) => Error::Limit(s),
            other => Error::Corrupt(other.to_string()),
        }
    }
}

impl From<io::Error> for Error {
    /// Unwraps an [`Error`] that crossed a `Read`/`Write` boundary as an `io::Error`.
    fn from(e: io::Error) -> Error {
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            let inner = e.into_inner().expect("BUG: checked above");
            return *inner.downcast::<Error>().expect("BUG: checked above");
        }
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return Error::Truncated;
        }
        Error::Io(e)
    }
}

impl From<Error> for io::Error {
    /// Keeps the [`Error`] inside, so that `Error::from` can recover it.
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(e) => e,
            Error::Truncated => io::Error::new(io::ErrorKind::UnexpectedEof, e),
            Error::Config(_) => io::Error::new(io::ErrorKind::InvalidInput, e),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}
