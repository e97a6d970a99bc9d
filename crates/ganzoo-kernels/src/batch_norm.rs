//! Batch normalisation in training mode (Ioffe & Szegedy 2015), fused: per channel
//! `μ = mean(x)`, `σ² = mean((x − μ)²)` over `(N, H, W)`,
//! `y = γ (x − μ)/√(σ² + ε) + β`, and its backward pass
//! `dx = γ/√(σ² + ε) · (dy − mean(dy) − x̂ · mean(dy · x̂))`, `dγ = Σ dy · x̂`, `dβ = Σ dy`.
//!
//! Followed by a (leaky) ReLU, the two run as one op ([`batch_norm_leaky_relu`]):
//! the activation is applied as the output is written, and the backward pass masks
//! the incoming gradient with the output's sign (`y > 0 ⇔ γx̂ + β > 0` for slopes
//! `0 ≤ a`), so no normalised intermediate is kept or differentiated separately.
//!
//! The forward op keeps the batch moments it computed, for its backward pass and for
//! the caller's running statistics ([`batch_norm_with_moments`]), so a training step
//! reads each input for them once, not three times.
//!
//! The backward op has no backward of its own: a batch-norm layer can be trained but
//! not differentiated twice (the gradient penalty refuses batch-norm critics anyway).

use std::mem::MaybeUninit;
use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::gemm::Element;
use crate::leaky_relu::leaky_relu_grad;
use crate::storage::{nchw, typed, Typed};
use crate::sums::Sums;
use crate::uninit::written;

/// Per-channel `(mean, biased variance)` of `x (N, C, plane)`, accumulated in f64
/// (`σ² = E[x²] − μ²`, exact enough in f64 for activations).
pub fn channel_moments<T: Element>(x: &[T], n: usize, c: usize, plane: usize) -> Vec<(f64, f64)> {
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let mut sums = Sums::default();
            for i in 0..n {
                let p = &x[(i * c + ch) * plane..][..plane];
                sums.add(p, p);
            }
            let (s, ss) = sums.totals();
            let count = (n * plane) as f64;
            let mean = s / count;
            (mean, (ss / count - mean * mean).max(0.0))
        })
        .collect()
}

/// Per-channel `(mean, biased variance)` of one batch-norm input, computed once by
/// whichever of the forward and backward ops runs first on it.
#[derive(Clone, Default)]
struct Moments(Arc<OnceLock<Vec<(f64, f64)>>>);

impl Moments {
    fn of<T: Element>(&self, x: &[T], (n, c, plane): (usize, usize, usize)) -> &[(f64, f64)] {
        self.0.get_or_init(|| channel_moments(x, n, c, plane))
    }
}

/// `γ x̂ + β`, through a leaky ReLU of negative slope `slope` if given.
fn forward<T: Element>(
    x: &[T],
    (gamma, beta): (&[T], &[T]),
    (_, c, plane): (usize, usize, usize),
    eps: f64,
    moments: &[(f64, f64)],
    slope: Option<f64>,
) -> Vec<T> {
    let write = |y: &mut [MaybeUninit<T>]| {
        y.par_chunks_mut(plane).zip(x.par_chunks(plane)).enumerate().for_each(|(i, (out, inp))| {
            let ch = i % c;
            let (mean, var) = moments[ch];
            let scale = gamma[ch].to_f64() / (var + eps).sqrt();
            let (shift, scale) = (T::from_f64(beta[ch].to_f64() - mean * scale), T::from_f64(scale));
            let affine = |v: T| {
                let mut z = v * scale;
                z += shift;
                z
            };
            match slope.map(T::from_f64) {
                None => out.iter_mut().zip(inp).for_each(|(o, &v)| {
                    o.write(affine(v));
                }),
                Some(a) => out.iter_mut().zip(inp).for_each(|(o, &v)| {
                    let z = affine(v);
                    o.write(if z > T::ZERO { z } else { z * a });
                }),
            }
        })
    };
    // SAFETY: the planes of `y` pair one to one with those of `x`; each is written whole.
    unsafe { written(x.len(), write) }
}

