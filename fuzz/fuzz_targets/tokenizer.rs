//! Any bytes as a `tokenizer.json`: loaded (then used to cut and rebuild a text) or refused.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lmzip_tokens::Tokenizer;

fuzz_target!(|data: &[u8]| {
    if let Ok(tokenizer) = Tokenizer::from_json(data, None) {
        let text = b"Hello, world! \xff\x00 caf\xc3\xa9";
        let tokens = tokenizer.encode(text);
        let back: Vec<u8> = tokens.iter().flat_map(|&t| tokenizer.piece(t).to_vec()).collect();
        assert_eq!(back, text);
    }
});
