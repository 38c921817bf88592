//! The Llama-family forward: tiny random models written here as Hugging Face directories
//! (config.json + model.safetensors), run teacher-forced and incrementally (bit-identical), in
//! batches, on every kernel version, and against a plain f64 implementation of the
//! architecture.

use lmzip_engine::Isa;
use lmzip_models::llama::{Llama, LlamaConfig, LlamaScratch};
use std::path::Path;

/// A small Llama shape: GQA (4 query heads, 2 key/value heads), head width 8.
fn config_json(tied: bool, theta: f64) -> String {
    format!(
        r#"{{"architectures": ["LlamaForCausalLM"], "hidden_size": 32, "intermediate_size": 48,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5, "rope_theta": {theta}, "vocab_size": 300,
        "tie_word_embeddings": {tied}, "max_position_embeddings": 96, "torch_dtype": "float32"}}"#
    )
}

/// Seeded values in [-scale, scale).
fn random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// Write a random model; returns its tensors by name.
fn write_model(dir: &Path, tied: bool, theta: f64) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let json = config_json(tied, theta);
    let config: LlamaConfig = serde_json::from_str(&json).unwrap();
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = config
        .tensor_shapes()
        .into_iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let n: usize = shape.iter().product();
            let values = if name.ends_with("norm.weight") {
                random(n, i as u64, 0.2).iter().map(|v| 1.0 + v).collect()
            } else {
                random(n, i as u64, 0.3)
            };
            (name, shape, values)
        })
        .collect();
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                    .unwrap();
            (name.clone(), view)
        })
        .collect();
    std::fs::write(dir.join("config.json"), json).unwrap();
    std::fs::write(
        dir.join("model.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    tensors
}

fn tokens(n: usize, seed: u64) -> Vec<u32> {
    random(n, seed, 1.0)
        .iter()
        .map(|v| ((v + 1.0) * 150.0) as u32 % 300)
        .collect()
}

fn teacher_forced(m: &Llama, toks: &[u32]) -> Vec<f32> {
    let mut logits = vec![0.0; toks.len() * 300];
    m.forward(toks, &mut logits, &mut LlamaScratch::default());
    logits
}

#[test]
fn incremental_and_batched_equal_teacher_forced() {
    for (tied, theta) in [(false, 10_000.0), (true, 500_000.0)] {
        let dir = tempfile::tempdir().unwrap();
        write_model(dir.path(), tied, theta);
        let (f32_model, _) = lmzip_models::llama::file::load(dir.path()).unwrap();
        // The f32 weights (numerics 1 to 4) and the int8 ones (numerics 5).
        for m in [f32_model.clone(), f32_model.into_int8()] {
            incremental_and_batched_equal_teacher_forced_for(&m, tied);
        }
    }
}

fn incremental_and_batched_equal_teacher_forced_for(m: &Llama, tied: bool) {
    {
        let seqs: Vec<Vec<u32>> = (0..3).map(|s| tokens(70 + 9 * s, s as u64)).collect();
        let full: Vec<Vec<f32>> = seqs.iter().map(|t| teacher_forced(m, t)).collect();
        // One at a time.
        let mut cache = m.new_cache();
        let mut row = vec![0.0; 300];
        let mut scratch = LlamaScratch::default();
        for (i, &t) in seqs[0].iter().enumerate() {
            m.step(&mut [&mut cache], &[t], &mut row, &mut scratch);
            assert_eq!(
                row,
                full[0][i * 300..(i + 1) * 300],
                "tied {tied}, position {i}"
            );
        }
        // Three sequences in one batch, started at different steps.
        let mut caches: Vec<_> = (0..3).map(|_| m.new_cache()).collect();
        let mut done = [0usize; 3];
        for step in 0..90 {
            let members: Vec<usize> = (0..3)
                .filter(|&b| step >= 5 * b && done[b] < seqs[b].len())
                .collect();
            if members.is_empty() {
                continue;
            }
            let toks: Vec<u32> = members.iter().map(|&b| seqs[b][done[b]]).collect();
            let mut refs: Vec<&mut lmzip_engine::Cache> = caches
                .iter_mut()
                .enumerate()
                .filter(|(b, _)| members.contains(b))
                .map(|(_, c)| c)
                .collect();
            let mut logits = vec![0.0; members.len() * 300];
            m.step(&mut refs, &toks, &mut logits, &mut scratch);
            for (r, &b) in members.iter().enumerate() {
                let i = done[b];
                assert_eq!(
                    logits[r * 300..(r + 1) * 300],
                    full[b][i * 300..(i + 1) * 300]
                );
                done[b] += 1;
            }
        }
        // Every kernel version this CPU has: the same bits.
        for isa in Isa::available() {
            let other = m.clone().with_isa(isa);
            assert_eq!(teacher_forced(&other, &seqs[1]), full[1], "{isa:?}");
        }
    }
}

/// The architecture in f64 from the Hugging Face tensors, written from the definition.
fn reference(
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    tied: bool,
    theta: f64,
    toks: &[u32],
) -> Vec<f64> {
    let get = |name: &str| -> Vec<f64> {
        let t = tensors
            .iter()
            .find(|t| t.0 == name)
            .unwrap_or_else(|| panic!("{name}"));
        t.2.iter().map(|&v| f64::from(v)).collect()
    };
    let (d, f, v, heads, kv, hd) = (32, 48, 300, 4, 2, 8);
    // y = W x for W stored out × in.
    let linear = |w: &[f64], x: &[f64], out: usize| -> Vec<f64> {
        (0..out)
            .map(|o| (0..x.len()).map(|i| w[o * x.len() + i] * x[i]).sum())
            .collect()
    };
    let rms = |x: &[f64], w: &[f64]| -> Vec<f64> {
        let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
        let inv = 1.0 / (ms + 1e-5).sqrt();
        x.iter().zip(w).map(|(a, b)| a * inv * b).collect()
    };
    let rope = |x: &mut [f64], pos: usize| {
        let half = hd / 2;
        for i in 0..half {
            let angle = pos as f64 * theta.powf(-2.0 * i as f64 / hd as f64);
            let (s, c) = angle.sin_cos();
            let (a, b) = (x[i], x[i + half]);
            x[i] = a * c - b * s;
            x[i + half] = b * c + a * s;
        }
    };
    let embed = get("model.embed_tokens.weight");
    let n = toks.len();
    let mut xs: Vec<Vec<f64>> = toks
        .iter()
        .map(|&t| embed[t as usize * d..(t as usize + 1) * d].to_vec())
        .collect();
    for l in 0..2 {
        let p = format!("model.layers.{l}.");
        let w = |s: &str| get(&format!("{p}{s}"));
        let (wq, wk, wv, wo) = (
            w("self_attn.q_proj.weight"),
            w("self_attn.k_proj.weight"),
            w("self_attn.v_proj.weight"),
            w("self_attn.o_proj.weight"),
        );
        let mut qs = Vec::new();
        let mut ks = Vec::new();
        let mut vs = Vec::new();
        for (pos, x) in xs.iter().enumerate() {
            let h = rms(x, &w("input_layernorm.weight"));
            let mut q = linear(&wq, &h, heads * hd);
            let mut k = linear(&wk, &h, kv * hd);
            for head in 0..heads {
                rope(&mut q[head * hd..(head + 1) * hd], pos);
            }
            for head in 0..kv {
                rope(&mut k[head * hd..(head + 1) * hd], pos);
            }
            qs.push(q);
            ks.push(k);
            vs.push(linear(&wv, &h, kv * hd));
        }
        for i in 0..n {
            let mut attn = vec![0.0; heads * hd];
            for head in 0..heads {
                let g = head / (heads / kv);
                let out = lmzip_testkit::reference_attention(
                    &qs[i][head * hd..(head + 1) * hd],
                    i + 1,
                    |j| ks[j][g * hd..(g + 1) * hd].to_vec(),
                    |j| vs[j][g * hd..(g + 1) * hd].to_vec(),
                );
                attn[head * hd..(head + 1) * hd].copy_from_slice(&out);
            }
            let o = linear(&wo, &attn, d);
            for (x, o) in xs[i].iter_mut().zip(o) {
                *x += o;
            }
            let h = rms(&xs[i], &w("post_attention_layernorm.weight"));
            let gate = linear(&w("mlp.gate_proj.weight"), &h, f);
            let up = linear(&w("mlp.up_proj.weight"), &h, f);
            let act: Vec<f64> = gate
                .iter()
                .zip(&up)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let down = linear(&w("mlp.down_proj.weight"), &act, d);
            for (x, o) in xs[i].iter_mut().zip(down) {
                *x += o;
            }
        }
    }
    let head = if tied {
        get("model.embed_tokens.weight")
    } else {
        get("lm_head.weight")
    };
    let norm = get("model.norm.weight");
    xs.iter()
        .flat_map(|x| linear(&head, &rms(x, &norm), v))
        .collect()
}

#[test]
fn agrees_with_a_plain_f64_implementation() {
    for (tied, theta) in [(false, 10_000.0), (true, 500_000.0)] {
        let dir = tempfile::tempdir().unwrap();
        let tensors = write_model(dir.path(), tied, theta);
        let (m, _) = lmzip_models::llama::file::load(dir.path()).unwrap();
        let toks = tokens(40, 9);
        let ours = teacher_forced(&m, &toks);
        let exact = reference(&tensors, tied, theta, &toks);
        let worst = ours
            .iter()
            .zip(&exact)
            .map(|(&a, &b)| (f64::from(a) - b).abs())
            .fold(0.0, f64::max);
        let spread = exact.iter().map(|v| v.abs()).fold(0.0, f64::max);
        eprintln!("tied {tied}: max |Δlogit| {worst:.2e}, max |logit| {spread:.2}");
        assert!(spread > 0.5, "logits too flat to test: {spread}");
        assert!(worst < 1e-4, "tied {tied}: max |Δlogit| {worst}");
    }
}

#[test]
fn unsupported_or_damaged_models_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), false, 10_000.0);
    let config = dir.path().join("config.json");
    let json = std::fs::read_to_string(&config).unwrap();
    let scaled = json.replace(
        r#""torch_dtype""#,
        r#""rope_scaling": {"rope_type": "llama3", "factor": 8.0}, "torch_dtype""#,
    );
    std::fs::write(&config, scaled).unwrap();
    let err = lmzip_models::llama::file::load(dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("rope_scaling"), "{err}");
    std::fs::write(
        &config,
        json.replace("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3"),
    )
    .unwrap();
    assert!(lmzip_models::llama::file::load(dir.path()).is_err());
    std::fs::write(&config, &json).unwrap();
    let weights = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    // Qwen 2's projection biases: refused, not silently dropped.
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let bias = vec![0u8; 4 * 32];
    let mut views: Vec<(String, safetensors::tensor::TensorView)> =
        file.tensors().into_iter().collect();
    views.push((
        "model.layers.0.self_attn.q_proj.bias".into(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![32], &bias).unwrap(),
    ));
    std::fs::write(&weights, safetensors::serialize(views, None).unwrap()).unwrap();
    let err = lmzip_models::llama::file::load(dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("biases"), "{err}");
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    assert!(lmzip_models::llama::file::load(dir.path()).is_err());
}

