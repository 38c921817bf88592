//! Files in, files out: suffixes, temporary outputs renamed on success, removal of inputs only
//! after their output is complete, the input's mode, times and owner on the output, and the
//! refusals that keep a user's data safe (an output that is the input, a symbolic link, a
//! terminal).

use crate::{CodecArgs, Outcome, cleanup, escaped, is_broken_pipe};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressBarIter, ProgressStyle};
use lmzip_models::registry::{self as models, ArchiveModel};
use std::fs::{File, FileTimes, Metadata};
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The suffix of lmzip archives.
const SUFFIX: &str = "lmz";

/// Compress, decompress or test every file named (or standard input).
pub fn run(args: &CodecArgs) -> Outcome {
    let stdin_only = args.files.is_empty() || args.files.iter().all(|f| f.as_os_str() == "-");
    if args.output.is_some() && args.files.len() > 1 {
        bail!("-o takes one input file");
    }
    if stdin_only {
        return stream(args).map(|()| true);
    }
    let mut ok = true;
    for path in &args.files {
        let result = if path.as_os_str() == "-" {
            stream(args)
        } else if args.test {
            test_file(args, path)
        } else if args.decompress {
            decompress_file(args, path)
        } else {
            compress_file(args, path)
        };
        if let Err(e) = result {
            if is_broken_pipe(&e) {
                return Err(e);
            }
            report_failure(path, &e);
            ok = false;
        }
    }
    Ok(ok)
}

/// Say why a file failed, escaped for the terminal.
fn report_failure(path: &Path, e: &anyhow::Error) {
    eprintln!("lmzip: {}", escaped(&format!("{}: {e:#}", path.display())));
}

/// Standard input to standard output (or to `-o`).
fn stream(args: &CodecArgs) -> Result<()> {
    if (args.decompress || args.test) && io::stdin().is_terminal() && !args.force {
        bail!("refusing to read compressed data from a terminal (use -f to force)");
    }
    if !args.test && args.output.is_none() {
        require_stdout()?;
    }
    let input = BufReader::with_capacity(1 << 16, io::stdin().lock());
    let progress = progress_bar(args, None);
    let input = progress.wrap_read(input);
    if args.test || args.decompress {
        let mut sink: Box<dyn Write> = if args.test {
            Box::new(io::sink())
        } else if let Some(out) = &args.output {
            return decode_to_path(args, input, out, None).map(|_| ());
        } else {
            Box::new(io::stdout().lock())
        };
        decode(args, input, &mut sink)?;
        sink.flush()?;
        progress.finish_and_clear();
        return Ok(());
    }
    if let Some(out) = &args.output {
        encode_to_path(args, input, None, out, None)?;
        progress.finish_and_clear();
        return Ok(());
    }
    if io::stdout().is_terminal() && !args.force {
        bail!("refusing to write compressed data to a terminal (use -f to force)");
    }
    let mut out = io::stdout().lock();
    encode(args, input, None, &mut out)?;
    out.flush()?;
    progress.finish_and_clear();
    Ok(())
}

fn compress_file(args: &CodecArgs, path: &Path) -> Result<()> {
    if path.extension().is_some_and(|e| e == SUFFIX) && !args.force {
        bail!("already has .{SUFFIX} suffix (use -f to compress it anyway)");
    }
    let (input, meta, progress) = open_input(args, path)?;
    let len = meta.len();
    let start = Instant::now();
    if args.stdout {
        require_stdout()?;
        let mut out = io::stdout().lock();
        if out.is_terminal() && !args.force {
            bail!("refusing to write compressed data to a terminal (use -f to force)");
        }
        encode(args, input, Some(len), &mut out)?;
        out.flush()?;
        progress.finish_and_clear();
        return Ok(());
    }
    let out_path = match &args.output {
        Some(o) => o.clone(),
        None => with_suffix(path),
    };
    refuse_same_file(&meta, &out_path)?;
    let archive_len = encode_to_path(args, input, Some(len), &out_path, Some(&meta))?;
    progress.finish_and_clear();
    report(args, path, len, archive_len, start);
    remove_input_unless_kept(args, path)
}

