//! Which model a name, a path or an archive's header asks for, and the compiled-in models.
//!
//! `--model` takes `baseline`, a compiled-in model ([`BUILT_IN_MODELS`]: the default
//! [`DEFAULT_MODEL`] and the default before it, so a program using them works wherever it is
//! copied, and archives written with the earlier default decode), a path to a model directory
//! (`config.json` + `model.safetensors`; with a `tokenizer.json` it is a Hugging Face LLM) or to
//! a GGUF file (`.gguf`), or the name of such a directory or file (a GGUF file with or without its
//! `.gguf`) in the model search path: the
//! directories in `$LMZIP_MODEL_PATH` (separated by `:`), then `$XDG_DATA_HOME/lmzip/models` (or
//! `~/.local/share/lmzip/models`). Neither the current directory nor the source tree is searched
//! unless the user puts them in `$LMZIP_MODEL_PATH`.
//!
//! An archive names its model; that name is never a path. Only plain names ([`is_plain_name`])
//! are looked up, and every string from an archive appears in messages escaped ([`escaped`]).
//! A compiled-in model's name always means the compiled-in model; an archive naming it with
//! another hash is looked up in the search path.

use crate::llama::{self, LlamaModel};
use crate::transformer::{self, TransformerModel};
use crate::{ContextMixing, Model, gguf};
use sha2::Digest;
use std::path::{Path, PathBuf};

/// Why no model could be had: a message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error(message)
    }
}

/// Lookup results.
pub type Result<T> = std::result::Result<T, Error>;

/// The model `lmzip FILE` uses when `--model` is not given (see models/README.md).
pub const DEFAULT_MODEL: &str = "lmzip-800k-everyday";

/// The models compiled into lmzip: the default, and `lmzip-800k`, the default before it
/// (trained without the everyday corpus; the paper's experiments in docs/RESULTS.md use it).
pub const BUILT_IN_MODELS: [&str; 2] = [DEFAULT_MODEL, "lmzip-800k"];

/// The files of [`BUILT_IN_MODELS`], in the same order: `config.json`, `model.safetensors`.
const BUILT_IN_FILES: [(&[u8], &[u8]); 2] = [
    (
        include_bytes!("../../../models/lmzip-800k-everyday/config.json"),
        include_bytes!("../../../models/lmzip-800k-everyday/model.safetensors"),
    ),
    (
        include_bytes!("../../../models/lmzip-800k/config.json"),
        include_bytes!("../../../models/lmzip-800k/model.safetensors"),
    ),
];

/// Any model lmzip can run.
pub enum AnyModel {
    /// The weightless context-mixing baseline.
    Baseline(ContextMixing),
    /// A byte-level Transformer from a model directory.
    Transformer(Box<TransformerModel>),
    /// A token-level LLM from a GGUF file or a Hugging Face directory.
    Llm(Box<LlamaModel>),
}

impl AnyModel {
    /// The model for chunks of `chunk_size` bytes: an LLM sizes its key/value caches for that
    /// many positions (within its `max_position_embeddings`) instead of its default context;
    /// other models are unchanged.
    pub fn for_chunks(self, chunk_size: usize) -> AnyModel {
        match self {
            AnyModel::Llm(l) => AnyModel::Llm(Box::new(l.with_context(chunk_size))),
            other => other,
        }
    }

    /// The model computing the predictions of numerics `version`, as an archive written under
    /// it needs (a byte Transformer's and an LLM's depend on the version).
    pub fn for_numerics(self, version: u16) -> Result<AnyModel> {
        let (name, model) = match self {
            AnyModel::Transformer(t) => (
                t.id().name,
                t.for_numerics(version)
                    .map(|t| AnyModel::Transformer(Box::new(t))),
            ),
            AnyModel::Llm(l) => (
                l.id().name,
                l.for_numerics(version).map(|l| AnyModel::Llm(Box::new(l))),
            ),
            other => return Ok(other),
        };
        model.ok_or_else(|| {
            Error(format!(
                "model '{}' cannot compute numerics version {version}",
                escaped(&name)
            ))
        })
    }

