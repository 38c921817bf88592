//! Lossless tokenization over all of `../shared/data/text` (and image and audio bytes), with a
//! byte-level BPE trained here by the `tokenizers` crate and with a SentencePiece-style
//! tokenizer whose normalizer does not round-trip.

use lmzip_data::Modality;
use lmzip_tokens::{Tokenizer, train_byte_level_bpe};
use std::path::{Path, PathBuf};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

fn text_files() -> Vec<PathBuf> {
    lmzip_data::list_files(&Path::new(SHARED).join("text"), Modality::Text).unwrap()
}

/// A tokenizer trained on two books (a small, quick training set).
fn trained_json(vocab: usize) -> Vec<u8> {
    let books: Vec<PathBuf> = text_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/books/"))
        .take(2)
        .collect();
    assert!(!books.is_empty());
    train_byte_level_bpe(&books, vocab).unwrap()
}

#[test]
fn trained_bpe_round_trips_all_text_and_keeps_its_own_tokens() {
    let json = trained_json(2000);
    let tok = Tokenizer::from_json(&json, None).unwrap();
    assert_eq!(tok.model_vocab(), 2000);
    assert_eq!(tok.symbols(), 2000, "byte-level BPE needs no escapes");
    let canonical = tokenizers::Tokenizer::from_bytes(&json).unwrap();
    let (mut chunks, mut bytes, mut tokens, mut same) = (0, 0, 0, 0);
    let mut utf8_chunks = 0;
    for file in text_files() {
        let data = std::fs::read(&file).unwrap();
        for chunk in data.chunks(2048) {
            let ids = tok.encode(chunk);
            assert_eq!(tok.decode(&ids).unwrap(), chunk, "{}", file.display());
            chunks += 1;
            bytes += chunk.len();
            tokens += ids.len();
            if let Ok(text) = std::str::from_utf8(chunk) {
                utf8_chunks += 1;
                same += usize::from(canonical.encode(text, false).unwrap().get_ids() == ids);
            }
        }
    }
    eprintln!(
        "{chunks} chunks, {bytes} bytes, {tokens} tokens ({:.2} bytes/token); {same} of {utf8_chunks} UTF-8 chunks cut exactly as the tokenizer cuts them",
        bytes as f64 / tokens as f64
    );
    assert!(chunks > 10_000);
    assert_eq!(
        same, utf8_chunks,
        "a byte-level BPE round-trips: its own tokens are kept"
    );
    assert!(bytes as f64 / tokens as f64 > 1.8, "merges are used");
}

#[test]
fn non_text_bytes_go_in_as_byte_tokens() {
    let tok = Tokenizer::from_json(&trained_json(1000), None).unwrap();
    for modality in [Modality::Images, Modality::Audio8, Modality::Audio16] {
        let root = Path::new(SHARED).join(modality.folder());
        let file = &lmzip_data::list_files(&root, modality).unwrap()[0];
        let chunks = lmzip_data::file_chunks(file, modality, 2048).unwrap();
        let (mut bytes, mut tokens) = (0, 0);
        for chunk in chunks.iter().take(50) {
            let ids = tok.encode(chunk);
            assert_eq!(tok.decode(&ids).unwrap(), &chunk[..]);
            bytes += chunk.len();
            tokens += ids.len();
        }
        eprintln!(
            "{modality}: {:.3} tokens per byte",
            tokens as f64 / bytes as f64
        );
        assert!(tokens <= bytes);
    }
    let all: Vec<u8> = (0..=255).collect();
    assert_eq!(tok.decode(&tok.encode(&all)).unwrap(), all);
}

