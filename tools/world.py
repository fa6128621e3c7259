"""The synthetic visual-reasoning world: scenes of coloured shapes and questions about them.

One definition, mirrored exactly by Capture/World/ in C# (tests/data/world_fixture.json pins the two):
every random choice comes from SplitMix64 in the same order, all geometry is float64 with no
transcendental functions, so both languages produce the same scene graph, the same questions and the
same pixels. Splits are seed ranges: train [0, 1e6), val [1e6, 1.01e6), test [2e6, 2.01e6).
"""
from dataclasses import dataclass

import numpy as np

MASK = (1 << 64) - 1
COLORS = ["red", "green", "blue", "yellow", "purple", "orange"]
RGB = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (230, 200, 40),
       "purple": (150, 60, 200), "orange": (240, 140, 30)}
BACKGROUND = (236, 236, 230)
SHAPES = ["circle", "square", "triangle"]
SIZES = ["small", "large"]
RADIUS = {"small": 0.07, "large": 0.115}  # in canvas units (the canvas is the unit square)
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six"]
FAMILIES = ["attribute", "count", "spatial", "nearest", "exists", "compare"]
RELATIONS = ["left of", "right of", "above", "below"]
ANSWERS = COLORS + SHAPES + NUMBERS + ["yes", "no"]
MIN_OBJECTS, MAX_OBJECTS = 3, 6
GAP = 0.04  # minimum free space between two objects' bounding circles
MARGIN = 0.02  # minimum space between an object and the canvas edge
SPATIAL_MARGIN = 0.05  # a left/right/above/below question needs at least this separation
NEAREST_MARGIN = 0.005  # squared-distance gap between the nearest (farthest) object and the runner-up
SPLITS = {"train": (0, 1_000_000), "val": (1_000_000, 1_010_000), "test": (2_000_000, 2_010_000)}


class SplitMix64:
    def __init__(self, seed: int):
        self.state = seed & MASK

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self) -> float:
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))

    def below(self, n: int) -> int:
        return self.next_u64() % n

    def choice(self, items):
        return items[self.below(len(items))]


def sq(v: float) -> float:
    return v * v  # a product, not pow(): C# multiplies too, and pow need not round the same way


@dataclass
class Obj:
    shape: str
    color: str
    size: str
    x: float
    y: float

    @property
    def r(self) -> float:
        return RADIUS[self.size]

    def attr(self, name: str) -> str:
        return getattr(self, name)


def scene(seed: int) -> list:
    """The objects of scene `seed`, in drawing order. Every (size, color, shape) appears at most once."""
    rng = SplitMix64(seed)
    n = MIN_OBJECTS + rng.below(MAX_OBJECTS - MIN_OBJECTS + 1)
    objs = []
    for _ in range(n):
        for _attempt in range(100):
            shape, color, size = rng.choice(SHAPES), rng.choice(COLORS), rng.choice(SIZES)
            r = RADIUS[size]
            x = r + MARGIN + rng.uniform() * (1.0 - 2.0 * (r + MARGIN))
            y = r + MARGIN + rng.uniform() * (1.0 - 2.0 * (r + MARGIN))
            if any((o.shape, o.color, o.size) == (shape, color, size) for o in objs):
                continue
            if any(sq(o.x - x) + sq(o.y - y) < sq(o.r + r + GAP) for o in objs):
                continue
            objs.append(Obj(shape, color, size, x, y))
            break
    return objs


def render(objs: list, size: int) -> np.ndarray:
    """(size, size, 3) uint8. Pixel (i, j) is sampled at its centre; no antialiasing, so C# matches exactly."""
    img = np.empty((size, size, 3), dtype=np.uint8)
    img[:] = BACKGROUND
    for o in objs:
        r = o.r
        i0, i1 = max(int(np.floor((o.x - r) * size)), 0), min(int(np.ceil((o.x + r) * size)), size)
        j0, j1 = max(int(np.floor((o.y - r) * size)), 0), min(int(np.ceil((o.y + r) * size)), size)
        px = (np.arange(i0, i1, dtype=np.float64) + 0.5) / size  # (W,)
        py = (np.arange(j0, j1, dtype=np.float64) + 0.5) / size  # (H,)
        dx, dy = px[None, :] - o.x, py[:, None] - o.y  # (1, W), (H, 1)
        if o.shape == "circle":
            inside = dx * dx + dy * dy <= r * r
        elif o.shape == "square":
            inside = (np.abs(dx) <= r * 0.85) & (np.abs(dy) <= r * 0.85)
        else:  # triangle: apex up at y - r, base at y + 0.75 r, half-width r at the base
            top, base = o.y - r, o.y + 0.75 * r
            t = (py[:, None] - top) / (base - top)
            inside = (t >= 0.0) & (t <= 1.0) & (np.abs(dx) <= r * t)
        img[j0:j1, i0:i1][inside] = RGB[o.color]
    return img


