//! Solid mode: blocks coded by a model mixed with adaptive models ([`Mixed`]). Round trips at
//! every block-size edge, thread count and I/O size with identical archives, with the adaptive
//! models alone and with a random Transformer restarting inside the block; hostile archives.

use lmzip::{Error, Model};
use lmzip_data::Modality;
use lmzip_models::transformer::{Config, Transformer, file};
use lmzip_models::{ContextMixing, Level, Mixed, TransformerModel};
use lmzip_testkit::{Rng, RoundTrip};
use std::path::Path;

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");
/// Small blocks keep the tests fast; the coding is the same at any size.
const BLOCK: u32 = 4096;

fn adaptive(level: u8, block: u32) -> Mixed<ContextMixing> {
    Mixed::new(ContextMixing::new(), Level::new(level).unwrap(), block).unwrap()
}

/// A random Transformer with a 100-byte context: it restarts many times inside each block.
fn neural(level: u8, block: u32) -> Mixed<TransformerModel> {
    let config = Config::new(32, 2, 2, 100);
    let weights = file::random_weights(&config, 7);
    let (json, tensors) = file::to_bytes(&config, &weights);
    let t = TransformerModel::new(
        "test-random",
        file::model_sha256(&json, &tensors),
        Transformer::new(config, weights),
    );
    Mixed::new(t, Level::new(level).unwrap(), block).unwrap()
}

fn alice() -> Vec<u8> {
    std::fs::read(Path::new(SHARED).join("text/canterbury/alice29.txt")).unwrap()
}

fn round_trip<M: Model>(model: &M, block: u32, data: &[u8]) -> Vec<u8> {
    RoundTrip::new().chunk_size(block).check(model, data)
}

#[test]
fn block_size_edges_round_trip() {
    let text = alice();
    let b = BLOCK as usize;
    for level in [1, 6] {
        let model = adaptive(level, BLOCK);
        for n in [0, 1, b - 1, b, b + 1, 5 * b + 17] {
            round_trip(&model, BLOCK, &text[..n]);
        }
    }
}

#[test]
fn the_transformer_mixed_in_round_trips_across_its_restarts() {
    let text = alice();
    let model = neural(6, BLOCK);
    let archive = round_trip(&model, BLOCK, &text[..2 * BLOCK as usize + 300]);
    let header = lmzip::Header::read(&mut &archive[..]).unwrap();
    assert_eq!(header.mixer, Some(6));
    assert_eq!(header.model_name, "test-random");
}

#[test]
fn random_and_degenerate_inputs_round_trip() {
    let model = adaptive(9, BLOCK);
    let random = Rng::new(3).bytes(3 * BLOCK as usize);
    let archive = round_trip(&model, BLOCK, &random);
    // Stored when the mixer cannot compress: a few bytes per block over the input.
    assert!(archive.len() < random.len() + 100, "{}", archive.len());
    round_trip(&model, BLOCK, &vec![0u8; 3 * BLOCK as usize]);
    round_trip(&model, BLOCK, &[0xFF, 0x00].repeat(5000));
}

#[test]
fn samples_of_every_modality_round_trip() {
    let model = adaptive(3, 1 << 16);
    for (folder, modality) in [
        ("text/calgary", Modality::Text),
        ("images/kodak", Modality::Images),
        ("audio/librispeech/test-other", Modality::Audio8),
        ("audio/pocketsphinx_testdata", Modality::Audio16),
    ] {
        let files = lmzip_data::list_files(&Path::new(SHARED).join(folder), modality).unwrap();
        let chunks = lmzip_data::file_chunks(&files[0], modality, 2048).unwrap();
        let data: Vec<u8> = chunks.iter().take(40).flatten().copied().collect();
        RoundTrip::new()
            .chunk_size(1 << 16)
            .threads(&[1, 2])
            .check(&model, &data);
    }
}

/// Seeing the whole block pays: repeated text far apart costs less than in independent chunks.
#[test]
fn solid_blocks_beat_independent_chunks_on_repeats() {
    let text = alice();
    let data = [&text[..20_000], &text[..20_000]].concat();
    let solid = lmzip_testkit::compress(&data, adaptive(6, 1 << 16), 2, 1 << 16, usize::MAX);
    let chunks = lmzip_testkit::compress(&data, ContextMixing::new(), 2, 2048, usize::MAX);
    assert!(
        solid.len() * 2 < chunks.len(),
        "solid {} vs chunks {}",
        solid.len(),
        chunks.len()
    );
}

#[test]
fn another_level_or_model_is_refused() {
    let archive = lmzip_testkit::compress(&alice()[..5000], adaptive(6, BLOCK), 1, BLOCK, 999);
    for result in [
        lmzip_testkit::decompress(&archive, adaptive(5, BLOCK), 1, 1 << 16),
        lmzip_testkit::decompress(&archive, ContextMixing::new(), 1, 1 << 16),
    ] {
        assert!(
            matches!(result, Err(Error::ModelMismatch { .. })),
            "{result:?}"
        );
    }
}

fn multi_block_archive() -> (Vec<u8>, Vec<u8>) {
    let data = alice()[..2500].to_vec();
    let archive = lmzip_testkit::compress(&data, adaptive(6, 1000), 1, 1000, usize::MAX);
    (archive, data)
}

