//! The lab commands end to end: train, sample, bench, dataset, and local LLMs through
//! init-model, tokenizer, compression and bench.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

#[test]
fn train_writes_a_model_that_compresses_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = Path::new(SHARED).canonicalize().unwrap();
    let data = data.to_str().unwrap();
    let common = [
        "--d-model",
        "16",
        "--layers",
        "1",
        "--heads",
        "2",
        "--context",
        "128",
        "--batch",
        "4",
        "--eval-every",
        "5",
        "--eval-chunks",
        "2",
        "--modality",
        "text",
        "--lr",
        "1e-2",
        "--warmup",
        "2",
        "--data",
        data,
    ];
    let mut args = vec!["train", "m", "--steps", "10"];
    args.extend(common);
    assert_ok(&lmzip(d, &args));
    let csv = std::fs::read_to_string(d.join("m/train.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(
        std::fs::read_to_string(d.join("m/loss.svg"))
            .unwrap()
            .contains("<svg")
    );
    // Training again into the same directory needs --resume; resuming goes on from step 10.
    assert_err(&lmzip(d, &args), "--resume");
    let mut more = vec!["train", "m", "--steps", "15", "--resume"];
    more.extend(common);
    assert_ok(&lmzip(d, &more));
    let csv = std::fs::read_to_string(d.join("m/train.csv")).unwrap();
    assert!(csv.lines().last().unwrap().starts_with("15,"), "{csv}");
    // The trained model is a model directory: it compresses in chunks of its context (128).
    std::fs::write(d.join("t.txt"), &sample()[..3000]).unwrap();
    assert_ok(&lmzip(d, &["-k", "--chunks", "--model", "./m", "t.txt"]));
    let o = lmzip(d, &["info", "t.txt.lmz"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("chunk size:        128 bytes"));
    let o = lmzip(d, &["-dc", "--model", "./m", "t.txt.lmz"]);
    assert_ok(&o);
    assert_eq!(o.stdout, &sample()[..3000]);
    assert_err(
        &lmzip(
            d,
            &["-kf", "--model", "./m", "--chunk-size", "2048", "t.txt"],
        ),
        "context",
    );
}

#[test]
fn sample_generates_from_codecs_and_models() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for model in ["gzip", "zstd", "brotli", "baseline"] {
        let args = [
            "sample",
            "--model",
            model,
            "--prompt",
            "abcabcabcabc",
            "-n",
            "12",
            "--seed",
            "4",
        ];
        let a = lmzip(d, &args);
        assert_ok(&a);
        assert_eq!(a.stdout.len(), 12, "{model}");
        assert_eq!(
            lmzip(d, &args).stdout,
            a.stdout,
            "{model}: the seed fixes the sample"
        );
    }
    // A cold sample from the baseline continues an obvious pattern.
    let o = lmzip(
        d,
        &[
            "sample",
            "--model",
            "baseline",
            "--prompt",
            &"0123456789".repeat(30),
            "-n",
            "20",
            "--temperature",
            "0.05",
        ],
    );
    assert_eq!(o.stdout, b"01234567890123456789");
    init_model(d, "tiny", "1");
    assert_err(
        &lmzip(d, &["sample", "--model", "./tiny", "-n", "5000"]),
        "context",
    );
    assert_err(&lmzip(d, &["sample", "--temperature", "0"]), "temperature");
    // --png draws the prompt and the sample as a grayscale image: 100 + 28 bytes, 32 wide.
    let o = lmzip(
        d,
        &[
            "sample",
            "--model",
            "gzip",
            "--prompt",
            &"x".repeat(100),
            "-n",
            "28",
            "--png",
            "s.png",
            "--width",
            "32",
        ],
    );
    assert_ok(&o);
    let png = std::fs::read(d.join("s.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(
        u32::from_be_bytes(png[16..20].try_into().unwrap()),
        32,
        "width"
    );
    assert_eq!(
        u32::from_be_bytes(png[20..24].try_into().unwrap()),
        4,
        "height"
    );
}

#[test]
fn bench_report_writes_table_1_data_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = Path::new(SHARED).canonicalize().unwrap();
    let o = lmzip(
        d,
        &[
            "bench",
            "--data",
            data.to_str().unwrap(),
            "--modality",
            "text,random",
            "--chunks",
            "3",
            "--model",
            "baseline",
            "--unchunked",
            "--position-chunks",
            "2",
            "-T",
            "2",
            "--report",
            "r/RESULTS.md",
        ],
    );
    assert_ok(&o);
    let md = std::fs::read_to_string(d.join("r/RESULTS.md")).unwrap();
    for needle in [
        "## Table 1",
        "| chunk size | compressor | raw text | raw random | adjusted text | adjusted random |",
        "| ∞ | gzip -9 |",
        "| 2048 | lmzip baseline |",
        "position_text.svg",
    ] {
        assert!(md.contains(needle), "report lacks '{needle}':\n{md}");
    }
    for file in [
        "results.json",
        "results.csv",
        "rate_vs_speed.svg",
        "rate_vs_speed.png",
        "position_text.svg",
        "position_random.png",
    ] {
        let len = std::fs::metadata(d.join("r/results").join(file)).map_or(0, |m| m.len());
        assert!(len > 100, "{file}: {len} bytes");
    }
    // Random bytes do not compress: gzip's chunked rate is within a point of 100 %.
    let csv = std::fs::read_to_string(d.join("r/results/results.csv")).unwrap();
    let gzip = csv
        .lines()
        .find(|l| l.starts_with("random,3,2048,\"gzip -9\""))
        .unwrap_or_else(|| panic!("{csv}"));
    let rate: f64 = gzip.split(',').nth(5).unwrap().parse().unwrap();
    assert!((0.99..1.01).contains(&rate), "{rate}");
}

