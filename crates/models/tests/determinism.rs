//! The first law: the same logits, bit for bit, whatever the path, batch, kernel version or
//! machine; and agreement with an independent f64 reference.

use lmzip_engine::{Cache, Isa};
use lmzip_models::transformer::config::{BOS, Norm, OUTPUT_VOCAB};
use lmzip_models::transformer::{
    Config, Scratch, Transformer, WeightStorage, chunk_inputs, file, inputs_at,
};
use sha2::{Digest, Sha256};

/// Shapes covering the specialized head widths (16, 32, 64) and a generic one (6), pre and post LN.
fn configs() -> Vec<Config> {
    let mut post = Config::new(24, 2, 4, 80);
    post.norm = Norm::Post;
    vec![
        Config::new(64, 2, 4, 300),
        Config::new(64, 1, 2, 70),
        Config::new(64, 1, 1, 40),
        post,
    ]
}

fn model(config: &Config, seed: u64) -> Transformer {
    Transformer::new(config.clone(), file::random_weights(config, seed))
}

fn text(len: usize, seed: usize) -> Vec<u8> {
    let base = b"It was the best of times, it was the worst of times; \x00\xff\x80 0123 ";
    (0..len)
        .map(|i| base[(i * 7 + seed + i / 13) % base.len()])
        .collect()
}

fn teacher_forced(m: &Transformer, chunk: &[u8]) -> Vec<f32> {
    let mut logits = vec![0.0; chunk.len() * OUTPUT_VOCAB];
    m.forward(&chunk_inputs(chunk), &mut logits, &mut Scratch::default());
    logits
}

fn incremental(m: &Transformer, chunk: &[u8]) -> Vec<f32> {
    let mut cache = m.new_cache();
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    let mut row = vec![0.0; OUTPUT_VOCAB];
    for i in 0..chunk.len() {
        let token = if i == 0 { BOS } else { u32::from(chunk[i - 1]) };
        m.step(&mut [&mut cache], &[token], &mut row, &mut scratch);
        out.extend_from_slice(&row);
    }
    out
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn teacher_forced_equals_incremental() {
    for (c, config) in configs().iter().enumerate() {
        let m = model(config, c as u64);
        for len in [1, 2, 5, 17, config.context] {
            let chunk = text(len, c);
            assert_eq!(
                bits(&teacher_forced(&m, &chunk)),
                bits(&incremental(&m, &chunk)),
                "config {c}, length {len}"
            );
        }
    }
}

#[test]
fn a_chunk_does_not_depend_on_its_batch() {
    let config = Config::new(64, 2, 4, 64);
    let m = model(&config, 3);
    let chunks: Vec<Vec<u8>> = (0..64).map(|i| text(40 + i % 7, i)).collect();
    let alone: Vec<Vec<f32>> = chunks.iter().map(|c| teacher_forced(&m, c)).collect();
    // 64 chunks in lockstep; then a batch whose members sit at different positions.
    let mut caches: Vec<Cache> = chunks.iter().map(|_| m.new_cache()).collect();
    let mut scratch = Scratch::default();
    let mut logits = vec![0.0; chunks.len() * OUTPUT_VOCAB];
    for pos in 0..40 {
        let mut refs: Vec<&mut Cache> = caches.iter_mut().collect();
        m.step(
            &mut refs,
            &inputs_at(&chunks, pos),
            &mut logits,
            &mut scratch,
        );
        for (i, row) in logits.chunks_exact(OUTPUT_VOCAB).enumerate() {
            assert_eq!(
                bits(row),
                bits(&alone[i][pos * OUTPUT_VOCAB..][..OUTPUT_VOCAB]),
                "chunk {i} pos {pos}"
            );
        }
    }
    let mut staggered: Vec<Cache> = (0..8).map(|_| m.new_cache()).collect();
    for step in 0..40 {
        let members: Vec<usize> = (0..8).filter(|&i| step >= i).collect();
        let tokens: Vec<u32> = members
            .iter()
            .map(|&i| {
                let pos = step - i;
                if pos == 0 {
                    BOS
                } else {
                    u32::from(chunks[i][pos - 1])
                }
            })
            .collect();
        let mut refs: Vec<&mut Cache> = staggered
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| members.contains(i))
            .map(|(_, c)| c)
            .collect();
        m.step(&mut refs, &tokens, &mut logits, &mut scratch);
        for (row, &i) in logits.chunks_exact(OUTPUT_VOCAB).zip(&members) {
            let pos = step - i;
            assert_eq!(
                bits(row),
                bits(&alone[i][pos * OUTPUT_VOCAB..][..OUTPUT_VOCAB]),
                "staggered {i} {pos}"
            );
        }
    }
}

