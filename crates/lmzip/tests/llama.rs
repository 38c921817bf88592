//! Round trips with a token-level LLM: a tiny random-weight Llama-shaped model written here as
//! a Hugging Face directory, with a byte-level BPE tokenizer trained here. The teacher-forced
//! encoder and the batched, incremental decoder must agree on every chunk, at every thread
//! count, for text and for bytes that are not text.

use lmzip::{Error, Model, chunk};
use lmzip_data::Modality;
use lmzip_models::LlamaModel;
use lmzip_models::llama;
use lmzip_tokens::{PieceStyle, Tokenizer};
use std::path::{Path, PathBuf};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");
const VOCAB: usize = 320;

fn config_json(vocab: usize) -> String {
    format!(
        r#"{{"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "vocab_size": {vocab}, "tie_word_embeddings": false,
        "max_position_embeddings": 1024, "bos_token_id": 0, "eos_token_id": [0]}}"#
    )
}

fn book() -> PathBuf {
    Path::new(SHARED).join("text/canterbury/alice29.txt")
}

/// A tokenizer of at most `VOCAB` tokens trained on a book (id 0: `<|endoftext|>`).
fn tokenizer_json() -> Vec<u8> {
    lmzip_tokens::train_byte_level_bpe(&[book()], VOCAB).unwrap()
}

fn model(dir: &Path, seed: u64) -> LlamaModel {
    llama::file::write_random(dir, &config_json(VOCAB), seed).unwrap();
    let (net, sha) = llama::file::load(dir).unwrap();
    let tokenizer = Tokenizer::from_json(&tokenizer_json(), Some(VOCAB)).unwrap();
    LlamaModel::new("test-llama", sha, net, tokenizer).unwrap()
}

fn compress(data: &[u8], m: &LlamaModel, threads: usize) -> Vec<u8> {
    lmzip_testkit::compress(data, m, threads, 512, usize::MAX)
}

fn decompress(archive: &[u8], m: &LlamaModel, threads: usize) -> Result<Vec<u8>, Error> {
    lmzip_testkit::decompress(archive, m, threads, 1 << 16)
}

#[test]
fn archives_round_trip_at_every_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path(), 1);
    let text = std::fs::read(book()).unwrap()[..3000].to_vec();
    let mut bytes: Vec<u8> = (0..700u32).map(|i| (i * 7 + i / 13) as u8).collect();
    bytes.extend_from_slice(&text[..300]);
    for data in [Vec::new(), b"a".to_vec(), text.clone(), bytes] {
        let a1 = compress(&data, &m, 1);
        assert_eq!(compress(&data, &m, 2), a1, "2 threads");
        assert_eq!(compress(&data, &m, 3), a1, "3 threads");
        for threads in [1, 2, 3] {
            assert_eq!(decompress(&a1, &m, threads).unwrap(), data);
        }
    }
    // Random weights still code text below 8 bits a byte: the BPE tokens carry > 1 byte each.
    let archive = compress(&text, &m, 2);
    assert!(
        archive.len() < text.len(),
        "{} ≥ {}",
        archive.len(),
        text.len()
    );
}

#[test]
fn chunks_round_trip_alone_and_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path(), 2);
    let text = std::fs::read(book()).unwrap();
    let image = &Path::new(SHARED).join("images");
    let image = &lmzip_data::list_files(image, Modality::Images).unwrap()[0];
    let patch = lmzip_data::image_patches(image).unwrap().swap_remove(0);
    let chunks: Vec<Vec<u8>> = vec![
        text[..777].to_vec(),
        patch[..1000].to_vec(),
        (0..=255).collect(),
        "naïve café — ünïcödé\u{1F600}".as_bytes().to_vec(),
        text[5000..5001].to_vec(),
    ];
    let mut state = m.new_state();
    let coded: Vec<Vec<u8>> = chunks
        .iter()
        .map(|c| chunk::encode(&m, &mut state, c, &lmzip::Budget::spare(0)))
        .collect();
    for (c, k) in chunks.iter().zip(&coded) {
        assert_eq!(chunk::decode(&m, &mut state, k, c.len()).unwrap(), *c);
        let bits: f64 = chunk::code_lengths(&m, &mut state, c, &lmzip::Budget::spare(0))
            .iter()
            .sum();
        assert!(
            (k.len() as f64 * 8.0 - bits).abs() < 40.0,
            "{} vs {bits}",
            k.len() * 8
        );
    }
    let mut states: Vec<_> = chunks.iter().map(|_| m.new_state()).collect();
    let batch: Vec<(&[u8], usize)> = coded
        .iter()
        .zip(&chunks)
        .map(|(k, c)| (&k[..], c.len()))
        .collect();
    for (got, c) in chunk::decode_batch(&m, &mut states, &batch)
        .into_iter()
        .zip(&chunks)
    {
        assert_eq!(got.unwrap(), *c);
    }
    // A wrong length (which the record's CRC-32C then catches) ends with an error or with
    // exactly that many bytes; it never hangs or panics.
    for (k, c) in coded.iter().zip(&chunks) {
        for len in [c.len() - 1, c.len() + 1, 3 * c.len()] {
            if let Ok(out) = chunk::decode(&m, &mut state, k, len) {
                assert_eq!(out.len(), len);
            }
        }
    }
}

