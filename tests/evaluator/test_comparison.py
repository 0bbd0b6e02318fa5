"""Sample-level forgetting between result folders: grouping, pooling, noise, chance adjustment, and refusals of
incomparable inputs."""

from __future__ import annotations

import pytest

from stages.core.errors import InputError
from stages.core.results import EvalResults
from stages.evaluator.comparison import check_protocol, forgetting_rows, load_results
from stages.evaluator.items import ItemRecord, write_records
from stages.evaluator.metrics.transitions import ItemSubsetMismatch


def _records(task, bits, kind="mc", k=4, hashes=None):
    return [ItemRecord(task=task, item_id=str(i), kind=kind, correct=None if b is None else bool(b),
                       choice_logliks=[0.0] * k if kind == "mc" else None,
                       doc_hash=(hashes or {}).get(i, f"{task}-{i}")) for i, b in enumerate(bits)]


def _results_dir(root, name, tasks: dict[str, list[ItemRecord]], protocol=None):
    folder = root / name
    folder.mkdir()
    res = EvalResults(run_id=name, model_uri="m", protocol=protocol or {})
    for task, recs in tasks.items():
        res.samples_files[task] = write_records(folder, task, recs)
    (folder / "results.json").write_text(res.model_dump_json(by_alias=True))
    return load_results(folder / "results.json", "base_results")


def test_groups_pool_their_leaves_and_overall_pools_everything(tmp_path):
    base = _results_dir(tmp_path, "base", {
        "mmlu_a": _records("mmlu_a", [1, 1, 0, 0]), "mmlu_b": _records("mmlu_b", [1, 0]),
        "gen": _records("gen", [1, 0, None], kind="gen"),
    })
    rerun = _results_dir(tmp_path, "rerun", {
        "mmlu_a": _records("mmlu_a", [1, 0, 0, 0]), "mmlu_b": _records("mmlu_b", [1, 0]),
        "gen": _records("gen", [1, 0, 1], kind="gen"),
    })
    current = {"mmlu_a": _records("mmlu_a", [0, 1, 1, 0]), "mmlu_b": _records("mmlu_b", [0, 0]),
               "gen": _records("gen", [0, 1, 1], kind="gen")}
    rows = {r.task: r for r in forgetting_rows(current, {"mmlu": ["mmlu_a", "mmlu_b"], "gen": ["gen"]}, base, rerun)}
    mmlu = rows["mmlu"]  # 6 items: 1->0 x2 (a0, b0), 1->1 x1, 0->1 x1, 0->0 x2
    assert (mmlu.n, mmlu.mcnemar_b, mmlu.mcnemar_c) == (6, 2, 1)
    assert mmlu.forgetting == pytest.approx(2 / 6) and mmlu.backward_transfer == pytest.approx(1 / 6)
    assert mmlu.forgetting_conditional == pytest.approx(2 / 3)
    assert mmlu.num_choices == 4 and mmlu.forgetting_true is not None
    assert mmlu.forgetting_chance == pytest.approx((1 - 0.5) / 3 * (1 - 2 / 6))
    assert mmlu.noise_flip_rate == pytest.approx(1 / 6)  # a1 flips between the two base runs
    assert mmlu.forgetting_minus_noise == pytest.approx(2 / 6 - 1 / 6)
    gen = rows["gen"]  # item 2 has no base verdict: dropped
    assert (gen.n, gen.n_missing, gen.forgetting, gen.backward_transfer) == (2, 1, 0.5, 0.5)
    assert gen.forgetting_true is None  # no chance adjustment for generative tasks
    overall = rows["overall"]
    assert (overall.n, overall.mcnemar_b, overall.mcnemar_c) == (8, 3, 2)
    assert overall.mcnemar_chi2 == pytest.approx(0.0)  # (|3 - 2| - 1)^2 / 5


def test_different_items_or_documents_are_refused(tmp_path):
    base = _results_dir(tmp_path, "base", {"t": _records("t", [1, 0, 1])})
    with pytest.raises(ItemSubsetMismatch, match="different item subset of 't'"):
        forgetting_rows({"t": _records("t", [1, 0])}, {"t": ["t"]}, base)
    with pytest.raises(ItemSubsetMismatch, match="different content"):
        forgetting_rows({"t": _records("t", [1, 0, 1], hashes={1: "changed"})}, {"t": ["t"]}, base)
    with pytest.raises(InputError, match="no per-item records for task 'u'"):
        forgetting_rows({"u": _records("u", [1])}, {"u": ["u"]}, base)


def test_protocol_mismatch_names_the_difference():
    base = EvalResults(run_id="base.eval", model_uri="m",
                       protocol={"tasks": "mmlu,arc_challenge", "limit": 50, "thinking": False})
    check_protocol(base, {"tasks": "mmlu", "limit": 50, "thinking": False}, "base_results")
    with pytest.raises(InputError, match="limit = 50 there, 20 here"):
        check_protocol(base, {"tasks": "mmlu", "limit": 20, "thinking": False}, "base_results")
    with pytest.raises(InputError, match="not evaluated on hellaswag"):
        check_protocol(base, {"tasks": "mmlu,hellaswag", "limit": 50}, "base_results")


def test_unreadable_results_are_input_errors(tmp_path):
    (tmp_path / "results.json").write_text('{"schema": "something/else"}')
    with pytest.raises(InputError, match="is not evaluator results"):
        load_results(tmp_path, "base_results")
    with pytest.raises(InputError, match="does not exist"):
        load_results(tmp_path / "missing.json", "base_results")