#[test]
fn every_kernel_version_gives_the_same_bits() {
    for (c, config) in configs().iter().enumerate() {
        let chunk = text(config.context.min(150), c);
        let reference = bits(&teacher_forced(
            &model(config, 9).with_isa(Isa::Portable),
            &chunk,
        ));
        for isa in Isa::available() {
            let m = model(config, 9).with_isa(isa);
            assert_eq!(
                bits(&teacher_forced(&m, &chunk)),
                reference,
                "{isa:?} teacher-forced, config {c}"
            );
            assert_eq!(
                bits(&incremental(&m, &chunk)),
                reference,
                "{isa:?} incremental, config {c}"
            );
        }
    }
}

/// The logits of fixed models on fixed text, hashed: the same on every machine and build. A
/// change here is a change of numerics, which must bump `NUMERICS_VERSION` (and this value).
#[test]
fn logits_are_pinned_across_machines() {
    let logits: Vec<f32> = configs()
        .iter()
        .enumerate()
        .flat_map(|(c, config)| {
            let chunk = text(config.context.min(120), c);
            teacher_forced(&model(config, 100 + c as u64), &chunk)
        })
        .collect();
    let hex = sha256_hex(&logits);
    assert_eq!(
        hex, PINNED_LOGITS_SHA256,
        "the engine's numerics changed on this build or machine"
    );
}