fn decompress_file(args: &CodecArgs, path: &Path) -> Result<()> {
    let (input, meta, progress) = open_input(args, path)?;
    let len = meta.len();
    let start = Instant::now();
    if args.stdout {
        require_stdout()?;
        let mut out = io::stdout().lock();
        decode(args, input, &mut out)?;
        out.flush()?;
        progress.finish_and_clear();
        return Ok(());
    }
    let out_path = match &args.output {
        Some(o) => o.clone(),
        None => without_suffix(path)?,
    };
    refuse_same_file(&meta, &out_path)?;
    let original = decode_to_path(args, input, &out_path, Some(&meta))?;
    progress.finish_and_clear();
    report(args, path, original, len, start);
    remove_input_unless_kept(args, path)
}

fn test_file(args: &CodecArgs, path: &Path) -> Result<()> {
    let (input, _, progress) = open_input(args, path)?;
    let n = decode(args, input, &mut io::sink())?;
    progress.finish_and_clear();
    if args.verbose {
        eprintln!("{}: OK ({n} bytes)", path.display());
    }
    Ok(())
}

/// Open an input file behind a progress bar sized to it.
fn open_input(
    args: &CodecArgs,
    path: &Path,
) -> Result<(ProgressBarIter<BufReader<File>>, Metadata, ProgressBar)> {
    let link = path.symlink_metadata().context("cannot open")?;
    if link.file_type().is_symlink() && !args.force {
        bail!("is a symbolic link (use -f to follow it)");
    }
    let file = open_regular(path)?;
    let meta = file.metadata()?;
    let progress = progress_bar(args, Some(meta.len()));
    let input = progress.wrap_read(BufReader::with_capacity(1 << 16, file));
    Ok((input, meta, progress))
}

/// Open `path` for reading if it is a regular file (after links). A FIFO, socket or device is
/// skipped without being opened (opening a FIFO would block until a writer comes): read it
/// through standard input instead. The file is checked again once open, in case it was
/// replaced in between.
fn open_regular(path: &Path) -> Result<File> {
    let not_regular =
        || anyhow::anyhow!("not a regular file; skipped (give it on standard input instead)");
    let meta = std::fs::metadata(path).context("cannot open")?;
    if meta.is_dir() {
        bail!("is a directory; skipped");
    }
    if !meta.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .context("cannot open")?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    Ok(file)
}

/// Remove an input whose output is complete, unless `-k` or `-o` keeps it.
fn remove_input_unless_kept(args: &CodecArgs, path: &Path) -> Result<()> {
    if !args.keep && args.output.is_none() {
        std::fs::remove_file(path).context("cannot remove the input")?;
    }
    Ok(())
}

/// Compress into a temporary file beside `out`, check its structure, then rename it to `out`.
/// Returns the archive's size.
fn encode_to_path<R: Read>(
    args: &CodecArgs,
    input: R,
    len: Option<u64>,
    out: &Path,
    like: Option<&Metadata>,
) -> Result<u64> {
    if refuse_existing(args, out)? == Existing::DevNull {
        let mut w = BufWriter::with_capacity(1 << 16, dev_null(out)?);
        encode(args, input, len, &mut w)?;
        w.flush()?;
        return Ok(0);
    }
    let mut tmp = Temporary::beside(out)?;
    {
        let mut w = BufWriter::with_capacity(1 << 16, tmp.file());
        encode(args, input, len, &mut w)?;
        w.flush()?;
    }
    tmp.file().sync_all()?;
    // Read the archive back and check that its records and trailer fit together before the
    // input can be removed.
    let info = lmzip::inspect(BufReader::new(File::open(tmp.path())?))
        .context("the archive just written does not read back")?;
    tmp.persist(args, out, like)?;
    Ok(info.archive_len)
}

