#!/usr/bin/env bash
# Trains the scaling-law grid on the world (issue 4's miniature reproduction) and exports one model set
# per (decoder, compressor) point, for `assistant eval` to score on the same held-out scenes.
#   tools/train_grid.sh                         CPU: 3 decoders x {quecc, tokenpacker}, every V in one run
#   DEVICE=cuda WORKERS=14 STEPS=12000 BATCH=512 tools/train_grid.sh
# Every point trains the same number of steps on the same pre-generated scenes from the same frozen vision
# encoder (stage 1 of the default set), so the points differ only in decoder size and compressor. Each run
# samples V from {1, 4, 16, 64} per batch, so one run serves every V of its (decoder, compressor).
# Checkpoints resume; a finished point is skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=${PYTHON:-/usr/bin/python3}
dev=${DEVICE:-cpu}
grid=${GRID:-.cache/grid}
vision=${VISION:-.cache/ckpt/vision.pt}
steps=${STEPS:-8000}
batch=${BATCH:-128}
workers=${WORKERS:-2}
export PYTHONUNBUFFERED=1
mkdir -p "$grid/sets"
[ -f "$vision" ] || { echo "train_grid: no stage-1 checkpoint at $vision (VISION=... or run tools/train_default.sh)" >&2; exit 2; }
for d in ${DECODERS:-small medium large}; do
  for c in ${COMPRESSORS:-quecc tokenpacker}; do
    point="$grid/$d-$c"
    if [ ! -f "$point.weights.pt" ]; then
      "$py" tools/train.py vlm --vision "$vision" --decoder "$d" --compressor "$c" --out "$point.pt" --device "$dev" \
        --workers "$workers" --batch "$batch" --questions 2 --pregen "${PREGEN:-30000}" --steps "$steps" \
        --lr "${LR:-2e-3}" --seed 0 --log-every 250 --val-every "$steps" --val-scenes 500 --save-every 500 \
        2>&1 | tee "$point.log"
    fi
    if [ ! -f "$grid/sets/$d-$c/manifest.json" ]; then
      "$py" tools/export.py --checkpoints "$point.weights.pt" --default-tokens 4 --name "grid-$d-$c" --out "$grid/sets/$d-$c"
    fi
  done
done
echo "train_grid: every point trained and exported under $grid/sets"
