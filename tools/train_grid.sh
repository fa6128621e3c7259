#!/usr/bin/env bash
# Trains the scaling-law grid on the world (issue 4's miniature reproduction) and exports one model set
# per (decoder, compressor) point, for tools/eval_grid.sh to score with `assistant eval` on the same scenes.
#   tools/train_grid.sh                       CPU: tiny/small/medium x {quecc, tokenpacker}, every V in one run
#   tools/train_grid.sh medium tokenpacker    one point
#   LANES=2 tools/train_grid.sh               the points in 2 lanes at once, one thread each (on 2 CPU cores this
#                                             nearly doubles throughput: small ran 3.2 steps/s alone on 2 threads and
#                                             3.2 steps/s on 1 thread beside medium's lane at 1.7)
#   tools/device_grid.sh                      all eight at once on a GPU machine (the device tool's $OUT)
# Every point trains the same number of steps on the same pre-generated scenes from the same frozen vision
# encoder (stage 1 of the default set), so the points differ only in decoder size and compressor. Each run
# cycles V through {1, 4, 16, 64} step by step, so one run serves every V of its (decoder, compressor).
# Checkpoints resume (every 500 steps); a finished point is skipped. EXPORT=0 skips the export. The frozen
# encoder runs once per pre-generated scene (--cache-features: the same losses, small 1.6x faster here).
# lr 1e-3: at 2e-3 (batch 128) the small decoder was still at the answer-prior plateau after 7,000 steps (train
# loss 0.94, accuracy ~0.5); at 1e-3 it left it by step 3,000 (validation 64-70%, loss 0.63).
# For wider decoders 1e-3 is too high: medium at 5e-4 matched its 14,000-step 1e-3 accuracy after 3,000 steps
# (docs/SCALING.md). The committed grid used 1e-3 throughout; LR=5e-4 GRID=... reruns a size at another rate.
# The relational stage (issue 3's recipe for the spatial and nearest families) on top of a finished grid:
#   INIT=.cache/grid-base RELATIONAL=1 STEPS=7000 LR=5e-4 GRID=.cache/grid-rel LANES=2 tools/train_grid.sh
# starts each point from INIT/<point>.weights.pt with a fresh optimiser and adds the name and position losses.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=${PYTHON:-/usr/bin/python3}
dev=${DEVICE:-cpu}
grid=${GRID:-.cache/grid}
vision=${VISION:-.cache/run1/vision.pt}
# 14,000 steps for every point: at 8,000 the medium decoder was still climbing out of the answer-prior plateau,
# which it leaves later than small (step ~4,500 against ~3,000; validation 61-70% against small's 74-83%).
steps=${STEPS:-14000}
batch=${BATCH:-128}
workers=${WORKERS:-2}
export PYTHONUNBUFFERED=1
mkdir -p "$grid/sets"
[ -f "$vision" ] || { echo "train_grid: no stage-1 checkpoint at $vision (VISION=... or run tools/train_default.sh)" >&2; exit 2; }
if [ $# -eq 2 ]; then points="$1-$2"
# Cheapest first, each QueCC point before its baseline. The large decoder (2.1M parameters, ~1 step/s on one CPU
# thread) is left to tools/device_grid.sh: POINTS="... large-quecc large-tokenpacker" adds it here.
elif [ $# -eq 0 ]; then points=${POINTS:-tiny-quecc small-quecc tiny-tokenpacker medium-quecc small-tokenpacker medium-tokenpacker}
else echo "usage: tools/train_grid.sh [DECODER COMPRESSOR]" >&2; exit 2
fi
lanes=${LANES:-1}
if [ "$lanes" -gt 1 ] && [ $# -eq 0 ]; then
  i=0
  declare -a lane
  for p in $points; do lane[$((i % lanes))]+="$p "; i=$((i + 1)); done
  for l in "${lane[@]}"; do
    (for p in $l; do OMP_NUM_THREADS=1 LANES=1 "$0" "${p%-*}" "${p#*-}"; done) &
  done
  wait
  exit 0
fi
for p in $points; do
  d=${p%-*}; c=${p#*-}
  point="$grid/$p"
  extra=()
  if [ -n "${INIT:-}" ]; then
    [ -f "$INIT/$p.weights.pt" ] || { echo "train_grid: no $INIT/$p.weights.pt to start $p from" >&2; exit 2; }
    extra+=(--init "$INIT/$p.weights.pt")
  fi
  [ "${RELATIONAL:-0}" = 1 ] && extra+=(--name-loss 30 --position-loss 5 --hard-weight 3)
  if [ ! -f "$point.weights.pt" ]; then
    "$py" tools/train.py vlm "${extra[@]}" --vision "$vision" --decoder "$d" --compressor "$c" --out "$point.pt" --device "$dev" \
      --workers "$workers" --batch "$batch" --questions 2 --pregen "${PREGEN:-30000}" --cache-features --steps "$steps" \
      --lr "${LR:-1e-3}" --max-minutes "${MAX_MINUTES:-1e9}" --seed 0 --log-every 250 --val-every "${VAL_EVERY:-$steps}" --val-scenes 500 --save-every 500 \
      2>&1 | tee -a "$point.log"
  fi
  if [ "${EXPORT:-1}" = 1 ] && [ ! -f "$grid/sets/$p/manifest.json" ]; then
    "$py" tools/export.py --checkpoints "$point.weights.pt" --default-tokens 4 --name "grid-$p" --out "$grid/sets/$p"
  fi
done
echo "train_grid: done ($points)"
