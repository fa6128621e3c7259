#!/usr/bin/env bash
# The GPU side (tools/gpu/README.md), run in the repository's root on the GPU machine once every piece has arrived:
# assembles the build (if not done), puts the CUDA libraries of the machine's PyTorch install on the library path,
# and runs the checks, each under its own time limit, writing a report and JSON files into $OUT:
#   1. `assistant ask` on the default set with --ep cpu and --ep EP: the greedy tokens must be equal;
#   2. `assistant-bench` on the default set with --ep EP (decode, prefill, managed bytes per step, frame loop overhead),
#      and `assistant-bench --preprocess` (the frame kernels in C# against their graphs on the provider);
#   3. the CLIP-336 + Qwen2-0.5B set (tools/gpu/prepare_checkpoint.sh, started earlier): `ask` at full and pool V=4
#      against the importer's PyTorch greedy tokens and the CPU provider's, and `assistant-bench --frame-ttft`
#      (changed and unchanged frame to first token, decode tokens/s at full and V = 1, 4, 16);
#   4. the same checkpoint in Hugging Face transformers on the same GPU (tools/gpu/torch_reference.py);
#   5. one decode step of that set by ONNX operator and provider (assistant-bench --profile-decode), and the frame
#      latency on the machine's CPU for comparison (CPU_REPS runs, 0 to skip).
# What comes back through $OUT (the device tool returns at most 8 files): gpu_report.txt (every result), the bench,
# preprocessing, frame latency and PyTorch JSON files, the decode profile and the checkpoint's log; the rest stays
# in STORE/work. PREPARE_WAIT_S=0 skips the 0.5B part when prepare_checkpoint.sh was not started (it then reports
# that part as failed).
#   OUT=/tmp/out tools/gpu/gpu_checks.sh
#   EP=cpu STORE=/tmp/g PYTHON=/usr/bin/python3 REFERENCE=0 tools/gpu/gpu_checks.sh    # the dry run, on a CPU build
# Exit 0 when every check ran and agreed, 1 when one failed (the report says which), 2 when the build is missing.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
store=${STORE:-/var/tmp/assistant-gpu}
out=${OUT:-$store/out}
ep=${EP:-cuda}
py=${PYTHON:-python3}
reps=${REPS:-10}
work="$store/work"
rm -rf "$work"
mkdir -p "$out" "$work"
report="$out/gpu_report.txt"
: > "$report"
failed=0
say() { echo "$*" | tee -a "$report"; }
fail() { say "FAILED: $*"; failed=1; }

incoming=${INCOMING:-.build/gpu/pieces}
if [ -d "$incoming" ]; then
  "$py" tools/gpu/pieces.py receive "$incoming" --store "$store/pieces" --assemble-into "$store/app" || exit 2
fi
app="$store/app"
[ -x "$app/assistant" ] || { echo "error: no assembled build at $app: send the pieces first (tools/gpu/README.md)" >&2; exit 2; }
if [ "$ep" = cuda ]; then
  libs=$("$py" tools/gpu/cuda_libs.py --report) || exit 2
  export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  say "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
fi
say "host: $(nproc) cores, $(uname -sr); ep $ep; torch $("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo none)"
models=models/default
image=$models/golden/image.png
question="what shape is the purple object?"

