//! Lossless tokenization for lmzip: any bytes to a language model's tokens and back.
//!
//! A [`Tokenizer`] gives every token id the exact byte string it stands for (its *piece*). The
//! encoder turns a chunk into ids whose pieces, concatenated, are the chunk; the decoder only
//! concatenates pieces. Losslessness therefore never depends on the model's own tokenizer:
//!
//! - Valid UTF-8 runs go through the model's tokenizer (`tokenizer.json`, through the
//!   `tokenizers` crate), so text gets the tokens the model was trained on. Each token is kept
//!   only where its piece matches the input at that point; where it does not (normalizers that
//!   add a leading space or change characters, unknown-token ids), the span the token covered is
//!   re-cut greedily from the vocabulary. Tokenizers that do not round-trip cost a few tokens,
//!   never a byte.
//! - Bytes that are not UTF-8 (images, audio, binaries, a character cut by a chunk boundary) go
//!   in as the vocabulary's single-byte tokens: byte-level BPE has all 256, SentencePiece
//!   vocabularies with byte fallback have `<0x00>`…`<0xFF>`. Nothing is dropped (the paper's
//!   ASCII mapping drops each byte's top bit).
//! - A byte with no single-byte token gets an *escape* symbol after the model's vocabulary, which
//!   the model predicts at the coder's floor probability.
//!
//! # Example
//! ```
//! use lmzip_tokens::{PieceStyle, Tokenizer};
//!
//! // A toy byte-level vocabulary: the 256 bytes, then two merges.
//! let mut pieces: Vec<Option<String>> = (0..=255u8).map(|b| Some(lmzip_tokens::byte_level_piece(&[b]))).collect();
//! pieces.push(Some("ab".into()));
//! pieces.push(Some("Ġb".into())); // byte-level spelling of " b"
//! let tok = Tokenizer::from_pieces(&pieces, PieceStyle::ByteLevel, pieces.len(), b"toy").unwrap();
//! let ids = tok.encode(b"ab b\xff");
//! assert_eq!(ids, [256, 257, 255]);
//! assert_eq!(tok.decode(&ids).unwrap(), b"ab b\xff");
//! ```
#![deny(missing_docs)]

use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The longest piece the greedy re-cut tries (longer pieces are still decoded; the model's own
/// tokenizer still emits them).
const GREEDY_MAX_LEN: usize = 32;

/// How a vocabulary spells its pieces' bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceStyle {
    /// GPT-2's byte-level BPE (GPT-2, Llama 3, Qwen, SmolLM): every byte is one printable
    /// character ([`byte_level_piece`]).
    ByteLevel,
    /// SentencePiece (Llama 2, Mistral): `▁` is a space and `<0xHH>` is the byte `HH`.
    SentencePiece,
}

