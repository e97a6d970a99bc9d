//! Wasserstein-1 between two equally large sets of points (uniform weights):
//! `W1 = min over permutations π of (1/n) Σᵢ ‖aᵢ − b_π(i)‖₂`.
//!
//! Up to [`EXACT_MAX`] points the optimal assignment is solved exactly (Jonker-Volgenant,
//! the algorithm of scipy's `linear_sum_assignment`, through the `lsap` crate); above it,
//! the sliced W1 (Rabin et al. 2011): the mean over [`DIRECTIONS`] fixed random unit
//! directions of the one-dimensional W1 of the projections, which is exact by sorting.
//! Sliced W1 is smaller than W1 (by about `√(2/π)`-ish factors in 2-D); compare numbers of
//! one method only — the report says which was used.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::{EvalError, Result};

/// Largest set solved by exact assignment (an n×n cost matrix: 32 MB at 2 000).
pub const EXACT_MAX: usize = 2000;
/// Random directions of the sliced estimate.
pub const DIRECTIONS: usize = 256;

/// How a W1 value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum W1Method {
    ExactAssignment,
    Sliced,
}

/// W1 between `a` and `b` (row-major, `dim` values per point, the same count each): exact
/// up to [`EXACT_MAX`] points, sliced (directions drawn with `seed`) above.
pub fn w1(a: &[f32], b: &[f32], dim: usize, seed: u64) -> Result<(f64, W1Method)> {
    let n = check_sets(a, b, dim)?;
    if n <= EXACT_MAX {
        Ok((w1_exact(a, b, dim)?, W1Method::ExactAssignment))
    } else {
        Ok((w1_sliced(a, b, dim, seed)?, W1Method::Sliced))
    }
}

/// The exact W1 by optimal assignment.
pub fn w1_exact(a: &[f32], b: &[f32], dim: usize) -> Result<f64> {
    let n = check_sets(a, b, dim)?;
    let cost: Vec<f64> = (0..n * n).map(|k| distance(&a[k / n * dim..][..dim], &b[k % n * dim..][..dim])).collect();
    let (rows, cols) = lsap::solve(n, n, &cost, false).map_err(|e| EvalError::Numeric(format!("assignment: {e:?}")))?;
    Ok(rows.iter().zip(&cols).map(|(&r, &c)| cost[r * n + c]).sum::<f64>() / n as f64)
}

/// The sliced W1 over [`DIRECTIONS`] directions drawn with `seed`.
pub fn w1_sliced(a: &[f32], b: &[f32], dim: usize, seed: u64) -> Result<f64> {
    let n = check_sets(a, b, dim)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut total = 0.0;
    for _ in 0..DIRECTIONS {
        let mut dir: Vec<f64> = (0..dim).map(|_| StandardNormal.sample(&mut rng)).collect();
        let norm = dir.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300);
        dir.iter_mut().for_each(|v| *v /= norm);
        let project = |p: &[f32]| -> Vec<f64> {
            let mut out: Vec<f64> =
                p.chunks_exact(dim).map(|x| x.iter().zip(&dir).map(|(&x, d)| f64::from(x) * d).sum()).collect();
            out.sort_by(f64::total_cmp);
            out
        };
        let (pa, pb) = (project(a), project(b));
        total += pa.iter().zip(&pb).map(|(x, y)| (x - y).abs()).sum::<f64>() / n as f64;
    }
    Ok(total / DIRECTIONS as f64)
}

fn distance(p: &[f32], q: &[f32]) -> f64 {
    p.iter().zip(q).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum::<f64>().sqrt()
}

/// The number of points of two sets that must match, hold finite values and be non-empty.
fn check_sets(a: &[f32], b: &[f32], dim: usize) -> Result<usize> {
    if dim == 0 || !a.len().is_multiple_of(dim) || a.len() != b.len() || a.is_empty() {
        return Err(EvalError::Samples(format!(
            "W1 needs two non-empty sets of {dim}-D points of the same size, got {} and {} values",
            a.len(),
            b.len()
        )));
    }
    crate::error::check_finite(a, "the first point set")?;
    crate::error::check_finite(b, "the second point set")?;
    Ok(a.len() / dim)
}