#[test]
fn hostile_archives_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path(), 3);
    let text = std::fs::read(book()).unwrap()[..1500].to_vec();
    let archive = compress(&text, &m, 1);
    for i in (0..archive.len()).step_by(7) {
        let mut bad = archive.clone();
        bad[i] ^= 0x20;
        assert!(decompress(&bad, &m, 2).is_err(), "byte {i}");
    }
    for n in (0..archive.len()).step_by(11) {
        assert!(decompress(&archive[..n], &m, 1).is_err());
    }
    // Same weights, another tokenizer: refused by the header's tokenizer hash.
    let (net, sha) = llama::file::load(dir.path()).unwrap();
    let other = lmzip_tokens::train_byte_level_bpe(&[book()], VOCAB - 10).unwrap();
    let other = LlamaModel::new(
        "test-llama",
        sha,
        net,
        Tokenizer::from_json(&other, Some(VOCAB)).unwrap(),
    )
    .unwrap();
    assert!(matches!(
        decompress(&archive, &other, 1),
        Err(Error::ModelMismatch { .. })
    ));
}

#[test]
fn escapes_code_bytes_the_vocabulary_lacks() {
    let dir = tempfile::tempdir().unwrap();
    llama::file::write_random(dir.path(), &config_json(64), 4).unwrap();
    let (net, sha) = llama::file::load(dir.path()).unwrap();
    // 64 pieces: a start token and the letters and digits, so most bytes are escapes.
    let mut pieces: Vec<Option<String>> = vec![None];
    pieces.extend(
        ('a'..='z')
            .chain('A'..='Z')
            .chain('0'..='9')
            .map(|c| Some(c.to_string())),
    );
    pieces.push(Some("\u{2581}".into()));
    let tok = Tokenizer::from_pieces(&pieces, PieceStyle::SentencePiece, 64, b"letters").unwrap();
    assert_eq!(tok.symbols(), 64 + 256 - 63);
    let m = LlamaModel::new("letters", sha, net, tok).unwrap();
    let data: Vec<u8> = (0..=255)
        .chain(b"Hello World 2026".iter().copied())
        .collect();
    let mut state = m.new_state();
    let coded = chunk::encode(&m, &mut state, &data, &lmzip::Budget::spare(0));
    assert_eq!(
        chunk::decode(&m, &mut state, &coded, data.len()).unwrap(),
        data
    );
}

/// GGUF files with an embedded vocabulary, byte-level BPE (`gpt2`) and SentencePiece
/// (`llama`), in F32 and Q8_0: loaded by `LlamaModel::load` and round-tripped.
#[test]
fn gguf_models_with_embedded_vocabularies_round_trip() {
    use lmzip_models::gguf::{TensorType, Value};
    use lmzip_models::llama::gguf::write_llama;
    let dir = tempfile::tempdir().unwrap();
    let config: llama::LlamaConfig = serde_json::from_str(&config_json(VOCAB)).unwrap();
    let tensors = lmzip_testkit::random_llama_tensors(&config, 5, 0.3);
    // gpt2: the trained tokenizer's pieces in id order, and its merges.
    let json: serde_json::Value = serde_json::from_slice(&tokenizer_json()).unwrap();
    let mut tokens = vec![String::new(); VOCAB];
    for (piece, id) in json["model"]["vocab"].as_object().unwrap() {
        tokens[id.as_u64().unwrap() as usize] = piece.clone();
    }
    let types: Vec<Value> = (0..VOCAB)
        .map(|id| {
            Value::Int(if id == 0 || tokens[id].is_empty() {
                3
            } else {
                1
            })
        })
        .collect();
    let merges: Vec<Value> = json["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match m {
            serde_json::Value::Array(pair) => Value::String(format!(
                "{} {}",
                pair[0].as_str().unwrap(),
                pair[1].as_str().unwrap()
            )),
            other => Value::String(other.as_str().unwrap().to_string()),
        })
        .collect();
    let gpt2 = vec![
        (
            "tokenizer.ggml.model".to_string(),
            Value::String("gpt2".into()),
        ),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|t| Value::String(t.clone())).collect()),
        ),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.merges".into(), Value::Array(merges)),
    ];
    // llama: <unk>, <s>, the 256 byte tokens, a few pieces with scores.
    let mut spm: Vec<(String, i64, f64)> = vec![("<unk>".into(), 2, 0.0), ("<s>".into(), 3, 0.0)];
    spm.extend((0..=255u32).map(|b| (format!("<0x{b:02X}>"), 6, 0.0)));
    for (i, p) in [
        "▁the", "▁and", "▁of", "e", "t", "a", "o", "▁", "th", "he", "in",
    ]
    .iter()
    .enumerate()
    {
        spm.push((p.to_string(), 1, -(i as f64)));
    }
    let llama_vocab = vec![
        (
            "tokenizer.ggml.model".to_string(),
            Value::String("llama".into()),
        ),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(spm.iter().map(|t| Value::String(t.0.clone())).collect()),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(spm.iter().map(|t| Value::Int(t.1)).collect()),
        ),
        (
            "tokenizer.ggml.scores".into(),
            Value::Array(spm.iter().map(|t| Value::Float(t.2)).collect()),
        ),
    ];
    let text = std::fs::read(book()).unwrap()[1000..3500].to_vec();
    let mut mixed = text[..600].to_vec();
    mixed.extend((0..400u32).map(|i| (i * 97 % 251) as u8));
    for (vocab, kind, file) in [
        (&gpt2, TensorType::F32, "gpt2-f32.gguf"),
        (&gpt2, TensorType::Q8_0, "gpt2-q8.gguf"),
        (&llama_vocab, TensorType::Q8_0, "spm-q8.gguf"),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, write_llama(&config, &tensors, kind, vocab)).unwrap();
        let m = LlamaModel::load(&path).unwrap();
        assert_eq!(m.id().name, file);
        for data in [&text, &mixed] {
            let archive = compress(data, &m, 2);
            assert_eq!(decompress(&archive, &m, 1).unwrap(), *data, "{file}");
            assert_eq!(decompress(&archive, &m, 3).unwrap(), *data, "{file}");
        }
    }
}
