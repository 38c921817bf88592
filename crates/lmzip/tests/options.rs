//! `lmzip::options`: blocks coded apart and assembled give the archive of one pass; code
//! lengths cover every byte and match the coded payloads.

use lmzip::options::{Assembler, Options, decompress};

fn text() -> Vec<u8> {
    let mut data = Vec::new();
    for i in 0..9000u32 {
        data.extend_from_slice(
            format!("line {i}: the quick brown fox {} jumps\n", i % 97).as_bytes(),
        );
    }
    data
}

fn assembled(options: &Options, data: &[u8]) -> Vec<u8> {
    let plan = options.plan().unwrap();
    let size = plan.chunk_size() as usize;
    let mut a = Assembler::new(Vec::new(), plan.header(Some(data.len() as u64))).unwrap();
    // Code the blocks in reverse order, on purpose: they are independent.
    let mut blocks: Vec<_> = data
        .chunks(size)
        .map(|b| plan.code_block(b).unwrap())
        .rev()
        .collect();
    while let Some(b) = blocks.pop() {
        a.push(&b).unwrap();
    }
    a.finish().unwrap()
}

#[test]
fn blocks_coded_apart_assemble_into_the_same_archive() {
    let data = text();
    assert!(data.len() > 5 * 65536);
    let mut solid = Options::new();
    solid.level(1).block_size(65536).threads(2);
    let mut chunks = Options::new();
    chunks.model(Some("baseline")).chunks(true);
    let mut empty = Options::new();
    empty.level(2);
    for (options, data) in [
        (&solid, &data[..]),
        (&chunks, &data[..20_000]),
        (&empty, &[][..]),
    ] {
        let whole = options
            .plan()
            .unwrap()
            .compress(data, Some(data.len() as u64), Vec::new());
        let whole = whole.unwrap();
        assert_eq!(assembled(options, data), whole);
        let mut back = Vec::new();
        decompress(&whole[..], None, 1, &mut back).unwrap();
        assert_eq!(back, data);
    }
}

#[test]
fn an_assembler_refuses_misplaced_blocks() {
    let mut options = Options::new();
    options.level(1).block_size(65536);
    let plan = options.plan().unwrap();
    let short = plan.code_block(b"a short last block").unwrap();
    let mut a = Assembler::new(Vec::new(), plan.header(None)).unwrap();
    a.push(&short).unwrap();
    assert!(a.push(&short).is_err(), "a block after a partial one");
    assert!(plan.code_block(&[]).is_err());
    assert!(plan.code_block(&vec![0; 65537]).is_err());
    let mut announced = Assembler::new(Vec::new(), plan.header(Some(5))).unwrap();
    announced.push(&short).unwrap();
    assert!(
        announced.finish().is_err(),
        "the header's length is checked"
    );
}

#[test]
fn code_lengths_cover_every_byte_and_match_the_payloads() {
    let data = text();
    let mut options = Options::new();
    options.level(1).block_size(65536);
    let plan = options.plan().unwrap();
    let bits = plan.code_lengths(&data);
    assert_eq!(bits.len(), data.len());
    let archive = plan.compress(&data[..], None, Vec::new()).unwrap();
    let info = lmzip::inspect(&archive[..]).unwrap();
    let total: f64 = bits.iter().sum::<f64>() / 8.0;
    assert!(total <= info.coded_bytes as f64 + 1.0);
    assert!(info.coded_bytes as f64 <= total + 4.0 * info.chunks as f64);
}

#[test]
fn bad_options_are_errors() {
    let bad = [
        Options::new().level(0).clone(),
        Options::new().block_size(1000).clone(),
        Options::new().chunks(true).block_size(65536).clone(),
        Options::new().chunk_size(0).clone(),
        Options::new().model(Some("no-such-model")).clone(),
    ];
    for options in bad {
        assert!(options.plan().is_err(), "{options:?}");
    }
}
