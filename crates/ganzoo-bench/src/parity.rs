//! Whether a device (or kernel back end) trains like ganzoo's CPU kernels: the first
//! generator iterations of a benchmark model from one seed, loss by loss
//! (`ganzoo bench --parity N`). Data, noise and initial weights are drawn on the host
//! from the seed, so two targets see the same numbers and their losses differ only by
//! rounding. What comes before a second update must agree closely: the first critic
//! step's loss (before any update), and with one critic step per iteration the first
//! iteration's losses (the generator's after that one critic step). Past that, losses
//! drift apart — Adam turns the sign of a rounding-sized gradient into a
//! learning-rate-sized step — so they get a looser bound that still catches a wrong
//! operation (which is off by O(1) at once). With five critic steps per iteration (WGAN,
//! WGAN-GP), the first iteration's reported losses already come after four or five updates.

use candle_core::{DType, Device, Tensor};
pub use ganzoo_losses::penalty_check::BF16_TOLERANCE;
use ganzoo_losses::penalty_check::{finite_differences, mixed_precision, FiniteDifferences, MixedPrecision};
use ganzoo_models::{Activation, DcganConfig, MlpConfig, Network, Norm, ParamStore};
use ganzoo_train::{RunDir, Trainer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::model::BenchModel;
use crate::throughput::Target;
use crate::{BenchError, Result};

/// One target's losses over the first steps; one JSON line of a parity worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Losses {
    pub model: String,
    pub device: String,
    pub kernels: String,
    pub batch: usize,
    /// `[critic loss, generator loss]` of each generator iteration (its last critic step's).
    pub steps: Vec<[f64; 2]>,
    /// The first critic step's loss, before any update.
    pub first_critic: f64,
    /// Critic steps in the first iteration.
    pub critic_steps: usize,
}

/// Two targets' losses side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parity {
    pub model: String,
    pub reference: String,
    pub candidate: String,
    pub steps: usize,
    /// `|a − b| / max(1, |a|)` (absolute below 1, relative above), the larger of the
    /// two losses', at each step.
    pub diffs: Vec<f64>,
    /// The same for the first critic step's loss, before any update.
    pub first_critic_diff: f64,
    /// Critic steps in the first iteration: with one, its losses come before a second
    /// update and are held to `tolerance`; with more, to `drift`.
    pub critic_steps: usize,
    /// Bound on the first critic step's difference (and with one critic step, on the
    /// first iteration's), and on every later one's.
    pub tolerance: f64,
    pub drift: f64,
    /// The first step over its bound, if any.
    pub first_over: Option<usize>,
}

impl Parity {
    pub fn ok(&self) -> bool {
        self.first_over.is_none()
    }

    pub fn max_diff(&self) -> f64 {
        self.diffs.iter().copied().fold(0.0, f64::max)
    }
}

/// Trains `steps` generator iterations of `model` on `target` with the kernels in use.
pub fn losses(model: BenchModel, seed: u64, steps: usize, target: Target) -> Result<Losses> {
    let config = target.config(model, seed)?;
    let images = model.synthetic_images(&config)?;
    let dir = tempfile::tempdir().map_err(|e| BenchError::Io { what: "temporary run directory".into(), source: e })?;
    let run = RunDir::create(&dir.path().join("run"), false)?;
    let device: Device = target.device()?;
    let mut trainer = Trainer::new(config.clone(), images, run, device)?;
    let mut out = Vec::new();
    let mut first_critic = f64::NAN;
    for step in 0..steps {
        let s = trainer.train_iteration()?;
        if step == 0 {
            first_critic = s.first_d_loss;
        }
        out.push([s.d_loss, s.g_loss]);
    }
    let mut kernels = ganzoo_models::kernel_backend().name().to_string();
    if target.precision.activations().is_some() {
        kernels += &format!(", {}", target.precision.name());
    }
    // With GANZOO_CUDA_GRAPHS: whether the later steps were replays (0: all eager).
    if let Some(n) = trainer.cuda_graphs_replaying() {
        kernels += &format!(", {n} CUDA graphs replaying");
    }
    Ok(Losses {
        model: model.name().into(),
        device: target.device_name(),
        kernels,
        batch: config.batch_size,
        steps: out,
        first_critic,
        critic_steps: config.schedule.critic_steps(0),
    })
}

