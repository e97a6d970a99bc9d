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
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{EvalError, Result};

/// Subsets measured at once, each with its own rows and Gram matrix ([`working_bytes`]).
const AT_ONCE: usize = 16;

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
    // The subsets drawn in order first, then measured in parallel: the same numbers on
    // any number of threads.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let drawn: Vec<(Vec<usize>, Vec<usize>)> =
        (0..subsets).map(|_| (sample(&mut rng, na, m).into_vec(), sample(&mut rng, nb, m).into_vec())).collect();
    let values: Vec<f64> = drawn
        .chunks(AT_ONCE)
        .flat_map(|run| {
            run.par_iter().map(|(ia, ib)| mmd2_unbiased(&rows(a, dim, ia), &rows(b, dim, ib), dim)).collect::<Vec<_>>()
        })
        .collect();
    let mean = values.iter().sum::<f64>() / subsets as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / subsets as f64;
    Ok(Kid { mean, std: var.sqrt(), subsets, subset_size: m })
}

/// Bytes [`kernel_inception_distance`] works in on `threads` threads: the subsets' indices,
/// and for each subset in flight its rows as f64 and one Gram matrix.
pub fn working_bytes(na: usize, nb: usize, dim: usize, subsets: usize, subset_size: usize, threads: usize) -> u128 {
    let m = subset_size.min(na).min(nb) as u128;
    let in_flight = threads.clamp(1, AT_ONCE).min(subsets.max(1)) as u128;
    16 * subsets as u128 * m + in_flight * 8 * m * (2 * dim as u128 + m)
}

fn rows(data: &[f32], dim: usize, ids: &[usize]) -> Mat<f64> {
    Mat::from_fn(ids.len(), dim, |i, j| f64::from(data[ids[i] * dim + j]))
}

/// The unbiased MMD² of two equally large sets with the cubic kernel; one `m × m` Gram
/// matrix held at a time.
fn mmd2_unbiased(x: &Mat<f64>, y: &Mat<f64>, dim: usize) -> f64 {
    let m = x.nrows();
    // Σ k(pᵢ, qⱼ) over all pairs, or over i ≠ j; column by column (faer's matrices are
    // column-major).
    let kernel_sum = |p: &Mat<f64>, q: &Mat<f64>, diagonal: bool| {
        let g = p * q.transpose();
        (0..m)
            .map(|j| {
                let column = g.col(j);
                (0..m).filter(|&i| diagonal || i != j).map(|i| (column[i] / dim as f64 + 1.0).powi(3)).sum::<f64>()
            })
            .sum::<f64>()
    };
    let (xx, yy, xy) = (kernel_sum(x, x, false), kernel_sum(y, y, false), kernel_sum(x, y, true));
    let mm1 = (m * (m - 1)) as f64;
    (xx + yy) / mm1 - 2.0 * xy / (m * m) as f64
}
