//! Forward with saved activations and the backward pass of the engine's byte Transformer
//! (pre-LN), for one sequence at a time.
//!
//! The forward computes the same function as `lmzip_models::transformer::Transformer::forward` (the tests
//! check agreement within 1e-4); it saves what the backward needs. Matrix products use the
//! engine's kernel on freshly packed operands; elementwise functions use the engine's `math`.

use lmzip_engine::kernels::{self, Isa, Packed};
use lmzip_engine::{Rope, math};
use lmzip_models::transformer::Weights;
use lmzip_models::transformer::config::{BOS, Config, OUTPUT_VOCAB};

/// `a · b` for row-major `a` (`m × k`) and `b` (`k × n`).
pub fn mm(isa: Isa, a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0; m * n];
    kernels::matmul(isa, a, &Packed::new(&b[..k * n], k, n), &mut c, m);
    c
}

/// The transpose of the row-major `rows × cols` matrix `a`.
pub fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const B: usize = 32;
    let mut t = vec![0.0; rows * cols];
    for r0 in (0..rows).step_by(B) {
        for c0 in (0..cols).step_by(B) {
            for r in r0..(r0 + B).min(rows) {
                for c in c0..(c0 + B).min(cols) {
                    t[c * rows + r] = a[r * cols + c];
                }
            }
        }
    }
    t
}

/// `g += a^T · b` for `a` (`m × k`) and `b` (`m × n`): a weight gradient.
fn add_at_b(isa: Isa, g: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize) {
    let prod = mm(isa, &transpose(a, m, k), b, k, m, n);
    for (g, p) in g.iter_mut().zip(prod) {
        *g += p;
    }
}

/// `g[j] += Σ_i a[i][j]`: a bias gradient.
fn add_col_sums(g: &mut [f32], a: &[f32]) {
    for row in a.chunks_exact(g.len()) {
        for (g, x) in g.iter_mut().zip(row) {
            *g += x;
        }
    }
}

/// Saved layer-norm state: normalized input and the inverse deviation per row.
struct NormSaved {
    xhat: Vec<f32>,
    inv: Vec<f32>,
}

fn layer_norm(x: &[f32], w: &[f32], b: &[f32], d: usize, eps: f32) -> (Vec<f32>, NormSaved) {
    let rows = x.len() / d;
    let mut y = vec![0.0; x.len()];
    let mut xhat = vec![0.0; x.len()];
    let mut inv = vec![0.0; rows];
    for r in 0..rows {
        let xr = &x[r * d..(r + 1) * d];
        let mean = math::sum(xr) / d as f32;
        let centered: Vec<f32> = xr.iter().map(|v| v - mean).collect();
        let squares: Vec<f32> = centered.iter().map(|c| c * c).collect();
        let iv = 1.0 / (math::sum(&squares) / d as f32 + eps).sqrt();
        inv[r] = iv;
        for i in 0..d {
            let h = centered[i] * iv;
            xhat[r * d + i] = h;
            y[r * d + i] = h * w[i] + b[i];
        }
    }
    (y, NormSaved { xhat, inv })
}

/// Backward of [`layer_norm`]: returns dx, accumulates dw and db.
fn layer_norm_back(
    dy: &[f32],
    s: &NormSaved,
    w: &[f32],
    dw: &mut [f32],
    db: &mut [f32],
) -> Vec<f32> {
    let d = w.len();
    let mut dx = vec![0.0; dy.len()];
    for r in 0..dy.len() / d {
        let (dyr, xh) = (&dy[r * d..(r + 1) * d], &s.xhat[r * d..(r + 1) * d]);
        let mut mean_g = 0.0f32;
        let mut mean_gx = 0.0f32;
        for i in 0..d {
            dw[i] += dyr[i] * xh[i];
            db[i] += dyr[i];
            let g = dyr[i] * w[i];
            mean_g += g;
            mean_gx += g * xh[i];
        }
        mean_g /= d as f32;
        mean_gx /= d as f32;
        for i in 0..d {
            let g = dyr[i] * w[i];
            dx[r * d + i] = s.inv[r] * (g - mean_g - xh[i] * mean_gx);
        }
    }
    dx
}

/// d gelu(x) / dx for the tanh form.
fn gelu_grad(x: f32) -> f32 {
    const C: f32 = 0.797_884_6;
    let inner = C * (x + 0.044_715 * x * x * x);
    let t = math::tanh(inner);
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * C * (1.0 + 3.0 * 0.044_715 * x * x)
}

/// The engine's rotary tables for `config`.
pub fn rope(config: &Config) -> Rope {
    Rope::new(config.context, config.head_dim(), config.rope_theta)
}

/// What one block's backward needs.
struct BlockSaved {
    ln1: NormSaved,
    h1: Vec<f32>,
    /// Per head: rotated scaled queries, rotated keys, values (`t × hd` each) and the
    /// attention probabilities (`t × t`).
    heads: Vec<[Vec<f32>; 4]>,
    attn: Vec<f32>,
    ln2: NormSaved,
    h2: Vec<f32>,
    pre_gelu: Vec<f32>,
    post_gelu: Vec<f32>,
}

