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
//!
//! Inputs are NCHW (each channel a run of planes) or, for [`batch_norm_with_moments`]
//! on [`ImageLayout::Nhwc`], NHWC (each channel a column of `(N·H·W, C)` rows, summed
//! and normalised row by row with the channels vectorised).

use std::mem::MaybeUninit;
use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::gemm::Element;
use crate::image_layout::ImageLayout;
use crate::leaky_relu::leaky_relu_grad;
use crate::storage::{nchw, typed, Typed};
use crate::sums::Sums;
use crate::uninit::written;

/// How a batch-norm input's channels lie: as planes `(N, C, H·W)` (NCHW) or as the
/// innermost axis of rows `(N·H·W, C)` (NHWC).
#[derive(Debug, Clone, Copy)]
enum Channels {
    Planes { n: usize, c: usize, plane: usize },
    Rows { rows: usize, c: usize },
}

/// Rows of an NHWC input one task sums or writes (about 16 Ki values).
fn rows_per_task(c: usize) -> usize {
    (1 << 14) / c.max(1) + 1
}

impl Channels {
    fn of(l: &Layout, layout: ImageLayout, op: &str) -> Result<Self> {
        Ok(match (layout, l.dims()) {
            (ImageLayout::Nchw, _) => {
                let (n, c, plane) = nchw(l, op)?;
                Self::Planes { n, c, plane }
            }
            (ImageLayout::Nhwc, &[n, h, w, c]) => Self::Rows { rows: n * h * w, c },
            (ImageLayout::Nhwc, dims) => {
                candle_core::bail!("{op}: expected an (N, H, W, C) tensor, got shape {dims:?}")
            }
        })
    }

    fn channels(self) -> usize {
        match self {
            Self::Planes { c, .. } | Self::Rows { c, .. } => c,
        }
    }

    /// Values per channel.
    fn count(self) -> usize {
        match self {
            Self::Planes { n, plane, .. } => n * plane,
            Self::Rows { rows, .. } => rows,
        }
    }

    /// Per channel `(Σ a, Σ a·b)` over paired inputs of this shape, in f64, in an
    /// order that does not depend on the threads.
    /// (Each task's loops run at the active level: same sums, wider registers.)
    fn sums<T: Element>(self, a: &[T], b: &[T]) -> Vec<(f64, f64)> {
        let isa = crate::isa::active();
        match self {
            Self::Planes { n, c, plane } => (0..c)
                .into_par_iter()
                .map(|ch| {
                    crate::isa::vectorized(
                        isa,
                        #[inline(always)]
                        || {
                            let mut sums = Sums::default();
                            for i in 0..n {
                                let at = (i * c + ch) * plane;
                                sums.add(&a[at..at + plane], &b[at..at + plane]);
                            }
                            sums.totals()
                        },
                    )
                })
                .collect(),
            Self::Rows { c, .. } => {
                let task = rows_per_task(c) * c;
                let partial: Vec<Vec<(f64, f64)>> = a
                    .par_chunks(task)
                    .zip(b.par_chunks(task))
                    .map(|(a, b)| {
                        crate::isa::vectorized(
                            isa,
                            #[inline(always)]
                            || {
                                let (mut sa, mut sab) = (vec![0.0; c], vec![0.0; c]);
                                // Four rows per pass over the accumulators (their loads and
                                // stores, not the arithmetic, bound a pass).
                                let (quads_a, quads_b) = (a.chunks_exact(4 * c), b.chunks_exact(4 * c));
                                let rest = (quads_a.remainder(), quads_b.remainder());
                                for (qa, qb) in quads_a.zip(quads_b) {
                                    add_rows::<T, 4>(&mut sa, &mut sab, qa, qb);
                                }
                                for (ra, rb) in rest.0.chunks_exact(c).zip(rest.1.chunks_exact(c)) {
                                    add_rows::<T, 1>(&mut sa, &mut sab, ra, rb);
                                }
                                sa.into_iter().zip(sab).collect()
                            },
                        )
                    })
                    .collect();
                let mut total = vec![(0.0, 0.0); c];
                for part in partial {
                    for (t, p) in total.iter_mut().zip(part) {
                        t.0 += p.0;
                        t.1 += p.1;
                    }
                }
                total
            }
        }
    }

