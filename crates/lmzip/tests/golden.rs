//! Golden archives (`tests/golden/` at the repository root): format 1 / numerics 1, written
//! before the layout move, and format 2 (solid mode, `*.solidN.lmz`, level N), written by
//! [`write_solid_goldens`] under numerics 1. Each must decode to its original, at any thread
//! count, forever, with the model computing the numerics version the archive records.
//! Re-encoding the original with that model must also give the same bytes; for a model whose
//! predictions do not depend on the version (the baseline, an LLM), the header then records
//! this build's version, and every other byte is the same.

use lmzip::read::Decoder;
use lmzip_models::registry::{self, AnyModel};
use lmzip_models::{Level, Mixed, with_model};
use std::io::Read;
use std::path::{Path, PathBuf};

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

/// The model an archive of `tests/golden` names (`baseline`, a compiled-in Transformer, or the
/// tiny Llama directory beside the archives), computing numerics `version`.
fn model_for(name: &str, version: u16) -> AnyModel {
    let given = match name {
        "llama-tiny" => golden().join("llama-tiny").display().to_string(),
        other => other.to_string(),
    };
    registry::by_name(&given)
        .unwrap()
        .for_numerics(version)
        .unwrap()
}

/// An archive's header and the bytes after it.
fn split(archive: &[u8]) -> (lmzip::Header, &[u8]) {
    let mut rest = archive;
    let header = lmzip::Header::read(&mut rest).unwrap();
    (header, rest)
}

fn decode(archive: &[u8], model: AnyModel, threads: usize) -> Vec<u8> {
    fn run<M: lmzip::Model>(archive: &[u8], m: M, threads: usize) -> Vec<u8> {
        let mut dec = Decoder::new(archive, m, threads).unwrap();
        let mut out = Vec::new();
        dec.read_to_end(&mut out).unwrap();
        out
    }
    let header = lmzip::Header::read(&mut &archive[..]).unwrap();
    with_model!(model, m => match header.mixer {
        Some(level) => run(archive, mixed(m, level, header.chunk_size), threads),
        None => run(archive, m, threads),
    })
}

/// `model` mixed at `level` for blocks of `block` bytes.
fn mixed<M: lmzip::Model>(model: M, level: u8, block: u32) -> Mixed<M> {
    Mixed::new(model, Level::new(level).unwrap(), block).unwrap()
}

/// Encode as the archive was: with the model alone, or mixed at `level`.
fn encode(data: &[u8], model: AnyModel, chunk_size: u32, level: Option<u8>) -> Vec<u8> {
    fn run<M: lmzip::Model>(data: &[u8], m: M, chunk_size: u32) -> Vec<u8> {
        let mut enc = lmzip::write::EncoderBuilder::new()
            .chunk_size(chunk_size)
            .original_len(Some(data.len() as u64))
            .threads(2)
            .build(Vec::new(), m)
            .unwrap();
        std::io::Write::write_all(&mut enc, data).unwrap();
        enc.finish().unwrap()
    }
    with_model!(model, m => match level {
        Some(level) => run(data, mixed(m, level, chunk_size), chunk_size),
        None => run(data, m, chunk_size),
    })
}

/// Synthetic x86-like code (calls to a few targets between filler bytes), for the x86 transform.
fn calls(n: usize) -> Vec<u8> {
    let mut x = 5u64;
    let mut next = || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) as u32
    };
    let mut code = Vec::new();
    while code.len() < n {
        let at = code.len() as u32;
        code.push(0xE8);
        code.extend_from_slice(
            &(0x4000 + next() % 8 * 0x40)
                .wrapping_sub(at + 5)
                .to_le_bytes(),
        );
        for _ in 0..1 + next() % 12 {
            code.push(next() as u8);
        }
    }
    code.truncate(n);
    code
}

