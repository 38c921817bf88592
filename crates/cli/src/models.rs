//! Which model a name or an archive asks for.

use anyhow::{Result, bail};
use lmzip_models::ContextMixing;

/// A model the CLI can run.
pub enum AnyModel {
    /// The weightless context-mixing baseline.
    Baseline(ContextMixing),
}

/// The model named by `--model`.
pub fn by_name(name: &str) -> Result<AnyModel> {
    match name {
        "baseline" => Ok(AnyModel::Baseline(ContextMixing::new())),
        other => bail!("unknown model '{other}' (available: baseline)"),
    }
}

/// The model an archive's header names.
pub fn for_header(header: &lmzip::Header) -> Result<AnyModel> {
    match header.model_name.as_str() {
        "baseline" => Ok(AnyModel::Baseline(ContextMixing::new())),
        other => bail!(
            "the archive needs model {}, which is not available",
            lmzip::describe_model(other, header.model_sha256.as_ref())
        ),
    }
}
