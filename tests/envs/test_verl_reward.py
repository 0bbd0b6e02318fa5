"""verl's reward hook: compute_score loaded by file path through verl's own loader, called from threads."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stages.envs import open_env, verl_reward

REWARD_FILE = Path(verl_reward.__file__)
KEYS = {"score", "correct", "timeout", "error", "answered"}


@pytest.mark.timeout(180)
def test_verl_loads_compute_score_by_path_and_calls_it_from_threads(fixture_datasets, tmp_path):
    pytest.importorskip("verl", reason="verl is not installed (grpo-trainer / dev extra)")
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import get_custom_reward_fn

    cfg = OmegaConf.create({"reward": {"custom_reward_function": {
        "path": str(REWARD_FILE), "name": "compute_score", "reward_kwargs": {}}}})
    fn = get_custom_reward_fn(cfg)
    rows, responses, expected = [], [], []
    for env_id in ("math:GSM8K", "eval:MATH500", "code:CodeContest", "qa:NaturalQuestions"):
        for item in open_env(env_id, fixture_datasets[env_id]).items(seed=0, stop=3):
            row = verl_reward.to_verl_row(item)
            right = item.reference_solution or f"<answer>{item.ground_truth['answers'][0]}</answer>"
            rows += [row, row]
            responses += [right, "I do not know."]
            expected += [1.0, 0.0]
    import pyarrow as pa  # the row format survives a parquet round trip, as verl reads it
    import pyarrow.parquet as pq

    path = tmp_path / "rl.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    rows = pq.read_table(path).to_pylist()

    def call(i: int) -> dict:
        r = rows[i]
        return fn(data_source=r["data_source"], solution_str=responses[i],
                  ground_truth=r["reward_model"]["ground_truth"], extra_info=r["extra_info"])

    with ThreadPoolExecutor(4) as pool:  # verl runs sync reward functions in executor threads
        results = list(pool.map(call, range(len(rows))))
    assert all(set(r) == KEYS and all(isinstance(v, float) for v in r.values()) for r in results)
    assert [r["score"] for r in results] == expected
    assert all(r["answered"] == 0.0 for r, e in zip(results, expected) if e == 0.0)


@pytest.mark.timeout(120)
def test_reward_file_works_from_a_fresh_interpreter_outside_the_repo(tmp_path):
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('custom_module', {str(REWARD_FILE)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "print(json.dumps([m.compute_score('eval:MATH500', 'so \\\\boxed{\\\\frac{1}{2}}', '0.5'),\n"
        "                  m.compute_score('code', '```python\\nprint(int(input())+1)\\n```',\n"
        "                                  json.dumps({'tests': {'inputs': ['1'], 'outputs': ['2']}}))]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=100, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    math, code_result = json.loads(out.stdout.strip().splitlines()[-1])
    assert math["score"] == 1.0 and code_result["score"] == 1.0