/// The solid-mode golden archives (format 2): (original, model, level, block size). Written
/// once by `cargo test -p lmzip --test golden -- --ignored write_solid_goldens`; never again
/// unless a new format or numerics version adds new ones beside them.
const SOLID: [(&str, &str, u8, u32); 5] = [
    ("text", "baseline", 1, 1024),
    ("text", "baseline", 9, 1024),
    ("mixed", "baseline", 6, 1024),
    ("text", "lmzip-800k", 6, 1024),
    ("calls", "baseline", 6, 1024),
];

#[test]
#[ignore = "writes tests/golden: run once, by hand"]
fn write_solid_goldens() {
    std::fs::write(golden().join("calls.bin"), calls(2500)).unwrap();
    for (original, model, level, block) in SOLID {
        let data = std::fs::read(original_path(original)).unwrap();
        let archive = encode(&data, model_for(model, 1), block, Some(level));
        let name = format!("{original}.{model}.solid{level}.lmz");
        std::fs::write(golden().join(name), archive).unwrap();
    }
}

/// Golden archives of numerics 2 (the byte Transformers' attention window of 256), named
/// `*.n2.lmz`: (original, model, mixer level or none for the paper's chunks, chunk or block
/// size). Written once by `cargo test -p lmzip --test golden -- --ignored
/// write_numerics_2_goldens`.
const NUMERICS_2: [(&str, &str, Option<u8>, u32); 4] = [
    ("text", "lmzip-800k", None, 2048),
    ("text", "lmzip-800k", Some(6), 4096),
    ("text", "lmzip-800k-everyday", None, 2048),
    ("text", "lmzip-800k-everyday", Some(6), 4096),
];

#[test]
#[ignore = "writes tests/golden: run once, by hand"]
fn write_numerics_2_goldens() {
    write_numerics_goldens(2, &NUMERICS_2);
}

/// Golden archives of numerics 3 (solid mode's mixers start by trusting the byte model), named
/// `*.n3.lmz`, as [`NUMERICS_2`]. Written once by `cargo test -p lmzip --test golden --
/// --ignored write_numerics_3_goldens`; the solid one in blocks of 2048 bytes, the smallest.
const NUMERICS_3: [(&str, &str, Option<u8>, u32); 2] = [
    ("text", "lmzip-800k-everyday", None, 2048),
    ("text", "lmzip-800k-everyday", Some(6), 2048),
];

#[test]
#[ignore = "writes tests/golden: run once, by hand"]
fn write_numerics_3_goldens() {
    write_numerics_goldens(3, &NUMERICS_3);
}

/// Golden archives of numerics 4 (int8 matrix weights and integer products), named
/// `*.n4.lmz`, as [`NUMERICS_3`]. Written once by `cargo test -p lmzip --test golden --
/// --ignored write_numerics_4_goldens`.
const NUMERICS_4: [(&str, &str, Option<u8>, u32); 2] = NUMERICS_3;

#[test]
#[ignore = "writes tests/golden: run once, by hand"]
fn write_numerics_4_goldens() {
    write_numerics_goldens(4, &NUMERICS_4);
}

/// Golden archives of numerics 5 (the LLMs' int8 matrix weights), named `*.n5.lmz`, as
/// [`NUMERICS_2`]. Written once by `cargo test -p lmzip --test golden -- --ignored
/// write_numerics_5_goldens`.
const NUMERICS_5: [(&str, &str, Option<u8>, u32); 1] = [("text", "llama-tiny", None, 1024)];

#[test]
#[ignore = "writes tests/golden: run once, by hand"]
fn write_numerics_5_goldens() {
    write_numerics_goldens(5, &NUMERICS_5);
}

/// Write `goldens` (as [`NUMERICS_2`]) under numerics `version`, as `*.nV.lmz`.
fn write_numerics_goldens(version: u16, goldens: &[(&str, &str, Option<u8>, u32)]) {
    for &(original, model, level, size) in goldens {
        let data = std::fs::read(original_path(original)).unwrap();
        let archive = encode(&data, model_for(model, version), size, level);
        let solid = level.map_or(String::new(), |l| format!(".solid{l}"));
        let name = format!("{original}.{model}{solid}.n{version}.lmz");
        std::fs::write(golden().join(name), archive).unwrap();
    }
}

