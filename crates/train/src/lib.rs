//! Training for lmzip's byte Transformers: a backward pass of our own over the engine's
//! kernels, AdamW with warm-up and cosine decay, gradient clipping, data-parallel threads.
//!
//! Training need not be bit-reproducible (inference is; see `docs/ENGINE.md`), but it is: the
//! batch is split among threads in a fixed way and the gradients summed in a fixed order.
#![deny(missing_docs)]

pub mod backprop;
pub mod command;
pub mod dataset;
pub mod init_model;
pub mod tokenizer;

/// Result type of the commands: `Ok(false)` when some part failed (already reported).
pub type Outcome = anyhow::Result<bool>;

use backprop::forward_backward;
use lmzip_engine::Rope;
use lmzip_models::transformer::{Config, Weights};

/// Every tensor of `w`, in file order.
pub fn tensors_mut(w: &mut Weights) -> Vec<&mut Vec<f32>> {
    let mut out = vec![&mut w.embed];
    for b in &mut w.blocks {
        out.extend([
            &mut b.ln1.weight,
            &mut b.ln1.bias,
            &mut b.wqkv,
            &mut b.wo,
            &mut b.ln2.weight,
            &mut b.ln2.bias,
            &mut b.w1,
            &mut b.b1,
            &mut b.w2,
            &mut b.b2,
        ]);
    }
    out.extend([
        &mut w.ln_f.weight,
        &mut w.ln_f.bias,
        &mut w.head,
        &mut w.head_bias,
    ]);
    out
}

/// Weights of the same shapes as `w`, all zero.
pub fn zeros_like(w: &Weights) -> Weights {
    let mut z = w.clone();
    for t in tensors_mut(&mut z) {
        t.fill(0.0);
    }
    z
}

/// Optimizer settings.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Total optimizer steps (for the cosine decay).
    pub steps: usize,
    /// Steps of linear warm-up.
    pub warmup: usize,
    /// Peak learning rate.
    pub lr: f32,
    /// The learning rate at the end, as a fraction of the peak.
    pub final_lr_fraction: f32,
    /// AdamW decoupled weight decay (matrices only, not embeddings, norms or biases).
    pub weight_decay: f32,
    /// Clip the gradient's global L2 norm to this.
    pub clip: f32,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule {
            steps: 1000,
            warmup: 50,
            lr: 3e-3,
            final_lr_fraction: 0.1,
            weight_decay: 0.01,
            clip: 1.0,
        }
    }
}

impl Schedule {
    /// The learning rate at `step` (0-based).
    pub fn lr_at(&self, step: usize) -> f32 {
        if step < self.warmup {
            return self.lr * (step + 1) as f32 / self.warmup as f32;
        }
        let progress = (step - self.warmup) as f32 / (self.steps - self.warmup).max(1) as f32;
        let cosine = 0.5 * (1.0 + (std::f32::consts::PI * progress.min(1.0)).cos());
        self.lr * (self.final_lr_fraction + (1.0 - self.final_lr_fraction) * cosine)
    }
}

/// A model being trained: weights, AdamW moments and the step count.
pub struct Trainer {
    config: Config,
    weights: Weights,
    m: Weights,
    v: Weights,
    step: usize,
    rope: Rope,
    threads: usize,
}

/// Results of one optimizer step.
#[derive(Debug, Clone, Copy)]
pub struct StepStats {
    /// Mean cross-entropy of the batch, bits per byte.
    pub bits_per_byte: f64,
    /// The gradient's global norm before clipping.
    pub grad_norm: f32,
    /// The learning rate used.
    pub lr: f32,
}

impl Trainer {
    /// Start from `weights` on `threads` threads (pre-LN configs only).
    pub fn new(config: Config, weights: Weights, threads: usize) -> Trainer {
        assert!(
            config.norm == lmzip_models::transformer::Norm::Pre,
            "the trainer supports pre-LN models"
        );
        let (m, v) = (zeros_like(&weights), zeros_like(&weights));
        let rope = backprop::rope(&config);
        Trainer {
            config,
            weights,
            m,
            v,
            step: 0,
            rope,
            threads: threads.max(1),
        }
    }

    /// Resume with saved moments and step count.
    pub fn resume(
        config: Config,
        weights: Weights,
        m: Weights,
        v: Weights,
        step: usize,
        threads: usize,
    ) -> Trainer {
        let mut t = Trainer::new(config, weights, threads);
        (t.m, t.v, t.step) = (m, v, step);
        t
    }

