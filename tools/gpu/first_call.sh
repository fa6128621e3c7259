#!/usr/bin/env bash
# The first device call of a GPU run (tools/gpu/README.md): keeps the first piece, starts making and importing the
# 0.5B-shaped checkpoint in the background (tools/gpu/prepare_checkpoint.sh, from a copy of tools/ outside the
# checkout, which each later call lays anew), and says what the machine has: the GPU, the CUDA libraries the
# provider needs (tools/gpu/cuda_libs.py) and the Python packages the checks use.
#   device run (carry .build/gpu/pieces/pieces.json and the first piece): tools/gpu/first_call.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
store=${STORE:-/var/tmp/assistant-gpu}
py=${PYTHON:-python3}
mkdir -p "$store"
copy="$store/repo"
rm -rf "$copy" && mkdir -p "$copy/docs" && cp -r tools "$copy/" && cp -r docs/data "$copy/docs/"
if [ ! -f "$store/prepare.done" ]; then
  (STORE="$store" PYTHON="$py" setsid nohup "$copy/tools/gpu/prepare_checkpoint.sh" >/dev/null 2>&1 &)
fi
incoming=${INCOMING:-.build/gpu/pieces}
[ -d "$incoming" ] && "$py" tools/gpu/pieces.py receive "$incoming" --store "$store/pieces"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1
"$py" tools/gpu/cuda_libs.py --report >/dev/null
"$py" -c 'import sys, torch, onnx; print("python", sys.version.split()[0], "torch", torch.__version__, "onnx", onnx.__version__)'
"$py" -c 'import transformers; print("transformers", transformers.__version__)' 2>/dev/null || echo "transformers: not installed (the PyTorch reference will not run)"
echo "$(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GB memory"