/// The original beside the archives: `NAME.txt` or `NAME.bin`.
fn original_path(name: &str) -> PathBuf {
    ["txt", "bin"]
        .iter()
        .map(|ext| golden().join(format!("{name}.{ext}")))
        .find(|p| p.exists())
        .unwrap()
}

#[test]
fn golden_archives_decode_and_re_encode_identically() {
    let mut seen = 0;
    for entry in std::fs::read_dir(golden()).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some(stem) = file.strip_suffix(".lmz") else {
            continue;
        };
        // `.nV`: written under numerics V (else 1).
        let (stem, numerics) = match stem.rsplit_once(".n") {
            Some((stem, v)) if v.parse::<u16>().is_ok() => (stem, v.parse().unwrap()),
            _ => (stem, 1),
        };
        let (original, model) = stem.split_once('.').unwrap();
        let (model, level) = match model.split_once(".solid") {
            Some((model, level)) => (model, Some(level.parse::<u8>().unwrap())),
            None => (model, None),
        };
        let data = std::fs::read(original_path(original)).unwrap();
        let archive = std::fs::read(&path).unwrap();
        let header = lmzip::Header::read(&mut &archive[..]).unwrap();
        assert_eq!(header.model_name, model, "{file}");
        assert_eq!(header.mixer, level, "{file}");
        assert_eq!(header.numerics_version, numerics, "{file}");
        let version = header.numerics_version;
        for threads in [1, 2, 3] {
            assert!(
                decode(&archive, model_for(model, version), threads) == data,
                "{file} at {threads} threads"
            );
        }
        let again = encode(&data, model_for(model, version), header.chunk_size, level);
        let (mut again_header, again_body) = split(&again);
        if again_header.numerics_version != version {
            assert!(
                !model.starts_with("lmzip-800k"),
                "{file}: the Transformer re-encodes its version"
            );
            assert_eq!(
                again_header.numerics_version,
                lmzip::NUMERICS_VERSION,
                "{file}"
            );
            again_header.numerics_version = version;
        }
        assert_eq!(
            again_header, header,
            "{file}: re-encoding gives another header"
        );
        assert!(
            again_body == split(&archive).1,
            "{file}: re-encoding gives other bytes"
        );
        seen += 1;
    }
    assert_eq!(
        seen,
        7 + SOLID.len() + NUMERICS_2.len() + NUMERICS_3.len() + NUMERICS_4.len() + NUMERICS_5.len(),
        "every golden archive checked"
    );
}

/// An archive's numerics version decides the model's predictions: a version this build does
/// not know is refused by name, and so is a model computing another version than the archive's.
#[test]
fn numerics_versions_are_checked() {
    let archive = std::fs::read(golden().join("text.lmzip-800k.lmz")).unwrap();
    let (mut header, body) = split(&archive);
    assert_eq!(header.numerics_version, 1);
    let message = |archive: &[u8], version: u16| {
        let model = registry::by_name("lmzip-800k").unwrap();
        let model = model.for_numerics(version).unwrap();
        with_model!(model, m => match Decoder::new(archive, m, 1) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        })
    };
    assert!(message(&archive, 1).is_empty());
    let wrong = message(&archive, 2);
    assert!(wrong.contains("numerics version 1"), "{wrong}");
    header.numerics_version = lmzip::NUMERICS_VERSION + 1;
    let mut future = Vec::new();
    header.write(&mut future).unwrap();
    future.extend_from_slice(body);
    let unknown = message(&future, lmzip::NUMERICS_VERSION);
    let want = format!("numerics version {}", lmzip::NUMERICS_VERSION + 1);
    assert!(unknown.contains(&want), "{unknown}");
    assert!(
        registry::by_name("lmzip-800k")
            .unwrap()
            .for_numerics(lmzip::NUMERICS_VERSION + 1)
            .is_err()
    );
}
