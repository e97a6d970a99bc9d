#!/usr/bin/env bash
# Everything issue 19 asks of a GPU machine, in one call (15 minutes of device time in
# all, 10 per call): the machine; CPU-vs-CUDA parity of every op (value and gradients)
# and of eval's feature networks (classifier, InceptionV3), every model's first steps
# and the penalty's finite-difference check (if ganzoo's default convolutions fail it,
# cuDNN's deterministic choice, its im2col / col2im ones and then Candle's conv2d are
# tried, and the first that passes runs the rest), again with the convolutions chosen by
# timing (GANZOO_CUDA_CONV=timed) and through cuDNN's graph API
# (GANZOO_CUDA_CONV=cudnn-graph-any) and with the steps replayed as CUDA graphs
# (GANZOO_CUDA_GRAPHS=1; also short toy runs with label and instance noise, eager
# against replayed); every model's speed beside PyTorch's CUDA reference at batch 64 and
# 256, like for like: TF32 in the convolutions on both sides (PyTorch's default), then
# exact f32 on both, ganzoo's convolutions each time by its default rule, through
# cuDNN's graph API (its first engine as PyTorch takes it) and chosen by timing
# (VARIANTS; each timed choice and its timings, the graph API's plans among them, to
# timed.txt), all against one PyTorch run per model, and again with CUDA graphs; then,
# while time is left (LIMIT_S, default 540 s): each DCGAN layer with ganzoo's
# convolutions and Candle's (batch norms too), the models with the im2col / col2im
# convolutions (GANZOO_CUDA_CONV=columns), a user's commands on the GPU (train with
# checkpoints and evaluation, stop by SIGINT, resume on the GPU and on the CPU, sample,
# eval, its metrics against the CPU's), parity and speed with bf16 activations, the
# models with Candle's conv2d for the convolutions (GANZOO_CUDA_CONV=gemm), without
# ganzoo's CUDA kernels (`--kernels gemm`), with cudarc's per-allocation events
# (GANZOO_CUDA_EVENTS=1), with Candle's convolutions, and with TF32 in every product.
# Sections in that order, so a cut-short run keeps the first ones; SECTIONS (below)
# picks some, so a second call can take up what the first left.
#
# Under $OUT, four files (the device tool returns at most 8): summary.txt (every
# section's results and its errors' last lines), performance.md (docs/performance.md with
# the GPU's tables: copy it back into the repository), timed.txt (what the timed
# sections chose per primitive and geometry, with every candidate's time) and
# details.tar.gz (each command's whole output, and the workflow's runs without their
# checkpoints).
#
# Build first, here (no GPU needed):   scripts/build-cuda.sh   → target/cuda/
# Then on the GPU machine, from the repository root, with target/cuda/ganzoo-cuda.xz,
# target/cuda/torchref and target/cuda/fmnist carried there (53 MB; add
# target/cuda/libcurand.so.10.xz only where PYTHON's wheels lack cuRAND — the H200's
# PyTorch has it, and all four exceed the 64 MiB carry limit):
#   OUT=/tmp/out PYTHON=/path/to/venv/bin/python scripts/gpu-check.sh
#
# PYTHON: a Python with PyTorch built for CUDA (and NumPy; unset: the first found in
# /opt/torch/.venv, /opt/*/.venv, /opt/*, PATH); its NVIDIA wheels (cuBLAS,
# cuRAND, NVRTC, cudart, cuDNN) also serve ganzoo. GANZOO_BIN overrides the binary; TORCHREF the
# PyTorch reference (default: build-cuda.sh's copy, else ../shared/bench/torchref; without
# one, ganzoo is timed alone). BENCH_S: seconds per timed repeat (default 2). VARIANTS:
# the convolutions each comparison with PyTorch times (default
# auto,cudnn-graph-any,timed; a list for bench --cuda-conv: auto cudnn cudnn-any
# cudnn-graph cudnn-graph-any columns timed gemm). GANZOO_CUDNN_WORKSPACE_MIB moves
# the bound on cuDNN's workspace (default 64; the comparisons' tables are then keyed
# `-wsN`). Set
# CHECK_CPU_ONLY=1 to run the script's own plumbing on a machine without a GPU (parity
# against Candle's CPU kernels, the workflow and one small bench on the CPU);
# PARITY_MODELS (e.g. gan) and TORCHREF=none shorten it (the CLI's tests do). BATCHES:
# the batches compared, in that order (default "64 256"); BENCH_MODELS (e.g. dcgan64)
# the models every speed section times (default all six).
set -uo pipefail
cd "$(dirname "$0")/.."

