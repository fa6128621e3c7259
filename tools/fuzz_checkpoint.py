"""A seeded mutator of llava-hf checkpoint folders, run against the importer and the engine (issue 31, finding 8).

  /usr/bin/python3 tools/fuzz_checkpoint.py --engine tests/Ui.Tests/bin/Debug/net10.0/assistant --cases 60 --seed 31
  /usr/bin/python3 tools/fuzz_checkpoint.py --engine .build/assistant/assistant --report /tmp/fuzz.json --keep /tmp/cases
  /usr/bin/python3 tools/fuzz_checkpoint.py --engine ... --family llava-1.5 --cases 36   # and tokenizer.model

Each case is a copy of a valid tiny checkpoint (tools/make_hf_checkpoint.py) with one mutation, drawn from a seeded
generator in five families taken in turn: config values (config.json, preprocessor_config.json,
generation_config.json), safetensors header bytes and entries, the shard index, tokenizer.json entries, and the chat
template's text. Each is imported as `assistant models import` does it (tools/import_hf.py --hand-over, then
`assistant models check PARTIAL --golden`, the engine's own load and golden run), under a time and memory bound. A
case passes when it is refused in one line (`error: ...`, exit 2, no traceback) or imported into a set the engine
accepts, within 30 s and 1 GB of the importer's peak resident memory, with nothing left beside the target. Anything
else is a violation. Prints one line per case and the counts; --report writes them as JSON; exit 1 on a violation.
"""
import argparse
import copy
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
sys.path.insert(0, str(TOOLS))

TIME_LIMIT_S = 30.0
RSS_LIMIT_KB = 1 << 20  # 1 GB, as ru_maxrss counts on Linux
FAMILIES = ("config", "header", "index", "tokenizer", "template")

# Values a stranger's JSON can hold where a number, a name or a list is expected.
HOSTILE_VALUES = [0, -1, -64, 1, 3, 7, 10 ** 4, 10 ** 6, 2 ** 31, 2 ** 63, 10 ** 30, 1e308, 1.5, -0.0, float("nan"),
                  float("inf"), "2", "", "x" * 300, "\x1b[31mred\x07", None, True, False, [], [1], [[1]], {}, {"a": 1}]
TEMPLATE_SNIPPETS = [
    "{{ 'the' * 5000 }}", "{{ 'x' * 10**9 }}", "{% for i in range(10**7) %}x{% endfor %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "{% include 'x' %}",
    "{% import 'm' as m %}", "{% extends 'b' %}", "{{ 1/0 }}", "{{ x.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}",
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "{{ raise_exception('\x1b[2J' * 1000) }}", "{%",
    "{{ messages[10**9] }}", "{{ '\x1b]0;title\x07' }}", "{% set x = [0] * 10**8 %}", "{{ range(10**9) | list }}",
    "{{ 'a' ~ 'b' * 10**7 }}", "\ud800", "{{ (messages * 10**6) | length }}",
]


def _value(rng: random.Random):
    return copy.deepcopy(rng.choice(HOSTILE_VALUES))


def _read(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _write(path: Path, doc) -> None:
    path.write_text(json.dumps(doc), encoding="utf-8")


def _header(path: Path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return raw, n, json.loads(raw[8:8 + n])


def _set_header(path: Path, raw: bytes, n: int, text: bytes) -> None:
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])


def mutate_config(case: Path, rng: random.Random) -> str:
    name = rng.choice(["config.json"] * 4 + [n for n in ("preprocessor_config.json", "generation_config.json", "processor_config.json")
                                             if (case / n).exists()])
    doc = _read(case / name)
    targets = [(doc, k) for k in doc] + [(doc[s], k) for s in ("text_config", "vision_config") if isinstance(doc.get(s), dict) for k in doc[s]]
    section, key = rng.choice(targets)
    if rng.random() < 0.15:
        del section[key]
        what = f"{name}: {key} removed"
    else:
        section[key] = _value(rng)
        what = f"{name}: {key} = {section[key]!r}"
    _write(case / name, doc)
    return what