    /// Writes `out[i] = f(k, x[i], y[i])` for every `i` of `x`, all of
    /// `out[..x.len()]`, where `k` holds the three per-channel `coefficients` of
    /// `i`'s channel (one slice per coefficient, so a row's loop vectorises).
    fn map_to<T: Element>(
        self,
        (x, y): (&[T], &[T]),
        coefficients: [&[T]; 3],
        out: &mut [MaybeUninit<T>],
        f: impl Fn([T; 3], T, T) -> T + Sync,
    ) {
        let out = &mut out[..x.len()];
        let [k0, k1, k2] = coefficients;
        let isa = crate::isa::active();
        match self {
            Self::Planes { c, plane, .. } => {
                out.par_chunks_mut(plane).zip(x.par_chunks(plane)).zip(y.par_chunks(plane)).enumerate().for_each(
                    |(i, ((o, x), y))| {
                        let k = [k0[i % c], k1[i % c], k2[i % c]];
                        crate::isa::vectorized(isa, || {
                            o.iter_mut().zip(x).zip(y).for_each(|((o, &x), &y)| {
                                o.write(f(k, x, y));
                            })
                        });
                    },
                )
            }
            Self::Rows { c, .. } => {
                let task = rows_per_task(c) * c;
                out.par_chunks_mut(task).zip(x.par_chunks(task)).zip(y.par_chunks(task)).for_each(|((o, x), y)| {
                    crate::isa::vectorized(isa, || {
                        for ((o, x), y) in o.chunks_exact_mut(c).zip(x.chunks_exact(c)).zip(y.chunks_exact(c)) {
                            // Zipped, not indexed: no bounds checks, so the row vectorises.
                            let k = k0.iter().zip(k1).zip(k2).map(|((&a, &b), &c)| [a, b, c]);
                            for (((o, &x), &y), k) in o.iter_mut().zip(x).zip(y).zip(k) {
                                o.write(f(k, x, y));
                            }
                        }
                    })
                })
            }
        }
    }

    /// A new vector with `out[i] = f(coefficients of i's channel, x[i], y[i])` (see [`Self::map_to`]).
    fn map<T: Element>(
        self,
        (x, y): (&[T], &[T]),
        coefficients: [&[T]; 3],
        f: impl Fn([T; 3], T, T) -> T + Sync,
    ) -> Vec<T> {
        // SAFETY: `map_to` writes every value; `x` has the shape `self` describes, so
        // its planes (rows) pair one to one with those of the output.
        unsafe { written(x.len(), |out| self.map_to((x, y), coefficients, out, f)) }
    }
}

/// `Σ a`, `Σ a·b` of `R` rows of `c = sa.len()` channels each, added to `sa`, `sab`.
#[inline(always)]
fn add_rows<T: Element, const R: usize>(sa: &mut [f64], sab: &mut [f64], a: &[T], b: &[T]) {
    let c = sa.len();
    let sab = &mut sab[..c];
    let a: [&[T]; R] = std::array::from_fn(|r| &a[r * c..][..c]);
    let b: [&[T]; R] = std::array::from_fn(|r| &b[r * c..][..c]);
    // Every slice has length `c`, which the compiler can see: no bounds checks in
    // the loop over `k`, which vectorises.
    for k in 0..c {
        let (mut s, mut sp) = (0.0, 0.0);
        for r in 0..R {
            let v = a[r][k].to_f64();
            s += v;
            sp += v * b[r][k].to_f64();
        }
        sa[k] += s;
        sab[k] += sp;
    }
}

