//! The switch between ganzoo's CPU kernels (`ganzoo-kernels`), convolutions as Candle's
//! `conv2d` with ganzoo's gradients ([`crate::conv_as_gemm`]) and Candle's own ops, for
//! comparison and as a fallback: [`set_kernel_backend`] for the process, or
//! `GANZOO_KERNELS` in the environment. On CUDA, f32 tensors go to ganzoo's CUDA
//! kernels where it has them ([`cuda_kernels_run`], [`conv_kernels_run`]). Tensors the
//! kernels cannot take (other dtypes; CUDA with `--kernels gemm`) go to Candle's ops,
//! their convolutions to `conv_as_gemm` unless Candle's are chosen.

use std::sync::atomic::{AtomicU8, Ordering};

use candle_core::Tensor;
use ganzoo_kernels::ImageLayout;

/// Which implementation runs the models' convolutions, batch norms and leaky ReLUs on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelBackend {
    /// `ganzoo-kernels` (the default).
    Ganzoo,
    /// Candle's ops (`conv2d`, `conv_transpose2d`, elementwise and reduction ops).
    Candle,
    /// Candle's ops, every convolution as Candle's im2col + GEMM `conv2d` with ganzoo's
    /// gradients ([`crate::conv_as_gemm`]), without ganzoo's CUDA kernels
    /// ([`cuda_kernels_run`]); chosen on any device.
    Gemm,
}

impl KernelBackend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ganzoo => "ganzoo",
            Self::Candle => "candle",
            Self::Gemm => "gemm",
        }
    }
}

impl std::str::FromStr for KernelBackend {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "ganzoo" => Ok(Self::Ganzoo),
            "candle" => Ok(Self::Candle),
            "gemm" => Ok(Self::Gemm),
            _ => Err(format!("unknown kernel backend '{s}': expected ganzoo, candle or gemm")),
        }
    }
}

const UNSET: u8 = 0;
static BACKEND: AtomicU8 = AtomicU8::new(UNSET);

/// Chooses the convolution implementation for the whole process.
pub fn set_kernel_backend(backend: KernelBackend) {
    BACKEND.store(backend as u8 + 1, Ordering::Relaxed);
}

/// The implementation in use: the last [`set_kernel_backend`], else `GANZOO_KERNELS`
/// (`ganzoo`, `candle` or `gemm`; anything else is ignored with a warning), else ganzoo's.
pub fn kernel_backend() -> KernelBackend {
    match BACKEND.load(Ordering::Relaxed) {
        UNSET => {
            let chosen = match std::env::var("GANZOO_KERNELS") {
                Ok(v) => v.parse().unwrap_or_else(|e: String| {
                    tracing::warn!("GANZOO_KERNELS: {e}; using ganzoo's kernels");
                    KernelBackend::Ganzoo
                }),
                Err(_) => KernelBackend::Ganzoo,
            };
            let _ = BACKEND.compare_exchange(UNSET, chosen as u8 + 1, Ordering::Relaxed, Ordering::Relaxed);
            kernel_backend()
        }
        v if v == KernelBackend::Candle as u8 + 1 => KernelBackend::Candle,
        v if v == KernelBackend::Gemm as u8 + 1 => KernelBackend::Gemm,
        _ => KernelBackend::Ganzoo,
    }
}

/// The one rule for whether ganzoo's kernels run an op on `x` (an image in `layout`, or
/// any tensor with [`ImageLayout::Nchw`]) with the tensors `with` (a weight, `γ`, a
/// gradient): always on NHWC images, which only the kernels take; otherwise when the
/// kernels are chosen, take `x` (CPU, f32/f64) and every tensor of `with` shares its dtype.
pub fn kernels_run(x: &Tensor, with: &[&Tensor], layout: ImageLayout) -> bool {
    layout == ImageLayout::Nhwc
        || (kernel_backend() == KernelBackend::Ganzoo
            && ganzoo_kernels::supports(x)
            && with.iter().all(|t| t.dtype() == x.dtype()))
}

/// [`kernels_run`] for the ops ganzoo also has CUDA kernels for (batch norm with its
/// activation, layer norm, the leaky ReLU, the optimiser steps): also on an f32 CUDA tensor `x`,
/// with `with` of its dtype, when ganzoo's kernels are chosen (the default).
pub fn cuda_kernels_run(x: &Tensor, with: &[&Tensor], layout: ImageLayout) -> bool {
    kernels_run(x, with, layout)
        || (kernel_backend() == KernelBackend::Ganzoo
            && ganzoo_kernels::cuda_supports(x)
            && with.iter().all(|t| t.dtype() == x.dtype()))
}

/// Whether ganzoo's kernels run a convolution of `x` (an image in `layout`) by `w`:
/// [`kernels_run`], and on CUDA where ganzoo's kernels are chosen and take `x` and `w` of
/// one dtype (`ganzoo_kernels::cuda_conv_supports`: f32 NCHW through cuDNN or ganzoo's
/// im2col and col2im kernels around cuBLAS products, `ganzoo_kernels::cuda_conv`; bf16
/// through cuDNN's graph API where cuDNN is built) unless `GANZOO_CUDA_CONV=gemm` sends
/// them to [`crate::conv_as_gemm`] (a fallback beside ganzoo's other CUDA kernels).
pub fn conv_kernels_run(x: &Tensor, w: &Tensor, layout: ImageLayout) -> bool {
    let on_cuda = kernel_backend() == KernelBackend::Ganzoo
        && ganzoo_kernels::cuda_conv_supports(x)
        && w.dtype() == x.dtype()
        && !cuda_convolutions_as_gemm();
    kernels_run(x, &[w], layout) || on_cuda
}

/// `GANZOO_CUDA_CONV=gemm`, read once. `auto`, `cudnn`, `cudnn-any`, `cudnn-graph`,
/// `cudnn-graph-any`, `columns` and `timed` choose among ganzoo's own (`ganzoo_kernels::cuda_conv`); anything else is ignored with a
/// warning.
pub fn cuda_convolutions_as_gemm() -> bool {
    static AS_GEMM: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AS_GEMM.get_or_init(|| match std::env::var("GANZOO_CUDA_CONV").as_deref() {
        Ok("gemm") => true,
        Ok("ganzoo" | "auto" | "cudnn" | "cudnn-any" | "cudnn-graph" | "cudnn-graph-any" | "columns" | "timed")
        | Err(_) => false,
        Ok(other) => {
            tracing::warn!(
                "GANZOO_CUDA_CONV={other}: expected auto, cudnn, cudnn-any, cudnn-graph, cudnn-graph-any, columns, \
                 timed or gemm; using the default"
            );
            false
        }
    })
}

/// Whether a convolution on `x` (NCHW) that ganzoo's kernels do not run goes to the
/// [`crate::conv_as_gemm`] rather than Candle's own op: when it is chosen, and by
/// default off the CPU.
pub fn gemm_runs(x: &Tensor) -> bool {
    match kernel_backend() {
        KernelBackend::Gemm => true,
        KernelBackend::Ganzoo => !x.device().is_cpu(),
        KernelBackend::Candle => false,
    }
}