# ---- questions: a spec is a plain dict; text() and answer() read it ----

def describe(ref: dict) -> str:
    words = [ref[a] for a in ("size", "color") if a in ref]
    return " ".join(words + [ref.get("shape", "object")])


def matches(o: Obj, ref: dict) -> bool:
    return all(o.attr(a) == v for a, v in ref.items())


def resolve(objs: list, ref: dict):
    found = [o for o in objs if matches(o, ref)]
    return found[0] if len(found) == 1 else None


def refer(objs: list, o: Obj, forms) -> dict:
    """The first attribute set in `forms` that picks out `o` alone, or None."""
    for form in forms:
        ref = {a: o.attr(a) for a in form}
        if resolve(objs, ref) is o:
            return ref
    return None


GENERAL_FORMS = (("shape",), ("color", "shape"), ("size", "color", "shape"))


def text(q: dict) -> str:
    f = q["family"]
    if f == "attribute":
        return f"what {q['ask']} is the {describe(q['ref'])}?"
    if f == "count":
        return f"how many {q['value']}s are there?" if q["kind"] == "shape" else f"how many {q['value']} objects are there?"
    if f == "spatial":
        return f"is the {describe(q['a'])} {q['relation']} the {describe(q['b'])}?"
    if f == "nearest":
        word = "farthest from" if q["far"] else "nearest to"
        return f"what {q['ask']} is the object {word} the {describe(q['ref'])}?"
    if f == "exists":
        article = "an" if q["color"][0] in "aeiou" else "a"
        return f"is there {article} {q['color']} {q['shape']}?"
    if f == "compare":
        if q["kind"] == "shape":
            return f"are there more {q['a']}s than {q['b']}s?"
        return f"are there more {q['a']} objects than {q['b']} objects?"
    raise ValueError(f)


def answer(objs: list, q: dict) -> str:
    """The true answer on `objs` (the scene may have moved since the question was made)."""
    f = q["family"]
    yes = lambda b: "yes" if b else "no"
    if f == "attribute":
        o = resolve(objs, q["ref"])
        return o.attr(q["ask"]) if o else "none"
    if f == "count":
        return NUMBERS[sum(1 for o in objs if o.attr(q["kind"]) == q["value"])]
    if f == "spatial":
        a, b = resolve(objs, q["a"]), resolve(objs, q["b"])
        rel = q["relation"]
        return yes(a.x < b.x if rel == "left of" else a.x > b.x if rel == "right of" else a.y < b.y if rel == "above" else a.y > b.y)
    if f == "nearest":
        o = resolve(objs, q["ref"])
        return neighbour(objs, o, q["far"]).attr(q["ask"])
    if f == "exists":
        return yes(any(o.color == q["color"] and o.shape == q["shape"] for o in objs))
    if f == "compare":
        count = lambda v: sum(1 for o in objs if o.attr(q["kind"]) == v)
        return yes(count(q["a"]) > count(q["b"]))
    raise ValueError(f)


def neighbour(objs: list, o: Obj, far: bool) -> Obj:
    """The object nearest to `o` (farthest with `far`): what a nearest/farthest question asks about."""
    others = sorted((p for p in objs if p is not o), key=lambda p: sq(p.x - o.x) + sq(p.y - o.y))
    return others[-1] if far else others[0]


def _rotated(items, start):
    return items[start:] + items[:start]


