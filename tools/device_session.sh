#!/usr/bin/env bash
# One prepared call for a GPU machine (the device tool), ~9 minutes: the scaling grid's eight points (issue 4)
# and the default set's large decoder retrained with the position loss from the start of stage 2 (issue 3),
# all nine at once on the one GPU. What comes back through $OUT (8 files at most): the grid's weights in one
# tar, the new large decoder's weights, one log. Needs .cache/run1/vision.pt carried (the default set's stage 1).
#   device run (carry .cache/run1): tools/device_session.sh
# Here, afterwards (files under the device tool's files_at):
#   tar -xf FILES/grid-weights.tar -C .cache/grid && POINTS="tiny-quecc ... large-tokenpacker" tools/train_grid.sh && tools/eval_grid.sh
#   /usr/bin/python3 tools/export.py --checkpoints .cache/run2/small.weights.pt FILES/large.weights.pt \
#       --default-decoder large --default-tokens 4 --out models/default     (then assistant eval, docs/WORLD.md)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${OUT:-/tmp/session-out}
work=${WORK:-/tmp/session}
mkdir -p "$out" "$work/grid"
export PYTHONUNBUFFERED=1
dev=${DEVICE:-cuda}  # DEVICE=cpu with tiny PREGEN/GRID_STEPS/DEFAULT_MINUTES: a dry run (nine processes: mind the memory)
[ "$dev" = cuda ] && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
for d in tiny small medium large; do
  for c in quecc tokenpacker; do
    DEVICE=$dev BATCH=512 STEPS=${GRID_STEPS:-2500} MAX_MINUTES=7.5 WORKERS=2 GRID=$work/grid EXPORT=0 \
      tools/train_grid.sh "$d" "$c" > "$work/grid/$d-$c.stdout" 2>&1 &
  done
done
/usr/bin/python3 tools/train.py vlm --vision .cache/run1/vision.pt --decoder large --out "$work/large.pt" --device "$dev" \
  --workers 2 --batch 512 --questions 4 --pregen "${DEFAULT_PREGEN:-150000}" --cache-features --hard-weight 3 --position-loss 5 --lr 1e-3 \
  --steps 100000 --max-minutes "${DEFAULT_MINUTES:-7.5}" --log-every 500 --val-every 2000 --save-every 2000 \
  > "$work/large.stdout" 2>&1 &
wait
(cd "$work/grid" && tar -cf "$out/grid-weights.tar" ./*.weights.pt) 2>/dev/null
cp "$work/large.weights.pt" "$out/" 2>/dev/null
for f in "$work"/grid/*.stdout "$work/large.stdout"; do echo "== $f"; tr '\r' '\n' < "$f" | grep -v '^\[' ; done > "$out/session.log"
ls -la "$out"
