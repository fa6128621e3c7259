"""Batches of world scenes for training: pixels, per-patch targets (stage 1) and tokenised questions
and answers (stage 2). Generation runs in worker processes; every batch is a pure function of its seeds."""
import multiprocessing as mp
import time

import numpy as np
import torch

import world

PAD = -100  # ignored by the loss


def patch_targets(objs, image: np.ndarray, grid: int) -> dict:
    """Per patch: colour at the patch centre (0 = background), and for the patch holding an object's
    centre that object's colour, shape and size (0 = none) and the centre's offset inside the patch."""
    size = image.shape[0]
    step = size // grid
    centre = image[step // 2::step, step // 2::step]  # (G, G, 3)
    colour = np.zeros((grid, grid), dtype=np.int64)
    for k, c in enumerate(world.COLORS):
        colour[(centre == world.RGB[c]).all(-1)] = k + 1
    obj_colour = np.zeros((grid, grid), dtype=np.int64)
    obj_shape = np.zeros((grid, grid), dtype=np.int64)
    obj_size = np.zeros((grid, grid), dtype=np.int64)
    offset = np.zeros((grid, grid, 2), dtype=np.float32)
    for o in objs:
        col, row = min(int(o.x * grid), grid - 1), min(int(o.y * grid), grid - 1)
        obj_colour[row, col] = world.COLORS.index(o.color) + 1
        obj_shape[row, col] = world.SHAPES.index(o.shape) + 1
        obj_size[row, col] = world.SIZES.index(o.size) + 1
        offset[row, col] = (o.x * grid - col, o.y * grid - row)
    return {"colour": colour.reshape(-1), "obj_colour": obj_colour.reshape(-1), "obj_shape": obj_shape.reshape(-1),
            "obj_size": obj_size.reshape(-1), "offset": offset.reshape(-1, 2)}


def _make(job):
    seeds, image_size, grid, questions_per_scene = job
    images, targets, qs = [], [], []
    for s in seeds:
        objs = world.scene(int(s))
        img = world.render(objs, image_size)
        images.append(img)
        targets.append(patch_targets(objs, img, grid))
        if questions_per_scene:
            qs.append([(t, a, q["family"]) for q, t, a in world.questions(int(s), questions_per_scene)])
    return np.stack(images), targets, qs


class Batches:
    """Endless batches of scenes drawn from a seed range, in worker processes. `questions` > 0 also
    yields that many (text, answer, family) per scene."""

    def __init__(self, split: str, batch: int, image_size: int, grid: int, questions: int = 0, seed: int = 0,
                 workers: int = 2):
        lo, hi = world.SPLITS[split]
        self.lo, self.hi, self.batch, self.image_size, self.grid, self.questions = lo, hi, batch, image_size, grid, questions
        self.rng = np.random.default_rng(seed)
        self.pool = mp.get_context("fork").Pool(workers) if workers > 1 else None

    def _jobs(self):
        while True:
            yield (self.rng.integers(self.lo, self.hi, self.batch), self.image_size, self.grid, self.questions)

    def __iter__(self):
        jobs = self._jobs()
        if self.pool is None:
            yield from map(_make, jobs)
            return
        # A bounded window of batches in flight: Pool.imap would drain the endless job generator and
        # buffer results without limit (it did: 12 GB in two minutes).
        pending = [self.pool.apply_async(_make, (next(jobs),)) for _ in range(2 * self.pool._processes)]
        while True:
            result = pending.pop(0).get()
            pending.append(self.pool.apply_async(_make, (next(jobs),)))
            yield result

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool = None

    def fixed(self, seeds):
        return _make((np.asarray(seeds), self.image_size, self.grid, self.questions))


def to_pixels(images: np.ndarray, mean, std, device) -> torch.Tensor:
    """uint8 (B, S, S, 3) -> normalised (B, 3, S, S) float, as the C# preprocessor does at model size."""
    images = images if isinstance(images, torch.Tensor) else torch.from_numpy(images)
    x = images.to(device).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(mean, device=device)[None, :, None, None]) / torch.tensor(std, device=device)[None, :, None, None]


def stack_targets(targets: list, device) -> dict:
    return {k: torch.from_numpy(np.stack([t[k] for t in targets])).to(device) for k in targets[0]}


