//! The `lmzip` command as a user runs it: suffixes, -d/-c/-k/-f/-o/-T, stdin/stdout, refusals,
//! and that nothing the user had is lost on an error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

fn lmzip(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lmzip"))
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn lmzip_stdin(dir: &Path, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_lmzip"))
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    out
}

fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn assert_err(o: &Output, needle: &str) {
    assert!(!o.status.success(), "unexpectedly succeeded");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(needle), "stderr lacks '{needle}': {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
}

fn sample() -> Vec<u8> {
    std::fs::read(Path::new(SHARED).join("text/canterbury/alice29.txt")).unwrap()[..30_000].to_vec()
}

fn setup(name: &str, data: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, data).unwrap();
    (dir, path)
}

#[test]
fn compress_then_decompress_replaces_files() {
    let data = sample();
    let (dir, path) = setup("alice.txt", &data);
    assert_ok(&lmzip(dir.path(), &["alice.txt"]));
    assert!(!path.exists(), "input kept without -k");
    let archive = dir.path().join("alice.txt.lmz");
    // The default model (a trained Transformer) writes English text below 30 %.
    let size = std::fs::metadata(&archive).unwrap().len();
    assert!(size < data.len() as u64 * 3 / 10, "{size} bytes");
    assert_ok(&lmzip(dir.path(), &["-d", "alice.txt.lmz"]));
    assert!(!archive.exists());
    assert_eq!(std::fs::read(&path).unwrap(), data);
}

#[test]
fn keep_force_and_refusals() {
    let data = sample();
    let (dir, path) = setup("a.txt", &data);
    assert_ok(&lmzip(dir.path(), &["-k", "a.txt"]));
    assert!(path.exists());
    assert_err(&lmzip(dir.path(), &["-k", "a.txt"]), "already exists");
    assert_ok(&lmzip(dir.path(), &["-k", "-f", "a.txt"]));
    assert_err(
        &lmzip(dir.path(), &["-d", "-k", "a.txt.lmz"]),
        "already exists",
    );
    assert_err(&lmzip(dir.path(), &["-d", "a.txt"]), "suffix");
    assert_err(
        &lmzip(dir.path(), &["a.txt.lmz"]),
        "already has .lmz suffix",
    );
    assert_err(&lmzip(dir.path(), &["missing.txt"]), "cannot open");
    assert_eq!(std::fs::read(&path).unwrap(), data);
}

#[test]
fn output_option_and_stdout() {
    let data = sample();
    let (dir, _) = setup("b.txt", &data);
    assert_ok(&lmzip(dir.path(), &["-o", "out.lmz", "b.txt"]));
    assert!(dir.path().join("b.txt").exists(), "-o keeps the input");
    let c = lmzip(dir.path(), &["-c", "b.txt"]);
    assert_ok(&c);
    assert_eq!(c.stdout, std::fs::read(dir.path().join("out.lmz")).unwrap());
    let d = lmzip(dir.path(), &["-dc", "out.lmz"]);
    assert_ok(&d);
    assert_eq!(d.stdout, data);
    assert_ok(&lmzip(dir.path(), &["-d", "-o", "back.txt", "out.lmz"]));
    assert_eq!(std::fs::read(dir.path().join("back.txt")).unwrap(), data);
    assert_ok(&lmzip(dir.path(), &["-t", "out.lmz"]));
}

#[test]
fn stdin_to_stdout_round_trip() {
    let data = sample();
    let dir = tempfile::tempdir().unwrap();
    let c = lmzip_stdin(dir.path(), &[], &data);
    assert_ok(&c);
    let d = lmzip_stdin(dir.path(), &["-d"], &c.stdout);
    assert_ok(&d);
    assert_eq!(d.stdout, data);
    let empty = lmzip_stdin(dir.path(), &["-c"], b"");
    assert_ok(&empty);
    let back = lmzip_stdin(dir.path(), &["-dc"], &empty.stdout);
    assert_ok(&back);
    assert!(back.stdout.is_empty());
}

#[test]
fn thread_counts_give_identical_archives() {
    let data = sample();
    let (dir, _) = setup("t.txt", &data);
    let one = lmzip(dir.path(), &["-c", "-T", "1", "t.txt"]);
    let two = lmzip(dir.path(), &["-c", "-T", "2", "t.txt"]);
    let many = lmzip(dir.path(), &["-c", "-T", "7", "t.txt"]);
    assert_ok(&one);
    assert_eq!(one.stdout, two.stdout);
    assert_eq!(one.stdout, many.stdout);
}

#[test]
fn corrupt_archive_fails_and_keeps_everything() {
    let data = sample();
    let (dir, _) = setup("c.txt", &data);
    assert_ok(&lmzip(dir.path(), &["c.txt"]));
    let archive_path = dir.path().join("c.txt.lmz");
    let mut archive = std::fs::read(&archive_path).unwrap();
    let mid = archive.len() / 2;
    archive[mid] ^= 0x55;
    std::fs::write(&archive_path, &archive).unwrap();
    assert_err(&lmzip(dir.path(), &["-d", "c.txt.lmz"]), "chunk");
    assert!(archive_path.exists(), "input removed after a failure");
    assert!(
        !dir.path().join("c.txt").exists(),
        "partial output left behind"
    );
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 1, "temporary files left behind");
    std::fs::write(&archive_path, &archive[..archive.len() - 3]).unwrap();
    assert_err(&lmzip(dir.path(), &["-d", "c.txt.lmz"]), "truncated");
    std::fs::write(dir.path().join("x.lmz"), b"plain text, not an archive").unwrap();
    assert_err(&lmzip(dir.path(), &["-d", "x.lmz"]), "not an lmzip archive");
    assert_err(
        &lmzip(dir.path(), &["info", "x.lmz"]),
        "not an lmzip archive",
    );
}

