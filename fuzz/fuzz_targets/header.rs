//! Any bytes as an archive header: parsed or refused; a parsed header, written and read back,
//! is the same header.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = lmzip::Header::read(&mut &data[..]) {
        let mut again = Vec::new();
        header.write(&mut again).expect("a parsed header writes");
        let back = lmzip::Header::read(&mut &again[..]).expect("a written header reads");
        assert_eq!(back, header);
    }
});
