//! The networks `eval --device` computes features in — the shipped MNIST classifier and
//! InceptionV3 (on deterministic random weights: pytorch-fid's are a download) — on the
//! candidate device against the CPU, forward only (evaluation never differentiates them).
//! The CPU side runs on ganzoo's kernels whatever `--kernels` says (Inception
//! channels-last), so that `--kernels gemm` on the CPU compares the path CUDA takes
//! (NCHW, Candle's pools, the convolutions as CUDA's fallback runs them) with them.
//! `bench --parity` prints them after the ops.

use candle_core::{Device, Tensor};
use ganzoo_eval::classifier::Classifier;
use ganzoo_eval::inception::Inception;
use ganzoo_models::backend::{kernel_backend, set_kernel_backend, KernelBackend};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::op_parity::{relative, OpParity};
use crate::throughput::Target;
use crate::{BenchError, Result};

/// Seed of [`Inception::random`]'s weights here.
const INCEPTION_SEED: u64 = 5;

/// Both feature networks on `target`'s device against the CPU.
pub fn feature_parity(target: Target) -> Result<Vec<OpParity>> {
    let device = target.device()?;
    Ok(vec![classifier(&device)?, inception(&device)?])
}

/// Images `shape` uniform in [−1, 1], drawn on the host from a fixed seed.
fn images(shape: [usize; 4]) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let v: Vec<f32> = (0..shape.iter().product()).map(|_| rng.random_range(-1.0..=1.0)).collect();
    Ok(Tensor::from_vec(v, &shape[..], &Device::Cpu)?)
}

fn eval_err(e: ganzoo_eval::EvalError) -> BenchError {
    BenchError::Worker(format!("feature parity: {e}"))
}

/// The MNIST classifier's features (fc1's ReLU) and logits.
fn classifier(device: &Device) -> Result<OpParity> {
    let shape = [4, 1, 28, 28];
    let x = images(shape)?;
    let (weights, card) = ganzoo_eval::classifier::shipped("mnist")
        .ok_or_else(|| BenchError::Worker("feature parity: no classifier ships for mnist".into()))?;
    let run = |on: &Device| -> Result<[Tensor; 2]> {
        let c = Classifier::load(weights, card, on).map_err(eval_err)?;
        let (logits, features) = c.logits_and_features(&x).map_err(eval_err)?;
        Ok([features.to_device(&Device::Cpu)?, logits.to_device(&Device::Cpu)?])
    };
    let (ours, theirs) = (on_ganzoo_kernels(|| run(&Device::Cpu))?, run(device)?);
    Ok(OpParity {
        op: format!("classifier (mnist) features {shape:?}"),
        errors: vec![
            ("features".into(), relative(&theirs[0], &ours[0])?),
            ("logits".into(), relative(&theirs[1], &ours[1])?),
        ],
    })
}

/// InceptionV3's pool features of two 32×32 colour images (resized to 299×299 first).
fn inception(device: &Device) -> Result<OpParity> {
    let shape = [2, 3, 32, 32];
    let x = images(shape)?;
    let (cpu, weights) = Inception::random(INCEPTION_SEED, &Device::Cpu).map_err(eval_err)?;
    let ours = on_ganzoo_kernels(|| cpu.features(&x)).map_err(eval_err)?;
    let candidate = Inception::from_state_dict(&weights, device).map_err(eval_err)?;
    let theirs = candidate.features(&x).map_err(eval_err)?.to_device(&Device::Cpu)?;
    Ok(OpParity {
        op: format!("inception features {shape:?}"),
        errors: vec![("features".into(), relative(&theirs, &ours)?)],
    })
}

/// `f` with ganzoo's kernels chosen (`set_kernel_backend`), then the choice before it
/// again: the reference side of a comparison run on the same thread.
fn on_ganzoo_kernels<T>(f: impl FnOnce() -> T) -> T {
    let before = kernel_backend();
    set_kernel_backend(KernelBackend::Ganzoo);
    let out = f();
    set_kernel_backend(before);
    out
}