def make(objs: list, rng: SplitMix64, family: str):
    """A question of `family` that is well defined on `objs`, or None."""
    n = len(objs)
    if family == "attribute":
        ask_first = rng.below(2)
        for o in _rotated(objs, rng.below(n)):
            for k in (ask_first, 1 - ask_first):
                ask = ("color", "shape")[k]
                forms = (("shape",), ("size", "shape")) if ask == "color" else (("color",), ("size", "color"))
                ref = refer(objs, o, forms)
                if ref:
                    return {"family": family, "ask": ask, "ref": ref}
        return None
    if family == "count":
        kind = ("color", "shape", "size")[rng.below(3)]
        values = {"color": COLORS, "shape": SHAPES, "size": SIZES}[kind]
        return {"family": family, "kind": kind, "value": rng.choice(values)}
    if family == "spatial":
        relation = rng.choice(RELATIONS)
        if n < 2:
            return None
        start = rng.below(n)
        for i in range(n):
            a = objs[(start + i) % n]
            for j in range(1, n):
                b = objs[(start + i + j) % n]
                sep = abs(a.x - b.x) if relation in ("left of", "right of") else abs(a.y - b.y)
                ra, rb = refer(objs, a, GENERAL_FORMS), refer(objs, b, GENERAL_FORMS)
                if sep > SPATIAL_MARGIN and ra and rb:
                    return {"family": family, "a": ra, "relation": relation, "b": rb}
        return None
    if family == "nearest":
        far, ask = rng.below(2) == 1, ("color", "shape")[rng.below(2)]
        if n < 3:
            return None
        for o in _rotated(objs, rng.below(n)):
            ref = refer(objs, o, GENERAL_FORMS)
            d = sorted(sq(p.x - o.x) + sq(p.y - o.y) for p in objs if p is not o)
            gap = d[-1] - d[-2] if far else d[1] - d[0]
            if ref and gap > NEAREST_MARGIN:
                return {"family": family, "ref": ref, "far": far, "ask": ask}
        return None
    if family == "exists":
        if rng.below(2) == 0:
            o = rng.choice(objs)
            return {"family": family, "color": o.color, "shape": o.shape}
        absent = [(c, s) for c in COLORS for s in SHAPES if not any(o.color == c and o.shape == s for o in objs)]
        c, s = rng.choice(absent)
        return {"family": family, "color": c, "shape": s}
    if family == "compare":
        kind = ("color", "shape")[rng.below(2)]
        values = COLORS if kind == "color" else SHAPES
        a = rng.choice(values)
        b = rng.choice([v for v in values if v != a])
        return {"family": family, "kind": kind, "a": a, "b": b}
    raise ValueError(family)


def question_seed(scene_seed: int, index: int) -> int:
    return (scene_seed * 64 + index + (1 << 40)) & MASK


def questions(scene_seed: int, count: int, family: str = None) -> list:
    """`count` (question spec, text, answer) triples for the scene; the family cycles from a random start
    unless one is given."""
    objs = scene(scene_seed)
    out = []
    for index in range(count):
        rng = SplitMix64(question_seed(scene_seed, index))
        start = rng.below(len(FAMILIES)) if family is None else FAMILIES.index(family)
        for k in range(len(FAMILIES) if family is None else 1):
            q = make(objs, rng, FAMILIES[(start + k) % len(FAMILIES)])
            if q:
                out.append((q, text(q), answer(objs, q)))
                break
    return out


def vocabulary() -> list:
    """Every word a world question can contain, sorted (the C# side rejects queries with others)."""
    words = set()
    for c in COLORS:
        for s in SHAPES:
            for z in SIZES:
                for q in ({"family": "attribute", "ask": "color", "ref": {"size": z, "shape": s}},
                          {"family": "attribute", "ask": "shape", "ref": {"size": z, "color": c}},
                          {"family": "count", "kind": "shape", "value": s},
                          {"family": "count", "kind": "color", "value": c},
                          {"family": "count", "kind": "size", "value": z},
                          {"family": "spatial", "a": {"size": z, "color": c, "shape": s}, "relation": "left of", "b": {"shape": s}},
                          {"family": "nearest", "ref": {"shape": s}, "far": True, "ask": "color"},
                          {"family": "nearest", "ref": {"shape": s}, "far": False, "ask": "shape"},
                          {"family": "exists", "color": c, "shape": s},
                          {"family": "compare", "kind": "shape", "a": s, "b": s},
                          {"family": "compare", "kind": "color", "a": c, "b": c}):
                    words.update(text(q).rstrip("?").split())
    for rel in RELATIONS:
        words.update(rel.split())
    return sorted(words)


def corpus() -> list:
    """Text the tokenizer is trained on: one question per template and attribute value, and every answer."""
    lines = []
    for seed in range(3000):
        lines += [t for _, t, _ in questions(seed, 2)]
    return lines + ANSWERS
