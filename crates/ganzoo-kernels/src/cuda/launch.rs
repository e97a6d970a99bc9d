//! One typed launch function per kernel of `kernels.cu`, its parameters named and typed
//! as the kernel's C signature: `&` views for `const T*`, `&mut` slices or views for `T*`,
//! `&usize`/`&i32`/`&f32`/`&f64` for `size_t`/`int`/`float`/`double`, `u64` elements for
//! `unsigned long long` ones. The compiler holds
//! every launch to these types; `tests/integration/cuda_launches.rs` holds these
//! declarations to `kernels.cu` (names, order, types) on every machine, GPU or not.

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, CudaViewMut, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaDevice, WrapErr};
use candle_core::Result;

use super::{MODULE, PTX};

/// `fn kernel(param: &Type, …);` → `pub(crate) fn kernel(device, config, param, …)` that
/// loads `kernel` from ganzoo's PTX module and launches it with the parameters in order.
macro_rules! kernels {
    ($($(#[$doc:meta])* fn $name:ident($($param:ident: $ty:ty),* $(,)?);)*) => {$(
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn $name(device: &CudaDevice, config: LaunchConfig, $($param: $ty),*) -> Result<()> {
            let func = device.get_or_load_custom_func(stringify!($name), MODULE, PTX)?;
            let mut args = func.builder();
            $(args.arg($param);)*
            // SAFETY: the parameters are the kernel's, in its order and with its types
            // (checked against kernels.cu by tests/integration/cuda_launches.rs).
            unsafe { args.launch(config) }.w().map(|_| ())
        }
    )*};
}

kernels! {
    /// Per channel: μ, σ², scale, shift into `stats` (4, c), and the running statistics at
    /// the two addresses updated unless the first is 0. One block per channel.
    fn gz_bn_statistics(
        x: &CudaView<'_, f32>, gamma: &CudaView<'_, f32>, beta: &CudaView<'_, f32>, stats: &mut CudaSlice<f32>,
        n: &i32, c: &i32, plane: &i32, eps: &f64, running_mean: &u64, running_var: &u64, keep: &f64, unbias: &f64,
    );
    /// `y = x·scale + shift`, then the (leaky) ReLU if `activate`. Elementwise.
    fn gz_bn_forward(
        x: &CudaView<'_, f32>, stats: &CudaView<'_, f32>, y: &mut CudaSlice<f32>, len: &usize,
        c: &i32, plane: &i32, slope: &f32, activate: &i32,
    );
    /// `[dx | dγ | dβ]` into `out`, `dy` masked by the activation. One block per channel.
    fn gz_bn_backward(
        x: &CudaView<'_, f32>, dy: &CudaView<'_, f32>, y: &CudaView<'_, f32>, gamma: &CudaView<'_, f32>,
        stats: &CudaView<'_, f32>, out: &mut CudaSlice<f32>, n: &i32, c: &i32, plane: &i32, eps: &f64,
        slope: &f32, activate: &i32,
    );
    /// Layer norm's forward pass. One block per sample of `n` values.
    fn gz_ln_forward(
        x: &CudaView<'_, f32>, gamma: &CudaView<'_, f32>, beta: &CudaView<'_, f32>, y: &mut CudaSlice<f32>,
        n: &usize, eps: &f64,
    );
    /// Each sample's mean and `1/σ` into `moments`. One block per sample.
    fn gz_ln_moments(x: &CudaView<'_, f32>, moments: &mut CudaSlice<f64>, n: &usize, eps: &f64);
    /// `[Σ_b dy ⊙ x̂ | Σ_b dy]` into `out` (2n) from `b` samples' moments. Elementwise over n.
    fn gz_ln_affine_grad(
        x: &CudaView<'_, f32>, dy: &CudaView<'_, f32>, moments: &CudaView<'_, f64>, out: &mut CudaSlice<f32>,
        b: &i32, n: &usize,
    );
    /// Layer norm's input gradient `Q(x, g)`. One block per sample.
    fn gz_ln_input_grad(x: &CudaView<'_, f32>, g: &CudaView<'_, f32>, out: &mut CudaSlice<f32>, n: &usize, eps: &f64);
    /// `∂⟨h, Q(x, g)⟩/∂x`. One block per sample.
    fn gz_ln_second(
        x: &CudaView<'_, f32>, g: &CudaView<'_, f32>, h: &CudaView<'_, f32>, out: &mut CudaSlice<f32>,
        n: &usize, eps: &f64,
    );
    /// `out = g where x > 0, else g·slope`. Elementwise.
    fn gz_leaky_relu_mask(x: &CudaView<'_, f32>, g: &CudaView<'_, f32>, out: &mut CudaSlice<f32>, len: &usize, slope: &f32);
    /// `v ← clamp(v, lo, hi)` in place. Elementwise.
    fn gz_clamp(v: &mut CudaViewMut<'_, f32>, len: &usize, lo: &f32, hi: &f32);
    /// `d ← β·d + (1 − β)·f(g·scale)`, `f` the square if `square`. Elementwise.
    fn gz_moving_average(
        d: &mut CudaViewMut<'_, f32>, g: &CudaView<'_, f32>, len: &usize, beta: &f64, scale: &f64, square: &i32,
    );
    /// `θ ← θ − lr·(a·a_scale)/(√(b·b_scale) + ε)` (ε under the root if `eps_in_root`). Elementwise.
    fn gz_scaled_step(
        theta: &mut CudaViewMut<'_, f32>, a: &CudaView<'_, f32>, b: &CudaView<'_, f32>, len: &usize, lr: &f64,
        a_scale: &f64, b_scale: &f64, eps: &f64, eps_in_root: &i32,
    );
    /// One optimiser step on every tensor of `table` (rows θ, g, m, v; offsets). Elementwise.
    fn gz_multi_step(
        table: &CudaSlice<u64>, count: &i32, total: &usize, lr: &f64, beta1: &f64, beta2: &f64, a_scale: &f64,
        b_scale: &f64, eps: &f64, eps_in_root: &i32, adam: &i32,
    );
    /// `v ← clamp(v, lo, hi)` in place on every tensor of `table` (rows v; offsets). Elementwise.
    fn gz_multi_clamp(table: &CudaSlice<u64>, count: &i32, total: &usize, lo: &f32, hi: &f32);
    /// NCHW images → im2col columns in `layout` (`ColumnLayout::code`). Elementwise.
    fn gz_im2col(
        x: &CudaView<'_, f32>, cols: &mut CudaSlice<f32>, len: &usize, c: &i32, h: &i32, w: &i32, kh: &i32,
        kw: &i32, oh: &i32, ow: &i32, stride: &i32, pad: &i32, dilation: &i32, layout: &i32,
    );
    /// Columns in `layout` → NCHW images, each value the sum of its taps. Elementwise.
    fn gz_col2im(
        cols: &CudaView<'_, f32>, x: &mut CudaSlice<f32>, len: &usize, c: &i32, h: &i32, w: &i32, kh: &i32,
        kw: &i32, oh: &i32, ow: &i32, stride: &i32, pad: &i32, dilation: &i32, layout: &i32,
    );
}
