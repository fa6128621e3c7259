#!/usr/bin/env bash
# The scaling grid on a GPU machine (the device tool): all eight points train at once on the one GPU (tiny
# models leave it mostly idle one at a time), then the weights (one tar) and one log come back through $OUT (at most 8
# files). Here, afterwards: untar them into .cache/grid and run tools/train_grid.sh (it only exports what is
# trained) and tools/eval_grid.sh.
#   run: STEPS=3000 tools/device_grid.sh      (needs the default set's stage-1 checkpoint carried: .cache/run1/vision.pt)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEVICE=cuda BATCH=${BATCH:-512} STEPS=${STEPS:-3000} WORKERS=${WORKERS:-2} GRID=${GRID:-/tmp/grid} EXPORT=0
out=${OUT:-/tmp/grid-out}
mkdir -p "$out" "$GRID"
for d in tiny small medium large; do
  for c in quecc tokenpacker; do
    tools/train_grid.sh "$d" "$c" > "$GRID/$d-$c.stdout" 2>&1 &
  done
done
wait
(cd "$GRID" && tar -cf "$out/grid-weights.tar" ./*.weights.pt) 2>/dev/null
for f in "$GRID"/*.stdout; do echo "== $f"; tr '\r' '\n' < "$f" | grep -v '^\[' ; done > "$out/grid.log"
ls -la "$out"