/// The SHA-256 of `values`' bits (little-endian), in hex: what the pins compare.
fn sha256_hex(values: &[f32]) -> String {
    let mut h = Sha256::new();
    for x in values {
        h.update(x.to_bits().to_le_bytes());
    }
    let digest: [u8; 32] = h.finalize().into();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

const PINNED_LOGITS_SHA256: &str =
    "b0c2a3c5c7aa98f507e5e5dd3458b8e72c514c9a0f452f08855631eb67b312cc";

/// A plain f64 forward pass written from the architecture's description, sharing no code with
/// the engine but the weights.
fn reference_forward(m: &Transformer, chunk: &[u8]) -> Vec<f64> {
    let cfg = m.config();
    let w = m.weights();
    let (d, f, heads) = (cfg.d_model, cfg.d_ff, cfg.n_heads);
    let hd = d / heads;
    let n = chunk.len();
    let f64v = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    let matmul = |x: &[Vec<f64>], wt: &[f32], k: usize, cols: usize| -> Vec<Vec<f64>> {
        x.iter()
            .map(|row| {
                (0..cols)
                    .map(|j| (0..k).map(|p| row[p] * f64::from(wt[p * cols + j])).sum())
                    .collect()
            })
            .collect()
    };
    let layer_norm = |x: &[Vec<f64>], weight: &[f32], bias: &[f32]| -> Vec<Vec<f64>> {
        x.iter()
            .map(|row| {
                let mean = row.iter().sum::<f64>() / d as f64;
                let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
                let inv = 1.0 / (var + f64::from(cfg.norm_eps)).sqrt();
                (0..d)
                    .map(|i| (row[i] - mean) * inv * f64::from(weight[i]) + f64::from(bias[i]))
                    .collect()
            })
            .collect()
    };
    let gelu = |x: f64| {
        0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
    };
    let rotate = |v: &mut [f64], pos: usize| {
        let half = hd / 2;
        for i in 0..half {
            let angle = pos as f64 * cfg.rope_theta.powf(-((2 * i) as f64) / hd as f64);
            let (s, c) = angle.sin_cos();
            let (a, b) = (v[i], v[i + half]);
            v[i] = a * c - b * s;
            v[i + half] = b * c + a * s;
        }
    };
    let embed = f64v(&w.embed);
    let mut x: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let t = if i == 0 {
                256
            } else {
                usize::from(chunk[i - 1])
            };
            embed[t * d..(t + 1) * d].to_vec()
        })
        .collect();
    let pre = cfg.norm == Norm::Pre;
    for b in &w.blocks {
        let h = if pre {
            layer_norm(&x, &b.ln1.weight, &b.ln1.bias)
        } else {
            x.clone()
        };
        let qkv = matmul(&h, &b.wqkv, d, 3 * d);
        let mut attn = vec![vec![0.0; d]; n];
        for head in 0..heads {
            let part = |row: &Vec<f64>, which: usize, pos: usize| {
                let mut v = row[which * d + head * hd..which * d + (head + 1) * hd].to_vec();
                if which < 2 {
                    rotate(&mut v, pos);
                }
                v
            };
            for i in 0..n {
                let q = part(&qkv[i], 0, i);
                let out = lmzip_testkit::reference_attention(
                    &q,
                    i + 1,
                    |j| part(&qkv[j], 1, j),
                    |j| part(&qkv[j], 2, j),
                );
                attn[i][head * hd..(head + 1) * hd].copy_from_slice(&out);
            }
        }
        let o = matmul(&attn, &b.wo, d, d);
        for i in 0..n {
            for t in 0..d {
                x[i][t] += o[i][t];
            }
        }
        if !pre {
            x = layer_norm(&x, &b.ln1.weight, &b.ln1.bias);
        }
        let h = if pre {
            layer_norm(&x, &b.ln2.weight, &b.ln2.bias)
        } else {
            x.clone()
        };
        let mut u = matmul(&h, &b.w1, d, f);
        for row in &mut u {
            for (t, v) in row.iter_mut().enumerate() {
                *v = gelu(*v + f64::from(b.b1[t]));
            }
        }
        let y = matmul(&u, &b.w2, f, d);
        for i in 0..n {
            for t in 0..d {
                x[i][t] += y[i][t] + f64::from(b.b2[t]);
            }
        }
        if !pre {
            x = layer_norm(&x, &b.ln2.weight, &b.ln2.bias);
        }
    }
    let h = if pre {
        layer_norm(&x, &w.ln_f.weight, &w.ln_f.bias)
    } else {
        x
    };
    let logits = matmul(&h, &w.head, d, OUTPUT_VOCAB);
    logits
        .into_iter()
        .flat_map(|row| {
            row.into_iter()
                .enumerate()
                .map(|(j, v)| v + f64::from(w.head_bias[j]))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn agrees_with_an_f64_reference() {
    for (c, config) in configs().iter().enumerate() {
        let m = model(config, 40 + c as u64);
        let chunk = text(config.context.min(64), c);
        let ours = teacher_forced(&m, &chunk);
        let reference = reference_forward(&m, &chunk);
        let worst = ours
            .iter()
            .zip(&reference)
            .map(|(&a, &b)| (f64::from(a) - b).abs())
            .fold(0.0, f64::max);
        eprintln!("config {c}: max |Δlogit| = {worst:e}");
        assert!(worst <= 1e-4, "config {c}: max |Δlogit| = {worst:e}");
    }
}

#[test]
fn model_files_round_trip_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(32, 1, 2, 16);
    let weights = file::random_weights(&config, 5);
    let sha = file::save(dir.path(), &config, &weights).unwrap();
    let loaded = file::load(dir.path()).unwrap();
    assert_eq!(loaded.sha256, sha);
    assert_eq!(loaded.transformer.weights(), &weights);
    // One weight bit changed: another hash.
    let mut other = weights.clone();
    other.head[3] = f32::from_bits(other.head[3].to_bits() ^ 1);
    let other_sha = file::save(dir.path(), &config, &other).unwrap();
    assert_ne!(other_sha, sha);
    // Foreign and damaged files are errors, not panics.
    let weights_path = dir.path().join(file::WEIGHTS_FILE);
    let bytes = std::fs::read(&weights_path).unwrap();
    for cut in [0, 7, 100, bytes.len() - 1] {
        std::fs::write(&weights_path, &bytes[..cut]).unwrap();
        assert!(file::load(dir.path()).is_err(), "cut at {cut}");
    }
    std::fs::write(&weights_path, &bytes).unwrap();
    std::fs::write(
        dir.path().join(file::CONFIG_FILE),
        b"{\"architecture\": \"gpt\"}",
    )
    .unwrap();
    assert!(file::load(dir.path()).is_err());
    let mut big = config.clone();
    big.n_heads = 3;
    std::fs::write(
        dir.path().join(file::CONFIG_FILE),
        serde_json::to_vec(&big).unwrap(),
    )
    .unwrap();
    assert!(file::load(dir.path()).is_err());
}

/// A step split between the two threads of a team (a solid block decoding alone: the matrix
/// products by column panels, attention by heads) gives the bits of the step on one thread, for
/// one, two and three heads, every kernel version, full and windowed attention, `f32`,
/// bfloat16 and int8 weights.
#[test]
fn a_step_split_between_two_threads_gives_the_same_bits() {
    let mut three_heads = Config::new(48, 1, 3, 120);
    three_heads.norm = Norm::Post;
    for (c, config) in configs().into_iter().chain([three_heads]).enumerate() {
        for isa in Isa::available() {
            for (window, weights) in [
                (usize::MAX, WeightStorage::F32),
                (50, WeightStorage::Bf16),
                (50, WeightStorage::Int8),
            ] {
                let m = model(&config, 20 + c as u64)
                    .with_isa(isa)
                    .with_window(window)
                    .with_weight_storage(weights)
                    .with_bf16_cache(weights != WeightStorage::F32);
                let chunk = text(config.context.min(130), c);
                let want = bits(&teacher_forced(&m, &chunk));
                let split = lmzip_engine::team::install(|| {
                    assert_eq!(
                        lmzip_engine::team::active(),
                        std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2
                    );
                    incremental(&m, &chunk)
                });
                assert_eq!(
                    bits(&split),
                    want,
                    "config {c} {isa:?} {window} {weights:?}"
                );
            }
        }
    }
}

/// The weights' storage the windowed tests give each window: bfloat16 (numerics 2) for 37,
/// int8 (numerics 4) for 100, else `f32`.
fn storage(window: usize) -> WeightStorage {
    match window {
        37 => WeightStorage::Bf16,
        100 => WeightStorage::Int8,
        _ => WeightStorage::F32,
    }
}

/// A sliding attention window (numerics 2): teacher forcing, one byte at a time and a
/// staggered lockstep batch give the same bits on every kernel version, past the window, with
/// `f32`, bfloat16 and int8 weights.
#[test]
fn windowed_attention_agrees_on_every_path() {
    let config = Config::new(64, 2, 4, 300);
    for window in [1, 37, 64, 100] {
        let chunks: Vec<Vec<u8>> = (0..3).map(|i| text(300 - 50 * i, i)).collect();
        let reference: Vec<Vec<u32>> = chunks
            .iter()
            .map(|c| {
                let m = model(&config, 5)
                    .with_isa(Isa::Portable)
                    .with_window(window)
                    .with_weight_storage(storage(window))
                    .with_bf16_cache(window == 37 || window == 64);
                bits(&teacher_forced(&m, c))
            })
            .collect();
        for isa in Isa::available() {
            let m = model(&config, 5)
                .with_isa(isa)
                .with_window(window)
                .with_weight_storage(storage(window))
                .with_bf16_cache(window == 37 || window == 64);
            for (chunk, want) in chunks.iter().zip(&reference) {
                assert_eq!(
                    &bits(&teacher_forced(&m, chunk)),
                    want,
                    "{isa:?} w {window}"
                );
                assert_eq!(&bits(&incremental(&m, chunk)), want, "{isa:?} w {window}");
            }
            // Chunk i joins the batch at step 7 i, so the rows sit at different positions.
            let mut caches: Vec<Cache> = chunks.iter().map(|_| m.new_cache()).collect();
            let mut scratch = Scratch::default();
            let mut logits = vec![0.0; chunks.len() * OUTPUT_VOCAB];
            for step in 0..320 {
                let members: Vec<usize> = (0..chunks.len())
                    .filter(|&i| step >= 7 * i && step - 7 * i < chunks[i].len())
                    .collect();
                if members.is_empty() {
                    continue;
                }
                let tokens: Vec<u32> = members
                    .iter()
                    .map(|&i| match step - 7 * i {
                        0 => BOS,
                        pos => u32::from(chunks[i][pos - 1]),
                    })
                    .collect();
                let mut refs: Vec<&mut Cache> = caches
                    .iter_mut()
                    .enumerate()
                    .filter(|(i, _)| members.contains(i))
                    .map(|(_, c)| c)
                    .collect();
                m.step(&mut refs, &tokens, &mut logits, &mut scratch);
                for (row, &i) in logits.chunks_exact(OUTPUT_VOCAB).zip(&members) {
                    let pos = step - 7 * i;
                    assert_eq!(
                        bits(row),
                        reference[i][pos * OUTPUT_VOCAB..][..OUTPUT_VOCAB],
                        "{isa:?} w {window} lockstep chunk {i} pos {pos}"
                    );
                }
            }
        }
    }
}

/// The hash of the logits of a fixed model (seed 11) with matrix weights stored as `weights`,
/// bfloat16 keys and values and a window of 50, over 300 positions.
fn windowed_logits_sha256(weights: WeightStorage) -> String {
    let config = Config::new(64, 2, 4, 300);
    let m = model(&config, 11)
        .with_window(50)
        .with_weight_storage(weights)
        .with_bf16_cache(true);
    sha256_hex(&teacher_forced(&m, &text(300, 4)))
}

/// The logits of a fixed model computing as numerics 2 does (bfloat16 matrix weights, keys and
/// values) with a window of 50 over 300 positions, hashed: pins numerics 2 on every machine (a
/// change bumps `NUMERICS_VERSION` and this value).
#[test]
fn windowed_logits_are_pinned_across_machines() {
    assert_eq!(
        windowed_logits_sha256(WeightStorage::Bf16),
        PINNED_WINDOWED_LOGITS_SHA256,
        "the windowed attention's numerics changed on this build or machine"
    );
}

const PINNED_WINDOWED_LOGITS_SHA256: &str =
    "a165c456861cb5b1a722019b17048c956d83b390088bb32672443d0729223bf3";

/// The same logits computed as numerics 4 does (int8 matrix weights and integer products,
/// bfloat16 keys and values, window 50), hashed: pins numerics 4 on every machine.
#[test]
fn int8_logits_are_pinned_across_machines() {
    assert_eq!(
        windowed_logits_sha256(WeightStorage::Int8),
        PINNED_INT8_LOGITS_SHA256,
        "the int8 products' numerics changed on this build or machine"
    );
}

const PINNED_INT8_LOGITS_SHA256: &str =
    "512d562be0c487fbf190e436c16cda30f445e29bcc08a25622dccbe8ab4eeaa6";
