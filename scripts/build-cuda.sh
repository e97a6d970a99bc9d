#!/usr/bin/env bash
# Builds the `ganzoo` binary with CUDA (cargo feature `cuda`) on a machine that has no
# CUDA toolkit and no GPU, for a machine that has both: the NVIDIA toolkit comes from
# PyPI's wheels (CUDA 13.0, to match driver 580), the driver library is a link-time stub.
#
#   scripts/build-cuda.sh            # → target/cuda/ganzoo-cuda (stripped)
#
# Environment: CUDA_COMPUTE_CAP (default 90, an H100/H200), GANZOO_CUDA_VENV (where the
# wheels go; default target/cuda/venv), GANZOO_CUDNN=0 to build without cuDNN (feature
# `cudnn`: the convolutions through cuDNN). The first build is long (nvcc compiles Candle's
# kernels; times in the README, "CUDA"). The binary loads the real libcuda.so.1 and the CUDA
# libraries (cuBLAS, cuRAND, NVRTC, cudart 13; cuDNN 9 unless built without) from
# LD_LIBRARY_PATH where it runs — PyTorch's CUDA wheels carry them all.
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/cuda
venv=${GANZOO_CUDA_VENV:-$out/venv}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}

# 1. The toolkit: nvcc, headers and libraries, all at CUDA 13.0 (PTX from a newer nvcc
#    does not load on an older driver).
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q nvidia-cuda-nvcc==13.0.88 nvidia-cuda-runtime==13.0.96 \
  "nvidia-cuda-cccl==13.0.*" "nvidia-nvvm==13.0.*" "nvidia-cuda-crt==13.0.*" \
  "nvidia-cuda-nvrtc==13.0.*" nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
cuda=$(cd "$venv"/lib/python3*/site-packages/nvidia/cu13 && pwd)

# 2. What the linker needs: unversioned names for the libraries the wheels ship with a
#    version, and a stub libcuda.so (soname libcuda.so.1, as the toolkit's own stubs) that
#    defines every driver function cudarc declares; the driver's real library replaces it
#    at run time.
link=$(mkdir -p "$out/link" && cd "$out/link" && pwd)
for lib in cublas cublasLt cudart nvrtc; do
  ln -sf "$cuda/lib/lib$lib.so.13" "$link/lib$lib.so"
done
ln -sf "$(ls "$cuda"/lib/libcurand.so.* | head -1)" "$link/libcurand.so"
cargo fetch --quiet
cudarc=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* | tail -1)
# The driver functions are the `fn cu…(` declarations inside cudarc's extern blocks.
grep -ho '^ \+fn cu[A-Za-z0-9_]*(' "$cudarc/src/driver/sys/mod.rs" | sed 's/^ *fn //; s/($//' | sort -u |
  sed 's/.*/int &(void) { return 999; }/' > "$link/libcuda-stub.c"
test -s "$link/libcuda-stub.c" || { echo "no driver functions found in $cudarc" >&2; exit 1; }
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$link/libcuda.so" "$link/libcuda-stub.c"
# cuDNN the same way (soname libcudnn.so.9, as cuDNN 9's): its wheel is about 700 MB, and
# only the functions' names are needed here.
features=cudnn
if [ "${GANZOO_CUDNN:-1}" = 0 ]; then
  features=cuda
else
  grep -ho '^ \+fn cudnn[A-Za-z0-9_]*(' "$cudarc/src/cudnn/sys/mod.rs" | sed 's/^ *fn //; s/($//' | sort -u |
    sed 's/.*/int &(void) { return 999; }/' > "$link/libcudnn-stub.c"
  test -s "$link/libcudnn-stub.c" || { echo "no cuDNN functions found in $cudarc" >&2; exit 1; }
  cc -shared -fPIC -Wl,-soname,libcudnn.so.9 -o "$link/libcudnn.so" "$link/libcudnn-stub.c"
fi

# 3. The build.
export PATH="$cuda/bin:$PATH" CUDA_ROOT="$cuda" CUDA_PATH="$cuda" CUDA_HOME="$cuda"
export LIBRARY_PATH="$link${LIBRARY_PATH:+:$LIBRARY_PATH}"
cargo build --release -p ganzoo-cli --features "$features" --target-dir "$out"
strip -o "$out/ganzoo-cuda" "$out/release/ganzoo"
# Compressed for carrying to the GPU machine (its copy limit is 64 MiB, which the binary,
# with Candle's kernels for every dtype, exceeds). gpu-check.sh unpacks it.
xz -T0 -6 -k -f "$out/ganzoo-cuda"
# cuRAND too: Candle opens it with every CUDA device, and some PyTorch installs lack it
# (sizes and the carry limit: README, "CUDA").
xz -T0 -6 -c "$(ls "$cuda"/lib/libcurand.so.10* | head -1)" > "$out/libcurand.so.10.xz"
# The PyTorch reference gpu-check.sh times beside ganzoo: `../shared` does not travel to
# the GPU machine, a folder of the repository named in `carry` does.
ref=${TORCHREF:-../shared/bench/torchref}
rm -rf "$out/torchref"
if [ -f "$ref/throughput.py" ]; then
  cp -r "$ref" "$out/torchref" && chmod -R u+w "$out/torchref"
else
  echo "no PyTorch reference at $ref: gpu-check.sh will time ganzoo alone" >&2
fi
# The reference's gan case reads Fashion-MNIST's training images from the path its
# throughput.py names; gpu-check.sh puts this copy there (the GPU machine has none).
rm -rf "$out/fmnist"
fmnist=$(sed -n 's/^FMNIST = "\(.*\)"$/\1/p' "$out/torchref/throughput.py" 2>/dev/null)
if [ -n "$fmnist" ] && [ -f "$fmnist" ]; then
  mkdir -p "$out/fmnist" && cp "$fmnist" "$out/fmnist/"
elif [ -n "$fmnist" ]; then
  echo "no $fmnist (apt-get install -y dataset-fashion-mnist): the reference's gan case will fail on the GPU" >&2
fi
ls -l "$out/ganzoo-cuda" "$out/ganzoo-cuda.xz" "$out/libcurand.so.10.xz"
