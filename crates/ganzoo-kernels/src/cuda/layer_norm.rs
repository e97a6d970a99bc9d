//! Layer norm's CUDA launches, one per op of `crate::layer_norm` (whose `cuda_fwd`s call
//! them; the ops' backward passes are the CPU ones, built of the same ops): the forward
//! pass, the affine gradients, the input gradient `Q` and its derivative in `x`.
//! Operands are `(B, N)` samples, contiguous f32.

use candle_core::cuda_backend::cudarc::driver::{CudaView, PushKernelArg};
use candle_core::cuda_backend::{CudaStorage, WrapErr};
use candle_core::{Layout, Result};

use super::{block_each, elementwise, view, MODULE, PTX};

/// `y = x̂ ⊙ γ + β` for samples of `n` values.
pub(crate) fn forward(
    x: (&CudaStorage, &Layout),
    gamma: (&CudaStorage, &Layout),
    beta: (&CudaStorage, &Layout),
    n: usize,
    eps: f64,
) -> Result<CudaStorage> {
    let op = "ganzoo-layer-norm (cuda)";
    let (xs, gs, bs) = (view(x.0, x.1, op)?, view(gamma.0, gamma.1, op)?, view(beta.0, beta.1, op)?);
    per_sample_kernel("gz_ln_forward", x.0, &[&xs, &gs, &bs], n, eps)
}

/// `Q(x, g)`, the input gradient for an upstream gradient `g` at `x̂`.
pub(crate) fn input_grad(
    x: (&CudaStorage, &Layout),
    g: (&CudaStorage, &Layout),
    n: usize,
    eps: f64,
) -> Result<CudaStorage> {
    let op = "ganzoo-layer-norm-input-grad (cuda)";
    let (xs, gs) = (view(x.0, x.1, op)?, view(g.0, g.1, op)?);
    per_sample_kernel("gz_ln_input_grad", x.0, &[&xs, &gs], n, eps)
}

/// `∂⟨h, Q(x, g)⟩/∂x`.
pub(crate) fn second(
    x: (&CudaStorage, &Layout),
    g: (&CudaStorage, &Layout),
    h: (&CudaStorage, &Layout),
    n: usize,
    eps: f64,
) -> Result<CudaStorage> {
    let op = "ganzoo-layer-norm-second-derivative (cuda)";
    let (xs, gs, hs) = (view(x.0, x.1, op)?, view(g.0, g.1, op)?, view(h.0, h.1, op)?);
    per_sample_kernel("gz_ln_second", x.0, &[&xs, &gs, &hs], n, eps)
}

/// A kernel `(inputs…, out, n, eps)` with one block per sample of `inputs[0]` (`x`), into
/// a new storage of `x`'s length.
fn per_sample_kernel(
    name: &str,
    storage: &CudaStorage,
    inputs: &[&CudaView<'_, f32>],
    n: usize,
    eps: f64,
) -> Result<CudaStorage> {
    let device = &storage.device;
    let len = inputs[0].len();
    let samples = len.checked_div(n).unwrap_or(0);
    // SAFETY: each sample's block writes its `n` values.
    let out = unsafe { device.alloc::<f32>(len)? };
    if samples > 0 {
        let func = device.get_or_load_custom_func(name, MODULE, PTX)?;
        let mut b = func.builder();
        for input in inputs {
            b.arg(*input);
        }
        b.arg(&out).arg(&n).arg(&eps);
        // SAFETY: argument types and count match the kernel's signature in kernels.cu.
        unsafe { b.launch(block_each(samples)) }.w()?;
    }
    Ok(CudaStorage::wrap_cuda_slice(out, device.clone()))
}

/// `[Σ_b dy ⊙ x̂ | Σ_b dy]` (`2n` values): each sample's moments, then one thread per
/// sample element summing over the samples in order.
pub(crate) fn affine_grad(
    x: (&CudaStorage, &Layout),
    dy: (&CudaStorage, &Layout),
    n: usize,
    eps: f64,
) -> Result<CudaStorage> {
    let op = "ganzoo-layer-norm-affine-grad (cuda)";
    let (xs, dys) = (view(x.0, x.1, op)?, view(dy.0, dy.1, op)?);
    let device = &x.0.device;
    let samples = xs.len().checked_div(n).unwrap_or(0);
    let b_int = super::int(samples, "batch")?;
    // SAFETY: the moments kernel writes both values of every sample.
    let moments = unsafe { device.alloc::<f64>(2 * samples.max(1))? };
    // SAFETY: the affine kernel writes all `2n` outputs.
    let out = unsafe { device.alloc::<f32>(2 * n)? };
    if samples > 0 {
        let func = device.get_or_load_custom_func("gz_ln_moments", MODULE, PTX)?;
        let mut b = func.builder();
        b.arg(&xs).arg(&moments).arg(&n).arg(&eps);
        // SAFETY: argument types and count match the kernel's signature in kernels.cu.
        unsafe { b.launch(block_each(samples)) }.w()?;
    }
    if n > 0 {
        let func = device.get_or_load_custom_func("gz_ln_affine_grad", MODULE, PTX)?;
        let mut b = func.builder();
        b.arg(&xs).arg(&dys).arg(&moments).arg(&out).arg(&b_int).arg(&n);
        // SAFETY: argument types and count match the kernel's signature in kernels.cu.
        unsafe { b.launch(elementwise(n)) }.w()?;
    }
    Ok(CudaStorage::wrap_cuda_slice(out, device.clone()))
}
