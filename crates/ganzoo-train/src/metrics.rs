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

impl Metrics {
    /// Every number of the line under a TensorBoard-style tag (`group/name`), in a fixed
    /// order; `unit` names what the run consumes ("images", "points"). An evaluation's
    /// numeric fields come under `eval/` (lists, such as a class histogram, are left out).
    pub fn scalars(&self, unit: &str) -> Vec<(String, f64)> {
        let mut out = vec![("loss/critic".to_string(), self.d_loss), ("loss/generator".to_string(), self.g_loss)];
        let optional = [
            ("critic/wasserstein_estimate", self.wasserstein),
            ("critic/gradient_penalty", self.penalty),
            ("discriminator/D(x)", self.d_real),
            ("discriminator/D(G(z))", self.d_fake),
        ];
        out.extend(optional.iter().filter_map(|(k, v)| v.map(|v| (k.to_string(), v))));
        out.push((format!("throughput/{unit}_per_s"), self.images_per_s));
        out.push(("progress/epoch".to_string(), self.epoch));
        out.push(("progress/wall_time_s".to_string(), self.wall_time_s));
        if let Some(eval) = &self.eval {
            if let Ok(value) = serde_json::to_value(eval) {
                numbers("eval", &value, &mut out);
            }
        }
        out
    }
}

/// The numbers in a JSON value, keyed by their path below `prefix`.
fn numbers(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, f64)>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                numbers(&format!("{prefix}/{k}"), v, out);
            }
        }
        serde_json::Value::Number(n) => out.extend(n.as_f64().map(|x| (prefix.to_string(), x))),
        _ => {}
    }
}