/// `[dx | dγ | dβ]` packed in one vector.
fn backward<T: Element>(
    x: &[T],
    dy: &[T],
    gamma: &[T],
    (n, c, plane): (usize, usize, usize),
    eps: f64,
    moments: &[(f64, f64)],
) -> Vec<T> {
    let count = (n * plane) as f64;
    let sums: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mean, var) = moments[ch];
            let rstd = 1.0 / (var + eps).sqrt();
            let mut sums = Sums::default();
            for i in 0..n {
                let at = (i * c + ch) * plane;
                sums.add(&dy[at..at + plane], &x[at..at + plane]);
            }
            let (s_dy, s_dy_x) = sums.totals();
            // Σ dy·x̂ = (Σ dy·x − μ Σ dy) / σ
            (s_dy, (s_dy_x - mean * s_dy) * rstd)
        })
        .collect();
    let write = |out: &mut [MaybeUninit<T>]| {
        let (dx, rest) = out.split_at_mut(x.len());
        dx.par_chunks_mut(plane).enumerate().for_each(|(i, d)| {
            let ch = i % c;
            let (mean, var) = moments[ch];
            let rstd = 1.0 / (var + eps).sqrt();
            let k = gamma[ch].to_f64() * rstd;
            let (m_dy, m_dyx) = (sums[ch].0 / count, sums[ch].1 / count);
            // k (dy − m_dy − x̂ m_dyx) with x̂ = (x − μ) rstd, as one multiply-add per term.
            let per_x = -k * m_dyx * rstd;
            let (per_dy, per_x, offset) = (T::from_f64(k), T::from_f64(per_x), T::from_f64(-k * m_dy - per_x * mean));
            let at = i * plane;
            for ((o, &g), &v) in d.iter_mut().zip(&dy[at..at + plane]).zip(&x[at..at + plane]) {
                let mut z = g * per_dy;
                z += v * per_x;
                z += offset;
                o.write(z);
            }
        });
        for ch in 0..c {
            rest[ch].write(T::from_f64(sums[ch].1));
            rest[c + ch].write(T::from_f64(sums[ch].0));
        }
    };
    // SAFETY: `dx` is written plane by plane (its planes pair with those of `x` and
    // `dy`), `rest` channel by channel: `2c` values.
    unsafe { written(x.len() + 2 * c, write) }
}

struct BatchNormOp {
    eps: f64,
    moments: Moments,
    /// The negative slope of a leaky ReLU applied to the output (0: ReLU), if any.
    slope: Option<f64>,
}

impl CustomOp3 for BatchNormOp {
    fn name(&self) -> &'static str {
        "ganzoo-batch-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = nchw(l1, "batch norm")?;
        check_affine(l2, l3, dims.1)?;
        let out = match typed(self.name(), [(s1, l1), (s2, l2), (s3, l3)])? {
            Typed::F32([x, g, b]) => {
                CpuStorage::F32(forward(x, (g, b), dims, self.eps, self.moments.of(x, dims), self.slope))
            }
            Typed::F64([x, g, b]) => {
                CpuStorage::F64(forward(x, (g, b), dims, self.eps, self.moments.of(x, dims), self.slope))
            }
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // The activation's gradient first: its mask is the sign of the output.
        let dy = match self.slope {
            Some(slope) => leaky_relu_grad(y, dy, slope)?,
            None => dy.clone(),
        };
        let packed = x.apply_op3_no_bwd(
            &dy.contiguous()?,
            gamma,
            &BatchNormGradOp { eps: self.eps, moments: self.moments.clone() },
        )?;
        let (len, c) = (x.elem_count(), gamma.elem_count());
        let dx = packed.narrow(0, 0, len)?.reshape(x.shape())?;
        Ok((Some(dx), Some(packed.narrow(0, len, c)?), Some(packed.narrow(0, len + c, c)?)))
    }
}

fn check_affine(gamma: &Layout, beta: &Layout, c: usize) -> Result<()> {
    if gamma.shape().elem_count() != c || beta.shape().elem_count() != c {
        candle_core::bail!(
            "batch norm: γ {:?} and β {:?} must have one value per channel ({c})",
            gamma.dims(),
            beta.dims()
        );
    }
    Ok(())
}

