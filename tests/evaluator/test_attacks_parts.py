"""The attacks suite's pure parts, without a model: the seeded behaviour draw (same seed, same behaviours; every
category reached before any repeats; copyright left out), the genetic operators of AutoDAN (one placeholder always,
crossover exchanges whole sentences, word mutation swaps a word for a listed synonym), and the per-behaviour seed."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from stages.evaluator.attacks.autodan import crossover, sentences
from stages.evaluator.attacks.behaviours import UnknownBehaviours, load, select
from stages.evaluator.attacks.mutation import WordMutation, repair
from stages.evaluator.attacks.outcome import behaviour_seed
from stages.evaluator.attacks.prototypes import PLACEHOLDER, PROTOTYPES, SYNONYMS


@pytest.fixture(scope="module")
def rows(benchmarks_dir, has_harmbench):
    if not has_harmbench:
        from tests.evaluator.conftest import HARMBENCH_REASON

        pytest.skip(HARMBENCH_REASON)
    found, targets = load(benchmarks_dir, "test")
    assert targets == "generic"  # no harmbench_targets_text.json among the fixture rows
    return found


def test_the_draw_is_seeded_and_spreads_over_the_categories(rows):
    assert len(rows) == 240 and not any(b.functional_category == "copyright" for b in rows)
    categories = {b.semantic_category for b in rows}
    first = select(rows, len(categories), seed=3)
    assert {b.semantic_category for b in first} == categories  # one of each before any category repeats
    assert [b.behavior_id for b in select(rows, 20, seed=3)] == [b.behavior_id for b in select(rows, 20, seed=3)]
    assert [b.behavior_id for b in select(rows, 20, seed=3)] != [b.behavior_id for b in select(rows, 20, seed=4)]
    counts = Counter(b.semantic_category for b in select(rows, 20, seed=0))
    assert max(counts.values()) - min(counts.values()) <= 1
    chosen = select(rows, 5, 0, ids=[rows[7].behavior_id, rows[2].behavior_id])
    assert [b.behavior_id for b in chosen] == [rows[7].behavior_id, rows[2].behavior_id]
    with pytest.raises(UnknownBehaviours, match="nope"):
        select(rows, 5, 0, ids=["nope"])
    assert all(b.target.startswith("Sure, here is") and b.behavior.strip() in b.target for b in rows[:3])


def test_the_draw_can_keep_to_one_functional_category(rows):
    kinds = Counter(b.functional_category for b in rows)
    assert kinds["standard"] and kinds["contextual"] and "copyright" not in kinds  # copyright is never attacked
    standard = select(rows, 12, seed=0, functional=["standard"])
    assert len(standard) == min(12, kinds["standard"]) and {b.functional_category for b in standard} == {"standard"}
    assert {b.functional_category for b in select(rows, 400, seed=0, functional=["contextual"])} == {"contextual"}


def test_genetic_operators_keep_one_placeholder_and_whole_sentences():
    rng = random.Random(0)
    a, b = PROTOTYPES[0], PROTOTYPES[2]
    pool = set(sentences(a)) | set(sentences(b))
    for _ in range(20):
        for child in crossover(a, b, 5, rng):
            assert child.count(PLACEHOLDER) == 1
            assert set(sentences(child)) <= pool | {PLACEHOLDER}
    assert repair("no marker.") == f"no marker. {PLACEHOLDER}"
    assert repair(f"{PLACEHOLDER} and {PLACEHOLDER}") == f"{PLACEHOLDER} and "
    mutated = WordMutation().mutate(a, random.Random(1))
    before, after = a.split(), mutated.split()
    assert mutated != a and PLACEHOLDER in mutated
    changed = [(x, y) for x, y in zip(before, after) if x != y]
    word = changed[0][0].strip(".,:").lower()
    assert word in SYNONYMS and any(s.split()[0] in mutated for s in SYNONYMS[word])


def test_each_behaviour_has_its_own_seed_whatever_ran_before():
    assert behaviour_seed(0, "gcg", "x") == behaviour_seed(0, "gcg", "x")
    assert len({behaviour_seed(0, "gcg", "x"), behaviour_seed(1, "gcg", "x"), behaviour_seed(0, "autodan", "x"),
                behaviour_seed(0, "gcg", "y")}) == 4