def object_centres(objs, grid: int):
    """(G, G, 2): for every patch an object reaches, that object's centre (the nearest object's, where two
    do), and a (G, G) mask of such patches. A patch counts as reached when its centre lies within the object's
    radius plus half a patch. Every patch of an object names the same centre, so attention spread over an
    object's patches still reads one position (with only the centre patch named, it read R^2 0.47)."""
    centres = np.zeros((grid, grid, 2), dtype=np.float32)
    has = np.zeros((grid, grid), dtype=bool)
    best = np.full((grid, grid), np.inf)
    c = (np.arange(grid) + 0.5) / grid
    for o in objs:
        d = np.sqrt((c[None, :] - o.x) ** 2 + (c[:, None] - o.y) ** 2)  # (G rows, G cols)
        mine = (d <= o.r + 0.5 / grid) & (d < best)
        centres[mine], has[mine], best[mine] = (o.x, o.y), True, d[mine]
    return centres, has


def named_positions(objs, q: dict) -> list:
    """Where the objects a question names are: [x1, y1, x2, y2, given1, given2] (the --name-loss targets).
    Spatial: a and b; nearest: the reference and the object the answer is about; attribute: the reference;
    other families name no single object."""
    f = q["family"]
    if f == "spatial":
        a, b = world.resolve(objs, q["a"]), world.resolve(objs, q["b"])
        return [a.x, a.y, b.x, b.y, 1.0, 1.0]
    if f == "attribute":
        o = world.resolve(objs, q["ref"])
        return [o.x, o.y, 0.0, 0.0, 1.0, 0.0]
    if f == "nearest":
        o = world.resolve(objs, q["ref"])
        t = world.neighbour(objs, o, q["far"])
        return [o.x, o.y, t.x, t.y, 1.0, 1.0]
    return [0.0] * 6


def _chunk(job):
    seeds, image_size, questions, grid = job
    imgs, qs, centres, has, named = [], [], [], [], []
    for s in seeds:
        objs = world.scene(int(s))
        imgs.append(world.render(objs, image_size))
        made = world.questions(int(s), questions)
        qs.append([(t, a, q["family"]) for q, t, a in made])
        named += [named_positions(objs, q) for q, _, _ in made]
        c, h = object_centres(objs, grid)
        centres.append(c)
        has.append(h)
    return np.stack(imgs), qs, np.stack(centres), np.stack(has), np.asarray(named, dtype=np.float32).reshape(-1, 6)


class Pregenerated:
    """`scenes` train scenes generated once (in worker processes) and kept on the device; batches are drawn
    from them at random, with spatial and nearest questions drawn `hard_weight` times as often. Removes the
    per-step generation cost that kept a GPU waiting."""

    def __init__(self, scenes: int, questions: int, image_size: int, grid: int, workers: int, seed: int, encode, device,
                 batch: int, hard_weight: float):
        lo, hi = world.SPLITS["train"]
        seeds = np.random.default_rng(seed).choice(np.arange(lo, hi), size=scenes, replace=False)
        chunks = [(seeds[i:i + 1024], image_size, questions, grid) for i in range(0, scenes, 1024)]
        t0 = time.time()
        with mp.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_chunk, chunks)
        self.images = torch.from_numpy(np.concatenate([p[0] for p in parts])).to(device)  # (N, S, S, 3) uint8
        self.centres = torch.from_numpy(np.concatenate([p[2] for p in parts])).to(device)  # (N, G, G, 2)
        self.has = torch.from_numpy(np.concatenate([p[3] for p in parts])).to(device)  # (N, G, G) bool
        self.named = torch.from_numpy(np.concatenate([p[4] for p in parts])).to(device)  # (questions, 6)
        qs = [q for p in parts for q in p[1]]
        self.ids, self.mask, self.ans, fams = encode(qs)
        lengths = torch.tensor([len(q) for q in qs], device=device)
        self.scene_of = torch.arange(len(qs), device=device).repeat_interleave(lengths)
        weights = torch.tensor([hard_weight if f in ("spatial", "nearest") else 1.0 for f in fams], device=device)
        self.weights, self.batch = weights / weights.sum(), batch
        self.gen = torch.Generator(device=device).manual_seed(seed)
        print(f"pre-generated {scenes} scenes, {len(fams)} questions in {time.time() - t0:.1f}s", flush=True)

        self.features = None

    def cache_features(self, encode, chunk: int = 256) -> None:
        """Runs `encode` (uint8 images -> (features, features_multi)) over every scene once; batches then carry
        the features in place of the images."""
        parts = [encode(self.images[i:i + chunk]) for i in range(0, len(self.images), chunk)]
        self.features = (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))

    def __iter__(self):
        while True:
            idx = torch.multinomial(self.weights, self.batch, replacement=True, generator=self.gen)
            scene = self.scene_of[idx]
            pictures = self.images[scene] if self.features is None else (self.features[0][scene], self.features[1][scene])
            yield (pictures, self.ids[idx], self.mask[idx], self.ans[idx], (self.centres[scene], self.has[scene]),
                   self.named[idx])

    def close(self) -> None:
        pass
