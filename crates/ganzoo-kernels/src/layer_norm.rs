//! Layer normalisation (Ba et al. 2016) over every non-batch dimension, fused:
//! per sample, `x̂ = (x − μ)/σ` with `σ = √(var + ε)`, `y = x̂ ⊙ γ + β`.
//!
//! Its input gradient, for an upstream gradient `g = γ ⊙ dy` at `x̂`, is
//! `dx = Q(x, g) = P g / σ` with the projection `P w = w − mean(w) − x̂ · mean(w ⊙ x̂)`
//! (eq. of Ba et al. §A; `P` is symmetric). `Q` is an op of its own with its own
//! backward, because the WGAN-GP penalty differentiates the input gradient again:
//!
//! - `∂⟨h, Q(x, g)⟩/∂g = Q(x, h)`;
//! - `∂⟨h, Q(x, g)⟩/∂x = P v / σ + (s/N) x̂`, with `v = −(m h + k g)/σ`,
//!   `s = −⟨h, P g⟩/σ²`, `m = mean(g ⊙ x̂)`, `k = mean(h ⊙ x̂)`, `N` elements per sample.
//!
//! The last one (`LayerNormSecondOp`) has no backward: nothing here needs a third
//! derivative; nor has `AffineGradOp` (the gradients of `γ` and `β`, which nothing
//! differentiates again: the penalty's path to `γ` runs through `Q`'s upstream `γ ⊙ dy`).

use std::mem::MaybeUninit;

#[cfg(feature = "cuda")]
use candle_core::cuda_backend::CudaStorage;
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::gemm::Element;
use crate::storage::tracked;
use crate::storage::{typed, Typed};
use crate::sums::Sums;
use crate::uninit::written;

/// `(B, N)` of a layout whose first dimension is the batch.
fn samples(l: &Layout, op: &str) -> Result<(usize, usize)> {
    match l.dims() {
        [b, rest @ ..] if !rest.is_empty() => Ok((*b, rest.iter().product())),
        dims => bail!("{op}: expected a batch of samples (B, …), got shape {dims:?}"),
    }
}

/// Runs `f(sample index, output row)` over the `N`-long rows of a fresh `(B, N)`
/// buffer; `f` must write every value of its row.
fn per_sample<T: Element>(b: usize, n: usize, f: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync) -> Vec<T> {
    let isa = crate::isa::active();
    let write = |out: &mut [MaybeUninit<T>]| {
        if n > 0 {
            out.par_chunks_mut(n).enumerate().for_each(|(i, row)| crate::isa::vectorized(isa, || f(i, row)));
        }
    };
    // SAFETY: the rows cover the buffer and each `f` writes its row whole (every caller
    // below writes each value of `out` in one loop over it).
    unsafe { written(b * n, write) }
}

/// `N` of two operands of one shape `(B, …)`: an input and a gradient.
fn paired_samples(input: &Layout, grad: &Layout, op: &str) -> Result<usize> {
    if input.shape() != grad.shape() {
        bail!("{op}: input {:?} and gradient {:?} differ", input.dims(), grad.dims());
    }
    Ok(samples(input, op)?.1)
}

fn check_len(op: &str, what: &str, len: usize, n: usize) -> Result<()> {
    if len != n {
        bail!("{op}: {what} has {len} elements, a sample has {n}");
    }
    Ok(())
}

/// `y = x̂ ⊙ γ + β`; operands `x (B, …)`, `γ`, `β` with one element per sample element.
struct LayerNormOp {
    eps: f64,
}

fn normalise<T: Element>(x: &[T], gamma: &[T], beta: &[T], n: usize, eps: f64) -> Vec<T> {
    per_sample(x.len() / n.max(1), n, |i, y| {
        let s = Sample::new(&x[i * n..][..n], eps);
        for (k, ((o, &g), &b)) in y.iter_mut().zip(gamma).zip(beta).enumerate() {
            o.write(T::from_f64(s.xhat(k) * g.to_f64() + b.to_f64()));
        }
    })
}