/// A Llama-2-style tokenizer.json: SentencePiece BPE with byte fallback, a normalizer that
/// prepends `▁` and turns spaces into `▁`, and a few merges.
fn sentencepiece_json() -> String {
    let mut vocab = vec![
        ("<unk>".to_string(), 0),
        ("<s>".to_string(), 1),
        ("</s>".to_string(), 2),
    ];
    for b in 0..=255u32 {
        vocab.push((format!("<0x{b:02X}>"), 3 + b));
    }
    let merged = [
        "▁", "t", "h", "e", "th", "▁th", "▁the", "a", "n", "an", "▁an", "d", "▁and",
    ];
    for (i, p) in merged.iter().enumerate() {
        vocab.push((p.to_string(), 259 + i as u32));
    }
    let merges = [
        ("t", "h"),
        ("▁", "th"),
        ("▁th", "e"),
        ("a", "n"),
        ("▁", "an"),
        ("▁an", "d"),
    ];
    let vocab_json: Vec<String> = vocab
        .iter()
        .map(|(p, id)| format!("{}: {id}", serde_json::to_string(p).unwrap()))
        .collect();
    let merges_json: Vec<String> = merges
        .iter()
        .map(|(a, b)| serde_json::to_string(&format!("{a} {b}")).unwrap())
        .collect();
    format!(
        r#"{{
  "version": "1.0",
  "truncation": null,
  "padding": null,
  "added_tokens": [
    {{"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}},
    {{"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}},
    {{"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}}
  ],
  "normalizer": {{"type": "Sequence", "normalizers": [
    {{"type": "Prepend", "prepend": "▁"}},
    {{"type": "Replace", "pattern": {{"String": " "}}, "content": "▁"}}
  ]}},
  "pre_tokenizer": null,
  "post_processor": null,
  "decoder": {{"type": "Sequence", "decoders": [
    {{"type": "Replace", "pattern": {{"String": "▁"}}, "content": " "}},
    {{"type": "ByteFallback"}},
    {{"type": "Fuse"}},
    {{"type": "Strip", "content": " ", "start": 1, "stop": 0}}
  ]}},
  "model": {{"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null,
    "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
    "vocab": {{{}}}, "merges": [{}]}}
}}"#,
        vocab_json.join(", "),
        merges_json.join(", ")
    )
}

#[test]
fn sentencepiece_style_tokenizer_is_lossless_despite_its_normalizer() {
    let json = sentencepiece_json();
    let tok = Tokenizer::from_json(json.as_bytes(), Some(300)).unwrap();
    assert_eq!(tok.symbols(), 300, "byte fallback covers every byte");
    let the = 259 + 6;
    let and = 259 + 12;
    // The tokenizer itself does not round-trip: it adds a leading space.
    let canonical = tokenizers::Tokenizer::from_bytes(json.as_bytes()).unwrap();
    let ids = canonical
        .encode("the and", false)
        .unwrap()
        .get_ids()
        .to_vec();
    assert_eq!(ids, [the, and]);
    // Ours is lossless, and keeps " and".
    let ours = tok.encode(b"the and");
    assert_eq!(tok.decode(&ours).unwrap(), b"the and");
    assert_eq!(ours.last(), Some(&and));
    for file in text_files().iter().take(20) {
        let data = std::fs::read(file).unwrap();
        for chunk in data.chunks(2048) {
            assert_eq!(tok.decode(&tok.encode(chunk)).unwrap(), chunk);
        }
    }
}

/// A malformed decoder section made the `tokenizers` crate panic (found by the fuzz target
/// `tokenizer`); it must be an error.
#[test]
fn malformed_tokenizer_files_are_errors_not_panics() {
    let json = String::from_utf8(trained_json(300)).unwrap();
    let at = json.rfind("\"use_regex\"").expect("a byte-level decoder");
    let mut broken = json.clone();
    broken.replace_range(at.., "\"use_regex\":t");
    assert!(Tokenizer::from_json(broken.as_bytes(), None).is_err());
    for cut in [0, 1, json.len() / 2, json.len() - 1] {
        assert!(Tokenizer::from_json(&json.as_bytes()[..cut], None).is_err());
    }
}
