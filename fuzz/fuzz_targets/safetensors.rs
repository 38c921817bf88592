//! Any bytes as a byte Transformer's `model.safetensors` (under a tiny config) and as a
//! `config.json`: loaded or refused.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lmzip_models::transformer::file;

const CONFIG: &[u8] = br#"{"architecture": "lmzip-byte-transformer", "d_model": 8, "n_layers": 1,
  "n_heads": 2, "d_ff": 16, "context": 64, "norm": "pre", "norm_eps": 1e-5, "rope_theta": 10000.0}"#;

fuzz_target!(|data: &[u8]| {
    let _ = file::from_bytes(CONFIG, data);
    let _ = file::from_bytes(data, &[]);
});