    /// The current weights.
    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// The AdamW moments (first, second), for checkpoints.
    pub fn moments(&self) -> (&Weights, &Weights) {
        (&self.m, &self.v)
    }

    /// Optimizer steps taken.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// The model's config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Mean loss in bits per byte of `sequences` under the current weights.
    pub fn evaluate(&self, sequences: &[&[u8]]) -> f64 {
        let (loss, bytes) = self.run(sequences, false).0;
        loss / bytes as f64 / std::f64::consts::LN_2
    }

    /// Forward (and backward) of `sequences` split among the threads: ((nats, bytes), grads).
    fn run(&self, sequences: &[&[u8]], backward: bool) -> ((f64, usize), Option<Weights>) {
        let per = sequences.len().div_ceil(self.threads).max(1);
        let results: Vec<(f64, usize, Option<Weights>)> = std::thread::scope(|s| {
            let handles: Vec<_> = sequences
                .chunks(per)
                .map(|part| {
                    s.spawn(move || {
                        let mut g = backward.then(|| zeros_like(&self.weights));
                        let mut loss = 0.0;
                        for seq in part {
                            loss += forward_backward(
                                &self.config,
                                &self.weights,
                                &self.rope,
                                seq,
                                g.as_mut(),
                                None,
                            );
                        }
                        (loss, part.iter().map(|s| s.len()).sum(), g)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("training thread panicked"))
                .collect()
        });
        let mut total = (0.0, 0usize);
        let mut grads: Option<Weights> = None;
        for (loss, bytes, g) in results {
            total.0 += loss;
            total.1 += bytes;
            if let Some(g) = g {
                match &mut grads {
                    None => grads = Some(g),
                    Some(acc) => {
                        let mut g = g;
                        for (a, b) in tensors_mut(acc).into_iter().zip(tensors_mut(&mut g)) {
                            for (a, b) in a.iter_mut().zip(b.iter()) {
                                *a += b;
                            }
                        }
                    }
                }
            }
        }
        (total, grads)
    }

    /// One AdamW step on `sequences` (each at most the context), with the learning rate of
    /// `schedule` at this step.
    pub fn train_step(&mut self, sequences: &[&[u8]], schedule: &Schedule) -> StepStats {
        let ((loss, bytes), grads) = self.run(sequences, true);
        let mut grads = grads.expect("backward ran");
        // Mean over bytes, then clip the global norm.
        let scale = 1.0 / bytes as f32;
        let mut norm2 = 0.0f64;
        for t in tensors_mut(&mut grads) {
            for g in t.iter_mut() {
                *g *= scale;
                norm2 += f64::from(*g) * f64::from(*g);
            }
        }
        let grad_norm = norm2.sqrt() as f32;
        let clip = if grad_norm > schedule.clip {
            schedule.clip / grad_norm
        } else {
            1.0
        };
        let lr = schedule.lr_at(self.step);
        self.step += 1;
        let (b1, b2, eps) = (0.9f32, 0.95f32, 1e-8f32);
        let bc1 = 1.0 - b1.powi(self.step as i32);
        let bc2 = 1.0 - b2.powi(self.step as i32);
        let decayed = decays(&self.config);
        let params = tensors_mut(&mut self.weights);
        let ms = tensors_mut(&mut self.m);
        let vs = tensors_mut(&mut self.v);
        let gs = tensors_mut(&mut grads);
        for ((((p, m), v), g), decay) in params.into_iter().zip(ms).zip(vs).zip(gs).zip(decayed) {
            let wd = if decay { schedule.weight_decay } else { 0.0 };
            for (((p, m), v), &g) in p
                .iter_mut()
                .zip(m.iter_mut())
                .zip(v.iter_mut())
                .zip(g.iter())
            {
                let g = g * clip;
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                let update = (*m / bc1) / ((*v / bc2).sqrt() + eps);
                *p -= lr * (update + wd * *p);
            }
        }
        StepStats {
            bits_per_byte: loss / bytes as f64 / std::f64::consts::LN_2,
            grad_norm,
            lr,
        }
    }
}

/// Which tensors (in [`tensors_mut`] order) take weight decay: the matrices but the embedding.
fn decays(config: &Config) -> Vec<bool> {
    let mut out = vec![false];
    for _ in 0..config.n_layers {
        out.extend([
            false, false, true, true, false, false, true, false, true, false,
        ]);
    }
    out.extend([false, false, true, false]);
    out
}
