//! `lmzip._lmzip`: the Rust side of the Python package `lmzip` (see `python/lmzip`).
//!
//! Thin: every choice of model, level and mode is [`lmzip::options`]'s, so Python writes the
//! archives the command line writes. Coding runs with the GIL released; a Python file object is
//! read or written with the GIL taken back for each call. Every error is raised as
//! `lmzip.Error` (a `ValueError`) with lmzip's message.

use clap::Parser;
use lmzip::options::{self, ArchiveWriter, Assembler, Block, Plan};
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::sync::Mutex;

create_exception!(
    _lmzip,
    Error,
    PyValueError,
    "An lmzip error: bad options, an unknown model, or an archive that is truncated, corrupt or not lmzip's."
);

fn error(e: impl std::fmt::Display) -> PyErr {
    Error::new_err(e.to_string())
}

/// What to compress with, as the command line's flags: checked by [`Options::plan`].
#[pyclass(module = "lmzip._lmzip", frozen)]
#[derive(Clone)]
struct Options {
    model: Option<String>,
    level: Option<i64>,
    block_size: Option<i64>,
    chunks: bool,
    chunk_size: Option<i64>,
    threads: i64,
}

#[pymethods]
impl Options {
    #[new]
    #[pyo3(signature = (*, model=None, level=None, block_size=None, chunks=false, chunk_size=None, threads=0))]
    fn new(
        model: Option<String>,
        level: Option<i64>,
        block_size: Option<i64>,
        chunks: bool,
        chunk_size: Option<i64>,
        threads: i64,
    ) -> Options {
        Options {
            model,
            level,
            block_size,
            chunks,
            chunk_size,
            threads,
        }
    }
}

impl Options {
    /// Check the numbers' ranges, then the rest as the command line does.
    fn plan(&self) -> PyResult<Plan> {
        let mut o = options::Options::new();
        o.model(self.model.as_deref())
            .chunks(self.chunks)
            .threads(threads(self.threads)?);
        if let Some(level) = self.level {
            o.level(
                u8::try_from(level)
                    .ok()
                    .filter(|l| (1..=9).contains(l))
                    .ok_or_else(|| error(format!("the level must be 1 to 9, not {level}")))?,
            );
        }
        if let Some(size) = self.block_size {
            o.block_size(size_arg("block size", size)?);
        }
        if let Some(size) = self.chunk_size {
            o.chunk_size(size_arg("chunk size", size)?);
        }
        o.plan().map_err(error)
    }
}

fn threads(n: i64) -> PyResult<usize> {
    usize::try_from(n).map_err(|_| error(format!("threads must be 0 or more, not {n}")))
}

/// Decoding's resources: `memory` is a byte count or a size as the command line takes it
/// (`"800M"`, `"2G"`, `"max"`); `None` means the default limit.
fn resources(threads: i64, memory: Option<&Bound<'_, PyAny>>) -> PyResult<options::Resources> {
    let memory =
        match memory {
            None => None,
            Some(m) => Some(match m.extract::<u64>() {
                Ok(bytes) => bytes,
                Err(_) => lmzip::memory::parse_size(&m.extract::<String>().map_err(|_| {
                    error("memory must be a number of bytes or a size such as '800M'")
                })?)
                .map_err(error)?,
            }),
        };
    Ok(options::Resources {
        threads: self::threads(threads)?,
        memory,
    })
}

fn size_arg(what: &str, n: i64) -> PyResult<u32> {
    u32::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| error(format!("the {what} must be 1 to 16 MiB, not {n}")))
}

/// Compress `data` with `options` into a whole archive.
#[pyfunction]
fn compress<'py>(py: Python<'py>, data: &[u8], options: &Options) -> PyResult<Bound<'py, PyBytes>> {
    let options = options.clone();
    let archive = py.detach(|| -> PyResult<Vec<u8>> {
        let plan = options.plan()?;
        plan.compress(data, Some(data.len() as u64), Vec::new())
            .map_err(error)
    })?;
    Ok(PyBytes::new(py, &archive))
}

/// Decompress a whole archive, with the model it names (or `model`), within `memory`.
#[pyfunction]
#[pyo3(signature = (archive, *, model=None, threads=0, memory=None))]
fn decompress<'py>(
    py: Python<'py>,
    archive: &[u8],
    model: Option<String>,
    threads: i64,
    memory: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let resources = self::resources(threads, memory.as_ref())?;
    let data = py.detach(|| {
        let mut out = Vec::new();
        options::decompress(archive, model.as_deref(), resources, &mut out).map(|_| out)
    });
    Ok(PyBytes::new(py, &data.map_err(error)?))
}

