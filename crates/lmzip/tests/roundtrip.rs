//! Round trips through every path: one-shot and streaming, odd I/O sizes, thread counts,
//! lockstep batch decoding; hostile archives; the coder's overhead on real text.

use lmzip::{Error, Model, ModelId, chunk, read::Decoder, write::EncoderBuilder};
use lmzip_coder::Cdf;
use lmzip_models::{ContextMixing, Symbols, symbolize};
use lmzip_testkit::RoundTrip;
use std::io::Write;
use std::path::Path;

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    lmzip_testkit::Rng::new(seed).bytes(n)
}

fn compress_with(data: &[u8], threads: usize, chunk_size: u32, write_size: usize) -> Vec<u8> {
    lmzip_testkit::compress(data, ContextMixing::new(), threads, chunk_size, write_size)
}

fn decompress_with(archive: &[u8], threads: usize, read_size: usize) -> Result<Vec<u8>, Error> {
    lmzip_testkit::decompress(archive, ContextMixing::new(), threads, read_size)
}

/// Every coding path (the test kit's matrix) with the baseline at the given chunk size.
fn round_trip(input: &[u8], chunk_size: u32) -> Vec<u8> {
    RoundTrip::new()
        .chunk_size(chunk_size)
        .check(&ContextMixing::new(), input)
}

const DEFAULT: u32 = lmzip::DEFAULT_CHUNK_SIZE;

#[test]
fn edge_sizes() {
    let text = std::fs::read(Path::new(SHARED).join("text/canterbury/alice29.txt")).unwrap();
    for n in [0, 1, 2, 2047, 2048, 2049, 4096, 4097, 20_000] {
        round_trip(&text[..n], DEFAULT);
    }
    round_trip(&text[..5000], 1);
    round_trip(&text[..5000], 777);
    round_trip(&text[..70_000], 65_536);
}

#[test]
fn degenerate_inputs() {
    round_trip(&[0u8; 10_000], DEFAULT);
    round_trip(&[0xFFu8; 10_000], DEFAULT);
    let ramp: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    round_trip(&ramp, DEFAULT);
}

#[test]
fn random_megabyte_grows_at_most_half_a_percent() {
    let data = random_bytes(1 << 20, 99);
    let archive = round_trip(&data, DEFAULT);
    let header = lmzip::Header::read(&mut &archive[..])
        .unwrap()
        .encoded_len();
    let limit = header as f64 + data.len() as f64 * 1.005;
    assert!(archive.len() as f64 <= limit, "{} > {limit}", archive.len());
}

#[test]
fn every_text_file_round_trips() {
    let files = lmzip_data::list_files(&Path::new(SHARED).join("text"), lmzip_data::Modality::Text)
        .unwrap();
    assert!(files.len() > 100);
    for f in files {
        let data = std::fs::read(&f).unwrap();
        let archive = compress_with(&data, 2, lmzip::DEFAULT_CHUNK_SIZE, 1 << 16);
        let back = decompress_with(&archive, 2, 1 << 16).unwrap();
        assert!(back == data, "{}", f.display());
    }
}

#[test]
fn image_and_audio_samples_round_trip() {
    use lmzip_data::Modality;
    for (folder, modality) in [
        ("images/kodak", Modality::Images),
        ("images/imagenet_sample", Modality::Images),
        ("audio/librispeech/test-other", Modality::Audio8),
        ("audio/pocketsphinx_testdata", Modality::Audio16),
    ] {
        let files = lmzip_data::list_files(&Path::new(SHARED).join(folder), modality).unwrap();
        for f in files.iter().step_by(files.len().div_ceil(3)) {
            let chunks = lmzip_data::file_chunks(f, modality, 2048).unwrap();
            let data: Vec<u8> = chunks.iter().take(40).flatten().copied().collect();
            round_trip(&data, DEFAULT);
        }
    }
}

fn small_archive() -> (Vec<u8>, Vec<u8>) {
    let text = std::fs::read(Path::new(SHARED).join("text/canterbury/alice29.txt")).unwrap();
    let data = text[..2300].to_vec();
    (compress_with(&data, 1, 2048, usize::MAX), data)
}

#[test]
fn every_truncation_fails() {
    let (archive, _) = small_archive();
    for n in 0..archive.len() {
        let r = decompress_with(&archive[..n], 1, 1 << 16);
        assert!(r.is_err(), "prefix of {n} bytes decoded");
        assert!(lmzip::inspect(&archive[..n]).is_err());
    }
}

#[test]
fn every_single_byte_corruption_fails() {
    let (archive, data) = small_archive();
    for i in 0..archive.len() {
        for delta in [0x01u8, 0x80, 0xFF] {
            let mut bad = archive.clone();
            bad[i] ^= delta;
            match decompress_with(&bad, 1, 1 << 16) {
                Err(_) => {}
                Ok(out) => panic!(
                    "byte {i} ^ {delta:#x} decoded to {} bytes (same: {})",
                    out.len(),
                    out == data
                ),
            }
        }
    }
}