/// Decompress into a temporary file beside `out` and rename it on success. Returns the size.
fn decode_to_path<R: Read>(
    args: &CodecArgs,
    input: R,
    out: &Path,
    like: Option<&Metadata>,
) -> Result<u64> {
    if refuse_existing(args, out)? == Existing::DevNull {
        let mut w = BufWriter::with_capacity(1 << 16, dev_null(out)?);
        let n = decode(args, input, &mut w)?;
        w.flush()?;
        return Ok(n);
    }
    let mut tmp = Temporary::beside(out)?;
    let n = {
        let mut w = BufWriter::with_capacity(1 << 16, tmp.file());
        let n = decode(args, input, &mut w)?;
        w.flush()?;
        n
    };
    tmp.file().sync_all()?;
    tmp.persist(args, out, like)?;
    Ok(n)
}

fn encode<R: Read, W: Write>(args: &CodecArgs, input: R, len: Option<u64>, out: W) -> Result<()> {
    let mut options = lmzip::options::Options::new();
    options
        .model(args.model.as_deref())
        .threads(args.threads())
        .chunks(args.chunks);
    if let Some(level) = args.level {
        options.level(level);
    }
    if let Some(size) = args.block_size {
        options.block_size(size);
    }
    if let Some(size) = args.chunk_size {
        options.chunk_size(size);
    }
    options.plan()?.compress(input, len, out)?;
    Ok(())
}

/// Decode an archive, choosing the model its header names. Returns the original size.
fn decode<R: Read, W: Write>(args: &CodecArgs, input: R, out: &mut W) -> Result<u64> {
    Ok(lmzip::options::decompress(
        input,
        args.model.as_deref(),
        args.resources(),
        out,
    )?)
}

/// What stands at an output's path.
#[derive(Debug, PartialEq, Eq)]
enum Existing {
    /// Nothing, or a regular file (or a link) that `-f` lets us replace.
    Replaceable,
    /// `/dev/null` (or a node of the same device), written through, never replaced.
    DevNull,
}

/// Refuse an output that exists, unless `-f`; and, even with `-f`, one that is not a regular
/// file (a device, a FIFO, a socket, a directory), which is never replaced: `/dev/null` is
/// written through, as zstd does.
fn refuse_existing(args: &CodecArgs, out: &Path) -> Result<Existing> {
    let Ok(meta) = out.symlink_metadata() else {
        return Ok(Existing::Replaceable);
    };
    let kind = meta.file_type();
    if kind.is_char_device() && is_dev_null_node(&meta) {
        return Ok(Existing::DevNull);
    }
    if !kind.is_file() && !kind.is_symlink() {
        bail!(
            "{} exists and is not a regular file; not replaced",
            out.display()
        );
    }
    if !args.force {
        bail!("{} already exists (use -f to overwrite)", out.display());
    }
    Ok(Existing::Replaceable)
}

/// Open `/dev/null` (at `out`) for writing.
fn dev_null(out: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(out)
        .with_context(|| format!("cannot write {}", out.display()))
}

/// Refuse an output that is the input itself (the same device and inode), even with `-f`:
/// writing it would destroy the data being read.
fn refuse_same_file(input: &Metadata, out: &Path) -> Result<()> {
    if let Ok(o) = std::fs::metadata(out)
        && o.dev() == input.dev()
        && o.ino() == input.ino()
    {
        bail!("the output {} is the input itself", out.display());
    }
    Ok(())
}

/// Whether descriptor 1 was closed when the process started (`lmzip -c f >&-`). Rust's
/// runtime opens `/dev/null` in its place before `main`, so it is looked at earlier, by a
/// constructor the C runtime calls before `main`.
static STDOUT_CLOSED_AT_START: AtomicBool = AtomicBool::new(false);

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static CHECK_STDOUT_AT_START: extern "C" fn() = check_stdout_at_start;