/// Per-channel `(mean, biased variance)`, accumulated in f64 (`σ² = E[x²] − μ²`,
/// exact enough in f64 for activations).
fn channel_moments<T: Element>(x: &[T], ch: Channels) -> Vec<(f64, f64)> {
    let count = ch.count() as f64;
    ch.sums(x, x)
        .into_iter()
        .map(|(s, ss)| {
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
    fn of<T: Element>(&self, x: &[T], ch: Channels) -> &[(f64, f64)] {
        self.0.get_or_init(|| channel_moments(x, ch))
    }
}

/// `γ x̂ + β`, through a leaky ReLU of negative slope `slope` if given.
fn forward<T: Element>(
    x: &[T],
    (gamma, beta): (&[T], &[T]),
    ch: Channels,
    eps: f64,
    moments: &[(f64, f64)],
    slope: Option<f64>,
) -> Vec<T> {
    // y = x · scale + shift per channel.
    let (scale, shift): (Vec<T>, Vec<T>) = (0..ch.channels())
        .map(|k| {
            let (mean, var) = moments[k];
            let scale = gamma[k].to_f64() / (var + eps).sqrt();
            (T::from_f64(scale), T::from_f64(beta[k].to_f64() - mean * scale))
        })
        .unzip();
    let apply = |[scale, shift, _]: [T; 3], v: T| {
        let mut z = v * scale;
        z += shift;
        z
    };
    let coefficients = [&scale[..], &shift, &shift]; // the third slot unused
    match slope.map(T::from_f64) {
        None => ch.map((x, x), coefficients, |k, v, _| apply(k, v)),
        // Both sides computed, then selected: no branch on the sign of each value.
        Some(a) => ch.map((x, x), coefficients, move |k, v, _| {
            let z = apply(k, v);
            let negative = z * a;
            if z > T::ZERO {
                z
            } else {
                negative
            }
        }),
    }
}

/// `[dx | dγ | dβ]` packed in one vector.
fn backward<T: Element>(x: &[T], dy: &[T], gamma: &[T], ch: Channels, eps: f64, moments: &[(f64, f64)]) -> Vec<T> {
    let (c, count) = (ch.channels(), ch.count() as f64);
    // Per channel (Σ dy, Σ dy·x̂), with Σ dy·x̂ = (Σ dy·x − μ Σ dy) / σ.
    let sums: Vec<(f64, f64)> = ch
        .sums(dy, x)
        .into_iter()
        .zip(moments)
        .map(|((s_dy, s_dy_x), &(mean, var))| (s_dy, (s_dy_x - mean * s_dy) / (var + eps).sqrt()))
        .collect();
    // dx = k (dy − m_dy − x̂ m_dyx) with x̂ = (x − μ) rstd, as dy·per_dy + x·per_x + offset.
    let mut coefficients: [Vec<T>; 3] = std::array::from_fn(|_| Vec::with_capacity(c));
    for k in 0..c {
        let (mean, var) = moments[k];
        let rstd = 1.0 / (var + eps).sqrt();
        let scale = gamma[k].to_f64() * rstd;
        let (m_dy, m_dyx) = (sums[k].0 / count, sums[k].1 / count);
        let per_x = -scale * m_dyx * rstd;
        coefficients[0].push(T::from_f64(scale));
        coefficients[1].push(T::from_f64(per_x));
        coefficients[2].push(T::from_f64(-scale * m_dy - per_x * mean));
    }
    let write = |out: &mut [MaybeUninit<T>]| {
        let (dx, rest) = out.split_at_mut(x.len());
        let [per_dy, per_x, offset] = &coefficients;
        ch.map_to((dy, x), [per_dy, per_x, offset], dx, |[per_dy, per_x, offset], g, v| {
            let mut z = g * per_dy;
            z += v * per_x;
            z += offset;
            z
        });
        for (k, s) in sums.iter().enumerate() {
            rest[k].write(T::from_f64(s.1));
            rest[c + k].write(T::from_f64(s.0));
        }
    };
    // SAFETY: `map_to` writes all of `dx`, the loop `rest`'s `2c` values.
    unsafe { written(x.len() + 2 * c, write) }
}

struct BatchNormOp {
    eps: f64,
    layout: ImageLayout,
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
        let dims = Channels::of(l1, self.layout, "batch norm")?;
        check_affine(l2, l3, dims.channels())?;
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
            &BatchNormGradOp { eps: self.eps, layout: self.layout, moments: self.moments.clone() },
        )?;
        unpack_grads(&packed, x, gamma)
    }
}

