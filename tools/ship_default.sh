#!/usr/bin/env bash
# Ships trained stage-2 checkpoints as the embedded default set (models/default), measured and with its law:
#   tools/ship_default.sh SMALL.weights.pt BIG.weights.pt DEFAULT_DECODER DEFAULT_V
# 1. exports the set to models/default.new (tools/export.py);
# 2. scores every decoder x V in {1, 4, 16, 64} with the C# engine on the same 1,200 test scenes
#    (docs/data/world_eval.jsonl) and writes the law's points (tests/data/world_scaling_points.csv);
# 3. fits the planner's law to those points and writes it into the manifest (tools/ship_law.py --as planner),
#    with the scaling grid's law beside it (--as reproduction, from GRID_LAW);
# 4. replaces models/default. Nothing is replaced if any step fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ $# -eq 4 ] || { echo "usage: tools/ship_default.sh SMALL.weights.pt BIG.weights.pt DEFAULT_DECODER DEFAULT_V" >&2; exit 2; }
small=$1 big=$2 default_decoder=$3 default_v=$4
py=${PYTHON:-/usr/bin/python3}
n=${N:-1200}
bounds=${BOUNDS:-a=0:10,alpha=0:0.5,beta=0:0.5,d=0:0.3}
grid_law=${GRID_LAW:-docs/data/grid_law_quecc.json}
grid_source=${GRID_SOURCE:-"the CPU scaling grid (docs/SCALING.md): tiny/small/medium decoders x QueCC x V in {1,4,16,64}; stage 2 14,000 steps x 128 questions (tiny and small at lr 1e-3, medium at 5e-4), then a 7,000-step relational stage at 5e-4 (name loss 30, position loss 5); assistant eval --n 1200 on test seeds 2000000..2001199, then assistant law fit --bounds a=0:10,alpha=0:0.5,beta=0:0.5,d=0:0.5; alpha at its bound; the planner uses the top-level law"}
new=models/default.new
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$new"' EXIT
"$py" tools/export.py --checkpoints "$small" "$big" --default-decoder "$default_decoder" --default-tokens "$default_v" \
  --name world-default --out "$new"
decoders=$("$py" -c "import json,sys; print(' '.join(d['name'] for d in json.load(open(sys.argv[1]))['decoders']))" "$new/manifest.json")
: > "$tmp/eval.jsonl"
for d in $decoders; do
  for v in 1 4 16 64; do
    echo "ship_default: scoring $d at V=$v ($n test scenes)" >&2
    ./assistant eval --models "$new" --decoder "$d" --tokens "$v" --n "$n" --split test --ep cpu --json >> "$tmp/eval.jsonl"
  done
done
"$py" - "$new/manifest.json" "$tmp/eval.jsonl" "$tmp/points.csv" "$n" <<'PY'
import json, sys
manifest, evals, points, n = sys.argv[1:5]
params = {d["name"]: d["params"] for d in json.load(open(manifest))["decoders"]}
with open(points, "w") as f:
    f.write(f"# world-default, QueCC, assistant eval --n {n} on test seeds 2000000..{2000000 + int(n) - 1}\n")
    f.write("llm_params_b,visual_tokens,accuracy\n")
    for line in open(evals):
        e = json.loads(line)
        f.write(f"{params[e['decoder']] / 1e9:.6g},{e['tokens']},{e['overall']['accuracy']}\n")
PY
./assistant law fit --points "$tmp/points.csv" --bounds "$bounds" --json > "$tmp/law.json"
"$py" tools/ship_law.py --set "$new" --law "$tmp/law.json" --as planner \
  --source "assistant eval --n $n --decoder D --tokens V on test seeds 2000000..$((2000000 + n - 1)) (tests/data/world_scaling_points.csv), then assistant law fit --bounds $bounds"
"$py" tools/ship_law.py --set "$new" --law "$grid_law" --as reproduction --source "$grid_source"
./assistant models check "$new" > /dev/null
cp "$tmp/eval.jsonl" docs/data/world_eval.jsonl
cp "$tmp/points.csv" tests/data/world_scaling_points.csv
rm -rf models/default && mv "$new" models/default
./assistant law fit --points tests/data/world_scaling_points.csv --bounds "$bounds"
echo "ship_default: models/default replaced ($(du -sh models/default | cut -f1)); docs/data/world_eval.jsonl and tests/data/world_scaling_points.csv rewritten" >&2