def mutate_header(case: Path, rng: random.Random) -> str:
    shard = rng.choice(sorted(case.glob("*.safetensors")))
    raw, n, header = _header(shard)
    kind = rng.choice(["entry", "entry", "bytes", "length", "truncate", "nested", "extra"])
    names = [k for k in header if k != "__metadata__"]
    if kind == "entry":
        tensor, field = rng.choice(names), rng.choice(["dtype", "shape", "data_offsets"])
        header[tensor][field] = rng.choice([_value(rng), [_value(rng), _value(rng)], [10 ** 12, 10 ** 12]])
        _set_header(shard, raw, n, json.dumps(header).encode())
        return f"{shard.name}: {tensor}.{field} = {header[tensor][field]!r}"
    if kind == "bytes":
        data = bytearray(raw)
        spots = [rng.randrange(8, 8 + n) for _ in range(rng.randint(1, 8))]
        for at in spots:
            data[at] = rng.randrange(256)
        shard.write_bytes(bytes(data))
        return f"{shard.name}: header bytes at {spots} changed"
    if kind == "length":
        value = rng.choice([0, 1, n - 1, n + 1, 2 ** 63, rng.randrange(2 ** 64)])
        shard.write_bytes(struct.pack("<Q", value) + raw[8:])
        return f"{shard.name}: header length {value}"
    if kind == "truncate":
        at = rng.randrange(0, len(raw))
        shard.write_bytes(raw[:at])
        return f"{shard.name}: cut at byte {at} of {len(raw)}"
    if kind == "nested":
        depth = rng.choice([1000, 100_000])
        _set_header(shard, raw, n, b'{"a":' + b"[" * depth + b"]" * depth + b"}")
        return f"{shard.name}: a header nested {depth} deep"
    header["extra.weight"] = {"dtype": "F32", "shape": [rng.choice([1 << 20, 1 << 30]), 1 << 10], "data_offsets": [0, 4]}
    _set_header(shard, raw, n, json.dumps(header).encode())
    return f"{shard.name}: an extra tensor claiming {header['extra.weight']['shape']}"


def mutate_index(case: Path, rng: random.Random) -> str:
    path = case / "model.safetensors.index.json"
    doc = _read(path)
    wm = doc["weight_map"]
    kind = rng.choice(["value", "value", "drop", "rename", "whole"])
    key = rng.choice(sorted(wm))
    if kind == "value":
        wm[key] = rng.choice(["../x.safetensors", "/etc/passwd", "", ".", "missing.safetensors", "/proc/self/mem",
                              "model.safetensors.index.json", _value(rng)] + sorted(set(wm.values())))
        what = f"index: {key} -> {wm[key]!r}"
    elif kind == "drop":
        del wm[key]
        what = f"index: {key} removed"
    elif kind == "rename":
        wm["\x1b[2J" + key] = wm.pop(key)
        what = f"index: {key} renamed"
    else:
        doc["weight_map"] = _value(rng)
        what = f"index: weight_map = {doc['weight_map']!r}"
    _write(path, doc)
    return what


def mutate_tokenizer(case: Path, rng: random.Random) -> str:
    path = case / "tokenizer.json"
    doc = _read(path)
    model = doc["model"]
    vocab, merges, added = model["vocab"], model["merges"], doc["added_tokens"]
    kind = rng.choice(["id", "drop", "long", "merge", "added", "added_id", "field", "merges_none"])
    token = rng.choice(sorted(vocab))
    if kind == "id":
        vocab[token] = rng.choice([_value(rng), rng.choice(list(vocab.values())), 10 ** 7])
        what = f"vocab {token!r} -> {vocab[token]!r}"
    elif kind == "drop":
        del vocab[token]
        what = f"vocab {token!r} removed"
    elif kind == "long":
        vocab["a" * rng.choice([2000, 1 << 20])] = len(vocab) + 50
        what = "a very long vocabulary entry"
    elif kind == "merge":
        merges.insert(rng.randrange(len(merges) + 1), rng.choice([_value(rng), f"{token} {token}", "a", "a b c", ["a"]]))
        what = "a merge inserted"
    elif kind == "added":
        t = rng.choice(added)
        t["content"] = _value(rng)
        what = f"an added token's content -> {t['content']!r}"
    elif kind == "added_id":
        t = rng.choice(added)
        t["id"] = rng.choice([_value(rng), 0, added[0]["id"]])
        what = f"an added token's id -> {t['id']!r}"
    elif kind == "field":
        key = rng.choice(["model", "pre_tokenizer", "added_tokens"])
        doc[key] = _value(rng)
        what = f"tokenizer.json {key} = {doc[key]!r}"
    else:
        model["merges"] = rng.choice([None, [], "a b"])
        what = f"merges = {model['merges']!r}"
    _write(path, doc)
    return what