/// Forward and backward over one sequence: `bytes` (at most `context`) are the targets, the
/// inputs are the beginning token and `bytes[..n-1]`. Adds the gradient of the summed
/// cross-entropy (in nats) to `grads` and returns that loss. With `logits_out`, also writes
/// the logits (`n × 256`).
pub fn forward_backward(
    config: &Config,
    w: &Weights,
    rope: &Rope,
    bytes: &[u8],
    grads: Option<&mut Weights>,
    logits_out: Option<&mut Vec<f32>>,
) -> f64 {
    let isa = Isa::detect();
    let (n, d, f) = (bytes.len(), config.d_model, config.d_ff);
    let (heads, hd) = (config.n_heads, config.head_dim());
    let scale = 1.0 / (hd as f32).sqrt();
    let eps = config.norm_eps;
    let tokens: Vec<usize> = std::iter::once(BOS as usize)
        .chain(bytes[..n - 1].iter().map(|&b| usize::from(b)))
        .collect();
    let mut x: Vec<f32> = tokens
        .iter()
        .flat_map(|&t| w.embed[t * d..(t + 1) * d].to_vec())
        .collect();
    let mut saved = Vec::with_capacity(w.blocks.len());
    for b in &w.blocks {
        let (h1, ln1) = layer_norm(&x, &b.ln1.weight, &b.ln1.bias, d, eps);
        let qkv = mm(isa, &h1, &b.wqkv, n, d, 3 * d);
        let mut attn = vec![0.0; n * d];
        let mut head_saved = Vec::with_capacity(heads);
        for h in 0..heads {
            let mut q = vec![0.0; n * hd];
            let mut k = vec![0.0; n * hd];
            let mut v = vec![0.0; n * hd];
            for i in 0..n {
                let row = &qkv[i * 3 * d..(i + 1) * 3 * d];
                q[i * hd..(i + 1) * hd].copy_from_slice(&row[h * hd..(h + 1) * hd]);
                k[i * hd..(i + 1) * hd].copy_from_slice(&row[d + h * hd..d + (h + 1) * hd]);
                v[i * hd..(i + 1) * hd].copy_from_slice(&row[2 * d + h * hd..2 * d + (h + 1) * hd]);
                rope.rotate(&mut q[i * hd..(i + 1) * hd], i);
                rope.rotate(&mut k[i * hd..(i + 1) * hd], i);
                for x in &mut q[i * hd..(i + 1) * hd] {
                    *x *= scale;
                }
            }
            let mut p = mm(isa, &q, &transpose(&k, n, hd), n, hd, n);
            for i in 0..n {
                let row = &mut p[i * n..(i + 1) * n];
                let max = math::max(&row[..=i]);
                for s in row[..=i].iter_mut() {
                    *s = math::exp(*s - max);
                }
                let z = math::sum(&row[..=i]);
                for s in row[..=i].iter_mut() {
                    *s /= z;
                }
                row[i + 1..].fill(0.0);
            }
            let o = mm(isa, &p, &v, n, n, hd);
            for i in 0..n {
                attn[i * d + h * hd..i * d + (h + 1) * hd]
                    .copy_from_slice(&o[i * hd..(i + 1) * hd]);
            }
            head_saved.push([q, k, v, p]);
        }
        let proj = mm(isa, &attn, &b.wo, n, d, d);
        for (x, p) in x.iter_mut().zip(&proj) {
            *x += p;
        }
        let (h2, ln2) = layer_norm(&x, &b.ln2.weight, &b.ln2.bias, d, eps);
        let mut pre_gelu = mm(isa, &h2, &b.w1, n, d, f);
        for row in pre_gelu.chunks_exact_mut(f) {
            for (u, bias) in row.iter_mut().zip(&b.b1) {
                *u += bias;
            }
        }
        let post_gelu: Vec<f32> = pre_gelu.iter().map(|&u| math::gelu(u)).collect();
        let y = mm(isa, &post_gelu, &b.w2, n, f, d);
        for (i, (x, y)) in x.iter_mut().zip(&y).enumerate() {
            *x += y + b.b2[i % d];
        }
        saved.push(BlockSaved {
            ln1,
            h1,
            heads: head_saved,
            attn,
            ln2,
            h2,
            pre_gelu,
            post_gelu,
        });
    }
    let (hf, lnf) = layer_norm(&x, &w.ln_f.weight, &w.ln_f.bias, d, eps);
    let mut logits = mm(isa, &hf, &w.head, n, d, OUTPUT_VOCAB);
    for row in logits.chunks_exact_mut(OUTPUT_VOCAB) {
        for (l, b) in row.iter_mut().zip(&w.head_bias) {
            *l += b;
        }
    }
    // Cross-entropy and its gradient (softmax − one-hot).
    let mut loss = 0.0f64;
    let mut dlogits = vec![0.0f32; n * OUTPUT_VOCAB];
    for (i, (row, &target)) in logits.chunks_exact(OUTPUT_VOCAB).zip(bytes).enumerate() {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let z: f64 = row.iter().map(|&v| f64::from(v - max).exp()).sum();
        loss += z.ln() - f64::from(row[usize::from(target)] - max);
        for (j, &v) in row.iter().enumerate() {
            dlogits[i * OUTPUT_VOCAB + j] = (f64::from(v - max).exp() / z) as f32;
        }
        dlogits[i * OUTPUT_VOCAB + usize::from(target)] -= 1.0;
    }
    if let Some(out) = logits_out {
        *out = logits;
    }
    let Some(g) = grads else { return loss };
    // Head and final norm.
    add_at_b(isa, &mut g.head, &hf, &dlogits, n, d, OUTPUT_VOCAB);
    add_col_sums(&mut g.head_bias, &dlogits);
    let dhf = mm(
        isa,
        &dlogits,
        &transpose(&w.head, d, OUTPUT_VOCAB),
        n,
        OUTPUT_VOCAB,
        d,
    );
    let mut dx = layer_norm_back(
        &dhf,
        &lnf,
        &w.ln_f.weight,
        &mut g.ln_f.weight,
        &mut g.ln_f.bias,
    );
    for (l, b) in w.blocks.iter().enumerate().rev() {
        let s = &saved[l];
        let gb = &mut g.blocks[l];
        // MLP: x2 = x1 + gelu(h2·W1 + b1)·W2 + b2.
        add_col_sums(&mut gb.b2, &dx);
        add_at_b(isa, &mut gb.w2, &s.post_gelu, &dx, n, f, d);
        let mut du = mm(isa, &dx, &transpose(&b.w2, f, d), n, d, f);
        for (du, &u) in du.iter_mut().zip(&s.pre_gelu) {
            *du *= gelu_grad(u);
        }
        add_col_sums(&mut gb.b1, &du);
        add_at_b(isa, &mut gb.w1, &s.h2, &du, n, d, f);
        let dh2 = mm(isa, &du, &transpose(&b.w1, d, f), n, f, d);
        let dx1 = layer_norm_back(
            &dh2,
            &s.ln2,
            &b.ln2.weight,
            &mut gb.ln2.weight,
            &mut gb.ln2.bias,
        );
        for (a, b) in dx.iter_mut().zip(&dx1) {
            *a += b;
        }
        // Attention: x1 = x0 + attn·Wo.
        add_at_b(isa, &mut gb.wo, &s.attn, &dx, n, d, d);
        let dattn = mm(isa, &dx, &transpose(&b.wo, d, d), n, d, d);
        let mut dqkv = vec![0.0f32; n * 3 * d];
        for (h, [q, k, v, p]) in s.heads.iter().enumerate() {
            let mut dout = vec![0.0; n * hd];
            for i in 0..n {
                dout[i * hd..(i + 1) * hd]
                    .copy_from_slice(&dattn[i * d + h * hd..i * d + (h + 1) * hd]);
            }
            let dv = mm(isa, &transpose(p, n, n), &dout, n, n, hd);
            let dp = mm(isa, &dout, &transpose(v, n, hd), n, hd, n);
            let mut ds = vec![0.0; n * n];
            for i in 0..n {
                let (pr, dpr) = (&p[i * n..(i + 1) * n], &dp[i * n..(i + 1) * n]);
                let dot: f32 = pr[..=i].iter().zip(&dpr[..=i]).map(|(a, b)| a * b).sum();
                for j in 0..=i {
                    ds[i * n + j] = pr[j] * (dpr[j] - dot);
                }
            }
            let mut dq = mm(isa, &ds, k, n, n, hd);
            let mut dk = mm(isa, &transpose(&ds, n, n), q, n, n, hd);
            for i in 0..n {
                let dqi = &mut dq[i * hd..(i + 1) * hd];
                for x in dqi.iter_mut() {
                    *x *= scale;
                }
                rope.rotate_back(dqi, i);
                rope.rotate_back(&mut dk[i * hd..(i + 1) * hd], i);
                let row = &mut dqkv[i * 3 * d..(i + 1) * 3 * d];
                row[h * hd..(h + 1) * hd].copy_from_slice(dqi);
                row[d + h * hd..d + (h + 1) * hd].copy_from_slice(&dk[i * hd..(i + 1) * hd]);
                row[2 * d + h * hd..2 * d + (h + 1) * hd]
                    .copy_from_slice(&dv[i * hd..(i + 1) * hd]);
            }
        }
        add_at_b(isa, &mut gb.wqkv, &s.h1, &dqkv, n, d, 3 * d);
        let dh1 = mm(isa, &dqkv, &transpose(&b.wqkv, d, 3 * d), n, 3 * d, d);
        let dx0 = layer_norm_back(
            &dh1,
            &s.ln1,
            &b.ln1.weight,
            &mut gb.ln1.weight,
            &mut gb.ln1.bias,
        );
        for (a, b) in dx.iter_mut().zip(&dx0) {
            *a += b;
        }
    }
    for (i, &t) in tokens.iter().enumerate() {
        for (g, d) in g.embed[t * d..(t + 1) * d]
            .iter_mut()
            .zip(&dx[i * d..(i + 1) * d])
        {
            *g += d;
        }
    }
    loss
}