/// `--model NAME@LEVEL` measures NAME mixed at that level, each chunk its own block; a level
/// outside 1–9 is refused.
#[test]
fn bench_measures_a_model_mixed_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = Path::new(SHARED).canonicalize().unwrap();
    let bench = |models: &str| {
        lmzip(
            d,
            &[
                "bench",
                "--data",
                data.to_str().unwrap(),
                "--modality",
                "text",
                "--chunks",
                "4",
                "--model",
                models,
                "-T",
                "2",
            ],
        )
    };
    let o = bench("baseline,baseline@2");
    assert_ok(&o);
    let table = String::from_utf8_lossy(&o.stdout);
    let rate = |name: &str| -> f64 {
        let row = table
            .lines()
            .find(|l| l.contains(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{table}"));
        row.split('|').nth(5).unwrap().trim().parse().unwrap()
    };
    // Both are real measurements of prose: well below 100 %, and not the same coder.
    let (alone, mixed) = (rate("lmzip baseline"), rate("lmzip baseline@2"));
    assert!(alone < 70.0 && mixed < 70.0, "{alone} {mixed}");
    assert_ne!(alone, mixed);
    assert_err(&bench("baseline@10"), "must be 1 to 9");
}

#[test]
fn dataset_writes_whole_chunks_of_both_splits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = Path::new(SHARED).canonicalize().unwrap();
    let args = [
        "dataset",
        "out",
        "--data",
        data.to_str().unwrap(),
        "--modality",
        "text",
    ];
    assert_ok(&lmzip(d, &args));
    for split in ["train", "held-out"] {
        let len = std::fs::metadata(d.join(format!("out/text.{split}")))
            .unwrap()
            .len();
        assert!(len > 0 && len.is_multiple_of(2048), "{split}: {len}");
    }
    assert_err(&lmzip(d, &args), "already exists");
}

