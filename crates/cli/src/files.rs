//! Files in, files out: suffixes, temporary outputs renamed on success, removal of inputs only
//! after their output is complete.

use crate::{CodecArgs, Outcome, is_broken_pipe};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressBarIter, ProgressStyle};
use lmzip_models::registry::{self as models, ArchiveModel};
use lmzip_models::with_model;
use std::fs::{File, Metadata};
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
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
            eprintln!("lmzip: {}: {e:#}", path.display());
            ok = false;
        }
    }
    Ok(ok)
}

/// Standard input to standard output (or to `-o`).
fn stream(args: &CodecArgs) -> Result<()> {
    let input = BufReader::with_capacity(1 << 16, io::stdin().lock());
    let progress = progress_bar(args, None);
    let input = progress.wrap_read(input);
    if args.test || args.decompress {
        let mut sink: Box<dyn Write> = if args.test {
            Box::new(io::sink())
        } else if let Some(out) = &args.output {
            return decode_to_path(args, input, out).map(|_| ());
        } else {
            Box::new(io::stdout().lock())
        };
        decode(args, input, &mut sink)?;
        sink.flush()?;
        progress.finish_and_clear();
        return Ok(());
    }
    if let Some(out) = &args.output {
        encode_to_path(args, input, None, out)?;
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
    if !meta.is_file() {
        bail!("not a regular file");
    }
    let len = meta.len();
    let start = Instant::now();
    if args.stdout {
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
    let archive_len = encode_to_path(args, input, Some(len), &out_path)?;
    progress.finish_and_clear();
    report(args, path, len, archive_len, start);
    remove_input_unless_kept(args, path)
}

fn decompress_file(args: &CodecArgs, path: &Path) -> Result<()> {
    let (input, meta, progress) = open_input(args, path)?;
    let len = meta.len();
    let start = Instant::now();
    if args.stdout {
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
    let original = decode_to_path(args, input, &out_path)?;
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
    let file = File::open(path).context("cannot open")?;
    let meta = file.metadata()?;
    let progress = progress_bar(args, Some(meta.len()));
    let input = progress.wrap_read(BufReader::with_capacity(1 << 16, file));
    Ok((input, meta, progress))
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
) -> Result<u64> {
    refuse_existing(args, out)?;
    let mut tmp = temp_beside(out)?;
    {
        let mut w = BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
        encode(args, input, len, &mut w)?;
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    // Read the archive back and check that its records and trailer fit together before the
    // input can be removed.
    let info = lmzip::inspect(BufReader::new(File::open(tmp.path())?))
        .context("the archive just written does not read back")?;
    persist(args, tmp, out)?;
    Ok(info.archive_len)
}

/// Decompress into a temporary file beside `out` and rename it on success. Returns the size.
fn decode_to_path<R: Read>(args: &CodecArgs, input: R, out: &Path) -> Result<u64> {
    refuse_existing(args, out)?;
    let mut tmp = temp_beside(out)?;
    let n = {
        let mut w = BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
        let n = decode(args, input, &mut w)?;
        w.flush()?;
        n
    };
    tmp.as_file().sync_all()?;
    persist(args, tmp, out)?;
    Ok(n)
}

fn encode<R: Read, W: Write>(
    args: &CodecArgs,
    mut input: R,
    len: Option<u64>,
    out: W,
) -> Result<()> {
    let mut builder = lmzip::write::EncoderBuilder::new();
    builder.threads(args.threads()).original_len(len);
    let model = models::by_name(args.model.as_deref().unwrap_or(models::DEFAULT_MODEL))?
        .for_chunks(args.chunk_size.unwrap_or(lmzip::DEFAULT_CHUNK_SIZE) as usize);
    with_model!(model, m => {
        let context = lmzip::Model::max_chunk_len(&m).map_or(u32::MAX, |c| c as u32);
        builder.chunk_size(args.chunk_size.unwrap_or(lmzip::DEFAULT_CHUNK_SIZE.min(context)));
        let mut enc = builder.build(out, m)?;
        io::copy(&mut input, &mut enc)?;
        enc.finish()?;
    });
    Ok(())
}

/// Decode an archive, choosing the model its header names. Returns the original size.
fn decode<R: Read, W: Write>(args: &CodecArgs, mut input: R, out: &mut W) -> Result<u64> {
    let header = lmzip::Header::read(&mut input).map_err(lmzip::Error::from)?;
    let model = models::for_header(&archive_model(&header), args.model.as_deref())?
        .for_chunks(header.chunk_size as usize);
    let n = with_model!(model, m => {
        let mut dec = lmzip::read::Decoder::with_header(input, header, m, args.threads())?;
        io::copy(&mut dec, out).map_err(lmzip::Error::from)?
    });
    Ok(n)
}

fn refuse_existing(args: &CodecArgs, out: &Path) -> Result<()> {
    if !args.force && out.symlink_metadata().is_ok() {
        bail!("{} already exists (use -f to overwrite)", out.display());
    }
    Ok(())
}

fn temp_beside(out: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))
}

fn persist(args: &CodecArgs, tmp: tempfile::NamedTempFile, out: &Path) -> Result<()> {
    let result = if args.force {
        tmp.persist(out).map(|_| ())
    } else {
        tmp.persist_noclobber(out).map(|_| ())
    };
    result
        .map_err(|e| anyhow::Error::new(e.error).context(format!("cannot write {}", out.display())))
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
        let result = File::open(path)
            .context("cannot open")
            .and_then(|f| Ok(lmzip::inspect(BufReader::new(f))?));
        match result {
            Ok(i) => {
                let h = &i.header;
                writeln!(out, "{}:", path.display())?;
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
                writeln!(out, "  chunk size:        {} bytes", h.chunk_size)?;
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
                eprintln!("lmzip: {}: {e:#}", path.display());
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
