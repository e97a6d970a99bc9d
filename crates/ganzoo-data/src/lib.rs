//! Data for ganzoo: the image sets and toy distributions GANs are trained on.
//!
//! - [`IdxReader`] reads MNIST-format IDX files (MNIST, Fashion-MNIST), gzipped or raw;
//!   [`cifar`] reads the CIFAR-10 binary batches; [`folder`] reads image folders.
//!   All three return an [`ImageDataset`] of `u8` pixels.
//! - [`DataLocator`] finds a data set on disk and [`load_dataset`] downloads a missing
//!   one (MD5-verified) from its canonical mirrors.
//! - [`Batcher`] turns an [`ImageDataset`] into seeded, shuffled `f32` batches in [−1, 1].
//! - [`ToyDistribution`] samples the 2-D toys of the WGAN and WGAN-GP papers.
//! - [`grid`] tiles images into PNG grids; [`npy`] reads and writes `.npy` arrays;
//!   [`room`] checks a file of known size fits before it is written; [`partial`] writes a
//!   file whole or not at all; [`safetensors_file`] writes tensors as safetensors;
//!   [`regular_file`] opens only regular files and reads small ones whole within a stated size.
//!
//! Invariant: nothing here trains or knows about models; errors name the file at fault.

pub mod batcher;
pub mod catalog;
pub mod cifar;
pub mod dataset;
pub mod download;
pub mod error;
pub mod folder;
pub mod grid;
#[cfg(feature = "hub")]
pub mod hub;
pub mod idx;
pub mod locate;
pub mod mnist;
pub mod npy;
pub mod partial;
pub mod regular_file;
pub mod room;
pub mod safetensors_file;
pub mod toy;

pub use batcher::{Batch, Batcher, BatcherConfig};
pub use catalog::{DatasetSpec, KnownDataset, RemoteFile, RemoteSource};
pub use dataset::{DatasetStats, ImageDataset, ImageShape, Splits};
pub use download::{DownloadProgress, NoProgress};
pub use error::{DataError, Result};
pub use folder::ImageFolderConfig;
pub use idx::IdxReader;
pub use locate::{load_dataset, load_dataset_located, DataLocator, Fetch, DATA_ENV};
pub use toy::{GaussianPair, ToyDistribution};
