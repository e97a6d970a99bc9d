//! One line of `metrics.jsonl`: what a log step reports.

use serde::{Deserialize, Serialize};

/// Numbers logged every `log_every` generator iterations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub iteration: u64,
    /// Passes over the data so far (0 for toys).
    pub epoch: f64,
    /// The critic's loss as its objective defines it. Cross-entropy: Goodfellow et al.'s
    /// `J(D) = −½ E log D(x) − ½ E log(1 − D(G(z)))`, half of pytorch/examples' `errD`
    /// (`BCE(real) + BCE(fake)`). Wasserstein: `E f(G(z)) − E f(x)` (+ penalty).
    pub d_loss: f64,
    /// The generator's cost; cross-entropy costs carry the same ½ (half of `errG`).
    pub g_loss: f64,
    /// Mean D(x) as a probability (cross-entropy objectives).
    pub d_real: Option<f64>,
    /// Mean D(G(z)) as a probability (cross-entropy objectives).
    pub d_fake: Option<f64>,
    /// The critic's estimate E f(x) − E f(G(z)) (Wasserstein objectives).
    pub wasserstein: Option<f64>,
    /// The gradient penalty (WGAN-GP).
    pub penalty: Option<f64>,
    pub wall_time_s: f64,
    /// Real images (or points) consumed per second since the previous log line.
    pub images_per_s: f64,
    /// The discriminator has rejected every generated sample for many iterations.
    pub collapse: bool,
    /// Sample quality at this iteration (`--eval-every`): a toy run's mode counts and W1,
    /// or an image run's FID, KID, score, class coverage, precision and recall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<ganzoo_eval::EvalReport>,
}
