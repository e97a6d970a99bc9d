//! ganzoo's cross-crate integration tests: one test binary, a module per topic.
//! Real data comes from `../shared/data` beside the checkout (see its README) and
//! Fashion-MNIST from Debian's `dataset-fashion-mnist`.

mod batcher;
mod channels_last;
mod cifar;
mod common;
mod download;
mod folder;
mod kernels;
mod losses;
mod mnist;
mod models;
mod npy;
mod penalty;
mod toy;
mod train;
