"""lm-eval per-sample logs -> item records, pinned item selection, the catalog, and the records' file format."""

from __future__ import annotations

import pytest

from stages.evaluator.items import ItemRecord, read_records, samples_file, subset_hash, write_records
from stages.evaluator.lmeval.catalog import CATALOG, info, tier_tasks
from stages.evaluator.lmeval.records import records_from_samples
from stages.evaluator.lmeval.runner import select_items


def _mc_sample(doc_id, logliks, target, acc):
    return {
        "doc_id": doc_id, "doc": {"q": doc_id}, "target": target,
        "arguments": [["ctx", f" choice{i}" * (i + 1)] for i in range(len(logliks))],
        "resps": [[[ll, False]] for ll in logliks], "filtered_resps": [[ll, False] for ll in logliks],
        "filter": "none", "metrics": ["acc", "acc_norm"], "doc_hash": f"h{doc_id}", "prompt_hash": "p",
        "target_hash": "t", "acc": acc, "acc_norm": 1.0 - acc,
    }


def test_multiple_choice_records():
    recs = records_from_samples("fllm_nq_mc", [_mc_sample(1, [-3.0, -1.0], 1, 1.0), _mc_sample(0, [-1.0, -2.0], 1, 0.0)],
                                "mc")
    assert [r.item_id for r in recs] == ["0", "1"]  # sorted by document
    r = recs[1]
    assert (r.correct, r.score, r.metric, r.label) == (True, 1.0, "acc,none", 1)
    assert r.choice_logliks == [-3.0, -1.0] and r.choice_lengths == [8, 16]
    assert r.metrics == {"acc,none": 1.0, "acc_norm,none": 0.0} and r.doc_hash == "h1"
    assert recs[0].correct is False


def test_generative_records_merge_filters_and_keep_every_repeat():
    samples = [
        {"doc_id": 0, "doc": {"type": "x"}, "target": "42", "arguments": [["Q?", {"until": []}]],
         "resps": [["a 42", "b 41", "c"]], "filtered_resps": ["a 42"], "filter": "strict-match",
         "metrics": ["exact_match"], "doc_hash": "d0", "exact_match": 0.0},
        {"doc_id": 0, "doc": {"type": "x"}, "target": "42", "arguments": [["Q?", {"until": []}]],
         "resps": [["a 42", "b 41", "c"]], "filtered_resps": ["42"], "filter": "flexible-extract",
         "metrics": ["exact_match"], "doc_hash": "d0", "exact_match": 1.0},
    ]
    (r,) = records_from_samples("gsm8k", samples, "gen", count_tokens=lambda s: len(s.split()), doc_fields=("type",))
    assert r.responses == ["a 42", "b 41", "c"] and r.response_tokens == [2, 2, 1]
    assert r.metrics == {"exact_match,strict-match": 0.0, "exact_match,flexible-extract": 1.0}
    assert r.metric == "exact_match,flexible-extract" and r.correct is True  # the catalog's filter for gsm8k
    assert r.extra["doc"] == {"type": "x"} and r.prompt == "Q?" and r.target == "42"


def test_continuous_item_scores_count_as_correct_from_one_half():
    s = _mc_sample(0, [-1.0, -2.0], 0, 0.7)
    (r,) = records_from_samples("truthfulqa_mc2", [s], "mc")
    assert r.score == pytest.approx(0.7) and r.correct is True


def test_select_items_precedence_and_determinism():
    sizes = {"a": 10, "b": 3, "c": 50}
    chosen, how = select_items(sizes, limit=4, seed=None, explicit={"a": [7, 2, 2]})
    assert chosen == {"a": [2, 7], "b": [0, 1, 2], "c": [0, 1, 2, 3]}
    assert how == {"a": "indices:2,7", "b": "all", "c": "first:4"}
    r1, h1 = select_items(sizes, limit=4, seed=5, explicit=None)
    r2, _ = select_items(sizes, limit=4, seed=5, explicit=None)
    assert r1 == r2 and len(r1["c"]) == 4 and h1["c"] == "random:4:seed=5" and r1["c"] != [0, 1, 2, 3]
    chosen, how = select_items(sizes, limit=None, seed=None, explicit=None, default_subsets={"c": 20})
    assert len(chosen["c"]) == 20 and how["c"] == "random:20:seed=0" and how["a"] == "all"
    with pytest.raises(ValueError, match="outside its 3 documents"):
        select_items(sizes, None, None, {"b": [3]})


def test_catalog_tiers_and_leaves():
    assert set(tier_tasks(["A"])) == {"mmlu", "arc_challenge", "hellaswag", "winogrande", "truthfulqa_mc2"}
    assert "ifeval" in tier_tasks(["B"]) and "aime25" in tier_tasks(["C"])
    assert info("mmlu_astronomy").capability == "knowledge" and info("mmlu_pro_law").metric == "exact_match"
    assert info("something_new").capability == "other"
    assert all(t.tier in (None, "A", "B", "C") for t in CATALOG.values())


def test_records_round_trip_and_subset_hash(tmp_path):
    recs = [ItemRecord(task="eval:MATH500", item_id=str(i), kind="gen", correct=bool(i % 2), doc_hash=f"d{i}")
            for i in range(3)]
    rel = write_records(tmp_path, "eval:MATH500", recs)
    assert rel == samples_file("eval:MATH500") == "samples/eval_MATH500.jsonl"
    back = read_records(tmp_path / rel)
    assert back == recs
    assert subset_hash(back) == subset_hash(list(reversed(recs)))
    changed = [ItemRecord(**{**r.__dict__, "doc_hash": "other"}) if r.item_id == "1" else r for r in recs]
    assert subset_hash(changed) != subset_hash(recs)