/// A local LLM as a user gives it: a GGUF file with its vocabulary (written here: random
/// Llama-shaped weights, a byte-level BPE trained on one book), and a Hugging Face directory
/// made by `init-model --tokenizer`. Compressed with `--model PATH`, decompressed by the name the
/// header records (found in LMZIP_MODEL_PATH), described by `info`, measured by `bench`.
#[test]
fn local_llms_from_gguf_and_directories_round_trip() {
    use lmzip_models::gguf::{TensorType, Value};
    use lmzip_models::llama::gguf::write_llama;
    let dir = tempfile::tempdir().unwrap();
    let book = Path::new(SHARED).join("text/canterbury/alice29.txt");
    let json = lmzip_tokens::train_byte_level_bpe(std::slice::from_ref(&book), 512).unwrap();
    std::fs::write(dir.path().join("tok.json"), &json).unwrap();

    // The directory, through the command.
    assert_ok(&lmzip(
        dir.path(),
        &[
            "init-model",
            "hf",
            "--preset",
            "llama-tiny",
            "--tokenizer",
            "tok.json",
        ],
    ));
    // The GGUF file: the same kind of model, vocabulary embedded.
    let config_text = std::fs::read_to_string(dir.path().join("hf/config.json")).unwrap();
    let config: lmzip_models::llama::LlamaConfig = serde_json::from_str(&config_text).unwrap();
    let tensors = lmzip_testkit::random_llama_tensors(&config, 7, 0.1);
    let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let mut tokens = vec![String::new(); config.vocab_size];
    for (piece, id) in parsed["model"]["vocab"].as_object().unwrap() {
        tokens[id.as_u64().unwrap() as usize] = piece.clone();
    }
    let vocab = vec![
        (
            "tokenizer.ggml.model".to_string(),
            Value::String("gpt2".into()),
        ),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.into_iter().map(Value::String).collect()),
        ),
    ];
    let gguf = write_llama(&config, &tensors, TensorType::Q8_0, &vocab);
    std::fs::write(dir.path().join("tiny.gguf"), gguf).unwrap();

    let data = sample()[..12_000].to_vec();
    for (model, name) in [("tiny.gguf", "tiny.gguf"), ("hf", "hf")] {
        std::fs::write(dir.path().join("t.txt"), &data).unwrap();
        assert_ok(&lmzip(dir.path(), &["--model", model, "-f", "t.txt"]));
        let info = lmzip(dir.path(), &["info", "t.txt.lmz"]);
        assert_ok(&info);
        let text = String::from_utf8_lossy(&info.stdout);
        assert!(
            text.contains(&format!("model:             '{name}'")),
            "{text}"
        );
        assert!(text.contains("tokenizer sha256:"), "{text}");
        let o = Command::new(env!("CARGO_BIN_EXE_lmzip"))
            .current_dir(dir.path())
            .env("LMZIP_MODEL_PATH", dir.path())
            .args(["-d", "-T", "2", "t.txt.lmz"])
            .output()
            .unwrap();
        assert_ok(&o);
        assert_eq!(
            std::fs::read(dir.path().join("t.txt")).unwrap(),
            data,
            "{model}"
        );
    }
    // A GGUF file in the search path is found by its name without `.gguf`; the archive
    // records the file's name.
    let o = Command::new(env!("CARGO_BIN_EXE_lmzip"))
        .current_dir(dir.path())
        .env("LMZIP_MODEL_PATH", dir.path())
        .args(["-c", "--model", "tiny", "t.txt"])
        .output()
        .unwrap();
    assert_ok(&o);
    let info = lmzip_stdin(dir.path(), &["info", "-"], &o.stdout);
    assert!(String::from_utf8_lossy(&info.stdout).contains("model:             'tiny.gguf'"));
    // The same weights with another vocabulary are refused by the tokenizer hash.
    assert_ok(&lmzip(dir.path(), &["--model", "hf", "-f", "t.txt"]));
    let other = lmzip_tokens::train_byte_level_bpe(&[book], 400).unwrap();
    std::fs::write(dir.path().join("hf/tokenizer.json"), other).unwrap();
    assert_err(
        &lmzip(dir.path(), &["--model", "hf", "-d", "t.txt.lmz"]),
        "model",
    );
    assert!(dir.path().join("t.txt.lmz").exists());
    // bench takes a local LLM like any model.
    std::fs::write(dir.path().join("t.txt"), &data).unwrap();
    let o = lmzip(
        dir.path(),
        &[
            "bench",
            "--model",
            "tiny.gguf",
            "--modality",
            "text:t.txt",
            "--chunks",
            "2",
        ],
    );
    assert_ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("lmzip tiny.gguf"));
}
