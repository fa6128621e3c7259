"""tools/fuzz_checkpoint.py's mutator: seeded (the same seed makes the same cases, byte for byte), each family in turn,
and every case differs from the checkpoint it was made from. The suite itself runs in tests/Ui.Tests/CheckpointFuzzTests
(it needs the engine to judge what imports)."""
import hashlib
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

import fuzz_checkpoint  # noqa: E402
import make_hf_checkpoint  # noqa: E402


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def test_the_same_seed_makes_the_same_cases_and_each_case_is_a_mutation(tmp_path):
    base = tmp_path / "base"
    assert make_hf_checkpoint.main(["--out", str(base)]) == 0
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = fuzz_checkpoint.make_cases(base, tmp_path / "a", seed=5, count=15)
    second = fuzz_checkpoint.make_cases(base, tmp_path / "b", seed=5, count=15)
    assert [c["mutation"] for c in first] == [c["mutation"] for c in second]
    assert [c["family"] for c in first] == list(fuzz_checkpoint.FAMILIES) * 3
    original = _digest(base)
    for a, b in zip(first, second):
        assert _digest(Path(a["folder"])) == _digest(Path(b["folder"])) != original, a["mutation"]