bin=${GANZOO_BIN:-target/cuda/ganzoo-cuda}
python=${PYTHON:-}
# Unset: the first Python with PyTorch among the places the lent machines keep it.
if [ -z "$python" ]; then
  for p in /opt/torch/.venv/bin/python3 /opt/*/.venv/bin/python3 /opt/*/bin/python3 python3; do
    if "$p" -c 'import torch' 2>/dev/null; then python=$p; break; fi
  done
  python=${python:-python3}
fi
out=${OUT:-gpu-check}
secs=${BENCH_S:-2}
mkdir -p "$out"
work=$(mktemp -d /tmp/gpu-check.XXXXXX)   # what details.tar.gz holds
tools=$(mktemp -d /tmp/gpu-check-tools.XXXXXX)   # the unpacked binary and cuRAND
# Whatever happens, the details come back as one file; the script's own folders go.
trap 'tar -czf "$out/details.tar.gz" --exclude=checkpoints --exclude=./workflow/data -C "$work" . 2>/dev/null
  rm -rf "$work" "$tools"' EXIT
# Carried compressed (build-cuda.sh writes BIN.xz): unpack with Python's lzma.
unxz() { "$python" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; }
if [ ! -x "$bin" ] && [ -f "$bin.xz" ]; then
  unxz "$bin.xz" "$tools/ganzoo-cuda" && chmod +x "$tools/ganzoo-cuda" && bin=$tools/ganzoo-cuda
fi
log() { echo "== $*" | tee -a "$out/summary.txt"; }
status=0
limit=${LIMIT_S:-540}
# Whether a section expected to take $1 seconds still fits before the limit.
fits() { [ $((SECONDS + $1)) -le "$limit" ] || { log "skipped (${SECONDS}s of ${limit}s used): $2"; false; }; }
# step NAME CMD...: runs CMD, its output into $work/NAME.{txt,err}; summarised, a failure counted.
step() {
  local name=$1 rc=0
  shift
  "$@" > "$work/$name.txt" 2> "$work/$name.err" || rc=$?
  cat "$work/$name.txt" | tee -a "$out/summary.txt"
  tail -3 "$work/$name.err" | tee -a "$out/summary.txt"
  [ "$rc" = 0 ] || { status=1; log "FAILED with exit status $rc: $*"; }
  return "$rc"
}

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
# cuRAND, which Candle opens with every CUDA device, is missing from some PyTorch
# installs: build-cuda.sh packs the toolkit's beside the binary.
curand=$(dirname "${GANZOO_BIN:-target/cuda/ganzoo-cuda}")/libcurand.so.10.xz
if ! (IFS=:; for d in $libs; do ls "$d"/libcurand.so.10* 2>/dev/null; done) | grep -q . && [ -f "$curand" ]; then
  unxz "$curand" "$tools/libcurand.so.10" && libs="${libs:+$libs:}$tools"
fi
export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

log "machine"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "no nvidia-smi"
  "$python" -c 'import torch; b = torch.backends; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "cudnn", b.cudnn.version(), "tf32 conv", b.cudnn.allow_tf32, "tf32 matmul", b.cuda.matmul.allow_tf32)' 2>&1
  ldd --version 2>&1 | head -1; nproc
  # Without memory pools cudarc frees synchronously (slow): CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED = 115.
  "$python" -c 'import ctypes; c = ctypes.CDLL("libcuda.so.1"); v = ctypes.c_int(-1); r = (c.cuInit(0), c.cuDeviceGetAttribute(ctypes.byref(v), 115, 0)); print("memory pools supported:", v.value, "(driver calls returned", r, ")")' 2>&1
  "$bin" --version 2>&1; echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"; env | grep '^GANZOO_' | sort; ldd "$bin" 2>&1 | grep -E "not found|cu|nvrtc"; } | tee -a "$out/summary.txt"

