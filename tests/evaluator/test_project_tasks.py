"""The project's lm-eval tasks over local rows: their datasets, their scoring functions, and lm-eval loading them
through the include path without the network."""

from __future__ import annotations

import pytest

from stages.evaluator.tasks import fllm_loaders, fllm_metrics, project_task_names


def test_project_task_names():
    assert set(project_task_names()) == {"fllm_gsm8k", "fllm_gsm8k_mc", "fllm_nq_open", "fllm_nq_mc", "fllm_xstest",
                                         "fllm_harmbench", "fllm_humaneval"}


def test_multiple_choice_options_are_real_answers_and_stable(benchmarks_dir):
    a = fllm_loaders.nq_mc(fllm_benchmarks=str(benchmarks_dir))["test"]
    b = fllm_loaders.nq_mc(fllm_benchmarks=str(benchmarks_dir))["test"]
    nq = fllm_loaders.nq_open(fllm_benchmarks=str(benchmarks_dir))["test"]
    assert len(a) == 3610 and a[:50] == b[:50]
    for i in range(50):
        row = a[i]
        assert len(row["choices"]) == 4 and len({c.lower() for c in row["choices"]}) == 4
        assert row["choices"][row["label"]] == nq[i]["answers"][0]
    assert len({row["label"] for row in a.select(range(50))}) > 1  # the gold is not always in one place
    gsm = fllm_loaders.gsm8k_mc(fllm_benchmarks=str(benchmarks_dir))["test"]
    gold = fllm_loaders.gsm8k(fllm_benchmarks=str(benchmarks_dir))["test"]
    assert gsm[0]["choices"][gsm[0]["label"]] == gold[0]["answer"] == "18"


def test_missing_rows_are_a_clear_error(tmp_path):
    with pytest.raises(fllm_loaders.BenchmarkDataMissing, match="holds no gsm8k/test.jsonl"):
        fllm_loaders.gsm8k(fllm_benchmarks=str(tmp_path))
    with pytest.raises(fllm_loaders.BenchmarkDataMissing, match="`benchmarks` input"):
        fllm_loaders.nq_open()


@pytest.mark.parametrize(
    ("response", "score"),
    [("Janet sells 9 eggs... #### 18", 1.0), ("The answer is \\boxed{18}.", 1.0), ("so 18.0", 1.0),
     ("#### 1,8", 1.0), ("#### 17", 0.0), ("no idea", 0.0)],
)
def test_gsm8k_scoring(response, score):
    assert fllm_metrics.gsm8k_exact_match({"answer": "18"}, [response]) == {"exact_match": score}


def test_nq_scoring():
    doc = {"answers": ["14 December 1972 UTC", "December 1972"]}
    assert fllm_metrics.nq_exact_match(doc, ["December 1972.\nmore text"])["exact_match"] == 1.0
    assert fllm_metrics.nq_exact_match(doc, ["<answer>the December 1972</answer>"])["exact_match"] == 1.0
    assert fllm_metrics.nq_exact_match(doc, ["1972"])["exact_match"] == 0.0


def test_lm_eval_loads_the_project_tasks_offline(benchmarks_dir, no_network):
    from stages.evaluator.lmeval import runner

    names = ["fllm_nq_mc", "fllm_gsm8k"]
    tasks = runner.load_tasks(runner.make_task_manager(names, str(benchmarks_dir)), names)
    assert tasks.kinds == {"fllm_nq_mc": "mc", "fllm_gsm8k": "gen"}
    assert tasks.sizes == {"fllm_nq_mc": 3610, "fllm_gsm8k": 1319}
    # a subset keeps the manager that loaded it: without one, simple_evaluate indexes every lm-eval task again
    assert tasks.subset(["fllm_gsm8k"]).manager is tasks.manager is not None
    with pytest.raises(runner.UnknownTask, match="fllm_nope"):
        runner.load_tasks(runner.make_task_manager(["fllm_nq_mc"], str(benchmarks_dir)), ["fllm_nope"])


def test_prefetch_loads_tasks_and_counts_documents(fixtures_dir, no_network, capsys):
    from stages.evaluator.prefetch import main

    main(["--tasks", "fllm_xstest", "--benchmarks", str(fixtures_dir / "benchmarks")])
    assert capsys.readouterr().out.split() == ["fllm_xstest", "450"]
