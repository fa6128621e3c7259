#!/usr/bin/env bash
# Publishes the engine for the GPU machine and cuts it into pieces that each fit one device call (tools/gpu/README.md):
# a self-contained linux-x64 build of `assistant` and `assistant-bench` with the CUDA flavor of ONNX Runtime, less
# what a GPU run never loads (OpenCV's 109 MB, whisper.cpp, the TensorRT provider, debug symbols), compressed with
# xz and cut into numbered pieces with a manifest of SHA-256 sums in .build/gpu/pieces.
#   tools/gpu/pack.sh                       # the CUDA build, 48 MiB pieces
#   FLAVOR=cpu PRESET=1 OUT=/tmp/g tools/gpu/pack.sh    # the CPU build, fast (the dry run's)
# PIECE_MIB: a piece's size; each device call carries the tracked files (about 13 MB) beside one piece, under 64 MiB.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
flavor=${FLAVOR:-cuda}
out=${OUT:-$root/.build/gpu}
piece_mib=${PIECE_MIB:-48}
preset=${PRESET:-9}
case "$flavor" in cpu|cuda) ;; *) echo "error: FLAVOR is cpu or cuda, got '$flavor'" >&2; exit 2 ;; esac
command -v dotnet >/dev/null 2>&1 || { echo "error: the .NET 10 SDK is needed (dotnet not on PATH)" >&2; exit 2; }
app="$out/app"
rm -rf "$app" "$out/pieces"
mkdir -p "$out"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for project in Ui/Ui.csproj bench/Bench.csproj; do
  echo "pack: publishing $project ($flavor, linux-x64, self-contained)" >&2
  # Both into one folder: they share one runtime, and the second only adds its own assembly and its .deps.json.
  dotnet publish "$root/$project" -c Release -r linux-x64 --self-contained -p:OnnxRuntimeFlavor="$flavor" \
    -o "$app" --nologo -v quiet >"$log" 2>&1 || { tail -20 "$log" >&2; echo "error: publishing $project failed (above)" >&2; exit 1; }
done
# Not loaded by ask, bench or live on the world/image sources: camera and video (OpenCV), speech (whisper.cpp),
# TensorRT (not asked for), symbols.
rm -f "$app"/libOpenCvSharpExtern.so "$app"/libonnxruntime_providers_tensorrt.so "$app"/*.pdb "$app"/*.dbg
rm -rf "$app"/runtimes
find "$app" -name '*whisper*' -delete
echo "pack: build $(du -sm "$app" | cut -f1) MB; compressing (xz -$preset) into ${piece_mib} MiB pieces" >&2
python3 "$root/tools/gpu/pieces.py" pack "$app" --out "$out/pieces" --piece-mib "$piece_mib" --preset "$preset"