#[test]
fn every_truncation_of_a_multi_block_archive_fails() {
    let (archive, _) = multi_block_archive();
    for n in 0..archive.len() {
        let r = lmzip_testkit::decompress(&archive[..n], adaptive(6, 1000), 1, 1 << 16);
        assert!(r.is_err(), "prefix of {n} bytes decoded");
    }
}

#[test]
fn every_byte_flip_of_a_multi_block_archive_fails() {
    let (archive, data) = multi_block_archive();
    for i in 0..archive.len() {
        for delta in [0x01u8, 0x80] {
            let mut bad = archive.clone();
            bad[i] ^= delta;
            if let Ok(out) = lmzip_testkit::decompress(&bad, adaptive(6, 1000), 2, 1 << 16) {
                panic!("byte {i} ^ {delta:#x} decoded (same: {})", out == data);
            }
        }
    }
}

/// Synthetic x86-like code: calls (E8) to a few targets among other bytes.
fn x86_like(n: usize) -> Vec<u8> {
    let mut rng = Rng::new(9);
    let mut code = Vec::with_capacity(n + 8);
    while code.len() < n {
        let at = code.len() as u32;
        let target = 0x4000 + (rng.next_u64() % 8) as u32 * 0x40;
        code.push(0xE8);
        code.extend_from_slice(&target.wrapping_sub(at + 5).to_le_bytes());
        let filler = 1 + (rng.next_u64() % 12) as usize;
        code.extend_from_slice(&rng.bytes(filler));
    }
    code.truncate(n);
    code
}

#[test]
fn x86_blocks_take_the_branch_transform_and_round_trip() {
    let code = x86_like(3 * BLOCK as usize + 77);
    let model = adaptive(6, BLOCK);
    let archive = round_trip(&model, BLOCK, &code);
    let info = lmzip::inspect(&archive[..]).unwrap();
    assert!(
        info.x86_chunks >= 3,
        "the full blocks are x86-like: {}",
        info.x86_chunks
    );
    // The transform pays: the same bytes as independent chunks of the same model, without it,
    // cost more (the calls' relative offsets differ, their targets repeat).
    let plain = {
        let mut b = Vec::new();
        let mut state = model.new_state();
        for block in code.chunks(BLOCK as usize) {
            b.extend(lmzip::chunk::encode(
                &model,
                &mut state,
                block,
                &lmzip::Budget::spare(0),
            ));
        }
        b
    };
    assert!(
        archive.len() < plain.len(),
        "{} vs {}",
        archive.len(),
        plain.len()
    );
    // Text never does.
    let text = lmzip_testkit::compress(&alice()[..9000], adaptive(6, BLOCK), 1, BLOCK, 999);
    assert_eq!(lmzip::inspect(&text[..]).unwrap().x86_chunks, 0);
}

/// The encoder's byte-model pass may run on several threads, and blocks on several: the block
/// and the archive are the same.
#[test]
fn byte_model_threads_do_not_change_the_archive() {
    let text = alice();
    let model = neural(6, BLOCK);
    let block = &text[..BLOCK as usize];
    let mut state = model.new_state();
    let alone = lmzip::chunk::encode(&model, &mut state, block, &lmzip::Budget::spare(0));
    for threads in [2, 3, 8] {
        let coded = lmzip::chunk::encode(
            &model,
            &mut state,
            block,
            &lmzip::Budget::spare(threads - 1),
        );
        assert!(coded == alone, "byte-model threads {threads}");
    }
    let data = &text[..BLOCK as usize * 2 + 999];
    let one = lmzip_testkit::compress(data, neural(6, BLOCK), 1, BLOCK, usize::MAX);
    for threads in [2, 3, 8] {
        let archive = lmzip_testkit::compress(data, neural(6, BLOCK), threads, BLOCK, 1000);
        assert!(archive == one, "threads {threads}");
    }
}

/// A block decoding alone with threads to spare splits each byte-model step between two of
/// them (`lmzip_engine::team`): the same bytes at every thread count.
#[test]
fn a_lone_block_decodes_the_same_on_any_thread_count() {
    let text = alice();
    let data = &text[..3000];
    let archive = lmzip_testkit::compress(data, neural(6, BLOCK), 1, BLOCK, usize::MAX);
    for threads in [1, 2, 3, 4] {
        let back = lmzip_testkit::decompress(&archive, neural(6, BLOCK), threads, 1 << 16);
        assert!(back.unwrap() == data, "{threads} threads");
    }
}

/// Every file of ../shared/data (its first 4 KB, as the paper's preprocessing gives them)
/// through solid mode at 2 threads.
#[test]
fn every_shared_file_round_trips_in_a_sample() {
    let model = adaptive(2, 1 << 16);
    let mut files = 0;
    for modality in [Modality::Text, Modality::Images, Modality::Audio8] {
        let root = Path::new(SHARED).join(modality.folder());
        for f in lmzip_data::list_files(&root, modality).unwrap() {
            let chunks = lmzip_data::file_chunks(&f, modality, 2048).unwrap();
            let data: Vec<u8> = chunks.iter().take(2).flatten().copied().collect();
            let archive = lmzip_testkit::compress(&data, &model, 2, 1 << 16, usize::MAX);
            let back = lmzip_testkit::decompress(&archive, &model, 2, 1 << 16).unwrap();
            assert!(back == data, "{}", f.display());
            files += 1;
        }
    }
    assert!(files > 150, "{files} files");
}
