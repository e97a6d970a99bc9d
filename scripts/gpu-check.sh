#!/usr/bin/env bash
# Everything issue 19 asks of a GPU machine, in one call (15 minutes of device time in
# all, 10 per call): the machine, CPU-vs-CUDA parity of every op (value and gradients)
# and every model's first steps (f32, then bf16 activations with the penalty's bf16
# gradient), every model's speed beside PyTorch's CUDA reference at batch 64 and 256,
# then — while time is left (LIMIT_S, default 540 s) — the models with bf16
# activations, each DCGAN layer with ganzoo's convolutions (Candle's cuBLAS) and
# Candle's own (batch norms: ganzoo's CUDA kernels, Candle's ops, PyTorch's), the models
# without ganzoo's CUDA kernels (`--kernels gemm`: batch norm, layer norm, leaky ReLU and
# optimiser as Candle's ops), with cudarc's per-allocation events (GANZOO_CUDA_EVENTS=1),
# with Candle's convolutions, and with TF32 allowed.
# Results under $OUT; sections in that order, so a cut-short run keeps the first ones.
#
# Build first, here (no GPU needed):   scripts/build-cuda.sh   → target/cuda/ganzoo-cuda
# Then on the GPU machine, from the repository root:
#   OUT=/tmp/out PYTHON=/path/to/venv/bin/python scripts/gpu-check.sh
#
# PYTHON: a Python with PyTorch built for CUDA; its NVIDIA wheels (cuBLAS, cuRAND,
# NVRTC, cudart) also serve ganzoo. GANZOO_BIN overrides the binary. BENCH_S: seconds per
# timed repeat (default 2). Set CHECK_CPU_ONLY=1 to run the script's own plumbing on a
# machine without a GPU (parity against Candle's CPU kernels, one small CPU bench).
set -uo pipefail
cd "$(dirname "$0")/.."

bin=${GANZOO_BIN:-target/cuda/ganzoo-cuda}
python=${PYTHON:-python3}
out=${OUT:-gpu-check}
secs=${BENCH_S:-2}
mkdir -p "$out"
# Carried compressed (build-cuda.sh writes BIN.xz): unpack with Python's lzma.
unxz() { "$python" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; }
if [ ! -x "$bin" ] && [ -f "$bin.xz" ]; then
  unxz "$bin.xz" /tmp/ganzoo-cuda && chmod +x /tmp/ganzoo-cuda && bin=/tmp/ganzoo-cuda
fi
log() { echo "== $*" | tee -a "$out/summary.txt"; }
status=0
limit=${LIMIT_S:-540}
# Whether a section expected to take $1 seconds still fits before the limit.
fits() { [ $((SECONDS + $1)) -le "$limit" ] || { log "skipped (${SECONDS}s of ${limit}s used): $2"; false; }; }

# The CUDA libraries PyTorch's wheels carry, for ganzoo's dynamic links.
libs=$("$python" - <<'PY' 2>/dev/null
import glob, os
try:
    import nvidia
    roots = list(nvidia.__path__)
except ImportError:
    roots = []
print(":".join(sorted({os.path.dirname(p) for r in roots for p in glob.glob(os.path.join(r, "**", "lib*.so*"), recursive=True)})))
PY
)
# cuRAND, which Candle opens with every CUDA device, is not among PyTorch's CUDA 13
# wheels (torch 2.15+cu132 has none): build-cuda.sh packs the toolkit's beside the binary.
curand=$(dirname "${GANZOO_BIN:-target/cuda/ganzoo-cuda}")/libcurand.so.10.xz
if ! (IFS=:; for d in $libs; do ls "$d"/libcurand.so.10* 2>/dev/null; done) | grep -q . && [ -f "$curand" ]; then
  mkdir -p /tmp/ganzoo-cuda-libs && unxz "$curand" /tmp/ganzoo-cuda-libs/libcurand.so.10 && libs="${libs:+$libs:}/tmp/ganzoo-cuda-libs"
fi
export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

