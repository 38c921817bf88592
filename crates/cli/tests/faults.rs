//! Faults and hostile surroundings: archives that name paths, a `models/` directory in the
//! current directory, signals and full disks during work, dangerous options, metadata, model
//! files that are devices, FIFOs or directories. Each case must lose nothing, leak nothing and
//! leave nothing behind.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A baseline archive of `data` whose header names `model` instead (CRC recomputed).
fn archive_naming(dir: &Path, model: &str) -> Vec<u8> {
    let (_d, path) = setup("x.txt", &sample()[..3000]);
    let o = lmzip(
        path.parent().unwrap(),
        &["-c", "--model", "baseline", "x.txt"],
    );
    assert_ok(&o);
    let archive = o.stdout;
    let mut rest = &archive[..];
    let mut header = lmzip::Header::read(&mut rest).unwrap();
    header.model_name = model.to_string();
    let mut out = Vec::new();
    header.write(&mut out).unwrap();
    out.extend_from_slice(rest);
    std::fs::write(dir.join("evil.lmz"), &out).unwrap();
    out
}

#[test]
fn archives_name_models_never_paths() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A real model directory the archive tries to reach by path.
    init_model(d, "target", "3");
    let target = d.join("target").display().to_string();
    for name in [target.as_str(), "../target", "./target", "target/../target"] {
        archive_naming(d, name);
        for args in [&["-t", "evil.lmz"][..], &["-dc", "evil.lmz"][..]] {
            let o = lmzip(d, args);
            assert_err(&o, "not a plain name");
        }
        let info = lmzip(d, &["info", "evil.lmz"]);
        assert_ok(&info);
        let text = String::from_utf8_lossy(&info.stdout);
        assert!(text.contains("adjusted rate:     unknown"), "{text}");
    }
    // Terminal escapes in a name reach the screen escaped.
    archive_naming(d, "red\u{1b}[31m\u{7}name");
    for o in [
        lmzip(d, &["-t", "evil.lmz"]),
        lmzip(d, &["info", "evil.lmz"]),
    ] {
        let all = [o.stdout, o.stderr].concat();
        assert!(
            !all.contains(&0x1b) && !all.contains(&0x07),
            "raw escape printed"
        );
        assert!(String::from_utf8_lossy(&all).contains("red\\u{1b}[31m\\u{7}name"));
    }
}

#[test]
fn a_models_directory_in_the_current_directory_changes_nothing() {
    let clean = tempfile::tempdir().unwrap();
    std::fs::write(clean.path().join("t.txt"), &sample()[..2000]).unwrap();
    let reference = lmzip(clean.path(), &["-c", "t.txt"]);
    assert_ok(&reference);
    // Random models under the compiled-in models' names in ./models and in the current
    // directory.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("models")).unwrap();
    for (at, name) in [
        (d.join("models"), "lmzip-800k-everyday"),
        (d.to_path_buf(), "lmzip-800k"),
    ] {
        init_model(&at, name, "5");
    }
    std::fs::write(d.join("t.txt"), &sample()[..2000]).unwrap();
    let o = lmzip(d, &["-c", "t.txt"]);
    assert_ok(&o);
    assert!(
        o.stdout == reference.stdout,
        "the compiled-in default was replaced"
    );
    std::fs::write(d.join("t.txt.lmz"), &o.stdout).unwrap();
    let back = lmzip(d, &["-dc", "t.txt.lmz"]);
    assert_ok(&back);
    assert_eq!(back.stdout, &sample()[..2000]);
}

/// Start `lmzip args` in `dir`, wait until its temporary output exists, send `signal`, and
/// return the exit code.
fn interrupted(dir: &Path, args: &[&str], signal: i32) -> Option<i32> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lmzip"))
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !listing(dir).iter().any(|n| n.ends_with(".tmp")) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no temporary file"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: kill sends a signal to our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    child.wait().unwrap().code()
}

/// (SIGXFSZ is ignored, so that a write past `ulimit -f` fails one file: `hostile.rs`.)
#[test]
fn signals_remove_partial_outputs_and_keep_inputs() {
    let data = lmzip_testkit::Rng::new(1).text(1_000_000);
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("big.txt"), &data).unwrap();
        let code = interrupted(d, &["--model", "baseline", "-T", "1", "big.txt"], signal);
        assert_eq!(code, Some(128 + signal), "compression, signal {signal}");
        assert_eq!(listing(d), ["big.txt"], "compression, signal {signal}");
        assert!(std::fs::read(d.join("big.txt")).unwrap() == data);
        // Decompression of a finished archive.
        assert_ok(&lmzip(d, &["--model", "baseline", "-T", "2", "big.txt"]));
        let archive = std::fs::read(d.join("big.txt.lmz")).unwrap();
        let code = interrupted(d, &["-d", "-T", "1", "big.txt.lmz"], signal);
        assert_eq!(code, Some(128 + signal), "decompression, signal {signal}");
        assert_eq!(
            listing(d),
            ["big.txt.lmz"],
            "decompression, signal {signal}"
        );
        assert!(std::fs::read(d.join("big.txt.lmz")).unwrap() == archive);
    }
}

#[test]
fn a_full_disk_leaves_nothing_and_the_next_file_is_tried() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&small)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: no tmpfs can be mounted here (ENOSPC case)");
        return;
    }
    let d = small.as_path();
    let big = lmzip_testkit::Rng::new(3).bytes(40_000);
    std::fs::write(d.join("a.bin"), &big).unwrap();
    std::fs::write(d.join("b.txt"), b"small and fine").unwrap();
    let o = lmzip(d, &["--model", "baseline", "a.bin", "b.txt"]);
    let names = listing(d);
    let _ = Command::new("umount").arg(&small).status();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("a.bin"));
    assert_eq!(names, ["a.bin", "b.txt.lmz"]);
}