/// Errors from building a tokenizer.
#[derive(Debug)]
pub enum Error {
    /// The tokenizer file could not be parsed.
    Parse(String),
    /// The vocabulary does not fit the model.
    Vocabulary(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Parse(why) => write!(f, "cannot read the tokenizer: {why}"),
            Error::Vocabulary(why) => write!(f, "unusable vocabulary: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// A lossless tokenizer: pieces for every symbol, and the model's tokenizer for text.
pub struct Tokenizer {
    /// The bytes each coding symbol stands for; empty for ids that are never coded (special
    /// tokens, padding). Ids `model_vocab..` are escapes, one byte each.
    pieces: Vec<Box<[u8]>>,
    model_vocab: usize,
    /// Piece → lowest id with that piece, over the usable ids.
    lookup: HashMap<Box<[u8]>, u32>,
    /// The id of each single byte (a byte token or an escape).
    byte_ids: [u32; 256],
    canonical: Option<tokenizers::Tokenizer>,
    sha256: [u8; 32],
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("symbols", &self.pieces.len())
            .field("model_vocab", &self.model_vocab)
            .field("canonical", &self.canonical.is_some())
            .finish()
    }
}

/// GPT-2's byte-to-character table: printable bytes stand for themselves, the others
/// (controls, space, DEL, NBSP, soft hyphen…) for the characters from U+0100 up, in order.
fn byte_level_chars() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in table.iter_mut().enumerate() {
        let printable = matches!(b, 33..=126 | 161..=172 | 174..=255);
        *slot = if printable {
            char::from(b as u8)
        } else {
            next += 1;
            char::from_u32(next - 1).expect("BUG: below U+0200")
        };
    }
    table
}

/// The byte-level BPE spelling of `bytes` (GPT-2's `bytes_to_unicode`).
pub fn byte_level_piece(bytes: &[u8]) -> String {
    let table = byte_level_chars();
    bytes.iter().map(|&b| table[usize::from(b)]).collect()
}

/// The bytes a piece stands for, or `None` when its spelling is not of `style`.
fn piece_bytes(piece: &str, style: PieceStyle, inverse: &HashMap<char, u8>) -> Option<Vec<u8>> {
    match style {
        PieceStyle::ByteLevel => piece.chars().map(|c| inverse.get(&c).copied()).collect(),
        PieceStyle::SentencePiece => {
            let hex = piece.strip_prefix("<0x").and_then(|s| s.strip_suffix('>'));
            if let Some(byte) = hex.filter(|h| h.len() == 2) {
                return u8::from_str_radix(byte, 16).ok().map(|b| vec![b]);
            }
            Some(piece.replace('\u{2581}', " ").into_bytes())
        }
    }
}

impl Tokenizer {
    /// A tokenizer from pieces alone (a GGUF vocabulary, for example): `pieces[id]` is the
    /// token's spelling, `None` for ids that are never coded (control tokens). `model_vocab` is
    /// the model's output size (at least `pieces.len()`); `source` is hashed as the tokenizer's
    /// identity. Text is cut greedily (longest piece first), not by the model's merges.
    pub fn from_pieces(
        pieces: &[Option<String>],
        style: PieceStyle,
        model_vocab: usize,
        source: &[u8],
    ) -> Result<Tokenizer, Error> {
        let table = byte_level_chars();
        let inverse: HashMap<char, u8> = (0..=255u8).map(|b| (table[usize::from(b)], b)).collect();
        let bytes: Vec<Option<Vec<u8>>> = pieces
            .iter()
            .map(|p| p.as_deref().and_then(|p| piece_bytes(p, style, &inverse)))
            .collect();
        Tokenizer::build(bytes, model_vocab, None, source)
    }

    /// A tokenizer from a Hugging Face `tokenizer.json` for a model with `model_vocab` outputs
    /// (`None`: the tokenizer's size). Special tokens are never coded.
    ///
    /// Hostile files give an error, never a panic: the JSON is checked first, and a panic inside
    /// the `tokenizers` crate (it unwraps some malformed decoder sections, found by the fuzz
    /// target `tokenizer`) is caught and reported.
    pub fn from_json(json: &[u8], model_vocab: Option<usize>) -> Result<Tokenizer, Error> {
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| Error::Parse(e.to_string()))?;
        let canonical = std::panic::catch_unwind(|| tokenizers::Tokenizer::from_bytes(json))
            .map_err(|_| Error::Parse("the tokenizers crate rejected the file".into()))?
            .map_err(|e| Error::Parse(e.to_string()))?;
        let decoder = value
            .get("decoder")
            .map(|d| d.to_string())
            .unwrap_or_default();
        let style = if decoder.contains("\"ByteLevel\"") {
            PieceStyle::ByteLevel
        } else {
            PieceStyle::SentencePiece
        };
        let size = canonical.get_vocab_size(true);
        let mut pieces: Vec<Option<String>> = vec![None; size];
        for (piece, id) in canonical.get_vocab(false) {
            if let Some(slot) = pieces.get_mut(id as usize) {
                *slot = Some(piece);
            }
        }
        let table = byte_level_chars();
        let inverse: HashMap<char, u8> = (0..=255u8).map(|b| (table[usize::from(b)], b)).collect();
        let mut bytes: Vec<Option<Vec<u8>>> = pieces
            .iter()
            .map(|p| p.as_deref().and_then(|p| piece_bytes(p, style, &inverse)))
            .collect();
        // Added tokens: special ones are never coded; others stand for their text as written.
        for added in value["added_tokens"].as_array().into_iter().flatten() {
            let (Some(id), Some(content)) = (added["id"].as_u64(), added["content"].as_str())
            else {
                continue;
            };
            let Some(slot) = bytes.get_mut(id as usize) else {
                continue;
            };
            *slot = if added["special"].as_bool().unwrap_or(true) {
                None
            } else {
                Some(content.as_bytes().to_vec())
            };
        }
        Tokenizer::build(bytes, model_vocab.unwrap_or(size), Some(canonical), json)
    }