    /// The model's parameter count (0 for the baseline).
    pub fn parameters(&self) -> usize {
        match self {
            AnyModel::Baseline(_) => 0,
            AnyModel::Transformer(t) => t.network().config().parameters(),
            AnyModel::Llm(l) => l.network().config().parameters(),
        }
    }
}

/// Run `$body` with `$m` bound to the concrete model inside an [`AnyModel`].
#[macro_export]
macro_rules! with_model {
    ($any:expr, $m:ident => $body:expr) => {
        match $any {
            $crate::registry::AnyModel::Baseline($m) => $body,
            $crate::registry::AnyModel::Transformer($m) => {
                let $m = *$m;
                $body
            }
            $crate::registry::AnyModel::Llm($m) => {
                let $m = *$m;
                $body
            }
        }
    };
}

/// The model named by `--model`: `baseline`, a compiled-in model, an existing path, or a plain
/// name in the search path.
pub fn by_name(name: &str) -> Result<AnyModel> {
    if name == "baseline" || BUILT_IN_MODELS.contains(&name) {
        return find_named(name, None);
    }
    let path = Path::new(name);
    if name.contains(std::path::MAIN_SEPARATOR) || path.exists() {
        if is_llm(path) {
            return load_llm(path);
        }
        let dir_name = path
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| name.to_string());
        return load(path, &dir_name);
    }
    find_named(name, None)
}

/// Whether an archive's model name may be looked up: 1 to 64 bytes of ASCII letters, digits,
/// `.`, `_`, `+` and `-`, not starting with `.` or `-` (so never `..`, a path or an option).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= crate::ModelId::MAX_NAME_LEN
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

/// `text` with quotes, backslashes and every character outside printable ASCII escaped, for
/// messages about strings read from an archive (no terminal escapes reach the screen).
pub fn escaped(text: &str) -> String {
    text.escape_default().to_string()
}

/// A model's name (escaped) with the start of its hash, for messages: `'name' (sha256 …)`.
pub fn describe(name: &str, sha256: Option<&[u8; 32]>) -> String {
    match sha256 {
        Some(h) => {
            let hex: String = h[..8].iter().map(|b| format!("{b:02x}")).collect();
            format!("'{}' (sha256 {hex})", escaped(name))
        }
        None => format!("'{}'", escaped(name)),
    }
}

/// The compiled-in model called `name` with the bytes of its files, if there is one.
fn built_in(name: &str) -> Option<Result<(TransformerModel, u64)>> {
    let at = BUILT_IN_MODELS.iter().position(|&n| n == name)?;
    let (config, weights) = BUILT_IN_FILES[at];
    Some(
        transformer::file::from_bytes(config, weights)
            .map(|loaded| {
                let model = TransformerModel::new(name, loaded.sha256, loaded.transformer);
                (model, (config.len() + weights.len()) as u64)
            })
            .map_err(|e| Error(format!("the compiled-in model '{name}': {e}"))),
    )
}

/// The parameter count and the bytes of the model files of the model an archive names, when
/// it is a Transformer found in the search path (the baseline has none: `Some((0, 0))`).
pub fn footprint(header: &ArchiveModel) -> Option<(usize, u64)> {
    if header.name == "baseline" {
        return Some((0, 0));
    }
    if !is_plain_name(header.name) {
        return None;
    }
    if let Some(Ok((model, bytes))) = built_in(header.name)
        && header.sha256 == model.id().sha256
    {
        return Some((model.network().config().parameters(), bytes));
    }
    let found = locate(header.name)?;
    if is_llm(&found) {
        return llm_footprint(&found, header);
    }
    let loaded = transformer::file::load(&found).ok()?;
    if Some(loaded.sha256) != header.sha256 {
        return None;
    }
    let bytes = [
        transformer::file::CONFIG_FILE,
        transformer::file::WEIGHTS_FILE,
    ]
    .iter()
    .filter_map(|f| std::fs::metadata(found.join(f)).ok())
    .map(|m| m.len())
    .sum();
    Some((loaded.transformer.config().parameters(), bytes))
}