#[test]
fn dangerous_options_are_refused() {
    let (dir, _) = setup("a.txt", &sample()[..1000]);
    let d = dir.path();
    // The output is the input, even with -f.
    assert_err(
        &lmzip(d, &["-f", "-o", "a.txt", "--model", "baseline", "a.txt"]),
        "is the input itself",
    );
    std::os::unix::fs::symlink("a.txt", d.join("same.txt")).unwrap();
    assert_err(
        &lmzip(d, &["-f", "-o", "same.txt", "--model", "baseline", "a.txt"]),
        "is the input itself",
    );
    assert!(std::fs::read(d.join("a.txt")).unwrap() == sample()[..1000]);
    // A symbolic link is skipped without -f; with -f the link (not its target) is replaced.
    std::fs::remove_file(d.join("same.txt")).unwrap();
    std::os::unix::fs::symlink("a.txt", d.join("link.txt")).unwrap();
    assert_err(
        &lmzip(d, &["--model", "baseline", "link.txt"]),
        "symbolic link",
    );
    assert_ok(&lmzip(d, &["-f", "--model", "baseline", "link.txt"]));
    assert_eq!(listing(d), ["a.txt", "link.txt.lmz"]);
    // A 250-character name: NAME.lmz fits in 255 bytes, and so must the temporary name.
    let long = format!("{}.txt", "n".repeat(246));
    std::fs::write(d.join(&long), b"a long name").unwrap();
    assert_ok(&lmzip(d, &["--model", "baseline", &long]));
    assert_ok(&lmzip(d, &["-d", &format!("{long}.lmz")]));
    assert_eq!(std::fs::read(d.join(&long)).unwrap(), b"a long name");
    // An absurd thread count is capped, not an abort.
    assert_ok(&lmzip(
        d,
        &["-kf", "-T", "1000000", "--model", "baseline", "a.txt"],
    ));
    // A closed standard output is an error, not lost data.
    let o = in_shell(d, "exec \"$0\" -c --model baseline a.txt >&-");
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("standard output is closed"));
}

#[test]
fn mode_and_times_survive_a_round_trip() {
    let (dir, path) = setup("script.sh", b"#!/bin/sh\necho hi\n");
    let d = dir.path();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o751)).unwrap();
    let mtime = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(mtime).unwrap();
    drop(file);
    assert_ok(&lmzip(d, &["--model", "baseline", "script.sh"]));
    let archive = std::fs::metadata(d.join("script.sh.lmz")).unwrap();
    assert_eq!(archive.permissions().mode() & 0o777, 0o751);
    assert_eq!(archive.modified().unwrap(), mtime);
    assert_ok(&lmzip(d, &["-d", "script.sh.lmz"]));
    let back = std::fs::metadata(&path).unwrap();
    assert_eq!(back.permissions().mode() & 0o777, 0o751);
    assert_eq!(back.modified().unwrap(), mtime);
}

/// Puts something in place of a model directory's `config.json`.
type MakeConfig = dyn Fn(&Path);

#[test]
fn model_files_that_are_devices_fifos_or_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("t.txt"), b"some text").unwrap();
    let cases: [(&str, &MakeConfig); 3] = [
        ("zero", &|m| {
            std::os::unix::fs::symlink("/dev/zero", m.join("config.json")).unwrap()
        }),
        ("fifo", &|m| {
            let path = std::ffi::CString::new(m.join("config.json").to_str().unwrap()).unwrap();
            // SAFETY: mkfifo on a path we own.
            assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        }),
        ("dir", &|m| {
            std::fs::create_dir(m.join("config.json")).unwrap()
        }),
    ];
    for (name, make) in cases {
        let model = d.join(name);
        std::fs::create_dir(&model).unwrap();
        std::fs::write(model.join("model.safetensors"), b"").unwrap();
        make(&model);
        let start = Instant::now();
        let o = lmzip(d, &["-c", "--model", &format!("./{name}"), "t.txt"]);
        assert_err(&o, "not a regular file");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{name}: took too long"
        );
    }
}

#[test]
fn error_messages_say_things_once_and_name_the_trailer() {
    let (dir, _) = setup("a.txt", &sample()[..5000]);
    let d = dir.path();
    std::fs::create_dir(d.join("dir.lmz")).unwrap();
    let o = lmzip(d, &["-d", "dir.lmz"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("is a directory").count(), 1, "{err}");
    // A flipped trailer checksum is a trailer error, not a chunk's.
    assert_ok(&lmzip(d, &["-k", "--model", "baseline", "a.txt"]));
    let mut archive = std::fs::read(d.join("a.txt.lmz")).unwrap();
    let n = archive.len();
    archive[n - 1] ^= 1;
    std::fs::write(d.join("bad.lmz"), &archive).unwrap();
    let o = lmzip(d, &["-t", "bad.lmz"]);
    assert_err(&o, "trailer checksum mismatch");
    assert!(!String::from_utf8_lossy(&o.stderr).contains("chunk"));
}

#[test]
fn compressed_data_is_not_read_from_a_terminal() {
    // `script` gives lmzip a pseudo-terminal as standard input.
    let o = Command::new("script")
        .args(["-qec"])
        .arg(format!("{} -d", env!("CARGO_BIN_EXE_lmzip")))
        .arg("/dev/null")
        .stdin(Stdio::null())
        .output();
    let Ok(o) = o else {
        eprintln!("SKIPPED: no `script` to make a terminal");
        return;
    };
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("from a terminal"));
}
