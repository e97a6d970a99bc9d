//! Leaky ReLU, `y = x` for `x > 0`, `a·x` otherwise (Maas et al. 2013), fused into one
//! pass, with a backward `dx = dy · (x > 0 ? 1 : a)` that is itself differentiable
//! in `dy` (its derivative in `x` is zero almost everywhere).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

use crate::elementwise::zip_map;
use crate::gemm::Element;
use crate::storage::{typed, Typed};

/// `g · (x > 0 ? 1 : a)`; the forward pass is the case `g = x`. The slope is a
/// local value and the choice a select, so the loop vectorises (no mispredicted
/// branch per element on activations of random sign).
fn masked<T: Element>(x: &[T], g: &[T], a: T) -> Vec<T> {
    zip_map(x, g, move |v, g| if v > T::ZERO { g } else { g * a })
}

/// `max(y, a·y)` over `y`'s own values (as [`masked`] with `g = x`), for an op that
/// applies the activation to the output it just computed.
pub(crate) fn leaky_relu_in_place(y: CpuStorage, a: f64) -> Result<CpuStorage> {
    fn each<T: Element>(mut v: Vec<T>, a: T) -> Vec<T> {
        v.iter_mut().for_each(|e| *e = if *e > T::ZERO { *e } else { *e * a });
        v
    }
    Ok(match y {
        CpuStorage::F32(v) => CpuStorage::F32(each(v, a as f32)),
        CpuStorage::F64(v) => CpuStorage::F64(each(v, a)),
        _ => candle_core::bail!("leaky ReLU: f32 or f64 only"),
    })
}

struct LeakyReluOp(f64);

impl CustomOp1 for LeakyReluOp {
    fn name(&self) -> &'static str {
        "ganzoo-leaky-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let a = self.0;
        let out = match typed(self.name(), [(s, l)])? {
            Typed::F32([x]) => CpuStorage::F32(masked(x, x, a as f32)),
            Typed::F64([x]) => CpuStorage::F64(masked(x, x, a)),
        };
        Ok((out, l.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::cuda_backend::CudaStorage,
        l: &Layout,
    ) -> Result<(candle_core::cuda_backend::CudaStorage, Shape)> {
        Ok((crate::cuda::mask((s, l), (s, l), self.0)?, l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(leaky_relu_grad(x, dy, self.0)?))
    }
}

/// `(x, dy) → dy · (x > 0 ? 1 : a)`.
struct LeakyReluGradOp(f64);

impl CustomOp2 for LeakyReluGradOp {
    fn name(&self) -> &'static str {
        "ganzoo-leaky-relu-backward"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            candle_core::bail!("leaky ReLU backward: input {:?} and gradient {:?} differ", l1.dims(), l2.dims());
        }
        let out = match typed(self.name(), [(s1, l1), (s2, l2)])? {
            Typed::F32([x, dy]) => CpuStorage::F32(masked(x, dy, self.0 as f32)),
            Typed::F64([x, dy]) => CpuStorage::F64(masked(x, dy, self.0)),
        };
        Ok((out, l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::cuda_backend::CudaStorage,
        l1: &Layout,
        s2: &candle_core::cuda_backend::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::cuda_backend::CudaStorage, Shape)> {
        if l1.shape() != l2.shape() {
            candle_core::bail!("leaky ReLU backward: input {:?} and gradient {:?} differ", l1.dims(), l2.dims());
        }
        Ok((crate::cuda::mask((s1, l1), (s2, l2), self.0)?, l1.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _: &Tensor, _: &Tensor, g: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((None, Some(leaky_relu_grad(x, g, self.0)?)))
    }
}

/// `max(x, a·x)` for a slope `0 ≤ a ≤ 1`.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op1(LeakyReluOp(slope))
}

/// `dy · (x > 0 ? 1 : a)`. Its derivative in `x` is zero almost everywhere, so `x`
/// enters as a constant (detached: Candle's backprop needs a gradient for every
/// tracked operand of an op).
pub fn leaky_relu_grad(x: &Tensor, dy: &Tensor, slope: f64) -> Result<Tensor> {
    x.detach().contiguous()?.apply_op2(&dy.contiguous()?, LeakyReluGradOp(slope))
}