#[cfg(target_os = "linux")]
extern "C" fn check_stdout_at_start() {
    // SAFETY: F_GETFD only asks whether descriptor 1 is open.
    if unsafe { libc::fcntl(1, libc::F_GETFD) } == -1 {
        STDOUT_CLOSED_AT_START.store(true, Ordering::Relaxed);
    }
}

/// Refuse to write to a closed standard output (`lmzip -c f >&-`), which would lose the data.
/// Any open descriptor is used, whatever its mode (`1<>/dev/null` included).
fn require_stdout() -> Result<()> {
    if STDOUT_CLOSED_AT_START.load(Ordering::Relaxed) {
        bail!("standard output is closed");
    }
    Ok(())
}

/// Whether `meta` is `/dev/null`'s device.
fn is_dev_null_node(meta: &Metadata) -> bool {
    std::fs::metadata("/dev/null")
        .is_ok_and(|null| null.file_type().is_char_device() && meta.rdev() == null.rdev())
}

/// The longest file name most file systems take, in bytes.
const NAME_MAX: usize = 255;

/// A temporary output beside its destination (`.NAME.XXXXXX.tmp`, the name shortened to fit
/// the file system's limit), removed if dropped before [`Temporary::persist`] and, while it
/// exists, registered for removal on a signal.
struct Temporary {
    file: Option<tempfile::NamedTempFile>,
    path: PathBuf,
}

impl Temporary {
    fn beside(out: &Path) -> Result<Temporary> {
        let dir = match out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        // '.' + name + '.' + 6 random characters + ".tmp".
        let mut keep = name.len().min(NAME_MAX - 12);
        while !name.is_char_boundary(keep) {
            keep -= 1;
        }
        let file = tempfile::Builder::new()
            .prefix(&format!(".{}.", &name[..keep]))
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        let path = file.path().to_path_buf();
        cleanup::register(&path);
        Ok(Temporary {
            file: Some(file),
            path,
        })
    }

    fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("BUG: used after persist")
            .as_file_mut()
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Give the file `like`'s mode, times and (where permitted) owner, then rename it to `out`.
    fn persist(mut self, args: &CodecArgs, out: &Path, like: Option<&Metadata>) -> Result<()> {
        if let Some(meta) = like {
            copy_metadata(meta, self.file())
                .with_context(|| format!("cannot set the metadata of {}", out.display()))?;
        }
        let file = self.file.take().expect("BUG: persisted twice");
        let result = if args.force {
            file.persist(out).map(|_| ())
        } else {
            file.persist_noclobber(out).map(|_| ())
        };
        result.map_err(|e| {
            anyhow::Error::new(e.error).context(format!("cannot write {}", out.display()))
        })
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        // Remove the file (if not persisted) before forgetting it, so that a signal in between
        // still finds it.
        drop(self.file.take());
        cleanup::forget(&self.path);
    }
}

/// The input's permission bits (without set-user-ID, set-group-ID and sticky), access and
/// modification times and, when running as root, owner and group, as gzip and xz keep them.
fn copy_metadata(meta: &Metadata, file: &File) -> io::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()))?;
    }
    file.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o777))?;
    let times = FileTimes::new()
        .set_accessed(meta.accessed()?)
        .set_modified(meta.modified()?);
    file.set_times(times)
}

fn with_suffix(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(SUFFIX);
    PathBuf::from(s)
}

fn without_suffix(path: &Path) -> Result<PathBuf> {
    match (path.extension(), path.file_stem()) {
        (Some(e), Some(stem)) if e == SUFFIX && !stem.is_empty() => Ok(path.with_extension("")),
        _ => bail!("unknown suffix (expected .{SUFFIX}; use -o or -c)"),
    }
}

fn progress_bar(args: &CodecArgs, len: Option<u64>) -> ProgressBar {
    if args.quiet || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .expect("BUG: template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes} {binary_bytes_per_sec}")
                .expect("BUG: template"),
        ),
    }
}

