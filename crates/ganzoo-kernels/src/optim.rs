//! Fused, in-place optimiser updates (PyTorch's definitions): one pass per moment
//! and one for the parameter, instead of a chain of allocating tensor ops.
//!
//! Adam (Kingma & Ba 2015): `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
//! `θ ← θ − lr · (m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)`.
//! RMSprop (Tieleman & Hinton 2012): `v ← αv + (1−α)g²`, `θ ← θ − lr · g/(√v + ε)`;
//! TensorFlow 1 puts ε inside the root: `θ ← θ − lr · g/√(v + ε)`.

#[cfg(feature = "cuda")]
use candle_core::cuda_backend::CudaStorage;
use candle_core::{bail, CpuStorage, InplaceOp1, InplaceOp2, InplaceOp3, Layout, Result, Tensor};
use rayon::prelude::*;

use crate::gemm::Element;
use crate::storage::slice;

const GRAIN: usize = 1 << 14;

fn target<'a, T>(data: &'a mut [T], l: &Layout, op: &'static str) -> Result<&'a mut [T]> {
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&mut data[start..end]),
        None => Err(candle_core::Error::RequiresContiguous { op }),
    }
}

/// `dst ← β·dst + (1 − β)·f(g·scale)`, with `f(v) = v` or `v²`.
struct MovingAverage {
    beta: f64,
    scale: f64,
    square: bool,
}

impl MovingAverage {
    fn run<T: Element>(&self, dst: &mut [T], g: &[T]) {
        let (b, scale, square) = (self.beta, self.scale, self.square);
        let isa = crate::isa::active();
        dst.par_chunks_mut(GRAIN).zip(g.par_chunks(GRAIN)).for_each(|(d, g)| {
            crate::isa::vectorized(isa, || {
                for (d, &g) in d.iter_mut().zip(g) {
                    let g = g.to_f64() * scale;
                    *d = T::from_f64(b * d.to_f64() + (1.0 - b) * if square { g * g } else { g });
                }
            })
        });
    }
}

impl InplaceOp2 for MovingAverage {
    fn name(&self) -> &'static str {
        "ganzoo-moving-average"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        same_shape(l1, l2, self.name())?;
        match (s1, s2) {
            (CpuStorage::F32(d), CpuStorage::F32(g)) => {
                self.run(target(d, l1, self.name())?, slice(g, l2, self.name())?)
            }
            (CpuStorage::F64(d), CpuStorage::F64(g)) => {
                self.run(target(d, l1, self.name())?, slice(g, l2, self.name())?)
            }
            _ => bail!("{}: f32 or f64 operands of one dtype only", self.name()),
        }
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s1: &mut CudaStorage, l1: &Layout, s2: &CudaStorage, l2: &Layout) -> Result<()> {
        same_shape(l1, l2, self.name())?;
        crate::cuda::moving_average((s1, l1), (s2, l2), (self.beta, self.scale), self.square)
    }
}

/// `θ ← θ − lr · a / (√(b · b_scale) + ε) · a_scale`: Adam with `(a, b) = (m, v)` and
/// bias corrections as scales, RMSprop with `(a, b) = (g, v)` and unit scales; with
/// `eps_in_root`, `√(b · b_scale + ε)` instead.
struct ScaledStep {
    lr: f64,
    a_scale: f64,
    b_scale: f64,
    eps: f64,
    eps_in_root: bool,
}

impl ScaledStep {
    fn run<T: Element>(&self, theta: &mut [T], a: &[T], b: &[T]) {
        let Self { lr, a_scale, b_scale, eps, eps_in_root } = *self;
        let isa = crate::isa::active();
        theta.par_chunks_mut(GRAIN).zip(a.par_chunks(GRAIN).zip(b.par_chunks(GRAIN))).for_each(|(t, (a, b))| {
            crate::isa::vectorized(isa, || {
                for ((t, &a), &b) in t.iter_mut().zip(a).zip(b) {
                    let b = b.to_f64() * b_scale;
                    let root = if eps_in_root { (b + eps).sqrt() } else { b.sqrt() + eps };
                    let step = lr * (a.to_f64() * a_scale) / root;
                    *t = T::from_f64(t.to_f64() - step);
                }
            })
        });
    }
}

