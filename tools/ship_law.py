"""Writes a fitted scaling law into an existing model set's manifest.json, leaving the rest of the set as it is.
  /usr/bin/python3 tools/ship_law.py --set models/default --law docs/data/grid_law_quecc.json --as reproduction \\
      --source "tools/eval_grid.sh: ..."
--as planner replaces the law the planner reads (scaling_law's a, alpha, beta, d); --as NAME records the law
beside it as scaling_law[NAME] (the planner reads only the top-level numbers)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from export import law_entry


def ship(set_dir: Path, entry: dict, name: str) -> dict:
    path = set_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    law = manifest.get("scaling_law") or {}
    if name == "planner":
        law = {**entry, **{k: v for k, v in law.items() if isinstance(v, dict) and k != "interval95"}}
    else:
        if not law:
            raise ValueError(f"{path} has no planner law to sit beside; ship one with --as planner first")
        law[name] = entry
    manifest["scaling_law"] = law
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return law


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", type=Path, required=True, help="model set folder (its manifest.json is rewritten)")
    ap.add_argument("--law", type=Path, required=True, help="`assistant law fit --json` output")
    ap.add_argument("--as", dest="name", default="planner", help="'planner' (the law the planner uses) or a name to record it under")
    ap.add_argument("--source", default="", help="how the law's points were measured (recorded in the manifest)")
    a = ap.parse_args()
    try:
        fit = json.loads(a.law.read_text())
        try:
            entry = law_entry(fit, a.source)
        except ValueError as e:
            raise ValueError(f"{a.law} is {e}") from None
        law = ship(a.set, entry, a.name)
    except (OSError, ValueError) as e:
        print(f"ship_law: {e}", file=sys.stderr)
        return 2
    print(f"ship_law: {a.set / 'manifest.json'}: scaling_law{'' if a.name == 'planner' else '.' + a.name} = "
          f"alpha {fit['alpha']:.4g}, beta {fit['beta']:.4g} ({len(law)} keys)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