/// `(dx, dγ, dβ)` from a backward op's `[dx | dγ | dβ]`.
pub(crate) fn unpack_grads(
    packed: &Tensor,
    x: &Tensor,
    gamma: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    let (len, c) = (x.elem_count(), gamma.elem_count());
    let dx = packed.narrow(0, 0, len)?.reshape(x.shape())?;
    Ok((Some(dx), Some(packed.narrow(0, len, c)?), Some(packed.narrow(0, len + c, c)?)))
}

pub(crate) fn check_affine(gamma: &Layout, beta: &Layout, c: usize) -> Result<()> {
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
    layout: ImageLayout,
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
        let dims = Channels::of(l1, self.layout, "batch norm backward")?;
        let len = l1.shape().elem_count();
        let out = match typed(self.name(), [(s1, l1), (s2, l2), (s3, l3)])? {
            Typed::F32([x, dy, g]) => CpuStorage::F32(backward(x, dy, g, dims, self.eps, self.moments.of(x, dims))),
            Typed::F64([x, dy, g]) => CpuStorage::F64(backward(x, dy, g, dims, self.eps, self.moments.of(x, dims))),
        };
        Ok((out, Shape::from(len + 2 * dims.channels())))
    }
}

/// `(2, C)`: per-channel batch mean and biased variance (no gradient).
struct MomentsOp;

impl CustomOp1 for MomentsOp {
    fn name(&self) -> &'static str {
        "ganzoo-channel-moments"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let ch = Channels::of(l, ImageLayout::Nchw, "channel moments")?;
        let pack = |m: Vec<(f64, f64)>| m.iter().map(|p| p.0).chain(m.iter().map(|p| p.1)).collect::<Vec<f64>>();
        let out = match typed(self.name(), [(s, l)])? {
            Typed::F32([x]) => CpuStorage::F32(pack(channel_moments(x, ch)).iter().map(|&v| v as f32).collect()),
            Typed::F64([x]) => CpuStorage::F64(pack(channel_moments(x, ch))),
        };
        Ok((out, Shape::from((2, ch.channels()))))
    }
}

/// Training-mode batch norm of `x (N, C, H, W)` with per-channel `gamma`, `beta`.
pub fn batch_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    normalise(x, gamma, beta, eps, ImageLayout::Nchw, Moments::default(), None)
}

/// `leaky_relu(batch_norm(x, γ, β, ε), slope)` as one op (`slope` 0: ReLU).
pub fn batch_norm_leaky_relu(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64, slope: f64) -> Result<Tensor> {
    normalise(x, gamma, beta, eps, ImageLayout::Nchw, Moments::default(), Some(slope))
}

/// The forward op on `x`, keeping its moments in `moments`.
fn normalise(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    layout: ImageLayout,
    moments: Moments,
    slope: Option<f64>,
) -> Result<Tensor> {
    check_slope(slope)?;
    #[cfg(feature = "cuda")]
    if x.device().is_cuda() {
        return Ok(cuda_normalise(x, gamma, beta, eps, (layout, slope), None)?.0);
    }
    x.contiguous()?.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, BatchNormOp { eps, layout, moments, slope })
}

fn check_slope(slope: Option<f64>) -> Result<()> {
    if slope.is_some_and(|a| !(0.0..=1.0).contains(&a)) {
        candle_core::bail!("batch norm + leaky ReLU: the slope must be in [0, 1], got {slope:?}");
    }
    Ok(())
}

