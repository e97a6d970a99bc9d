//! The Fréchet distance between two Gaussians (Dowson & Landau 1982), FID's formula
//! (Heusel et al. 2017, eq. 6):
//!
//! `d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁ Σ₂)^½`
//!
//! The trace of the matrix square root is computed from eigenvalues: `Σ₁ Σ₂` is similar
//! to the symmetric positive semi-definite `Σ₁^½ Σ₂ Σ₁^½`, so `tr (Σ₁ Σ₂)^½ = Σᵢ √λᵢ` of
//! the latter. Everything is f64 and goes through `faer`'s symmetric eigensolver
//! (pytorch-fid takes `scipy.linalg.sqrtm`, a Schur method, and drops imaginary parts).

use faer::{Mat, Side};
use rayon::prelude::*;
use serde::Serialize;

use crate::{EvalError, Result};

/// Columns of the covariance per product in [`Gaussian::fit`].
const COLUMNS: usize = 128;

/// Mean and covariance of a set of feature vectors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gaussian {
    pub mean: Vec<f64>,
    /// `dim × dim`, row-major.
    pub cov: Vec<f64>,
}

impl Gaussian {
    /// Fits `features` (row-major, `dim` values per sample): the mean and the unbiased
    /// covariance (divided by `n − 1`, as `numpy.cov`). Needs more samples than dimensions.
    pub fn fit(features: &[f32], dim: usize) -> Result<Self> {
        if dim == 0 || !features.len().is_multiple_of(dim) {
            return Err(EvalError::Samples(format!("{} values are not rows of {dim} features", features.len())));
        }
        crate::error::check_finite(features, "the features")?;
        let n = features.len() / dim;
        if n <= dim {
            return Err(EvalError::TooFew { what: "a covariance of this dimension", needed: dim + 1, got: n });
        }
        let mut mean = vec![0.0; dim];
        for row in features.chunks_exact(dim) {
            mean.iter_mut().zip(row).for_each(|(m, &x)| *m += f64::from(x));
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let centred = Mat::<f64>::from_fn(n, dim, |i, j| f64::from(features[i * dim + j]) - mean[j]);
        // `Cᵀ C` by blocks of columns, each one product on one thread: the same numbers on
        // any number of threads.
        let starts: Vec<usize> = (0..dim).step_by(COLUMNS).collect();
        let blocks: Vec<Mat<f64>> = starts
            .par_iter()
            .map(|&from| centred.transpose() * centred.subcols(from, COLUMNS.min(dim - from)))
            .collect();
        let scale = 1.0 / (n - 1) as f64;
        let entry = |i: usize, j: usize| blocks[j / COLUMNS][(i, j % COLUMNS)] * scale;
        let cov = (0..dim * dim).map(|k| entry(k / dim, k % dim)).collect();
        Ok(Self { mean, cov })
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    fn cov_mat(&self) -> Mat<f64> {
        let d = self.dim();
        Mat::from_fn(d, d, |i, j| self.cov[i * d + j])
    }
}

/// `d²` between two Gaussians of the same dimension.
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> Result<f64> {
    let d = a.dim();
    if b.dim() != d || a.cov.len() != d * d || b.cov.len() != d * d {
        return Err(EvalError::Samples(format!("Gaussians of dimensions {} and {} cannot be compared", d, b.dim())));
    }
    let mean_term: f64 = a.mean.iter().zip(&b.mean).map(|(x, y)| (x - y).powi(2)).sum();
    let trace = |g: &Gaussian| (0..d).map(|i| g.cov[i * d + i]).sum::<f64>();
    let root_a = sqrt_psd(&a.cov_mat())?;
    let m = &root_a * b.cov_mat() * &root_a;
    let symmetric = Mat::from_fn(d, d, |i, j| 0.5 * (m[(i, j)] + m[(j, i)]));
    let eig = symmetric
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|e| EvalError::Numeric(format!("eigenvalues of Σ₁^½ Σ₂ Σ₁^½ did not converge: {e:?}")))?;
    let trace_sqrt: f64 = eig.iter().map(|&l| l.max(0.0).sqrt()).sum();
    Ok(mean_term + trace(a) + trace(b) - 2.0 * trace_sqrt)
}

/// The symmetric square root of a positive semi-definite matrix (negative eigenvalues
/// from rounding are taken as 0).
fn sqrt_psd(s: &Mat<f64>) -> Result<Mat<f64>> {
    let e = s
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| EvalError::Numeric(format!("eigendecomposition of a covariance did not converge: {e:?}")))?;
    let (u, values) = (e.U(), e.S().column_vector());
    let n = u.nrows();
    let scaled = Mat::from_fn(n, n, |i, j| u[(i, j)] * values[j].max(0.0).sqrt());
    Ok(&scaled * u.transpose())
}
