//! How good a generator is, measured: the numbers two runs are compared by and a recipe
//! change is judged by.
//!
//! - [`toy`]: on 2-D mixtures of Gaussians, the VEEGAN / PacGAN mode counts
//!   (high-quality samples, modes covered, KL to a uniform mode histogram) and a
//!   Wasserstein-1 estimate against fresh real samples, beside its real-vs-real floor.
//! - [`transport`]: Wasserstein-1 between point sets — exact optimal assignment on small
//!   sets, sliced over fixed random directions on large ones.
//! - [`frechet`]: the Fréchet distance between Gaussians fitted to features (FID's
//!   formula), computed in f64 through `faer`'s symmetric eigendecompositions.
//! - [`classifier`], [`image`]: a small CNN trained on the domain (MNIST, Fashion-MNIST,
//!   CIFAR-10) whose features give FID, KID, the Inception-style score, class coverage
//!   and precision / recall for generated images.
//! - [`kid`]: the kernel inception distance, an unbiased MMD² with the cubic polynomial
//!   kernel, averaged over subsets.

pub mod classifier;
pub mod error;
pub mod feature_cache;
pub mod files;
pub mod frechet;
pub mod image;
pub mod inception;
pub mod inception_weights;
pub mod kid;
pub mod precision_recall;
pub mod pth;
pub mod toy;
pub mod transport;

pub use error::{EvalError, Result};
pub use frechet::{frechet_distance, Gaussian};
pub use image::ImageReport;
pub use kid::{kernel_inception_distance, Kid};
pub use toy::{toy_metrics, ToyReport};

/// A report of either kind, as `ganzoo eval` prints it and `metrics.jsonl` stores it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum EvalReport {
    Toy(ToyReport),
    Image(ImageReport),
}