/// The model an archive names: its name and weights hash, from the header.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveModel<'a> {
    /// The model's name.
    pub name: &'a str,
    /// Its SHA-256, for a model with weights.
    pub sha256: Option<[u8; 32]>,
}

/// The model called `name`: the baseline, a compiled-in model (when `sha256` is unknown or its
/// own), or a plain name in the search path.
fn find_named(name: &str, sha256: Option<[u8; 32]>) -> Result<AnyModel> {
    if name == "baseline" {
        return Ok(AnyModel::Baseline(ContextMixing::new()));
    }
    if !is_plain_name(name) {
        return Err(Error(format!(
            "the model name '{}' is not a plain name (letters, digits, '.', '_', '+', '-'); \
             models are looked up by name, never by path",
            escaped(name)
        )));
    }
    if let Some(found) = built_in(name) {
        let (model, _) = found?;
        if sha256.is_none() || sha256 == model.id().sha256 {
            return Ok(AnyModel::Transformer(Box::new(model)));
        }
    }
    match locate(name) {
        Some(path) if is_llm(&path) => load_llm(&path),
        Some(dir) => load(&dir, name),
        None => Err(Error(format!(
            "unknown model '{name}': not in the model search path ({})",
            describe_search_path()
        ))),
    }
}

/// The model `--model` gives, or else the one the archive's header names, looked up in the
/// search path only (the decoder then checks its hash).
pub fn for_header(header: &ArchiveModel, given: Option<&str>) -> Result<AnyModel> {
    let found = match given {
        Some(name) => by_name(name),
        None => find_named(header.name, header.sha256),
    };
    found.map_err(|e| {
        Error(format!(
            "the archive needs model {}: {e}",
            describe(header.name, header.sha256.as_ref())
        ))
    })
}

/// The first model directory or GGUF file called `name` (or `name.gguf`) in the search path.
fn locate(name: &str) -> Option<PathBuf> {
    search_path().into_iter().find_map(|d| {
        [d.join(name), d.join(format!("{name}.gguf"))]
            .into_iter()
            .find(|p| p.is_dir() || is_llm(p))
    })
}

/// Whether `path` is an LLM: a `.gguf` file, or a directory with a `tokenizer.json`.
fn is_llm(path: &Path) -> bool {
    let gguf = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    (gguf && path.is_file()) || path.join("tokenizer.json").is_file()
}

fn load_llm(path: &Path) -> Result<AnyModel> {
    let model = LlamaModel::load(path)?;
    Ok(AnyModel::Llm(Box::new(model)))
}

/// Parameters and file bytes of the LLM at `path`, if it is the one `header` names (checked
/// by the hash the header records: the GGUF file's, or the directory's config and weights).
fn llm_footprint(path: &Path, header: &ArchiveModel) -> Option<(usize, u64)> {
    if path.is_file() {
        let bytes = crate::weights::read_limited(path, llama::gguf::MAX_FILE_BYTES).ok()?;
        let sha: [u8; 32] = sha2::Sha256::digest(&bytes).into();
        if Some(sha) != header.sha256 {
            return None;
        }
        let gguf = gguf::Gguf::parse(&bytes).ok()?;
        let params = gguf
            .tensors
            .iter()
            .map(|t| t.shape.iter().product::<usize>())
            .sum();
        return Some((params, bytes.len() as u64));
    }
    let (net, sha) = llama::file::load(path).ok()?;
    if Some(sha) != header.sha256 {
        return None;
    }
    let bytes = ["config.json", "model.safetensors", "tokenizer.json"]
        .iter()
        .filter_map(|f| std::fs::metadata(path.join(f)).ok())
        .map(|m| m.len())
        .sum();
    Some((net.config().parameters(), bytes))
}

fn load(dir: &Path, name: &str) -> Result<AnyModel> {
    let model = TransformerModel::load(dir, name).map_err(|e| Error(e.to_string()))?;
    Ok(AnyModel::Transformer(Box::new(model)))
}

/// Where model names are looked up, in order.
pub fn search_path() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("LMZIP_MODEL_PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")));
    if let Some(d) = data_home {
        dirs.push(d.join("lmzip/models"));
    }
    dirs
}

fn describe_search_path() -> String {
    search_path()
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
