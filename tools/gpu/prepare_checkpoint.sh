#!/usr/bin/env bash
# On the GPU machine, in the background while the build's pieces arrive (tools/gpu/README.md): a random-weight
# checkpoint of the paper's smallest shape (CLIP ViT-L/14-336 + Qwen2-0.5B) and its import as a model set.
# Imported with plain attention: ONNX Runtime's CUDA GroupQueryAttention has no float32 kernel.
# Writes STORE/hf, STORE/set, STORE/prepare.log, then STORE/prepare.done or STORE/prepare.failed.
#   setsid nohup tools/gpu/prepare_checkpoint.sh >/dev/null 2>&1 &
#   SHAPE=tiny PYTHON=/usr/bin/python3 STORE=/tmp/g tools/gpu/prepare_checkpoint.sh    # the dry run's
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
store=${STORE:-/var/tmp/assistant-gpu}
shape=${SHAPE:-clip336-qwen2-0.5b}
py=${PYTHON:-python3}
mkdir -p "$store"
rm -f "$store/prepare.done" "$store/prepare.failed"
{
  t0=$(date +%s)
  [ -d "$store/hf" ] || "$py" tools/make_hf_checkpoint.py --out "$store/hf" --shape "$shape" || { touch "$store/prepare.failed"; exit 1; }
  [ -d "$store/set" ] || "$py" tools/import_hf.py "$store/hf" --out "$store/set" --attention plain || { touch "$store/prepare.failed"; exit 1; }
  echo "prepare: $shape made and imported in $(( $(date +%s) - t0 )) s"
  touch "$store/prepare.done"
} > "$store/prepare.log" 2>&1