fn report(args: &CodecArgs, path: &Path, original: u64, archive: u64, start: Instant) {
    if args.verbose && !args.quiet {
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "{}: {:.2}% ({original} => {archive} bytes), {:.3} MB/s",
            path.display(),
            100.0 * archive as f64 / original.max(1) as f64,
            original as f64 / secs / 1e6
        );
    }
}

/// `lmzip info`: header, model, chunk statistics and rate of each archive.
pub fn info(files: &[PathBuf]) -> Outcome {
    let mut ok = true;
    // Written with errors checked, so that `lmzip info f | head` ends quietly.
    let mut out = io::stdout().lock();
    for path in files {
        let result = if path.as_os_str() == "-" {
            lmzip::inspect(BufReader::new(io::stdin().lock())).map_err(anyhow::Error::from)
        } else {
            open_regular(path).and_then(|f| Ok(lmzip::inspect(BufReader::new(f))?))
        };
        match result {
            Ok(i) => {
                let h = &i.header;
                writeln!(out, "{}:", escaped(&path.display().to_string()))?;
                writeln!(
                    out,
                    "  model:             {}",
                    lmzip::describe_model(&h.model_name, h.model_sha256.as_ref())
                )?;
                if let Some(sha) = &h.model_sha256 {
                    writeln!(out, "  model sha256:      {}", lmzip::hex(sha))?;
                }
                if let Some(sha) = &h.tokenizer_sha256 {
                    writeln!(out, "  tokenizer sha256:  {}", lmzip::hex(sha))?;
                }
                writeln!(out, "  numerics version:  {}", h.numerics_version)?;
                match h.mixer {
                    Some(level) => {
                        writeln!(out, "  mode:              solid, level {level}")?;
                        writeln!(out, "  block size:        {} bytes", h.chunk_size)?;
                    }
                    None => {
                        writeln!(out, "  mode:              independent chunks")?;
                        writeln!(out, "  chunk size:        {} bytes", h.chunk_size)?;
                    }
                }
                writeln!(out, "  original size:     {} bytes", i.original_len)?;
                writeln!(out, "  archive size:      {} bytes", i.archive_len)?;
                writeln!(out, "  rate:              {:.2}%", 100.0 * i.rate())?;
                writeln!(
                    out,
                    "  chunks:            {} ({} coded, {} stored raw)",
                    i.chunks,
                    i.chunks - i.stored_chunks,
                    i.stored_chunks
                )?;
                if i.x86_chunks > 0 {
                    writeln!(out, "  x86 transform:     {} blocks", i.x86_chunks)?;
                }
                if i.coded_original_bytes > 0 {
                    writeln!(
                        out,
                        "  coded chunks rate: {:.2}%",
                        100.0 * i.coded_bytes as f64 / i.coded_original_bytes as f64
                    )?;
                }
                // The paper's adjusted rate counts the model too: 2 bytes per parameter.
                let original = i.original_len.max(1) as f64;
                match models::footprint(&archive_model(h)) {
                    Some((params, bytes)) => writeln!(
                        out,
                        "  adjusted rate:     {:.2}% with 2 bytes per parameter ({params} parameters), \
                         {:.2}% with the model files ({bytes} bytes)",
                        100.0 * (i.archive_len as f64 + 2.0 * params as f64) / original,
                        100.0 * (i.archive_len + bytes) as f64 / original,
                    )?,
                    None => writeln!(
                        out,
                        "  adjusted rate:     unknown (the model is not in the search path)"
                    )?,
                }
            }
            Err(e) => {
                report_failure(path, &e);
                ok = false;
            }
        }
    }
    Ok(ok)
}

/// The model a header names, for the registry.
fn archive_model(header: &lmzip::Header) -> ArchiveModel<'_> {
    ArchiveModel {
        name: &header.model_name,
        sha256: header.model_sha256,
    }
}