impl InplaceOp3 for ScaledStep {
    fn name(&self) -> &'static str {
        "ganzoo-optimiser-step"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        same_shape(l1, l2, self.name())?;
        same_shape(l1, l3, self.name())?;
        let n = self.name();
        match (s1, s2, s3) {
            (CpuStorage::F32(t), CpuStorage::F32(a), CpuStorage::F32(b)) => {
                self.run(target(t, l1, n)?, slice(a, l2, n)?, slice(b, l3, n)?)
            }
            (CpuStorage::F64(t), CpuStorage::F64(a), CpuStorage::F64(b)) => {
                self.run(target(t, l1, n)?, slice(a, l2, n)?, slice(b, l3, n)?)
            }
            _ => bail!("{n}: f32 or f64 operands of one dtype only"),
        }
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &mut CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> Result<()> {
        same_shape(l1, l2, self.name())?;
        same_shape(l1, l3, self.name())?;
        let Self { lr, a_scale, b_scale, eps, eps_in_root } = *self;
        let scalars = crate::cuda::StepScalars { lr, a_scale, b_scale, eps, eps_in_root };
        crate::cuda::scaled_step((s1, l1), (s2, l2), (s3, l3), &scalars)
    }
}

fn same_shape(a: &Layout, b: &Layout, op: &str) -> Result<()> {
    if a.shape() != b.shape() {
        bail!("{op}: shapes {:?} and {:?} differ", a.dims(), b.dims());
    }
    Ok(())
}

/// One Adam step at step number `t ≥ 1`, updating `theta`, `m` and `v` in place.
#[allow(clippy::too_many_arguments)]
pub fn adam_step(
    theta: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    t: u64,
    lr: f64,
    betas: (f64, f64),
    eps: f64,
) -> Result<()> {
    let g = g.contiguous()?;
    m.inplace_op2(&g, &MovingAverage { beta: betas.0, scale: 1.0, square: false })?;
    v.inplace_op2(&g, &MovingAverage { beta: betas.1, scale: 1.0, square: true })?;
    let (a_scale, b_scale) = bias_corrections(t, betas);
    theta.inplace_op3(m, v, &ScaledStep { lr, a_scale, b_scale, eps, eps_in_root: false })
}

/// Adam's bias corrections at step `t` as the scales of `m` and `v`: `1/(1 − β₁ᵗ)`, `1/(1 − β₂ᵗ)`.
pub(crate) fn bias_corrections(t: u64, (beta1, beta2): (f64, f64)) -> (f64, f64) {
    (1.0 / (1.0 - beta1.powi(t as i32)), 1.0 / (1.0 - beta2.powi(t as i32)))
}

/// One RMSprop step (smoothing `alpha`), updating `theta` and `v` in place; ε inside
/// the root when `eps_in_root` (TensorFlow), else outside (PyTorch).
pub fn rmsprop_step(
    theta: &Tensor,
    g: &Tensor,
    v: &Tensor,
    lr: f64,
    alpha: f64,
    (eps, eps_in_root): (f64, bool),
) -> Result<()> {
    let g = g.contiguous()?;
    v.inplace_op2(&g, &MovingAverage { beta: alpha, scale: 1.0, square: true })?;
    theta.inplace_op3(&g, v, &ScaledStep { lr, a_scale: 1.0, b_scale: 1.0, eps, eps_in_root })
}

/// One parameter's tensors for [`optimiser_steps`]: the parameter, its gradient, Adam's
/// first moments (`None` for RMSprop) and the second moments, all of one shape.
#[derive(Clone, Copy, Debug)]
pub struct StepSlot<'a> {
    pub theta: &'a Tensor,
    pub grad: &'a Tensor,
    pub m: Option<&'a Tensor>,
    pub v: &'a Tensor,
}

/// The update [`optimiser_steps`] applies to every slot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepRule {
    /// Adam at step number `t ≥ 1` (as [`adam_step`]).
    Adam { t: u64, lr: f64, betas: (f64, f64), eps: f64 },
    /// RMSprop with smoothing `alpha`, ε inside the root with `eps_in_root` (as [`rmsprop_step`]).
    RmsProp { lr: f64, alpha: f64, eps: f64, eps_in_root: bool },
}

