//! ganzoo's cross-crate integration tests: one test binary, a module per topic.
//! They make their own fixtures; the few that read real data — `../shared/data`
//! beside the checkout (see its README) and Debian's `dataset-fashion-mnist` — are
//! `#[ignore]`d by default and run with `cargo test --workspace -- --include-ignored`.

// Tests may unwrap: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod alloc;
mod batcher;
mod bounds;
mod channels_last;
mod charts;
mod cifar;
mod common;
mod conv_as_gemm;
mod cuda;
mod cuda_emulated;
mod cuda_launches;
mod download;
mod eval;
mod figures;
mod folder;
mod inception;
mod isa;
mod kernels;
mod losses;
mod mnist;
mod models;
mod npy;
mod parsers;
mod penalty;
mod report;
mod run_dir;
mod tidy;
mod toy;
mod train;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;
