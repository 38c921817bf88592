//! Golden archives (`tests/golden/` at the repository root, written by format 1 / numerics 1
//! before the layout move): each must decode to its original, at any thread count, forever.
//! Re-encoding the original today must also give the same bytes, as long as the format and
//! numerics versions are those the archive records.

use lmzip::read::Decoder;
use lmzip_models::registry::{self, AnyModel};
use lmzip_models::with_model;
use std::io::Read;
use std::path::{Path, PathBuf};

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

/// The model an archive of `tests/golden` names: `baseline`, the compiled-in default, or the
/// tiny Llama directory beside the archives.
fn model_for(name: &str) -> AnyModel {
    let given = match name {
        "llama-tiny" => golden().join("llama-tiny").display().to_string(),
        other => other.to_string(),
    };
    registry::by_name(&given).unwrap()
}

fn decode(archive: &[u8], model: AnyModel, threads: usize) -> Vec<u8> {
    with_model!(model, m => {
        let mut dec = Decoder::new(archive, m, threads).unwrap();
        let mut out = Vec::new();
        dec.read_to_end(&mut out).unwrap();
        out
    })
}

fn encode(data: &[u8], model: AnyModel, chunk_size: u32) -> Vec<u8> {
    with_model!(model, m => {
        let mut enc = lmzip::write::EncoderBuilder::new()
            .chunk_size(chunk_size)
            .original_len(Some(data.len() as u64))
            .threads(2)
            .build(Vec::new(), m)
            .unwrap();
        std::io::Write::write_all(&mut enc, data).unwrap();
        enc.finish().unwrap()
    })
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
        let (original, model) = stem.split_once('.').unwrap();
        let original_path = ["txt", "bin"]
            .iter()
            .map(|ext| golden().join(format!("{original}.{ext}")))
            .find(|p| p.exists())
            .unwrap();
        let data = std::fs::read(original_path).unwrap();
        let archive = std::fs::read(&path).unwrap();
        let header = lmzip::Header::read(&mut &archive[..]).unwrap();
        assert_eq!(header.model_name, model, "{file}");
        for threads in [1, 2, 3] {
            assert!(
                decode(&archive, model_for(model), threads) == data,
                "{file} at {threads} threads"
            );
        }
        let again = encode(&data, model_for(model), header.chunk_size);
        assert!(again == archive, "{file}: re-encoding gives other bytes");
        seen += 1;
    }
    assert_eq!(seen, 7, "every golden archive checked");
}