def mutate_tokenizer_model(case: Path, rng: random.Random) -> str:
    """tokenizer.model, a SentencePiece protobuf: its bytes, its length, or one of its fields."""
    from sentencepiece import sentencepiece_model_pb2 as pb
    path = case / "tokenizer.model"
    raw = path.read_bytes()
    kind = rng.choice(["bytes", "truncate", "type", "piece", "score", "kind", "normalizer", "empty"])
    if kind == "bytes":
        data = bytearray(raw)
        spots = [rng.randrange(len(raw)) for _ in range(rng.randint(1, 8))]
        for at in spots:
            data[at] = rng.randrange(256)
        path.write_bytes(bytes(data))
        return f"tokenizer.model: bytes at {spots} changed"
    if kind == "truncate":
        at = rng.randrange(len(raw))
        path.write_bytes(raw[:at])
        return f"tokenizer.model: cut at byte {at} of {len(raw)}"
    proto = pb.ModelProto()
    proto.ParseFromString(raw)
    i = rng.randrange(len(proto.pieces))
    if kind == "type":
        proto.trainer_spec.model_type = rng.choice([1, 3, 4, 99])
        what = f"model_type {proto.trainer_spec.model_type}"
    elif kind == "piece":
        proto.pieces[i].piece = rng.choice(["", "x" * 5000, "\x1b[2J", proto.pieces[(i + 1) % len(proto.pieces)].piece, "<0x41>"])
        what = f"piece {i} -> {proto.pieces[i].piece[:20]!r}"
    elif kind == "score":
        proto.pieces[i].score = rng.choice([float("nan"), float("inf"), -1e38, 1e38])
        what = f"piece {i} score {proto.pieces[i].score}"
    elif kind == "kind":
        proto.pieces[i].type = rng.choice([2, 3, 4, 5, 6])
        what = f"piece {i} type {proto.pieces[i].type}"
    elif kind == "normalizer":
        proto.normalizer_spec.add_dummy_prefix = rng.random() < 0.5
        proto.normalizer_spec.remove_extra_whitespaces = rng.random() < 0.5
        what = f"normaliser dummy prefix {proto.normalizer_spec.add_dummy_prefix}, remove spaces {proto.normalizer_spec.remove_extra_whitespaces}"
    else:
        del proto.pieces[:]
        what = "no pieces"
    path.write_bytes(proto.SerializeToString())
    return f"tokenizer.model: {what}"


def mutate_template(case: Path, rng: random.Random) -> str:
    path = case / "chat_template.json" if (case / "chat_template.json").exists() else case / "tokenizer_config.json"
    doc = _read(path)
    template = doc["chat_template"]
    kind = rng.choice(["insert", "insert", "insert", "cut", "value"])
    if kind == "insert":
        snippet = rng.choice(TEMPLATE_SNIPPETS)
        at = rng.choice([0, len(template)])
        doc["chat_template"] = template[:at] + snippet + template[at:]
        what = f"template + {snippet[:60]!r}"
    elif kind == "cut":
        at = rng.randrange(len(template))
        doc["chat_template"] = template[:at]
        what = f"template cut at {at} of {len(template)}"
    else:
        doc["chat_template"] = _value(rng)
        what = f"template = {doc['chat_template']!r}"
    path.write_text(json.dumps(doc), encoding="utf-8")  # a lone surrogate is written escaped, as JSON allows
    return what


MUTATORS = {"config": mutate_config, "header": mutate_header, "index": mutate_index, "tokenizer": mutate_tokenizer,
            "template": mutate_template, "tokenizer_model": mutate_tokenizer_model}


def families_of(base: Path) -> tuple:
    """The mutation families a base offers: tokenizer.model's too where it has one (a Llama 2 tokenizer)."""
    return FAMILIES + (("tokenizer_model",) if (base / "tokenizer.model").exists() else ())


def make_cases(base: Path, root: Path, seed: int, count: int) -> list:
    """`count` mutated copies of `base` under `root`, the families in turn; the same seed gives the same cases."""
    cases = []
    families = families_of(base)
    for i in range(count):
        family = families[i % len(families)]
        rng = random.Random(f"{seed}:{i}")
        folder = root / f"case-{i:03d}"
        shutil.copytree(base, folder)
        cases.append({"case": i, "family": family, "mutation": MUTATORS[family](folder, rng), "folder": str(folder)})
    return cases


