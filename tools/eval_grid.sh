#!/usr/bin/env bash
# Scores every exported point of the scaling grid (tools/train_grid.sh) with the C# engine, on the same
# held-out test scenes, then fits the law to each compressor's points and draws the two plots.
#   tools/eval_grid.sh                 sets under .cache/grid/sets; results in docs/data and docs/
# Writes: docs/data/grid_eval.jsonl (one `assistant eval --json` line per set x V), docs/data/grid_points_<kind>.csv
# (the law's input), docs/data/grid_law_<kind>.json (`assistant law fit --json`), docs/data/grid_table.md (the table
# with intervals), docs/scaling_grid_flops.png and
# docs/scaling_grid_quecc_vs_baseline.png.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
grid=${GRID:-.cache/grid}
n=${N:-1200}
out=${OUT_DIR:-docs/data}
bounds=${BOUNDS:-a=0:10,alpha=0:0.5,beta=0:0.5,d=0:0.5}
mkdir -p "$out"
sets=$(ls -d "$grid"/sets/*/ 2>/dev/null | sed 's#/$##' || true)
[ -n "$sets" ] || { echo "eval_grid: no exported sets under $grid/sets (run tools/train_grid.sh first)" >&2; exit 2; }
./assistant models check "$(echo "$sets" | head -1)" > /dev/null  # builds once, checks the first set loads
: > "$out/grid_eval.jsonl"
total=$(( $(echo "$sets" | wc -l) * 4 )); i=0
for s in $sets; do
  for v in ${TOKENS:-1 4 16 64}; do
    i=$((i + 1))
    printf 'eval_grid: [%d/%d] %s V=%s\n' "$i" "$total" "$(basename "$s")" "$v" >&2
    ./assistant eval --models "$s" --tokens "$v" --n "$n" --split test --ep cpu --json >> "$out/grid_eval.jsonl"
  done
done
# One points file per compressor kind: N in billions of decoder parameters (the manifest's count), V, accuracy.
/usr/bin/python3 - "$grid" "$out" "$n" <<'PY'
import json, sys, pathlib
grid, out, n = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
params = {}
for m in grid.glob("sets/*/manifest.json"):
    man = json.loads(m.read_text())
    for d in man["decoders"]:
        params[(man["name"], d["name"])] = d["params"]
rows, cells, sizes = {}, {}, {}
for line in (out / "grid_eval.jsonl").read_text().splitlines():
    e = json.loads(line)
    o = e["overall"]
    sizes[e["decoder"]] = params[(e["models"], e["decoder"])]
    rows.setdefault(e["compressor"], []).append((sizes[e["decoder"]] / 1e9, e["tokens"], o["accuracy"]))
    cells[(e["decoder"], e["compressor"], e["tokens"])] = f"{100 * o['accuracy']:.1f}% [{100 * o['lo95']:.1f}, {100 * o['hi95']:.1f}]"
for kind, pts in rows.items():
    lines = [f"# scaling grid ({kind}), tools/eval_grid.sh: assistant eval --n {n} on the test split, same scenes for every point",
             "llm_params_b,visual_tokens,accuracy"] + [f"{N:.9g},{v},{a}" for N, v, a in sorted(pts)]
    (out / f"grid_points_{kind}.csv").write_text("\n".join(lines) + "\n")
    print(f"eval_grid: {len(pts)} points for {kind}", file=sys.stderr)
# The table for docs/SCALING.md: accuracy with its 95% Wilson interval per (decoder, compressor) and V.
vs = sorted({v for _, _, v in cells})
table = ["| decoder | compressor | " + " | ".join(f"V = {v}" for v in vs) + " |", "| --- | --- |" + " --- |" * len(vs)]
for dec in sorted(sizes, key=sizes.get):
    for kind in ("quecc", "tokenpacker"):
        if any((dec, kind, v) in cells for v in vs):
            name = "QueCC" if kind == "quecc" else "baseline (no query)"
            table.append(f"| {dec.split('-')[0]} ({sizes[dec] / 1e6:.3g}M) | {name} | " + " | ".join(cells.get((dec, kind, v), "-") for v in vs) + " |")
(out / "grid_table.md").write_text("\n".join(table) + "\n")
PY
for kind in quecc tokenpacker; do
  f="$out/grid_points_$kind.csv"
  [ -f "$f" ] || continue
  if ./assistant law fit --points "$f" --bounds "$bounds" --json > "$out/grid_law_$kind.json"; then
    echo "eval_grid: law for $kind in $out/grid_law_$kind.json" >&2
  else
    echo "eval_grid: the law fit for $kind failed (see above); kept going" >&2
  fi
done
dotnet run -c Release --project bench/Plots -- --eval "$out/grid_eval.jsonl" --sets "$grid/sets" \
  --out docs/scaling_grid_flops.png --compare docs/scaling_grid_quecc_vs_baseline.png
