//! The same byte Transformer as `lmzip-engine`, written with candle: the speed reference of
//! `lmzip speed` (teacher-forced forward only) and a second independent implementation of the
//! architecture. Never on the coding path: candle's results differ between its batched and
//! incremental paths.

use candle_core::{DType, Device, Result, Tensor};
use lmzip_models::transformer::config::{Norm, OUTPUT_VOCAB};
use lmzip_models::transformer::{Config, Transformer};

struct Block {
    ln1: (Tensor, Tensor),
    wqkv: Tensor,
    wo: Tensor,
    ln2: (Tensor, Tensor),
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
}

/// A Transformer's weights as candle tensors on the CPU.
pub struct CandleModel {
    config: Config,
    embed: Tensor,
    blocks: Vec<Block>,
    ln_f: (Tensor, Tensor),
    head: Tensor,
    head_bias: Tensor,
    cos: Tensor,
    sin: Tensor,
}

impl CandleModel {
    /// Copy `net`'s weights into candle tensors.
    pub fn new(net: &Transformer) -> Result<CandleModel> {
        let dev = Device::Cpu;
        let c = net.config().clone();
        let w = net.weights();
        let (d, f) = (c.d_model, c.d_ff);
        let t = |v: &[f32], shape: &[usize]| Tensor::from_slice(v, shape, &dev);
        let blocks = w
            .blocks
            .iter()
            .map(|b| {
                Ok(Block {
                    ln1: (t(&b.ln1.weight, &[d])?, t(&b.ln1.bias, &[d])?),
                    wqkv: t(&b.wqkv, &[d, 3 * d])?,
                    wo: t(&b.wo, &[d, d])?,
                    ln2: (t(&b.ln2.weight, &[d])?, t(&b.ln2.bias, &[d])?),
                    w1: t(&b.w1, &[d, f])?,
                    b1: t(&b.b1, &[f])?,
                    w2: t(&b.w2, &[f, d])?,
                    b2: t(&b.b2, &[d])?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let half = c.head_dim() / 2;
        let mut cos = Vec::with_capacity(c.context * half);
        let mut sin = Vec::with_capacity(c.context * half);
        for pos in 0..c.context {
            for i in 0..half {
                let angle = pos as f64 * c.rope_theta.powf(-((2 * i) as f64) / (2 * half) as f64);
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        Ok(CandleModel {
            embed: t(&w.embed, &[257, d])?,
            blocks,
            ln_f: (t(&w.ln_f.weight, &[d])?, t(&w.ln_f.bias, &[d])?),
            head: t(&w.head, &[d, OUTPUT_VOCAB])?,
            head_bias: t(&w.head_bias, &[OUTPUT_VOCAB])?,
            cos: t(&cos, &[c.context, half])?,
            sin: t(&sin, &[c.context, half])?,
            config: c,
        })
    }

    /// Teacher-forced logits of `chunk`, `chunk.len() × 256`, row-major.
    pub fn forward(&self, chunk: &[u8]) -> Result<Vec<f32>> {
        let n = chunk.len();
        self.logits(chunk)?
            .flatten_all()?
            .to_vec1::<f32>()
            .map(|mut v| {
                v.truncate(n * OUTPUT_VOCAB);
                v
            })
    }

    /// Every weight tensor, for training.
    fn tensors(&self) -> Vec<&Tensor> {
        let mut out = vec![&self.embed];
        for b in &self.blocks {
            out.extend([
                &b.ln1.0, &b.ln1.1, &b.wqkv, &b.wo, &b.ln2.0, &b.ln2.1, &b.w1, &b.b1, &b.w2, &b.b2,
            ]);
        }
        out.extend([&self.ln_f.0, &self.ln_f.1, &self.head, &self.head_bias]);
        out
    }

    /// Tokens per second of candle training this model (autograd and candle-nn's AdamW) on
    /// `batch` (summed cross-entropy per step), over `steps` steps after one warm-up step.
    pub fn train_speed(mut self, batch: &[&[u8]], steps: usize) -> Result<f64> {
        use candle_nn::Optimizer;
        let vars: Vec<candle_core::Var> = self
            .tensors()
            .into_iter()
            .map(candle_core::Var::from_tensor)
            .collect::<Result<_>>()?;
        // Rebuild the model on the variables so that the forward tracks them.
        let mut it = vars.iter().map(|v| v.as_tensor().clone());
        let mut next = || it.next().expect("one variable per tensor");
        self.embed = next();
        for b in &mut self.blocks {
            b.ln1 = (next(), next());
            (b.wqkv, b.wo) = (next(), next());
            b.ln2 = (next(), next());
            (b.w1, b.b1, b.w2, b.b2) = (next(), next(), next(), next());
        }
        self.ln_f = (next(), next());
        (self.head, self.head_bias) = (next(), next());
        let mut opt = candle_nn::AdamW::new(vars, candle_nn::ParamsAdamW::default())?;
        let dev = Device::Cpu;
        let mut step = |model: &CandleModel| -> Result<()> {
            let mut loss: Option<Tensor> = None;
            for seq in batch {
                let logits = model.logits(seq)?;
                let targets: Vec<u32> = seq.iter().map(|&b| u32::from(b)).collect();
                let targets = Tensor::from_vec(targets, seq.len(), &dev)?;
                let l = candle_nn::loss::cross_entropy(&logits, &targets)?;
                loss = Some(match loss {
                    None => l,
                    Some(acc) => (acc + l)?,
                });
            }
            opt.backward_step(&loss.expect("a non-empty batch"))
        };
        step(&self)?;
        let t = std::time::Instant::now();
        for _ in 0..steps {
            step(&self)?;
        }
        let tokens: usize = batch.iter().map(|s| s.len()).sum::<usize>() * steps;
        Ok(tokens as f64 / t.elapsed().as_secs_f64())
    }

    /// Teacher-forced logits of `chunk` as a `chunk.len() × 256` tensor.
    fn logits(&self, chunk: &[u8]) -> Result<Tensor> {
        let c = &self.config;
        let n = chunk.len();
        let (d, heads, hd) = (c.d_model, c.n_heads, c.head_dim());
        let dev = Device::Cpu;
        let ids: Vec<u32> = std::iter::once(256)
            .chain(chunk[..n - 1].iter().map(|&b| u32::from(b)))
            .collect();
        let mut x = self.embed.embedding(&Tensor::from_vec(ids, n, &dev)?)?;
        let cos = self.cos.narrow(0, 0, n)?;
        let sin = self.sin.narrow(0, 0, n)?;
        let mask: Vec<f32> = (0..n * n)
            .map(|i| {
                if i % n > i / n {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, (n, n), &dev)?;
        let scale = 1.0 / (hd as f64).sqrt();
        let ln =
            |x: &Tensor, (w, b): &(Tensor, Tensor)| candle_nn::ops::layer_norm(x, w, b, c.norm_eps);
        let pre = c.norm == Norm::Pre;
        for b in &self.blocks {
            let h = if pre { ln(&x, &b.ln1)? } else { x.clone() };
            let qkv = h.matmul(&b.wqkv)?;
            let split = |i: usize| -> Result<Tensor> {
                qkv.narrow(1, i * d, d)?
                    .reshape((1, n, heads, hd))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let q = candle_nn::rotary_emb::rope(&split(0)?, &cos, &sin)?;
            let k = candle_nn::rotary_emb::rope(&split(1)?, &cos, &sin)?;
            let v = split(2)?;
            let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&mask)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let attn = probs.matmul(&v)?.transpose(1, 2)?.reshape((n, d))?;
            x = (x + attn.matmul(&b.wo)?)?;
            if !pre {
                x = ln(&x, &b.ln1)?;
            }
            let h = if pre { ln(&x, &b.ln2)? } else { x.clone() };
            let u = h.matmul(&b.w1)?.broadcast_add(&b.b1)?.gelu()?;
            x = (x + u.matmul(&b.w2)?.broadcast_add(&b.b2)?)?;
            if !pre {
                x = ln(&x, &b.ln2)?;
            }
        }
        let h = if pre { ln(&x, &self.ln_f)? } else { x };
        h.matmul(&self.head)?
            .broadcast_add(&self.head_bias)?
            .to_dtype(DType::F32)
    }
}
