//! The three convolution primitives on CUDA: through cuDNN ([`super::cudnn`]) or as
//! [`crate::conv_columns`] — the im2col and col2im kernels here (`gz_im2col`,
//! `gz_col2im`) around Candle's cuBLAS product —, as [`cuda_conv`] says; the columns also
//! where cuDNN offers no algorithm [`crate::cuda_conv::choose`] takes.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::CudaStorage;
use candle_core::{Layout, Result};

use super::{elementwise, int, launch, view};
use crate::conv_columns::{self, Columns};
use crate::cuda_conv::{conv_tf32, cuda_conv, CudaConv};
use crate::geometry::ConvGeometry;

type Operand<'a> = (&'a CudaStorage, &'a Layout);

/// `primitive` through cuDNN where it is chosen and built, else (or where it declines)
/// `columns`.
fn either(
    cudnn: fn(&ConvGeometry, Operand, Operand) -> Result<Option<CudaStorage>>,
    columns: fn(&ConvGeometry, Operand, Operand) -> Result<CudaStorage>,
    g: &ConvGeometry,
    a: Operand,
    b: Operand,
) -> Result<CudaStorage> {
    if cuda_conv() == CudaConv::Cudnn {
        if let Some(out) = cudnn(g, a, b)? {
            return Ok(out);
        }
    }
    columns(g, a, b)
}

#[cfg(feature = "cudnn")]
use super::cudnn;
/// Without cuDNN in the build ([`cuda_conv`] is then never cuDNN), every primitive declines.
#[cfg(not(feature = "cudnn"))]
mod cudnn {
    use super::{ConvGeometry, CudaStorage, Operand, Result};
    pub(crate) fn forward(_: &ConvGeometry, _: Operand, _: Operand) -> Result<Option<CudaStorage>> {
        Ok(None)
    }
    pub(crate) use forward as adjoint;
    pub(crate) use forward as weight_grad;
}

/// `y = W ⋆ x`: `x (N, C, H, W)`, `w (O, C, kh, kw)` → `(N, O, H', W')`.
pub(crate) fn forward(g: &ConvGeometry, x: Operand, w: Operand) -> Result<CudaStorage> {
    either(cudnn::forward, conv_columns::forward, g, x, w)
}

/// The adjoint of [`forward`]: `dy (N, O, H', W')`, `w (O, C, kh, kw)` → `(N, C, H, W)`.
pub(crate) fn adjoint(g: &ConvGeometry, dy: Operand, w: Operand) -> Result<CudaStorage> {
    either(cudnn::adjoint, conv_columns::adjoint, g, dy, w)
}

/// `∂⟨W ⋆ x, dy⟩/∂W`: `x (N, C, H, W)`, `dy (N, O, H', W')` → `(O, C, kh, kw)`.
pub(crate) fn weight_grad(g: &ConvGeometry, x: Operand, dy: Operand) -> Result<CudaStorage> {
    either(cudnn::weight_grad, conv_columns::weight_grad, g, x, dy)
}

/// The geometry's sizes as the kernels' `int`s: `c, h, w, kh, kw, oh, ow, stride, pad, dilation`.
fn sizes(g: &ConvGeometry) -> Result<[i32; 10]> {
    let p = &g.params;
    let all = [g.cin, g.in_h, g.in_w, g.k_h, g.k_w, g.out_h, g.out_w, p.stride, p.padding, p.dilation];
    let mut out = [0; 10];
    for (o, v) in out.iter_mut().zip(all) {
        *o = int(v, "convolution size")?;
    }
    Ok(out)
}

impl Columns for CudaStorage {
    fn im2col(&self, l: &Layout, g: &ConvGeometry, pixel_major: bool) -> Result<Self> {
        let x = view(self, l, "ganzoo-im2col (cuda)")?;
        let len = g.batch * g.patch() * g.out_plane();
        let [c, h, w, kh, kw, oh, ow, stride, pad, dilation] = sizes(g)?;
        let device = &self.device;
        // SAFETY: the kernel writes all `len` values.
        let mut cols = unsafe { device.alloc::<f32>(len)? };
        let major = pixel_major as i32;
        let config = elementwise(len);
        launch::gz_im2col(
            device, config, &x, &mut cols, &len, &c, &h, &w, &kh, &kw, &oh, &ow, &stride, &pad, &dilation, &major,
        )?;
        Ok(CudaStorage::wrap_cuda_slice(cols, device.clone()))
    }

    fn col2im(&self, g: &ConvGeometry) -> Result<Self> {
        let cols = view(self, &Layout::contiguous(g.batch * g.patch() * g.out_plane()), "ganzoo-col2im (cuda)")?;
        let len = g.batch * g.cin * g.in_plane();
        let [c, h, w, kh, kw, oh, ow, stride, pad, dilation] = sizes(g)?;
        let device = &self.device;
        // SAFETY: the kernel writes all `len` values.
        let mut x = unsafe { device.alloc::<f32>(len)? };
        let config = elementwise(len);
        launch::gz_col2im(
            device, config, &cols, &mut x, &len, &c, &h, &w, &kh, &kw, &oh, &ow, &stride, &pad, &dilation,
        )?;
        Ok(CudaStorage::wrap_cuda_slice(x, device.clone()))
    }

    /// Candle's product, in TF32 where the convolutions may use it ([`conv_tf32`]) though
    /// Candle's switch for every product is off: the switch is set for this one product.
    /// (ganzoo drives a device from one thread; no other product runs meanwhile.)
    fn product(&self, rhs: &Self, bmnk: (usize, usize, usize, usize), lhs: &Layout, rhs_l: &Layout) -> Result<Self> {
        use candle_core::cuda::{gemm_reduced_precision_f32, set_gemm_reduced_precision_f32};
        if !conv_tf32() || gemm_reduced_precision_f32() {
            return self.matmul(rhs, bmnk, lhs, rhs_l);
        }
        set_gemm_reduced_precision_f32(true);
        let out = self.matmul(rhs, bmnk, lhs, rhs_l);
        set_gemm_reduced_precision_f32(false);
        out
    }
}
