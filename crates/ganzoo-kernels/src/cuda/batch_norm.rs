//! Training-mode batch norm on CUDA (NCHW, f32), the CPU op's equations
//! (`crate::batch_norm`) in three kernels: per-channel statistics (mean, biased variance
//! and the forward's scale and shift), the forward pass (fused with a following (leaky)
//! ReLU), and the backward pass with the activation's mask folded in. As on the CPU, the
//! backward op has no backward of its own.

use candle_core::cuda_backend::CudaStorage;
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Storage, Tensor};

use super::{block_each, elementwise, int, launch, view};

/// `(N, C, H·W)` of an NCHW input.
fn planes(l: &Layout, op: &str) -> Result<(usize, usize, usize)> {
    match *l.dims() {
        [n, c, h, w] => Ok((n, c, h * w)),
        ref dims => bail!("{op}: expected an (N, C, H, W) tensor, got shape {dims:?}"),
    }
}

/// `t`'s CUDA storage and layout, handed to `f`.
fn on_storage<R>(t: &Tensor, f: impl FnOnce(&CudaStorage, &Layout) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cuda(s) => f(s, layout),
        _ => bail!("ganzoo's CUDA batch norm: a tensor is not on the CUDA device"),
    }
}

fn cuda_only(op: &str) -> Result<(CpuStorage, Shape)> {
    bail!("{op}: a CUDA op, given CPU tensors")
}

/// `(x, γ, β) → (4, C)`: per channel μ, σ² (biased), `γ/√(σ² + ε)`, `β − μ·γ/√(σ² + ε)`;
/// with `running`, the running statistics updated in the same launch.
struct StatisticsOp {
    eps: f64,
    running: Option<RunningAt>,
}

/// Running statistics as `gz_bn_statistics` updates them: the addresses of the mean's and
/// variance's `C` values, `keep` = 1 − momentum, `unbias` = n/(n − 1).
struct RunningAt {
    mean: u64,
    var: u64,
    keep: f64,
    unbias: f64,
}

impl CustomOp3 for StatisticsOp {
    fn name(&self) -> &'static str {
        "ganzoo-batch-norm-statistics"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }

    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        gamma: &CudaStorage,
        lg: &Layout,
        beta: &CudaStorage,
        lb: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let op = self.name();
        let (n, c, plane) = planes(lx, op)?;
        crate::batch_norm::check_affine(lg, lb, c)?;
        let (xs, gs, bs) = (view(x, lx, op)?, view(gamma, lg, op)?, view(beta, lb, op)?);
        let (ni, ci, pi) = (int(n, "batch")?, int(c, "channels")?, int(plane, "plane")?);
        let device = &x.device;
        // SAFETY: the kernel writes all 4·C values (thread 0 of each channel's block).
        let mut stats = unsafe { device.alloc::<f32>(4 * c)? };
        let none = RunningAt { mean: 0, var: 0, keep: 0.0, unbias: 0.0 };
        let r = self.running.as_ref().unwrap_or(&none);
        let config = block_each(c);
        let (eps, keep, unbias) = (&self.eps, &r.keep, &r.unbias);
        launch::gz_bn_statistics(
            device, config, &xs, &gs, &bs, &mut stats, &ni, &ci, &pi, eps, &r.mean, &r.var, keep, unbias,
        )?;
        Ok((CudaStorage::wrap_cuda_slice(stats, device.clone()), Shape::from((4, c))))
    }
}

/// `(x, γ, β) → y` from the statistics the [`StatisticsOp`] computed on the same values.
struct NormaliseOp {
    eps: f64,
    slope: Option<f64>,
    stats: Tensor,
}

impl CustomOp3 for NormaliseOp {
    fn name(&self) -> &'static str {
        "ganzoo-batch-norm (cuda)"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }

    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        _: &CudaStorage,
        _: &Layout,
        _: &CudaStorage,
        _: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let op = self.name();
        let (_, c, plane) = planes(lx, op)?;
        let xs = view(x, lx, op)?;
        let len = xs.len();
        let (ci, pi) = (int(c, "channels")?, int(plane, "plane")?);
        let (slope, activate) = (self.slope.unwrap_or(0.0) as f32, self.slope.is_some() as i32);
        let device = &x.device;
        // SAFETY: the kernel writes all `len` values.
        let mut y = unsafe { device.alloc::<f32>(len)? };
        on_storage(&self.stats, |s, ls| {
            let stats = view(s, ls, op)?;
            launch::gz_bn_forward(device, elementwise(len), &xs, &stats, &mut y, &len, &ci, &pi, &slope, &activate)
        })?;
        Ok((CudaStorage::wrap_cuda_slice(y, device.clone()), lx.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = GradOp { eps: self.eps, slope: self.slope, stats: self.stats.clone(), y: y.clone() };
        let packed = x.apply_op3_no_bwd(&dy.contiguous()?, gamma, &grad)?;
        crate::batch_norm::unpack_grads(&packed, x, gamma)
    }
}

