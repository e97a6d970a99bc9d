//! CPU against CUDA: every op the models run off ganzoo's CPU kernels (convolutions,
//! normalisations, the leaky ReLU, optimiser steps; value and gradients, on CUDA ganzoo's
//! CUDA kernels where it has them), every benchmark model's first training steps
//! from one seed, and the penalty's second-order gradient against finite differences on
//! the GPU. Skipped, with a message, where no CUDA GPU is visible (every build without
//! the `cuda` feature: `cargo test --features cuda -- cuda::` on a GPU machine). The
//! convolutions are checked every way on the GPU: ganzoo's CUDA convolutions (the
//! default: cuDNN or the columns by size in a build with the `cudnn` feature), cuDNN's
//! deterministic choice (`GANZOO_CUDA_CONV=cudnn`) and its first of all
//! (`GANZOO_CUDA_CONV=cudnn-any`), the same through cuDNN's graph API
//! (`GANZOO_CUDA_CONV=cudnn-graph`, `cudnn-graph-any`), its im2col / col2im kernels around cuBLAS
//! (`GANZOO_CUDA_CONV=columns`), the fastest of those by timing
//! (`GANZOO_CUDA_CONV=timed`) and Candle's conv2d with ganzoo's gradients
//! (`GANZOO_CUDA_CONV=gemm`, the fallback); and with bf16 operands (mixed precision). The
//! same op checks run on the CPU against that fallback's ops (`GANZOO_KERNELS=gemm`).
//! `eval`'s feature networks (the MNIST classifier, InceptionV3) are checked the same
//! way, forward only.

use ganzoo_bench::feature_parity::feature_parity;
use ganzoo_bench::op_parity::{op_parity, tolerance, OpParity};
use ganzoo_bench::parity::{compare, losses, penalty_check};
use ganzoo_bench::{BenchModel, Target};
use ganzoo_train::device::DeviceSpec;

use crate::common::rerun_in_child;

fn assert_within(ops: &[OpParity], bound: f64) {
    let over: Vec<&OpParity> = ops.iter().filter(|p| p.worst() > bound).collect();
    assert!(over.is_empty(), "over {bound:.0e}: {over:?}");
}

#[test]
fn cuda_matches_the_cpu_kernels_op_by_op_and_model_by_model() {
    let Some(cuda) = gpu() else { return };
    assert_within(&op_parity(cuda, 2).unwrap(), tolerance(ganzoo_kernels::conv_tf32()));
    assert_within(&feature_parity(cuda).unwrap(), tolerance(ganzoo_kernels::conv_tf32()));
    for model in BenchModel::ALL {
        let (cpu, gpu) = (losses(model, 0, 3, Target::default()).unwrap(), losses(model, 0, 3, cuda).unwrap());
        let p = compare(&cpu, &gpu, 1e-3, 0.05).unwrap();
        assert!(p.ok(), "{p:?}");
    }
    for (critic, fd) in penalty_check(cuda).unwrap() {
        assert!(fd.ok(), "{critic}: {fd:?}");
    }
}

/// The GPU, or `None` with a message.
fn gpu() -> Option<Target> {
    let cuda = Target { device: DeviceSpec::Cuda(0), ..Target::default() };
    match cuda.device() {
        Ok(_) => Some(cuda),
        Err(e) => {
            eprintln!("skipped: no CUDA GPU visible ({})", e.to_string().lines().next().unwrap_or_default());
            None
        }
    }
}

/// Op by op on the GPU with `GANZOO_CUDA_CONV=value`, in a child process that reruns `test`.
fn op_parity_with_convolutions(test: &str, value: &str) {
    let Some(cuda) = gpu() else { return };
    if std::env::var("GANZOO_CUDA_CONV").as_deref() != Ok(value) {
        rerun_in_child(test, ("GANZOO_CUDA_CONV", value));
        return;
    }
    assert_within(&op_parity(cuda, 2).unwrap(), tolerance(ganzoo_kernels::conv_tf32()));
}

#[test]
fn cuda_fallback_convolutions_match_the_cpu_kernels() {
    op_parity_with_convolutions("cuda::cuda_fallback_convolutions_match_the_cpu_kernels", "gemm");
}

#[test]
fn cuda_cudnn_convolutions_match_the_cpu_kernels() {
    op_parity_with_convolutions("cuda::cuda_cudnn_convolutions_match_the_cpu_kernels", "cudnn");
}

#[test]
fn cuda_any_cudnn_convolutions_match_the_cpu_kernels() {
    op_parity_with_convolutions("cuda::cuda_any_cudnn_convolutions_match_the_cpu_kernels", "cudnn-any");
}

#[test]
fn cuda_graph_api_convolutions_match_the_cpu_kernels() {
    op_parity_with_convolutions("cuda::cuda_graph_api_convolutions_match_the_cpu_kernels", "cudnn-graph");
}

#[test]
fn cuda_any_graph_api_convolutions_match_the_cpu_kernels() {
    op_parity_with_convolutions("cuda::cuda_any_graph_api_convolutions_match_the_cpu_kernels", "cudnn-graph-any");
}

#[test]
fn cuda_column_convolutions_match_the_cpu_kernels() {
    op_parity_with_convolutions("cuda::cuda_column_convolutions_match_the_cpu_kernels", "columns");
}

#[test]
fn cuda_timed_convolutions_match_the_cpu_kernels() {
    op_parity_with_convolutions("cuda::cuda_timed_convolutions_match_the_cpu_kernels", "timed");
}

/// Mixed precision: every DCGAN convolution with bf16 operands on the GPU (through cuDNN's
/// graph API where it is built, else Candle's bf16 `conv2d`) against the f32 kernels.
#[test]
fn cuda_bf16_convolutions_match_the_cpu_kernels() {
    let Some(cuda) = gpu() else { return };
    let ops = ganzoo_bench::op_parity::conv_parity_in(candle_core::DType::BF16, cuda, 2).unwrap();
    assert_within(&ops, ganzoo_bench::op_parity::BF16_TOLERANCE);
}

#[test]
fn the_cuda_path_matches_the_kernels_op_by_op_on_the_cpu() {
    // In a child process with every convolution as Candle's conv2d with ganzoo's
    // gradients and the normalisations as Candle's ops, as CUDA's fallback runs them.
    if std::env::var("GANZOO_KERNELS").as_deref() != Ok("gemm") {
        rerun_in_child("cuda::the_cuda_path_matches_the_kernels_op_by_op_on_the_cpu", ("GANZOO_KERNELS", "gemm"));
        return;
    }
    let ops = op_parity(Target::default(), 2).unwrap();
    assert_within(&ops, tolerance(false));
    assert_eq!(ops.len(), 28, "{:?}", ops.iter().map(|p| &p.op).collect::<Vec<_>>());
    // Another code path, so other roundings: not the kernels compared with themselves.
    assert!(ops.iter().filter(|p| p.worst() > 0.0).count() >= 19, "{ops:?}");
    // The feature networks too: Candle's convolutions and pools, NCHW, against the
    // kernels (Inception channels-last).
    let features = feature_parity(Target::default()).unwrap();
    assert_within(&features, tolerance(false));
    assert_eq!(features.len(), 2, "{features:?}");
    assert!(features.iter().all(|p| p.errors.iter().all(|(_, e)| *e > 0.0)), "{features:?}");
}