# 1. The default set's greedy tokens on both providers.
ids() { "$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["token_ids"])' "$1" 2>/dev/null; }
for e in cpu "$ep"; do
  timeout 120 "$app/assistant" ask --models "$models" --image "$image" --query "$question" --ep "$e" --json \
    > "$work/ask_default_$e.json" 2> "$work/ask_default_$e.err" || fail "ask --ep $e on the default set: $(head -c 400 "$work/ask_default_$e.err")"
done
a=$(ids "$work/ask_default_cpu.json"); b=$(ids "$work/ask_default_$ep.json")
if [ -n "$a" ] && [ "$a" = "$b" ]; then say "default set: greedy tokens on $ep equal the CPU's: $b"; else fail "default set: $ep tokens $b, CPU tokens $a"; fi

# 2. The decoder and frame-loop benchmarks on the provider.
timeout 300 "$app/assistant-bench" --models "$models" --ep "$ep" --reps "$reps" --json > "$out/bench_default_$ep.json" 2> "$work/bench_default_$ep.err" \
  && say "bench (default set, $ep): $(head -c 3000 "$out/bench_default_$ep.json")" || fail "bench --ep $ep: $(head -c 400 "$work/bench_default_$ep.err")"

# 2b. A frame's preparation: the C# kernels against their ONNX graphs on the provider.
timeout 120 "$app/assistant-bench" --preprocess --ep "$ep" --reps 20 --json > "$out/preprocess_$ep.json" 2> "$work/preprocess_$ep.err" \
  && say "preprocess ($ep): $(cat "$out/preprocess_$ep.json")" || fail "bench --preprocess --ep $ep: $(head -c 400 "$work/preprocess_$ep.err")"

# 3. The 0.5B-shaped set, made in the background by prepare_checkpoint.sh.
for _ in $(seq 1 "${PREPARE_WAIT_S:-240}"); do [ -f "$store/prepare.done" ] || [ -f "$store/prepare.failed" ] || [ ! -f "$store/prepare.log" ] && break; sleep 1; done
cp "$store/prepare.log" "$out/" 2>/dev/null
if [ -f "$store/prepare.done" ]; then
  set05="$store/set"
  q05="What is in this picture?"
  for cfg in "full" "pool 4"; do
    read -r kind v <<< "$cfg"
    golden=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["answers"][sys.argv[2]]["greedy_tokens"])' "$set05/golden/golden.json" "$kind")
    n=$("$py" -c 'import sys; print(len(eval(sys.argv[1])))' "$golden")
    for e in cpu "$ep"; do
      timeout 300 "$app/assistant" ask --models "$set05" --image "$set05/golden/image.png" --query "$q05" --compressor "$kind" ${v:+--tokens $v} \
        --max-tokens "$n" --ignore-stop --ep "$e" --json > "$work/ask_05_${kind}_$e.json" 2> "$work/ask_05_${kind}_$e.err" \
        || fail "ask 0.5b $kind --ep $e: $(head -c 400 "$work/ask_05_${kind}_$e.err")"
    done
    c=$(ids "$work/ask_05_${kind}_cpu.json"); g=$(ids "$work/ask_05_${kind}_$ep.json")
    if [ -n "$g" ] && [ "$g" = "$golden" ] && [ "$c" = "$golden" ]; then
      say "0.5b $kind${v:+ V=$v}: greedy tokens on $ep and cpu equal the importer's PyTorch: $g"
    else
      fail "0.5b $kind${v:+ V=$v}: $ep $g, cpu $c, PyTorch (importer) $golden"
    fi
  done
  timeout 420 "$app/assistant-bench" --frame-ttft "$set05" --ep "$ep" --reps "$reps" --tokens 16 --json > "$out/frame_ttft_$ep.json" 2> "$work/frame_ttft_$ep.err" \
    && say "frame ttft (0.5b, $ep): $(cat "$out/frame_ttft_$ep.json")" || fail "bench --frame-ttft --ep $ep: $(head -c 400 "$work/frame_ttft_$ep.err")"
  if [ "${REFERENCE:-1}" = 1 ]; then
    timeout 300 "$py" tools/gpu/torch_reference.py "$store/hf" "$set05" --reps "$reps" --tokens 16 --json "$out/torch_reference.json" \
      > "$work/torch_reference.txt" 2>&1 && say "$(grep -v Loading "$work/torch_reference.txt")" || fail "torch reference: $(tail -c 600 "$work/torch_reference.txt")"
  else
    say "torch reference: not run (REFERENCE=0)"
  fi
  timeout 120 "$app/assistant-bench" --profile-decode "$set05" --past 594 --steps 20 --ep "$ep" > "$out/decode_profile_$ep.txt" 2>&1 \
    && say "$(cat "$out/decode_profile_$ep.txt")" || fail "bench --profile-decode --ep $ep: $(tail -c 400 "$out/decode_profile_$ep.txt")"
  if [ "${CPU_REPS:-3}" -gt 0 ] && [ "$ep" != cpu ]; then
    timeout 200 "$app/assistant-bench" --frame-ttft "$set05" --ep cpu --reps "${CPU_REPS:-3}" --tokens 16 --json > "$out/frame_ttft_cpu.json" 2> "$work/frame_ttft_cpu.err" \
      && say "frame ttft (0.5b, cpu): $(cat "$out/frame_ttft_cpu.json")" || fail "bench --frame-ttft --ep cpu: $(head -c 400 "$work/frame_ttft_cpu.err")"
  fi
else
  fail "the 0.5b set was not made: $(tail -c 600 "$store/prepare.log" 2>/dev/null || echo 'prepare_checkpoint.sh was not started')"
fi
say "checks: $([ $failed = 0 ] && echo 'all passed' || echo 'some failed')"
exit $failed