def judge(case: dict, engine: str) -> dict:
    """Imports one case as `assistant models import` does, bounded, and says how it ended."""
    folder = Path(case["folder"])
    out, note = folder.parent / f"{folder.name}-set", folder.parent / f"{folder.name}-handover.json"
    err_path = folder.parent / f"{folder.name}-stderr.txt"
    start = time.monotonic()
    with open(err_path, "w+") as err_file:
        proc = subprocess.Popen([sys.executable, str(TOOLS / "import_hf.py"), str(folder), "--out", str(out), "--hand-over", str(note)],
                                stdout=subprocess.DEVNULL, stderr=err_file, start_new_session=True)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - start > 2 * TIME_LIMIT_S:
                os.killpg(proc.pid, 9)
                timed_out = True
            time.sleep(0.02)
        code = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - start
        err_file.seek(0)
        err = err_file.read()
    lines = err.strip().splitlines()
    result = {**case, "exit": code, "seconds": round(seconds, 2), "peak_mb": usage.ru_maxrss // 1024,
              "stderr": lines[-1][:300] if lines else ""}
    problems = []
    if timed_out or seconds > TIME_LIMIT_S:
        problems.append(f"took {seconds:.1f} s")
    if usage.ru_maxrss > RSS_LIMIT_KB:
        problems.append(f"peak {usage.ru_maxrss // 1024} MB")
    if code == 2:
        if len(lines) != 1 or not lines[0].startswith("error: ") or "Traceback" in err:
            problems.append(f"exit 2 with {len(lines)} stderr lines")
        result["outcome"] = "refused"
        result["generic"] = "could not be imported (" in err
    elif code == 0:
        partial = Path(json.loads(note.read_text())["partial"])
        check = subprocess.run([engine, "models", "check", str(partial), "--golden", "--ep", "cpu"], capture_output=True, text=True, timeout=120)
        shutil.rmtree(partial, ignore_errors=True)
        if check.returncode == 0:
            result["outcome"] = "accepted"
        else:
            result["outcome"] = "engine refused"
            problems.append("imported, then the engine refused it: " + (check.stderr.strip().splitlines() or [""])[-1][:200])
    else:
        result["outcome"] = f"exit {code}"
        problems.append(f"exit {code}")
    left = [p.name for p in folder.parent.glob(f".{out.name}.partial-*")] + ([out.name] if out.exists() else [])
    if left:
        problems.append(f"left {left}")
    result["problems"] = problems
    return result


def run(engine: str, seed: int, count: int, workers: int, keep: Path | None, family: str = "llava") -> dict:
    import make_hf_checkpoint
    root = Path(tempfile.mkdtemp(prefix="assistant-fuzz-")) if keep is None else keep
    root.mkdir(parents=True, exist_ok=True)
    try:
        base = root / "base"
        if not base.exists():
            assert make_hf_checkpoint.main(["--out", str(base), "--family", family]) == 0
        cases = make_cases(base, root, seed, count)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda c: judge(c, engine), cases))
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    counts = {"cases": len(results), "refused": sum(r["outcome"] == "refused" for r in results),
              "refused_by_the_last_handler": sum(bool(r.get("generic")) for r in results),
              "accepted": sum(r["outcome"] == "accepted" for r in results),
              "violations": sum(bool(r["problems"]) for r in results),
              "max_seconds": max((r["seconds"] for r in results), default=0), "max_peak_mb": max((r["peak_mb"] for r in results), default=0),
              "by_family": {f: {o: sum(r["family"] == f and r["outcome"] == o for r in results) for o in ("refused", "accepted")}
                            for f in sorted({r["family"] for r in results})}}
    return {"seed": seed, "counts": counts, "results": results}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="fuzz_checkpoint.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", required=True, help="the assistant executable whose `models check --golden` judges imported sets")
    ap.add_argument("--cases", type=int, default=60, help="how many mutated checkpoints (default: 60)")
    ap.add_argument("--seed", type=int, default=31, help="the generator's seed (default: 31)")
    ap.add_argument("--workers", type=int, default=2, help="imports at once (default: 2)")
    ap.add_argument("--report", type=Path, help="write every case and the counts here as JSON")
    ap.add_argument("--family", choices=["llava", "llava-1.5", "smolvlm"], default="llava",
                    help="the valid checkpoint mutated (tools/make_hf_checkpoint.py --family; default: llava)")
    ap.add_argument("--keep", type=Path, help="make the cases in this folder and keep them (default: a temporary folder, removed)")
    args = ap.parse_args(argv)
    if not os.access(args.engine, os.X_OK):
        print(f"error: {args.engine} is not an executable (build the assistant first)", file=sys.stderr)
        return 2
    report = run(args.engine, args.seed, args.cases, args.workers, args.keep, args.family)
    for r in report["results"]:
        flag = "VIOLATION " + "; ".join(r["problems"]) if r["problems"] else r["outcome"]
        line = f"{r['case']:3d} {r['family']:9s} {r['seconds']:5.1f}s {r['peak_mb']:4d}MB {flag}: {r['mutation'][:90]!r} {r['stderr'][:140]!r}"
        print(line)
        if r["problems"]:
            print(line, file=sys.stderr)  # a caller that shows only stderr on failure (the C# test) shows these
    c = report["counts"]
    print(f"fuzz: {c['cases']} cases (seed {report['seed']}): {c['refused']} refused in one line "
          f"({c['refused_by_the_last_handler']} by the last handler), {c['accepted']} imported and accepted by the engine, "
          f"{c['violations']} violations; slowest {c['max_seconds']:.1f} s, peak {c['max_peak_mb']} MB")
    if args.report:
        args.report.write_text(json.dumps(report, indent=1))
    return 1 if c["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