/// `(x, dy, γ) → [dx | dγ | dβ]`, with the forward op's moments of `x`.
struct BatchNormGradOp {
    eps: f64,
    moments: Moments,
}

impl CustomOp3 for BatchNormGradOp {
    fn name(&self) -> &'static str {
        "ganzoo-batch-norm-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = nchw(l1, "batch norm backward")?;
        let len = l1.shape().elem_count();
        let out = match typed(self.name(), [(s1, l1), (s2, l2), (s3, l3)])? {
            Typed::F32([x, dy, g]) => CpuStorage::F32(backward(x, dy, g, dims, self.eps, self.moments.of(x, dims))),
            Typed::F64([x, dy, g]) => CpuStorage::F64(backward(x, dy, g, dims, self.eps, self.moments.of(x, dims))),
        };
        Ok((out, Shape::from(len + 2 * dims.1)))
    }
}

/// `(2, C)`: per-channel batch mean and biased variance (no gradient).
struct MomentsOp;

impl CustomOp1 for MomentsOp {
    fn name(&self) -> &'static str {
        "ganzoo-channel-moments"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, plane) = nchw(l, "channel moments")?;
        let pack = |m: Vec<(f64, f64)>| m.iter().map(|p| p.0).chain(m.iter().map(|p| p.1)).collect::<Vec<f64>>();
        let out = match typed(self.name(), [(s, l)])? {
            Typed::F32([x]) => {
                CpuStorage::F32(pack(channel_moments(x, n, c, plane)).iter().map(|&v| v as f32).collect())
            }
            Typed::F64([x]) => CpuStorage::F64(pack(channel_moments(x, n, c, plane))),
        };
        Ok((out, Shape::from((2, c))))
    }
}

/// Training-mode batch norm of `x (N, C, H, W)` with per-channel `gamma`, `beta`.
pub fn batch_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    normalise(x, gamma, beta, eps, Moments::default(), None)
}

/// `leaky_relu(batch_norm(x, γ, β, ε), slope)` as one op (`slope` 0: ReLU).
pub fn batch_norm_leaky_relu(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64, slope: f64) -> Result<Tensor> {
    normalise(x, gamma, beta, eps, Moments::default(), Some(slope))
}

/// The forward op on `x`, keeping its moments in `moments`.
fn normalise(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    moments: Moments,
    slope: Option<f64>,
) -> Result<Tensor> {
    if slope.is_some_and(|a| !(0.0..=1.0).contains(&a)) {
        candle_core::bail!("batch norm + leaky ReLU: the slope must be in [0, 1], got {slope:?}");
    }
    x.contiguous()?.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, BatchNormOp { eps, moments, slope })
}

/// [`batch_norm`] (followed by a leaky ReLU of negative slope `slope` if given, as
/// [`batch_norm_leaky_relu`]), also returning the batch's per-channel mean and biased
/// variance as two `(C,)` tensors without gradient (the moments the normalisation
/// used; what [`channel_mean_var`] gives, without a second pass over `x`).
pub fn batch_norm_with_moments(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    slope: Option<f64>,
) -> Result<(Tensor, Tensor, Tensor)> {
    let moments = Moments::default();
    let y = normalise(x, gamma, beta, eps, moments.clone(), slope)?;
    let Some(m) = moments.0.get() else { candle_core::bail!("batch norm: the forward op left no moments") };
    let (mean, var): (Vec<f64>, Vec<f64>) = m.iter().copied().unzip();
    let c = mean.len();
    let as_tensor = |v: Vec<f64>| Tensor::from_vec(v, c, x.device())?.to_dtype(x.dtype());
    Ok((y, as_tensor(mean)?, as_tensor(var)?))
}

/// Per-channel batch mean and biased variance of `x (N, C, H, W)`, as two `(C,)` tensors.
pub fn channel_mean_var(x: &Tensor) -> Result<(Tensor, Tensor)> {
    let m = x.detach().contiguous()?.apply_op1_no_bwd(&MomentsOp)?;
    Ok((m.get(0)?, m.get(1)?))
}
