"""Writes tests/data/world_fixture.json: scenes, questions, answers and pixels from tools/world.py, which the
C# world (Capture/World/) must reproduce. Rerun after any change to the world:
  /usr/bin/python3 tools/world_fixture.py
"""
import base64
import json
import sys
from pathlib import Path

import world

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "world_fixture.json"
SEEDS = list(range(40)) + [world.SPLITS["val"][0] + 7, world.SPLITS["test"][0], world.SPLITS["test"][0] + 123]
PIXEL_SEEDS = SEEDS[:6] + SEEDS[-2:]
SIZES = [64, 97]


def build() -> dict:
    scenes = []
    for seed in SEEDS:
        objs = world.scene(seed)
        entry = {"seed": seed,
                 "objects": [{"shape": o.shape, "color": o.color, "size": o.size, "x": o.x, "y": o.y} for o in objs],
                 "questions": [{"spec": q, "text": t, "answer": a} for q, t, a in world.questions(seed, 6)],
                 "by_family": {f: [{"spec": q, "text": t, "answer": a} for q, t, a in world.questions(seed, 2, family=f)]
                               for f in world.FAMILIES}}
        if seed in PIXEL_SEEDS:
            entry["pixels"] = {str(s): base64.b64encode(world.render(objs, s).tobytes()).decode() for s in SIZES}
        scenes.append(entry)
    return {"generator": "tools/world_fixture.py", "vocabulary": world.vocabulary(), "answers": world.ANSWERS,
            "scenes": scenes}


def main() -> int:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(build()) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
