//! Networks of the classic GANs on Candle: MLPs ([`mlp`]), DCGAN with batch-norm,
//! layer-norm and unnormalised variants ([`dcgan`]).
//!
//! Every model is a [`Network`]: a named layer sequence built over a
//! [`candle_nn::VarBuilder`] (weights named like `gen.block1.conv.weight`) whose
//! variables come from a seeded [`ParamStore`]. Discriminators end in a logit (no
//! sigmoid inside a model). A network also gives its differentiable input gradient
//! ([`Network::input_gradient`]), which the WGAN-GP penalty is built on. Every
//! convolution goes through [`conv`], the one place to swap its implementation.

pub mod backend;
pub mod conv;
pub mod conv_as_gemm;
pub mod dcgan;
pub mod error;
pub mod footprint;
pub mod linear;
pub mod mlp;
pub mod network;
pub mod norm;
pub mod params;
pub mod summary;

pub use backend::{kernel_backend, set_kernel_backend, KernelBackend};
pub use dcgan::{DcganConfig, Norm};
pub use error::{ModelError, Result};
pub use footprint::Footprint;
pub use linear::LinearInit;
pub use mlp::MlpConfig;
pub use network::{Activation, Layer, Network};
pub use params::ParamStore;
pub use summary::{summarize, LayerSummary};