/// `(x, dy, γ) → [dx | dγ | dβ]`, `dy` first masked by the activation's (from the output `y`).
struct GradOp {
    eps: f64,
    slope: Option<f64>,
    stats: Tensor,
    y: Tensor,
}

impl CustomOp3 for GradOp {
    fn name(&self) -> &'static str {
        "ganzoo-batch-norm-backward (cuda)"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }

    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        dy: &CudaStorage,
        ldy: &Layout,
        gamma: &CudaStorage,
        lg: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let op = self.name();
        let (n, c, plane) = planes(lx, op)?;
        if ldy.shape() != lx.shape() || lg.shape().elem_count() != c {
            bail!("{op}: x {:?}, dy {:?} and γ {:?} do not match", lx.dims(), ldy.dims(), lg.dims());
        }
        let (xs, dys, gs) = (view(x, lx, op)?, view(dy, ldy, op)?, view(gamma, lg, op)?);
        let (ni, ci, pi) = (int(n, "batch")?, int(c, "channels")?, int(plane, "plane")?);
        let (slope, activate) = (self.slope.unwrap_or(0.0) as f32, self.slope.is_some() as i32);
        let device = &x.device;
        let len = xs.len();
        // SAFETY: each channel's block writes its values of dx, dγ and dβ.
        let mut out = unsafe { device.alloc::<f32>(len + 2 * c)? };
        on_storage(&self.stats, |s, ls| {
            on_storage(&self.y, |ys, ly| {
                let (stats, y) = (view(s, ls, op)?, view(ys, ly, op)?);
                let (config, eps) = (block_each(c), &self.eps);
                launch::gz_bn_backward(
                    device, config, &xs, &dys, &y, &gs, &stats, &mut out, &ni, &ci, &pi, eps, &slope, &activate,
                )
            })
        })?;
        Ok((CudaStorage::wrap_cuda_slice(out, device.clone()), Shape::from(len + 2 * c)))
    }
}

/// Training-mode batch norm of the NCHW `x` (a leaky ReLU of slope `slope` after it, if
/// given), and its `(4, C)` statistics: rows mean, biased variance, scale, shift; with
/// `running` (and the variance's `n/(n − 1)`), its running statistics updated in the
/// statistics' launch (the values `moving_average` gives from the rows).
pub(crate) fn normalise(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    slope: Option<f64>,
    running: Option<(&crate::RunningStats<'_>, f64)>,
) -> Result<(Tensor, Tensor)> {
    let op = "ganzoo-batch-norm-statistics";
    let (x, gamma, beta) = (x.contiguous()?, gamma.contiguous()?, beta.contiguous()?);
    let running = match running {
        Some((r, unbias)) => {
            let c = x.dim(1)?;
            let ((mean, cm), (var, cv)) =
                (super::multi_tensor::address(r.mean, op)?, super::multi_tensor::address(r.var, op)?);
            if (cm, cv) != (c, c) {
                bail!("{op}: running statistics of {cm} and {cv} values for {c} channels");
            }
            Some(RunningAt { mean, var, keep: 1.0 - r.momentum, unbias })
        }
        None => None,
    };
    let stats = x.apply_op3_no_bwd(&gamma, &beta, &StatisticsOp { eps, running })?;
    let y = x.apply_op3(&gamma, &beta, NormaliseOp { eps, slope, stats: stats.clone() })?;
    Ok((y, stats))
}

/// Per-channel mean and biased variance of the NCHW `x`, as two `(C,)` tensors.
pub(crate) fn mean_var(x: &Tensor) -> Result<(Tensor, Tensor)> {
    let c = x.dim(1)?;
    let (ones, zeros) = (Tensor::ones(c, x.dtype(), x.device())?, Tensor::zeros(c, x.dtype(), x.device())?);
    let stats = x.detach().contiguous()?.apply_op3_no_bwd(&ones, &zeros, &StatisticsOp { eps: 0.0, running: None })?;
    Ok((stats.get(0)?, stats.get(1)?))
}