if [ "${CHECK_CPU_ONLY:-0}" = 1 ]; then
  device=(--device cpu) parity_flags=(--kernels gemm) batches=(8)
else
  # BATCHES: the comparisons' batches, in order (a cut-short run keeps the first).
  read -ra batches <<< "${BATCHES:-64 256}"
  device=(--device cuda) parity_flags=()
fi
[ -n "${PARITY_MODELS:-}" ] && parity_flags+=(--models "$PARITY_MODELS")

# A user's commands on the device, each one's status checked: WGAN-GP on a toy with
# checkpoints and in-training evaluation, resumed on the device and on the CPU, sampled
# and evaluated; DCGAN with bf16 activations and in-training evaluation on MNIST-shaped
# noise (no data set travels), sampled in f32 and evaluated (its f32 samples' metrics
# on the device and on the CPU compared); another stopped by SIGINT and resumed.
workflow() {
  local wf=$work/workflow
  mkdir -p "$wf/data/mnist"
  step workflow-data "$python" - "$wf/data/mnist" <<'PY' || return
import random, struct, sys
d, rng = sys.argv[1], random.Random(0)
for split, n in (("train", 640), ("t10k", 640)):
    with open(f"{d}/{split}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">4i", 0x803, n, 28, 28) + rng.randbytes(n * 28 * 28))
    with open(f"{d}/{split}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">2i", 0x801, n) + bytes(i % 10 for i in range(n)))
PY
  local every=(--log-every 5 --checkpoint-every 10)
  step workflow-toy "$bin" train wgan-gp --dataset 25gaussians --iters 20 --eval-every 10 "${every[@]}" \
    "${device[@]}" --out "$wf/toy" || return
  step workflow-toy-resume "$bin" train --resume "$wf/toy" --iters 30 "${device[@]}"
  step workflow-toy-resume-cpu "$bin" train --resume "$wf/toy" --iters 35 --device cpu
  step workflow-toy-sample "$bin" sample --run "$wf/toy" --n 300 "${device[@]}" --out "$wf/toy.png"
  step workflow-toy-eval "$bin" eval --run "$wf/toy" --n 1000 "${device[@]}" --json
  local data=(--data-dir "$wf/data" --no-download)
  step workflow-dcgan "$bin" train dcgan "${data[@]}" --iters 20 --precision bf16 --eval-every 10 "${every[@]}" \
    "${device[@]}" --out "$wf/dcgan" || return
  # SIGINT after a few seconds: a checkpoint, exit status 130, then resumed 5 iterations on.
  local rc=0
  timeout --preserve-status -s INT 8 "$bin" train dcgan "${data[@]}" --iters 100000 "${every[@]}" "${device[@]}" \
    --out "$wf/stopped" > "$work/workflow-stop.txt" 2> "$work/workflow-stop.err" || rc=$?
  local at
  at=$(sed -n 's/^step-\([0-9]*\)$/\1/p' "$wf/stopped/checkpoints/latest" 2>/dev/null)
  local shown=${at:+$((10#$at))}
  log "SIGINT: exit status $rc (130 expected), latest checkpoint at iteration ${shown:-none}"
  if [ "$rc" != 130 ] || [ -z "$at" ]; then
    status=1
    log "FAILED: SIGINT did not end training with exit status 130 and a checkpoint"
    tail -3 "$work/workflow-stop.err" | tee -a "$out/summary.txt"
  else
    step workflow-stop-resume "$bin" train --resume "$wf/stopped" "${data[@]}" --iters $((10#$at + 5)) "${device[@]}"
  fi
  step workflow-dcgan-sample "$bin" sample --run "$wf/dcgan" --precision f32 "${device[@]}" --out "$wf/dcgan.png"
  step workflow-dcgan-eval "$bin" eval --run "$wf/dcgan" "${data[@]}" --n 640 "${device[@]}" --json
  # The same f32 samples' classifier features on the device and on the CPU (the real
  # test images' from the cache the first eval wrote): the metrics must agree.
  local e
  for e in "${device[1]}" cpu; do
    step "workflow-eval-f32-$e" "$bin" eval --run "$wf/dcgan" "${data[@]}" --n 640 --precision f32 --device "$e" \
      --json || return
  done
  step workflow-eval-compare "$python" - "$work/workflow-eval-f32-${device[1]}.txt" "$work/workflow-eval-f32-cpu.txt" <<'PY'
import json, sys
dev, cpu = (json.load(open(p)) for p in sys.argv[1:])
rel = {k: abs(dev[k] - cpu[k]) / max(abs(cpu[k]), 1e-2) for k in ("fid", "inception_score")}
rel["kid"] = abs(dev["kid"]["mean"] - cpu["kid"]["mean"]) / max(abs(cpu["kid"]["mean"]), 1e-2)
gap = {k: abs(dev[k] - cpu[k]) for k in ("precision", "recall")}
ok = max(rel.values()) <= 1e-3 and max(gap.values()) <= 0.01
parts = [f"{k} {v:.1e} relative" for k, v in rel.items()] + [f"{k} {v:.4f} apart" for k, v in gap.items()]
print("eval on the device against the CPU, 640 f32 samples:", ", ".join(parts), "(bounds 1e-3, 0.01):",
      "ok" if ok else "FAILED")
sys.exit(0 if ok else 1)
PY
  log "workflow: runs in details.tar.gz (workflow/), checkpoints left out"
}

# Steps with every draw made before them, replayed: label noise and instance noise (on
# a critic step and on a generator step, on the kept batch (gan) and on fresh noise
# (wgan-gp)), trained eagerly and with CUDA graphs from one seed; each iteration's losses
# must agree within 1e-4 (relative), and the log names the steps recorded.
replay_noise() {
  local rn=$work/replay-noise
  mkdir -p "$rn"
  local runs=("gan --label-noise 0.2 --instance-noise 0.1" "wgan-gp --instance-noise 0.1")
  for run in "${runs[@]}"; do
    local family=${run%% *} flags
    read -ra flags <<< "${run#* }"
    local common=(train "$family" --dataset 8gaussians --iters 12 --log-every 1 --seed 7 "${flags[@]}" "${device[@]}")
    step "replay-noise-$family-eager" "$bin" "${common[@]}" --out "$rn/$family-eager" || continue
    GANZOO_CUDA_GRAPHS=1 RUST_LOG=warn,ganzoo_train::replay=info step "replay-noise-$family-graphs" "$bin" \
      "${common[@]}" --out "$rn/$family-graphs" || continue
    local recorded
    recorded=$(grep -c 'recorded as a CUDA graph' "$work/replay-noise-$family-graphs.err")
    log "$family ($run): $recorded steps recorded as CUDA graphs (2 expected on a GPU: critic and generator)"
    if [ "${CHECK_CPU_ONLY:-0}" != 1 ] && [ "$recorded" != 2 ]; then
      status=1
      log "FAILED: $family's steps were not both recorded (replay-noise-$family-graphs.err in details says why)"
    fi
    step "replay-noise-$family-compare" "$python" - "$rn/$family-eager/metrics.jsonl" "$rn/$family-graphs/metrics.jsonl" <<'PY'
import json, sys
eager, graphs = ([json.loads(l) for l in open(p)] for p in sys.argv[1:])
worst = max(abs(a[k] - b[k]) / max(abs(a[k]), 1e-3) for a, b in zip(eager, graphs) for k in ("d_loss", "g_loss"))
ok = len(eager) == len(graphs) == 12 and worst <= 1e-4
print(f"losses with CUDA graphs against eager, {len(graphs)} iterations: worst relative difference {worst:.2e} (bound 1e-4): {'ok' if ok else 'FAILED'}")
sys.exit(0 if ok else 1)
PY
  done
}

# bench B KERNELS LABEL [FLAGS...]: the models at batch B with --kernels KERNELS.
bench() {
  local b=$1 kernels=$2 label=$3; shift 3
  local models=()
  [ "${CHECK_CPU_ONLY:-0}" = 1 ] && models=(--models gan)
  [ -n "${BENCH_MODELS:-}" ] && models=(--models "$BENCH_MODELS")
  log "speed at batch $b, $label (${device[1]})"
  step "bench-$b-$label" "$bin" bench "${device[@]}" --kernels "$kernels" --batch "$b" --skip-ops --rounds 1 \
    --repeats 2 --target-s "$secs" --warmup-s 1 --wait-quiet-s 0 "${models[@]}" "$@"
}

torchref=${TORCHREF:-}
for d in target/cuda/torchref ../shared/bench/torchref; do
  [ -z "$torchref" ] && [ -f "$d/throughput.py" ] && torchref=$d
done
# The tables go into a copy of docs/performance.md (a section per batch, `cuda-bB on GPU`).
cp docs/performance.md "$out/performance.md"
if [ "$torchref" = none ]; then
  log "no PyTorch reference (TORCHREF=none): ganzoo timed alone"
  torch=()
elif [ -n "$torchref" ]; then
  log "PyTorch reference: $torchref"
  torch=(--torch "$python" --torchref "$torchref")
  # The GPU's tables; a CPU-only run has none (bench keys no CPU table by convolutions).
  [ "${CHECK_CPU_ONLY:-0}" = 1 ] || torch+=(--write "$out/performance.md")
  # Its gan case trains on Fashion-MNIST's training images, read from the path its
  # throughput.py names (Debian's package); the GPU machine has none, so build-cuda.sh
  # copies them into target/cuda/fmnist, carried and put in place here.
  fmnist=$(sed -n 's/^FMNIST = "\(.*\)"$/\1/p' "$torchref/throughput.py")
  carried=target/cuda/fmnist/$(basename "${fmnist:-none}")
  if [ -n "$fmnist" ] && [ ! -f "$fmnist" ]; then
    if [ -f "$carried" ] && mkdir -p "$(dirname "$fmnist")" && cp "$carried" "$fmnist"; then
      log "Fashion-MNIST for the reference's gan case: $carried copied to $fmnist"
    else
      log "the reference's gan case needs $fmnist (absent, and no $carried): its comparisons will fail"
    fi
  fi
else
  log "no PyTorch reference (TORCHREF, target/cuda/torchref, ../shared/bench/torchref): ganzoo timed alone"
  torch=() status=1
fi

# SECTIONS (default: all, in this order) names the sections to run, so that a second
# call can take up what a first left: parity parity-timed parity-graph parity-replay speed
# speed-replay speed-exact layers columns workflow bf16 gemm without-kernels events candle tf32.
want() { [ -z "${SECTIONS:-}" ] || [[ " $SECTIONS " == *" $1 "* ]]; }

if want parity; then
  log "parity: first 5 steps of every model, CPU (ganzoo's kernels) against ${device[1]}"
  # A failure but for gan's and toy's (no convolution in either) lines and eval's feature
  # networks' (a failure there is counted, but does not change the convolutions timed).
  conv_failed() {
    grep -E '"ok":false|"first_over":[0-9]' "$work/parity.txt" \
      | grep -vE '"op_parity":"(classifier|inception)' | grep -qvE '"model":"(gan|toy)"'
  }
  if ! step parity "$bin" bench --parity 5 "${device[@]}" "${parity_flags[@]}" --json \
    && [ "${CHECK_CPU_ONLY:-0}" != 1 ] && conv_failed; then
    # ganzoo's CUDA convolutions (by default cuDNN or the columns by size) may be what
    # failed: with cuDNN's deterministic choice (which passed on 2026-12-04), its im2col /
    # col2im kernels, then Candle's conv2d in their place, does the rest pass? Then time that.
    for conv in cudnn columns gemm; do
      fits 60 "parity with GANZOO_CUDA_CONV=$conv" || break
      log "parity again with GANZOO_CUDA_CONV=$conv"
      if GANZOO_CUDA_CONV=$conv step "parity-conv-$conv" "$bin" bench --parity 5 "${device[@]}" "${parity_flags[@]}" --json; then
        export GANZOO_CUDA_CONV=$conv
        log "GANZOO_CUDA_CONV=$conv from here on: it passed parity where the default failed"
        break
      fi
    done
  fi
fi
# The convolutions chosen by timing (opt-in: two runs may choose differently) against
# the same checks, unless a fallback replaced ganzoo's convolutions above; once timing
# has failed (timed_failed), the comparisons leave it out.
timed_ok() {
  [ -z "${GANZOO_CUDA_CONV:-}" ] || { log "skipped (GANZOO_CUDA_CONV=$GANZOO_CUDA_CONV): $1, chosen by timing"; false; } || return
  [ -z "${timed_failed:-}" ] || { log "skipped (timing failed $timed_failed): $1, chosen by timing"; false; }
}
timed_failed=
if want parity-timed && timed_ok parity && fits 60 "parity with GANZOO_CUDA_CONV=timed"; then
  log "parity with the convolutions chosen by timing (GANZOO_CUDA_CONV=timed)"
  GANZOO_CUDA_CONV=timed step parity-timed "$bin" bench --parity 5 "${device[@]}" "${parity_flags[@]}" --json \
    || timed_failed="its parity"
fi
# cuDNN's graph API (the engine PyTorch's default takes) against the same checks, unless
# a fallback replaced ganzoo's convolutions above; if it fails, the comparisons leave
# the graph API out (graph_failed).
graph_failed=
if want parity-graph && [ -z "${GANZOO_CUDA_CONV:-}" ] && fits 60 "parity with GANZOO_CUDA_CONV=cudnn-graph-any"; then
  log "parity with the convolutions through cuDNN's graph API (GANZOO_CUDA_CONV=cudnn-graph-any)"
  GANZOO_CUDA_CONV=cudnn-graph-any step parity-graph "$bin" bench --parity 5 "${device[@]}" "${parity_flags[@]}" \
    --json || graph_failed=1
fi
# CUDA graphs (GANZOO_CUDA_GRAPHS=1: each step recorded once, then replayed with one
# launch) against the same checks; each model's line says how many step graphs replayed
# (the log, parity-replay.err in details, which steps were recorded or why not). If they fail, speed-replay is skipped (replay_failed).
replay_failed=
if want parity-replay && fits 60 "parity with CUDA graphs"; then
  log "parity with the steps replayed as CUDA graphs (GANZOO_CUDA_GRAPHS=1)"
  GANZOO_CUDA_GRAPHS=1 RUST_LOG=warn,ganzoo_train::replay=info step parity-replay "$bin" bench --parity 5 \
    "${device[@]}" "${parity_flags[@]}" --json || replay_failed=1
  if fits 40 "CUDA graphs with label and instance noise"; then
    log "CUDA graphs with label and instance noise: losses against eager steps"
    replay_noise
  fi
fi
# compared B LABEL: the models at batch B beside PyTorch, ganzoo's convolutions each way
# VARIANTS names (by default its rule by size, cuDNN's graph API's first engine as
# PyTorch takes it, chosen by timing), all against each round's one PyTorch run
# (--cuda-conv; tables cuda-bB…, cuda-bB…-cudnn-graph-any, cuda-bB…-timed), the
# timed choices to timed.txt; after a fallback (GANZOO_CUDA_CONV set above) or a failure
# of timing, the fallback or the default alone; after the graph API failed parity,
# without it. If the variants together fail, the default alone is timed again.
compared() {
  local b=$1 label=$2 variants=() list=${VARIANTS:-auto,cudnn-graph-any,timed}
  [ -n "$graph_failed" ] && list=$(tr , '\n' <<< "$list" | grep -v '^cudnn-graph' | paste -sd, -)
  timed_ok "batch $b, $label" && variants=(--cuda-conv "$list")
  # The timed choices (info, to timed.txt) and what cuDNN's graph API offered and built
  # (debug, in details.tar.gz).
  if ! RUST_LOG=warn,ganzoo_kernels=info,ganzoo_kernels::cuda::cudnn_graph=debug bench "$b" ganzoo "$label-vs-pytorch" "${variants[@]}" "${torch[@]}" \
    && [ ${#variants[@]} -gt 0 ]; then
    timed_failed="at batch $b, $label"
    fits 150 "batch $b, $label, the default alone" && bench "$b" ganzoo "$label-default-vs-pytorch" "${torch[@]}"
  fi
  { echo "== batch $b, $label"; sed 's/\x1b\[[0-9;]*m//g' "$work/bench-$b-$label-vs-pytorch.err" | grep -E "timed convolution|cuDNN graph API: no plan"; } >> "$out/timed.txt"
}
# Beside PyTorch, like for like: TF32 in the convolutions on both sides (PyTorch's
# default, cudnn.allow_tf32; GANZOO_TF32=conv), then exact f32 on both
# (NVIDIA_TF32_OVERRIDE=0, which cuDNN and cuBLAS obey under PyTorch and ganzoo alike).
if want speed; then
  for b in "${batches[@]}"; do
    fits 200 "batch $b beside PyTorch, TF32 in the convolutions" && GANZOO_TF32=conv compared "$b" tf32conv
  done
fi
# The same with the steps replayed as CUDA graphs (tables cuda-bB-tf32conv…-graphs; the
# rows' `graphs` column counts the step graphs replaying, 0 where recording failed),
# with REPLAY_VARIANTS' convolutions (default: ganzoo's rule alone).
if want speed-replay; then
  for b in "${batches[@]}"; do
    [ -z "$replay_failed" ] || { log "skipped (parity with CUDA graphs failed): batch $b with CUDA graphs"; break; }
    fits 150 "batch $b beside PyTorch, CUDA graphs" && GANZOO_TF32=conv GANZOO_CUDA_GRAPHS=1 \
      VARIANTS=${REPLAY_VARIANTS:-auto} compared "$b" tf32conv-graphs
  done
fi
if want speed-exact; then
  for b in "${batches[@]}"; do
    fits 200 "batch $b beside PyTorch, exact f32" && NVIDIA_TF32_OVERRIDE=0 compared "$b" exact
  done
fi
if want layers; then
  for b in "${batches[@]}"; do
    fits 100 "per-layer timings at batch $b" || continue
    log "per layer at batch $b: ganzoo's convolutions and batch norms against Candle's (${device[1]})"
    # cuDNN's offers and choices per primitive and geometry go to layers-$b.err (details).
    RUST_LOG=warn,ganzoo_kernels=debug step "layers-$b" "$bin" bench "${device[@]}" --ops-only --batch "$b" --wait-quiet-s 0
  done
fi
if want columns && [ "${GANZOO_CUDA_CONV:-ganzoo}" != gemm ]; then
  for b in "${batches[@]}"; do
    fits 70 "batch $b with the im2col / col2im convolutions" \
      && GANZOO_CUDA_CONV=columns bench "$b" ganzoo columns
  done
fi
if want workflow && fits 90 "workflow"; then
  log "workflow on ${device[1]}: train, evaluate, SIGINT, resume (also on the CPU), sample, eval"
  workflow
fi
if want bf16; then
  if fits 120 "parity with bf16 activations"; then
    log "parity, bf16 activations on ${device[1]} against the CPU's f32; the penalty's bf16 gradient"
    step parity-bf16 "$bin" bench --parity 5 "${device[@]}" "${parity_flags[@]}" --precision bf16 --json
  fi
  for b in "${batches[@]}"; do
    fits 70 "batch $b with bf16 activations" && bench "$b" ganzoo bf16 --precision bf16
  done
fi
if want gemm && [ "${GANZOO_CUDA_CONV:-ganzoo}" != gemm ]; then
  fits 70 "batch ${batches[0]} with Candle's conv2d for the convolutions" \
    && GANZOO_CUDA_CONV=gemm bench "${batches[0]}" ganzoo conv-as-gemm
fi
want without-kernels && fits 70 "batch ${batches[0]} without ganzoo's CUDA kernels" \
  && bench "${batches[0]}" gemm without-cuda-kernels
want events && fits 70 "batch ${batches[0]} with cudarc's events" \
  && GANZOO_CUDA_EVENTS=1 bench "${batches[0]}" ganzoo cuda-events
if want candle; then
  for b in "${batches[@]}"; do
    fits 70 "batch $b with Candle's convolutions" && bench "$b" candle candle-convolutions
  done
fi
if want tf32; then
  for b in "${batches[@]}"; do
    fits 70 "batch $b with TF32 in every product" && GANZOO_TF32=1 bench "$b" ganzoo tf32
  done
fi
log "exit status $status after ${SECONDS}s"
exit $status
