"""Our verdicts equal GEM's own graders' verdicts on the same inputs (551 cases, real rows + tricky ones).

GEM side: `MathEnv.check_correct` (GEM's math grading function), and real `QaEnv` / `CodeEnv` instances
stepped on each case. Ours: `Graders.grade_many`. "Correct" on GEM's side means reward > 0 (GEM gives
-0.1 for a code response without a code block; we give a failing verdict).
"""

from __future__ import annotations

import os
import sys

import pytest

from stages.envs.gem_bridge import gem_step
from tests.envs.agreement_cases import code_cases, math_cases, qa_cases


def _report(disagreements: list) -> str:
    return "\n".join(repr(d)[:300] for d in disagreements[:20])


@pytest.mark.timeout(120)
def test_math_verdicts_equal_gem(graders, gem):
    from gem.envs.math_env import MathEnv

    cases = math_cases()
    assert len(cases) >= 200
    theirs = [bool(MathEnv.check_correct(response, gt)) for response, gt in cases]
    ours = graders.grade_many("math", [r for r, _ in cases], [gt for _, gt in cases])
    bad = [(c, t, o) for c, t, o in zip(cases, theirs, ours) if t != o.correct]
    assert not bad, _report(bad)
    assert 0.3 < sum(theirs) / len(theirs) < 0.9  # both outcomes are well represented
    assert {o.verdict for o in ours} == {"pass", "fail"}


@pytest.mark.timeout(60)
def test_qa_verdicts_equal_gem_qa_env(graders, gem):
    import datasets

    one_row = datasets.Dataset.from_list([{"question": "q", "answer": ["a"]}])
    envs = {
        "tag": gem.make("eval:NaturalQuestions", dataset=one_row),
        "boxed": gem.make("eval:NaturalQuestions", dataset=one_row, extract_boxed=True),
    }
    cases = qa_cases()
    assert len(cases) >= 200
    bad, n_correct = [], 0
    for response, aliases, mode in cases:
        env = envs[mode]
        env.set_state({"first_obs": "q", "answer": aliases})
        reward, _info = gem_step(env, response)  # GEM 0.1.0 crashes without a tag: read as 0
        ours = graders.grade("qa", response, {"answers": aliases, "extract": mode})
        n_correct += ours.correct
        if (reward > 0) != ours.correct:
            bad.append((response, aliases, mode, reward, ours))
    assert not bad, _report(bad)
    assert 0.3 < n_correct / len(cases) < 0.8


@pytest.mark.timeout(150)
def test_code_verdicts_equal_gem_code_env(graders, gem, tmp_path, monkeypatch):
    import datasets

    # GEM runs `python` from PATH in temp folders under the current directory.
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    monkeypatch.chdir(tmp_path)
    env = gem.make("eval:CodeContest", dataset=datasets.Dataset.from_list(
        [{"problem": "p", "tests": {"inputs": ["1"], "outputs": ["1"]}}]))
    cases = code_cases()
    assert len(cases) >= 50
    theirs = []
    for response, tests in cases:
        env.unwrapped.tests = tests
        theirs.append(gem_step(env, response)[0])
    ours = graders.grade_many("code", [r for r, _ in cases], [{"tests": t} for _, t in cases])
    bad = [(c[0], t, o) for c, t, o in zip(cases, theirs, ours) if (t > 0) != o.correct]
    assert not bad, _report(bad)
    verdicts = {o.verdict for o in ours}
    assert verdicts == {"pass", "fail", "timeout", "error"}
    reasons = {o.details.get("reason") for o in ours}
    assert {"no_code_block", "blocked_by_gem_blocklist", "wrong_output", "time_limit", "runtime_error"} <= reasons
    assert any(o.details.get("retried_with_base_imports") and o.correct for o in ours)
