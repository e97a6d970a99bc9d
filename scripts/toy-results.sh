#!/usr/bin/env bash
# Trains every family on the 2-D toys for a fixed budget and seeds, scores each run with
# `ganzoo eval`, and prints the rows of docs/results.md's toy table (plus the real-data
# floor and uniform noise). Usage: scripts/toy-results.sh [ITERS|preset] [SEEDS...]
# (default 1000, seeds 1 2; `preset`: each preset's own budget). FAMILIES and TOYS pick
# a subset (default: gan dcgan wgan wgan-gp; 8gaussians 25gaussians).
# Release binary: cargo build --release -p ganzoo-cli. Runs go to ${OUT:-runs/results}.
set -euo pipefail
cd "$(dirname "$0")/.."
G=${GANZOO:-target/release/ganzoo}
OUT=${OUT:-runs/results}
ITERS=${1:-1000}
shift || true
SEEDS=("$@")
[ ${#SEEDS[@]} -gt 0 ] || SEEDS=(1 2)
read -r -a FAMILIES <<<"${FAMILIES:-gan dcgan wgan wgan-gp}"
read -r -a TOYS <<<"${TOYS:-8gaussians 25gaussians}"
BUDGET=(--iters "$ITERS")
LABEL="$ITERS generator iterations"
[ "$ITERS" != preset ] || { BUDGET=(); LABEL="each preset's generator iterations"; }
mkdir -p "$OUT"
row() { # name, json
  python3 - "$1" "$2" <<'PY'
import json, sys
r = json.loads(sys.argv[2])
f = lambda v: "—" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
cells = [sys.argv[1], f"{f(r['modes_covered'])} / {f(r['modes'])}", f(r["modes_covered_strict"]),
         f(r["high_quality"]), f(r["kl_uniform"]), f"{r['w1']:.3f}", f"{r['w1_real_floor']:.3f}"]
print("| " + " | ".join(cells) + " |")
PY
}
for toy in "${TOYS[@]}"; do
  echo "## $toy, $LABEL, seeds ${SEEDS[*]}, 2,000 samples, eval seed 0"
  echo "| run | modes covered | ≥ 20 samples | high-quality | KL(modes ‖ uniform) | W1 | W1 real vs real |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  "$G" data sample "$toy" --n 2000 --seed 99 --out "$OUT/real-$toy.npy" --overwrite >/dev/null
  row "real samples" "$("$G" eval --samples "$OUT/real-$toy.npy" --dataset "$toy" --json)"
  python3 - "$OUT/uniform-$toy.npy" <<'PY'
import random, struct, sys
random.seed(0)
h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2000, 2), }"
h += " " * (63 - (10 + len(h)) % 64) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode())
    f.write(struct.pack("<4000f", *[random.uniform(-2, 2) for _ in range(4000)]))
PY
  row "uniform on [−2, 2]²" "$("$G" eval --samples "$OUT/uniform-$toy.npy" --dataset "$toy" --json)"
  for family in "${FAMILIES[@]}"; do
    for seed in "${SEEDS[@]}"; do
      run="$OUT/$family-$toy-s$seed"
      "$G" train "$family" --dataset "$toy" "${BUDGET[@]}" --seed "$seed" --sample-every 100000 \
        --checkpoint-every 100000 --out "$run" --overwrite >/dev/null 2>&1
      row "$family, seed $seed" "$("$G" eval --run "$run" --n 2000 --seed 0 --json)"
    done
  done
  echo
done
