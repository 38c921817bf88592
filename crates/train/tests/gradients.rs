//! The trainer's backward pass against finite differences, its forward against the engine, and
//! a tiny training run that must lower the loss.

use lmzip_models::transformer::config::OUTPUT_VOCAB;
use lmzip_models::transformer::{Config, Scratch, Transformer, chunk_inputs, file};
use lmzip_train::backprop::{forward_backward, rope};
use lmzip_train::{Schedule, Trainer, tensors_mut, zeros_like};

fn text(n: usize) -> Vec<u8> {
    b"the cat sat on the mat; the dog sat on the log. "
        .iter()
        .cycle()
        .take(n)
        .copied()
        .collect()
}

#[test]
fn forward_matches_the_engine() {
    let config = Config::new(32, 2, 2, 64);
    let weights = file::random_weights(&config, 3);
    let chunk = text(50);
    let mut ours = Vec::new();
    forward_backward(
        &config,
        &weights,
        &rope(&config),
        &chunk,
        None,
        Some(&mut ours),
    );
    let engine = Transformer::new(config, weights);
    let mut theirs = vec![0.0; chunk.len() * OUTPUT_VOCAB];
    engine.forward(&chunk_inputs(&chunk), &mut theirs, &mut Scratch::default());
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1e-4, "max |Δlogit| = {worst}");
}

#[test]
fn gradients_match_finite_differences() {
    let config = Config::new(16, 2, 2, 16);
    let mut weights = file::random_weights(&config, 4);
    let rope = rope(&config);
    let chunk = text(9);
    let mut grads = zeros_like(&weights);
    forward_backward(&config, &weights, &rope, &chunk, Some(&mut grads), None);
    let analytic: Vec<Vec<f32>> = tensors_mut(&mut grads)
        .into_iter()
        .map(|t| t.clone())
        .collect();
    let loss = |w: &lmzip_models::transformer::Weights| {
        forward_backward(&config, w, &rope, &chunk, None, None)
    };
    let mut checked = 0;
    for (t, grad) in analytic.iter().enumerate() {
        // A few entries of every tensor, including the largest gradient.
        let largest = (0..grad.len())
            .max_by(|&a, &b| grad[a].abs().total_cmp(&grad[b].abs()))
            .unwrap();
        for i in [0, grad.len() / 2, grad.len() - 1, largest] {
            let h = 1e-2f32;
            let original = tensors_mut(&mut weights)[t][i];
            tensors_mut(&mut weights)[t][i] = original + h;
            let up = loss(&weights);
            tensors_mut(&mut weights)[t][i] = original - h;
            let down = loss(&weights);
            tensors_mut(&mut weights)[t][i] = original;
            let numeric = ((up - down) / (2.0 * f64::from(h))) as f32;
            let a = grad[i];
            assert!(
                (numeric - a).abs() <= 2e-2 * a.abs().max(0.1),
                "tensor {t} entry {i}: analytic {a}, numeric {numeric}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 4 * 24);
}

#[test]
fn a_tiny_training_run_lowers_the_loss() {
    let config = Config::new(32, 2, 2, 64);
    let data = text(4000);
    let windows: Vec<&[u8]> = data.chunks(64).collect();
    let mut trainer = Trainer::new(config.clone(), file::random_weights(&config, 5), 2);
    let schedule = Schedule {
        steps: 40,
        warmup: 5,
        lr: 1e-2,
        ..Schedule::default()
    };
    let before = trainer.evaluate(&windows[..8]);
    for step in 0..40 {
        let batch: Vec<&[u8]> = (0..8)
            .map(|i| windows[(step * 8 + i) % windows.len()])
            .collect();
        trainer.train_step(&batch, &schedule);
    }
    let after = trainer.evaluate(&windows[..8]);
    assert!(
        after < before * 0.5,
        "bits per byte {before:.3} -> {after:.3}"
    );
    // Same weights, same result: the trained model runs in the engine with the same loss.
    let engine = Transformer::new(config, trainer.weights().clone());
    let mut logits = vec![0.0; 64 * OUTPUT_VOCAB];
    engine.forward(
        &chunk_inputs(windows[0]),
        &mut logits,
        &mut Scratch::default(),
    );
    let engine_bits: f64 = logits
        .chunks_exact(OUTPUT_VOCAB)
        .zip(windows[0])
        .map(|(row, &b)| {
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let z: f64 = row.iter().map(|&v| f64::from(v - max).exp()).sum();
            (z.ln() - f64::from(row[usize::from(b)] - max)) / std::f64::consts::LN_2
        })
        .sum::<f64>()
        / 64.0;
    let trainer_bits = trainer.evaluate(&windows[..1]);
    assert!(
        (engine_bits - trainer_bits).abs() < 1e-3,
        "{engine_bits} vs {trainer_bits}"
    );
}
