#!/usr/bin/env bash
# Trains the embedded default set from scratch and exports it to models/default (tools/ship_default.sh then
# scores it, fits its law and replaces models/default; this script's own export, EXPORT_SET=1 by default,
# writes the set unscored). EXPORT is taken by train_grid.sh (set to 0 here: no per-point sets).
#   tools/train_default.sh                          CPU, full length (docs/WORLD.md gives the times)
#   DEVICE=cuda WORKERS=14 tools/train_default.sh   the same on an NVIDIA GPU
# The default set is two points of the scaling grid (docs/SCALING.md), trained the grid's way:
#   stage 1  the vision encoder (patch labels; frozen afterwards);
#   stage 2  each decoder with QueCC, 14,000 steps x 128 questions on 30,000 pre-generated scenes, small at
#            lr 1e-3 and medium at 5e-4 (wider decoders stall at 1e-3: docs/SCALING.md);
#   stage 3  the relational stage, 7,000 steps at 5e-4 from stage 2's weights: the name and position losses
#            that teach the spatial and nearest families (docs/WORLD.md).
# Checkpoints go to $CKPT (default .cache/ckpt); every stage resumes from its checkpoint and a finished one is
# skipped. MAX_MINUTES caps each decoder run (the learning-rate schedule follows the clock).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=${PYTHON:-/usr/bin/python3}
dev=${DEVICE:-cpu}
ckpt=${CKPT:-.cache/ckpt}
workers=${WORKERS:-2}
export PYTHONUNBUFFERED=1 DEVICE="$dev" WORKERS="$workers" EXPORT=0
mkdir -p "$ckpt/relational"

"$py" tools/train.py vision --out "$ckpt/vision.pt" --device "$dev" --workers "$workers" --batch "${VISION_BATCH:-256}" \
  --steps "${VISION_STEPS:-6000}" --max-minutes "${VISION_MINUTES:-1e9}" --lr 2e-3 --log-every 200 --save-every 1000
for d in small medium; do
  lr=1e-3; [ "$d" = medium ] && lr=5e-4
  VISION="$ckpt/vision.pt" GRID="$ckpt" STEPS="${VLM_STEPS:-14000}" LR="$lr" tools/train_grid.sh "$d" quecc
  VISION="$ckpt/vision.pt" GRID="$ckpt/relational" INIT="$ckpt" RELATIONAL=1 STEPS="${RELATIONAL_STEPS:-7000}" LR=5e-4 \
    tools/train_grid.sh "$d" quecc
done
if [ "${EXPORT_SET:-1}" = 1 ]; then
  "$py" tools/export.py --checkpoints "$ckpt/relational/small-quecc.weights.pt" "$ckpt/relational/medium-quecc.weights.pt" \
    --default-decoder "${DEFAULT_DECODER:-medium}" --default-tokens "${DEFAULT_TOKENS:-16}" --name world-default \
    --out "${MODELS_OUT:-models/default}"
fi
