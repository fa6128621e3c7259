"""The world's definition: determinism, well-posed questions, and the fixture that pins C# to it."""
import collections
import json


import world
import world_fixture


def test_fixture_is_current():
    # The C# world is tested against this file; a world change must regenerate it (tools/world_fixture.py).
    assert json.loads(world_fixture.OUT.read_text()) == json.loads(json.dumps(world_fixture.build()))


def test_scenes_are_deterministic_and_valid():
    for seed in range(300):
        a, b = world.scene(seed), world.scene(seed)
        assert a == b
        assert world.MIN_OBJECTS <= len(a) <= world.MAX_OBJECTS
        assert len({(o.shape, o.color, o.size) for o in a}) == len(a)
        for i, o in enumerate(a):
            assert o.r + world.MARGIN <= o.x <= 1 - o.r - world.MARGIN
            for p in a[i + 1:]:
                assert world.sq(o.x - p.x) + world.sq(o.y - p.y) >= world.sq(o.r + p.r + world.GAP)


def test_every_family_appears_and_answers_are_in_the_closed_vocabulary():
    families, answers = collections.Counter(), collections.Counter()
    vocab = set(world.vocabulary())
    for seed in range(500):
        for q, text, ans in world.questions(seed, 4):
            families[q["family"]] += 1
            answers[ans] += 1
            assert ans in world.ANSWERS
            assert set(text.rstrip("?").split()) <= vocab
    assert set(families) == set(world.FAMILIES)
    assert min(families.values()) > 200


def test_yes_no_questions_are_not_one_sided():
    counts = collections.Counter()
    for seed in range(1000):
        for q, _, ans in world.questions(seed, 3):
            if ans in ("yes", "no"):
                counts[q["family"], ans] += 1
    for fam in ("spatial", "exists", "compare"):
        share = counts[fam, "yes"] / (counts[fam, "yes"] + counts[fam, "no"])
        assert 0.25 < share < 0.75, (fam, share)


def test_render_draws_each_object_in_its_colour():
    objs = world.scene(5)
    img = world.render(objs, 64)
    for o in objs:
        x, y = int(o.x * 64), int(o.y * 64 + (0.3 * o.r * 64 if o.shape == "triangle" else 0))
        assert tuple(img[y, x]) == world.RGB[o.color], o


def test_one_object_per_query_answer_changes_with_the_scene():
    # The same question asked of two scenes is answered from each scene, not memorised.
    q = {"family": "count", "kind": "color", "value": "red"}
    answers = {world.answer(world.scene(s), q) for s in range(50)}
    assert len(answers) >= 3


def test_splits_do_not_overlap():
    spans = sorted(world.SPLITS.values())
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