#[test]
fn trailing_garbage_and_foreign_data_fail() {
    let (mut archive, _) = small_archive();
    assert!(matches!(
        decompress_with(b"\x1f\x8b\x08\x00 a gzip file", 1, 64),
        Err(Error::NotAnArchive)
    ));
    archive.push(0);
    assert!(matches!(
        decompress_with(&archive, 1, 64),
        Err(Error::Corrupt(_))
    ));
}

/// The baseline under another name: an archive of one must not decode with the other.
struct Renamed;
impl Model for Renamed {
    type State = <ContextMixing as Model>::State;
    fn id(&self) -> ModelId {
        ModelId {
            name: "other".into(),
            sha256: Some([1; 32]),
            tokenizer_sha256: None,
            mixer: None,
        }
    }
    fn symbols(&self) -> Symbols {
        ContextMixing::new().symbols()
    }
    fn precision(&self) -> u32 {
        ContextMixing::new().precision()
    }
    fn new_state(&self) -> Self::State {
        ContextMixing::new().new_state()
    }
    fn reset(&self, s: &mut Self::State) {
        ContextMixing::new().reset(s)
    }
    fn predict(&self, s: &mut Self::State, cdf: &mut Cdf) {
        ContextMixing::new().predict(s, cdf)
    }
    fn observe(&self, s: &mut Self::State, symbol: u32) {
        ContextMixing::new().observe(s, symbol)
    }
}

#[test]
fn wrong_model_is_refused() {
    let archive = lmzip::compress(b"hello hello hello", Renamed).unwrap();
    assert!(matches!(
        Decoder::new(&archive[..], ContextMixing::new(), 1),
        Err(Error::ModelMismatch { .. })
    ));
    assert_eq!(
        lmzip::decompress(&archive, Renamed).unwrap(),
        b"hello hello hello"
    );
}

#[test]
fn unfinished_encoder_leaves_a_truncated_archive() {
    let mut enc = EncoderBuilder::new()
        .build(Vec::new(), ContextMixing::new())
        .unwrap();
    enc.write_all(&random_bytes(5000, 1)).unwrap();
    let partial = enc.into_inner();
    assert!(decompress_with(&partial, 1, 64).is_err());
}

/// The coder adds at most 4 bytes per chunk beyond the ideal code length under the model.
#[test]
fn coder_overhead_on_real_text_is_at_most_four_bytes_per_chunk() {
    let text = std::fs::read(
        Path::new(SHARED).join("text/wikipedia/enwik8/enwik8_first_4154064_bytes.xml"),
    )
    .unwrap();
    let model = ContextMixing::new();
    let mut state = model.new_state();
    let mut cdf = Cdf::uniform(16, 2).unwrap();
    for piece in text.chunks(2048).step_by(97).take(20) {
        model.reset(&mut state);
        let mut bits = 0.0;
        for s in symbolize(model.symbols(), piece) {
            model.predict(&mut state, &mut cdf);
            bits += cdf.cost_bits(s);
            model.observe(&mut state, s);
        }
        let coded = chunk::encode(&model, &mut state, piece, &lmzip::Budget::spare(0));
        assert!(
            coded.len() as f64 <= bits / 8.0 + 4.0,
            "{} bytes for {bits} bits",
            coded.len()
        );
        // code_lengths gives the same bits, byte by byte.
        let per_byte = chunk::code_lengths(&model, &mut state, piece, &lmzip::Budget::spare(0));
        assert_eq!(per_byte.len(), piece.len());
        let total: f64 = per_byte.iter().sum();
        assert!((total - bits).abs() < 1e-6 * bits, "{total} vs {bits}");
    }
}

/// `inspect` reports the archive's true size, whatever its varint lengths (1 or 2 bytes).
#[test]
fn inspect_reports_the_true_archive_size() {
    let text = std::fs::read(Path::new(SHARED).join("text/canterbury/alice29.txt")).unwrap();
    let inputs: [&[u8]; 5] = [
        b"",
        &[b'a'; 100],
        &text[..150],
        &text[..5000],
        &random_bytes(3000, 5),
    ];
    for data in inputs {
        for chunk_size in [64, 2048] {
            let archive = compress_with(data, 1, chunk_size, usize::MAX);
            let info = lmzip::inspect(&archive[..]).unwrap();
            assert_eq!(
                info.archive_len,
                archive.len() as u64,
                "{} bytes, chunk {chunk_size}",
                data.len()
            );
            assert_eq!(info.original_len, data.len() as u64);
        }
    }
}

/// Empty, one byte, word salad and random data through every coding path of the test kit.
#[test]
fn generated_inputs_round_trip() {
    let mut rng = lmzip_testkit::Rng::new(3);
    for data in [vec![], vec![7], rng.text(5000), rng.bytes(3000)] {
        round_trip(&data, 700);
    }
}

/// An input that grows or shrinks after its length was announced (a file changing while it is
/// read) gives an error, never an archive that fails its own check.
#[test]
fn a_changing_input_is_an_error() {
    for (announced, written) in [(10u64, 12usize), (12, 10)] {
        let mut enc = EncoderBuilder::new()
            .original_len(Some(announced))
            .build(Vec::new(), ContextMixing::new())
            .unwrap();
        enc.write_all(&vec![b'x'; written]).unwrap();
        assert!(
            enc.finish().is_err(),
            "{announced} announced, {written} written"
        );
    }
}