/// The penalty's second-order gradient against finite differences on `target`'s device,
/// in f64, for the critics `tests/integration/penalty.rs` checks on the CPU: a leaky-ReLU
/// MLP (3 → 6 → 5 → 1) and the DCGAN critic at 28×28 with ndf 2 and layer norm.
pub fn penalty_check(target: Target) -> Result<Vec<(String, FiniteDifferences)>> {
    critics(&target.device()?)?
        .into_iter()
        .map(|c| Ok((c.name.clone(), finite_differences(&c.net, &c.store, &c.real, &c.fake).map_err(loss_err)?)))
        .collect()
}

/// The same critics with `target`'s mixed-precision activations (none for f32): their
/// penalty gradient against finite differences of the exact one, within
/// [`BF16_TOLERANCE`] (`tests/integration/penalty.rs` on the CPU).
pub fn mixed_precision_check(target: Target) -> Result<Vec<(String, MixedPrecision)>> {
    let Some(dtype) = target.precision.activations() else { return Ok(Vec::new()) };
    critics(&target.device()?)?
        .into_iter()
        .map(|c| Ok((c.name.clone(), mixed_precision(&c.net, dtype, &c.store, &c.real, &c.fake).map_err(loss_err)?)))
        .collect()
}

/// A critic (f64 weights drawn from a fixed seed) and the real and fake batches it is checked on.
struct Checked {
    name: String,
    net: Network,
    store: ParamStore,
    real: Tensor,
    fake: Tensor,
}

fn critics(device: &Device) -> Result<Vec<Checked>> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut normal = |shape: &[usize], mean: f64, scale: f64| -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| mean + scale * rng.sample::<f64, _>(StandardNormal)).collect();
        Ok(Tensor::from_vec(v, shape, device)?)
    };
    let mlp = MlpConfig {
        input: 3,
        hidden: vec![6, 5],
        output: 1,
        activation: Activation::LeakyRelu(0.2),
        output_activation: None,
        output_shape: None,
        init: Default::default(),
    };
    let store = ParamStore::new(0);
    let net = mlp.build(store.builder(DType::F64, device).pp("critic")).map_err(model_err)?;
    randomize(&store, 0.7, &mut normal)?;
    let (real, fake) = (normal(&[4, 3], 0.0, 1.0)?, normal(&[4, 3], 0.5, 1.0)?);
    let mut out = vec![Checked { name: "mlp".into(), net, store, real, fake }];
    let conv = DcganConfig { image_size: 28, channels: 1, ndf: 2, critic_norm: Norm::Layer, ..DcganConfig::default() };
    let store = ParamStore::new(1);
    let net = conv.discriminator(store.builder(DType::F64, device).pp("critic")).map_err(model_err)?;
    randomize(&store, 0.3, &mut normal)?;
    let (real, fake) = (normal(&[2, 1, 28, 28], 0.0, 1.0)?, normal(&[2, 1, 28, 28], 0.0, 1.0)?);
    out.push(Checked { name: "conv + layer norm".into(), net, store, real, fake });
    Ok(out)
}

/// Every trainable weight drawn anew at scale `scale`, so no term is trivially small.
fn randomize(
    store: &ParamStore,
    scale: f64,
    normal: &mut impl FnMut(&[usize], f64, f64) -> Result<Tensor>,
) -> Result<()> {
    for (_, var) in store.trainable() {
        var.set(&normal(var.dims(), 0.0, scale)?)?;
    }
    Ok(())
}

fn model_err(e: ganzoo_models::ModelError) -> BenchError {
    BenchError::Worker(format!("penalty check: {e}"))
}

fn loss_err(e: ganzoo_losses::LossError) -> BenchError {
    BenchError::Worker(format!("penalty check: {e}"))
}

