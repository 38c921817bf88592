//! The `lmzip` command as a user runs it: suffixes, -d/-c/-k/-f/-o/-T, stdin/stdout, refusals,
//! and that nothing the user had is lost on an error.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

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

/// Archives of the previous default (`lmzip-800k`, compiled in beside the default) decode with
/// no model file anywhere: numerics 1 and 2, chunks and solid mode.
#[test]
fn archives_of_the_previous_default_decode_without_model_files() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden");
    let text = std::fs::read(golden.join("text.txt")).unwrap();
    let empty = tempfile::tempdir().unwrap();
    for name in [
        "text.lmzip-800k.lmz",
        "text.lmzip-800k.n2.lmz",
        "text.lmzip-800k.solid6.n2.lmz",
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_lmzip"))
            .current_dir(empty.path())
            .env("HOME", empty.path())
            .env("XDG_DATA_HOME", empty.path())
            .env_remove("LMZIP_MODEL_PATH")
            .args(["-dc", golden.join(name).to_str().unwrap()])
            .output()
            .unwrap();
        assert_ok(&o);
        assert!(o.stdout == text, "{name} decodes to another text");
    }
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
    assert!(
        text.contains("model:             'lmzip-800k-everyday'"),
        "{text}"
    );
    assert!(text.contains("(857216 parameters)"), "{text}");
    assert!(text.contains("original size:     30000 bytes"), "{text}");
    // Solid mode by default: one block of up to 1 MiB.
    assert!(text.contains("mode:              solid, level 6"), "{text}");
    assert!(text.contains("block size:        1048576 bytes"), "{text}");
    assert!(text.contains("chunks:            1 ("), "{text}");
    // The paper's mode: 2048-byte chunks, the model alone.
    assert_ok(&lmzip(dir.path(), &["-kf", "--chunks", "i.txt"]));
    let text =
        String::from_utf8_lossy(&lmzip(dir.path(), &["info", "i.txt.lmz"]).stdout).to_string();
    assert!(
        text.contains("mode:              independent chunks"),
        "{text}"
    );
    assert!(text.contains("chunks:            15 ("), "{text}");
}

#[test]
fn levels_and_block_sizes() {
    let data = sample();
    let (dir, _) = setup("l.txt", &data);
    let mut sizes = Vec::new();
    for level in ["-1", "-3", "--level=9"] {
        assert_ok(&lmzip(dir.path(), &["-kf", level, "l.txt"]));
        sizes.push(
            std::fs::metadata(dir.path().join("l.txt.lmz"))
                .unwrap()
                .len(),
        );
        let o = lmzip(dir.path(), &["-dc", "l.txt.lmz"]);
        assert_ok(&o);
        assert!(o.stdout == data, "{level}");
    }
    assert!(sizes[1] < sizes[0], "{sizes:?}");
    assert!(sizes[2] < sizes[1], "{sizes:?}");
    assert_ok(&lmzip(
        dir.path(),
        &["-kf", "-2", "--block-size", "65536", "l.txt"],
    ));
    let info = lmzip(dir.path(), &["info", "l.txt.lmz"]);
    assert!(String::from_utf8_lossy(&info.stdout).contains("block size:        65536 bytes"));
    assert_err(
        &lmzip(dir.path(), &["-kf", "--block-size", "100", "l.txt"]),
        "block size",
    );
    assert_err(
        &lmzip(dir.path(), &["-kf", "--level", "0", "l.txt"]),
        "level",
    );
    assert_err(
        &lmzip(
            dir.path(),
            &["-kf", "--block-size", "65536", "--chunks", "l.txt"],
        ),
        "cannot be used with",
    );
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
