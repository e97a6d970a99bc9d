//! Layer norm's CUDA launches, one per op of `crate::layer_norm` (whose `cuda_fwd`s call
//! them; the ops' backward passes are the CPU ones, built of the same ops): the forward
//! pass, the affine gradients, the input gradient `Q` and its derivative in `x`.
//! Operands are `(B, N)` samples, contiguous f32.

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, LaunchConfig};
use candle_core::cuda_backend::{CudaDevice, CudaStorage};
use candle_core::{Layout, Result};

use super::{block_each, elementwise, launch, view};

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
    per_sample(x.0, xs.len(), n, |device, config, y| launch::gz_ln_forward(device, config, &xs, &gs, &bs, y, &n, &eps))
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
    per_sample(x.0, xs.len(), n, |device, config, out| {
        launch::gz_ln_input_grad(device, config, &xs, &gs, out, &n, &eps)
    })
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
    per_sample(x.0, xs.len(), n, |device, config, out| {
        launch::gz_ln_second(device, config, &xs, &gs, &hs, out, &n, &eps)
    })
}

/// A new storage of `len` values (on `storage`'s device) written by `launch` with one
/// block per sample of `n` values.
fn per_sample(
    storage: &CudaStorage,
    len: usize,
    n: usize,
    launch: impl FnOnce(&CudaDevice, LaunchConfig, &mut CudaSlice<f32>) -> Result<()>,
) -> Result<CudaStorage> {
    let device = &storage.device;
    let samples = len.checked_div(n).unwrap_or(0);
    // SAFETY: each sample's block writes its `n` values.
    let mut out = unsafe { device.alloc::<f32>(len)? };
    if samples > 0 {
        launch(device, block_each(samples), &mut out)?;
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
    let mut moments = unsafe { device.alloc::<f64>(2 * samples.max(1))? };
    // SAFETY: the affine kernel writes all `2n` outputs.
    let mut out = unsafe { device.alloc::<f32>(2 * n)? };
    if samples > 0 {
        launch::gz_ln_moments(device, block_each(samples), &xs, &mut moments, &n, &eps)?;
    }
    if n > 0 {
        let moments: CudaView<'_, f64> = moments.slice(..);
        launch::gz_ln_affine_grad(device, elementwise(n), &xs, &dys, &moments, &mut out, &b_int, &n)?;
    }
    Ok(CudaStorage::wrap_cuda_slice(out, device.clone()))
}
