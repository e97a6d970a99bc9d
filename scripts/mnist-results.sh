#!/usr/bin/env bash
# Trains every family on MNIST (../shared/data) for a fixed number of generator
# iterations and seeds, scores each run with `ganzoo eval` (the shipped MNIST classifier,
# 10,000 samples against the 10,000 test digits) and prints docs/results.md's rows.
# Usage: scripts/mnist-results.sh [ITERS] [SEEDS...]; runs go to ${OUT:-runs/results};
# FAMILIES="gan wgan" limits the presets (default: gan dcgan wgan wgan-gp);
# DATASET=fashion-mnist DATA=/usr/share/datasets does the same on Fashion-MNIST (its
# shipped classifier); DATASET=cifar10 on CIFAR-10 (the 10,000 images of its first batch).
set -euo pipefail
cd "$(dirname "$0")/.."
G=${GANZOO:-target/release/ganzoo}
OUT=${OUT:-runs/results}
DATA=${DATA:-../shared/data}
DATASET=${DATASET:-mnist}
ITERS=${1:-300}
shift || true
SEEDS=("$@")
[ ${#SEEDS[@]} -gt 0 ] || SEEDS=(1 2)
mkdir -p "$OUT"
echo "| run | FID | KID | score | classes covered | precision | recall |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for family in ${FAMILIES:-gan dcgan wgan wgan-gp}; do
  for seed in "${SEEDS[@]}"; do
    run="$OUT/$family-$DATASET-s$seed"
    "$G" train "$family" --dataset "$DATASET" --data-dir "$DATA" --iters "$ITERS" --seed "$seed" --checkpoint-every 100000 \
      --out "$run" --overwrite >/dev/null 2>&1
    "$G" eval --run "$run" --data-dir "$DATA" --json >"$run.eval.json"
    python3 - "$family" "$seed" "$run.eval.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[3]))
cells = [f"{sys.argv[1]}, seed {sys.argv[2]}", f"{r['fid']:.1f}", f"{r['kid']['mean']:.0f} ± {r['kid']['std']:.0f}",
         f"{r['inception_score']:.2f}", str(r["classes_covered"]), f"{r['precision']:.3f}", f"{r['recall']:.3f}"]
print("| " + " | ".join(cells) + " |")
PY
  done
done