/// The bits each byte of `data` costs, as little-endian f64 values (numpy reads them).
#[pyfunction]
fn code_lengths<'py>(
    py: Python<'py>,
    data: &[u8],
    options: &Options,
) -> PyResult<Bound<'py, PyBytes>> {
    let options = options.clone();
    let bits = py.detach(|| -> PyResult<Vec<u8>> {
        let plan = options.plan()?;
        Ok(plan
            .code_lengths(data)
            .into_iter()
            .flat_map(f64::to_le_bytes)
            .collect())
    })?;
    Ok(PyBytes::new(py, &bits))
}

/// What an archive holds, read without decoding (`lmzip info`).
#[pyfunction]
fn info<'py>(py: Python<'py>, archive: &[u8]) -> PyResult<Bound<'py, PyDict>> {
    let i = lmzip::inspect(archive).map_err(error)?;
    let d = PyDict::new(py);
    d.set_item("model", &i.header.model_name)?;
    d.set_item(
        "model_sha256",
        i.header.model_sha256.map(|h| lmzip::hex(&h)),
    )?;
    d.set_item("level", i.header.mixer)?;
    d.set_item("solid", i.header.mixer.is_some())?;
    d.set_item("chunk_size", i.header.chunk_size)?;
    d.set_item("numerics_version", i.header.numerics_version)?;
    d.set_item("archive_len", i.archive_len)?;
    d.set_item("original_len", i.original_len)?;
    d.set_item("chunks", i.chunks)?;
    d.set_item("stored_chunks", i.stored_chunks)?;
    d.set_item("x86_chunks", i.x86_chunks)?;
    d.set_item("coded_bytes", i.coded_bytes)?;
    d.set_item("coded_original_bytes", i.coded_original_bytes)?;
    Ok(d)
}

/// What a model is: name, kind, parameters, SHA-256 (hex, or None) and context.
#[pyfunction]
fn model_info<'py>(py: Python<'py>, name: String) -> PyResult<Bound<'py, PyDict>> {
    let (kind, parameters, id, context) = py
        .detach(|| -> Result<_, String> {
            let model = lmzip_models::registry::by_name(&name).map_err(|e| e.0)?;
            let kind = match &model {
                lmzip_models::registry::AnyModel::Baseline(_) => "baseline",
                lmzip_models::registry::AnyModel::Transformer(_) => "transformer",
                lmzip_models::registry::AnyModel::Llm(_) => "llm",
            };
            let parameters = model.parameters();
            let (id, context) = lmzip_models::with_model!(model, m => {
                (lmzip::Model::id(&m), lmzip::Model::max_chunk_len(&m))
            });
            Ok((kind, parameters, id, context))
        })
        .map_err(error)?;
    let d = PyDict::new(py);
    d.set_item("name", &id.name)?;
    d.set_item("kind", kind)?;
    d.set_item("parameters", parameters)?;
    d.set_item("sha256", id.sha256.map(|h| lmzip::hex(&h)))?;
    d.set_item("context", context)?;
    Ok(d)
}

/// Where a stream goes: a Python file object, buffered.
type Sink = Box<dyn Write + Send>;

/// A Python object with `read`/`write`, called with the GIL taken back.
struct PyFile(Py<PyAny>);

impl Write for PyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Python::attach(|py| {
            let n = self
                .0
                .bind(py)
                .call_method1("write", (PyBytes::new(py, buf),))?;
            // Raw files may write less and say so; `None` means all (buffered files).
            Ok(if n.is_none() { buf.len() } else { n.extract()? })
        })
        .map_err(|e: PyErr| io::Error::other(e.to_string()))
    }

    fn flush(&mut self) -> io::Result<()> {
        Python::attach(|py| self.0.bind(py).call_method0("flush").map(drop))
            .map_err(|e| io::Error::other(e.to_string()))
    }
}

impl Read for PyFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Python::attach(|py| {
            let got = self.0.bind(py).call_method1("read", (buf.len(),))?;
            let bytes: &[u8] = got.extract()?;
            if bytes.len() > buf.len() {
                return Err(Error::new_err("read() returned more bytes than asked"));
            }
            buf[..bytes.len()].copy_from_slice(bytes);
            Ok(bytes.len())
        })
        .map_err(|e: PyErr| io::Error::other(e.to_string()))
    }
}

