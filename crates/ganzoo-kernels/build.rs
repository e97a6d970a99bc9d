//! With the `cuda` feature: compiles `src/cuda/kernels.cu` to PTX for the compute
//! capability in `CUDA_COMPUTE_CAP` (default 90), with the `nvcc` on `PATH` (or in
//! `NVCC`), as Candle's kernels are built. Nothing without the feature.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_FEATURE_CUDA");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let source = "src/cuda/kernels.cu";
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    println!("cargo:rerun-if-env-changed=NVCC");
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".into());
    if cap.is_empty() || !cap.bytes().all(|b| b.is_ascii_digit()) {
        panic!("CUDA_COMPUTE_CAP must be a number such as 90, got '{cap}'");
    }
    let nvcc = std::env::var("NVCC").unwrap_or_else(|_| "nvcc".into());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("ganzoo_kernels.ptx");
    let status = Command::new(&nvcc)
        .args(["--ptx", "-O3", "--fmad=false", "-std=c++17"])
        .arg(format!("--gpu-architecture=compute_{cap}"))
        .arg("-o")
        .arg(&out)
        .arg(source)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{nvcc} failed on {source} ({s})"),
        Err(e) => panic!(
            "the cuda feature needs nvcc to compile {source}: running '{nvcc}' failed ({e}); \
             scripts/build-cuda.sh sets up a toolkit"
        ),
    }
}