    /// A tokenizer from the vocabulary a GGUF file embeds: `model` is its
    /// `tokenizer.ggml.model` (`gpt2`: byte-level BPE with `merges`; `llama`: SentencePiece,
    /// cut by a Unigram model over `scores`), `tokens` its pieces, `types` their kinds (2
    /// unknown, 3 control and 5 unused are never coded). The equivalent `tokenizer.json` is
    /// built and used as for [`Tokenizer::from_json`]; its bytes are the tokenizer's identity.
    pub fn from_gguf_vocabulary(
        model: &str,
        tokens: &[String],
        types: &[i64],
        scores: &[f64],
        merges: &[String],
        model_vocab: usize,
    ) -> Result<Tokenizer, Error> {
        use serde_json::json;
        let never_coded = |id: usize| matches!(types.get(id), Some(2 | 3 | 5));
        let added: Vec<serde_json::Value> = (0..tokens.len())
            .filter(|&id| never_coded(id))
            .map(|id| {
                json!({"id": id, "content": tokens[id], "single_word": false, "lstrip": false,
                       "rstrip": false, "normalized": false, "special": true})
            })
            .collect();
        let json = match model {
            "gpt2" => {
                let vocab: serde_json::Map<String, serde_json::Value> = tokens
                    .iter()
                    .enumerate()
                    .map(|(id, t)| (t.clone(), json!(id)))
                    .collect();
                let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false,
                                        "trim_offsets": true, "use_regex": true});
                json!({"version": "1.0", "added_tokens": added, "normalizer": null,
                       "pre_tokenizer": byte_level, "post_processor": null, "decoder": byte_level,
                       "model": {"type": "BPE", "dropout": null, "unk_token": null,
                                 "continuing_subword_prefix": null, "end_of_word_suffix": null,
                                 "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                                 "vocab": vocab, "merges": merges}})
            }
            "llama" => {
                let vocab: Vec<serde_json::Value> = tokens
                    .iter()
                    .enumerate()
                    .map(|(id, t)| json!([t, scores.get(id).copied().unwrap_or(0.0)]))
                    .collect();
                let unk = (0..tokens.len()).find(|&id| types.get(id) == Some(&2));
                json!({"version": "1.0", "added_tokens": added,
                       "normalizer": {"type": "Sequence", "normalizers": [
                           {"type": "Prepend", "prepend": "\u{2581}"},
                           {"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"}]},
                       "pre_tokenizer": null, "post_processor": null,
                       "decoder": {"type": "Sequence", "decoders": [
                           {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
                           {"type": "ByteFallback"}, {"type": "Fuse"}]},
                       "model": {"type": "Unigram", "unk_id": unk, "vocab": vocab,
                                 "byte_fallback": true}})
            }
            other => {
                return Err(Error::Parse(format!(
                    "GGUF tokenizer model '{other}' (gpt2 and llama are read)"
                )));
            }
        };
        let bytes = serde_json::to_vec(&json).map_err(|e| Error::Parse(e.to_string()))?;
        Tokenizer::from_json(&bytes, Some(model_vocab))
    }

    fn build(
        bytes: Vec<Option<Vec<u8>>>,
        model_vocab: usize,
        canonical: Option<tokenizers::Tokenizer>,
        source: &[u8],
    ) -> Result<Tokenizer, Error> {
        if bytes.len() > model_vocab {
            return Err(Error::Vocabulary(format!(
                "{} tokens, but the model predicts {model_vocab}",
                bytes.len()
            )));
        }
        let mut pieces: Vec<Box<[u8]>> = bytes
            .into_iter()
            .map(|b| b.unwrap_or_default().into_boxed_slice())
            .collect();
        pieces.resize(model_vocab, Box::default());
        let mut lookup: HashMap<Box<[u8]>, u32> = HashMap::new();
        for (id, piece) in pieces.iter().enumerate() {
            if !piece.is_empty() {
                lookup.entry(piece.clone()).or_insert(id as u32);
            }
        }
        let mut byte_ids = [0u32; 256];
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            *slot = match lookup.get(&[b as u8][..]) {
                Some(&id) => id,
                None => {
                    pieces.push(Box::new([b as u8]));
                    (pieces.len() - 1) as u32
                }
            };
        }
        if pieces.len() > u32::MAX as usize {
            return Err(Error::Vocabulary("too many tokens".into()));
        }
        Ok(Tokenizer {
            pieces,
            model_vocab,
            lookup,
            byte_ids,
            canonical,
            sha256: Sha256::digest(source).into(),
        })
    }

    /// The number of coding symbols: the model's vocabulary plus the escapes.
    pub fn symbols(&self) -> usize {
        self.pieces.len()
    }

    /// The model's vocabulary size; symbols from here on are escapes.
    pub fn model_vocab(&self) -> usize {
        self.model_vocab
    }

    /// Whether the model's own tokenizer cuts text (otherwise: greedy longest piece).
    pub fn has_canonical(&self) -> bool {
        self.canonical.is_some()
    }

    /// The bytes `symbol` stands for (empty for symbols that are never coded).
    pub fn piece(&self, symbol: u32) -> &[u8] {
        self.pieces.get(symbol as usize).map_or(&[], |p| p)
    }

    /// The SHA-256 of the tokenizer's source (its file, or the vocabulary it came from).
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// The symbols of `bytes`: their pieces concatenate to `bytes`, and none is empty.
    pub fn encode(&self, bytes: &[u8]) -> Vec<u32> {
        let mut ids = Vec::with_capacity(bytes.len() / 3 + 1);
        for run in bytes.utf8_chunks() {
            self.encode_text(run.valid(), &mut ids);
            ids.extend(run.invalid().iter().map(|&b| self.byte_ids[usize::from(b)]));
        }
        debug_assert_eq!(self.decode(&ids).as_deref(), Some(bytes));
        ids
    }

    /// The bytes of `symbols`, or `None` if one of them is never coded.
    pub fn decode(&self, symbols: &[u32]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for &s in symbols {
            let piece = self.piece(s);
            if piece.is_empty() {
                return None;
            }
            out.extend_from_slice(piece);
        }
        Some(out)
    }

    /// Text through the model's tokenizer, each token kept where its piece matches.
    fn encode_text(&self, text: &str, ids: &mut Vec<u32>) {
        let bytes = text.as_bytes();
        let encoding = match &self.canonical {
            Some(t) if !text.is_empty() => t.encode(text, false).ok(),
            _ => None,
        };
        let Some(encoding) = encoding else {
            self.greedy(bytes, ids);
            return;
        };
        let mut pos = 0;
        for (&id, &(_, end)) in encoding.get_ids().iter().zip(encoding.get_offsets()) {
            let piece = self.piece(id);
            if (id as usize) < self.model_vocab
                && !piece.is_empty()
                && bytes[pos..].starts_with(piece)
            {
                ids.push(id);
                pos += piece.len();
            } else if end > pos {
                let end = end.min(bytes.len());
                self.greedy(&bytes[pos..end], ids);
                pos = end;
            }
        }
        self.greedy(&bytes[pos..], ids);
    }

    /// Cut `bytes` into the longest pieces of the vocabulary, left to right.
    fn greedy(&self, bytes: &[u8], ids: &mut Vec<u32>) {
        let mut pos = 0;
        while pos < bytes.len() {
            let longest = GREEDY_MAX_LEN.min(bytes.len() - pos);
            let (id, len) = (2..=longest)
                .rev()
                .find_map(|n| self.lookup.get(&bytes[pos..pos + n]).map(|&id| (id, n)))
                .unwrap_or((self.byte_ids[usize::from(bytes[pos])], 1));
            ids.push(id);
            pos += len;
        }
    }
}

/// Train a byte-level BPE tokenizer of `vocab_size` tokens (256 bytes, `<|endoftext|>`, then
/// merges) on the UTF-8 text of `files` with the `tokenizers` trainer, GPT-2's pre-tokenizer
/// and no prefix space; returns its `tokenizer.json`.
pub fn train_byte_level_bpe(
    files: &[std::path::PathBuf],
    vocab_size: usize,
) -> Result<Vec<u8>, Error> {
    use tokenizers::AddedToken;
    use tokenizers::models::TrainerWrapper;
    use tokenizers::models::bpe::{BPE, BpeTrainer};
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    let byte_level = ByteLevel::new(false, true, true);
    let mut tokenizer = tokenizers::Tokenizer::new(BPE::default());
    tokenizer.with_pre_tokenizer(Some(byte_level));
    tokenizer.with_decoder(Some(byte_level));
    let mut trainer: TrainerWrapper = BpeTrainer::builder()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .special_tokens(vec![AddedToken::from("<|endoftext|>", true)])
        .build()
        .into();
    // The UTF-8 runs of every file, line by line (the trainer takes text; bytes that are not
    // UTF-8 are byte tokens anyway).
    let mut lines: Vec<String> = Vec::new();
    for file in files {
        let bytes =
            std::fs::read(file).map_err(|e| Error::Parse(format!("{}: {e}", file.display())))?;
        for run in bytes.utf8_chunks() {
            for mut line in run.valid().split_inclusive('\n') {
                // Pieces of at most 1 KB: a 4.6 MB genome without a space would otherwise be
                // one pre-tokenized word, rewritten by every merge (minutes of training).
                while line.len() > 1024 {
                    let mut cut = 1024;
                    while !line.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    lines.push(line[..cut].to_string());
                    line = &line[cut..];
                }
                lines.push(line.to_string());
            }
        }
    }
    tokenizer
        .train(&mut trainer, lines.into_iter())
        .map_err(|e| Error::Parse(format!("training: {e}")))?;
    tokenizer
        .to_string(false)
        .map(String::into_bytes)
        .map_err(|e| Error::Parse(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_table_is_gpt2s() {
        assert_eq!(byte_level_piece(b" "), "\u{120}"); // 'Ġ'
        assert_eq!(byte_level_piece(b"\n"), "\u{10a}"); // 'Ċ'
        assert_eq!(byte_level_piece(b"A~"), "A~");
        assert_eq!(byte_level_piece(&[0xad]), "\u{143}");
        let chars: std::collections::HashSet<char> = byte_level_chars().into_iter().collect();
        assert_eq!(chars.len(), 256);
    }

    #[test]
    fn missing_bytes_become_escapes() {
        // SentencePiece-style vocabulary with "a", "b", "ab" and no byte fallback.
        let pieces = [Some("<s>".into()), Some("a".into()), Some("b".into())];
        let mut pieces = pieces.to_vec();
        pieces.push(Some("\u{2581}ab".into()));
        pieces[0] = None;
        let tok = Tokenizer::from_pieces(&pieces, PieceStyle::SentencePiece, 6, b"v").unwrap();
        assert_eq!(tok.model_vocab(), 6);
        assert_eq!(tok.symbols(), 6 + 254);
        let ids = tok.encode(b"a ab\x00");
        assert_eq!(ids[0], 1);
        assert_eq!(ids[1], 3);
        assert!(ids[2] >= 6, "escape for the zero byte");
        assert_eq!(tok.decode(&ids).unwrap(), b"a ab\x00");
        assert_eq!(tok.decode(&[0]), None);
    }

    #[test]
    fn sentencepiece_byte_tokens() {
        let mut pieces: Vec<Option<String>> =
            (0..=255u8).map(|b| Some(format!("<0x{b:02X}>"))).collect();
        pieces.push(Some("\u{2581}the".into()));
        let tok = Tokenizer::from_pieces(&pieces, PieceStyle::SentencePiece, 300, b"v").unwrap();
        assert_eq!(tok.symbols(), 300);
        assert_eq!(tok.encode(b" the\xfe"), [256, 0xfe]);
    }

    #[test]
    fn vocabulary_larger_than_the_model_is_refused() {
        let pieces = vec![Some("a".to_string()); 4];
        let err = Tokenizer::from_pieces(&pieces, PieceStyle::SentencePiece, 3, b"v");
        assert!(matches!(err, Err(Error::Vocabulary(_))));
    }
}
