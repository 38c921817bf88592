//! The everyday corpus as training data: its kinds split by the held-out rule, its files joined.

use lmzip_train::command::split;
use std::path::Path;

#[test]
fn a_corpus_kind_splits_by_the_held_out_rule_and_joins_small_files() {
    let root = tempfile::tempdir().unwrap();
    let kind = root.path().join("source");
    std::fs::create_dir_all(&kind).unwrap();
    let (mut held, mut trained) = (0, 0);
    for i in 0..200 {
        let name = format!("debian-pkg--src--file{i}.c");
        // 1000 bytes each: shorter than a chunk, so only joining gives chunks.
        let byte = if lmzip_data::is_held_out(Path::new(&name)) {
            held += 1;
            b'h'
        } else {
            trained += 1;
            b't'
        };
        std::fs::write(kind.join(&name), vec![byte; 1000]).unwrap();
    }
    assert!(held > 0 && trained > 0);
    let s = split(Path::new("unused"), root.path(), "corpus-source").unwrap();
    assert_eq!(s.name, "corpus-source");
    assert_eq!(s.train.len(), trained * 1000 / 2048);
    assert_eq!(s.held_out.len(), held * 1000 / 2048);
    assert!(s.train.iter().flatten().all(|&b| b == b't'));
    assert!(s.held_out.iter().flatten().all(|&b| b == b'h'));
    let missing = split(Path::new("unused"), root.path(), "corpus-log")
        .err()
        .unwrap();
    assert!(
        missing.to_string().contains("scripts/corpus.py"),
        "{missing}"
    );
    assert!(split(Path::new("unused"), root.path(), "corpus-nothing").is_err());
}