/// `N` of `x (B, …)`, checked against `γ`'s and `β`'s lengths.
fn forward_len(x: &Layout, gamma: &Layout, beta: &Layout) -> Result<usize> {
    let op = "ganzoo-layer-norm";
    let (_, n) = samples(x, op)?;
    check_len(op, "γ", gamma.shape().elem_count(), n)?;
    check_len(op, "β", beta.shape().elem_count(), n)?;
    Ok(n)
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "ganzoo-layer-norm"
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
        let n = forward_len(l1, l2, l3)?;
        let out = match typed(self.name(), [(s1, l1), (s2, l2), (s3, l3)])? {
            Typed::F32([x, g, b]) => CpuStorage::F32(normalise(x, g, b, n, self.eps)),
            Typed::F64([x, g, b]) => CpuStorage::F64(normalise(x, g, b, n, self.eps)),
        };
        Ok((out, l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let n = forward_len(l1, l2, l3)?;
        Ok((crate::cuda::layer_norm::forward((s1, l1), (s2, l2), (s3, l3), n, self.eps)?, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let flat = dy.flatten_from(1)?;
        let dx = tracked(x, || {
            let g = flat.broadcast_mul(&gamma.flatten_all()?)?;
            layer_norm_input_grad(x, &g.reshape(x.shape())?, self.eps)
        })?;
        if !gamma.track_op() && !beta.track_op() {
            return Ok((dx, None, None));
        }
        let packed = x.contiguous()?.apply_op2_no_bwd(&dy.contiguous()?, &AffineGradOp { eps: self.eps })?;
        let dgamma = tracked(gamma, || packed.get(0)?.reshape(gamma.shape()))?;
        let dbeta = tracked(beta, || packed.get(1)?.reshape(beta.shape()))?;
        Ok((dx, dgamma, dbeta))
    }
}

/// `(x, dy) → [Σ_b dy ⊙ x̂; Σ_b dy]`, shape `(2, N)`: the gradients of `γ` and `β`
/// in one pass (Candle's ops took a standardised copy of `x`, a product and two
/// reductions over the batch). No backward: nothing differentiates them again.
struct AffineGradOp {
    eps: f64,
}

/// Sample elements per parallel task of [`affine_grad`].
const AFFINE_GRAIN: usize = 1 << 12;

fn affine_grad<T: Element>(x: &[T], dy: &[T], n: usize, eps: f64) -> Vec<T> {
    let b = x.len() / n.max(1);
    let moments: Vec<(f64, f64)> = (0..b)
        .into_par_iter()
        .map(|i| {
            let s = Sample::new(&x[i * n..][..n], eps);
            (s.mean, s.rstd)
        })
        .collect();
    let mut out = vec![T::ZERO; 2 * n];
    let (dgamma, dbeta) = out.split_at_mut(n);
    let tasks = dgamma.par_chunks_mut(AFFINE_GRAIN).zip(dbeta.par_chunks_mut(AFFINE_GRAIN)).enumerate();
    tasks.for_each(|(t, (dg, db))| {
        let first = t * AFFINE_GRAIN;
        let (mut sg, mut sb) = (vec![0.0f64; dg.len()], vec![0.0f64; dg.len()]);
        for (i, &(mean, rstd)) in moments.iter().enumerate() {
            let (xs, ds) = (&x[i * n + first..][..dg.len()], &dy[i * n + first..][..dg.len()]);
            for (((g, s), &v), &d) in sg.iter_mut().zip(sb.iter_mut()).zip(xs).zip(ds) {
                let d = d.to_f64();
                *s += d;
                *g += d * (v.to_f64() - mean) * rstd;
            }
        }
        dg.iter_mut().zip(&sg).for_each(|(o, &v)| *o = T::from_f64(v));
        db.iter_mut().zip(&sb).for_each(|(o, &v)| *o = T::from_f64(v));
    });
    out
}

impl CustomOp2 for AffineGradOp {
    fn name(&self) -> &'static str {
        "ganzoo-layer-norm-affine-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let n = paired_samples(l1, l2, self.name())?;
        let out = match typed(self.name(), [(s1, l1), (s2, l2)])? {
            Typed::F32([x, dy]) => CpuStorage::F32(affine_grad(x, dy, n, self.eps)),
            Typed::F64([x, dy]) => CpuStorage::F64(affine_grad(x, dy, n, self.eps)),
        };
        Ok((out, Shape::from((2, n))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s1: &CudaStorage, l1: &Layout, s2: &CudaStorage, l2: &Layout) -> Result<(CudaStorage, Shape)> {
        let n = paired_samples(l1, l2, self.name())?;
        Ok((crate::cuda::layer_norm::affine_grad((s1, l1), (s2, l2), n, self.eps)?, Shape::from((2, n))))
    }
}

/// One sample with its moments `μ` and `σ = √(var + ε)`, shared by every op here.
/// The sums run in eight f64 lanes ([`Sums`]; `var = E[x²] − μ²`, as batch norm),
/// and `1/σ` is kept so no loop divides per element.
struct Sample<'a, T> {
    x: &'a [T],
    mean: f64,
    sigma: f64,
    rstd: f64,
}

impl<'a, T: Element> Sample<'a, T> {
    fn new(x: &'a [T], eps: f64) -> Self {
        let n = x.len() as f64;
        let mut sums = Sums::default();
        sums.add(x, x);
        let (s, ss) = sums.totals();
        let mean = s / n;
        let sigma = ((ss / n - mean * mean).max(0.0) + eps).sqrt();
        Self { x, mean, sigma, rstd: 1.0 / sigma }
    }

    fn xhat(&self, i: usize) -> f64 {
        (self.x[i].to_f64() - self.mean) * self.rstd
    }

    /// `(mean(w), mean(w ⊙ x̂))`, from `Σ w ⊙ x̂ = (Σ w ⊙ x − μ Σ w)/σ`.
    fn means(&self, w: &[T]) -> (f64, f64) {
        let n = w.len() as f64;
        let mut sums = Sums::default();
        sums.add(w, self.x);
        let (s, sx) = sums.totals();
        (s / n, (sx - self.mean * s) * self.rstd / n)
    }
}

/// `Q(x, g) = P g / σ`; operands `x`, `g` of one shape `(B, …)`.
struct LayerNormInputGradOp {
    eps: f64,
}

fn project<T: Element>(x: &[T], g: &[T], n: usize, eps: f64) -> Vec<T> {
    per_sample(x.len() / n.max(1), n, |i, out| {
        let s = Sample::new(&x[i * n..][..n], eps);
        let g = &g[i * n..][..n];
        let (g_mean, m) = s.means(g);
        for (k, (o, v)) in out.iter_mut().zip(g).enumerate() {
            o.write(T::from_f64((v.to_f64() - g_mean - s.xhat(k) * m) * s.rstd));
        }
    })
}

impl CustomOp2 for LayerNormInputGradOp {
    fn name(&self) -> &'static str {
        "ganzoo-layer-norm-input-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let n = paired_samples(l1, l2, self.name())?;
        let out = match typed(self.name(), [(s1, l1), (s2, l2)])? {
            Typed::F32([x, g]) => CpuStorage::F32(project(x, g, n, self.eps)),
            Typed::F64([x, g]) => CpuStorage::F64(project(x, g, n, self.eps)),
        };
        Ok((out, l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s1: &CudaStorage, l1: &Layout, s2: &CudaStorage, l2: &Layout) -> Result<(CudaStorage, Shape)> {
        let n = paired_samples(l1, l2, self.name())?;
        Ok((crate::cuda::layer_norm::input_grad((s1, l1), (s2, l2), n, self.eps)?, l1.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, g: &Tensor, _: &Tensor, h: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = tracked(x, || {
            x.contiguous()?.apply_op3_no_bwd(&g.contiguous()?, &h.contiguous()?, &LayerNormSecondOp { eps: self.eps })
        })?;
        let dg = tracked(g, || layer_norm_input_grad(x, h, self.eps))?;
        Ok((dx, dg))
    }
}

/// `∂⟨h, Q(x, g)⟩/∂x`; operands `x`, `g`, `h` of one shape `(B, …)`.
struct LayerNormSecondOp {
    eps: f64,
}

fn second<T: Element>(x: &[T], g: &[T], h: &[T], n: usize, eps: f64) -> Vec<T> {
    per_sample(x.len() / n.max(1), n, |i, out| {
        let s = Sample::new(&x[i * n..][..n], eps);
        let (g, h) = (&g[i * n..][..n], &h[i * n..][..n]);
        let (nf, sigma, rstd) = (n as f64, s.sigma, s.rstd);
        let (g_mean, m) = s.means(g);
        let (h_mean, k) = s.means(h);
        let mut sums = Sums::default();
        sums.add(h, g);
        let hg = sums.totals().1;
        let h_pg = hg - nf * g_mean * h_mean - nf * m * k;
        let scale = -h_pg / (sigma * sigma) / nf;
        // v = −(m h + k g)/σ; mean(v) and mean(v ⊙ x̂) in closed form.
        let v_mean = -(m * h_mean + k * g_mean) * rstd;
        let vx_mean = -2.0 * m * k * rstd;
        for (j, o) in out.iter_mut().enumerate() {
            let xhat = s.xhat(j);
            let v = -(m * h[j].to_f64() + k * g[j].to_f64()) * rstd;
            o.write(T::from_f64((v - v_mean - xhat * vx_mean) * rstd + scale * xhat));
        }
    })
}

/// `N` of `x (B, …)`, with `g` and `h` of `x`'s shape.
fn second_len(x: &Layout, g: &Layout, h: &Layout) -> Result<usize> {
    let op = "ganzoo-layer-norm-second-derivative";
    let (_, n) = samples(x, op)?;
    if x.shape() != g.shape() || x.shape() != h.shape() {
        bail!("{op}: operands {:?}, {:?}, {:?} differ", x.dims(), g.dims(), h.dims());
    }
    Ok(n)
}

impl CustomOp3 for LayerNormSecondOp {
    fn name(&self) -> &'static str {
        "ganzoo-layer-norm-second-derivative"
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
        let n = second_len(l1, l2, l3)?;
        let out = match typed(self.name(), [(s1, l1), (s2, l2), (s3, l3)])? {
            Typed::F32([x, g, h]) => CpuStorage::F32(second(x, g, h, n, self.eps)),
            Typed::F64([x, g, h]) => CpuStorage::F64(second(x, g, h, n, self.eps)),
        };
        Ok((out, l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let n = second_len(l1, l2, l3)?;
        Ok((crate::cuda::layer_norm::second((s1, l1), (s2, l2), (s3, l3), n, self.eps)?, l1.shape().clone()))
    }
}

/// Layer norm of `x (B, …)` over every non-batch dimension with per-element `γ`, `β`
/// (each with as many elements as one sample).
pub fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, LayerNormOp { eps })
}

/// `Q(x, g) = (g − mean(g) − x̂ · mean(g ⊙ x̂)) / σ` per sample: the input gradient of
/// the standardisation `x ↦ x̂` for an upstream gradient `g` (for layer norm, `g = γ ⊙ dy`).
/// Differentiable in `x` and `g`.
pub fn layer_norm_input_grad(x: &Tensor, g: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&g.contiguous()?, LayerNormInputGradOp { eps })
}
