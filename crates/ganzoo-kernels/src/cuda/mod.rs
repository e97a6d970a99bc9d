//! ganzoo's CUDA kernels (`kernels.cu`, compiled to PTX by `build.rs` and loaded once
//! per device through Candle's module cache) on f32 storage; [`launch`] holds one typed
//! launch function per kernel. Batch norm's ops are in [`batch_norm`]; the convolutions'
//! primitives in [`conv`] (cuDNN's in `cudnn` and, through its graph API, `cudnn_graph`,
//! feature `cudnn`; or im2col and col2im for `crate::conv_columns`); layer norm's ops
//! call [`layer_norm`]'s functions, the leaky ReLU's and the in-place ops [`mask`],
//! [`moving_average`], [`scaled_step`] and [`clamp`], from their `cuda_fwd`;
//! [`multi_tensor`] updates all of an optimiser's tensors in one launch.

pub(crate) mod batch_norm;
pub(crate) mod conv;
#[cfg(feature = "cudnn")]
mod cudnn;
#[cfg(feature = "cudnn")]
mod cudnn_graph;
mod launch;
pub(crate) mod layer_norm;
pub(crate) mod multi_tensor;

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, CudaViewMut, LaunchConfig};
use candle_core::cuda_backend::{CudaDevice, CudaStorage};
use candle_core::{bail, Layout, Result, Tensor};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/ganzoo_kernels.ptx"));
const MODULE: &str = "ganzoo-kernels";

/// Threads per block of the per-channel and per-sample kernels (`GZ_BLOCK` in `kernels.cu`).
const BLOCK: u32 = 512;
/// Threads per block of the elementwise kernels, and at most this many blocks (they stride).
const ELEMENTWISE_BLOCK: u32 = 256;
const MAX_BLOCKS: usize = 1 << 16;

/// Whether ganzoo's CUDA kernels take `t`: an f32 tensor on a CUDA device.
pub fn supports(t: &Tensor) -> bool {
    t.device().is_cuda() && t.dtype() == candle_core::DType::F32
}

fn elementwise(len: usize) -> LaunchConfig {
    let blocks = len.div_ceil(ELEMENTWISE_BLOCK as usize).clamp(1, MAX_BLOCKS);
    LaunchConfig { grid_dim: (blocks as u32, 1, 1), block_dim: (ELEMENTWISE_BLOCK, 1, 1), shared_mem_bytes: 0 }
}

/// One block of [`BLOCK`] threads for each of `blocks` channels or samples.
fn block_each(blocks: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: (blocks as u32, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 }
}

/// A dimension as the kernels' `int`.
fn int(v: usize, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| candle_core::Error::Msg(format!("{what} {v} is too large for ganzoo's CUDA kernels")))
}

/// The f32 values a contiguous layout covers.
fn view<'a>(s: &'a CudaStorage, l: &Layout, op: &'static str) -> Result<CudaView<'a, f32>> {
    let Some((start, end)) = l.contiguous_offsets() else { return Err(candle_core::Error::RequiresContiguous { op }) };
    Ok(s.as_cuda_slice::<f32>()?.slice(start..end))
}

/// The f32 values of a contiguous layout of `s`, to be written in place by `launch`.
fn in_place(
    s: &mut CudaStorage,
    l: &Layout,
    op: &'static str,
    launch: impl FnOnce(&CudaDevice, &mut CudaViewMut<'_, f32>) -> Result<()>,
) -> Result<()> {
    let Some((start, end)) = l.contiguous_offsets() else { return Err(candle_core::Error::RequiresContiguous { op }) };
    let device = s.device.clone();
    let mut values = s.as_cuda_slice_mut::<f32>()?.slice_mut(start..end);
    launch(&device, &mut values)
}

fn same_len(a: usize, b: usize, op: &str) -> Result<()> {
    if a != b {
        bail!("{op}: operands of {a} and {b} values");
    }
    Ok(())
}

/// `out = g where x > 0, else g·slope`, as a new storage.
pub(crate) fn mask(x: (&CudaStorage, &Layout), g: (&CudaStorage, &Layout), slope: f64) -> Result<CudaStorage> {
    let op = "ganzoo-leaky-relu (cuda)";
    let (xs, gs) = (view(x.0, x.1, op)?, view(g.0, g.1, op)?);
    same_len(xs.len(), gs.len(), op)?;
    let device = &x.0.device;
    let len = xs.len();
    // SAFETY: the kernel writes all `len` values.
    let mut out: CudaSlice<f32> = unsafe { device.alloc::<f32>(len)? };
    launch::gz_leaky_relu_mask(device, elementwise(len), &xs, &gs, &mut out, &len, &(slope as f32))?;
    Ok(CudaStorage::wrap_cuda_slice(out, device.clone()))
}

/// `d ← β·d + (1 − β)·f(g·scale)` in place, `f(v) = v` or `v²`.
pub(crate) fn moving_average(
    d: (&mut CudaStorage, &Layout),
    g: (&CudaStorage, &Layout),
    (beta, scale): (f64, f64),
    square: bool,
) -> Result<()> {
    let op = "ganzoo-moving-average (cuda)";
    let gs = view(g.0, g.1, op)?;
    in_place(d.0, d.1, op, |device, ds| {
        same_len(ds.len(), gs.len(), op)?;
        let len = ds.len();
        launch::gz_moving_average(device, elementwise(len), ds, &gs, &len, &beta, &scale, &(square as i32))
    })
}

/// `v ← clamp(v, lo, hi)` in place.
pub(crate) fn clamp(v: (&mut CudaStorage, &Layout), (lo, hi): (f32, f32)) -> Result<()> {
    in_place(v.0, v.1, "ganzoo-clamp (cuda)", |device, vs| {
        let len = vs.len();
        launch::gz_clamp(device, elementwise(len), vs, &len, &lo, &hi)
    })
}

/// The optimiser step's scalars (see `optim.rs`'s `ScaledStep`).
pub(crate) struct StepScalars {
    pub lr: f64,
    pub a_scale: f64,
    pub b_scale: f64,
    pub eps: f64,
    pub eps_in_root: bool,
}

/// `θ ← θ − lr · (a·a_scale) / (√(b·b_scale) + ε)` in place (ε inside the root with `eps_in_root`).
pub(crate) fn scaled_step(
    theta: (&mut CudaStorage, &Layout),
    a: (&CudaStorage, &Layout),
    b: (&CudaStorage, &Layout),
    s: &StepScalars,
) -> Result<()> {
    let op = "ganzoo-optimiser-step (cuda)";
    let (av, bv) = (view(a.0, a.1, op)?, view(b.0, b.1, op)?);
    in_place(theta.0, theta.1, op, |device, ts| {
        same_len(ts.len(), av.len(), op)?;
        same_len(ts.len(), bv.len(), op)?;
        let len = ts.len();
        let eps_in_root = s.eps_in_root as i32;
        let config = elementwise(len);
        launch::gz_scaled_step(device, config, ts, &av, &bv, &len, &s.lr, &s.a_scale, &s.b_scale, &s.eps, &eps_in_root)
    })
}
