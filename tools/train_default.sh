#!/usr/bin/env bash
# Trains the embedded default set from scratch and exports it to models/default.
#   tools/train_default.sh                    CPU, full length (see docs/WORLD.md for times)
#   DEVICE=cuda WORKERS=14 tools/train_default.sh   the same on an NVIDIA GPU
# Budgets (minutes) cap each stage: the learning-rate schedule follows the clock, so a capped stage still
# ends decayed. Checkpoints go to $CKPT (default .cache/ckpt) and a stage resumes from its checkpoint.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=${PYTHON:-/usr/bin/python3}
dev=${DEVICE:-cpu}
ckpt=${CKPT:-.cache/ckpt}
workers=${WORKERS:-2}
batch=${BATCH:-256}
export PYTHONUNBUFFERED=1
mkdir -p "$ckpt"

"$py" tools/train.py vision --out "$ckpt/vision.pt" --device "$dev" --workers "$workers" --batch "$batch" \
  --steps "${VISION_STEPS:-6000}" --max-minutes "${VISION_MINUTES:-1e9}" --lr 2e-3 --log-every 200 --save-every 1000
for d in ${DECODERS:-small large}; do
  "$py" tools/train.py vlm --vision "$ckpt/vision.pt" --decoder "$d" --out "$ckpt/$d.pt" --device "$dev" \
    --workers "$workers" --batch "$batch" --questions 2 --steps "${VLM_STEPS:-12000}" \
    --max-minutes "${VLM_MINUTES:-1e9}" --lr "${VLM_LR:-1e-3}" --log-every 200 --val-every 1000 --save-every 1000
done
if [ "${EXPORT:-1}" = 1 ]; then
  "$py" tools/export.py --checkpoints $(for d in ${DECODERS:-small large}; do echo "$ckpt/$d.weights.pt"; done) \
    --default-tokens "${DEFAULT_TOKENS:-4}" --out "${MODELS_OUT:-models/default}"
fi