/// One optimiser step on every slot, in place. Where every tensor is f32 on one CUDA
/// device (a build with `cuda`), one kernel launch updates them all — the idea of
/// PyTorch's foreach optimisers: a GPU's step is otherwise three launches a parameter,
/// paid on the host. Elsewhere each slot is [`adam_step`] or [`rmsprop_step`]. The same
/// values either way, bit for bit.
pub fn optimiser_steps(slots: &[StepSlot<'_>], rule: StepRule) -> Result<()> {
    if slots.is_empty() {
        return Ok(());
    }
    #[cfg(feature = "cuda")]
    if crate::cuda::multi_tensor::takes(slots.iter().flat_map(|s| [s.theta, s.grad, s.m.unwrap_or(s.v), s.v])) {
        return crate::cuda::multi_tensor::optimiser_steps(slots, rule);
    }
    for s in slots {
        match (rule, s.m) {
            (StepRule::Adam { t, lr, betas, eps }, Some(m)) => adam_step(s.theta, s.grad, m, s.v, t, lr, betas, eps)?,
            (StepRule::Adam { .. }, None) => bail!("optimiser steps: Adam without first moments"),
            (StepRule::RmsProp { lr, alpha, eps, eps_in_root }, _) => {
                rmsprop_step(s.theta, s.grad, s.v, lr, alpha, (eps, eps_in_root))?
            }
        }
    }
    Ok(())
}

/// Clamps every tensor of `vs` to `[lo, hi]` in place ([`clamp_in_place`]): on one CUDA
/// device, f32, in one launch for all.
pub fn clamp_all(vs: &[&Tensor], lo: f64, hi: f64) -> Result<()> {
    if lo.partial_cmp(&hi).is_none_or(|o| o == std::cmp::Ordering::Greater) {
        bail!("clamp: the bounds [{lo}, {hi}] are empty");
    }
    #[cfg(feature = "cuda")]
    if !vs.is_empty() && crate::cuda::multi_tensor::takes(vs.iter().copied()) {
        return crate::cuda::multi_tensor::clamp_all(vs, (lo as f32, hi as f32));
    }
    vs.iter().try_for_each(|v| clamp_in_place(v, lo, hi))
}

/// `d ← β·d + (1 − β)·scale·g` in place: batch norm's running statistics (`β` one minus
/// the momentum, `scale` the variance's `n/(n − 1)`), computed in f64.
pub fn moving_average(d: &Tensor, g: &Tensor, beta: f64, scale: f64) -> Result<()> {
    d.inplace_op2(&g.contiguous()?, &MovingAverage { beta, scale, square: false })
}

/// `v ← clamp(v, lo, hi)` (NaN stays NaN).
struct Clamp {
    lo: f64,
    hi: f64,
}

impl Clamp {
    fn run<T: Element>(&self, v: &mut [T]) {
        let (lo, hi) = (T::from_f64(self.lo), T::from_f64(self.hi));
        v.par_chunks_mut(GRAIN).for_each(|chunk| {
            for x in chunk {
                *x = if *x < lo {
                    lo
                } else if *x > hi {
                    hi
                } else {
                    *x
                };
            }
        });
    }
}

impl InplaceOp1 for Clamp {
    fn name(&self) -> &'static str {
        "ganzoo-clamp"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> Result<()> {
        match s {
            CpuStorage::F32(v) => self.run(target(v, l, self.name())?),
            CpuStorage::F64(v) => self.run(target(v, l, self.name())?),
            _ => bail!("{}: f32 or f64 only", self.name()),
        }
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &mut CudaStorage, l: &Layout) -> Result<()> {
        crate::cuda::clamp((s, l), (self.lo as f32, self.hi as f32))
    }
}

/// Clamps `v` to `[lo, hi]` in place: WGAN's weight clipping, one pass per variable.
pub fn clamp_in_place(v: &Tensor, lo: f64, hi: f64) -> Result<()> {
    if lo.partial_cmp(&hi).is_none_or(|o| o == std::cmp::Ordering::Greater) {
        bail!("clamp: the bounds [{lo}, {hi}] are empty");
    }
    v.inplace_op1(&Clamp { lo, hi })
}