log "machine"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "no nvidia-smi"
  "$python" -c 'import torch; b = torch.backends; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "cudnn", b.cudnn.version(), "tf32 conv", b.cudnn.allow_tf32, "tf32 matmul", b.cuda.matmul.allow_tf32)' 2>&1
  "$bin" --version 2>&1; echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"; ldd "$bin" 2>&1 | grep -E "not found|cu|nvrtc"; } | tee -a "$out/summary.txt"

if [ "${CHECK_CPU_ONLY:-0}" = 1 ]; then
  device=(--device cpu) parity_kernels=(--kernels gemm) batches=(8)
else
  device=(--device cuda) parity_kernels=() batches=(64 256)
fi

log "parity: first 5 steps of every model, CPU (ganzoo's kernels) against ${device[1]}"
"$bin" bench --parity 5 "${device[@]}" "${parity_kernels[@]}" --json > "$out/parity.jsonl" 2> "$out/parity.err" || status=1
cat "$out/parity.jsonl" | tee -a "$out/summary.txt"; tail -3 "$out/parity.err" | tee -a "$out/summary.txt"
log "parity, bf16 activations on ${device[1]} against the CPU's f32; the penalty's bf16 gradient"
"$bin" bench --parity 5 "${device[@]}" "${parity_kernels[@]}" --precision bf16 --json > "$out/parity-bf16.jsonl" \
  2> "$out/parity-bf16.err" || status=1
cat "$out/parity-bf16.jsonl" | tee -a "$out/summary.txt"; tail -3 "$out/parity-bf16.err" | tee -a "$out/summary.txt"

# bench B KERNELS LABEL [FLAGS...]: the models at batch B with --kernels KERNELS.
bench() {
  local b=$1 kernels=$2 label=$3; shift 3
  local models=()
  [ "${CHECK_CPU_ONLY:-0}" = 1 ] && models=(--models gan)
  log "speed at batch $b, $label (${device[1]})"
  "$bin" bench "${device[@]}" --kernels "$kernels" --batch "$b" --skip-ops --rounds 1 --repeats 2 --target-s "$secs" \
    --warmup-s 1 --wait-quiet-s 0 "${models[@]}" "$@" > "$out/bench-$b-$label.txt" 2> "$out/bench-$b-$label.err" || status=1
  cat "$out/bench-$b-$label.txt" | tee -a "$out/summary.txt"; tail -3 "$out/bench-$b-$label.err" | tee -a "$out/summary.txt"
}
torch=(--torch "$python" --torchref "${TORCHREF:-../shared/bench/torchref}")
# The tables go into a copy of docs/performance.md (a section per batch, `cuda-bB`):
# copy it back into the repository to keep them.
cp docs/performance.md "$out/performance.md"

for b in "${batches[@]}"; do
  fits 150 "batch $b beside PyTorch" && bench "$b" ganzoo ganzoo-vs-pytorch "${torch[@]}" --write "$out/performance.md"
done
for b in "${batches[@]}"; do
  fits 70 "batch $b with bf16 activations" && bench "$b" ganzoo bf16 --precision bf16
done
if fits 100 "per-layer timings"; then
  log "per layer at batch ${batches[0]}: ganzoo's convolutions and batch norms against Candle's (${device[1]})"
  "$bin" bench "${device[@]}" --ops-only --batch "${batches[0]}" --wait-quiet-s 0 > "$out/layers.txt" 2> "$out/layers.err" || status=1
  cat "$out/layers.txt" | tee -a "$out/summary.txt"; tail -3 "$out/layers.err" | tee -a "$out/summary.txt"
fi
fits 70 "batch ${batches[0]} without ganzoo's CUDA kernels" && bench "${batches[0]}" gemm without-cuda-kernels
fits 70 "batch ${batches[0]} with cudarc's events" && GANZOO_CUDA_EVENTS=1 bench "${batches[0]}" ganzoo cuda-events
for b in "${batches[@]}"; do
  fits 70 "batch $b with Candle's convolutions" && bench "$b" candle candle-convolutions
done
for b in "${batches[@]}"; do
  fits 70 "batch $b with TF32" && GANZOO_TF32=1 bench "$b" ganzoo tf32
done
log "exit status $status after ${SECONDS}s"
exit $status
