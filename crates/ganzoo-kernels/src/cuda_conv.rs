//! How ganzoo's convolutions run on CUDA: through cuDNN (feature `cudnn`; the default
//! there) or as ganzoo's im2col / col2im kernels around cuBLAS products
//! (`conv_columns.rs`), chosen by `GANZOO_CUDA_CONV`; in exact f32, or with TF32 tensor
//! cores as PyTorch's cuDNN convolutions run by default ([`set_conv_tf32`]). The rule
//! that takes an algorithm from cuDNN's heuristics ([`choose`]) lives here, off the GPU,
//! so the CPU's tests hold it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The implementation of the three convolution primitives on CUDA f32 NCHW images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CudaConv {
    /// `cudnnConvolutionForward`, `…BackwardData`, `…BackwardFilter`.
    Cudnn,
    /// ganzoo's im2col / col2im kernels around Candle's cuBLAS products.
    Columns,
}

impl CudaConv {
    pub fn name(self) -> &'static str {
        match self {
            Self::Cudnn => "cuDNN",
            Self::Columns => "its im2col / col2im kernels + cuBLAS",
        }
    }
}

/// The implementation in use, from `GANZOO_CUDA_CONV` (read once): `cudnn` or `columns`;
/// unset or anything else (`ganzoo`; `gemm` is the models' switch to Candle's `conv2d`)
/// the default, cuDNN in a build with the `cudnn` feature, else the columns.
pub fn cuda_conv() -> CudaConv {
    static CHOSEN: OnceLock<CudaConv> = OnceLock::new();
    *CHOSEN.get_or_init(|| chosen(std::env::var("GANZOO_CUDA_CONV").ok().as_deref(), cfg!(feature = "cudnn")))
}

fn chosen(value: Option<&str>, cudnn_built: bool) -> CudaConv {
    match value {
        Some("columns") => CudaConv::Columns,
        Some("cudnn") if !cudnn_built => {
            tracing::warn!("GANZOO_CUDA_CONV=cudnn: this build has no cuDNN (feature `cudnn`); using the columns");
            CudaConv::Columns
        }
        _ if cudnn_built => CudaConv::Cudnn,
        _ => CudaConv::Columns,
    }
}

static CONV_TF32: AtomicBool = AtomicBool::new(false);

/// Lets the CUDA convolutions use TF32 tensor cores (10-bit mantissas in the products,
/// f32 sums), as PyTorch's cuDNN convolutions do by default (`cudnn.allow_tf32`), while
/// other matrix products stay exact; off, they are exact f32. No effect on the CPU.
pub fn set_conv_tf32(on: bool) {
    CONV_TF32.store(on, Ordering::Relaxed);
}

/// Whether the CUDA convolutions may use TF32: [`set_conv_tf32`], or Candle's switch for
/// every f32 product (`candle_core::cuda::set_gemm_reduced_precision_f32`).
pub fn conv_tf32() -> bool {
    CONV_TF32.load(Ordering::Relaxed) || candle_core::cuda::gemm_reduced_precision_f32()
}

/// Workspace one cuDNN call may take, as `conv_columns`' bound on its columns.
pub const WORKSPACE_BYTES: usize = 64 << 20;

/// One algorithm cuDNN's heuristics offer (`cudnnGetConvolution…Algorithm_v7`), in
/// their order, fastest first as cuDNN predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// `status == CUDNN_STATUS_SUCCESS`: it runs on this geometry.
    pub runs: bool,
    pub deterministic: bool,
    /// Its math type is anything but `CUDNN_FMA_MATH` (tensor cores: TF32 on f32).
    pub tensor_cores: bool,
    pub workspace: usize,
}

/// The offer to take: the first that runs, is deterministic (one seed gives one run,
/// as on the CPU), needs at most [`WORKSPACE_BYTES`], and — unless `tf32` — computes
/// in exact f32. `None`: the caller falls back to the columns.
pub fn choose(offers: &[Offer], tf32: bool) -> Option<usize> {
    offers.iter().position(|o| o.runs && o.deterministic && o.workspace <= WORKSPACE_BYTES && (tf32 || !o.tensor_cores))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(runs: bool, deterministic: bool, tensor_cores: bool, workspace: usize) -> Offer {
        Offer { runs, deterministic, tensor_cores, workspace }
    }

    #[test]
    fn the_first_offer_that_runs_deterministically_within_the_workspace_is_taken() {
        let offers = [
            offer(false, true, false, 0),
            offer(true, false, false, 0),
            offer(true, true, false, WORKSPACE_BYTES + 1),
            offer(true, true, false, WORKSPACE_BYTES),
            offer(true, true, false, 0),
        ];
        assert_eq!(choose(&offers, false), Some(3));
        assert_eq!(choose(&offers[..3], false), None);
    }

    #[test]
    fn tensor_core_offers_are_taken_only_with_tf32() {
        let offers = [offer(true, true, true, 0), offer(true, true, false, 0)];
        assert_eq!(choose(&offers, false), Some(1));
        assert_eq!(choose(&offers, true), Some(0));
        assert_eq!(choose(&offers[..1], false), None);
    }

    #[test]
    fn the_environment_chooses_among_what_was_built() {
        assert_eq!(chosen(None, true), CudaConv::Cudnn);
        assert_eq!(chosen(None, false), CudaConv::Columns);
        assert_eq!(chosen(Some("columns"), true), CudaConv::Columns);
        assert_eq!(chosen(Some("cudnn"), true), CudaConv::Cudnn);
        assert_eq!(chosen(Some("cudnn"), false), CudaConv::Columns);
        assert_eq!(chosen(Some("gemm"), true), CudaConv::Cudnn);
    }

    #[test]
    fn tf32_in_the_convolutions_is_a_switch_of_its_own() {
        set_conv_tf32(true);
        assert!(conv_tf32());
        set_conv_tf32(false);
        assert_eq!(conv_tf32(), candle_core::cuda::gemm_reduced_precision_f32());
    }
}
