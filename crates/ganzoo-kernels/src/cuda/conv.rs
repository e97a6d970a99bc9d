//! The convolutions' im2col and col2im on CUDA (`gz_im2col`, `gz_col2im`), for
//! [`crate::conv_columns`], which multiplies with Candle's cuBLAS product.

use candle_core::cuda_backend::CudaStorage;
use candle_core::{Layout, Result};

use super::{elementwise, int, launch, view};
use crate::conv_columns::Columns;
use crate::geometry::ConvGeometry;

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
}
