//! Any bytes as a GGUF file: parsed (then mapped to a Llama and every tensor dequantized) or
//! refused.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lmzip_models::gguf::Gguf;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = Gguf::parse(data) {
        for info in &file.tensors {
            let _ = file.tensor(data, &info.name);
        }
        let _ = lmzip_models::llama::gguf::llama(&file, data);
    }
});