/// A Python file object to write, buffered.
fn sink(target: &Bound<'_, PyAny>) -> Sink {
    Box::new(BufWriter::with_capacity(
        1 << 16,
        PyFile(target.clone().unbind()),
    ))
}

/// A Python file object to read, buffered.
fn source(target: &Bound<'_, PyAny>) -> Box<dyn Read + Send> {
    Box::new(BufReader::with_capacity(
        1 << 16,
        PyFile(target.clone().unbind()),
    ))
}

/// A streaming compressor (`lmzip.open(..., "wb")`).
#[pyclass(module = "lmzip._lmzip")]
struct Writer {
    inner: Mutex<Option<Box<dyn ArchiveWriter<Sink>>>>,
}

#[pymethods]
impl Writer {
    #[new]
    fn new(py: Python<'_>, target: &Bound<'_, PyAny>, options: &Options) -> PyResult<Writer> {
        let sink = sink(target);
        let options = options.clone();
        let writer = py.detach(|| options.plan()?.writer(sink, None).map_err(error))?;
        Ok(Writer {
            inner: Mutex::new(Some(writer)),
        })
    }

    /// Take all of `data`; returns its length.
    fn write(&self, py: Python<'_>, data: &[u8]) -> PyResult<usize> {
        let mut guard = self.inner.lock().map_err(error)?;
        let w = guard
            .as_mut()
            .ok_or_else(|| error("write to a closed lmzip file"))?;
        py.detach(|| w.write_all(data).map_err(|e| error(lmzip::Error::from(e))))?;
        Ok(data.len())
    }

    /// Code what is left and write the trailer (once; later calls do nothing).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self.inner.lock().map_err(error)?.take();
        if let Some(w) = taken {
            py.detach(|| w.finish().map(drop).map_err(error))?;
        }
        Ok(())
    }
}

/// A streaming decompressor (`lmzip.open(..., "rb")`).
#[pyclass(module = "lmzip._lmzip")]
struct Reader {
    inner: Mutex<Option<Box<dyn Read + Send>>>,
}

#[pymethods]
impl Reader {
    #[new]
    #[pyo3(signature = (source, *, model=None, threads=0, memory=None))]
    fn new(
        py: Python<'_>,
        source: &Bound<'_, PyAny>,
        model: Option<String>,
        threads: i64,
        memory: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Reader> {
        let input = self::source(source);
        let resources = self::resources(threads, memory.as_ref())?;
        let reader = py
            .detach(|| options::reader(input, model.as_deref(), resources))
            .map_err(error)?;
        Ok(Reader {
            inner: Mutex::new(Some(reader)),
        })
    }

    /// Up to `size` original bytes; empty at the end.
    fn read<'py>(&self, py: Python<'py>, size: usize) -> PyResult<Bound<'py, PyBytes>> {
        let mut guard = self.inner.lock().map_err(error)?;
        let r = guard
            .as_mut()
            .ok_or_else(|| error("read from a closed lmzip file"))?;
        let size = size.min(1 << 24);
        let buf = py.detach(|| -> io::Result<Vec<u8>> {
            let mut buf = vec![0; size];
            let mut n = 0;
            // Fill as far as the decoder goes without waiting on more input than needed.
            while n < size {
                let got = r.read(&mut buf[n..])?;
                if got == 0 {
                    break;
                }
                n += got;
            }
            buf.truncate(n);
            Ok(buf)
        });
        Ok(PyBytes::new(
            py,
            &buf.map_err(|e| error(lmzip::Error::from(e)))?,
        ))
    }

    /// Drop the decoder.
    fn close(&self) -> PyResult<()> {
        self.inner.lock().map_err(error)?.take();
        Ok(())
    }
}

/// The header of an archive of `original_len` bytes under `options`, as bytes: the start of an
/// archive assembled from blocks coded apart.
#[pyfunction]
#[pyo3(signature = (options, original_len))]
fn header<'py>(
    py: Python<'py>,
    options: &Options,
    original_len: Option<u64>,
) -> PyResult<Bound<'py, PyBytes>> {
    let plan = options.plan()?;
    let mut out = Vec::new();
    plan.header(original_len)
        .write(&mut out)
        .map_err(|e| error(lmzip::Error::from(e)))?;
    Ok(PyBytes::new(py, &out))
}

