//! Helpers shared by the CLI's test binaries: run the built `lmzip`, check its outcome.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

pub fn lmzip(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lmzip"))
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn lmzip_stdin(dir: &Path, args: &[&str], input: &[u8]) -> Output {
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

pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

pub fn assert_err(o: &Output, needle: &str) {
    assert!(!o.status.success(), "unexpectedly succeeded");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(needle), "stderr lacks '{needle}': {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
}

pub fn sample() -> Vec<u8> {
    std::fs::read(Path::new(SHARED).join("text/canterbury/alice29.txt")).unwrap()[..30_000].to_vec()
}

pub fn setup(name: &str, data: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, data).unwrap();
    (dir, path)
}

/// Write a small random-weight Transformer with `lmzip init-model`.
pub fn init_model(dir: &Path, name: &str, seed: &str) {
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

/// Run `script` in bash in `dir`, with `$0` the lmzip binary (for `ulimit` and redirections).
pub fn in_shell(dir: &Path, script: &str) -> Output {
    Command::new("bash")
        .current_dir(dir)
        .args(["-c", script])
        .arg(env!("CARGO_BIN_EXE_lmzip"))
        .output()
        .unwrap()
}

/// The names in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
