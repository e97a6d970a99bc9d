//! ganzoo: the classic GAN family — GAN, DCGAN, WGAN and WGAN-GP — on Candle.
//!
//! This facade re-exports the workspace's crates so a user can depend on one
//! package; each crate can also be used alone:
//! - [`data`] (`ganzoo-data`): data sets, toy distributions, batching, image grids;
//! - [`models`] (`ganzoo-models`): MLP and DCGAN networks, seeded parameters;
//! - [`kernels`] (`ganzoo-kernels`): the convolution kernels the models use on the CPU;
//! - [`losses`] (`ganzoo-losses`): GAN objectives and the gradient penalty;
//! - [`train`] (`ganzoo-train`): the training loop, checkpoints, sampling;
//! - [`eval`] (`ganzoo-eval`): sample-quality metrics (toy mode counts, W1, FID, KID);
//! - [`charts`] (`ganzoo-charts`): labelled PNG charts (lines, histograms, value surfaces);
//! - [`tensorboard`] (`ganzoo-tensorboard`): TensorBoard event files, written and read;
//! - [`figures`] (`ganzoo-figures`): the papers' figures recomputed.

pub use ganzoo_charts as charts;
pub use ganzoo_data as data;
pub use ganzoo_eval as eval;
pub use ganzoo_figures as figures;
pub use ganzoo_kernels as kernels;
pub use ganzoo_losses as losses;
pub use ganzoo_models as models;
pub use ganzoo_tensorboard as tensorboard;
pub use ganzoo_train as train;
