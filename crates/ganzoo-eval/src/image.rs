//! Image metrics in a domain classifier's features ([`crate::classifier`]): the Fréchet
//! distance to the real test split (FID's formula), KID, the Inception-style score
//! `exp E_x KL(p(y|x) ‖ p(y))` (Salimans et al. 2016) from the classifier's softmax, the
//! class histogram of generated samples and the classes they cover, and precision /
//! recall on k-nearest-neighbour manifolds (Kynkäänniemi et al. 2019, k = 3).

use candle_core::{Tensor, D};
use faer::Mat;
use serde::Serialize;

use crate::classifier::{Classifier, FEATURES};
use crate::frechet::{frechet_distance, Gaussian};
use crate::kid::{kernel_inception_distance, Kid};
use crate::{EvalError, Result};

/// Neighbours that set the radius of each point's ball in precision / recall.
pub const PR_K: usize = 3;
/// A class counts as covered with at least this share of the samples a uniform split gives it.
pub const COVERED_SHARE: f64 = 0.1;

/// What the classifier sees in a set of images.
pub struct Seen {
    /// `n × 128` features, row-major.
    pub features: Vec<f32>,
    /// `n × classes` class probabilities, row-major.
    pub probs: Vec<f32>,
}

/// The metrics of generated images against real ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageReport {
    pub samples: usize,
    pub real_samples: usize,
    pub classifier: String,
    pub fid: f64,
    pub kid: Kid,
    pub inception_score: f64,
    pub class_histogram: Vec<usize>,
    /// Classes holding at least [`COVERED_SHARE`] of a uniform share of the samples.
    pub classes_covered: usize,
    pub precision: f64,
    pub recall: f64,
}

/// Runs `images` (`(n, C, H, W)` in [−1, 1]) through the classifier. Values outside
/// [−1, 1] (beyond rounding) or non-finite are errors.
pub fn see(classifier: &Classifier, images: &Tensor) -> Result<Seen> {
    let flat: Vec<f32> =
        images.flatten_all().and_then(|t| t.to_vec1()).map_err(|e| EvalError::Numeric(e.to_string()))?;
    crate::error::check_finite(&flat, "the images")?;
    if let Some(i) = flat.iter().position(|v| v.abs() > 1.0 + 1e-3) {
        return Err(EvalError::Samples(format!("image values must lie in [-1, 1]; value {} at index {i}", flat[i])));
    }
    let (logits, features) = classifier.logits_and_features(images)?;
    let probs = candle_nn::ops::softmax(&logits, D::Minus1).map_err(|e| EvalError::Numeric(e.to_string()))?;
    let to_vec =
        |t: &Tensor| t.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(|e| EvalError::Numeric(e.to_string()));
    Ok(Seen { features: to_vec(&features)?, probs: to_vec(&probs)? })
}

/// Every metric of `fake` against `real`.
pub fn image_metrics(classifier: &Classifier, fake: &Seen, real: &Seen, seed: u64) -> Result<ImageReport> {
    let classes = classifier.card.classes;
    let n = fake.features.len() / FEATURES;
    let m = real.features.len() / FEATURES;
    let fid = frechet_distance(&Gaussian::fit(&fake.features, FEATURES)?, &Gaussian::fit(&real.features, FEATURES)?)?;
    let kid = kernel_inception_distance(&fake.features, &real.features, FEATURES, 100, 1000, seed)?;
    let mut class_histogram = vec![0; classes];
    for p in fake.probs.chunks_exact(classes) {
        let best = p.iter().enumerate().fold(0, |b, (k, &v)| if v > p[b] { k } else { b });
        class_histogram[best] += 1;
    }
    let floor = COVERED_SHARE * n as f64 / classes as f64;
    let classes_covered = class_histogram.iter().filter(|&&c| c as f64 >= floor && c > 0).count();
    let (precision, recall) = precision_recall(&real.features, &fake.features, FEATURES, PR_K)?;
    Ok(ImageReport {
        samples: n,
        real_samples: m,
        classifier: classifier.card.dataset.clone(),
        fid,
        kid,
        inception_score: inception_score(&fake.probs, classes),
        class_histogram,
        classes_covered,
        precision,
        recall,
    })
}