/// The block size (solid mode) or chunk size of `options`.
#[pyfunction]
fn block_size(py: Python<'_>, options: &Options) -> PyResult<u32> {
    let options = options.clone();
    py.detach(|| options.plan().map(|p| p.chunk_size()))
}

/// Code one block: `(record, original_len, crc32c)`.
#[pyfunction]
fn code_block<'py>(
    py: Python<'py>,
    data: &[u8],
    options: &Options,
) -> PyResult<(Bound<'py, PyBytes>, u64, u32)> {
    let options = options.clone();
    let block = py.detach(|| options.plan()?.code_block(data).map_err(error))?;
    Ok((
        PyBytes::new(py, &block.record),
        block.original_len,
        block.crc32c,
    ))
}

/// Writes an archive to a path from blocks coded apart, in order.
#[pyclass(module = "lmzip._lmzip")]
struct BlockWriter {
    inner: Mutex<Option<Assembler<BufWriter<File>>>>,
}

#[pymethods]
impl BlockWriter {
    #[new]
    #[pyo3(signature = (path, options, original_len))]
    fn new(
        path: std::path::PathBuf,
        options: &Options,
        original_len: Option<u64>,
    ) -> PyResult<Self> {
        let header = options.plan()?.header(original_len);
        let file = File::create(&path).map_err(|e| error(format!("{}: {e}", path.display())))?;
        let assembler = Assembler::new(BufWriter::new(file), header).map_err(error)?;
        Ok(BlockWriter {
            inner: Mutex::new(Some(assembler)),
        })
    }

    /// Append a block from [`code_block`].
    fn push(&self, record: &[u8], original_len: u64, crc32c: u32) -> PyResult<()> {
        let mut guard = self.inner.lock().map_err(error)?;
        let a = guard
            .as_mut()
            .ok_or_else(|| error("the archive is finished"))?;
        a.push(&Block {
            record: record.to_vec(),
            original_len,
            crc32c,
        })
        .map_err(error)
    }

    /// Write the trailer.
    fn finish(&self) -> PyResult<()> {
        let taken = self.inner.lock().map_err(error)?.take();
        match taken {
            Some(a) => a.finish().map(drop).map_err(error),
            None => Err(error("the archive is finished")),
        }
    }
}

/// `lmzip bench` with these command-line arguments; returns results.json's text.
#[pyfunction]
#[pyo3(name = "bench")]
fn run_bench(py: Python<'_>, args: Vec<String>) -> PyResult<String> {
    #[derive(Parser)]
    struct Bench {
        #[command(flatten)]
        args: lmzip_bench::report::BenchArgs,
    }
    let dir = tempfile::tempdir().map_err(error)?;
    let mut argv = vec!["bench".to_string()];
    argv.extend(args);
    argv.push("--out".into());
    argv.push(dir.path().display().to_string());
    let parsed = Bench::try_parse_from(argv).map_err(error)?;
    py.detach(|| -> PyResult<String> {
        lmzip_bench::report::run(&parsed.args).map_err(|e| error(format!("{e:#}")))?;
        std::fs::read_to_string(dir.path().join("results.json")).map_err(error)
    })
}

/// The extension module.
#[pymodule]
fn _lmzip(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("Error", m.py().get_type::<Error>())?;
    m.add("NUMERICS_VERSION", lmzip::NUMERICS_VERSION)?;
    m.add("DEFAULT_MODEL", lmzip_models::registry::DEFAULT_MODEL)?;
    m.add_class::<Options>()?;
    m.add_class::<Writer>()?;
    m.add_class::<Reader>()?;
    m.add_class::<BlockWriter>()?;
    m.add_function(wrap_pyfunction!(compress, m)?)?;
    m.add_function(wrap_pyfunction!(decompress, m)?)?;
    m.add_function(wrap_pyfunction!(code_lengths, m)?)?;
    m.add_function(wrap_pyfunction!(model_info, m)?)?;
    m.add_function(wrap_pyfunction!(info, m)?)?;
    m.add_function(wrap_pyfunction!(header, m)?)?;
    m.add_function(wrap_pyfunction!(block_size, m)?)?;
    m.add_function(wrap_pyfunction!(code_block, m)?)?;
    m.add_function(wrap_pyfunction!(run_bench, m)?)?;
    Ok(())
}
