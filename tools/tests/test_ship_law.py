"""ship_law.py: a fitted law goes into a set's manifest without touching anything else in it."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIT = {"a": 0.5, "alpha": 0.08, "beta": 0.02, "d": 0.1, "sse": 0.001, "points": 24, "bounds": "a=0:10",
       "bootstrap": 200, "interval95": {"alpha": [0.05, 0.1]}, "at_bound": [], "degenerate": False}


def ship(tmp_path: Path, fit: dict, *args: str) -> subprocess.CompletedProcess:
    law = tmp_path / "law.json"
    law.write_text(json.dumps(fit))
    return subprocess.run([sys.executable, str(ROOT / "tools" / "ship_law.py"), "--set", str(tmp_path / "set"),
                           "--law", str(law), *args], capture_output=True, text=True)


def default_copy(tmp_path: Path) -> dict:
    (tmp_path / "set").mkdir()
    shutil.copy(ROOT / "models" / "default" / "manifest.json", tmp_path / "set" / "manifest.json")
    return json.loads((tmp_path / "set" / "manifest.json").read_text())


def test_a_named_law_sits_beside_the_planners_and_nothing_else_changes(tmp_path):
    before = default_copy(tmp_path)
    r = ship(tmp_path, FIT, "--as", "grid_check", "--source", "grid")
    assert r.returncode == 0, r.stderr
    after = json.loads((tmp_path / "set" / "manifest.json").read_text())
    rep = after["scaling_law"].pop("grid_check")
    assert after == before
    assert (rep["alpha"], rep["beta"], rep["points"], rep["source"]) == (0.08, 0.02, 24, "grid")
    assert "bootstrap" not in rep and rep["n_unit"] == "billions of decoder parameters"


def test_the_planner_law_is_replaced_and_named_laws_are_kept(tmp_path):
    default_copy(tmp_path)
    assert ship(tmp_path, FIT, "--as", "grid_check").returncode == 0
    r = ship(tmp_path, {**FIT, "alpha": 0.3}, "--as", "planner", "--source", "refit")
    assert r.returncode == 0, r.stderr
    law = json.loads((tmp_path / "set" / "manifest.json").read_text())["scaling_law"]
    assert (law["alpha"], law["source"], law["grid_check"]["alpha"]) == (0.3, "refit", 0.08)
    assert "reproduction" in law  # the shipped one, kept too


def test_output_that_is_not_a_fit_is_refused_in_one_line(tmp_path):
    before = default_copy(tmp_path)
    r = ship(tmp_path, {"a": 1.0}, "--as", "grid_check")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "no alpha, beta, d" in r.stderr
    assert json.loads((tmp_path / "set" / "manifest.json").read_text()) == before


def test_the_share_of_refits_with_alpha_above_beta_is_kept_when_the_fit_gives_one(tmp_path):
    default_copy(tmp_path)
    assert ship(tmp_path, {**FIT, "alpha_above_beta_share": 0.97}, "--as", "with_share").returncode == 0
    assert ship(tmp_path, {**FIT, "alpha_above_beta_share": None}, "--as", "without_share").returncode == 0
    law = json.loads((tmp_path / "set" / "manifest.json").read_text())["scaling_law"]
    assert law["with_share"]["alpha_above_beta_share"] == 0.97
    assert "alpha_above_beta_share" not in law["without_share"]
