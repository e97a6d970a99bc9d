//! The kernel inception distance (Bińkowski et al. 2018, §4): the unbiased estimate of
//! the squared maximum mean discrepancy with the cubic polynomial kernel
//! `k(x, y) = (xᵀy / d + 1)³`, averaged over random subsets of both sets (as
//! torch-fidelity: 100 subsets of 1 000 by default), reported with its standard deviation.
//!
//! For subsets `X`, `Y` of size `m`:
//! `MMD²ᵤ = 1/(m(m−1)) Σ_{i≠j} [k(xᵢ,xⱼ) + k(yᵢ,yⱼ)] − 2/m² Σ_{i,j} k(xᵢ,yⱼ)`,
//! unbiased, so it can be (slightly) negative when the sets match.

use faer::Mat;
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{EvalError, Result};

/// KID's mean and standard deviation over subsets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Kid {
    pub mean: f64,
    pub std: f64,
    pub subsets: usize,
    pub subset_size: usize,
}

/// KID between `a` and `b` (row-major, `dim` features per row): `subsets` subsets of
/// `subset_size` rows (at most the smaller set), drawn with `seed`.
pub fn kernel_inception_distance(
    a: &[f32],
    b: &[f32],
    dim: usize,
    subsets: usize,
    subset_size: usize,
    seed: u64,
) -> Result<Kid> {
    if dim == 0 || !a.len().is_multiple_of(dim) || !b.len().is_multiple_of(dim) || subsets == 0 {
        return Err(EvalError::Samples(format!("KID needs rows of {dim} features and at least one subset")));
    }
    crate::error::check_finite(a, "the first feature set")?;
    crate::error::check_finite(b, "the second feature set")?;
    let (na, nb) = (a.len() / dim, b.len() / dim);
    let m = subset_size.min(na).min(nb);
    if m < 2 {
        return Err(EvalError::TooFew { what: "KID", needed: 2, got: na.min(nb) });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let values: Vec<f64> = (0..subsets)
        .map(|_| {
            let x = rows(a, dim, &sample(&mut rng, na, m).into_vec());
            let y = rows(b, dim, &sample(&mut rng, nb, m).into_vec());
            mmd2_unbiased(&x, &y, dim)
        })
        .collect();
    let mean = values.iter().sum::<f64>() / subsets as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / subsets as f64;
    Ok(Kid { mean, std: var.sqrt(), subsets, subset_size: m })
}

fn rows(data: &[f32], dim: usize, ids: &[usize]) -> Mat<f64> {
    Mat::from_fn(ids.len(), dim, |i, j| f64::from(data[ids[i] * dim + j]))
}

/// The unbiased MMD² of two equally large sets with the cubic kernel.
fn mmd2_unbiased(x: &Mat<f64>, y: &Mat<f64>, dim: usize) -> f64 {
    let m = x.nrows();
    let kernel = |p: &Mat<f64>, q: &Mat<f64>| {
        let g = p * q.transpose();
        Mat::from_fn(m, m, |i, j| (g[(i, j)] / dim as f64 + 1.0).powi(3))
    };
    let (kxx, kyy, kxy) = (kernel(x, x), kernel(y, y), kernel(x, y));
    let off_diagonal = |k: &Mat<f64>| {
        (0..m).flat_map(|i| (0..m).map(move |j| (i, j))).filter(|(i, j)| i != j).map(|(i, j)| k[(i, j)]).sum::<f64>()
    };
    let cross: f64 = (0..m).flat_map(|i| (0..m).map(move |j| (i, j))).map(|(i, j)| kxy[(i, j)]).sum();
    let mm1 = (m * (m - 1)) as f64;
    (off_diagonal(&kxx) + off_diagonal(&kyy)) / mm1 - 2.0 * cross / (m * m) as f64
}