/// The logits of a fixed model on fixed tokens, hashed: the same on every machine and build
/// (a change of numerics must bump `NUMERICS_VERSION` and this value).
#[test]
fn logits_are_pinned_across_machines() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), false, 10_000.0);
    let (m, _) = lmzip_models::llama::file::load(dir.path()).unwrap();
    let sha256 = |m: &Llama| {
        let mut h = Sha256::new();
        for x in teacher_forced(m, &tokens(90, 3)) {
            h.update(x.to_bits().to_le_bytes());
        }
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(
        sha256(&m),
        PINNED_LLAMA_LOGITS_SHA256,
        "the Llama numerics changed"
    );
    assert_eq!(
        sha256(&m.into_int8()),
        PINNED_LLAMA_INT8_LOGITS_SHA256,
        "the Llama numerics 5 changed"
    );
}

const PINNED_LLAMA_LOGITS_SHA256: &str =
    "c7970d254e4c6f7a13a2d090d2e304ea438de6e425b5e0c9bfc8222ee9acd4d9";
const PINNED_LLAMA_INT8_LOGITS_SHA256: &str =
    "f13fae0383ba5d5f371ad4d1e596cf360c8ea20b18c010808dcadf5284847cf2";

/// GGUF: the same random model written by `gguf::write_llama` (llama.cpp's tensor names and
/// query/key row order) loads to the same network as its safetensors directory — bit for bit
/// in F32, and equal to the dequantized weights in Q8_0.
#[test]
fn gguf_loads_the_same_network() {
    use lmzip_models::gguf::{Gguf, TensorType};
    use lmzip_models::llama::gguf;
    let dir = tempfile::tempdir().unwrap();
    let named = write_model(dir.path(), false, 10_000.0);
    let (st, _) = lmzip_models::llama::file::load(dir.path()).unwrap();
    let mut config: LlamaConfig = serde_json::from_str(&config_json(false, 10_000.0)).unwrap();
    config.bos_token_id = Some(1.into());
    let tensors: Vec<Vec<f32>> = named.into_iter().map(|(_, _, v)| v).collect();
    let toks = tokens(40, 9);
    let want = teacher_forced(&st, &toks);

    let f32_file = gguf::write_llama(&config, &tensors, TensorType::F32, &[]);
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, &f32_file).unwrap();
    let loaded = gguf::load_llama(&path).unwrap();
    assert_eq!(loaded.llama.config().start_token(), Some(1));
    assert_eq!(teacher_forced(&loaded.llama, &toks), want);

    let q8_file = gguf::write_llama(&config, &tensors, TensorType::Q8_0, &[]);
    let parsed = Gguf::parse(&q8_file).unwrap();
    let (q_config, q_tensors) = gguf::llama(&parsed, &q8_file).unwrap();
    let q8 = Llama::new(q_config, q_tensors.clone());
    let got = teacher_forced(&q8, &toks);
    // Not the same weights (8-bit), but close, and a network built from the dequantized
    // tensors is the same network.
    let max = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(max > 0.0 && max < 0.1, "Q8_0 logits differ by {max}");
    for (a, b) in q_tensors.iter().zip(&tensors) {
        let step = b.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
        assert!(
            a.iter().zip(b).all(|(x, y)| (x - y).abs() <= step),
            "within one step"
        );
    }

    // Every truncation, and bytes flipped in the header, give errors, never a panic.
    for n in (0..q8_file.len()).step_by(97) {
        let cut = &q8_file[..n];
        let ok = Gguf::parse(cut).and_then(|g| gguf::llama(&g, cut).map(|_| ()));
        assert!(ok.is_err(), "a file cut at {n} bytes loaded");
    }
    for i in 0..400 {
        let mut bad = q8_file.clone();
        bad[i] ^= 0xff;
        let _ = Gguf::parse(&bad).and_then(|g| gguf::llama(&g, &bad).map(|_| ()));
    }
}