/// `exp(mean_x Σ_y p(y|x) (ln p(y|x) − ln p(y)))`, `p(y)` the mean of `p(y|x)`.
pub fn inception_score(probs: &[f32], classes: usize) -> f64 {
    let n = probs.len() / classes;
    let mut marginal = vec![0.0f64; classes];
    for p in probs.chunks_exact(classes) {
        marginal.iter_mut().zip(p).for_each(|(m, &v)| *m += f64::from(v) / n as f64);
    }
    let kl: f64 = probs
        .chunks_exact(classes)
        .map(|p| {
            p.iter()
                .zip(&marginal)
                .filter(|(&v, _)| v > 0.0)
                .map(|(&v, &q)| f64::from(v) * (f64::from(v).ln() - q.ln()))
                .sum::<f64>()
        })
        .sum();
    (kl / n as f64).exp()
}

/// Precision: the share of `fake` inside the union of balls around `real` points (each
/// ball's radius the distance to its `k`-th nearest real neighbour); recall: the share of
/// `real` inside the fake balls.
pub fn precision_recall(real: &[f32], fake: &[f32], dim: usize, k: usize) -> Result<(f64, f64)> {
    let (r, f) = (rows(real, dim), rows(fake, dim));
    if r.nrows() <= k || f.nrows() <= k {
        return Err(EvalError::TooFew { what: "precision and recall", needed: k + 1, got: r.nrows().min(f.nrows()) });
    }
    let (rr, ff) = (radii(&r, k), radii(&f, k));
    Ok((inside(&f, &r, &rr), inside(&r, &f, &ff)))
}

fn rows(data: &[f32], dim: usize) -> Mat<f64> {
    Mat::from_fn(data.len() / dim, dim, |i, j| f64::from(data[i * dim + j]))
}

/// Squared norms of the rows of `m`.
fn row_norms(m: faer::MatRef<'_, f64>) -> Vec<f64> {
    (0..m.nrows()).map(|i| (0..m.ncols()).map(|j| m[(i, j)] * m[(i, j)]).sum()).collect()
}

/// Squared distances between the rows `from..to` of `a` and every row of `b` (whose
/// squared row norms are `nb`): `‖x‖² + ‖y‖² − 2 xᵀy`, the products as one matrix product.
fn sq_distances(a: &Mat<f64>, from: usize, to: usize, b: &Mat<f64>, nb: &[f64]) -> Mat<f64> {
    let block = a.subrows(from, to - from);
    let dots = block * b.transpose();
    let na = row_norms(block);
    Mat::from_fn(to - from, b.nrows(), |i, j| (na[i] + nb[j] - 2.0 * dots[(i, j)]).max(0.0))
}

const BLOCK: usize = 512;

/// Each row's squared distance to its `k`-th nearest other row.
fn radii(x: &Mat<f64>, k: usize) -> Vec<f64> {
    let n = x.nrows();
    let norms = row_norms(x.as_ref());
    let mut out = Vec::with_capacity(n);
    for from in (0..n).step_by(BLOCK) {
        let to = (from + BLOCK).min(n);
        let d = sq_distances(x, from, to, x, &norms);
        for i in 0..to - from {
            let mut row: Vec<f64> = (0..n).filter(|&j| j != from + i).map(|j| d[(i, j)]).collect();
            let (_, kth, _) = row.select_nth_unstable_by(k - 1, f64::total_cmp);
            out.push(*kth);
        }
    }
    out
}

/// Share of the rows of `query` within the ball of some row of `support`.
fn inside(query: &Mat<f64>, support: &Mat<f64>, radii: &[f64]) -> f64 {
    let n = query.nrows();
    let norms = row_norms(support.as_ref());
    let mut hits = 0usize;
    for from in (0..n).step_by(BLOCK) {
        let to = (from + BLOCK).min(n);
        let d = sq_distances(query, from, to, support, &norms);
        hits += (0..to - from).filter(|&i| (0..support.nrows()).any(|j| d[(i, j)] <= radii[j])).count();
    }
    hits as f64 / n as f64
}