/// `candidate` against `reference`, step by step: the first within `tolerance`, the
/// rest within `drift`.
pub fn compare(reference: &Losses, candidate: &Losses, tolerance: f64, drift: f64) -> Result<Parity> {
    if reference.model != candidate.model || reference.steps.len() != candidate.steps.len() {
        return Err(BenchError::Worker(format!(
            "parity: {} ({} steps) against {} ({} steps)",
            reference.model,
            reference.steps.len(),
            candidate.model,
            candidate.steps.len()
        )));
    }
    let diff = |a: f64, b: f64| (a - b).abs() / a.abs().max(1.0);
    let diffs: Vec<f64> = reference
        .steps
        .iter()
        .zip(&candidate.steps)
        .map(|(a, b)| {
            let (d0, d1) = (diff(a[0], b[0]), diff(a[1], b[1]));
            // f64::max would drop a NaN: keep it, it fails every bound.
            if d0.is_nan() || d1.is_nan() {
                f64::NAN
            } else {
                d0.max(d1)
            }
        })
        .collect();
    let first_critic_diff = diff(reference.first_critic, candidate.first_critic);
    let critic_steps = reference.critic_steps.max(candidate.critic_steps);
    let bound = |step: usize| if step == 0 && critic_steps == 1 { tolerance } else { drift };
    // NaN is over every bound.
    let over = |d: f64, bound: f64| d.is_nan() || d > bound;
    let first_over = if over(first_critic_diff, tolerance) {
        Some(1)
    } else {
        diffs.iter().enumerate().position(|(i, &d)| over(d, bound(i))).map(|i| i + 1)
    };
    Ok(Parity {
        model: reference.model.clone(),
        reference: format!("{} ({})", reference.device, reference.kernels),
        candidate: format!("{} ({})", candidate.device, candidate.kernels),
        steps: diffs.len(),
        first_over,
        diffs,
        first_critic_diff,
        critic_steps,
        tolerance,
        drift,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(device: &str, steps: &[[f64; 2]]) -> Losses {
        Losses {
            model: "dcgan32".into(),
            device: device.into(),
            kernels: "ganzoo".into(),
            batch: 64,
            steps: steps.to_vec(),
            first_critic: steps[0][0],
            critic_steps: 1,
        }
    }

    #[test]
    fn the_first_step_has_the_tight_bound_and_later_ones_the_drift() {
        let a = run("cpu", &[[-13.0, 0.5], [-39.0, 0.7], [-7.0, 0.9]]);
        // Step 1: 1.3e-3 relative on the critic loss (over 1e-3); steps 2–3: 0.02 absolute.
        let b = run("cuda", &[[-13.0169, 0.5], [-39.0, 0.72], [-7.0, 0.9]]);
        let p = compare(&a, &b, 1e-3, 0.05).unwrap();
        assert!((p.diffs[0] - 0.0169 / 13.0).abs() < 1e-12 && (p.diffs[1] - 0.02).abs() < 1e-12, "{p:?}");
        assert_eq!((p.first_over, p.ok()), (Some(1), false));
        let loose = compare(&a, &b, 2e-3, 0.05).unwrap();
        assert!(loose.ok(), "{loose:?}");
        assert_eq!(compare(&a, &b, 2e-3, 0.01).unwrap().first_over, Some(2));
        assert_eq!((loose.reference.as_str(), loose.candidate.as_str()), ("cpu (ganzoo)", "cuda (ganzoo)"));
    }

    /// Five critic steps (WGAN-GP): the first iteration's losses come after four updates
    /// and get the drift; the first critic step's, before any, the tight bound.
    #[test]
    fn with_several_critic_steps_only_the_first_critic_loss_is_held_tight() {
        let several = |l: Losses| Losses { model: "toy".into(), critic_steps: 5, ..l };
        let a = several(run("cpu", &[[-13.0, 21.4], [-39.0, 78.8]]));
        let mut b = several(run("cuda", &[[-13.02, 21.4], [-39.0, 78.8]]));
        b.first_critic = a.first_critic + 1e-6;
        let p = compare(&a, &b, 1e-3, 0.05).unwrap();
        assert!(p.ok() && (p.first_critic_diff - 1e-6 / 13.0).abs() < 1e-12, "{p:?}");
        // The same first-iteration difference with one critic step fails.
        let one = compare(&run("cpu", &[[-13.0, 21.4]]), &run("cuda", &[[-13.02, 21.4]]), 1e-3, 0.05).unwrap();
        assert_eq!(one.first_over, Some(1));
        b.first_critic = a.first_critic - 0.02;
        assert_eq!(compare(&a, &b, 1e-3, 0.05).unwrap().first_over, Some(1));
        b.first_critic = f64::NAN;
        assert_eq!(compare(&a, &b, 1e-3, 0.05).unwrap().first_over, Some(1));
    }

    #[test]
    fn nan_fails_and_different_runs_are_refused() {
        let a = run("cpu", &[[1.0, 1.0], [1.0, 1.0]]);
        let nan = compare(&a, &run("cuda", &[[1.0, 1.0], [f64::NAN, 1.0]]), 1.0, 1.0).unwrap();
        assert_eq!(nan.first_over, Some(2));
        assert!(compare(&a, &run("cuda", &[[1.0, 1.0]]), 1.0, 1.0).is_err());
    }
}
