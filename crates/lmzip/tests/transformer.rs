//! Round trips with a random-weight Transformer: the teacher-forced encoder and the batched,
//! incremental decoder must agree on every chunk, at every thread count.

use lmzip::{Error, Model, chunk, write::EncoderBuilder};
use lmzip_data::Modality;
use lmzip_models::TransformerModel;
use lmzip_models::transformer::{Config, Transformer, file};
use std::path::Path;

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

fn model(seed: u64, context: usize) -> TransformerModel {
    let config = Config::new(32, 2, 2, context);
    let weights = file::random_weights(&config, seed);
    let (json, tensors) = file::to_bytes(&config, &weights);
    TransformerModel::new(
        "test-random",
        file::model_sha256(&json, &tensors),
        Transformer::new(config, weights),
    )
}

fn compress(data: &[u8], m: &TransformerModel, threads: usize, chunk_size: u32) -> Vec<u8> {
    lmzip_testkit::compress(data, m, threads, chunk_size, usize::MAX)
}

fn decompress(archive: &[u8], m: &TransformerModel, threads: usize) -> Result<Vec<u8>, Error> {
    lmzip_testkit::decompress(archive, m, threads, 1 << 16)
}

/// Every coding path of the test kit (1, 2 and 8 threads, odd I/O sizes, chunks alone and in
/// lockstep batches).
fn round_trip(data: &[u8], m: &TransformerModel, chunk_size: u32) -> Vec<u8> {
    lmzip_testkit::RoundTrip::new()
        .chunk_size(chunk_size)
        .check(m, data)
}

fn alice() -> Vec<u8> {
    std::fs::read(Path::new(SHARED).join("text/canterbury/alice29.txt")).unwrap()
}

#[test]
fn text_round_trips_and_is_coded() {
    let m = model(1, 2048);
    let text = alice();
    for n in [0, 1, 2, 100, 2047, 2048, 2049] {
        round_trip(&text[..n], &m, 2048);
    }
    // 10 chunks: several per thread and per lockstep batch.
    let data = &text[5000..5000 + 10 * 2048 - 77];
    let archive = round_trip(data, &m, 2048);
    // The random model favours English bytes, so chunks are coded, not stored.
    assert!(
        archive.len() < data.len() * 9 / 10,
        "{} of {}",
        archive.len(),
        data.len()
    );
    // Small chunks, and chunks of one byte.
    round_trip(&text[..3000], &m, 700);
    round_trip(&text[..40], &m, 1);
}

#[test]
fn image_audio_and_random_chunks_round_trip() {
    let m = model(2, 2048);
    let root = Path::new(SHARED);
    let mut data = Vec::new();
    for modality in [Modality::Images, Modality::Audio8] {
        let files = lmzip_data::list_files(root, modality).unwrap();
        let chunks = lmzip_data::file_chunks(&files[0], modality, 2048).unwrap();
        for c in chunks.iter().take(3) {
            data.extend_from_slice(c);
        }
    }
    data.extend(lmzip_testkit::Rng::new(7).bytes(5000));
    round_trip(&data, &m, 2048);
}

#[test]
fn batched_decoding_equals_chunk_by_chunk() {
    let m = model(3, 512);
    let text = alice();
    let pieces: Vec<&[u8]> = text[..512 * 6 + 100].chunks(512).collect();
    let chunks = lmzip_testkit::CodedChunks::new(&m, &pieces);
    let mut state = m.new_state();
    let jobs = chunks.jobs();
    for ((got, want), (c, p)) in chunks.decode_batch(&m).into_iter().zip(&pieces).zip(&jobs) {
        assert_eq!(got.unwrap(), *want);
        assert_eq!(chunk::decode(&m, &mut state, c, *p).unwrap(), *want);
    }
    // A corrupt chunk fails alone; its neighbours in the batch still decode.
    let mut states: Vec<_> = jobs.iter().map(|_| m.new_state()).collect();
    let mut bad = chunks.coded[2].clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    let mut jobs2 = jobs.clone();
    jobs2[2] = (&bad[..], pieces[2].len());
    let results = chunk::decode_batch(&m, &mut states, &jobs2);
    for (i, r) in results.into_iter().enumerate() {
        match i {
            2 => assert!(r.map(|d| d != pieces[2]).unwrap_or(true)),
            _ => assert_eq!(r.unwrap(), pieces[i]),
        }
    }
}

#[test]
fn another_model_and_oversized_chunks_are_refused() {
    let m = model(4, 2048);
    let archive = compress(&alice()[..3000], &m, 2, 2048);
    let other = model(5, 2048);
    assert!(matches!(
        decompress(&archive, &other, 1),
        Err(Error::ModelMismatch { .. })
    ));
    let small = model(4, 1024);
    let err = EncoderBuilder::new()
        .chunk_size(2048)
        .build(Vec::new(), &small)
        .err()
        .unwrap();
    assert!(matches!(err, Error::Config(_)), "{err}");
    let small_archive = compress(&alice()[..3000], &small, 1, 1024);
    assert_eq!(
        decompress(&small_archive, &small, 2).unwrap(),
        &alice()[..3000]
    );
}

#[test]
fn corrupted_transformer_archives_fail_cleanly() {
    let m = model(6, 2048);
    let data = &alice()[..4096];
    let archive = compress(data, &m, 1, 2048);
    for pos in (0..archive.len()).step_by(131) {
        let mut bad = archive.clone();
        bad[pos] ^= 0x21;
        if let Ok(out) = decompress(&bad, &m, 2) {
            panic!("corruption at {pos} decoded to {} bytes", out.len());
        }
    }
}