/// The CUDA op (NCHW only) and its `(4, C)` statistics (mean, variance, scale, shift).
#[cfg(feature = "cuda")]
fn cuda_normalise(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    (layout, slope): (ImageLayout, Option<f64>),
    running: Option<(&RunningStats<'_>, f64)>,
) -> Result<(Tensor, Tensor)> {
    if layout != ImageLayout::Nchw {
        candle_core::bail!("batch norm: CUDA tensors are NCHW only");
    }
    crate::cuda::batch_norm::normalise(x, gamma, beta, eps, slope, running)
}

/// [`batch_norm`] (followed by a leaky ReLU of negative slope `slope` if given, as
/// [`batch_norm_leaky_relu`]), also returning the batch's per-channel mean and biased
/// variance as two `(C,)` tensors without gradient (the moments the normalisation
/// used; what [`channel_mean_var`] gives, without a second pass over `x`). `x` is
/// `(N, C, H, W)` or, with `layout` [`ImageLayout::Nhwc`], `(N, H, W, C)`.
pub fn batch_norm_with_moments(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    slope: Option<f64>,
    layout: ImageLayout,
) -> Result<(Tensor, Tensor, Tensor)> {
    #[cfg(feature = "cuda")]
    if x.device().is_cuda() {
        check_slope(slope)?;
        let (y, stats) = cuda_normalise(x, gamma, beta, eps, (layout, slope), None)?;
        return Ok((y, stats.get(0)?, stats.get(1)?));
    }
    let moments = Moments::default();
    let y = normalise(x, gamma, beta, eps, layout, moments.clone(), slope)?;
    let Some(m) = moments.0.get() else { candle_core::bail!("batch norm: the forward op left no moments") };
    let (mean, var): (Vec<f64>, Vec<f64>) = m.iter().copied().unzip();
    let c = mean.len();
    let as_tensor = |v: Vec<f64>| Tensor::from_vec(v, c, x.device())?.to_dtype(x.dtype());
    Ok((y, as_tensor(mean)?, as_tensor(var)?))
}

/// A batch-norm layer's running statistics, for [`batch_norm_updating`]: `(C,)` tensors of
/// the weights' dtype, updated in place as PyTorch does, `r ← (1 − momentum)·r +
/// momentum·s`, `s` the batch's mean or its unbiased variance.
#[derive(Clone, Copy, Debug)]
pub struct RunningStats<'a> {
    pub mean: &'a Tensor,
    pub var: &'a Tensor,
    pub momentum: f64,
}

/// [`batch_norm_with_moments`]'s output, `running` updated from its moments
/// ([`moving_average`](crate::moving_average), the variance unbiased by `n/(n − 1)`, `n`
/// the values per channel). On CUDA (f32, one device) the update is part of the
/// statistics' launch instead of two more; the same values either way.
pub fn batch_norm_updating(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    (slope, layout): (Option<f64>, ImageLayout),
    running: &RunningStats<'_>,
) -> Result<Tensor> {
    let n = x.elem_count() / gamma.elem_count().max(1);
    let unbias = n as f64 / (n.max(2) - 1) as f64;
    #[cfg(feature = "cuda")]
    if crate::cuda::multi_tensor::takes([x, gamma, beta, running.mean, running.var].into_iter()) {
        check_slope(slope)?;
        return Ok(cuda_normalise(x, gamma, beta, eps, (layout, slope), Some((running, unbias)))?.0);
    }
    let (y, mean, var) = batch_norm_with_moments(x, gamma, beta, eps, slope, layout)?;
    crate::moving_average(running.mean, &mean, 1.0 - running.momentum, 1.0)?;
    crate::moving_average(running.var, &var, 1.0 - running.momentum, unbias)?;
    Ok(y)
}

/// Per-channel batch mean and biased variance of `x (N, C, H, W)`, as two `(C,)` tensors.
pub fn channel_mean_var(x: &Tensor) -> Result<(Tensor, Tensor)> {
    #[cfg(feature = "cuda")]
    if x.device().is_cuda() {
        return crate::cuda::batch_norm::mean_var(x);
    }
    let m = x.detach().contiguous()?.apply_op1_no_bwd(&MomentsOp)?;
    Ok((m.get(0)?, m.get(1)?))
}