#[test]
fn one_failure_does_not_stop_the_others() {
    let data = sample();
    let (dir, _) = setup("ok.txt", &data);
    let o = lmzip(dir.path(), &["-k", "missing.txt", "ok.txt"]);
    assert_err(&o, "missing.txt");
    assert!(dir.path().join("ok.txt.lmz").exists());
}

#[test]
fn info_describes_the_archive() {
    let data = sample();
    let (dir, _) = setup("i.txt", &data);
    assert_ok(&lmzip(dir.path(), &["-k", "i.txt"]));
    let o = lmzip(dir.path(), &["info", "i.txt.lmz"]);
    assert_ok(&o);
    let text = String::from_utf8_lossy(&o.stdout);
    // The default model, with its parameters counted in the adjusted rate.
    assert!(text.contains("model:             'lmzip-800k'"), "{text}");
    assert!(text.contains("(857216 parameters)"), "{text}");
    assert!(text.contains("original size:     30000 bytes"), "{text}");
    assert!(text.contains("chunks:            15 ("), "{text}");
}

#[test]
fn unknown_model_and_bad_options_are_clear_errors() {
    let (dir, _) = setup("m.txt", b"data");
    assert_err(
        &lmzip(dir.path(), &["--model", "nope", "-k", "m.txt"]),
        "unknown model",
    );
    assert_err(
        &lmzip(dir.path(), &["--chunk-size", "0", "-k", "m.txt"]),
        "chunk size",
    );
    assert!(dir.path().join("m.txt").exists());
    assert!(!dir.path().join("m.txt.lmz").exists());
}

/// Write a small random-weight Transformer with `lmzip init-model`.
fn init_model(dir: &Path, name: &str, seed: &str) {
    let o = lmzip(
        dir,
        &[
            "init-model",
            name,
            "--d-model",
            "32",
            "--layers",
            "2",
            "--heads",
            "2",
            "--seed",
            seed,
        ],
    );
    assert_ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("sha256"));
}

#[test]
fn transformer_models_round_trip_real_samples() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init_model(d, "tiny", "1");
    init_model(d, "other", "2");
    // A refusal to overwrite a model.
    assert_err(
        &lmzip(d, &["init-model", "tiny", "--preset", "200k"]),
        "already holds",
    );
    let text = &sample()[..12_000];
    // Speech as the paper's 8-bit samples, through the data module.
    let modality = lmzip_data::Modality::Audio8;
    let files = lmzip_data::list_files(&Path::new(SHARED).join("audio"), modality).unwrap();
    let audio = lmzip_data::file_chunks(&files[0], modality, 2048)
        .unwrap()
        .concat();
    for (name, data) in [("t.txt", text), ("a.bin", &audio[..10_000])] {
        std::fs::write(d.join(name), data).unwrap();
        let archive = format!("{name}.lmz");
        assert_ok(&lmzip(d, &["-k", "-T", "1", "--model", "./tiny", name]));
        let one = std::fs::read(d.join(&archive)).unwrap();
        assert_ok(&lmzip(d, &["-kf", "-T", "2", "--model", "./tiny", name]));
        assert_eq!(
            std::fs::read(d.join(&archive)).unwrap(),
            one,
            "-T 1 and -T 2 differ"
        );
        // Decoding finds the model by path, or by name in LMZIP_MODEL_PATH.
        let o = lmzip(d, &["-dc", "--model", "./tiny", &archive]);
        assert_ok(&o);
        assert_eq!(o.stdout, data);
        let o = Command::new(env!("CARGO_BIN_EXE_lmzip"))
            .current_dir(d)
            .env("LMZIP_MODEL_PATH", d)
            .args(["-dc", "-T", "3", &archive])
            .output()
            .unwrap();
        assert_ok(&o);
        assert_eq!(o.stdout, data);
        // Without the model, or with another one: clear errors, nothing written.
        assert_err(&lmzip(d, &["-dc", &archive]), "needs model 'tiny'");
        assert_err(&lmzip(d, &["-dc", "--model", "./other", &archive]), "model");
    }
    let o = lmzip(d, &["info", "t.txt.lmz"]);
    assert_ok(&o);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("'tiny'"), "{text}");
    assert!(text.contains("adjusted rate:     unknown"), "{text}");
    // With the model in the search path, info counts its parameters (2 bytes each).
    let o = Command::new(env!("CARGO_BIN_EXE_lmzip"))
        .env("LMZIP_MODEL_PATH", d)
        .args(["info", d.join("t.txt.lmz").to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("parameters"), "{text}");
    // The random model favours English bytes: the text is coded, not stored.
    assert!(std::fs::metadata(d.join("t.txt.lmz")).unwrap().len() < 11_000);
}

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
    assert_ok(&lmzip(d, &["-k", "--model", "./m", "t.txt"]));
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
